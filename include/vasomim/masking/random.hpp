#pragma once
// MAE's random masking: every row is an independent uniform permutation (argsort of uniform noise),
// the first len_keep patches of which stay visible.

#include <cstdint>
#include <limits>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/masking/detail/row_masks.hpp"
#include "vasomim/masking/detail/streams.hpp"
#include "vasomim/masking/patch_mask.hpp"
#include "vasomim/masking/patch_weights.hpp"

namespace vasomim::masking {

namespace detail {

inline void check_batch(index_t batch, index_t num_patches, const char* who) {
    if (batch <= 0 || batch >= (index_t(1) << 24))
        throw shape_error(std::string(who) + ": batch size must lie in [1, 2^24), got " + std::to_string(batch));
    if (num_patches <= 0)
        throw shape_error(std::string(who) + ": need at least one patch, got L = " + std::to_string(num_patches));
}

/// Steps index the random streams together with the sample (stream_id): at most 2^40 of them.
inline void check_step(std::uint64_t step, const char* who) {
    if (step >= (std::uint64_t(1) << 40))
        throw value_error(std::string(who) + ": step " + std::to_string(step) +
                          " exceeds the 2^40 steps the random streams distinguish");
}

/// noise[i, j] = order noise of patch j of sample i (see detail/streams.hpp).
template <class B>
tensor<double, B> order_noise_matrix(index_t n, index_t l, std::uint64_t seed, std::uint64_t step,
                                     std::int64_t first_sample = 0) {
    tensor<double, B> noise(shape{n, l});
    double* out = noise.data();
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const philox gen = sample_stream(seed, step, first_sample + i);
        for (index_t j = 0; j < l; ++j) out[i * l + j] = order_noise(gen, j);
    });
    return noise;
}

/// MAE random masks through a row-wise sort of the noise: the path for L > fused_max_patches, and
/// the reference the one-pass row kernel is tested against.
template <class B>
patch_mask<B> random_masks_sorted(index_t n, index_t l, index_t len_keep, std::uint64_t seed, std::uint64_t step,
                                  std::int64_t first_sample = 0) {
    const auto noise = order_noise_matrix<B>(n, l, seed, step, first_sample);
    tensor<std::int64_t, B> order(shape{n, l}), pos(shape{n, l});
    argsort_rows(noise, order);  // ascending: small noise is kept
    ranks_from_order(order, pos);
    return finish_from_positions(std::move(pos), len_keep);
}

/// MAE random masks: on host backends one work item per row (detail/row_masks.hpp); the sorts for
/// large L and on CUDA (see anatomy_guided_masks).
template <class B>
patch_mask<B> random_masks(index_t n, index_t l, index_t len_keep, std::uint64_t seed, std::uint64_t step,
                           std::int64_t first_sample = 0) {
    if constexpr (!backend_traits<B>::host_accessible) {
        return random_masks_sorted<B>(n, l, len_keep, seed, step, first_sample);
    } else {
        if (l > fused_max_patches) return random_masks_sorted<B>(n, l, len_keep, seed, step, first_sample);
        auto m = allocate_masks<B>(n, l, len_keep);
        std::int64_t* restore = m.ids_restore.data();
        std::int64_t* shuffle = m.ids_shuffle.data();
        std::int64_t* keep = m.ids_keep.data();
        float* mask = m.mask.data();
        const auto row_len = static_cast<std::int32_t>(l), keep_len = static_cast<std::int32_t>(len_keep);
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            masks_of_row(static_cast<const float*>(nullptr), row_len, keep_len, 0,
                         sample_stream(seed, step, first_sample + i),
                         restore + i * l, shuffle + i * l, keep + i * keep_len, mask + i * l);
        });
        return m;
    }
}

}  // namespace detail

/// Random masking policy (MAE): uniform sampling without replacement.
struct random {
    /// Share of the patches that are masked, in (0, 1).
    double mask_ratio = 0.75;
    /// Seed of the counter-based generator; with the step and the sample index it fixes every mask.
    std::uint64_t seed = 0;

    static constexpr bool needs_guidance = false;

    /// Masks for `batch` rows of `num_patches` patches at `info.step`. Throws value_error for a
    /// mask ratio outside (0, 1) and shape_error for an empty batch.
    template <backend_policy B>
    patch_mask<B> sample(index_t batch, index_t num_patches, const step_info& info) const {
        detail::check_batch(batch, num_patches, "masking::random");
        detail::check_step(info.step, "masking::random");
        return detail::random_masks<B>(batch, num_patches, keep_count(num_patches, mask_ratio), seed, info.step,
                                       info.first_sample);
    }

    /// The common sampler interface: only the shape (N x L) of the weights is used.
    template <class W, backend_policy B>
    patch_mask<B> sample(const tensor<W, B>& weights, const step_info& info) const {
        if (weights.rank() != 2)
            throw shape_error("masking::random: weights must be N x L, got " + weights.shape().to_string());
        return sample<B>(weights.dim(0), weights.dim(1), info);
    }
};

}  // namespace vasomim::masking
