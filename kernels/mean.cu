// mean.cu: MEAN (block average) over the f0 x ... x f4 block of each output.
//
// Numerics (reduce_numpy._mean):
// - floats: acc = x0, then acc = acc + xk over the block in C order, in the
//   compute type (float32 for float32, float64 for float64), then acc / K.
// - integers up to 32 bits: exact int64 sum S, result floor((2S + K) / (2K)).
// - 64-bit integers: x = K*q + r (floor division, 0 <= r < K); the q are
//   summed in the input's type (wrapping like NumPy), the r exactly in int64,
//   result Q + floor((2R + K) / (2K)).
#include "common.cuh"

template <typename T>
__global__ void ngff_mean_float(const T* __restrict__ x, T* __restrict__ out,
                                NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS,
                                NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    const T count = (T)(f0 * f1 * f2 * f3 * f4);
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        const T* p = x + ngff_block_offset(idx, total, n, t, base);
        T acc = (T)0;
        bool first = true;
        NGFF_FOR_EACH_IN_BLOCK(
            const T v = p[off];
            if (first) { acc = v; first = false; } else { acc = acc + v; })
        out[idx] = acc / count;
    }
}

template <typename T>
__global__ void ngff_mean_int(const T* __restrict__ x, T* __restrict__ out,
                              NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS,
                              NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    const ngff_i64 count = (ngff_i64)f0 * f1 * f2 * f3 * f4;
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        const T* p = x + ngff_block_offset(idx, total, n, t, base);
        ngff_i64 sum = 0;
        NGFF_FOR_EACH_IN_BLOCK(sum += (ngff_i64)p[off];)
        out[idx] = (T)ngff_floordiv(2 * sum + count, 2 * count);
    }
}

// Floor division and non-negative remainder by a positive divisor, per type.
// Signed: from C++'s truncating / and % (defined for k > 0), then one step
// down for negative remainders; never forms v - q*k, which overflows for v
// near INT64_MIN when k does not divide v.
__device__ __forceinline__ void ngff_qr(long long v, long long k, long long& q, ngff_i64& r) {
    q = v / k;
    r = v % k;
    if (r < 0) {
        r += k;
        q -= 1;
    }
}
__device__ __forceinline__ void ngff_qr(ngff_u64 v, ngff_u64 k, ngff_u64& q, ngff_i64& r) {
    q = v / k;
    r = (ngff_i64)(v - q * k);
}

template <typename T>
__global__ void ngff_mean_int64(const T* __restrict__ x, T* __restrict__ out,
                                NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS,
                                NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    const ngff_i64 count = (ngff_i64)f0 * f1 * f2 * f3 * f4;
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        const T* p = x + ngff_block_offset(idx, total, n, t, base);
        ngff_u64 q_sum = 0;  // unsigned: wraps like NumPy, never undefined
        ngff_i64 r_sum = 0;
        NGFF_FOR_EACH_IN_BLOCK(
            T q;
            ngff_i64 r;
            ngff_qr(p[off], (T)count, q, r);
            q_sum += (ngff_u64)q;
            r_sum += r;)
        const ngff_i64 rounded = ngff_floordiv(2 * r_sum + count, 2 * count);
        out[idx] = (T)(q_sum + (ngff_u64)rounded);
    }
}

#ifndef NGFF_NVRTC
template __global__ void ngff_mean_float<float>(const float*, float*, NGFF_SHAPE_PARAMS,
    NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
template __global__ void ngff_mean_float<double>(const double*, double*, NGFF_SHAPE_PARAMS,
    NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
#define NGFF_INST_MEAN_INT(T) \
    template __global__ void ngff_mean_int<T>(const T*, T*, NGFF_SHAPE_PARAMS, \
        NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
NGFF_INST_MEAN_INT(unsigned char)
NGFF_INST_MEAN_INT(signed char)
NGFF_INST_MEAN_INT(unsigned short)
NGFF_INST_MEAN_INT(short)
NGFF_INST_MEAN_INT(unsigned int)
NGFF_INST_MEAN_INT(int)
template __global__ void ngff_mean_int64<long long>(const long long*, long long*,
    NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
template __global__ void ngff_mean_int64<unsigned long long>(const unsigned long long*,
    unsigned long long*, NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS,
    NGFF_STRIDE_PARAMS);
#endif
