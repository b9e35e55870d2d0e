#pragma once
// Moving tokens between the full patch sequence and the visible subset, with their backward passes:
//   gather_visible: encoder side, x (N x L x D) -> x[:, ids_keep] (N x K x D)
//                   (MAE: torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, D)));
//   unshuffle:      decoder side, visible tokens (N x K x D) + a mask token (D) -> N x L x D:
//                   cat([x, mask_token repeated], 1) gathered with ids_restore, i.e.
//                   out[n, l] = ids_restore[n, l] < K ? x[n, ids_restore[n, l]] : mask_token.
// The class token is not part of these sequences; the caller splits it off and puts it back.
// Backward passes overwrite their outputs. Every pass is one work item per output element (plus a
// per-sample partial sum for the mask token's gradient), so no sums race and results are the same
// on every backend.

#include <cstdint>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"

namespace vasomim::masking {

namespace detail {
inline void check_tokens(const shape& x, const shape& ids, const char* who, const char* what) {
    if (x.rank() != 3 || ids.rank() != 2)
        throw shape_error(std::string(who) + ": needs tokens N x L x D and " + what + " N x K, got " +
                          x.to_string() + " and " + ids.to_string());
    if (x[0] != ids[0])
        throw shape_error(std::string(who) + ": batch sizes differ: tokens " + x.to_string() + ", " + what +
                          " " + ids.to_string());
}
}  // namespace detail

/// out[n, k, :] = x[n, ids_keep[n, k], :]. x: N x L x D, ids_keep: N x K with K <= L.
template <class T, class B>
tensor<T, B> gather_visible(const tensor<T, B>& x, const tensor<std::int64_t, B>& ids_keep) {
    detail::check_tokens(x.shape(), ids_keep.shape(), "masking::gather_visible", "ids_keep");
    const index_t n = x.dim(0), l = x.dim(1), d = x.dim(2), k = ids_keep.dim(1);
    if (k > l)
        throw shape_error("masking::gather_visible: " + std::to_string(k) + " visible of only " +
                          std::to_string(l) + " tokens");
    tensor<T, B> out(shape{n, k, d});
    const T* src = x.data();
    const std::int64_t* ids = ids_keep.data();
    T* dst = out.data();
    parallel_for<B>(n * k * d, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
        const index_t c = idx % d, row = idx / d, i = row / k;
        dst[idx] = src[(i * l + ids[row]) * d + c];
    });
    return out;
}

/// Gradient of gather_visible: grad_x[n, ids_keep[n, k], :] = grad_out[n, k, :], zero at the masked
/// patches. grad_out: N x K x D; returns N x num_patches x D.
template <class T, class B>
tensor<T, B> gather_visible_backward(const tensor<T, B>& grad_out, const tensor<std::int64_t, B>& ids_keep,
                                     index_t num_patches) {
    detail::check_tokens(grad_out.shape(), ids_keep.shape(), "masking::gather_visible_backward", "ids_keep");
    const index_t n = grad_out.dim(0), k = grad_out.dim(1), d = grad_out.dim(2), l = num_patches;
    if (ids_keep.dim(1) != k || k > l)
        throw shape_error("masking::gather_visible_backward: gradient " + grad_out.shape().to_string() +
                          " does not fit ids_keep " + ids_keep.shape().to_string() + " of " +
                          std::to_string(l) + " patches");
    tensor<T, B> grad_x(shape{n, l, d});  // zero: masked patches get no gradient
    const T* g = grad_out.data();
    const std::int64_t* ids = ids_keep.data();
    T* dst = grad_x.data();
    // ids_keep holds distinct patches per row, so the scatter writes every element at most once.
    parallel_for<B>(n * k * d, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
        const index_t c = idx % d, row = idx / d, i = row / k;
        dst[(i * l + ids[row]) * d + c] = g[idx];
    });
    return grad_x;
}

