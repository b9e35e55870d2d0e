#pragma once
// The output of a masking sampler in MAE's convention, and what every sampler is told about the
// step it samples for.

#include <cstdint>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/masking/schedule.hpp"

namespace vasomim::masking {

/// One batch's masks (N rows of L patches), MAE convention:
/// - ids_shuffle (N x L): patch order; the first len_keep entries are visible, the rest masked;
/// - ids_keep    (N x len_keep): the visible patches, the order in which the encoder sees them;
/// - ids_restore (N x L): inverse permutation of ids_shuffle (ids_shuffle[ids_restore[j]] == j);
/// - mask        (N x L): 1 for a masked patch, 0 for a visible one.
template <class B>
struct patch_mask {
    index_t len_keep = 0;
    tensor<std::int64_t, B> ids_shuffle;
    tensor<std::int64_t, B> ids_keep;
    tensor<std::int64_t, B> ids_restore;
    tensor<float, B> mask;

    index_t batch() const { return ids_shuffle.dim(0); }
    index_t num_patches() const { return ids_shuffle.dim(1); }
    index_t num_mask() const { return num_patches() - len_keep; }
};

/// Where a batch sits in training: the global step keys the random streams (with the sample index),
/// the progress drives the schedule of anatomy-guided masking.
struct step_info {
    std::uint64_t step = 0;
    progress at = progress::from_ratio(1.0);
};

/// MAE's counts: len_keep = int(L * (1 - mask_ratio)). Throws value_error for a ratio outside
/// (0, 1) and shape_error for L <= 0.
inline index_t keep_count(index_t num_patches, double mask_ratio) {
    if (!(mask_ratio > 0.0 && mask_ratio < 1.0))
        throw value_error("masking: mask ratio must lie in (0, 1), got " + std::to_string(mask_ratio));
    if (num_patches <= 0)
        throw shape_error("masking: need at least one patch, got L = " + std::to_string(num_patches));
    return static_cast<index_t>(static_cast<double>(num_patches) * (1.0 - mask_ratio));
}

namespace detail {

/// Outputs of n rows of l patches, len_keep of them visible (filled by the caller).
template <class B>
patch_mask<B> allocate_masks(index_t n, index_t l, index_t len_keep) {
    patch_mask<B> m;
    m.len_keep = len_keep;
    m.ids_shuffle = tensor<std::int64_t, B>(shape{n, l});
    m.ids_keep = tensor<std::int64_t, B>(shape{n, len_keep});
    m.ids_restore = tensor<std::int64_t, B>(shape{n, l});
    m.mask = tensor<float, B>(shape{n, l});
    return m;
}

/// Allocates the outputs and fills ids_shuffle, mask and ids_keep from the per-patch positions
/// pos (= ids_restore, a permutation of 0..L-1 in every row). One work item per row.
template <class B>
patch_mask<B> finish_from_positions(tensor<std::int64_t, B>&& pos, index_t len_keep) {
    const index_t n = pos.dim(0), l = pos.dim(1);
    patch_mask<B> m;
    m.len_keep = len_keep;
    m.ids_shuffle = tensor<std::int64_t, B>(shape{n, l});
    m.ids_keep = tensor<std::int64_t, B>(shape{n, len_keep});
    m.mask = tensor<float, B>(shape{n, l});
    const std::int64_t* r = pos.data();
    std::int64_t* s = m.ids_shuffle.data();
    std::int64_t* keep = m.ids_keep.data();
    float* mk = m.mask.data();
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        for (index_t j = 0; j < l; ++j) {
            const std::int64_t at = r[i * l + j];
            s[i * l + at] = j;
            mk[i * l + j] = at >= len_keep ? 1.0f : 0.0f;
        }
        for (index_t k = 0; k < len_keep; ++k) keep[i * len_keep + k] = s[i * l + k];
    });
    m.ids_restore = std::move(pos);
    return m;
}

/// rank[i, order[i, k]] = k: the position of every element in its row's sorted order.
template <class B>
void ranks_from_order(const tensor<std::int64_t, B>& order, tensor<std::int64_t, B>& rank) {
    const index_t l = order.dim(1);
    const std::int64_t* o = order.data();
    std::int64_t* r = rank.data();
    parallel_for<B>(order.dim(0), [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        for (index_t k = 0; k < l; ++k) r[i * l + o[i * l + k]] = k;
    });
}

}  // namespace detail
}  // namespace vasomim::masking
