#pragma once
// Sato tubeness (scikit-image >= 0.20, 2-D): per sigma, sigma^2 * max(l1, 0) with l1 the larger
// Hessian eigenvalue; the output is the pixel-wise maximum over sigmas (from 0).

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/vessel/ridge_filter.hpp"

namespace vasomim::vessel {

using sato_options = ridge_options;

namespace detail {
template <class R>
struct sato_kernel {
    const R *rr, *rc, *cc;
    R* out;
    R sigma2;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        R l1, l2;
        eigenvalues2(rr[i], rc[i], cc[i], l1, l2);
        const R v = sigma2 * (l1 > R(0) ? l1 : R(0));
        if (v > out[i]) out[i] = v;
    }
};
}  // namespace detail

/// Sato tubeness of a 2-D image (at least 2 x 2, finite pixels), type response_t<T>. Throws as
/// frangi does for bad sigmas, truncate, shapes or pixels.
#if !VASOMIM_HAS_CUDA
namespace detail {
/// cpu: out row = max(out row, sigma^2 max(l1, 0)) straight from the Hessian rows.
template <class R>
struct sato_row_sink {
    R* out;
    std::int64_t cols;
    R sigma2;
    void operator()(std::int64_t i, const R* __restrict rr, const R* __restrict rc, const R* __restrict cc) const {
        R* __restrict o = out + i * cols;
        for (std::int64_t j = 0; j < cols; ++j) {
            R l1, l2;
            eigenvalues2(rr[j], rc[j], cc[j], l1, l2);
            const R v = sigma2 * (l1 > R(0) ? l1 : R(0));
            o[j] = v > o[j] ? v : o[j];
        }
    }
};
}  // namespace detail
#endif

template <class T, class B>
tensor<response_t<T>, B> sato(tensor_view<T, B> image, const sato_options& o = {}) {
    using R = response_t<T>;
    const auto img = detail::as_const(image);
    tensor<R, B> out(img.shape());
#if !VASOMIM_HAS_CUDA
    if constexpr (std::is_same_v<B, backend::cpu>) {
        if (detail::reorderable(o.hessian())) {  // fused rows, no Hessian planes
            detail::check_ridge_input(img, o, "sato");
            detail::for_each_scale_rows(
                img, o,
                [&](std::size_t k) {
                    return detail::sato_row_sink<R>{out.data(), img.dim(1), static_cast<R>(o.sigmas[k] * o.sigmas[k])};
                },
                [](std::size_t) {});
            return out;
        }
    }
#endif
    detail::for_each_scale(img, o, "sato", [&](double sigma, const hessian_planes<R, B>& h) {
        parallel_for<B>(h.rr.numel(), detail::sato_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), out.data(),
                                                             static_cast<R>(sigma * sigma)});
    });
    return out;
}

template <class T, class B>
tensor<response_t<T>, B> sato(const tensor<T, B>& image, const sato_options& o = {}) {
    return sato(image.view(), o);
}

}  // namespace vasomim::vessel
