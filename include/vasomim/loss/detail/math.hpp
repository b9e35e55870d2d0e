#pragma once
// log1p and a numerically safe sigmoid for host and device functors (float and double).

#include <math.h>

#include "vasomim/core/config.hpp"

namespace vasomim::loss::detail {

VASOMIM_HOST_DEVICE inline float log1p_(float x) { return ::log1pf(x); }
VASOMIM_HOST_DEVICE inline double log1p_(double x) { return ::log1p(x); }
VASOMIM_HOST_DEVICE inline float exp_(float x) { return ::expf(x); }
VASOMIM_HOST_DEVICE inline double exp_(double x) { return ::exp(x); }
VASOMIM_HOST_DEVICE inline float sqrt_(float x) { return ::sqrtf(x); }
VASOMIM_HOST_DEVICE inline double sqrt_(double x) { return ::sqrt(x); }

/// 1 / (1 + e^-z) without overflow for large |z|.
template <class T>
VASOMIM_HOST_DEVICE inline T sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + exp_(-z));
    const T e = exp_(z);
    return e / (T(1) + e);
}

}  // namespace vasomim::loss::detail
