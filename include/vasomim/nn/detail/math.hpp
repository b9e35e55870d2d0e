#pragma once
// Scalar math usable in host and device functors for float and double. The C names (expf, erff,
// ...) exist both in glibc and in CUDA's device library, so one overload set serves every backend.

#include <math.h>

#include "vasomim/core/config.hpp"

namespace vasomim::nn::detail {

VASOMIM_HOST_DEVICE inline float exp_(float x) { return ::expf(x); }
VASOMIM_HOST_DEVICE inline double exp_(double x) { return ::exp(x); }
VASOMIM_HOST_DEVICE inline float erf_(float x) { return ::erff(x); }
VASOMIM_HOST_DEVICE inline double erf_(double x) { return ::erf(x); }
VASOMIM_HOST_DEVICE inline float sqrt_(float x) { return ::sqrtf(x); }
VASOMIM_HOST_DEVICE inline double sqrt_(double x) { return ::sqrt(x); }

}  // namespace vasomim::nn::detail
