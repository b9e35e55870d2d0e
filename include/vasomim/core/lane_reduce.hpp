#pragma once
// Sums and maxima over a row in 16 independent lanes, combined in a fixed order at the end. Without
// -ffast-math a compiler may not reorder a serial float sum, so `s += x[i]` runs one add per
// cycle's latency; 16 lanes let it use full vector registers. The order is the same on every
// backend, so results do not depend on the backend.

#include "vasomim/core/config.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim::lanes {

inline constexpr index_t width = 16;

/// sum_{i < n} term(i).
template <class T, class Term>
VASOMIM_HOST_DEVICE inline T sum(index_t n, Term term) {
    const index_t body = n / width * width;
    T acc[width] = {};
    for (index_t i = 0; i < body; i += width)
        for (index_t k = 0; k < width; ++k) acc[k] += term(i + k);
    T s = T(0);
    for (index_t k = 0; k < width; ++k) s += acc[k];
    for (index_t i = body; i < n; ++i) s += term(i);
    return s;
}

/// max_{i < n} x[i] for n >= 1 (NaN-free input).
template <class T>
VASOMIM_HOST_DEVICE inline T max(const T* x, index_t n) {
    const index_t body = n / width * width;
    T m = x[0];
    if (body) {
        T acc[width];
        for (index_t k = 0; k < width; ++k) acc[k] = x[k];
        for (index_t i = width; i < body; i += width)
            for (index_t k = 0; k < width; ++k) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
        for (index_t k = 0; k < width; ++k) m = acc[k] > m ? acc[k] : m;
    }
    for (index_t i = body; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

}  // namespace vasomim::lanes
