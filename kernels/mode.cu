// mode.cu: MODE (most frequent value of the block; ties to the smallest).
//
// Integer dtypes only (reduce_numpy._mode). For each block element v that is
// the first occurrence of its value, count its occurrences; keep the value
// with the largest count, and on equal counts the smaller value. O(K^2) reads
// per output (K = block size), all from L1/L2; no per-thread array, so no
// limit on the block size.
#include "common.cuh"

template <typename T>
__global__ void ngff_mode(const T* __restrict__ x, T* __restrict__ out, NGFF_SHAPE_PARAMS,
                          NGFF_STEP_PARAMS, NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        const T* p = x + ngff_block_offset(idx, total, n, t, base);
        T best = p[0];
        ngff_i64 best_count = 0;
        ngff_i64 j = 0;  // position of the candidate in C order
        for (int b0 = 0; b0 < f0; ++b0)
            for (int b1 = 0; b1 < f1; ++b1)
                for (int b2 = 0; b2 < f2; ++b2)
                    for (int b3 = 0; b3 < f3; ++b3)
                        for (int b4 = 0; b4 < f4; ++b4, ++j) {
                            const T v = p[b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3 + b4 * s4];
                            ngff_i64 count = 0;
                            ngff_i64 k = 0;
                            bool seen_before = false;
                            NGFF_FOR_EACH_IN_BLOCK(
                                if (!seen_before && p[off] == v) {
                                    if (k < j) seen_before = true;
                                    else ++count;
                                }
                                ++k;)
                            if (seen_before) continue;
                            if (count > best_count || (count == best_count && v < best)) {
                                best = v;
                                best_count = count;
                            }
                        }
        out[idx] = best;
    }
}

#ifndef NGFF_NVRTC
#define NGFF_INST_MODE(T) \
    template __global__ void ngff_mode<T>(const T*, T*, NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS, \
        NGFF_FACTOR_PARAMS, NGFF_STRIDE_PARAMS);
NGFF_INST_MODE(unsigned char)
NGFF_INST_MODE(signed char)
NGFF_INST_MODE(unsigned short)
NGFF_INST_MODE(short)
NGFF_INST_MODE(unsigned int)
NGFF_INST_MODE(int)
NGFF_INST_MODE(unsigned long long)
NGFF_INST_MODE(long long)
#endif
