#pragma once
// The 2-D Hessian of an image at scale sigma, as scikit-image >= 0.20 computes it with
// hessian_matrix(use_gaussian_derivatives=True): two successive first-order Gaussian-derivative
// passes of scipy.ndimage.gaussian_filter, each at sigma / sqrt(2), with truncate 8 when sigma > 1
// and 100 otherwise. Hrr = d_r(d_r I), Hrc = d_c(d_r I), Hcc = d_c(d_c I); no sigma^2 factor.
//
// D / G are the first-order / smoothing kernels at sigma / sqrt(2). Passes along different axes
// commute exactly when the boundary handling is linear (every mode but constant with cval != 0),
// so on the cpu backend the entries need 10 one-dimensional passes (subscript: axis):
//   P = G_1 D_0 I, Q = D_1 G_0 I;  Hrr = G_1 D_0 P, Hrc = D_1 G_0 P, Hcc = D_1 G_0 Q
// fused by blocks of 8 (double) or 16 (float) rows (column passes that load each input row once
// per four output rows, row passes on transposed tiles: row_tiles.hpp) and handed row by row to a
// sink, so that ridge filters need no Hessian planes. Other backends, and constant mode with
// cval != 0, run scikit-image's exact call order (12 passes), each pass a parallel_for over pixels.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/backend/backends.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/boundary.hpp"
#include "vasomim/vessel/gaussian.hpp"
#include "vasomim/vessel/row_tiles.hpp"

