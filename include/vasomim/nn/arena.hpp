#pragma once
// Carving one allocation into named regions. Layers describe the buffers they need as sizes; a
// model adds them up once per (configuration, batch), allocates a single tensor and hands out
// pointers, so forward and backward never allocate.

#include <cstdint>

#include "vasomim/core/shape.hpp"

namespace vasomim::nn {

/// Running offset into an arena; each region starts on a 64-byte boundary (16 floats).
class arena_layout {
public:
    static constexpr index_t alignment = 16;

    /// Reserves `count` elements and returns their offset.
    index_t take(index_t count) {
        const index_t at = size_;
        size_ += (count + alignment - 1) / alignment * alignment;
        return at;
    }
    index_t size() const { return size_; }

private:
    index_t size_ = 0;
};

/// Hands out consecutive regions of a buffer laid out by the same sequence of take() calls.
template <class T>
class arena_cursor {
public:
    explicit arena_cursor(T* base) : base_(base) {}
    T* take(index_t count) { return base_ + layout_.take(count); }
    index_t used() const { return layout_.size(); }

private:
    T* base_;
    arena_layout layout_;
};

}  // namespace vasomim::nn
