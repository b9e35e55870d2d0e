#pragma once
// Compile-time configuration shared by every header: the host/device macro and version.

#define VASOMIM_VERSION_MAJOR 0
#define VASOMIM_VERSION_MINOR 1
#define VASOMIM_VERSION_PATCH 0

// One macro for every functor Thrust may run. CCCL 3 does not define __host__/__device__ for a
// plain host compiler, so the annotation is only spelled out when a CUDA compiler is at work.
#if defined(__CUDACC__)
#define VASOMIM_HOST_DEVICE __host__ __device__
#else
#define VASOMIM_HOST_DEVICE
#endif

// True when the translation unit is compiled by a CUDA compiler (nvcc), i.e. the CUDA system of
// the Thrust backend is available.
#if defined(__CUDACC__)
#define VASOMIM_HAS_CUDA 1
#else
#define VASOMIM_HAS_CUDA 0
#endif
