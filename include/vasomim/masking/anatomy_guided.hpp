#pragma once
// Anatomy-guided masking, the released algorithm (DESIGN 4.2) for every row of a batch at once:
//   len_keep = int(L (1 - mask_ratio)), num_mask = L - len_keep, target = int(num_mask * beta_e);
//   guided = min(target, #patches with weight > 0) patches drawn without replacement with
//   probability proportional to their weight (successive sampling, torch.multinomial's
//   distribution), then num_mask - guided drawn uniformly from the rest. A row whose total weight
//   is 0 gets a uniform random permutation. The released code then orders ids_shuffle as
//   [visible patches ascending, guided patches in draw order, uniform ones in draw order].
//
// How, without a loop over the batch: successive sampling is an exponential race (Gumbel-top-k):
// with E_j ~ Exp(1) the order of the keys E_j / w_j is the draw order of sampling without
// replacement proportional to w. One row-wise argsort of these keys picks the guided patches, a
// second one of uniform noise over the remaining patches picks the visible ones and the uniform
// ones. All keys are computed in double from integer-exact uniforms with one correctly-rounded
// division and the same log, and sorts are stable, so the masks are identical on every host
// backend and thread count (on CUDA, whose log may differ from glibc's in the last bit, a mask can
// differ only where two keys of a row agree to about 1e-16 relative).

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/masking/detail/row_masks.hpp"
#include "vasomim/masking/detail/streams.hpp"
#include "vasomim/masking/patch_mask.hpp"
#include "vasomim/masking/patch_weights.hpp"
#include "vasomim/masking/random.hpp"
#include "vasomim/masking/schedule.hpp"

namespace vasomim::masking {

/// Per-row counts of anatomy-guided masking for L patches, a mask ratio and beta_e.
struct guided_counts {
    index_t len_keep;  ///< int(L * (1 - mask_ratio))
    index_t num_mask;  ///< L - len_keep
    index_t target;    ///< int(num_mask * beta_e); rows draw min(target, #positive weights)

    static guided_counts of(index_t num_patches, double mask_ratio, double beta) {
        if (!(beta >= 0.0 && beta <= 1.0))
            throw value_error("masking::anatomy_guided: beta_e must lie in [0, 1], got " + std::to_string(beta));
        const index_t keep = keep_count(num_patches, mask_ratio);
        const index_t masked = num_patches - keep;
        return {keep, masked, static_cast<index_t>(static_cast<double>(masked) * beta)};
    }
};

namespace detail {

/// Anatomy-guided masks from patch weights (N x L) through two row-wise sorts of the whole batch:
/// the path for L > fused_max_patches, and the reference the one-pass row kernel is tested against.
template <class W, class B>
patch_mask<B> anatomy_guided_masks_sorted(const tensor<W, B>& weights, const guided_counts& c, std::uint64_t seed,
                                          std::uint64_t step, std::int64_t first_sample = 0) {
    const index_t n = weights.dim(0), l = weights.dim(1);
    const index_t len_keep = c.len_keep, target = c.target;
    const double inf = std::numeric_limits<double>::infinity();
    const W* w = weights.data();

    tensor<double, B> key(shape{n, l}), noise(shape{n, l});
    tensor<std::int64_t, B> order(shape{n, l}), race_rank(shape{n, l}), noise_rank(shape{n, l});
    tensor<std::int64_t, B> guided(shape{n});  // guided count of the row; -1 for an all-zero row

    // 1. Row total (fixed order) and number of positive weights -> guided count; the exponential
    //    race keys E_j / w_j (+inf for zero weights: never drawn) and the order noise, both from
    //    patch j's Philox block.
    {
        double* k = key.data();
        double* z = noise.data();
        std::int64_t* g = guided.data();
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const philox gen = sample_stream(seed, step, first_sample + i);
            double total = 0.0;
            std::int64_t positive = 0;
            for (index_t j = 0; j < l; ++j) {
                const double wj = static_cast<double>(w[i * l + j]);
                const auto u = uniforms_of_patch(gen, j);
                total += wj;
                positive += wj > 0.0 ? 1 : 0;
                k[i * l + j] = wj > 0.0 ? -::log(u.race) / wj : inf;
                z[i * l + j] = u.noise;
            }
            g[i] = total > 0.0 ? (positive < target ? positive : target) : -1;
        });
    }
    argsort_rows(key, order);

