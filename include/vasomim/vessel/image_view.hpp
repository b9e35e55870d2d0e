#pragma once
// Host images from user containers without copies, for the cpu backend: raw pointer + shape
// (+ strides), xtensor containers and strided views, Eigen matrices and maps (row- or column-major,
// strided blocks). Lazy xtensor expressions and Eigen expressions without storage are evaluated
// once. Every ridge filter and the pseudo-label pipeline accept these directly; results come back
// as tensor<R, backend::cpu> (as_xtensor copies one into an xtensor).

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <Eigen/Core>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xutils.hpp>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/meijering.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vasomim/vessel/sato.hpp"

namespace vasomim::vessel {

/// A rows x cols host image at `data`, element (i, j) at data[i * row_stride + j * col_stride]
/// (row_stride defaults to cols: row-major contiguous). Nothing is copied.
template <class T>
tensor_view<const T, backend::cpu> image_view(const T* data, index_t rows, index_t cols, index_t row_stride = -1,
                                              index_t col_stride = 1) {
    if (!data && rows * cols > 0) throw value_error("image_view: null data pointer for a non-empty image");
    if (rows < 0 || cols < 0) throw shape_error("image_view: negative extent");
    std::array<index_t, shape::max_rank> st{};
    st[0] = row_stride < 0 ? cols : row_stride;
    st[1] = col_stride;
    return {data, shape{rows, cols}, st};
}

/// A view of a 2-D xtensor container or strided view (xarray, xtensor, xt::adapt, xt::view with
/// ranges...). Lazy expressions have no memory: evaluate them first (the filter overloads below do).
template <class E>
    requires xt::has_data_interface<E>::value
tensor_view<const typename E::value_type, backend::cpu> image_view(const xt::xexpression<E>& expr) {
    const E& e = expr.derived_cast();
    if (e.dimension() != 2)
        throw shape_error("image_view: expected a 2-D xtensor expression, got " + std::to_string(e.dimension()) + " dimensions");
    const auto rows = static_cast<index_t>(e.shape()[0]), cols = static_cast<index_t>(e.shape()[1]);
    return image_view(e.data() + e.data_offset(), rows, cols, static_cast<index_t>(e.strides()[0]),
                      static_cast<index_t>(e.strides()[1]));
}

/// A view of an Eigen matrix, map or block with direct access (any storage order, any strides).
template <class D>
    requires requires(const D& m) {
        m.data();
        m.rowStride();
        m.colStride();
    }
tensor_view<const typename D::Scalar, backend::cpu> image_view(const Eigen::DenseBase<D>& matrix) {
    const D& m = matrix.derived();
    return image_view(m.data(), static_cast<index_t>(m.rows()), static_cast<index_t>(m.cols()),
                      static_cast<index_t>(m.rowStride()), static_cast<index_t>(m.colStride()));
}

namespace detail {
/// Calls f(view) on an xtensor / Eigen source, evaluating it first only when it has no memory.
template <class Src, class F>
auto with_host_view(const Src& src, F&& f) {
    if constexpr (requires { image_view(src); }) {
        return f(image_view(src));
    } else if constexpr (std::is_base_of_v<xt::xexpression<Src>, Src>) {
        // Evaluated into an xarray explicitly: xt::eval in xtensor 0.24 gives a 4-D xtensor for
        // functions of xarrays (their shape is an svector of capacity 4).
        const xt::xarray<typename Src::value_type> ev = src;
        return f(image_view(ev));
    } else {
        using S = typename Src::Scalar;
        const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m = src;
        return f(image_view(m));
    }
}
template <class Src>
concept host_image_source =
    std::is_base_of_v<xt::xexpression<Src>, Src> || std::is_base_of_v<Eigen::EigenBase<Src>, Src>;
}  // namespace detail

template <detail::host_image_source Src>
auto frangi(const Src& src, const frangi_options& o = {}) {
    return detail::with_host_view(src, [&](auto v) { return frangi(v, o); });
}
template <detail::host_image_source Src>
auto sato(const Src& src, const sato_options& o = {}) {
    return detail::with_host_view(src, [&](auto v) { return sato(v, o); });
}
template <detail::host_image_source Src>
auto meijering(const Src& src, const meijering_options& o = {}) {
    return detail::with_host_view(src, [&](auto v) { return meijering(v, o); });
}
template <detail::host_image_source Src>
auto pseudo_label(const Src& src, const pseudo_label_options& o = {}) {
    return detail::with_host_view(src, [&](auto v) { return pseudo_label(v, o); });
}

/// A copy of a 2-D host tensor as an xtensor.
template <class R>
xt::xtensor<R, 2> as_xtensor(const tensor<R, backend::cpu>& t) {
    if (t.rank() != 2) throw shape_error("as_xtensor: expected a 2-D tensor, got " + t.shape().to_string());
    xt::xtensor<R, 2> out = xt::xtensor<R, 2>::from_shape({static_cast<std::size_t>(t.dim(0)), static_cast<std::size_t>(t.dim(1))});
    std::copy(t.data(), t.data() + t.numel(), out.data());
    return out;
}

}  // namespace vasomim::vessel

#endif  // !VASOMIM_HAS_CUDA
