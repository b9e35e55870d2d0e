#pragma once
// The encoder's masking step in one call, as MAE's random_masking(x, mask_ratio) and the released
// guided_masking(x, guidance, ...): sample the masks of a batch of patch tokens and gather the
// visible ones.

#include <string>

#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/masking/patch_mask.hpp"
#include "vasomim/masking/token_gather.hpp"

namespace vasomim::masking {

/// Visible tokens (N x len_keep x D) and the masks they came from.
template <class T, class B>
struct masked_tokens {
    tensor<T, B> visible;
    patch_mask<B> masks;
};

/// Samples masks with `sampler` (masking::random or masking::anatomy_guided<S>) for tokens x
/// (N x L x D) from patch weights (N x L; only their shape for masking::random) and gathers the
/// visible tokens. Throws shape_error when the batch sizes or patch counts of x and the weights differ.
template <class Sampler, class T, class W, class B>
masked_tokens<T, B> apply(const Sampler& sampler, const tensor<T, B>& x, const tensor<W, B>& weights,
                          const step_info& info) {
    if (x.rank() != 3 || weights.rank() != 2)
        throw shape_error("masking::apply: needs tokens N x L x D and weights N x L, got " + x.shape().to_string() +
                          " and " + weights.shape().to_string());
    if (x.dim(0) != weights.dim(0))
        throw shape_error("masking::apply: batch sizes differ: tokens " + x.shape().to_string() + ", weights " +
                          weights.shape().to_string());
    if (x.dim(1) != weights.dim(1))
        throw shape_error("masking::apply: tokens " + x.shape().to_string() + " and weights " +
                          weights.shape().to_string() + " differ in the number of patches");
    auto masks = sampler.sample(weights, info);
    auto visible = gather_visible(x, masks.ids_keep);
    return {std::move(visible), std::move(masks)};
}

}  // namespace vasomim::masking
