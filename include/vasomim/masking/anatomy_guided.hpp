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
// second one of uniform noise over the remaining patches picks the uniform ones and the visible
// ones, a segmented count orders the visible ones. All keys are computed in double from
// integer-exact uniforms with one correctly-rounded division and the same log, and sorts are
// stable, so the masks are identical on every host backend and thread count.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "vasomim/backend/algorithms.hpp"
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

/// Anatomy-guided masks from patch weights (N x L) for a given guided target. Used by the policy
/// below; exposed for tests that drive beta directly.
template <class W, class B>
patch_mask<B> anatomy_guided_masks(const tensor<W, B>& weights, const guided_counts& c, std::uint64_t seed,
                                   std::uint64_t step) {
    const index_t n = weights.dim(0), l = weights.dim(1);
    const index_t len_keep = c.len_keep, target = c.target;
    const double inf = std::numeric_limits<double>::infinity();
    const W* w = weights.data();

    // Row totals and numbers of positive weights; one work item per row, a fixed summation order.
    tensor<double, B> total(shape{n});
    tensor<std::int64_t, B> guided(shape{n});
    {
        double* tot = total.data();
        std::int64_t* g = guided.data();
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            double s = 0.0;
            std::int64_t positive = 0;
            for (index_t j = 0; j < l; ++j) {
                const double x = static_cast<double>(w[i * l + j]);
                s += x;
                positive += x > 0.0 ? 1 : 0;
            }
            tot[i] = s;
            g[i] = s > 0.0 ? (positive < target ? positive : target) : 0;
        });
    }

    // 1. Exponential race: key E_j / w_j for positive weights, +inf otherwise (never drawn).
    tensor<double, B> key(shape{n, l});
    tensor<std::int64_t, B> order(shape{n, l}), race_rank(shape{n, l}), noise_rank(shape{n, l});
    {
        double* k = key.data();
        parallel_for<B>(n * l, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
            const index_t i = idx / l, j = idx % l;
            const double wj = static_cast<double>(w[idx]);
            k[idx] = wj > 0.0 ? -::log(race_uniform(sample_stream(seed, step, i), j)) / wj : inf;
        });
    }
    argsort_rows(key, order);
    ranks_from_order(order, race_rank);

    // 2. Uniform noise over the patches not drawn by the race (guided ones get +inf: sorted last).
    {
        double* k = key.data();
        const std::int64_t* rr = race_rank.data();
        const std::int64_t* g = guided.data();
        parallel_for<B>(n * l, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
            const index_t i = idx / l, j = idx % l;
            k[idx] = rr[idx] < g[i] ? inf : order_noise(sample_stream(seed, step, i), j);
        });
    }
    argsort_rows(key, order);
    ranks_from_order(order, noise_rank);

    // 3. Visible patches are the len_keep non-guided ones with the smallest noise; in a row with
    //    weight they appear in ascending index order: position = number of visible ones before
    //    them, a segmented count done as one scan over the whole batch.
    tensor<std::int64_t, B> visible(shape{n, l}), before(shape{n, l});
    {
        std::int64_t* v = visible.data();
        const std::int64_t* rr = race_rank.data();
        const std::int64_t* nr = noise_rank.data();
        const std::int64_t* g = guided.data();
        parallel_for<B>(n * l, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
            const index_t i = idx / l;
            v[idx] = (rr[idx] >= g[i] && nr[idx] < len_keep) ? 1 : 0;
        });
    }
    backend_traits<B>::exclusive_scan(visible.data(), visible.size(), before.data(), std::int64_t(0), plus{});

    // 4. Positions in ids_shuffle = ids_restore.
    tensor<std::int64_t, B> pos(shape{n, l});
    {
        std::int64_t* p = pos.data();
        const std::int64_t* v = visible.data();
        const std::int64_t* bf = before.data();
        const std::int64_t* rr = race_rank.data();
        const std::int64_t* nr = noise_rank.data();
        const std::int64_t* g = guided.data();
        const double* tot = total.data();
        parallel_for<B>(n * l, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
            const index_t i = idx / l;
            if (!(tot[i] > 0.0))
                p[idx] = nr[idx];  // all-zero row: the uniform permutation argsort(noise)
            else if (v[idx])
                p[idx] = bf[idx] - bf[i * l];  // visible, ascending index
            else if (rr[idx] < g[i])
                p[idx] = len_keep + rr[idx];  // guided, in draw order
            else
                p[idx] = len_keep + g[i] + (nr[idx] - len_keep);  // uniform remainder, in draw order
        });
    }
    return finish_from_positions(std::move(pos), len_keep);
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
        const auto counts = guided_counts::of(weights.dim(1), mask_ratio, beta(info.at));
        return detail::anatomy_guided_masks(weights, counts, seed, info.step);
    }

    /// Masks from a batch of guidance maps (N x H x W) cut into patch x patch patches.
    template <class T, backend_policy B>
    patch_mask<B> sample_maps(const tensor<T, B>& guidance, index_t patch, const step_info& info) const {
        return sample(patch_weights<float>(guidance, patch), info);
    }
};

}  // namespace vasomim::masking
