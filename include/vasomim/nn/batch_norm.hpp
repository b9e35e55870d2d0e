#pragma once
// BatchNorm2d (PyTorch semantics): training normalises with the batch statistics (biased variance)
// and updates running_mean / running_var with momentum 0.1 (unbiased variance for running_var);
// eval normalises with the running statistics. eps 1e-5. Per-channel sums run over n*h*w elements
// and cancel strongly in the backward, so they accumulate in double.
// sync_batch_norm_forward / _backward: the same over the batches of every rank of data-parallel
// training (PyTorch SyncBatchNorm), through a host-side cross_rank_sum.

#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/cross_rank_sum.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"

namespace vasomim::nn {

inline constexpr double batch_norm_eps = 1e-5;
inline constexpr double batch_norm_momentum = 0.1;

/// n images of c channels with hw pixels each (NCHW).
struct batch_norm_dims {
    index_t n, c, hw;
};

namespace detail {
/// Channel ch of every image: out = x * sc + sh.
template <class T>
VASOMIM_HOST_DEVICE inline void scale_shift_channel(T* out, const T* x, index_t ch, index_t n, index_t c, index_t hw,
                                                    T sc, T sh) {
    for (index_t i = 0; i < n; ++i) {
        const T* xr = x + (i * c + ch) * hw;
        T* o = out + (i * c + ch) * hw;
        for (index_t j = 0; j < hw; ++j) o[j] = xr[j] * sc + sh;
    }
}

/// Running statistics (momentum mom) from a batch mean mu and the sum v of squared deviations
/// over m elements (unbiased variance, as torch).
template <class T>
VASOMIM_HOST_DEVICE inline void update_running_stats(T& running_mean, T& running_var, T mu, T v, double m, T mom) {
    running_mean = (T(1) - mom) * running_mean + mom * mu;
    const T unbiased = m > 1 ? v / static_cast<T>(m - 1) : v;
    running_var = (T(1) - mom) * running_var + mom * unbiased;
}

/// Input gradient of channel ch of every image: sc (dout - mg - (x - mu) kx); dx may alias dout.
template <class T>
VASOMIM_HOST_DEVICE inline void batch_norm_dx_channel(T* dx, const T* dout, const T* x, index_t ch, index_t n, index_t c,
                                                      index_t hw, T sc, T mg, T mu, T kx) {
    for (index_t i = 0; i < n; ++i) {
        const index_t k0 = (i * c + ch) * hw;
        const T* g = dout + k0;
        const T* xr = x + k0;
        T* o = dx + k0;
        for (index_t j = 0; j < hw; ++j) o[j] = sc * (g[j] - mg - (xr[j] - mu) * kx);
    }
}
}  // namespace detail

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
                vd += detail::lane_sum_centered<double>(x + (i * c + ch) * hw, mud, hw);
            mu = static_cast<T>(mud);
            const T v = static_cast<T>(vd);
            rs = static_cast<T>(1.0 / scalar::sqrt_(vd / static_cast<double>(m) + eps));
            detail::update_running_stats(running_mean[ch], running_var[ch], mu, v, static_cast<double>(m), mom);
        } else {
            mu = running_mean[ch];
            rs = T(1) / scalar::sqrt_(running_var[ch] + e);
        }
        mean[ch] = mu;
        rstd[ch] = rs;
        detail::scale_shift_channel(out, x, ch, n, c, hw, rs * w[ch], b[ch] - mu * rs * w[ch]);
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
            double s = 0, sx = 0;  // both sums in one pass over the plane
            detail::lane_sums_gated<double>(x + k, dout + k, static_cast<const T*>(nullptr), T(1), static_cast<double>(mu), hw,
                                            s, sx);
            sgd += s;
            sgxd += sx;
        }
        const T sg = static_cast<T>(sgd), sgx = static_cast<T>(sgxd * static_cast<double>(rs));
        if (dw) dw[ch] += sgx;
        if (db) db[ch] += sg;
        if (!dx) return;
        const T m = static_cast<T>(n * hw), sc = w[ch] * rs;
        const T mg = training ? sg / m : T(0), kx = training ? rs * sgx / m : T(0);
        detail::batch_norm_dx_channel(dx, dout, x, ch, n, c, hw, sc, mg, mu, kx);
    });
}

namespace detail {
/// Sums k doubles of backend memory across ranks, with `count` (host) appended; returns the global count.
template <backend_policy B>
double sum_across_ranks(double* sums, index_t k, double count, const cross_rank_sum& sum) {
    std::vector<double> host(static_cast<std::size_t>(k + 1));
    backend_traits<B>::copy_to_host(sums, static_cast<std::size_t>(k), host.data());
    host[static_cast<std::size_t>(k)] = count;
    sum(host.data(), k + 1);
    backend_traits<B>::copy_from_host(host.data(), static_cast<std::size_t>(k), sums);
    return host[static_cast<std::size_t>(k)];
}
}  // namespace detail

