// gaussian.cu: one GAUSSIAN pass (fused blur + linear sample) along one axis.
//
// The Python side runs one pass per downsampled axis, axes in increasing
// order, exactly like reduce_numpy.reduce_region: the first pass reads the
// brick (type TIn), the others the previous pass's output (type Acc, the
// compute dtype); the last pass writes the output dtype TOut, every other
// pass writes Acc.
//
// Along the pass axis, output i (global index a + c) reads input
//     g_d = clamp(f*i + first + d, 0, n_glob - 1)      d = 0 .. ntaps-1
// clamped against the GLOBAL input length, then shifted by the brick origin.
// Numerics (reduce_numpy._gaussian_axis): in Acc, acc = w0 * x0, then
// acc = acc + wd * xd tap by tap (compile with --fmad=false so the product
// and the sum round separately, as in NumPy). Integer outputs: rint (half to
// even) then clip to [lo, hi] (reduce_numpy.int_clip_bounds), then convert.
#include "common.cuh"

template <typename TIn, typename Acc, typename TOut>
__global__ void ngff_gaussian_pass(const TIn* __restrict__ x, TOut* __restrict__ out,
                                   const Acc* __restrict__ weights, NGFF_SHAPE_PARAMS,
                                   NGFF_STRIDE_PARAMS, int ax, int f, int first, int ntaps,
                                   ngff_i64 a, ngff_i64 n_glob, ngff_i64 origin,
                                   double lo, double hi) {
    NGFF_UNPACK_SHAPE
    const ngff_i64 s[NGFF_MAXD] = {s0, s1, s2, s3, s4};
    const Acc lo_c = (Acc)lo;
    const Acc hi_c = (Acc)hi;
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        ngff_i64 c[NGFF_MAXD];
        ngff_unravel(idx, total, n, c);
        ngff_i64 off = 0;
        ngff_i64 i = 0;
#pragma unroll
        for (int d = 0; d < NGFF_MAXD; ++d) {
            if (d == ax) i = a + c[d];
            else off += c[d] * s[d];
        }
        const TIn* p = x + off;
        const ngff_i64 s_ax = s[ax];
        const ngff_i64 g0 = (ngff_i64)f * i + first;
        Acc acc = (Acc)0;
        for (int d = 0; d < ntaps; ++d) {
            ngff_i64 g = g0 + d;
            g = g < 0 ? 0 : (g > n_glob - 1 ? n_glob - 1 : g);
            const Acc term = weights[d] * (Acc)p[(g - origin) * s_ax];
            acc = d == 0 ? term : acc + term;
        }
        if (ngff_is_int<TOut>::value) {
            acc = ngff_rint(acc);
            acc = acc < lo_c ? lo_c : (acc > hi_c ? hi_c : acc);
        }
        out[idx] = (TOut)acc;
    }
}

#ifndef NGFF_NVRTC
#define NGFF_INST_GAUSS(TIn, Acc, TOut) \
    template __global__ void ngff_gaussian_pass<TIn, Acc, TOut>(const TIn*, TOut*, const Acc*, \
        NGFF_SHAPE_PARAMS, NGFF_STRIDE_PARAMS, int, int, int, int, ngff_i64, ngff_i64, \
        ngff_i64, double, double);
// Every (input, compute, output) triple the Python side launches.
#define NGFF_INST_GAUSS_T(T, Acc) \
    NGFF_INST_GAUSS(T, Acc, Acc) \
    NGFF_INST_GAUSS(T, Acc, T) \
    NGFF_INST_GAUSS(Acc, Acc, T)
NGFF_INST_GAUSS_T(unsigned char, float)
NGFF_INST_GAUSS_T(signed char, float)
NGFF_INST_GAUSS_T(unsigned short, float)
NGFF_INST_GAUSS_T(short, float)
NGFF_INST_GAUSS_T(unsigned int, double)
NGFF_INST_GAUSS_T(int, double)
NGFF_INST_GAUSS_T(unsigned long long, double)
NGFF_INST_GAUSS_T(long long, double)
NGFF_INST_GAUSS(float, float, float)
NGFF_INST_GAUSS(double, double, double)
#endif
