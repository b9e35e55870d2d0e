#pragma once
// One row of masks in one pass (random and anatomy-guided masking): keys, draw, order and the four
// MAE outputs, without scratch tensors or comparison sorts. The result is bit-identical to the
// row-wise stable argsorts of anatomy_guided.hpp: only the way the orders are found differs.
//
// Why it is exact and fast for ViT patch counts (L = 196 at 224 / 16):
// - race keys E_j / w_j are doubles >= 0 (or +inf), so their IEEE bit patterns (sign cleared, which
//   only turns -0 into +0) order like the values; ties fall back to the patch index, as a stable sort;
// - order noise is k * 2^-53 for a 53-bit integer k, so (k << 11 | j) orders exactly like a stable
//   sort of the noise for L <= 2048, and the keys are distinct;
// - a stable counting sort over a monotone bucket of the key (top bits for the uniform noise, eight
//   buckets per octave of the race key) leaves disorder only inside buckets of a few keys, which an
//   insertion sort removes: O(L) per row. Only the race keys up to the bucket of the last drawn one
//   are sorted at all.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "vasomim/core/config.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/masking/detail/streams.hpp"

namespace vasomim::masking::detail {

/// Largest L of the one-pass row kernel (its scratch lives on the stack). Larger L goes through
/// the row-wise sorts.
inline constexpr index_t fused_max_patches = 1024;

/// Bits of a patch index packed under the order noise (2^11 > fused_max_patches).
inline constexpr int noise_index_bits = 11;

/// Ordered bits of a race key (a double >= 0, -0 or +inf).
VASOMIM_HOST_DEVICE inline std::uint64_t race_bits(double key) {
    std::uint64_t b;
    std::memcpy(&b, &key, sizeof b);
    return b & ~(std::uint64_t(1) << 63);
}

/// Bucket of uniform 64-bit keys: their top log2(buckets) bits.
struct top_bits_bucket {
    int shift;
    VASOMIM_HOST_DEVICE std::int32_t operator()(std::uint64_t k) const { return static_cast<std::int32_t>(k >> shift); }
};

/// Bucket of positive double bits: eighths of an octave above the smallest key, clamped.
struct octave_bucket {
    std::uint64_t lowest;  // (bits of the smallest key) >> 49
    std::int32_t last;     // buckets - 1
    VASOMIM_HOST_DEVICE std::int32_t operator()(std::uint64_t k) const {
        const std::uint64_t b = (k >> 49) - lowest;
        return b < static_cast<std::uint64_t>(last) ? static_cast<std::int32_t>(b) : last;
    }
};

/// Stable sort by key of the smallest entries of keys[0..n) (ids move along unless null): a stable
/// counting sort by bucket (a non-decreasing map of the key into [0, buckets), buckets <=
/// fused_max_patches), restricted to the buckets up to the one that holds the need-th key, then an
/// insertion sort that fixes the order inside buckets. Returns the number of sorted entries written
/// to out_keys / out_ids: at least min(need, n), all of them the smallest in the stable order.
template <class Bucket>
VASOMIM_HOST_DEVICE std::int32_t sort_smallest(const std::uint64_t* keys, const std::int16_t* ids, std::int32_t n,
                                               std::int32_t need, std::int32_t buckets, Bucket bucket,
                                               std::uint64_t* out_keys, std::int16_t* out_ids) {
    std::int32_t start[fused_max_patches];
    std::int16_t of[fused_max_patches];
    for (std::int32_t b = 0; b < buckets; ++b) start[b] = 0;
    for (std::int32_t a = 0; a < n; ++a) {
        of[a] = static_cast<std::int16_t>(bucket(keys[a]));
        ++start[of[a]];
    }
    std::int32_t sum = 0, last = buckets - 1, sorted = n;
    for (std::int32_t b = 0; b < buckets; ++b) {
        const std::int32_t c = start[b];
        start[b] = sum;
        sum += c;
        if (sum >= need && b < last) last = b, sorted = sum;
    }
    for (std::int32_t a = 0; a < n; ++a)
        if (of[a] <= last) {
            const std::int32_t t = start[of[a]]++;
            out_keys[t] = keys[a];
            if (ids) out_ids[t] = ids[a];
        }
    for (std::int32_t t = 1; t < sorted; ++t) {
        const std::uint64_t k = out_keys[t];
        if (!(out_keys[t - 1] > k)) continue;
        const std::int16_t id = ids ? out_ids[t] : std::int16_t(0);
        std::int32_t u = t;
        for (; u > 0 && out_keys[u - 1] > k; --u) {
            out_keys[u] = out_keys[u - 1];
            if (ids) out_ids[u] = out_ids[u - 1];
        }
        out_keys[u] = k;
        if (ids) out_ids[u] = id;
    }
    return sorted;
}

/// Smallest power of two >= n, within [16, fused_max_patches].
VASOMIM_HOST_DEVICE inline std::int32_t bucket_count(std::int32_t n, int* log2_out) {
    int lg = 4;
    while ((std::int32_t(1) << lg) < n && (index_t(1) << lg) < fused_max_patches) ++lg;
    *log2_out = lg;
    return std::int32_t(1) << lg;
}

/// Masks of one row of L <= fused_max_patches patches from its weights w (nullptr: random masking,
/// the same as an all-zero row). Writes restore (= ids_restore), shuffle, keep (len_keep entries)
/// and mask of the row. Semantics: DESIGN 4.2 as in anatomy_guided.hpp.
template <class W>
VASOMIM_HOST_DEVICE void masks_of_row(const W* w, std::int32_t l, std::int32_t len_keep, std::int64_t target,
                                      const philox& gen, std::int64_t* restore, std::int64_t* shuffle,
                                      std::int64_t* keep, float* mask) {
    std::uint64_t keys[fused_max_patches];      // finite race keys, then packed noise of the undrawn
    std::int16_t ids[fused_max_patches];        // patches of the race keys
    std::uint64_t noise[fused_max_patches];     // packed order noise of every patch
    std::uint64_t sorted[fused_max_patches];    // sorted keys
    std::int16_t sorted_ids[fused_max_patches];
    std::int16_t state[fused_max_patches];      // draw position of a patch; -1 undrawn, -2 visible
    constexpr std::int16_t undrawn = -1, visible = -2;

    // 1. Keys from patch j's Philox block. Only positive weights race; +inf keys (possible only for
    //    double weights near the smallest subnormal) race last, by index, with the zero weights.
    //    The noise key is (k << 11 | j) for the noise's 53-bit integer k = hi >> 11.
    std::uint64_t* race_half = sorted;  // scratch until step 2
    patch_blocks(gen, l, race_half, noise);
    constexpr std::uint64_t index_mask = (std::uint64_t(1) << noise_index_bits) - 1;
    std::int32_t positive = 0, finite = 0;
    std::uint64_t lowest = ~std::uint64_t(0);
    for (std::int32_t j = 0; j < l; ++j) {
        noise[j] = (noise[j] & ~index_mask) | static_cast<std::uint64_t>(j);
        state[j] = undrawn;
    }
    for (std::int32_t j = 0; w != nullptr && j < l; ++j) {
        const double wj = static_cast<double>(w[j]);
        if (!(wj > 0.0)) continue;
        ++positive;
        const double key = -::log(race_uniform_of(race_half[j])) / wj;
        if (key < std::numeric_limits<double>::infinity()) {
            keys[finite] = race_bits(key);
            lowest = keys[finite] < lowest ? keys[finite] : lowest;
            ids[finite++] = static_cast<std::int16_t>(j);
        }
    }
    const std::int32_t guided =
        positive > 0 ? (static_cast<std::int64_t>(positive) < target ? positive : static_cast<std::int32_t>(target))
                     : -1;

    // 2. Draw order: the stable order of the finite race keys; the first `guided` are drawn. If too
    //    few keys are finite, the +inf ones follow in patch order.
    if (guided > 0) {
        std::int32_t drawn = 0;
        if (finite > 0) {
            constexpr std::int32_t octave_buckets = 256;
            const std::int32_t n_sorted = sort_smallest(keys, ids, finite, guided, octave_buckets,
                                                        octave_bucket{lowest >> 49, octave_buckets - 1}, sorted,
                                                        sorted_ids);
            for (; drawn < guided && drawn < n_sorted; ++drawn) state[sorted_ids[drawn]] = static_cast<std::int16_t>(drawn);
        }
        for (std::int32_t j = 0; j < l && drawn < guided; ++j)
            if (state[j] == undrawn) state[j] = static_cast<std::int16_t>(drawn++);
    }

    // 3. The undrawn patches in noise order: the first len_keep are visible (listed in ascending
    //    patch order below), the rest are masked after the drawn ones. An all-zero row is the argsort
    //    of the noise, a uniform permutation.
    std::int32_t m = 0;
    for (std::int32_t j = 0; j < l; ++j) {  // branch-free compaction: the draws are random
        keys[m] = noise[j];
        m += state[j] == undrawn ? 1 : 0;
    }
    int lg = 0;
    const std::int32_t buckets = bucket_count(m, &lg);
    sort_smallest(keys, static_cast<const std::int16_t*>(nullptr), m, m, buckets, top_bits_bucket{64 - lg}, sorted,
                  sorted_ids);
    const std::int64_t masked_from = static_cast<std::int64_t>(len_keep) + (guided > 0 ? guided : 0);
    for (std::int32_t t = 0; t < m; ++t) {
        const auto j = static_cast<std::int32_t>(sorted[t] & index_mask);
        if (guided < 0)
            restore[j] = t;
        else if (t < len_keep)
            state[j] = visible;
        else
            restore[j] = masked_from + (t - len_keep);
    }

    // 4. Positions of the drawn and visible patches, and the other outputs.
    std::int64_t next_visible = 0;
    for (std::int32_t j = 0; j < l; ++j) {
        const std::int16_t st = state[j];  // selects instead of branches: the states are random
        const std::int64_t drawn_p = static_cast<std::int64_t>(len_keep) + st, other_p = restore[j];
        const bool is_visible = st == visible;
        const std::int64_t p = st >= 0 ? drawn_p : (is_visible ? next_visible : other_p);
        next_visible += is_visible ? 1 : 0;
        restore[j] = p;
        shuffle[p] = j;
        mask[j] = p >= len_keep ? 1.0f : 0.0f;
    }
    for (std::int32_t k = 0; k < len_keep; ++k) keep[k] = shuffle[k];
}

}  // namespace vasomim::masking::detail
