#pragma once
// Frangi's exact mode on the host trims the kernels of every sigma after the first as far as a
// proven bound allows: the result stays within `tolerance` (default 1e-7) times the maximum of
// the response, a hundredth of the parity bar. Why it holds:
//
// - Every Hessian entry is four 1-D passes (two derivative, two smoothing) and annihilates
//   constants, so trimmed taps move an entry by at most
//   eps = m (2 drop_d |d| |g|^2 + 2 drop_g |d|^2 |g|), m = half the image's range, |.| = L1 norms,
//   drop = the L1 mass of the dropped taps. The eigenvalues move by at most 2 eps (Weyl, with the
//   Frobenius norm of the entry errors), and so does s = sqrt(l1^2 + l2^2).
// - Where the larger-magnitude eigenvalue l2 stays positive (trace > 2 eps and l2 - 2 eps > 1e-10)
//   the ordering and the clamp cannot change, and v = exp(-rb^2 / 2b^2) (1 - exp(-s^2 / 2c^2))
//   (b = beta, c = gamma) has
//     |dv/dl1| <= (e^-1/2 / b) min(1/c, L/c^2) + min(e^-1/2 / c, L/c^2),
//     |dv/dl2| <= (2/e)        min(1/c, L/c^2) + min(e^-1/2 / c, L/c^2),
//   L a bound on |l| (twice the entries' bound). The kernels are trimmed so that 2 eps times the
//   sum of both is at most tolerance * M1, M1 the maximum after the first sigma (<= the final one).
// - Where the trace is below -2 eps, l2 is clamped to 1e-10 for both; if |l1| > 2 eps + theta,
//   theta = 1e-10 b sqrt(1500), exp(-rb^2 / 2b^2) underflows to 0 for both.
// - Anywhere, v <= 1 - exp(-s^2 / 2c^2) <= s^2 / 2c^2, so a pixel with (s + 2 eps)^2 / 2c^2 <=
//   tolerance * M1 / 2 is within the bound whatever the ordering.
// - Every other pixel is left out of the maximum and recomputed in double with scipy's full
//   kernels (pixel_hessian.hpp); on real images there are few or none.

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "vasomim/vessel/gaussian.hpp"
#include "vasomim/vessel/hessian.hpp"

namespace vasomim::vessel::detail {

/// Kernels of one sigma trimmed for frangi, with what the per-pixel checks need.
struct frangi_trim {
    hessian_kernels<double> kernels;
    double two_eps = 0;    ///< 2 eps: bound on the eigenvalues' and s's displacement
    double theta = 0;      ///< |l1| above which exp(-rb^2 / 2b^2) underflows for clamped l2
    double s2_limit = -1;  ///< s^2 at or below which v itself is within the bound (-1: none; 0: s = 0 only)
};

/// L1 mass of the taps of w (radius r) beyond radius keep.
inline double dropped_l1(const std::vector<double>& w, int r, int keep) {
    double d = 0;
    for (int o = keep + 1; o <= r; ++o) d += std::abs(w[static_cast<std::size_t>(r - o)]) + std::abs(w[static_cast<std::size_t>(r + o)]);
    return d;
}

/// The trimmed kernels of `sigma` for a response bound of `budget` = tolerance * M1, on an image of
/// half-range m and largest magnitude mabs (which scales the rounding of the sums), with beta and
/// gamma as used by frangi.
inline frangi_trim make_frangi_trim(double sigma, const hessian_options& o, double m, double mabs, double beta,
                                    double gamma, double budget) {
    const double s = sigma / std::sqrt(2.0), truncate = hessian_truncate(sigma, o);
    const int r = gaussian_radius(s, truncate);
    const auto wg = gaussian_kernel1d(s, 0, r), wd = gaussian_kernel1d(s, 1, r);
    double l1g = 0, l1d = 0;
    for (double v : wg) l1g += std::abs(v);
    for (double v : wd) l1d += std::abs(v);
    const double hmax = m * l1d * l1d * l1g * l1g;  // bound on |entries|
    // Taps are never trimmed beyond cap * L1 per kernel, which keeps L below.
    constexpr double cap = 1e-4;
    // The double rounding of four passes (ours and scipy's), relative to the sums of |terms|, is
    // far below this slack.
    const double slack = 1e-12 * mabs * l1d * l1d * l1g * l1g;
    const double big = 2 * (hmax * (1 + 4 * cap) + slack);
    const double e12 = std::exp(-0.5), c = gamma;
    const double lip = (e12 / beta + 2 / std::exp(1.0)) * std::min(1 / c, big / (c * c)) +
                       2 * std::min(e12 / c, big / (c * c));
    const double eps_target = budget / (2 * lip);
    const double rel = hmax > 0 ? std::clamp((eps_target - slack) / (4 * hmax), 0.0, cap) : cap;
    frangi_trim t;
    t.kernels = {taps_from_weights<double>(wg, r, kept_radius_l1(wg, r, rel)),
                 taps_from_weights<double>(wd, r, kept_radius_l1(wd, r, rel))};
    const double drop_g = dropped_l1(wg, r, t.kernels.g.radius), drop_d = dropped_l1(wd, r, t.kernels.d.radius);
    const double eps = m * (2 * drop_d * l1d * l1g * l1g + 2 * drop_g * l1d * l1d * l1g) + slack;
    t.two_eps = 2 * eps;
    t.theta = 1e-10 * beta * std::sqrt(1500.0);
    // (s + 2 eps)^2 / 2c^2 <= budget / 2  <=>  s <= c sqrt(budget) - 2 eps.
    const double s_lim = c * std::sqrt(budget) - t.two_eps;
    t.s2_limit = s_lim >= 0 ? s_lim * s_lim : -1;
    return t;
}

}  // namespace vasomim::vessel::detail

#endif  // !VASOMIM_HAS_CUDA
