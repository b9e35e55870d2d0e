#pragma once
// Binary operations usable on every backend (host and device), for reductions and scans.

#include "vasomim/core/config.hpp"

namespace vasomim {

struct plus {
    template <class T>
    VASOMIM_HOST_DEVICE constexpr T operator()(const T& a, const T& b) const { return a + b; }
};

struct multiplies {
    template <class T>
    VASOMIM_HOST_DEVICE constexpr T operator()(const T& a, const T& b) const { return a * b; }
};

struct maximum {
    template <class T>
    VASOMIM_HOST_DEVICE constexpr T operator()(const T& a, const T& b) const { return a < b ? b : a; }
};

struct minimum {
    template <class T>
    VASOMIM_HOST_DEVICE constexpr T operator()(const T& a, const T& b) const { return b < a ? b : a; }
};

struct identity {
    template <class T>
    VASOMIM_HOST_DEVICE constexpr T operator()(const T& a) const { return a; }
};

}  // namespace vasomim