    // 2. Race ranks; the first `guided` of the race are drawn. The others get their order noise as
    //    the key of the second sort, the drawn ones +inf (sorted last).
    {
        double* k = key.data();
        const double* z = noise.data();
        const std::int64_t* o = order.data();
        const std::int64_t* g = guided.data();
        std::int64_t* rr = race_rank.data();
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            for (index_t q = 0; q < l; ++q) rr[i * l + o[i * l + q]] = q;
            for (index_t j = 0; j < l; ++j) k[i * l + j] = rr[i * l + j] < g[i] ? inf : z[i * l + j];
        });
    }
    argsort_rows(key, order);

    // 3. Positions in ids_shuffle (= ids_restore). Visible: the len_keep undrawn patches of smallest
    //    noise, in ascending index order; then the drawn ones in draw order; then the uniform rest
    //    in noise order. An all-zero row keeps argsort(noise), a uniform permutation.
    tensor<std::int64_t, B> pos(shape{n, l});
    {
        const std::int64_t* o = order.data();
        const std::int64_t* rr = race_rank.data();
        const std::int64_t* g = guided.data();
        std::int64_t* nr = noise_rank.data();
        std::int64_t* p = pos.data();
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            for (index_t q = 0; q < l; ++q) nr[i * l + o[i * l + q]] = q;
            const std::int64_t gi = g[i];
            if (gi < 0) {
                for (index_t j = 0; j < l; ++j) p[i * l + j] = nr[i * l + j];
                return;
            }
            index_t visible = 0;
            for (index_t j = 0; j < l; ++j) {
                const std::int64_t r = rr[i * l + j], s = nr[i * l + j];
                if (r < gi)
                    p[i * l + j] = len_keep + r;               // drawn, in draw order
                else if (s < len_keep)
                    p[i * l + j] = visible++;                  // visible, ascending index
                else
                    p[i * l + j] = len_keep + gi + (s - len_keep);  // uniform remainder
            }
        });
    }
    return finish_from_positions(std::move(pos), len_keep);
}

/// Anatomy-guided masks from patch weights (N x L) for a given guided target. Used by the policy
/// below; exposed for tests that drive beta directly. On host backends one work item per row: the
/// one-pass row kernel (detail/row_masks.hpp) for L <= fused_max_patches. Beyond, and on CUDA
/// (where the kernel's ~40 KiB of per-thread scratch would be local memory reserved for every
/// resident thread), the row-wise sorts above: the same masks.
template <class W, class B>
patch_mask<B> anatomy_guided_masks(const tensor<W, B>& weights, const guided_counts& c, std::uint64_t seed,
                                   std::uint64_t step, std::int64_t first_sample = 0) {
    if constexpr (!backend_traits<B>::host_accessible) {
        return anatomy_guided_masks_sorted(weights, c, seed, step, first_sample);
    } else {
        const index_t n = weights.dim(0), l = weights.dim(1);
        if (l > fused_max_patches) return anatomy_guided_masks_sorted(weights, c, seed, step, first_sample);
        auto m = allocate_masks<B>(n, l, c.len_keep);
        const W* w = weights.data();
        std::int64_t* restore = m.ids_restore.data();
        std::int64_t* shuffle = m.ids_shuffle.data();
        std::int64_t* keep = m.ids_keep.data();
        float* mask = m.mask.data();
        const auto row_len = static_cast<std::int32_t>(l), len_keep = static_cast<std::int32_t>(c.len_keep);
        const std::int64_t target = c.target;
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            masks_of_row(w + i * l, row_len, len_keep, target, sample_stream(seed, step, first_sample + i), restore + i * l,
                         shuffle + i * l, keep + i * len_keep, mask + i * l);
        });
        return m;
    }
}

}  // namespace detail

/// Anatomy-guided masking policy with a schedule for beta_e (schedule::linear as released,
/// schedule::constant, schedule::cosine, or any callable progress -> beta in [0, 1]).
template <class Schedule = schedule::linear>
struct anatomy_guided {
    /// Share of the patches that are masked, in (0, 1).
    double mask_ratio = 0.75;
    /// beta_e as a function of training progress.
    Schedule schedule{};
    /// Seed of the counter-based generator; with the step and the sample index it fixes every mask.
    std::uint64_t seed = 0;

    static constexpr bool needs_guidance = true;

    /// beta_e at a point of training.
    double beta(progress at) const { return static_cast<double>(schedule(at)); }

    /// Masks from patch weights (N x L, non-negative and finite; see patch_weights). Throws
    /// shape_error / value_error for bad shapes, ratios or weights.
    template <class W, backend_policy B>
    patch_mask<B> sample(const tensor<W, B>& weights, const step_info& info) const {
        check_weights(weights, "masking::anatomy_guided");
        detail::check_batch(weights.dim(0), weights.dim(1), "masking::anatomy_guided");
        detail::check_step(info.step, "masking::anatomy_guided");
        const auto counts = guided_counts::of(weights.dim(1), mask_ratio, beta(info.at));
        return detail::anatomy_guided_masks(weights, counts, seed, info.step, info.first_sample);
    }

    /// Masks from a batch of guidance maps (N x H x W) cut into patch x patch patches.
    template <class T, backend_policy B>
    patch_mask<B> sample_maps(const tensor<T, B>& guidance, index_t patch, const step_info& info) const {
        return sample(patch_weights<float>(guidance, patch), info);
    }
};

}  // namespace vasomim::masking