/// Doubles of backend memory that sync_batch_norm_* need for c channels.
inline constexpr index_t sync_batch_norm_scratch(index_t c) { return 2 * c; }

/// Synchronised BatchNorm (PyTorch SyncBatchNorm): batch_norm_forward over the union of every
/// rank's batch. In training, `sum` adds up across ranks the per-channel sums and the element count,
/// then the sums of squares about the global mean (two passes, like the local path, so that N ranks
/// x batch b match one process x batch N b to double round-off); the running statistics take the
/// global mean and unbiased variance (global count). `sums`: sync_batch_norm_scratch(c) doubles of
/// backend memory. In eval, or with an empty `sum`, it is batch_norm_forward.
template <backend_policy B, class T>
void sync_batch_norm_forward(T* out, T* mean, T* rstd, T* running_mean, T* running_var, const T* x, const T* w,
                             const T* b, const batch_norm_dims& d, bool training, const cross_rank_sum& sum,
                             double* sums, double momentum = batch_norm_momentum, double eps = batch_norm_eps) {
    if (!training || !sum) {
        batch_norm_forward<B>(out, mean, rstd, running_mean, running_var, x, w, b, d, training, momentum, eps);
        return;
    }
    const index_t n = d.n, c = d.c, hw = d.hw;
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        double s = 0;
        for (index_t i = 0; i < n; ++i) s += detail::lane_sum<double>(x + (i * c + ch) * hw, static_cast<const T*>(nullptr), hw);
        sums[ch] = s;
    });
    const double m = detail::sum_across_ranks<B>(sums, c, static_cast<double>(n * hw), sum);
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        const double mud = sums[ch] / m;
        double vd = 0;
        for (index_t i = 0; i < n; ++i)
            vd += detail::lane_sum_centered<double>(x + (i * c + ch) * hw, mud, hw);
        sums[c + ch] = vd;
    });
    detail::sum_across_ranks<B>(sums + c, c, 0.0, sum);
    const T mom = static_cast<T>(momentum);
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        const double mud = sums[ch] / m, vd = sums[c + ch];
        const T mu = static_cast<T>(mud), v = static_cast<T>(vd);
        const T rs = static_cast<T>(1.0 / scalar::sqrt_(vd / m + eps));
        detail::update_running_stats(running_mean[ch], running_var[ch], mu, v, m, mom);
        mean[ch] = mu;
        rstd[ch] = rs;
        detail::scale_shift_channel(out, x, ch, n, c, hw, rs * w[ch], b[ch] - mu * rs * w[ch]);
    });
}

/// Backward of sync_batch_norm_forward: dw, db accumulate this rank's share (the gradient sum
/// across ranks completes them, as DDP does for SyncBatchNorm); dx (may alias dout) takes the sums
/// of dy and dy (x - mean) and the count over every rank through `sum`. With dx null no collective
/// is made (every rank must pass a null dx for the same layers). In eval, or with an empty `sum`,
/// it is batch_norm_backward.
template <backend_policy B, class T>
void sync_batch_norm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* mean, const T* rstd,
                              const T* w, const batch_norm_dims& d, bool training, const cross_rank_sum& sum,
                              double* sums) {
    if (!training || !sum) {
        batch_norm_backward<B>(dx, dw, db, dout, x, mean, rstd, w, d, training);
        return;
    }
    const index_t n = d.n, c = d.c, hw = d.hw;
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        const T mu = mean[ch], rs = rstd[ch];
        double sgd = 0, sgxd = 0;
        for (index_t i = 0; i < n; ++i) {
            const index_t k = (i * c + ch) * hw;
            double s = 0, sx = 0;  // both sums in one pass over the plane
            detail::lane_sums_gated<double>(x + k, dout + k, static_cast<const T*>(nullptr), T(1), static_cast<double>(mu), hw,
                                            s, sx);
            sgd += s;
            sgxd += sx;
        }
        if (dw) dw[ch] += static_cast<T>(sgxd * static_cast<double>(rs));
        if (db) db[ch] += static_cast<T>(sgd);
        sums[ch] = sgd;
        sums[c + ch] = sgxd;
    });
    if (!dx) return;
    const double total = detail::sum_across_ranks<B>(sums, 2 * c, static_cast<double>(n * hw), sum);
    const T m = static_cast<T>(total);
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
        const T mu = mean[ch], rs = rstd[ch];
        const T sg = static_cast<T>(sums[ch]), sgx = static_cast<T>(sums[c + ch] * static_cast<double>(rs));
        detail::batch_norm_dx_channel(dx, dout, x, ch, n, c, hw, w[ch] * rs, sg / m, mu, rs * sgx / m);
    });
}

}  // namespace vasomim::nn
