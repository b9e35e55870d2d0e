#pragma once
// InstanceNorm2d (PyTorch semantics, track_running_stats=False): every (image, channel) plane is
// normalised with its own mean and biased variance, eps 1e-5, in training and evaluation alike;
// affine (per-channel weight and bias) optional, as torch's affine flag (MONAI's norm_name
// "instance" is torch's default, affine=False). Plane sums accumulate in double.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"

namespace vasomim::nn {

inline constexpr double instance_norm_eps = 1e-5;

/// n images of c channels with hw pixels each (NCHW).
struct instance_norm_dims {
    index_t n, c, hw;
};

/// Forward: out = (x - mean) * rstd (* w[c] + b[c] when w, b are given; both or neither). mean and
/// rstd ([n * c], one per plane) are written for backward. out may alias x.
template <backend_policy B, class T>
void instance_norm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, const instance_norm_dims& d,
                           double eps = instance_norm_eps) {
    const index_t c = d.c, hw = d.hw;
    parallel_for<B>(d.n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t pl) {
        const T* xr = x + pl * hw;
        const double mud = detail::lane_sum<double>(xr, static_cast<const T*>(nullptr), hw) / static_cast<double>(hw);
        const double vd = detail::lane_sum_centered<double>(xr, static_cast<const T*>(nullptr), mud, hw) /
                          static_cast<double>(hw);
        const double rsd = 1.0 / scalar::sqrt_(vd + eps);
        mean[pl] = static_cast<T>(mud);
        rstd[pl] = static_cast<T>(rsd);
        const index_t ch = pl % c;
        const T sc = static_cast<T>(w ? rsd * static_cast<double>(w[ch]) : rsd);
        const T sh = static_cast<T>((b ? static_cast<double>(b[ch]) : 0.0) - mud * static_cast<double>(sc));
        T* o = out + pl * hw;
        for (index_t j = 0; j < hw; ++j) o[j] = xr[j] * sc + sh;
    });
}

/// Backward with the statistics saved by forward. dw, db accumulate (affine only; may be null); dx
/// is overwritten, or accumulated onto when `accumulate_dx` (it must not alias dout then).
template <backend_policy B, class T>
void instance_norm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* mean, const T* rstd, const T* w,
                            const instance_norm_dims& d, bool accumulate_dx = false) {
    const index_t n = d.n, c = d.c, hw = d.hw;
    if (dw || db)  // per channel over the batch: sum dout and sum dout * xhat
        parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
            double sg = 0, sgx = 0;
            for (index_t i = 0; i < n; ++i) {
                const index_t pl = i * c + ch;
                sg += detail::lane_sum<double>(dout + pl * hw, static_cast<const T*>(nullptr), hw);
                sgx += detail::lane_sum_centered<double>(x + pl * hw, dout + pl * hw, static_cast<double>(mean[pl]), hw) *
                       static_cast<double>(rstd[pl]);
            }
            if (dw) dw[ch] += static_cast<T>(sgx);
            if (db) db[ch] += static_cast<T>(sg);
        });
    if (!dx) return;
    parallel_for<B>(n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t pl) {
        const index_t k0 = pl * hw;
        const T mu = mean[pl], rs = rstd[pl];
        const double sgd = detail::lane_sum<double>(dout + k0, static_cast<const T*>(nullptr), hw);
        const double sgxd = detail::lane_sum_centered<double>(x + k0, dout + k0, static_cast<double>(mu), hw);
        const T m = static_cast<T>(hw), sc = (w ? w[pl % c] : T(1)) * rs;
        const T mg = static_cast<T>(sgd) / m, kx = rs * static_cast<T>(sgxd * static_cast<double>(rs)) / m;
        const T* g = dout + k0;
        const T* xr = x + k0;
        T* o = dx + k0;
        if (accumulate_dx)
            for (index_t j = 0; j < hw; ++j) o[j] += sc * (g[j] - mg - (xr[j] - mu) * kx);
        else
            for (index_t j = 0; j < hw; ++j) o[j] = sc * (g[j] - mg - (xr[j] - mu) * kx);
    });
}

}  // namespace vasomim::nn