/// Decoder unshuffle: out[n, l, :] = r < K ? x[n, r, :] : mask_token[:], r = ids_restore[n, l].
/// x: N x K x D visible tokens, mask_token: D values, ids_restore: N x L.
template <class T, class B>
tensor<T, B> unshuffle(const tensor<T, B>& x, const tensor<T, B>& mask_token,
                       const tensor<std::int64_t, B>& ids_restore) {
    detail::check_tokens(x.shape(), ids_restore.shape(), "masking::unshuffle", "ids_restore");
    const index_t n = x.dim(0), k = x.dim(1), d = x.dim(2), l = ids_restore.dim(1);
    if (mask_token.numel() != d)
        throw shape_error("masking::unshuffle: mask token " + mask_token.shape().to_string() +
                          " does not match the token width " + std::to_string(d));
    if (k > l)
        throw shape_error("masking::unshuffle: " + std::to_string(k) + " visible tokens exceed L = " +
                          std::to_string(l));
    tensor<T, B> out(shape{n, l, d});
    const T* src = x.data();
    const T* tok = mask_token.data();
    const std::int64_t* r = ids_restore.data();
    T* dst = out.data();
    parallel_for<B>(n * l * d, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
        const index_t c = idx % d, row = idx / d, i = row / l;
        const std::int64_t s = r[row];
        dst[idx] = s < k ? src[(i * k + s) * d + c] : tok[c];
    });
    return out;
}

/// Gradients of unshuffle.
template <class T, class B>
struct unshuffle_grads {
    tensor<T, B> x;           ///< N x K x D
    tensor<T, B> mask_token;  ///< D, summed over every masked position of the batch
};

/// Backward of unshuffle: grad_x[n, r, :] = grad_out[n, l, :] for r = ids_restore[n, l] < K;
/// grad_mask_token = sum of grad_out over the masked positions (r >= K). grad_out: N x L x D.
template <class T, class B>
unshuffle_grads<T, B> unshuffle_backward(const tensor<T, B>& grad_out, const tensor<std::int64_t, B>& ids_restore,
                                         index_t num_visible) {
    detail::check_tokens(grad_out.shape(), ids_restore.shape(), "masking::unshuffle_backward", "ids_restore");
    const index_t n = grad_out.dim(0), l = grad_out.dim(1), d = grad_out.dim(2), k = num_visible;
    if (ids_restore.dim(1) != l || k < 0 || k > l)
        throw shape_error("masking::unshuffle_backward: gradient " + grad_out.shape().to_string() +
                          " does not fit ids_restore " + ids_restore.shape().to_string() + " with " +
                          std::to_string(k) + " visible tokens");
    unshuffle_grads<T, B> grads{tensor<T, B>(shape{n, k, d}), tensor<T, B>(shape{d})};
    const T* g = grad_out.data();
    const std::int64_t* r = ids_restore.data();
    T* gx = grads.x.data();
    // ids_restore is a permutation per row: every visible slot receives exactly one gradient.
    parallel_for<B>(n * l * d, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
        const index_t c = idx % d, row = idx / d, i = row / l;
        const std::int64_t s = r[row];
        if (s < k) gx[(i * k + s) * d + c] = g[idx];
    });
    // Mask token: per-sample partial sums over the sequence, then over the batch in a fixed order.
    tensor<T, B> partial(shape{n, d});
    T* part = partial.data();
    parallel_for<B>(n * d, [=] VASOMIM_HOST_DEVICE(std::int64_t idx) {
        const index_t c = idx % d, i = idx / d;
        T acc = T(0);
        for (index_t j = 0; j < l; ++j)
            if (r[i * l + j] >= k) acc += g[(i * l + j) * d + c];
        part[idx] = acc;
    });
    T* gt = grads.mask_token.data();
    parallel_for<B>(d, [=] VASOMIM_HOST_DEVICE(std::int64_t c) {
        T acc = T(0);
        for (index_t i = 0; i < n; ++i) acc += part[i * d + c];
        gt[c] = acc;
    });
    return grads;
}

}  // namespace vasomim::masking
