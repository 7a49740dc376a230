// nearest.cu: NEAREST (a strided gather) and a plain strided copy.
//
// out[c] = x[base + sum_d c_d * t_d], where the Python side folds the sample
// offset floor((f-1)/2) and the brick origin into base, and t_d = f_d *
// stride_d. Bits are copied as unsigned integers of the element's width, so
// every dtype (float16 and NaN payloads included) is reproduced exactly, like
// reduce_numpy._nearest's x[slices].copy().
#include "common.cuh"

template <typename T>
__global__ void ngff_nearest(const T* __restrict__ x, T* __restrict__ out,
                             NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS) {
    NGFF_UNPACK_SHAPE
    NGFF_UNPACK_STEP
    NGFF_FOR_EACH_OUTPUT(idx, total) {
        out[idx] = x[ngff_block_offset(idx, total, n, t, base)];
    }
}

#ifndef NGFF_NVRTC
template __global__ void ngff_nearest<unsigned char>(const unsigned char*, unsigned char*,
    NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS);
template __global__ void ngff_nearest<unsigned short>(const unsigned short*, unsigned short*,
    NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS);
template __global__ void ngff_nearest<unsigned int>(const unsigned int*, unsigned int*,
    NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS);
template __global__ void ngff_nearest<unsigned long long>(const unsigned long long*,
    unsigned long long*, NGFF_SHAPE_PARAMS, NGFF_STEP_PARAMS);
#endif
