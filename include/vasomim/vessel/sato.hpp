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
template <class T, class B>
tensor<response_t<T>, B> sato(tensor_view<T, B> image, const sato_options& o = {}) {
    using R = response_t<T>;
    const auto img = detail::as_const(image);
    tensor<R, B> out(img.shape());
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
