#pragma once
// InstanceNorm2d (PyTorch semantics, track_running_stats=False): every (image, channel) plane is
// normalised with its own mean and biased variance, eps 1e-5, in training and evaluation alike;
// affine (per-channel weight and bias) optional, as torch's affine flag (MONAI's norm_name
// "instance" is torch's default, affine=False). Plane sums accumulate in double. The decoder's
// norm - LeakyReLU pairs run fused (instance_norm_leaky_relu_*).

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"
#include "vasomim/nn/leaky_relu.hpp"

namespace vasomim::nn {

inline constexpr double instance_norm_eps = 1e-5;

/// n images of c channels with hw pixels each (NCHW).
struct instance_norm_dims {
    index_t n, c, hw;
};

namespace detail {

/// The forward, with LeakyReLU(slope) applied to the output when `act` (see below).
template <backend_policy B, class T>
void instance_norm_forward_act(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, const instance_norm_dims& d,
                               double eps, bool act, T slope) {
    const index_t c = d.c, hw = d.hw;
    parallel_for<B>(d.n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t pl) {
        const T* xr = x + pl * hw;
        const double mud = lane_sum<double>(xr, static_cast<const T*>(nullptr), hw) / static_cast<double>(hw);
        const double vd = lane_sum_centered<double>(xr, mud, hw) / static_cast<double>(hw);
        const double rsd = 1.0 / scalar::sqrt_(vd + eps);
        mean[pl] = static_cast<T>(mud);
        rstd[pl] = static_cast<T>(rsd);
        const index_t ch = pl % c;
        const T sc = static_cast<T>(w ? rsd * static_cast<double>(w[ch]) : rsd);
        const T sh = static_cast<T>((b ? static_cast<double>(b[ch]) : 0.0) - mud * static_cast<double>(sc));
        T* o = out + pl * hw;
        if (act)
            for (index_t j = 0; j < hw; ++j) {
                const T v = xr[j] * sc + sh;
                o[j] = v > T(0) ? v : slope * v;
            }
        else
            for (index_t j = 0; j < hw; ++j) o[j] = xr[j] * sc + sh;
    });
}

/// The backward; with y (the forward's activated output) dout is the gradient of y, taken back
/// through the LeakyReLU on the fly (y > 0 ? dout : slope * dout).
template <backend_policy B, class T>
void instance_norm_backward_act(T* dx, T* dw, T* db, const T* dout, const T* x, const T* y, T slope, const T* mean,
                                const T* rstd, const T* w, const instance_norm_dims& d, bool accumulate_dx) {
    const index_t n = d.n, c = d.c, hw = d.hw;
    if (dw || db)  // per channel over the batch: sum dout and sum dout * xhat
        parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t ch) {
            double sg = 0, sgx = 0;
            for (index_t i = 0; i < n; ++i) {
                const index_t pl = i * c + ch;
                double s = 0, sx = 0;
                lane_sums_gated<double>(x + pl * hw, dout + pl * hw, y ? y + pl * hw : y, slope,
                                        static_cast<double>(mean[pl]), hw, s, sx);
                sg += s;
                sgx += sx * static_cast<double>(rstd[pl]);
            }
            if (dw) dw[ch] += static_cast<T>(sgx);
            if (db) db[ch] += static_cast<T>(sg);
        });
    if (!dx) return;
    parallel_for<B>(n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t pl) {
        const index_t k0 = pl * hw;
        const T mu = mean[pl], rs = rstd[pl];
        double sgd = 0, sgxd = 0;
        lane_sums_gated<double>(x + k0, dout + k0, y ? y + k0 : y, slope, static_cast<double>(mu), hw, sgd, sgxd);
        const T m = static_cast<T>(hw), sc = (w ? w[pl % c] : T(1)) * rs;
        const T mg = static_cast<T>(sgd) / m, kx = rs * static_cast<T>(sgxd * static_cast<double>(rs)) / m;
        const T* g = dout + k0;
        const T* xr = x + k0;
        const T* yr = y ? y + k0 : y;
        T* o = dx + k0;
        // One loop per case, each of which vectorises.
        if (yr && accumulate_dx)
            for (index_t j = 0; j < hw; ++j) o[j] += sc * ((yr[j] > T(0) ? g[j] : slope * g[j]) - mg - (xr[j] - mu) * kx);
        else if (yr)
            for (index_t j = 0; j < hw; ++j) o[j] = sc * ((yr[j] > T(0) ? g[j] : slope * g[j]) - mg - (xr[j] - mu) * kx);
        else if (accumulate_dx)
            for (index_t j = 0; j < hw; ++j) o[j] += sc * (g[j] - mg - (xr[j] - mu) * kx);
        else
            for (index_t j = 0; j < hw; ++j) o[j] = sc * (g[j] - mg - (xr[j] - mu) * kx);
    });
}

}  // namespace detail

/// Forward: out = (x - mean) * rstd (* w[c] + b[c] when w, b are given; both or neither). mean and
/// rstd ([n * c], one per plane) are written for backward. out may alias x.
template <backend_policy B, class T>
void instance_norm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, const instance_norm_dims& d,
                           double eps = instance_norm_eps) {
    detail::instance_norm_forward_act<B>(out, mean, rstd, x, w, b, d, eps, false, T(1));
}

/// Backward with the statistics saved by forward. dw, db accumulate (affine only; may be null); dx
/// is overwritten, or accumulated onto when `accumulate_dx` (it must not alias dout then).
template <backend_policy B, class T>
void instance_norm_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* mean, const T* rstd, const T* w,
                            const instance_norm_dims& d, bool accumulate_dx = false) {
    detail::instance_norm_backward_act<B>(dx, dw, db, dout, x, static_cast<const T*>(nullptr), T(1), mean, rstd, w, d,
                                          accumulate_dx);
}

/// The norm followed by LeakyReLU(slope), slope > 0 (MONAI's conv - norm - LeakyReLU), in the
/// norm's pass over the output: out = leaky_relu(instance_norm(x)); out may alias x. Saves the
/// activation's own read and write of the map (the decoder's maps are tens of MB).
template <backend_policy B, class T>
void instance_norm_leaky_relu_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b,
                                      const instance_norm_dims& d, double slope = leaky_relu_default_slope,
                                      double eps = instance_norm_eps) {
    detail::instance_norm_forward_act<B>(out, mean, rstd, x, w, b, d, eps, true, static_cast<T>(slope));
}

/// Its backward: dout is the gradient of the activated output y (forward's out; a positive slope
/// keeps the sign, so y says which side of the kink each pixel is on). Otherwise as
/// instance_norm_backward; dx must not alias dout or y.
template <backend_policy B, class T>
void instance_norm_leaky_relu_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* y, const T* mean,
                                       const T* rstd, const T* w, const instance_norm_dims& d,
                                       double slope = leaky_relu_default_slope, bool accumulate_dx = false) {
    detail::instance_norm_backward_act<B>(dx, dw, db, dout, x, y, static_cast<T>(slope), mean, rstd, w, d, accumulate_dx);
}

}  // namespace vasomim::nn
