// shim.h: compile the kernels/*.cu sources as host C++ (tests only).
//
// Our kernels are grid-stride loops with no shared memory, barriers, atomics
// or warp intrinsics, so running every (block, thread) of a launch grid in
// turn on one CPU thread computes exactly what the device computes. This
// header supplies what NVRTC/nvcc would: the execution-space keywords and the
// thread/block index variables: one copy per host thread, shared by every
// translation unit (C++17 inline variables). One copy per unit (static) would
// break under the one-definition rule: kernels of different files with the same
// parameter list share one instantiation of launch.h's run(), which would set
// another unit's copy, leaving this unit's blockDim and gridDim at 1, so that
// every thread walked all outputs from its own index (right results, quadratic
// time, and no check of the grid-stride loop). thread_local lets two host
// threads launch at once, as two streams do on a device.
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

inline thread_local ngff_host_dim3 threadIdx = {0, 0, 0};
inline thread_local ngff_host_dim3 blockIdx = {0, 0, 0};
inline thread_local ngff_host_dim3 blockDim = {1, 1, 1};
inline thread_local ngff_host_dim3 gridDim = {1, 1, 1};

using std::rint;
using std::rintf;

#endif  // NGFF_HOST_SHIM_H
