#pragma once
// A small fixed-capacity shape (up to 8 dimensions) with row-major strides. No heap allocation,
// so shapes are cheap to pass around and usable in device functors.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "vasomim/core/config.hpp"
#include "vasomim/core/error.hpp"

namespace vasomim {

using index_t = std::int64_t;

class shape {
public:
    static constexpr int max_rank = 8;

    constexpr shape() = default;
    shape(std::initializer_list<index_t> dims) {
        if (dims.size() > static_cast<std::size_t>(max_rank))
            throw shape_error("shape: rank " + std::to_string(dims.size()) + " exceeds the maximum of 8");
        for (index_t d : dims) push_back(d);
    }
    template <class It>
    shape(It first, It last) {
        for (; first != last; ++first) push_back(static_cast<index_t>(*first));
    }

    void push_back(index_t d) {
        if (rank_ == max_rank) throw shape_error("shape: rank exceeds the maximum of 8");
        if (d < 0) throw shape_error("shape: negative extent " + std::to_string(d));
        dims_[rank_++] = d;
    }

    VASOMIM_HOST_DEVICE constexpr int rank() const { return rank_; }
    VASOMIM_HOST_DEVICE constexpr index_t operator[](int i) const { return dims_[i]; }
    VASOMIM_HOST_DEVICE constexpr index_t& operator[](int i) { return dims_[i]; }

    /// Number of elements (1 for rank 0).
    VASOMIM_HOST_DEVICE constexpr index_t numel() const {
        index_t n = 1;
        for (int i = 0; i < rank_; ++i) n *= dims_[i];
        return n;
    }

    /// Row-major (C order) strides in elements.
    constexpr std::array<index_t, max_rank> contiguous_strides() const {
        std::array<index_t, max_rank> s{};
        index_t acc = 1;
        for (int i = rank_ - 1; i >= 0; --i) {
            s[i] = acc;
            acc *= dims_[i];
        }
        return s;
    }

    const index_t* begin() const { return dims_.data(); }
    const index_t* end() const { return dims_.data() + rank_; }

    friend constexpr bool operator==(const shape& a, const shape& b) {
        if (a.rank_ != b.rank_) return false;
        for (int i = 0; i < a.rank_; ++i)
            if (a.dims_[i] != b.dims_[i]) return false;
        return true;
    }

    /// "(2, 3, 4)" for messages.
    std::string to_string() const {
        std::string s = "(";
        for (int i = 0; i < rank_; ++i) {
            if (i) s += ", ";
            s += std::to_string(dims_[i]);
        }
        return s + ")";
    }

private:
    std::array<index_t, max_rank> dims_{};
    int rank_ = 0;
};

}  // namespace vasomim
