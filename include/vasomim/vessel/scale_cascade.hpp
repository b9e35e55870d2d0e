#pragma once
// A cascade across scales for the Hessian entries of the pseudo-label (reflect mode, values wanted
// only inside a border). Each entry at sigma is, along each axis, two scipy passes at sigma/sqrt 2;
// away from the edges it is the image's reflection convolved with the two passes' composite kernel,
// whose variance is sigma^2. Those composites C(sigma) continue from one scale to the next by one
// Gaussian pass per axis at sqrt(sigma_k^2 - sigma_{k-1}^2): 6 passes of that radius instead of
// scipy's 10 at sigma_k / sqrt 2 (checked_sato continues the pipeline's sigma 3 from sigma 2 and 4
// from 3).
//
// Exactness, as a bound that checked_sato folds into its float error bound (so the uint8 values stay
// exact, and pixels in doubt are recomputed with scipy's own passes):
// - C extends itself oddly along an axis whose composite kernel is antisymmetric (Hrc on both axes)
//   and evenly otherwise; hessian_cpu(composite) and cascade_cpu extend it so, which makes the
//   computed planes C exactly (no edge effect), up to rounding and trimmed taps.
// - The identity G_a * G_b = G_sqrt(a^2+b^2) holds for sampled kernels only up to aliasing
//   (~exp(-2 pi^2 a^2)): the difference of the composite kernels is computed here in double and
//   bounded in L1 (`identity`), and a cascade is only used where it is negligible (sigma / sqrt 2 of
//   the source >= 1: ~1e-12 of the image's range, scipy's truncation at 8 sigma included).
// - scipy re-reflects the output of an antisymmetric pass instead of extending it oddly, so its
//   entries differ from C within the second pass's radius of the edges: by at most twice that
//   kernel's taps beyond the border times the first pass's output bound (`edge`), ~1e-11 relative
//   for sigma 4 and a 20-pixel border.

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "vasomim/vessel/gaussian.hpp"
#include "vasomim/vessel/hessian.hpp"

namespace vasomim::vessel::detail {

/// Correlation taps t[o + r], o in [-r, r], of scipy's kernel at s (order 0 or 1).
inline std::vector<double> scipy_taps(double s, int order, double truncate) {
    const int r = gaussian_radius(s, truncate);
    const auto w = gaussian_kernel1d(s, order, r);
    std::vector<double> t(w.size());
    for (int o = -r; o <= r; ++o) t[static_cast<std::size_t>(o + r)] = w[static_cast<std::size_t>(r - o)];
    return t;
}

/// Taps of the correlation by a then by b (their convolution).
inline std::vector<double> compose_taps(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> c(a.size() + b.size() - 1, 0.0);
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < b.size(); ++j) c[i + j] += a[i] * b[j];
    return c;
}

inline double l1_norm(const std::vector<double>& a) {
    double s = 0;
    for (double v : a) s += std::abs(v);
    return s;
}

/// L1 norm of a - b, both centred (odd sizes).
inline double l1_difference(const std::vector<double>& a, const std::vector<double>& b) {
    const auto ra = static_cast<std::int64_t>(a.size() / 2), rb = static_cast<std::int64_t>(b.size() / 2);
    const std::int64_t r = std::max(ra, rb);
    double s = 0;
    for (std::int64_t o = -r; o <= r; ++o) {
        const double x = std::abs(o) <= ra ? a[static_cast<std::size_t>(o + ra)] : 0.0;
        const double y = std::abs(o) <= rb ? b[static_cast<std::size_t>(o + rb)] : 0.0;
        s += std::abs(x - y);
    }
    return s;
}

/// L1 mass of the taps farther than b from the centre.
inline double tail_beyond(const std::vector<double>& a, std::int64_t b) {
    const auto r = static_cast<std::int64_t>(a.size() / 2);
    double s = 0;
    for (std::int64_t o = b + 1; o <= r; ++o) s += std::abs(a[static_cast<std::size_t>(r + o)]) + std::abs(a[static_cast<std::size_t>(r - o)]);
    return s;
}

/// The Hessian entries (0 rr, 1 rc, 2 cc) at sigma as scipy's passes make them along each axis:
/// first and second kernel, and their composite.
struct entry_axes {
    std::array<std::array<std::vector<double>, 2>, 3> first, second, composite;
    /// Whether the first pass along the axis is the antisymmetric one (d).
    static constexpr std::array<std::array<bool, 2>, 3> odd_first{{{true, false}, {true, false}, {false, true}}};
};

inline entry_axes entry_kernels(double sigma, const hessian_options& o) {
    const double s = sigma / std::sqrt(2.0), tr = hessian_truncate(sigma, o);
    const auto g = scipy_taps(s, 0, tr), d = scipy_taps(s, 1, tr);
    entry_axes e;
    // Per entry and axis, scipy's order: rr = (d, d) x (g, g), rc = (d, g) x (g, d), cc = (g, g) x (d, d).
    e.first = {{{d, g}, {d, g}, {g, d}}};
    e.second = {{{d, g}, {g, d}, {g, d}}};
    for (int k = 0; k < 3; ++k)
        for (int a = 0; a < 2; ++a) e.composite[k][a] = compose_taps(e.first[k][a], e.second[k][a]);
    return e;
}

