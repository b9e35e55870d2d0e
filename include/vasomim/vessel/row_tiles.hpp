#pragma once
// Row (axis-1) correlation of L image rows at once on a transposed tile, L = the lanes of a 64-byte
// vector (8 doubles, 16 floats). A row pass read straight from a row loads x[j + o] and x[j - o]
// at every offset o, and a 64-byte load that is not 64-byte aligned spans two cache lines, so the
// loads, not the arithmetic, bound it. Transposed, sample j of the L rows is one aligned vector,
// every tap is an aligned load, and the transposes in and out cost log2(L) shuffles per vector.
// The arithmetic per lane is row_pass_strips's, tap for tap and in the same order, so the results
// are the same bits (checked_sato's float error bound counts that summation depth).
//
// Host (GCC vector extensions) only; vectors go through references only, because GCC's ABI for
// passing or returning a 64-byte vector by value changes without AVX-512 (-Wpsabi).

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "vasomim/vessel/boundary.hpp"
#include "vasomim/vessel/gaussian.hpp"

namespace vasomim::vessel::detail {

/// A 64-byte vector of R (AVX-512 registers, or pairs of AVX2 ones), and the integer vector of the
/// same lane count that indexes its shuffles.
template <class R>
struct vec64;
template <>
struct vec64<double> {
    typedef double type __attribute__((vector_size(64)));
    typedef long long mask __attribute__((vector_size(64)));
};
template <>
struct vec64<float> {
    typedef float type __attribute__((vector_size(64)));
    typedef int mask __attribute__((vector_size(64)));
};

template <class R>
inline constexpr int lanes64 = static_cast<int>(64 / sizeof(R));

/// One butterfly stage of the L x L transpose: for the vector pair (v[i], v[i + b]) with
/// (i & b) == 0, lanes j with (j & b) != 0 of v[i] swap with lanes j - b of v[i + b]. Stages
/// b = 1, 2, ..., L/2 transpose the tile.
template <class R, int b, std::size_t... J>
inline void transpose_stage(typename vec64<R>::type (&v)[lanes64<R>], std::index_sequence<J...>) {
    using M = typename vec64<R>::mask;
    constexpr int L = lanes64<R>;
    // Two-source shuffle indices: 0..L-1 pick from the first vector, L..2L-1 from the second.
    const M lo = {((J & b) == 0 ? static_cast<int>(J) : L + static_cast<int>(J) - b)...};
    const M hi = {((J & b) == 0 ? static_cast<int>(J) + b : L + static_cast<int>(J))...};
    for (int i = 0; i < L; ++i) {
        if (i & b) continue;
        const auto a = __builtin_shuffle(v[i], v[i + b], lo);
        const auto c = __builtin_shuffle(v[i], v[i + b], hi);
        v[i] = a;
        v[i + b] = c;
    }
}

/// In-register transpose of an L x L tile held as L vectors (v[i] = row i).
template <class R>
inline void transpose_tile(typename vec64<R>::type (&v)[lanes64<R>]) {
    constexpr auto J = std::make_index_sequence<lanes64<R>>{};
    transpose_stage<R, 1>(v, J);
    transpose_stage<R, 2>(v, J);
    transpose_stage<R, 4>(v, J);
    if constexpr (lanes64<R> == 16) transpose_stage<R, 8>(v, J);
}

/// Whether row_pass_tile beats row passes read straight from the rows at this kernel radius: the
/// transposes cost about as much as a dozen (float) or two dozen (double) taps per sample, so short
/// kernels stay on the rows (measured on a 512-column block in L1/L2: float r = 15 even, r = 45
/// 1.4x faster; double r = 25 even, r = 45 1.1x).
template <class R>
constexpr bool row_tiles_pay(int radius) {
    return radius >= (sizeof(R) == 4 ? 16 : 24);
}

/// Per-thread scratch of row_pass_tile: the transposed, boundary-extended input (cols + 2r
/// vectors) and the transposed output (cols vectors).
template <class R>
struct row_tile_scratch {
    std::vector<typename vec64<R>::type> in, out;
};

/// The summation tree of every row pass on the host, for two outputs h = 0, 1 at once:
/// c[0] x_h[0] + sum_{o=1..r} c[o] (x_h[o] +- x_h[-o]) in four interleaved chains per output (o =
/// 4q + 1, 4q + 2, 4q + 3, 4q + 4; c[0] x_h[0] = x0[h] starts the fourth), added as
/// (a0 + a1) + (a2 + a3): eight independent accumulators hide the add latency, and each output goes
/// through ceil(r / 4) + 3 additions after its pair sum and product (within row_pass_depth(r)).
/// add_pair(acc, w, h, o) adds w * (x_h[o] +- x_h[-o]) to acc.
template <class V, class R, class AddPair>
inline void four_chain_sums(V (&res)[2], const V (&x0)[2], const R* c, int r, AddPair&& add_pair) {
    V a0 = x0[0], b0 = x0[1];
    V a1{}, a2{}, a3{}, b1{}, b2{}, b3{};
    int o = 1;
    for (; o + 3 <= r; o += 4) {
        add_pair(a1, c[o], 0, o);
        add_pair(b1, c[o], 1, o);
        add_pair(a2, c[o + 1], 0, o + 1);
        add_pair(b2, c[o + 1], 1, o + 1);
        add_pair(a3, c[o + 2], 0, o + 2);
        add_pair(b3, c[o + 2], 1, o + 2);
        add_pair(a0, c[o + 3], 0, o + 3);
        add_pair(b0, c[o + 3], 1, o + 3);
    }
    if (o <= r) {
        add_pair(a1, c[o], 0, o);
        add_pair(b1, c[o], 1, o);
    }
    if (o + 1 <= r) {
        add_pair(a2, c[o + 1], 0, o + 1);
        add_pair(b2, c[o + 1], 1, o + 1);
    }
    if (o + 2 <= r) {
        add_pair(a3, c[o + 2], 0, o + 2);
        add_pair(b3, c[o + 2], 1, o + 2);
    }
    res[0] = (a0 + a1) + (a2 + a3);
    res[1] = (b0 + b1) + (b2 + b3);
}

/// Roundings on the way to one output of a row pass (pair sums, products, groups of four, then
/// one accumulation per group and per remaining tap): the depth that checked_sato's float error
/// bound allows every row pass of radius r.
constexpr int row_pass_depth(int r) { return r / 4 + r % 4 + 8; }

/// Whether the float passes of radius r are compiled for that radius (1 .. 15): the row passes
/// then take the direct form (direct_sums) and the column passes unroll in full
/// (column_pass_rows4); longer kernels, and doubles, the runtime radius (row passes: the symmetric
/// form, four_chain_sums).
template <class R>
constexpr bool fixed_radius(int r) {
    return sizeof(R) == 4 && r >= 1 && r <= 15;
}

/// The summation tree of the float row passes of radius D (known at compile time), for two
/// outputs at once whose samples lie Step apart (Step = L for strips of two vectors, 1 for
/// transposed samples): out_h = sum_{o=-D..D} c[o] x_h[o] in the direct form, one product per tap
/// (antisymmetric kernels carry their signs in c) in four chains by (o + D) mod 4, each in
/// increasing o, added as (a0 + a1) + (a2 + a3). Every input sample is loaded once and serves both
/// outputs where their windows overlap (2D + 1 > Step): fewer loads than the symmetric form's two
/// per tap pair, which bound the strips (1.05-1.24x faster at D = 3 .. 13 on 512-column rows).
/// Each output goes through ceil((2D + 1) / 4) + 2 roundings, within row_pass_depth(D).
/// load(x, q) loads the sample q of output 0's window (q in [-D, Step + D]).
template <int D, int Step, class V, class R, class Load>
[[gnu::always_inline]] inline void direct_sums(V (&res)[2], const R* c, Load&& load) {
    static_assert(D >= 1 && (2 * D + 1 + 3) / 4 + 2 <= row_pass_depth(D));
    V acc[2][4]{};
    // Unrolled in full, so that the chain indices are constants and the sums stay in registers.
#pragma GCC unroll 64
    for (int q = -D; q <= Step + D; ++q) {  // q: the sample's offset from output 0
        V x;
        load(x, q);
        if (q <= D) acc[0][(q + D) & 3] += c[q] * x;
        if (q - Step >= -D) acc[1][(q - Step + D) & 3] += c[q - Step] * x;
    }
    res[0] = (acc[0][0] + acc[0][1]) + (acc[0][2] + acc[0][3]);
    res[1] = (acc[1][0] + acc[1][1]) + (acc[1][2] + acc[1][3]);
}

/// Calls fn(std::integral_constant<int, r>) for a radius that fixed_radius accepts.
template <class Fn>
inline void with_fixed_radius(int r, Fn&& fn) {
    [&]<int... K>(std::integer_sequence<int, K...>) {
        ((r == K + 1 ? (fn(std::integral_constant<int, K + 1>{}), 0) : 0), ...);
    }(std::make_integer_sequence<int, 15>{});
}

/// out[j] = c[0] x[j] + sum_{o=1..r} c[o] (x[j+o] +- x[j-o]) for j in [jb, je) (at least two) on
/// transposed samples (one vector per column), two outputs at a time with direct_sums or
/// four_chain_sums (as row_pass_strips).
template <class R, bool Anti>
inline void row_tile_outputs(typename vec64<R>::type* __restrict out, const typename vec64<R>::type* __restrict centre,
                             std::int64_t jb, std::int64_t je, const R* c, int r) {
    using V = typename vec64<R>::type;
    if (fixed_radius<R>(r)) {  // the strips' direct form, sum for sum
        with_fixed_radius(r, [&](auto d) {
            for (std::int64_t j0 = jb; j0 < je; j0 += 2) {
                const std::int64_t j = j0 + 2 <= je ? j0 : je - 2;
                const V* x = centre + j;
                V res[2];
                direct_sums<decltype(d)::value, 1>(res, c, [x](V& v, int q) { v = x[q]; });
                out[j] = res[0];
                out[j + 1] = res[1];
            }
        });
        return;
    }
    for (std::int64_t j0 = jb; j0 < je; j0 += 2) {
        const std::int64_t j = j0 + 2 <= je ? j0 : je - 2;  // the last pair may overlap: same values again
        const V* x = centre + j;
        const V x0[2] = {c[0] * x[0], c[0] * x[1]};
        V res[2];
        four_chain_sums(res, x0, c, r, [x](V& acc, R w, int h, int o) {
            acc += w * (Anti ? x[h + o] - x[h - o] : x[h + o] + x[h - o]);
        });
        out[j] = res[0];
        out[j + 1] = res[1];
    }
}

/// Row correlation of the L rows in[0..L-1] (cols >= 2 samples each) with kernel k (symmetric,
/// or antisymmetric: c[-o] = -c[o]) under `mode`, by transposed tiles, into out[0..L-1] (which may
/// be `in`). Only the outputs in columns [jb, je) are computed (all when fewer than two); the
/// others are overwritten with unspecified values. `odd`: the samples outside are the mapped ones
/// negated.
template <class R>
inline void row_pass_tile(const R* const* in, R* const* out_rows, std::int64_t cols, const kernel_taps<R>& k,
                          bool antisymmetric, boundary_mode mode, R cval, row_tile_scratch<R>& s, std::int64_t jb = 0,
                          std::int64_t je = -1, bool odd = false) {
    if (je < 0 || je - jb < 2) jb = 0, je = cols;
    using V = typename vec64<R>::type;
    constexpr int L = lanes64<R>;
    const int r = k.radius;
    const auto n_in = static_cast<std::size_t>(cols + 2 * r), n_out = static_cast<std::size_t>(cols);
    if (s.in.size() < n_in) s.in.resize(n_in);
    if (s.out.size() < n_out) s.out.resize(n_out);
    V* centre = s.in.data() + r;
    // Transpose in: full L x L tiles through registers, the remaining columns lane by lane.
    const std::int64_t full = cols - cols % L;
    for (std::int64_t t0 = 0; t0 < full; t0 += L) {
        V v[L];
        for (int q = 0; q < L; ++q) std::memcpy(&v[q], in[q] + t0, sizeof(V));
        transpose_tile<R>(v);
        for (int q = 0; q < L; ++q) centre[t0 + q] = v[q];
    }
    for (std::int64_t t = full; t < cols; ++t)
        for (int q = 0; q < L; ++q) centre[t][q] = in[q][t];
    // Boundary extension: whole transposed samples, mapped as scipy maps indices.
    V outside;
    for (int q = 0; q < L; ++q) outside[q] = cval;
    for (std::int64_t t = -r; t < 0; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        centre[t] = m < 0 ? outside : (odd ? -centre[m] : centre[m]);
    }
    for (std::int64_t t = cols; t < cols + r; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        centre[t] = m < 0 ? outside : (odd ? -centre[m] : centre[m]);
    }
    V* out = s.out.data();
    const R* c = k.taps.data() + r;
    if (antisymmetric) row_tile_outputs<R, true>(out, centre, jb, je, c, r);
    else row_tile_outputs<R, false>(out, centre, jb, je, c, r);
    // Transpose out.
    for (std::int64_t t0 = 0; t0 < full; t0 += L) {
        V v[L];
        for (int q = 0; q < L; ++q) v[q] = out[t0 + q];
        transpose_tile<R>(v);
        for (int q = 0; q < L; ++q) std::memcpy(out_rows[q] + t0, &v[q], sizeof(V));
    }
    for (std::int64_t t = full; t < cols; ++t)
        for (int q = 0; q < L; ++q) out_rows[q][t] = out[t][q];
}

}  // namespace vasomim::vessel::detail

#endif  // !VASOMIM_HAS_CUDA
