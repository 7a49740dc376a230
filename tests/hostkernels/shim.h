// shim.h: compile the kernels/*.cu sources as host C++ (tests only).
//
// Our kernels are grid-stride loops with no shared memory, barriers, atomics
// or warp intrinsics, so running every (block, thread) of a launch grid in
// turn on one CPU thread computes exactly what the device computes. This
// header supplies what NVRTC/nvcc would: the execution-space keywords and the
// thread/block index variables (one copy per translation unit; the launcher
// in launch.h sets them before each call).
#ifndef NGFF_HOST_SHIM_H
#define NGFF_HOST_SHIM_H

#include <cmath>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict

struct ngff_host_dim3 {
    unsigned int x, y, z;
};

static ngff_host_dim3 threadIdx = {0, 0, 0};
static ngff_host_dim3 blockIdx = {0, 0, 0};
static ngff_host_dim3 blockDim = {1, 1, 1};
static ngff_host_dim3 gridDim = {1, 1, 1};

using std::rint;
using std::rintf;

#endif  // NGFF_HOST_SHIM_H
