#pragma once
// Meijering neuriteness (scikit-image >= 0.20, 2-D): per sigma, the normalised eigenvalues
// n1 = l1 + alpha l2, n2 = alpha l1 + l2 (alpha = 1/(ndim+1) = 1/3 by default), the one larger in
// magnitude (n1 on ties), clipped at 0 and divided by its maximum over the image when that is
// positive; the output is the pixel-wise maximum over sigmas (from 0).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/vessel/ridge_filter.hpp"

namespace vasomim::vessel {

struct meijering_options : ridge_options {
    std::optional<double> alpha;  ///< unset: 1/3
};

namespace detail {
template <class R>
struct meijering_value_kernel {
    const R *rr, *rc, *cc;
    R* v;
    R alpha;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        R l1, l2;
        eigenvalues2(rr[i], rc[i], cc[i], l1, l2);
        const R n1 = l1 + alpha * l2, n2 = alpha * l1 + l2;
        const R a1 = n1 < 0 ? -n1 : n1, a2 = n2 < 0 ? -n2 : n2;
        const R n = a2 > a1 ? n2 : n1;
        v[i] = n > R(0) ? n : R(0);
    }
};
#if !VASOMIM_HAS_CUDA
/// cpu: the per-sigma value row straight from the Hessian rows.
template <class R>
struct meijering_row_sink {
    R* v;
    std::int64_t cols;
    R alpha;
    void operator()(std::int64_t i, const R* rr, const R* rc, const R* cc) const {
        const meijering_value_kernel<R> k{rr, rc, cc, v + i * cols, alpha};
        for (std::int64_t j = 0; j < cols; ++j) k(j);
    }
};
#endif
template <class R>
struct meijering_max_kernel {
    const R* v;
    R* out;
    R vmax;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        const R x = vmax > R(0) ? v[i] / vmax : v[i];
        if (x > out[i]) out[i] = x;
    }
};
}  // namespace detail

/// Meijering neuriteness of a 2-D image (at least 2 x 2, finite pixels), type response_t<T>.
template <class T, class B>
tensor<response_t<T>, B> meijering(tensor_view<T, B> image, const meijering_options& o = {}) {
    using R = response_t<T>;
    const double alpha = o.alpha ? *o.alpha : 1.0 / 3.0;
    if (!std::isfinite(alpha)) throw value_error("meijering: alpha must be finite, got " + std::to_string(alpha));
    const auto img = detail::as_const(image);
    tensor<R, B> out(img.shape());
    tensor<R, B> v(img.shape());
    auto normalise_into_out = [&] {
        const R vmax = reduce(v, R(0), maximum{});
        parallel_for<B>(v.numel(), detail::meijering_max_kernel<R>{v.data(), out.data(), vmax});
    };
#if !VASOMIM_HAS_CUDA
    if constexpr (std::is_same_v<B, backend::cpu>) {
        if (detail::reorderable(o.hessian())) {  // fused rows, no Hessian planes
            detail::check_ridge_input(img, o, "meijering");
            detail::for_each_scale_rows(
                img, o, [&](std::size_t) { return detail::meijering_row_sink<R>{v.data(), img.dim(1), static_cast<R>(alpha)}; },
                [&](std::size_t) { normalise_into_out(); });
            return out;
        }
    }
#endif
    detail::for_each_scale(img, o, "meijering", [&](double, const hessian_planes<R, B>& h) {
        parallel_for<B>(h.rr.numel(), detail::meijering_value_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), v.data(),
                                                                        static_cast<R>(alpha)});
        normalise_into_out();
    });
    return out;
}

template <class T, class B>
tensor<response_t<T>, B> meijering(const tensor<T, B>& image, const meijering_options& o = {}) {
    return meijering(image.view(), o);
}

}  // namespace vasomim::vessel
