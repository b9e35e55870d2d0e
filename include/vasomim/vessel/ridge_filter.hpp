#pragma once
// What Frangi, Sato and Meijering share: their options (scikit-image >= 0.20 names and defaults),
// argument checks, and the loop over scales that computes the Hessian of the (possibly negated)
// image once per sigma and hands it to the filter.

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/eigenvalues.hpp"
#include "vasomim/vessel/hessian.hpp"

namespace vasomim::vessel {

/// Options of every ridge filter. Defaults are scikit-image's: sigmas 1, 3, 5, 7, 9, dark ridges
/// on a bright background, mode reflect.
struct ridge_options {
    std::vector<double> sigmas{1, 3, 5, 7, 9};
    bool black_ridges = true;  ///< false: bright ridges (the image is negated first)
    boundary_mode mode = boundary_mode::reflect;
    double cval = 0.0;
    kernel_precision precision = kernel_precision::exact;
    std::optional<double> truncate;  ///< unset: 8 if sigma > 1 else 100 (scikit-image)

    hessian_options hessian() const { return {mode, cval, precision, truncate}; }
};

/// The response type of a filter on pixels of type T (float for float images, double otherwise,
/// as scikit-image's float promotion).
template <class T>
using response_t = compute_t<std::remove_const_t<T>>;

namespace detail {

inline void check_ridge_options(const ridge_options& o, const std::string& what) {
    if (o.sigmas.empty()) throw value_error(what + ": the list of sigmas is empty");
    for (double s : o.sigmas) check_sigma(s, what);
    check_hessian_options(o.hessian(), what);
}

/// The checks every ridge filter makes on its input and options.
template <class T, class B>
void check_ridge_input(const tensor_view<const T, B>& image, const ridge_options& o, const std::string& what) {
    require_image(image, what);
    check_ridge_options(o, what);
    if (image.is_contiguous()) {
        require_finite<T, B>(image.data(), image.numel(), what);
    } else if constexpr (std::is_floating_point_v<T>) {
        if constexpr (backend_traits<B>::host_accessible) {
            for (index_t i = 0; i < image.dim(0); ++i)
                for (index_t j = 0; j < image.dim(1); ++j)
                    if (!std::isfinite(static_cast<double>(image(i, j))))
                        throw value_error(what + ": the image holds NaN or infinite pixels (first at " +
                                          std::to_string(i) + ", " + std::to_string(j) + ")");
        }
    }
}

/// Validates, then calls per_scale(sigma, hessian_planes) for every sigma in order.
template <class T, class B, class PerScale>
void for_each_scale(const tensor_view<const T, B>& image, const ridge_options& o, const std::string& what,
                    PerScale&& per_scale) {
    using R = compute_t<T>;
    check_ridge_input(image, o, what);
    hessian_planes<R, B> h;
    hessian_workspace<R, B> ws;
    const auto ho = o.hessian();
    const R sign = o.black_ridges ? R(1) : R(-1);
    for (double sigma : o.sigmas) {
        hessian_into(image, sigma, ho, sign, h, ws, true);
        per_scale(sigma, static_cast<const hessian_planes<R, B>&>(h));
    }
}

#if !VASOMIM_HAS_CUDA
/// The fused cpu form (when reorderable(o.hessian())): for every sigma (index k), the Hessian
/// rows go straight to row_sink(k)(i, rr, rc, cc), called from parallel threads once per row,
/// without Hessian planes; after(k) runs once the sigma is done. kernels(k) (called before
/// row_sink(k)) gives the sigma's kernels; without it, make_hessian_kernels' ridge kernels. The
/// image is checked first.
template <class T, class RowSink, class After, class Kernels>
void for_each_scale_rows(const tensor_view<const T, backend::cpu>& image, const ridge_options& o,
                         RowSink&& row_sink, After&& after, Kernels&& kernels) {
    using R = compute_t<T>;
    hessian_workspace<R, backend::cpu> local;
    auto& ws = cached_workspace<R>(image.numel(), local);
    const auto ho = o.hessian();
    const R sign = o.black_ridges ? R(1) : R(-1);
    // sign * image in R, converted once for all sigmas (hessian_cpu would convert it per call).
    const tensor_view<const R, backend::cpu> plane(signed_plane(image, sign, ws), shape{image.dim(0), image.dim(1)});
    for (std::size_t k = 0; k < o.sigmas.size(); ++k) {
        const hessian_kernels<R> kk = kernels(k);
        hessian_cpu(plane, kk.g, kk.d, ho.mode, static_cast<R>(ho.cval), R(1), ws, static_cast<R*>(nullptr),
                    static_cast<R*>(nullptr), static_cast<R*>(nullptr), nullptr, false, row_sink(k));
        after(k);
    }
}

template <class T, class RowSink, class After>
void for_each_scale_rows(const tensor_view<const T, backend::cpu>& image, const ridge_options& o,
                         RowSink&& row_sink, After&& after) {
    using R = compute_t<T>;
    const auto ho = o.hessian();
    for_each_scale_rows(image, o, row_sink, after,
                        [&](std::size_t k) { return make_hessian_kernels<R>(o.sigmas[k], ho, true); });
}
#endif

/// A const view of any tensor view.
template <class T, class B>
tensor_view<const std::remove_const_t<T>, B> as_const(const tensor_view<T, B>& v) {
    return {v.data(), v.shape(), v.strides()};
}

}  // namespace detail
}  // namespace vasomim::vessel