namespace vasomim::vessel {

/// Options shared by the Hessian and every ridge filter.
struct hessian_options {
    boundary_mode mode = boundary_mode::reflect;
    double cval = 0.0;  ///< outside value for mode constant
    kernel_precision precision = kernel_precision::exact;
    /// Kernel truncation in units of sigma/sqrt(2); unset = scikit-image's rule (8 if sigma > 1
    /// else 100). Must be >= 0.
    std::optional<double> truncate;
};

/// The truncation used at `sigma`.
inline double hessian_truncate(double sigma, const hessian_options& o) {
    return o.truncate ? *o.truncate : (sigma > 1 ? 8.0 : 100.0);
}

/// The three distinct Hessian entries, each an H x W plane.
template <class R, class B>
struct hessian_planes {
    tensor<R, B> rr, rc, cc;
};

namespace detail {

/// Scratch planes reused across sigmas.
template <class R, class B>
struct hessian_workspace {
    tensor<R, B> x, a, b, t;
};

inline void check_sigma(double sigma, const std::string& what) {
    if (!(sigma > 0) || !std::isfinite(sigma))
        throw value_error(what + ": sigma must be finite and > 0, got " + std::to_string(sigma));
}

inline void check_hessian_options(const hessian_options& o, const std::string& what) {
    if (o.truncate && (!(*o.truncate >= 0) || !std::isfinite(*o.truncate)))
        throw value_error(what + ": truncate must be finite and >= 0, got " + std::to_string(*o.truncate));
    if (!std::isfinite(o.cval)) throw value_error(what + ": cval must be finite, got " + std::to_string(o.cval));
    const int m = static_cast<int>(o.mode);
    if (m < 0 || m > 4) throw config_error(what + ": unknown boundary mode " + std::to_string(m));
}

/// The two kernels of the Hessian at sigma: smoothing g and first derivative d at sigma / sqrt 2.
template <class R>
struct hessian_kernels {
    kernel_taps<R> g, d;
};

/// ridge: the ridge filters' kernels, whose exact mode drops taps up to 1e-12 of the L1 norm
/// (make_taps_l1; held to their 1e-5 parity bar); otherwise scipy's kernels (the Hessian itself
/// is held to 1e-12).
template <class R>
hessian_kernels<R> make_hessian_kernels(double sigma, const hessian_options& o, bool ridge = false) {
    const double s = sigma / std::sqrt(2.0), truncate = hessian_truncate(sigma, o);
    if (ridge && o.precision == kernel_precision::exact)
        return {make_taps_l1<R>(s, 0, truncate, 1e-12), make_taps_l1<R>(s, 1, truncate, 1e-12)};
    return {make_taps<R>(s, 0, truncate, o.precision), make_taps<R>(s, 1, truncate, o.precision)};
}

#if !VASOMIM_HAS_CUDA
// ---- cpu: fused, vectorisable row loops -----------------------------------------------------------

/// The input rows of a column pass over a contiguous rows x cols plane: row ii (any integer) is the
/// plane's row under `mode`, cval_row outside (constant). With odd edges (odd_top not null), rows
/// outside are the reflected rows negated (reflect mode's odd extension; odd_top holds rows
/// 0, 1, ... negated, odd_bottom rows rows-1, rows-2, ..., as many as the kernel's radius): the
/// natural extension of a plane that an antisymmetric pass produced (scale_cascade.hpp).
template <class R>
struct row_source {
    const R* plane;
    std::int64_t rows, cols;
    boundary_mode mode;
    const R* cval_row;
    const R* odd_top = nullptr;
    const R* odd_bottom = nullptr;
    const R* operator()(std::int64_t ii) const {
        if (odd_top && (ii < 0 || ii >= rows))
            return ii < 0 ? odd_top + (-1 - ii) * cols : odd_bottom + (ii - rows) * cols;
        const std::int64_t m = map_index(ii, rows, mode);
        return m < 0 ? cval_row : plane + m * cols;
    }
};

/// Negated copies of the first and last r rows of a rows x cols plane (r <= rows): row_source's
/// odd edges.
template <class R>
struct odd_edges {
    std::vector<R> top, bottom;
    void build(const R* plane, std::int64_t rows, std::int64_t cols, int r) {
        top.resize(static_cast<std::size_t>(r * cols));
        bottom.resize(static_cast<std::size_t>(r * cols));
        for (int q = 0; q < r; ++q)
            for (std::int64_t j = 0; j < cols; ++j) {
                top[static_cast<std::size_t>(q * cols + j)] = -plane[q * cols + j];
                bottom[static_cast<std::size_t>(q * cols + j)] = -plane[(rows - 1 - q) * cols + j];
            }
    }
};

/// out = column (axis-0) correlation at row i of a contiguous rows x cols plane.
template <class R>
inline void column_pass_row(const row_source<R>& row, std::int64_t i, const kernel_taps<R>& k, bool antisymmetric,
                            R* __restrict out) {
    const std::int64_t cols = row.cols;
    const R* c = k.taps.data() + k.radius;
    const R* p0 = row(i);
    const R c0 = c[0];
    for (std::int64_t j = 0; j < cols; ++j) out[j] = c0 * p0[j];
    // Four taps per sweep: the output row is loaded and stored once per four taps, not per tap.
    const R sg = antisymmetric ? R(-1) : R(1);
    int o = 1;
    for (; o + 3 <= k.radius; o += 4) {
        const R* __restrict p1 = row(i + o);
        const R* __restrict m1 = row(i - o);
        const R* __restrict p2 = row(i + o + 1);
        const R* __restrict m2 = row(i - o - 1);
        const R* __restrict p3 = row(i + o + 2);
        const R* __restrict m3 = row(i - o - 2);
        const R* __restrict p4 = row(i + o + 3);
        const R* __restrict m4 = row(i - o - 3);
        const R w1 = c[o], w2 = c[o + 1], w3 = c[o + 2], w4 = c[o + 3];
        for (std::int64_t j = 0; j < cols; ++j)
            out[j] += (w1 * (p1[j] + sg * m1[j]) + w2 * (p2[j] + sg * m2[j])) +
                      (w3 * (p3[j] + sg * m3[j]) + w4 * (p4[j] + sg * m4[j]));
    }
    for (; o <= k.radius; ++o) {
        const R* __restrict pp = row(i + o);
        const R* __restrict pm = row(i - o);
        const R w = c[o];
        for (std::int64_t j = 0; j < cols; ++j) out[j] += w * (pp[j] + sg * pm[j]);
    }
}

/// Column correlation at the four rows i0..i0+3 (inside the plane) of a contiguous rows x cols
/// plane (cols >= 2 vectors), into out[0..3]. Each input row is loaded once per four output rows
/// and the partial sums of a two-vector strip stay in registers: column_pass_row loads two rows
/// from L2 per tap pair, which bounds it; this one is bound by arithmetic. Each output sums its
/// 2r + 4 products in sequence (double) or in two chains of r + 2 (float: even and odd input rows;
/// the float error bound of checked_sato counts this depth; `padded` holds the 2r + 1 taps with
/// three zeros on each side, so that input row q's tap for output t is padded[q + 3 - t]; the
/// products with those zeros are skipped, which changes no bit). `ptrs` is scratch for 2r + 4 row
/// pointers. Radius: int, or std::integral_constant<int, r> (the loop over the input rows then
/// unrolls in full, and a tap broadcast for one row serves the next rows' outputs too; the same
/// sums).
template <class R, class Radius>
inline void column_pass_rows4(const row_source<R>& src, std::int64_t i0, const R* padded, Radius radius_arg,
                              R* const* out, const R** ptrs) {
    const int radius = static_cast<int>(radius_arg);
    using V = typename vec64<R>::type;
    constexpr std::int64_t L = 64 / sizeof(R), W = 2 * L;
    const std::int64_t cols = src.cols;
    const int nk = 2 * radius + 4;
    if (i0 - radius >= 0 && i0 - radius + nk <= src.rows)  // inside: no boundary to map
        for (int q = 0; q < nk; ++q) ptrs[q] = src.plane + (i0 - radius + q) * cols;
    else
        for (int q = 0; q < nk; ++q) ptrs[q] = src(i0 - radius + q);
    // Vectors go through references only: GCC's ABI for passing or returning a 64-byte vector by
    // value changes without AVX-512 (-Wpsabi).
    auto load = [](V& v, const R* p) { std::memcpy(&v, p, sizeof v); };
    auto store = [](R* p, const V& v) { std::memcpy(p, &v, sizeof v); };
    // acc[t][h] += c[-t] * x_h for t in [lo, hi]: input row q into the sums of the output rows it
    // has a tap for. The first and last three input rows meet only some outputs (the others' taps
    // are the padding's zeros, which would add exact zeros): skipping those products changes no bit.
    auto add_row = [](auto lo, auto hi, V (&acc)[4][2], const R* c, const V& x0, const V& x1) {
        for (int t = lo(); t <= hi(); ++t) {
            acc[t][0] += c[-t] * x0;
            acc[t][1] += c[-t] * x1;
        }
    };
    using I0 = std::integral_constant<int, 0>;
    using I1 = std::integral_constant<int, 1>;
    using I2 = std::integral_constant<int, 2>;
    using I3 = std::integral_constant<int, 3>;
    for (std::int64_t j0 = 0; j0 < cols; j0 += W) {
        const std::int64_t j = j0 + W <= cols ? j0 : cols - W;  // last strip may overlap: same values again
        V a[4][2]{}, b[4][2]{};
        // Input row q into chain acc (padded[q + 3 - t]: its tap for output t).
        auto row = [&](int q, auto lo, auto hi, V (&acc)[4][2]) {
            V x0, x1;
            load(x0, ptrs[q] + j);
            load(x1, ptrs[q] + j + L);
            add_row(lo, hi, acc, padded + q + 3, x0, x1);
        };
        // One chain per output (double); float: two chains per output (even and odd input rows),
        // added at the end, half the summation depth of one chain (checked_sato's float error
        // bound counts it).
        constexpr bool two_chains = std::is_same_v<R, float>;
        V(&odd)[4][2] = two_chains ? b : a;  // the chain of odd input rows
        if (radius >= 2) {
            row(0, I0{}, I0{}, a);
            row(1, I0{}, I1{}, odd);
            row(2, I0{}, I2{}, a);
#pragma GCC unroll 16
            for (int q = 3; q < 2 * radius; q += 2) {  // 2r - 2 rows: pairs
                row(q, I0{}, I3{}, odd);
                row(q + 1, I0{}, I3{}, a);
            }
            row(2 * radius + 1, I1{}, I3{}, odd);
            row(2 * radius + 2, I2{}, I3{}, a);
            row(2 * radius + 3, I3{}, I3{}, odd);
        } else {
            for (int q = 0; q < nk; q += 2) {  // nk is even
                row(q, I0{}, I3{}, a);
                row(q + 1, I0{}, I3{}, odd);
            }
        }
        for (int t = 0; t < 4; ++t) {  // b is zero for double: adding it is exact
            store(out[t] + j, a[t][0] + b[t][0]);
            store(out[t] + j + L, a[t][1] + b[t][1]);
        }
    }
}

/// Kernel taps laid out for column_pass_rows4: three zeros, the 2r + 1 taps, three zeros.
template <class R>
std::vector<R> padded_taps(const kernel_taps<R>& k) {
    std::vector<R> p(k.taps.size() + 6, R(0));
    std::copy(k.taps.begin(), k.taps.end(), p.begin() + 3);
    return p;
}

/// Column correlation at rows i0 .. i0 + n - 1 (n <= 4): blocked when possible, row by row otherwise.
template <class R>
inline void column_pass_rows(const row_source<R>& src, std::int64_t i0, int n, const kernel_taps<R>& k,
                             const std::vector<R>& padded, bool antisymmetric, R* const* out, const R** ptrs) {
    if (n == 4 && src.cols >= 2 * std::int64_t(64 / sizeof(R))) {
        if (fixed_radius<R>(k.radius))
            with_fixed_radius(k.radius, [&](auto r) { column_pass_rows4(src, i0, padded.data(), r, out, ptrs); });
        else
            column_pass_rows4(src, i0, padded.data(), k.radius, out, ptrs);
        return;
    }
    for (int t = 0; t < n; ++t) column_pass_row(src, i0 + t, k, antisymmetric, out[t]);
}

/// row[j] = c[0] x[j] + sum_{o=1..r} c[o] (x[j+o] +- x[j-o]) for j in [jb, je) (je - jb >= two
/// vectors), x = centre (extended by r on each side), by strips of two vectors with direct_sums
/// (float, r <= 15) or four_chain_sums (row_tiles.hpp). Each output's sum is the same whichever
/// strip holds it.
template <class R, bool Anti>
inline void row_pass_strips(R* __restrict row, std::int64_t jb, std::int64_t je, const R* c, int r,
                            const R* __restrict centre) {
    using V = typename vec64<R>::type;
    constexpr std::int64_t L = 64 / sizeof(R), W = 2 * L;
    // Vectors go through references only (see column_pass_rows4).
    auto load = [](V& v, const R* p) { std::memcpy(&v, p, sizeof v); };
    if (fixed_radius<R>(r)) {  // short float kernels: the direct form (direct_sums)
        with_fixed_radius(r, [&](auto d) {
            for (std::int64_t j0 = jb; j0 < je; j0 += W) {
                const std::int64_t j = j0 + W <= je ? j0 : je - W;
                const R* x = centre + j;
                V res[2];
                direct_sums<decltype(d)::value, static_cast<int>(L)>(res, c, [&](V& v, int q) { load(v, x + q); });
                std::memcpy(row + j, &res[0], sizeof(V));
                std::memcpy(row + j + L, &res[1], sizeof(V));
            }
        });
        return;
    }
    for (std::int64_t j0 = jb; j0 < je; j0 += W) {
        const std::int64_t j = j0 + W <= je ? j0 : je - W;  // last strip may overlap: same values again
        const R* x = centre + j;  // output vector h = 0, 1 starts at x + h L
        V x0[2];
        load(x0[0], x);
        load(x0[1], x + L);
        x0[0] = c[0] * x0[0];
        x0[1] = c[0] * x0[1];
        V res[2];
        four_chain_sums(res, x0, c, r, [&](V& acc, R w, int h, int o) {
            V p, m;
            load(p, x + h * L + o);
            load(m, x + h * L - o);
            acc += w * (Anti ? p - m : p + m);
        });
        std::memcpy(row + j, &res[0], sizeof(V));
        std::memcpy(row + j + L, &res[1], sizeof(V));
    }
}

/// Row (axis-1) correlation of `in` (cols samples) into `out` (another row): in[-r .. -1] and
/// in[cols .. cols + r - 1] must be writable, the boundary extension goes there (so a row is not
/// copied into a buffer first). Outputs outside [jb, je) may be left as they were (all are computed
/// when the range is narrower than two vectors). `odd`: the samples outside are the mapped ones
/// negated (see row_source).
template <class R>
inline void row_pass_padded(R* __restrict in, R* __restrict out, std::int64_t cols, const kernel_taps<R>& k,
                            bool antisymmetric, boundary_mode mode, R cval, std::int64_t jb = 0, std::int64_t je = -1,
                            bool odd = false) {
    if (je < 0) je = cols;
    const int r = k.radius;
    const R sign = odd ? R(-1) : R(1);
    for (std::int64_t t = -r; t < 0; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        in[t] = m < 0 ? cval : sign * in[m];
    }
    for (std::int64_t t = cols; t < cols + r; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        in[t] = m < 0 ? cval : sign * in[m];
    }
    const R* c = k.taps.data() + r;
    const R* __restrict centre = in;
    constexpr std::int64_t W = 2 * std::int64_t(64 / sizeof(R));
    if (je - jb < W) jb = 0, je = cols;
    if (je - jb >= W) {
        if (antisymmetric) row_pass_strips<R, true>(out, jb, je, c, r, centre);
        else row_pass_strips<R, false>(out, jb, je, c, r, centre);
        return;
    }
    const R c0 = c[0];
    for (std::int64_t j = 0; j < cols; ++j) out[j] = c0 * centre[j];
    const R sg = antisymmetric ? R(-1) : R(1);
    int o = 1;
    for (; o + 3 <= r; o += 4) {
        const R w1 = c[o], w2 = c[o + 1], w3 = c[o + 2], w4 = c[o + 3];
        for (std::int64_t j = 0; j < cols; ++j)
            out[j] += (w1 * (centre[j + o] + sg * centre[j - o]) + w2 * (centre[j + o + 1] + sg * centre[j - o - 1])) +
                      (w3 * (centre[j + o + 2] + sg * centre[j - o - 2]) + w4 * (centre[j + o + 3] + sg * centre[j - o - 3]));
    }
    for (; o <= r; ++o) {
        const R w = c[o];
        for (std::int64_t j = 0; j < cols; ++j) out[j] += w * (centre[j + o] + sg * centre[j - o]);
    }
}

/// In-place row_pass_padded of `row` (cols samples) using `buf` (cols + 2r samples).
template <class R>
inline void row_pass(R* row, std::int64_t cols, const kernel_taps<R>& k, bool antisymmetric, boundary_mode mode,
                     R cval, R* __restrict buf, std::int64_t jb = 0, std::int64_t je = -1, bool odd = false) {
    std::copy(row, row + cols, buf + k.radius);
    row_pass_padded(buf + k.radius, row, cols, k, antisymmetric, mode, cval, jb, je, odd);
}

/// Per-thread rows that the column passes fill and the row passes read: each with `margin`
/// writable samples on both sides for row_pass_padded's boundary extension.
template <class R>
class margin_rows {
public:
    margin_rows(int count, std::int64_t cols, int margin)
        : margin_((margin + lanes64<R> - 1) / lanes64<R> * lanes64<R>),  // rows stay 64-byte aligned
          stride_((cols + lanes64<R> - 1) / lanes64<R> * lanes64<R> + 2 * margin_),
          data_(static_cast<std::size_t>(count * stride_)) {}
    R* operator[](int t) { return data_.data() + t * stride_ + margin_; }

private:
    std::int64_t margin_, stride_;
    typename backend_traits<backend::cpu>::template vector<R> data_;
};

/// Whether the fused cpu path (hessian_cpu) may reorder passes across axes: exact for linear
/// boundary handling, i.e. every mode but constant with cval != 0 (affine).
inline bool reorderable(const hessian_options& o) { return !(o.mode == boundary_mode::constant && o.cval != 0.0); }

/// Row i of sign * image, converted to R, into dst (the contiguous case in its own loop, which
/// vectorises).
template <class T, class R>
inline void copy_signed_row(const tensor_view<const T, backend::cpu>& image, std::int64_t i, R sign, R* __restrict dst) {
    const std::int64_t cols = image.dim(1), s1 = image.stride(1);
    const T* row = image.data() + i * image.stride(0);
    if (s1 == 1)
        for (std::int64_t j = 0; j < cols; ++j) dst[j] = sign * static_cast<R>(row[j]);
    else
        for (std::int64_t j = 0; j < cols; ++j) dst[j] = sign * static_cast<R>(row[j * s1]);
}

/// sign * image as a contiguous rows x cols plane of R: the image itself when it already is one,
/// otherwise converted into ws.x.
template <class T, class R>
const R* signed_plane(const tensor_view<const T, backend::cpu>& image, R sign, hessian_workspace<R, backend::cpu>& ws) {
    if constexpr (std::is_same_v<T, R>) {
        if (sign == R(1) && image.is_contiguous()) return image.data();
    }
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    if (!(ws.x.shape() == shape{rows, cols})) ws.x = tensor<R, backend::cpu>(shape{rows, cols});
    R* xd = ws.x.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < rows; ++i) copy_signed_row(image, i, sign, xd + i * cols);
    return xd;
}

/// A window of the image: rows [row_begin, row_end) x columns [col_begin, col_end).
struct hessian_window {
    std::int64_t row_begin, row_end, col_begin, col_end;
};

// The steps of one block of L rows (the lanes of a 64-byte vector), shared by hessian_cpu and the
// scale cascade (scale_cascade.hpp).

/// Column passes of rows i0 .. i0 + n - 1, four at a time, into out[0 .. n - 1].
template <class R>
inline void column_passes_block(const row_source<R>& in, std::int64_t i0, int n, const kernel_taps<R>& k,
                                const std::vector<R>& padded, bool anti, R* const* out, const R** ptrs) {
    for (int t = 0; t < n; t += 4) column_pass_rows(in, i0 + t, std::min(4, n - t), k, padded, anti, out + t, ptrs);
}

/// Row passes of the n rows in[0 .. n - 1] (margin rows, see row_pass_padded) into
/// out[0 .. n - 1], outputs in columns [jb, je): by tiles for a full block and a long kernel, row
/// by row otherwise (the same sums either way). `odd`: see row_pass_padded.
template <class R>
inline void row_passes_block(R* const* in, R* const* out, int n, std::int64_t cols, const kernel_taps<R>& k, bool anti,
                             boundary_mode mode, R cval, row_tile_scratch<R>& tiles, std::int64_t jb, std::int64_t je,
                             bool odd = false) {
    if (n == lanes64<R> && cols >= 2 && row_tiles_pay<R>(k.radius)) {
        row_pass_tile(in, out, cols, k, anti, mode, cval, tiles, jb, je, odd);
        return;
    }
    for (int t = 0; t < n; ++t) row_pass_padded(in[t], out[t], cols, k, anti, mode, cval, jb, je, odd);
}

/// sink(i, rr, rc, cc) for the rows i of the block i0 .. i0 + n - 1 that lie in the window.
template <class R, class Sink>
inline void sink_block_rows(std::int64_t i0, int n, const hessian_window& w, R* const* rr, R* const* rc, R* const* cc,
                            Sink& sink) {
    for (int t = std::max<int>(0, static_cast<int>(w.row_begin - i0)); t < n && i0 + t < w.row_end; ++t)
        sink(i0 + t, static_cast<const R*>(rr[t]), static_cast<const R*>(rc[t]), static_cast<const R*>(cc[t]));
}

/// The Hessian of sign * image, row by row: for every row i (rows in parallel, each once) calls
/// sink(i, rr, rc, cc) with the three entry rows. With planes (rr, rc, cc not null) the rows are
/// written there; otherwise they live in per-thread buffers only valid during the call. With a
/// window (not null), sink is called for its rows only, and only the entries in its columns are
/// computed (the others hold unspecified values): the pseudo-label needs no values in its border.
/// Ten passes, the axis-0 ones first within each entry (operators on different axes commute):
///   P = G_1 D_0 x, Q = D_1 G_0 x  (one plane each)
///   Hrr = G_1 D_0 P, Hrc = D_1 G_0 P, Hcc = D_1 G_0 Q.
/// `composite` (reflect mode, kernel radii below the image's sides): the second passes over an
/// antisymmetric pass's output (D_0 and G_0 over P, D_1 over G_0 Q) extend it oddly, as that
/// output extends itself, instead of re-reflecting it as scipy does: the entries are then the
/// image's reflection convolved with each entry's composite kernels, which differ from scipy's only
/// within a kernel radius of the edges and which a cascade across scales can continue
/// (scale_cascade.hpp).
template <class T, class R, class Sink>
void hessian_cpu(const tensor_view<const T, backend::cpu>& image, const kernel_taps<R>& g, const kernel_taps<R>& d,
                 boundary_mode mode, R cval, R sign, hessian_workspace<R, backend::cpu>& ws, R* rr, R* rc, R* cc,
                 const hessian_window* win, bool composite, Sink&& sink) {
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    const hessian_window all{0, rows, 0, cols};
    const hessian_window& w = win ? *win : all;
    const shape sh{rows, cols};
    for (auto* t : {&ws.a, &ws.b})
        if (!(t->shape() == sh)) *t = tensor<R, backend::cpu>(sh);
    const R* x = signed_plane(image, sign, ws);
    const std::vector<R> cval_row(static_cast<std::size_t>(cols), cval);
    R* a = ws.a.data();
    R* b = ws.b.data();
    const int rmax = std::max(g.radius, d.radius);
    const auto gp = padded_taps(g), dp = padded_taps(d);
    const std::size_t nptrs = static_cast<std::size_t>(2 * rmax + 4);
    // Blocks of L rows (the lanes of a 64-byte vector): the column passes fill per-thread margin
    // rows four at a time, the row passes read them (by strips, or on transposed L x L tiles:
    // row_tiles.hpp) into the planes or the sink's rows.
    constexpr int L = lanes64<R>;
    const std::int64_t blocks = (rows + L - 1) / L;
    const row_source<R> xs{x, rows, cols, mode, cval_row.data()}, bs{b, rows, cols, mode, cval_row.data()};
    row_source<R> as{a, rows, cols, mode, cval_row.data()};
    odd_edges<R> a_odd;
    // The block's row passes under this call's mode and cval.
    auto row_passes = [&](R* const* in, R* const* out, int n, const kernel_taps<R>& k, bool anti,
                          row_tile_scratch<R>& tiles, std::int64_t jb, std::int64_t je, bool odd = false) {
        row_passes_block(in, out, n, cols, k, anti, mode, cval, tiles, jb, je, odd);
    };
    // Rows t of entry e's column passes in a block.
    auto column_rows = [](margin_rows<R>& m, int e, R* (&p)[L]) {
        for (int t = 0; t < L; ++t) p[t] = m[e * L + t];
    };
#pragma omp parallel
    {
        margin_rows<R> mr(2 * L, cols, rmax);
        R* ca[L];
        R* cb[L];
        column_rows(mr, 0, ca);
        column_rows(mr, 1, cb);
        std::vector<const R*> ptrs(nptrs);
        row_tile_scratch<R> tiles;
#pragma omp for schedule(static)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
            const std::int64_t i0 = L * blk;
            const int n = static_cast<int>(std::min<std::int64_t>(L, rows - i0));
            R* pa[L];
            R* pb[L];
            for (int t = 0; t < L; ++t) {
                const std::int64_t i = std::min(i0 + t, rows - 1);  // rows past the end are never written
                pa[t] = a + i * cols;
                pb[t] = b + i * cols;
            }
            column_passes_block(xs, i0, n, d, dp, true, ca, ptrs.data());
            column_passes_block(xs, i0, n, g, gp, false, cb, ptrs.data());
            row_passes(ca, pa, n, g, false, tiles, 0, cols);
            row_passes(cb, pb, n, d, true, tiles, 0, cols);
        }
    }
    if (composite) {  // P's odd extension along axis 0 for the second column passes
        a_odd.build(a, rows, cols, std::max(g.radius, d.radius));
        as.odd_top = a_odd.top.data();
        as.odd_bottom = a_odd.bottom.data();
    }
#pragma omp parallel
    {
        margin_rows<R> mr(3 * L, cols, rmax);
        R* crr[L];
        R* crc[L];
        R* ccc[L];
        column_rows(mr, 0, crr);
        column_rows(mr, 1, crc);
        column_rows(mr, 2, ccc);
        std::vector<const R*> ptrs(nptrs);
        row_tile_scratch<R> tiles;
        std::vector<R> own(rr ? 0 : static_cast<std::size_t>(3 * L * cols));
#pragma omp for schedule(static)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
            const std::int64_t i0 = L * blk;
            const int n = static_cast<int>(std::min<std::int64_t>(L, rows - i0));
            if (i0 + n <= w.row_begin || i0 >= w.row_end) continue;  // no row of the window
            R* prr[L];
            R* prc[L];
            R* pcc[L];
            for (int t = 0; t < L; ++t) {
                const std::int64_t i = std::min(i0 + t, rows - 1);  // rows past the end are never written
                prr[t] = rr ? rr + i * cols : own.data() + t * cols;
                prc[t] = rr ? rc + i * cols : own.data() + (L + t) * cols;
                pcc[t] = rr ? cc + i * cols : own.data() + (2 * L + t) * cols;
            }
            column_passes_block(as, i0, n, d, dp, true, crr, ptrs.data());
            column_passes_block(as, i0, n, g, gp, false, crc, ptrs.data());
            column_passes_block(bs, i0, n, g, gp, false, ccc, ptrs.data());
            row_passes(crr, prr, n, g, false, tiles, w.col_begin, w.col_end);
            row_passes(crc, prc, n, d, true, tiles, w.col_begin, w.col_end);
            row_passes(ccc, pcc, n, d, true, tiles, w.col_begin, w.col_end, composite);
            sink_block_rows(i0, n, w, prr, prc, pcc, sink);
        }
    }
}

