#pragma once
// The Hessian of one pixel in double with scipy's exact two-stage boundary handling along each
// axis, for the few pixels whose fast (float or trimmed-kernel) value cannot be trusted: the
// composite weights of two successive 1-D passes along an axis, laid over the pixel's window.
// checked_sato and frangi's trimmed-kernel path recompute their doubtful pixels with it.

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "vasomim/vessel/boundary.hpp"
#include "vasomim/vessel/gaussian.hpp"
#include "vasomim/vessel/hessian.hpp"

namespace vasomim::vessel::detail {

/// Two-stage weights along one line of n samples at position `pos`: the functional
/// x -> sum_a k2[a] * A(map(pos + a)), A(m) = sum_b k1[b] * x(map(m + b)), as dense weights on
/// positions [lo, lo + w.size()).
struct line_weights {
    std::int64_t lo = 0;
    std::vector<double> w;
};

/// Weights held elsewhere: w[0 .. n) on positions [lo, lo + n).
struct weight_span {
    std::int64_t lo = 0;
    const double* w = nullptr;
    std::size_t n = 0;
};

inline line_weights two_stage_weights(std::int64_t pos, std::int64_t n, const kernel_taps<double>& k1,
                                      const kernel_taps<double>& k2, boundary_mode mode) {
    const int r1 = k1.radius, r2 = k2.radius;
    std::int64_t lo = n, hi = -1;
    for (int a = -r2; a <= r2; ++a) {
        const std::int64_t m = map_index(pos + a, n, mode);
        if (m - r1 >= 0 && m + r1 < n) {
            lo = std::min(lo, m - r1);
            hi = std::max(hi, m + r1);
        } else {
            for (int b = -r1; b <= r1; ++b) {
                const std::int64_t t = map_index(m + b, n, mode);
                lo = std::min(lo, t);
                hi = std::max(hi, t);
            }
        }
    }
    line_weights lw;
    lw.lo = lo;
    lw.w.assign(static_cast<std::size_t>(hi - lo + 1), 0.0);
    for (int a = -r2; a <= r2; ++a) {
        const std::int64_t m = map_index(pos + a, n, mode);
        const double c2 = k2.taps[static_cast<std::size_t>(a + r2)];
        if (m - r1 >= 0 && m + r1 < n) {  // no mapping: a contiguous axpy
            double* __restrict dst = lw.w.data() + (m - r1 - lo);
            const double* __restrict src = k1.taps.data();
            for (int b = 0; b <= 2 * r1; ++b) dst[b] += c2 * src[b];
            continue;
        }
        for (int b = -r1; b <= r1; ++b) {
            const std::int64_t t = map_index(m + b, n, mode);
            lw.w[static_cast<std::size_t>(t - lo)] += c2 * k1.taps[static_cast<std::size_t>(b + r1)];
        }
    }
    return lw;
}

/// A vector of eight samples of a float or double plane.
template <class P>
struct eight_samples;
template <>
struct eight_samples<float> {
    typedef float type __attribute__((vector_size(32)));
};
template <>
struct eight_samples<double> {
    typedef double type __attribute__((vector_size(64)));
};

/// The three Hessian entries at one pixel, sum_t wr_k[t] * sum_u wc_k[u] * x(t, u) for k = rr, rc,
/// cc, where x(t, u) = double(p[t * cols + u]) + offset on a row-major float or double plane p of
/// `cols` columns (offset: the float plane of an integer image may be stored centred, as
/// checked_sato's is; the sum restores every sample exactly, so the results are those of the
/// double plane): the weights are laid on common row and column ranges, the rows are combined first
/// (one read of the window; each column sum adds its rows in order, so vectors across columns do
/// not reassociate), then three short dots. (Not 8-bit planes: GCC converts a vector of 8-bit
/// pixels element by element, which made reading the image here slower than copying it once.)
template <class P>
inline void hessian_at(const P* x, double offset, std::int64_t cols, const weight_span (&wr)[3],
                       const weight_span (&wc)[3], double (&out)[3], std::vector<double>& scratch) {
    static_assert(std::is_same_v<P, float> || std::is_same_v<P, double>);
    std::int64_t rlo = wr[0].lo, rhi = -1, clo = wc[0].lo, chi = -1;
    for (int k = 0; k < 3; ++k) {
        rlo = std::min(rlo, wr[k].lo);
        rhi = std::max(rhi, wr[k].lo + static_cast<std::int64_t>(wr[k].n) - 1);
        clo = std::min(clo, wc[k].lo);
        chi = std::max(chi, wc[k].lo + static_cast<std::int64_t>(wc[k].n) - 1);
    }
    const auto nr = static_cast<std::size_t>(rhi - rlo + 1), nc = static_cast<std::size_t>(chi - clo + 1);
    scratch.assign(3 * nr + 3 * nc + 3 * nc, 0.0);
    double* rw = scratch.data();       // 3 x nr row weights
    double* cw = rw + 3 * nr;          // 3 x nc column weights
    double* cs = cw + 3 * nc;          // 3 x nc column sums
    for (int k = 0; k < 3; ++k) {
        std::copy(wr[k].w, wr[k].w + wr[k].n, rw + k * nr + (wr[k].lo - rlo));
        std::copy(wc[k].w, wc[k].w + wc[k].n, cw + k * nc + (wc[k].lo - clo));
    }
    double* __restrict s0 = cs;
    double* __restrict s1 = cs + nc;
    double* __restrict s2 = cs + 2 * nc;
    // Strips of 16 columns with their six partial sums in registers over all rows (each sum still
    // adds its rows in order): the plain loop below reloads and stores the sums at every row. A
    // last strip that does not fit overlaps the one before (its columns' sums come out the same).
    using V = double __attribute__((vector_size(64)));
    using VP = typename eight_samples<P>::type;
    auto load8 = [offset](V& v, const P* p) {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<P, float>) {  // GCC's generic conversion goes four floats at a time
            const __m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(p));
            std::memcpy(&v, &d, sizeof v);
            v += offset;
            return;
        }
#endif
        VP raw;
        std::memcpy(&raw, p, sizeof raw);
        v = __builtin_convertvector(raw, V) + offset;
    };
    std::size_t u0 = 0;
    for (std::size_t next = 0; next < nc && nc >= 16; next += 16) {
        u0 = next + 16 <= nc ? next : nc - 16;
        V p0{}, p1{}, q0{}, q1{}, r0{}, r1{};
        for (std::size_t t = 0; t < nr; ++t) {
            const double a0 = rw[t], a1 = rw[nr + t], a2 = rw[2 * nr + t];
            const P* row = x + (rlo + static_cast<std::int64_t>(t)) * cols + clo + static_cast<std::int64_t>(u0);
            V v0, v1;  // vectors only through memory and references (-Wpsabi)
            load8(v0, row);
            load8(v1, row + 8);
            p0 += a0 * v0;
            p1 += a0 * v1;
            q0 += a1 * v0;
            q1 += a1 * v1;
            r0 += a2 * v0;
            r1 += a2 * v1;
        }
        std::memcpy(s0 + u0, &p0, sizeof p0);
        std::memcpy(s0 + u0 + 8, &p1, sizeof p1);
        std::memcpy(s1 + u0, &q0, sizeof q0);
        std::memcpy(s1 + u0 + 8, &q1, sizeof q1);
        std::memcpy(s2 + u0, &r0, sizeof r0);
        std::memcpy(s2 + u0 + 8, &r1, sizeof r1);
        u0 += 16;
    }
    for (std::size_t t = 0; t < nr && u0 < nc; ++t) {
        const double a0 = rw[t], a1 = rw[nr + t], a2 = rw[2 * nr + t];
        const P* __restrict row = x + (rlo + static_cast<std::int64_t>(t)) * cols + clo;
        for (std::size_t u = u0; u < nc; ++u) {
            const double v = static_cast<double>(row[u]) + offset;
            s0[u] += a0 * v;
            s1[u] += a1 * v;
            s2[u] += a2 * v;
        }
    }
    for (int k = 0; k < 3; ++k) {
        double acc = 0;
        for (std::size_t u = 0; u < nc; ++u) acc += cw[k * nc + u] * cs[k * nc + u];
        out[k] = acc;
    }
}

