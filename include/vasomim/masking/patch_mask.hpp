#pragma once
// The output of a masking sampler in MAE's convention, and what every sampler is told about the
// step it samples for.

#include <cstdint>
#include <string>
#include <vector>

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
    /// Position of this batch's first sample in the global batch of the step: under data
    /// parallelism rank r of N with b samples each passes r * b, so that sample i draws from the
    /// stream of global sample r * b + i and the masks do not depend on the number of ranks.
    std::int64_t first_sample = 0;
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

/// A mask given from outside in MAE's convention (what random_masking of the reference code and
/// experiments hand in): ids_shuffle (n x L, row-major, every row a permutation of 0..L-1) and
/// len_keep; the other parts are derived. Throws shape_error for a wrong size or len_keep outside
/// [1, L) and value_error (naming the row) for a row that is not a permutation.
template <class B>
patch_mask<B> patch_mask_from_shuffle(const std::vector<std::int64_t>& ids_shuffle, index_t n, index_t num_patches,
                                      index_t len_keep) {
    if (n < 1 || num_patches < 1 || static_cast<index_t>(ids_shuffle.size()) != n * num_patches)
        throw shape_error("patch_mask_from_shuffle: " + std::to_string(ids_shuffle.size()) + " indices for " +
                          std::to_string(n) + " x " + std::to_string(num_patches) + " patches");
    if (len_keep < 1 || len_keep >= num_patches)
        throw shape_error("patch_mask_from_shuffle: len_keep " + std::to_string(len_keep) + " outside [1, " +
                          std::to_string(num_patches) + ")");
    std::vector<std::int64_t> restore(ids_shuffle.size(), -1);
    for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < num_patches; ++k) {
            const std::int64_t j = ids_shuffle[static_cast<std::size_t>(i * num_patches + k)];
            auto& slot = restore[static_cast<std::size_t>(i * num_patches + (j >= 0 && j < num_patches ? j : 0))];
            if (j < 0 || j >= num_patches || slot != -1)
                throw value_error("patch_mask_from_shuffle: row " + std::to_string(i) +
                                  " of ids_shuffle is not a permutation of 0.." + std::to_string(num_patches - 1) +
                                  " (entry " + std::to_string(k) + " = " + std::to_string(j) + ")");
            slot = k;
        }
    return detail::finish_from_positions(tensor<std::int64_t, B>::from_host(restore, shape{n, num_patches}), len_keep);
}

/// Checks that the parts of a mask agree (ids_restore inverts ids_shuffle, ids_keep is its first
/// len_keep entries, mask is 1 exactly where ids_restore >= len_keep); throws value_error naming
/// the first disagreement. Copies to the host: meant for masks given from outside.
template <class B>
void check_consistent(const patch_mask<B>& m) {
    const index_t n = m.batch(), l = m.num_patches(), keep = m.len_keep;
    auto bad = [](const std::string& what) { return value_error("patch_mask: " + what); };
    if (keep < 1 || keep >= l) throw bad("len_keep " + std::to_string(keep) + " outside [1, " + std::to_string(l) + ")");
    if (m.ids_keep.shape() != shape{n, keep} || m.ids_restore.shape() != shape{n, l} || m.mask.shape() != shape{n, l})
        throw bad("ids_keep " + m.ids_keep.shape().to_string() + ", ids_restore " + m.ids_restore.shape().to_string() +
                  " and mask " + m.mask.shape().to_string() + " do not fit ids_shuffle " +
                  m.ids_shuffle.shape().to_string() + " with len_keep " + std::to_string(keep));
    const auto s = m.ids_shuffle.to_host(), k = m.ids_keep.to_host(), r = m.ids_restore.to_host();
    const auto mk = m.mask.to_host();
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < l; ++j) {
            const auto at = static_cast<std::size_t>(i * l + j);
            const std::int64_t pos = r[at];
            const std::string where = "row " + std::to_string(i) + ", patch " + std::to_string(j);
            if (pos < 0 || pos >= l || s[static_cast<std::size_t>(i * l + pos)] != j)
                throw bad(where + ": ids_restore does not invert ids_shuffle");
            if (mk[at] != (pos >= keep ? 1.0f : 0.0f))
                throw bad(where + ": mask is " + std::to_string(mk[at]) + " but ids_restore says " +
                          (pos >= keep ? "masked" : "visible"));
            if (j < keep && k[static_cast<std::size_t>(i * keep + j)] != s[at])
                throw bad("row " + std::to_string(i) + ": ids_keep[" + std::to_string(j) +
                          "] differs from ids_shuffle's first len_keep entries");
        }
}

}  // namespace vasomim::masking
