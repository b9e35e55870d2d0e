#pragma once
// BatchNorm2d (PyTorch semantics): training normalises with the batch statistics (biased variance)
// and updates running_mean / running_var with momentum 0.1 (unbiased variance for running_var);
// eval normalises with the running statistics. eps 1e-5. Per-channel sums run over n*h*w elements
// and cancel strongly in the backward, so they accumulate in double.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"

namespace vasomim::nn {

inline constexpr double batch_norm_eps = 1e-5;
inline constexpr double batch_norm_momentum = 0.1;

/// n images of c channels with hw pixels each (NCHW).
struct batch_norm_dims {
    index_t n, c, hw;
};

/// Forward. mean and rstd (length c) are written for backward: batch statistics when training,
/// the running ones in eval. Training updates running_mean / running_var in place.
template <backend_policy B, class T>
void batch_norm_forward(T* out, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* w,
                        const T* b, const batch_norm_dims& d, bool training, double momentum = batch_norm_momentum,
                        double eps = batch_norm_eps) {
    const index_t n = d.n, c = d.c, hw = d.hw;
    const T e = static_cast<T>(eps), mom = static_cast<T>(momentum);
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        T mu, rs;
        if (training) {
            const index_t m = n * hw;
            double s = 0;
            for (index_t i = 0; i < n; ++i) s += detail::lane_sum<double>(x + (i * c + ch) * hw, static_cast<const T*>(nullptr), hw);
            const double mud = s / static_cast<double>(m);
            double vd = 0;
            for (index_t i = 0; i < n; ++i)
                vd += detail::lane_sum_centered<double>(x + (i * c + ch) * hw, static_cast<const T*>(nullptr), mud, hw);
            mu = static_cast<T>(mud);
            const T v = static_cast<T>(vd);
            rs = static_cast<T>(1.0 / scalar::sqrt_(vd / static_cast<double>(m) + eps));
            running_mean[ch] = (T(1) - mom) * running_mean[ch] + mom * mu;
            const T unbiased = m > 1 ? v / static_cast<T>(m - 1) : v;
            running_var[ch] = (T(1) - mom) * running_var[ch] + mom * unbiased;
        } else {
            mu = running_mean[ch];
            rs = T(1) / scalar::sqrt_(running_var[ch] + e);
        }
        mean[ch] = mu;
        rstd[ch] = rs;
        const T sc = rs * w[ch], sh = b[ch] - mu * rs * w[ch];
        for (index_t i = 0; i < n; ++i) {
            const T* xr = x + (i * c + ch) * hw;
            T* o = out + (i * c + ch) * hw;
            for (index_t j = 0; j < hw; ++j) o[j] = xr[j] * sc + sh;
        }
    });
}

/// Backward with the statistics saved by forward: dw, db accumulate (may be null); dx (may be null,
/// may alias dout) is overwritten. In eval mode the statistics are constants.
template <backend_policy B, class T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* mean, const T* rstd, const T* w,
                         const batch_norm_dims& d, bool training) {
    const index_t n = d.n, c = d.c, hw = d.hw;
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        const T mu = mean[ch], rs = rstd[ch];
        double sgd = 0, sgxd = 0;
        for (index_t i = 0; i < n; ++i) {
            const index_t k = (i * c + ch) * hw;
            sgd += detail::lane_sum<double>(dout + k, static_cast<const T*>(nullptr), hw);
            sgxd += detail::lane_sum_centered<double>(x + k, dout + k, static_cast<double>(mu), hw);
        }
        const T sg = static_cast<T>(sgd), sgx = static_cast<T>(sgxd * static_cast<double>(rs));
        if (dw) dw[ch] += sgx;
        if (db) db[ch] += sg;
        if (!dx) return;
        const T m = static_cast<T>(n * hw), sc = w[ch] * rs;
        const T mg = training ? sg / m : T(0), kx = training ? rs * sgx / m : T(0);
        for (index_t i = 0; i < n; ++i) {
            const index_t k0 = (i * c + ch) * hw;
            const T* g = dout + k0;
            const T* xr = x + k0;
            T* o = dx + k0;
            for (index_t j = 0; j < hw; ++j) o[j] = sc * (g[j] - mg - (xr[j] - mu) * kx);
        }
    });
}

}  // namespace vasomim::nn
