#pragma once
// Per-patch weights of a batch of guidance maps and the patch distribution f(g_i) built from them.
// Weight w_i = sum of the guidance over the p x p patch i (patches in row-major order, as MAE's
// patchify); f(g_i) = w_i / sum_k w_k. The sampler needs only the weights: drawing proportionally to
// w and to f is the same thing, and the weights stay exact for rows whose total is 0.

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"

#if defined(__AVX512F__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

namespace vasomim::masking {

namespace detail {

/// Counts the flags set by a validation kernel (namespace scope so nvcc can name it).
struct count_nonzero {
    template <class T>
    VASOMIM_HOST_DEVICE std::int64_t operator()(const T& x) const { return x != T(0) ? 1 : 0; }
};

/// True for a value that is negative, NaN or infinite. `x - x` is NaN exactly for inf and NaN.
template <class T>
VASOMIM_HOST_DEVICE inline bool bad_weight(T x) {
    if constexpr (std::is_floating_point_v<T>)
        return !(x >= T(0) && x - x == T(0));
    else if constexpr (std::is_signed_v<T>)
        return x < T(0);
    else
        return false;
}

struct is_bad_weight {
    template <class T>
    VASOMIM_HOST_DEVICE std::int64_t operator()(const T& x) const { return bad_weight(x) ? 1 : 0; }
};

/// Throws value_error naming the first flagged element when any flag is set. The host copy happens
/// only on the error path.
template <class B>
void throw_if_flagged(const tensor<std::int64_t, B>& flags, const std::string& what) {
    const auto n = backend_traits<B>::transform_reduce(flags.data(), flags.size(), std::int64_t(0),
                                                       count_nonzero{}, plus{});
    if (n == 0) return;
    const auto host = flags.to_host();
    std::size_t first = 0;
    while (first < host.size() && host[first] == 0) ++first;
    throw value_error(what + ": " + std::to_string(n) + " negative or non-finite value(s), the first at flat index " +
                      std::to_string(first) + " of shape " + flags.shape().to_string());
}

}  // namespace detail

namespace detail {

/// Patches per work item of patch_weights: on host backends a strip of 32 (their lanes, 4 KiB of
/// doubles, stay in L1 while p rows stream by), on CUDA one patch per thread.
template <class B>
inline constexpr index_t strip_block = backend_traits<B>::host_accessible ? 32 : 1;

/// For the runs of 8 of one patch row (run[0..runs*8)): lane[q] += run[c + q] and
/// low[q] = min(low[q], run[c + q]) for c = 0, 8, ... in order, in double. On AVX-512 hosts the
/// lanes stay in one register each and every run is one conversion, add and min; on other GCC/Clang
/// hosts the same with vector extensions (the auto-vectoriser leaves this loop scalar). Elementwise
/// these are the IEEE operations of the portable loop, so the sums are identical.
template <class T>
VASOMIM_HOST_DEVICE inline void accumulate_runs(const T* run, index_t runs, double* lane, double* low) {
#if defined(__AVX512F__) && !defined(__CUDACC__)
    if constexpr (std::is_same_v<T, float>) {
        __m512d a = _mm512_loadu_pd(lane), m = _mm512_loadu_pd(low);
        for (index_t c = 0; c < runs; ++c) {
            const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(run + 8 * c));
            a = _mm512_add_pd(a, x);
            m = _mm512_min_pd(x, m);  // x < m ? x : m
        }
        _mm512_storeu_pd(lane, a);
        _mm512_storeu_pd(low, m);
        return;
    }
#elif (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
    if constexpr (std::is_same_v<T, float>) {
        typedef float f8 __attribute__((vector_size(32)));
        typedef double d8 __attribute__((vector_size(64)));
        d8 a, m;
        std::memcpy(&a, lane, sizeof a);
        std::memcpy(&m, low, sizeof m);
        for (index_t c = 0; c < runs; ++c) {
            f8 xf;
            std::memcpy(&xf, run + 8 * c, sizeof xf);
            const d8 x = __builtin_convertvector(xf, d8);
            a += x;
            m = x < m ? x : m;
        }
        std::memcpy(lane, &a, sizeof a);
        std::memcpy(low, &m, sizeof m);
        return;
    }
#endif
    for (index_t c = 0; c < runs; ++c)
        for (int q = 0; q < 8; ++q) {
            const double x = static_cast<double>(run[8 * c + q]);
            lane[q] += x;
            low[q] = x < low[q] ? x : low[q];
        }
}

}  // namespace detail

/// Number of patches of an H x W map cut into p x p patches. Throws shape_error unless p > 0 divides
/// both H and W.
inline index_t num_patches(index_t height, index_t width, index_t patch) {
    if (patch <= 0) throw shape_error("masking: patch size must be > 0, got " + std::to_string(patch));
    if (height <= 0 || width <= 0 || height % patch != 0 || width % patch != 0)
        throw shape_error("masking: patch size " + std::to_string(patch) + " does not divide the " +
                          std::to_string(height) + " x " + std::to_string(width) + " guidance map");
    return (height / patch) * (width / patch);
}