/// Two-stage weights with the interior case (the same composite kernel, shifted) computed once,
/// and those of the positions near the ends computed on first use and kept: real angiograms have
/// many doubtful pixels along their dark borders, and recomputing the weights per pixel took 10 %
/// of a pseudo-label. Shared by the threads of a recheck (std::call_once per position).
class weight_cache {
public:
    weight_cache(std::int64_t n, const kernel_taps<double>& k1, const kernel_taps<double>& k2, boundary_mode mode)
        : n_(n), reach_(k1.radius + k2.radius), k1_(k1), k2_(k2), mode_(mode),
          ends_(std::make_unique<ends>(static_cast<std::size_t>(std::min(n, 2 * reach_)))) {
        if (2 * reach_ < n_) interior_ = two_stage_weights(reach_, n_, k1_, k2_, mode_);
    }
    /// The weights at pos (0 <= pos < n): the shared interior ones, or the kept ones of an end.
    weight_span at(std::int64_t pos) const {
        if (pos - reach_ >= 0 && pos + reach_ < n_) return {pos - reach_, interior_.w.data(), interior_.w.size()};
        // ends: positions [0, reach) and [n - reach, n), or every position of a short line
        const std::int64_t e = n_ <= 2 * reach_ ? pos : (pos < reach_ ? pos : reach_ + pos - (n_ - reach_));
        const auto k = static_cast<std::size_t>(e);
        std::call_once(ends_->once[k], [&] { ends_->w[k] = two_stage_weights(pos, n_, k1_, k2_, mode_); });
        const line_weights& lw = ends_->w[k];
        return {lw.lo, lw.w.data(), lw.w.size()};
    }

private:
    struct ends {
        explicit ends(std::size_t count) : once(std::make_unique<std::once_flag[]>(count)), w(count) {}
        std::unique_ptr<std::once_flag[]> once;
        std::vector<line_weights> w;
    };
    std::int64_t n_, reach_;
    kernel_taps<double> k1_, k2_;
    boundary_mode mode_;
    line_weights interior_;
    std::unique_ptr<ends> ends_;  // behind a pointer: once_flag cannot move, the cache must
};


