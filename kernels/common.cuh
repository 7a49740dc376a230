// common.cuh: shared typedefs and helpers of the ngff_gpu kernels.
//
// Compiled two ways: by NVRTC through CuPy (ngff_gpu/cuda_loader.py defines
// NGFF_NVRTC and inlines this file) and standalone by nvcc in CI
// (ci/compile_kernels.sh). NVRTC has no standard headers, so nothing is
// included here: every type is a builtin.
#ifndef NGFF_COMMON_CUH
#define NGFF_COMMON_CUH

typedef long long ngff_i64;
typedef unsigned long long ngff_u64;
typedef unsigned int ngff_u32;

// Block methods and the GAUSSIAN pass see arrays as 5-D (leading dims of
// size 1 pad fewer dims); the Python side refuses more than 5 dims.
#define NGFF_MAXD 5

// Output shape (n0..n4) of a launch: every kernel writes one C-contiguous
// output of this shape, one thread per element (grid-stride loop).
#define NGFF_SHAPE_PARAMS \
    ngff_i64 n0, ngff_i64 n1, ngff_i64 n2, ngff_i64 n3, ngff_i64 n4

// Input strides in elements (may be negative or zero).
#define NGFF_STRIDE_PARAMS \
    ngff_i64 s0, ngff_i64 s1, ngff_i64 s2, ngff_i64 s3, ngff_i64 s4

// Per-output-coordinate input steps (factor * stride) and the offset of the
// first block element of output (0, ..., 0).
#define NGFF_STEP_PARAMS \
    ngff_i64 t0, ngff_i64 t1, ngff_i64 t2, ngff_i64 t3, ngff_i64 t4, ngff_i64 base

// Block extents (the relative factors) of the block methods.
#define NGFF_FACTOR_PARAMS int f0, int f1, int f2, int f3, int f4

// Linear index -> 5-D coordinates of a C-ordered shape. 32-bit division
// when the whole output fits in 32 bits (the common case), else 64-bit.
__device__ __forceinline__ void ngff_unravel(ngff_i64 idx, ngff_i64 total,
                                             const ngff_i64 (&n)[NGFF_MAXD],
                                             ngff_i64 (&c)[NGFF_MAXD]) {
    if (total <= 0xffffffffLL) {
        ngff_u32 r = (ngff_u32)idx;
#pragma unroll
        for (int d = NGFF_MAXD - 1; d > 0; --d) {
            ngff_u32 nd = (ngff_u32)n[d];
            c[d] = (ngff_i64)(r % nd);
            r /= nd;
        }
        c[0] = (ngff_i64)r;
    } else {
        ngff_i64 r = idx;
#pragma unroll
        for (int d = NGFF_MAXD - 1; d > 0; --d) {
            c[d] = r % n[d];
            r /= n[d];
        }
        c[0] = r;
    }
}

// Offset of the first block element of output idx (base + sum c_d * t_d).
__device__ __forceinline__ ngff_i64 ngff_block_offset(ngff_i64 idx, ngff_i64 total,
                                                      const ngff_i64 (&n)[NGFF_MAXD],
                                                      const ngff_i64 (&t)[NGFF_MAXD],
                                                      ngff_i64 base) {
    ngff_i64 c[NGFF_MAXD];
    ngff_unravel(idx, total, n, c);
    ngff_i64 off = base;
#pragma unroll
    for (int d = 0; d < NGFF_MAXD; ++d) off += c[d] * t[d];
    return off;
}

// Floor division by a positive divisor (Python / NumPy // semantics).
__device__ __forceinline__ ngff_i64 ngff_floordiv(ngff_i64 a, ngff_i64 b) {
    ngff_i64 q = a / b;
    if ((a % b != 0) && (a < 0)) q -= 1;
    return q;
}

// Traits: integer output types are rounded (rint) and clipped by GAUSSIAN.
template <typename T> struct ngff_is_int { static const bool value = true; };
template <> struct ngff_is_int<float> { static const bool value = false; };
template <> struct ngff_is_int<double> { static const bool value = false; };

__device__ __forceinline__ float ngff_rint(float v) { return rintf(v); }
__device__ __forceinline__ double ngff_rint(double v) { return rint(v); }

// Grid-stride loop over the output elements.
#define NGFF_FOR_EACH_OUTPUT(idx, total)                                          \
    for (ngff_i64 idx = (ngff_i64)blockIdx.x * blockDim.x + threadIdx.x;          \
         idx < (total); idx += (ngff_i64)gridDim.x * blockDim.x)

// Unpack the parameter macros into local arrays.
#define NGFF_UNPACK_SHAPE                                                         \
    const ngff_i64 n[NGFF_MAXD] = {n0, n1, n2, n3, n4};                          \
    const ngff_i64 total = n0 * n1 * n2 * n3 * n4;
#define NGFF_UNPACK_STEP const ngff_i64 t[NGFF_MAXD] = {t0, t1, t2, t3, t4};

// Iterate the block offsets of one output in C order (last axis fastest),
// exactly like itertools.product in reduce_numpy._block_views. The body sees
// `off`, the element offset of the block element from the block start.
#define NGFF_FOR_EACH_IN_BLOCK(...)                                              \
    for (int a0 = 0; a0 < f0; ++a0)                                               \
        for (int a1 = 0; a1 < f1; ++a1)                                           \
            for (int a2 = 0; a2 < f2; ++a2)                                       \
                for (int a3 = 0; a3 < f3; ++a3)                                   \
                    for (int a4 = 0; a4 < f4; ++a4) {                             \
                        const ngff_i64 off = a0 * s0 + a1 * s1 + a2 * s2 +        \
                                             a3 * s3 + a4 * s4;                   \
                        __VA_ARGS__                                               \
                    }

#endif  // NGFF_COMMON_CUH
