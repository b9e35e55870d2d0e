#pragma once
// Helpers for the row-wise image kernels (conv2d, batch-norm, pooling, upsampling): one work item
// per image row, so index arithmetic (divisions) happens once per row and the inner loops run
// over contiguous memory, which the host compiler vectorises. Usable in host and device functors.

#include "vasomim/core/config.hpp"
#include "vasomim/core/tensor.hpp"

namespace vasomim::nn::detail {

/// Output columns [lo, hi) of a row for which x = o * s - p + k lies inside [0, w): the taps of
/// kernel column k that read real (not padding) input.
VASOMIM_HOST_DEVICE inline void tap_range(index_t k, index_t s, index_t p, index_t w, index_t ow, index_t& lo,
                                          index_t& hi) {
    const index_t a = p - k, b = w - 1 + p - k;
    lo = a > 0 ? (a + s - 1) / s : 0;
    hi = b < 0 ? 0 : b / s + 1;
    if (hi > ow) hi = ow;
    if (lo > hi) lo = hi;
}

/// Sum of p[0..n) (times q[0..n) when q is given) in U, with 8 interleaved partial sums: the
/// compiler vectorises it and long sums lose less precision than one running total.
template <class U, class T>
VASOMIM_HOST_DEVICE inline U lane_sum(const T* p, const T* q, index_t n) {
    U acc[8] = {U(0), U(0), U(0), U(0), U(0), U(0), U(0), U(0)};
    index_t i = 0;
    if (q) {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) acc[j] += static_cast<U>(p[i + j]) * static_cast<U>(q[i + j]);
        for (; i < n; ++i) acc[0] += static_cast<U>(p[i]) * static_cast<U>(q[i]);
    } else {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) acc[j] += static_cast<U>(p[i + j]);
        for (; i < n; ++i) acc[0] += static_cast<U>(p[i]);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// Sum of (p[i] - mu)^2 in U with 8 partial sums.
template <class U, class T>
VASOMIM_HOST_DEVICE inline U lane_sum_centered(const T* p, U mu, index_t n) {
    U acc[8] = {U(0), U(0), U(0), U(0), U(0), U(0), U(0), U(0)};
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) {
            const U v = static_cast<U>(p[i + j]) - mu;
            acc[j] += v * v;
        }
    for (; i < n; ++i) {
        const U v = static_cast<U>(p[i]) - mu;
        acc[0] += v * v;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// Both sums of instance_norm's backward in one pass, in U with 8 partial sums each: s = sum q'[i]
/// and sx = sum q'[i] * (p[i] - mu), where q' = q, or with y given q'[i] = y[i] > 0 ? q[i] :
/// slope * q[i] (the gradient through a LeakyReLU whose output is y). Without y, s is the same sum
/// in the same order as lane_sum(q).
template <class U, class T>
VASOMIM_HOST_DEVICE inline void lane_sums_gated(const T* p, const T* q, const T* y, T slope, U mu, index_t n, U& s,
                                                U& sx) {
    U a[8] = {U(0), U(0), U(0), U(0), U(0), U(0), U(0), U(0)};
    U b[8] = {U(0), U(0), U(0), U(0), U(0), U(0), U(0), U(0)};
    index_t i = 0;
    // The gate is chosen outside the loops, so that each vectorises.
    if (y) {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) {
                const U g = static_cast<U>(y[i + j] > T(0) ? q[i + j] : slope * q[i + j]);
                a[j] += g;
                b[j] += g * (static_cast<U>(p[i + j]) - mu);
            }
        for (; i < n; ++i) {
            const U g = static_cast<U>(y[i] > T(0) ? q[i] : slope * q[i]);
            a[0] += g;
            b[0] += g * (static_cast<U>(p[i]) - mu);
        }
    } else {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) {
                const U g = static_cast<U>(q[i + j]);
                a[j] += g;
                b[j] += g * (static_cast<U>(p[i + j]) - mu);
            }
        for (; i < n; ++i) {
            const U g = static_cast<U>(q[i]);
            a[0] += g;
            b[0] += g * (static_cast<U>(p[i]) - mu);
        }
    }
    s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    sx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

}  // namespace vasomim::nn::detail
