#pragma once
// A non-owning view: backend pointer + shape + strides. Views of host-accessible backends can be
// indexed directly; views of device memory only carry the pointer to backend algorithms.

#include <array>
#include <cstdint>
#include <type_traits>

#include "vasomim/backend/traits.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim {

template <class T, class B>
class tensor_view {
public:
    using value_type = std::remove_const_t<T>;
    using backend_type = B;

    tensor_view() = default;
    /// A contiguous (row-major) view of `s.numel()` elements at `data`.
    tensor_view(T* data, const vasomim::shape& s) : data_(data), shape_(s), strides_(s.contiguous_strides()) {}
    tensor_view(T* data, const vasomim::shape& s, const std::array<index_t, shape::max_rank>& strides)
        : data_(data), shape_(s), strides_(strides) {}

    /// A const view of a mutable one (a converting constructor rather than a conversion operator:
    /// nvcc warns (#554) about a conversion operator of a const view to its own type).
    template <class U>
        requires std::is_same_v<T, const U>
    tensor_view(const tensor_view<U, B>& other) : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    T* data() const { return data_; }
    const vasomim::shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    index_t dim(int i) const { return shape_[i]; }
    index_t numel() const { return shape_.numel(); }
    index_t stride(int i) const { return strides_[i]; }
    const std::array<index_t, shape::max_rank>& strides() const { return strides_; }

    bool is_contiguous() const {
        const auto c = shape_.contiguous_strides();
        for (int i = 0; i < shape_.rank(); ++i)
            if (shape_[i] > 1 && strides_[i] != c[i]) return false;
        return true;
    }

    /// The sub-view at index i of the first dimension (rank - 1).
    tensor_view slice(index_t i) const {
        if (shape_.rank() == 0) throw shape_error("tensor_view::slice on a rank-0 view");
        if (i < 0 || i >= shape_[0])
            throw shape_error("tensor_view::slice: index " + std::to_string(i) +
                              " out of range for shape " + shape_.to_string());
        vasomim::shape s;
        std::array<index_t, shape::max_rank> st{};
        for (int d = 1; d < shape_.rank(); ++d) {
            s.push_back(shape_[d]);
            st[d - 1] = strides_[d];
        }
        return {data_ + i * strides_[0], s, st};
    }

    /// Element access; only for backends whose memory the host can read.
    template <class... I>
        requires(sizeof...(I) >= 1 && (std::is_integral_v<I> && ...))
    T& operator()(I... idx) const {
        static_assert(backend_traits<B>::host_accessible,
                      "vasomim: element access needs a host-accessible backend; copy to the host first");
        const index_t ids[] = {static_cast<index_t>(idx)...};
        index_t off = 0;
        for (std::size_t d = 0; d < sizeof...(I); ++d) off += ids[d] * strides_[d];
        return data_[off];
    }

private:
    T* data_ = nullptr;
    vasomim::shape shape_;
    std::array<index_t, shape::max_rank> strides_{};
};

}  // namespace vasomim