struct no_sink {
    template <class R>
    void operator()(std::int64_t, const R*, const R*, const R*) const {}
};

/// Hessian rows of sign * image at sigma, with the ridge filters' kernels, handed to sink (see
/// hessian_cpu; win may be null); needs reorderable(o).
template <class T, class R, class Sink>
void hessian_rows(const tensor_view<const T, backend::cpu>& image, double sigma, const hessian_options& o, R sign,
                  hessian_workspace<R, backend::cpu>& ws, const hessian_window* win, Sink&& sink) {
    const auto k = make_hessian_kernels<R>(sigma, o, true);
    hessian_cpu(image, k.g, k.d, o.mode, static_cast<R>(o.cval), sign, ws, static_cast<R*>(nullptr), static_cast<R*>(nullptr),
                static_cast<R*>(nullptr), win, false, sink);
}

/// Scratch planes kept per calling thread for images up to 2 Mpixels (a batch of equal-sized
/// images allocates, and page-faults, once); larger images get planes freed on return.
template <class R>
hessian_workspace<R, backend::cpu>& cached_workspace(std::int64_t pixels, hessian_workspace<R, backend::cpu>& local) {
    static thread_local hessian_workspace<R, backend::cpu> kept;
    return pixels <= (std::int64_t(1) << 21) ? kept : local;
}
#endif

