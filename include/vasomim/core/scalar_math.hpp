#pragma once
// Scalar math usable in host and device functors for float and double. The C names (expf, erff,
// ...) exist both in glibc and in CUDA's device library, so one overload set serves every backend.

#include <math.h>

#include "vasomim/core/config.hpp"

namespace vasomim::scalar {

VASOMIM_HOST_DEVICE inline float exp_(float x) { return ::expf(x); }
VASOMIM_HOST_DEVICE inline double exp_(double x) { return ::exp(x); }
VASOMIM_HOST_DEVICE inline float erf_(float x) { return ::erff(x); }
VASOMIM_HOST_DEVICE inline double erf_(double x) { return ::erf(x); }
VASOMIM_HOST_DEVICE inline float sqrt_(float x) { return ::sqrtf(x); }
VASOMIM_HOST_DEVICE inline double sqrt_(double x) { return ::sqrt(x); }
VASOMIM_HOST_DEVICE inline float log1p_(float x) { return ::log1pf(x); }
VASOMIM_HOST_DEVICE inline double log1p_(double x) { return ::log1p(x); }

/// 1 / (1 + e^-z) without overflow for large |z|.
template <class T>
VASOMIM_HOST_DEVICE inline T sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + exp_(-z));
    const T e = exp_(z);
    return e / (T(1) + e);
}

}  // namespace vasomim::scalar
