#pragma once
// MAE's masked reconstruction loss: per patch the mean squared error between the prediction and
// the target patch, averaged over masked patches only. With norm_pix the target of each patch is
// (x - mean) / sqrt(var + 1e-6) with the UNBIASED variance (torch.var's default), as in MAE.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"

namespace vasomim::loss {

inline constexpr double norm_pix_eps = 1e-6;

/// Sizes: n samples of L patches of ps values; pred rows of sample b start at row b*(L + skip) + skip
/// of a [n, L + skip, ps] buffer (skip = 1 when the decoder output still holds the cls row).
struct reconstruction_dims {
    index_t n, L, ps, skip = 0;
};

/// Forward: target [n, L, ps] <- (normalised) patches; patch_loss[n, L] <- mean_k (pred - target)^2.
/// Returns nothing: the loss is sum(patch_loss * mask) / sum(mask) (see masked_mean).
template <backend_policy B, class T>
void reconstruction_forward(T* patch_loss, T* target, const T* patches, const T* pred,
                            const reconstruction_dims& d, bool norm_pix) {
    const index_t L = d.L, ps = d.ps, skip = d.skip;
    const T eps = static_cast<T>(norm_pix_eps);
    parallel_for<B>(d.n * L, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const T* x = patches + r * ps;
        T* t = target + r * ps;
        const index_t b = r / L, l = r % L;
        const T* p = pred + ((b * (L + skip)) + skip + l) * ps;
        if (norm_pix) {
            T s = T(0);
            for (index_t k = 0; k < ps; ++k) s += x[k];
            const T mean = s / static_cast<T>(ps);
            T v = T(0);
            for (index_t k = 0; k < ps; ++k) v += (x[k] - mean) * (x[k] - mean);
            const T inv = T(1) / scalar::sqrt_(v / static_cast<T>(ps - 1) + eps);
            for (index_t k = 0; k < ps; ++k) t[k] = (x[k] - mean) * inv;
        } else {
            for (index_t k = 0; k < ps; ++k) t[k] = x[k];
        }
        T e = T(0);
        for (index_t k = 0; k < ps; ++k) e += (p[k] - t[k]) * (p[k] - t[k]);
        patch_loss[r] = e / static_cast<T>(ps);
    });
}

/// sum(v * mask) / sum(mask) over n entries (mask 0/1), on the backend, returned to the host.
template <backend_policy B, class T>
T masked_mean(T* product_scratch, const T* v, const T* mask, index_t n, T mask_sum) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { product_scratch[i] = v[i] * mask[i]; });
    return backend_traits<B>::reduce(product_scratch, static_cast<std::size_t>(n), T(0), plus{}) / mask_sum;
}

/// Backward: dpred (layout of pred, skip rows zeroed) <- dloss * mask * 2 (pred - target) / (ps * mask_sum).
template <backend_policy B, class T>
void reconstruction_backward(T* dpred, const T* pred, const T* target, const T* mask, const reconstruction_dims& d,
                             T mask_sum, T dloss = T(1)) {
    const index_t L = d.L, ps = d.ps, skip = d.skip;
    const T c = dloss * T(2) / (static_cast<T>(ps) * mask_sum);
    parallel_for<B>(d.n * (L + skip) * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t k = o % ps, row = o / ps, b = row / (L + skip), j = row % (L + skip);
        if (j < skip) {
            dpred[o] = T(0);
            return;
        }
        const index_t r = b * L + (j - skip);
        dpred[o] = mask[r] * c * (pred[o] - target[r * ps + k]);
    });
}

}  // namespace vasomim::loss