/// Computes the Hessian planes of sign * image at sigma into `h` (allocated by the caller).
template <class T, class R, class B>
void hessian_into(const tensor_view<const T, B>& image, double sigma, const hessian_options& o, R sign,
                  hessian_planes<R, B>& h, hessian_workspace<R, B>& ws, bool ridge = false) {
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    const auto kernels = make_hessian_kernels<R>(sigma, o, ridge);
    const kernel_taps<R>& g = kernels.g;
    const kernel_taps<R>& d = kernels.d;
    const shape sh{rows, cols};
    for (auto* t : {&h.rr, &h.rc, &h.cc, &ws.a, &ws.b})
        if (!(t->shape() == sh)) *t = tensor<R, B>(sh);
    const R cval = static_cast<R>(o.cval);
#if !VASOMIM_HAS_CUDA
    // The fused cpu path reorders passes across axes, which is exact for linear boundary handling;
    // mode constant with cval != 0 is affine, so it takes the call-order path below.
    if constexpr (std::is_same_v<B, backend::cpu>) {
        if (reorderable(o)) {
            hessian_cpu(image, g, d, o.mode, cval, sign, ws, h.rr.data(), h.rc.data(), h.cc.data(), nullptr, false, no_sink{});
            return;
        }
    }
#endif
    if (!(ws.t.shape() == sh)) ws.t = tensor<R, B>(sh);
    auto gt = tensor<R, B>::from_host(g.taps, shape{static_cast<index_t>(g.taps.size())});
    auto dt = tensor<R, B>::from_host(d.taps, shape{static_cast<index_t>(d.taps.size())});
    const std::int64_t n = rows * cols;
    const T* src = image.data();
    const std::int64_t s0 = image.stride(0), s1 = image.stride(1);
    auto pass_in = [&](const kernel_taps<R>& k, const R* taps, R* dst) {
        parallel_for<B>(n, axis_pass<T, R>{src, s0, s1, dst, taps, k.radius, rows, cols, 0, o.mode, cval, sign});
    };
    auto pass = [&](const R* in, const kernel_taps<R>& k, const R* taps, int axis, R* dst) {
        parallel_for<B>(n, axis_pass<R, R>{in, cols, 1, dst, taps, k.radius, rows, cols, axis, o.mode, cval, R(1)});
    };
    // scikit-image's exact call order: gaussian_filter(I, order) runs axis 0 then axis 1, and the
    // second derivative is a second gaussian_filter call on the first one's result.
    pass_in(d, dt.data(), ws.t.data());                 // D_0 I
    pass(ws.t.data(), g, gt.data(), 1, ws.a.data());     // grad_r = G_1 D_0 I
    pass_in(g, gt.data(), ws.t.data());                 // G_0 I
    pass(ws.t.data(), d, dt.data(), 1, ws.b.data());     // grad_c = D_1 G_0 I
    pass(ws.a.data(), d, dt.data(), 0, ws.t.data());
    pass(ws.t.data(), g, gt.data(), 1, h.rr.data());     // Hrr = G_1 D_0 grad_r
    pass(ws.a.data(), g, gt.data(), 0, ws.t.data());
    pass(ws.t.data(), d, dt.data(), 1, h.rc.data());     // Hrc = D_1 G_0 grad_r
    pass(ws.b.data(), g, gt.data(), 0, ws.t.data());
    pass(ws.t.data(), d, dt.data(), 1, h.cc.data());     // Hcc = D_1 G_0 grad_c
}

}  // namespace detail

/// Hessian planes of a 2-D image (at least 2 x 2, finite) at scale sigma > 0, computed in
/// compute_t<T> (float for float images, double otherwise). Throws value_error / shape_error /
/// config_error naming the problem.
template <class T, class B>
hessian_planes<compute_t<std::remove_const_t<T>>, B> hessian(tensor_view<T, B> image, double sigma,
                                                            const hessian_options& options = {}) {
    using In = std::remove_const_t<T>;
    using R = compute_t<In>;
    const tensor_view<const In, B> img(image.data(), image.shape(), image.strides());
    detail::require_image(img, "hessian");
    detail::check_sigma(sigma, "hessian");
    detail::check_hessian_options(options, "hessian");
    if (img.is_contiguous()) detail::require_finite<In, B>(img.data(), img.numel(), "hessian");
    hessian_planes<R, B> h;
    detail::hessian_workspace<R, B> ws;
    detail::hessian_into(img, sigma, options, R(1), h, ws);
    return h;
}

template <class T, class B>
hessian_planes<compute_t<T>, B> hessian(const tensor<T, B>& image, double sigma, const hessian_options& options = {}) {
    return hessian(image.view(), sigma, options);
}

}  // namespace vasomim::vessel
