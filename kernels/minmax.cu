// minmax.cu: MIN and MAX over the f0 x ... x f4 block of each output.
//
// Numerics (reduce_numpy._min_max): acc = x0, then acc = op(acc, xk) over the
// block in C order, with NumPy's np.minimum / np.maximum semantics: a NaN on
// either side gives NaN, and on ties the accumulator (first value) is kept.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ T ngff_min2(T a, T b) {
    return (a <= b || a != a) ? a : b;  // a != a: a is NaN (floats only)
}

template <typename T>
__device__ __forceinline__ T ngff_max2(T a, T b) {
    return (a >= b || a != a) ? a : b;
}

template <typename T, bool IS_MIN>
__device__ __forceinline__ void ngff_minmax_body(const T* __restrict__ x, T* __restrict__ out,
                                                 NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS,
                                                 NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        const T* p = x + ngff_block_offset(idx, total, n, t, base);
        T acc = p[0];
        bool first = true;
        NGFF_FOR_EACH_IN_BLOCK(
            if (first) {
                first = false;
            } else {
                const T v = p[off];
                acc = IS_MIN ? ngff_min2<T>(acc, v) : ngff_max2<T>(acc, v);
            })
        out[idx] = acc;
    }
}

template <typename T>
__global__ void ngff_min(const T* __restrict__ x, T* __restrict__ out, NGFF_SHAPE_PARAMS,
                         NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    ngff_minmax_body<T, true>(x, out, n0, n1, n2, n3, n4, t0, t1, t2, t3, t4, base,
                              f0, f1, f2, f3, f4, s0, s1, s2, s3, s4);
}

template <typename T>
__global__ void ngff_max(const T* __restrict__ x, T* __restrict__ out, NGFF_SHAPE_PARAMS,
                         NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    ngff_minmax_body<T, false>(x, out, n0, n1, n2, n3, n4, t0, t1, t2, t3, t4, base,
                               f0, f1, f2, f3, f4, s0, s1, s2, s3, s4);
}

#ifndef NGFF_NVRTC
#define NGFF_INST_MINMAX(T) \
    template __global__ void ngff_min<T>(const T*, T*, NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS, \
        NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS); \
    template __global__ void ngff_max<T>(const T*, T*, NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS, \
        NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
NGFF_INST_MINMAX(unsigned char)
NGFF_INST_MINMAX(signed char)
NGFF_INST_MINMAX(unsigned short)
NGFF_INST_MINMAX(short)
NGFF_INST_MINMAX(unsigned int)
NGFF_INST_MINMAX(int)
NGFF_INST_MINMAX(unsigned long long)
NGFF_INST_MINMAX(long long)
NGFF_INST_MINMAX(float)
NGFF_INST_MINMAX(double)
#endif
