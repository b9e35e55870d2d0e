#pragma once
// tensor<T, Backend>: owns backend storage (a std::vector on cpu, a Thrust vector on thrust<S>)
// with a row-major shape. Data moves between host and backend only through explicit calls.

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vasomim/backend/traits.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/core/tensor_view.hpp"

namespace vasomim {

template <class T, backend_policy B>
class tensor {
public:
    using value_type = T;
    using backend_type = B;
    using traits = backend_traits<B>;
    using storage_type = typename traits::template vector<T>;

    /// An empty tensor (shape (0,), no storage).
    tensor() : shape_{0} {}
    /// Zero-initialised tensor of shape `s`.
    explicit tensor(const vasomim::shape& s) : shape_(s), storage_(static_cast<std::size_t>(s.numel())) {}
    /// Tensor of shape `s` filled with `value`.
    tensor(const vasomim::shape& s, T value) : tensor(s) { fill(value); }

    /// Copies host data (row-major) into a new tensor; the sizes must agree.
    static tensor from_host(std::span<const T> host, const vasomim::shape& s) {
        if (static_cast<index_t>(host.size()) != s.numel())
            throw shape_error("tensor::from_host: " + std::to_string(host.size()) +
                              " host values do not fill shape " + s.to_string());
        tensor t(s);
        traits::copy_from_host(host.data(), host.size(), t.data());
        return t;
    }
    static tensor from_host(const std::vector<T>& host, const vasomim::shape& s) {
        return from_host(std::span<const T>(host), s);
    }

    /// A host copy of the elements in row-major order.
    std::vector<T> to_host() const {
        std::vector<T> out(size());
        traits::copy_to_host(data(), size(), out.data());
        return out;
    }

    void fill(T value) { traits::fill(data(), size(), value); }

    /// A deep copy on the same backend.
    tensor clone() const {
        tensor t(shape_);
        traits::copy(data(), size(), t.data());
        return t;
    }

    /// Changes the shape without moving data; the element count must stay the same.
    void reshape(const vasomim::shape& s) {
        if (s.numel() != shape_.numel())
            throw shape_error("tensor::reshape: cannot view " + shape_.to_string() + " as " + s.to_string());
        shape_ = s;
    }

    T* data() { return traits::data(storage_); }
    const T* data() const { return traits::data(storage_); }
    std::size_t size() const { return static_cast<std::size_t>(shape_.numel()); }
    index_t numel() const { return shape_.numel(); }
    const vasomim::shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    index_t dim(int i) const { return shape_[i]; }
    bool empty() const { return size() == 0; }

    tensor_view<T, B> view() { return {data(), shape_}; }
    tensor_view<const T, B> view() const { return {data(), shape_}; }
    operator tensor_view<T, B>() { return view(); }
    operator tensor_view<const T, B>() const { return view(); }

    /// Element access for host-accessible backends.
    template <class... I>
    T& operator()(I... idx) { return view()(idx...); }
    template <class... I>
    const T& operator()(I... idx) const { return view()(idx...); }

private:
    vasomim::shape shape_;
    storage_type storage_;
};

}  // namespace vasomim