/// The exact Hessian of sign * image at single pixels for one sigma: scipy's full kernels
/// (hessian_options' truncate rule, no trimmed taps), in scikit-image's pass order per axis
/// (rows: axis 0, cols: axis 1).
class pixel_hessian {
public:
    pixel_hessian(std::int64_t rows, std::int64_t cols, double sigma, const hessian_options& o)
        : pixel_hessian(rows, cols, make_taps<double>(sigma / std::sqrt(2.0), 0, hessian_truncate(sigma, o), kernel_precision::exact),
                        make_taps<double>(sigma / std::sqrt(2.0), 1, hessian_truncate(sigma, o), kernel_precision::exact), o.mode) {}

    /// (rr, rc, cc) at (i, j) of the row-major plane x + offset (see hessian_at) of `cols` columns.
    template <class P>
    void at(const P* x, double offset, std::int64_t cols, std::int64_t i, std::int64_t j, double (&out)[3],
            std::vector<double>& scratch) const {
        const weight_span wr[3] = {r_dd_.at(i), r_dg_.at(i), r_gg_.at(i)};
        const weight_span wc[3] = {c_gg_.at(j), c_gd_.at(j), c_dd_.at(j)};
        hessian_at(x, offset, cols, wr, wc, out, scratch);
    }

private:
    pixel_hessian(std::int64_t rows, std::int64_t cols, const kernel_taps<double>& g, const kernel_taps<double>& d,
                  boundary_mode mode)
        : r_dd_(rows, d, d, mode),
          r_dg_(rows, d, g, mode),
          r_gg_(rows, g, g, mode),
          c_gg_(cols, g, g, mode),
          c_gd_(cols, g, d, mode),
          c_dd_(cols, d, d, mode) {}
    weight_cache r_dd_, r_dg_, r_gg_, c_gg_, c_gd_, c_dd_;
};

}  // namespace vasomim::vessel::detail

#endif  // !VASOMIM_HAS_CUDA