/// Patch weights (N x L, L = (H/p)(W/p)) of a batch of guidance maps (N x H x W). Each weight is
/// the sum of its patch's p*p guidance values, accumulated in double and in a fixed order, so it is
/// the same on every backend. Throws shape_error for a map that is not 3-D or a patch size that
/// does not divide it, value_error for negative or non-finite guidance values (naming the first).
template <class W = float, class T, class B>
tensor<W, B> patch_weights(const tensor<T, B>& guidance, index_t patch) {
    static_assert(std::is_floating_point_v<W>, "masking::patch_weights: weights must be float or double");
    if (guidance.rank() != 3)
        throw shape_error("masking::patch_weights: guidance must be N x H x W, got " +
                          guidance.shape().to_string());
    const index_t n = guidance.dim(0), h = guidance.dim(1), w = guidance.dim(2);
    const index_t l = num_patches(h, w, patch);
    const index_t gw = w / patch;
    tensor<W, B> out(shape{n, l});
    tensor<std::int64_t, B> bad(shape{n, l});
    const T* g = guidance.data();
    W* o = out.data();
    std::int64_t* flag = bad.data();
    const index_t p = patch;
    const index_t strips = n * (h / p), blocks = (gw + detail::strip_block<B> - 1) / detail::strip_block<B>;
    // One work item per strip of up to strip_block patches side by side (p rows of the map): on the
    // host the rows are read contiguously, as a stream. Every patch sums its p runs of p values into 8 lanes
    // (column c into lane c % 8, rows in order; columns past the last multiple of 8 into a tail),
    // a fixed order on every backend, one vector operation per run of 8 on the host. A negative value
    // shows in the lane minima, a NaN or infinity in the sum.
    parallel_for<B>(strips * blocks, [=] VASOMIM_HOST_DEVICE(std::int64_t item) {
        const index_t strip = item / blocks, k0 = (item % blocks) * detail::strip_block<B>;
        const index_t count = gw - k0 < detail::strip_block<B> ? gw - k0 : detail::strip_block<B>;
        const index_t img = strip / (h / p), r0 = (strip % (h / p)) * p;
        double lane[detail::strip_block<B>][8], low[detail::strip_block<B>][8];
        double tail[detail::strip_block<B>], tail_low[detail::strip_block<B>];
        for (index_t k = 0; k < count; ++k) {
            for (int q = 0; q < 8; ++q) lane[k][q] = 0.0, low[k][q] = 0.0;
            tail[k] = 0.0, tail_low[k] = 0.0;
        }
        for (index_t r = 0; r < p; ++r) {
            const T* row = g + (img * h + r0 + r) * w + k0 * p;
            for (index_t k = 0; k < count; ++k) {
                const T* run = row + k * p;
                detail::accumulate_runs(run, p / 8, lane[k], low[k]);
                for (index_t c = p - p % 8; c < p; ++c) {
                    const double x = static_cast<double>(run[c]);
                    tail[k] += x;
                    tail_low[k] = x < tail_low[k] ? x : tail_low[k];
                }
            }
        }
        for (index_t k = 0; k < count; ++k) {
            const double* a = lane[k];
            const double sum = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) + tail[k];
            double lowest = tail_low[k];
            for (int q = 0; q < 8; ++q) lowest = low[k][q] < lowest ? low[k][q] : lowest;
            const index_t idx = img * l + (r0 / p) * gw + k0 + k;
            o[idx] = static_cast<W>(sum);
            flag[idx] = (lowest < 0.0 || !(sum - sum == 0.0)) ? 1 : 0;
        }
    });
    detail::throw_if_flagged(bad, "masking::patch_weights: guidance " + guidance.shape().to_string() +
                                      " (flags per patch)");
    return out;
}

/// Checks a weight matrix: 2-D, non-negative, finite. Throws shape_error / value_error.
template <class W, class B>
void check_weights(const tensor<W, B>& weights, const char* who) {
    if (weights.rank() != 2)
        throw shape_error(std::string(who) + ": weights must be N x L, got " + weights.shape().to_string());
    const auto n_bad = backend_traits<B>::transform_reduce(weights.data(), weights.size(), std::int64_t(0),
                                                           detail::is_bad_weight{}, plus{});
    if (n_bad == 0) return;
    tensor<std::int64_t, B> flags(weights.shape());
    backend_traits<B>::transform(weights.data(), weights.size(), flags.data(), detail::is_bad_weight{});
    detail::throw_if_flagged(flags, std::string(who) + ": weights");
}

/// The patch distribution f(g_i) = w_i / sum_k w_k of every row (N x L). A row whose total is 0
/// has no distribution and stays all-zero (the sampler gives such rows a uniform permutation).
template <class W, class B>
tensor<W, B> patch_distribution(const tensor<W, B>& weights) {
    check_weights(weights, "masking::patch_distribution");
    const index_t n = weights.dim(0), l = weights.dim(1);
    tensor<W, B> out(weights.shape());
    const W* w = weights.data();
    W* f = out.data();
    // One work item per row: the row total in a fixed order, then the division.
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        double total = 0.0;
        for (index_t j = 0; j < l; ++j) total += static_cast<double>(w[i * l + j]);
        for (index_t j = 0; j < l; ++j)
            f[i * l + j] = total > 0.0 ? static_cast<W>(static_cast<double>(w[i * l + j]) / total) : W(0);
    });
    return out;
}

}  // namespace vasomim::masking