/// Bound on |scipy's entry - C| at pixels at least `border` from every edge, per unit of the
/// image's half-range: the axes whose first pass is antisymmetric (scipy re-reflects its output).
inline std::array<double, 3> edge_bound(const entry_axes& e, std::int64_t border) {
    std::array<double, 3> out{};
    for (int k = 0; k < 3; ++k)
        for (int a = 0; a < 2; ++a) {
            if (!entry_axes::odd_first[static_cast<std::size_t>(k)][static_cast<std::size_t>(a)]) continue;
            out[k] += 2 * tail_beyond(e.second[k][a], border) * l1_norm(e.first[k][a]) * l1_norm(e.composite[k][1 - a]);
        }
    return out;
}

/// One step of the cascade from sigma_prev to sigma: the Gaussian at sqrt(sigma^2 - sigma_prev^2)
/// (scipy's sampling and normalisation, truncate 8), its float taps, and the identity's error per
/// entry and per unit of the image's half-range.
struct cascade_step {
    double sigma_delta = 0;
    std::vector<double> g;       ///< full double taps
    kernel_taps<float> taps;     ///< float taps, without the tap pairs below `trim` of the peak
    std::array<double, 3> identity{};
};

inline cascade_step make_cascade_step(double sigma_prev, double sigma, const hessian_options& o,
                                      double trim = 0x1p-24) {
    cascade_step st;
    st.sigma_delta = std::sqrt(sigma * sigma - sigma_prev * sigma_prev);
    st.g = scipy_taps(st.sigma_delta, 0, 8.0);
    st.taps = make_taps_rel<float>(st.sigma_delta, 0, 8.0, trim);
    const auto prev = entry_kernels(sigma_prev, o), next = entry_kernels(sigma, o);
    for (int k = 0; k < 3; ++k) {
        const auto b0 = compose_taps(st.g, prev.composite[k][0]), b1 = compose_taps(st.g, prev.composite[k][1]);
        st.identity[k] = l1_difference(next.composite[k][0], b0) * l1_norm(next.composite[k][1]) +
                         l1_norm(b0) * l1_difference(next.composite[k][1], b1);
    }
    return st;
}

/// max |p[q]| over n values (a 64-byte vector of running maxima).
template <class R>
R max_abs(const R* p, std::int64_t n) {
    using V = typename vec64<R>::type;
    constexpr int L = lanes64<R>;
    V acc{};
    std::int64_t q = 0;
    for (; q + L <= n; q += L) {
        V v;
        std::memcpy(&v, p + q, sizeof v);
        v = v < 0 ? -v : v;
        acc = acc > v ? acc : v;
    }
    R m = 0;
    for (; q < n; ++q) m = std::max(m, std::abs(p[q]));
    for (int l = 0; l < L; ++l) m = std::max(m, acc[l]);
    return m;
}

/// One cascade step on the host: out_e = (g x g) * in_e for the three entries of C (reflect mode:
/// even extension for rr and cc, odd for rc along both axes), by blocks of L rows (column pass,
/// then row pass by tiles or strips). sink(i, rr, rc, cc) gets the rows of the window (all rows
/// without one); with out planes (not null) the rows are also written there, else they live in
/// per-thread buffers. Only the window's columns are computed. Needs rows, cols > g's radius.
template <class R, class Sink>
void cascade_cpu(const std::array<const R*, 3>& in, std::int64_t rows, std::int64_t cols, const kernel_taps<R>& g,
                 const std::array<R*, 3>& out, const hessian_window* win, Sink&& sink) {
    const hessian_window all{0, rows, 0, cols};
    const hessian_window& w = win ? *win : all;
    constexpr auto mode = boundary_mode::reflect;
    const std::vector<R> cval_row(static_cast<std::size_t>(cols), R(0));
    odd_edges<R> rc_odd;
    rc_odd.build(in[1], rows, cols, g.radius);
    std::array<row_source<R>, 3> src;
    for (int e = 0; e < 3; ++e) src[static_cast<std::size_t>(e)] = row_source<R>{in[static_cast<std::size_t>(e)], rows, cols, mode, cval_row.data()};
    src[1].odd_top = rc_odd.top.data();
    src[1].odd_bottom = rc_odd.bottom.data();
    const auto gp = padded_taps(g);
    constexpr int L = lanes64<R>;
    const std::int64_t blocks = (rows + L - 1) / L;
#pragma omp parallel
    {
        margin_rows<R> mr(L, cols, g.radius);
        R* cin[L];
        for (int t = 0; t < L; ++t) cin[t] = mr[t];
        std::vector<const R*> ptrs(static_cast<std::size_t>(2 * g.radius + 4));
        row_tile_scratch<R> tiles;
        std::vector<R> own(out[0] ? 0 : static_cast<std::size_t>(3 * L * cols));
#pragma omp for schedule(static)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
            const std::int64_t i0 = L * blk;
            const int n = static_cast<int>(std::min<std::int64_t>(L, rows - i0));
            if (i0 + n <= w.row_begin || i0 >= w.row_end) continue;
            R* rowp[3][L];
            for (int e = 0; e < 3; ++e)
                for (int t = 0; t < L; ++t) {
                    const std::int64_t i = std::min(i0 + t, rows - 1);  // rows past the end are never written
                    rowp[e][t] = out[0] ? out[static_cast<std::size_t>(e)] + i * cols : own.data() + (e * L + t) * cols;
                }
            for (int e = 0; e < 3; ++e) {
                column_passes_block(src[static_cast<std::size_t>(e)], i0, n, g, gp, false, cin, ptrs.data());
                row_passes_block(cin, rowp[e], n, cols, g, false, mode, R(0), tiles, w.col_begin, w.col_end, e == 1);
            }
            sink_block_rows(i0, n, w, rowp[0], rowp[1], rowp[2], sink);
        }
    }
}

}  // namespace vasomim::vessel::detail

#endif  // !VASOMIM_HAS_CUDA
