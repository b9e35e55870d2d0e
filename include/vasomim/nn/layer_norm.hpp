#pragma once
// LayerNorm over the last dimension (biased variance, as torch.nn.LayerNorm); the ViT uses
// eps = 1e-6. Forward keeps the per-row mean and 1/std for the backward pass.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/lane_reduce.hpp"
#include "vasomim/core/scalar_math.hpp"

namespace vasomim::nn {

inline constexpr double layer_norm_eps = 1e-6;

/// out[r, :] = (x[r, :] - mean_r) * rstd_r * w + b for rows r < m of width c; mean and rstd
/// (length m) are saved for layer_norm_backward.
template <backend_policy B, class T>
void layer_norm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, index_t m,
                        index_t c, double eps = layer_norm_eps) {
    const T e = static_cast<T>(eps);
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const T* xr = x + r * c;
        const T mu = lanes::sum<T>(c, [=](index_t i) { return xr[i]; }) / static_cast<T>(c);
        const T v = lanes::sum<T>(c, [=](index_t i) { return (xr[i] - mu) * (xr[i] - mu); });
        const T rs = T(1) / scalar::sqrt_(v / static_cast<T>(c) + e);
        T* o = out + r * c;
        for (index_t i = 0; i < c; ++i) o[i] = (xr[i] - mu) * rs * w[i] + b[i];
        mean[r] = mu;
        rstd[r] = rs;
    });
}

/// out[r, :] = (x[r, :] - mean[r]) * rstd[r] * w + b: the forward output again from the saved row
/// statistics (the ViT block recomputes its LayerNorm outputs in backward instead of keeping them).
template <backend_policy B, class T>
void layer_norm_recompute(T* out, const T* x, const T* mean, const T* rstd, const T* w, const T* b, index_t m,
                          index_t c) {
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const T* xr = x + r * c;
        const T mu = mean[r], rs = rstd[r];
        T* o = out + r * c;
        for (index_t i = 0; i < c; ++i) o[i] = (xr[i] - mu) * rs * w[i] + b[i];
    });
}

/// Backward: dx += d(LN)/dx^T dout (accumulates, as the input of a pre-norm layer is always on a
/// residual stream), dw += sum_r dout * xhat, db += sum_r dout. dx may be null.
template <backend_policy B, class T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* mean,
                         const T* rstd, const T* w, index_t m, index_t c) {
    if (dx)
        parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
            const T* xr = x + r * c;
            const T* g = dout + r * c;
            const T mu = mean[r], rs = rstd[r];
            const T s1 = lanes::sum<T>(c, [=](index_t i) { return g[i] * w[i]; }) / static_cast<T>(c);
            const T s2 =
                lanes::sum<T>(c, [=](index_t i) { return g[i] * w[i] * (xr[i] - mu) * rs; }) / static_cast<T>(c);
            T* d = dx + r * c;
            for (index_t i = 0; i < c; ++i) {
                const T xh = (xr[i] - mu) * rs;
                d[i] += (g[i] * w[i] - s1 - xh * s2) * rs;
            }
        });
    // Parameter gradients: one task per block of 16 channels, rows read contiguously.
    constexpr index_t w16 = 16;
    parallel_for<B>((c + w16 - 1) / w16, [=] VASOMIM_HOST_DEVICE(std::int64_t blk) {
        const index_t i0 = blk * w16, cols = c - i0 < w16 ? c - i0 : w16;
        T sw[w16] = {}, sb[w16] = {};
        for (index_t r = 0; r < m; ++r) {
            const T* g = dout + r * c + i0;
            const T* xr = x + r * c + i0;
            const T mu = mean[r], rs = rstd[r];
            for (index_t i = 0; i < cols; ++i) {
                sw[i] += g[i] * (xr[i] - mu) * rs;
                sb[i] += g[i];
            }
        }
        for (index_t i = 0; i < cols; ++i) {
            dw[i0 + i] += sw[i];
            db[i0 + i] += sb[i];
        }
    });
}

}  // namespace vasomim::nn
