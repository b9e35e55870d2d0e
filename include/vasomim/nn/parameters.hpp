#pragma once
// The named parameter set of a model: every tensor has a timm/MAE name, a shape and an offset in
// one flat buffer. One flat buffer for values and one for gradients (same offsets) make the
// optimiser a single kernel and checkpoints a walk over this table.

#include <string>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/nn/arena.hpp"

namespace vasomim::nn {

/// One named tensor in the flat parameter buffer.
struct parameter_entry {
    std::string name;
    vasomim::shape shape;
    index_t offset = 0;
    bool trainable = true;  ///< false for fixed tensors (sin-cos position embeddings)
    bool decay = true;      ///< weight decay applies (the released add_weight_decay: not 1-D, not biases)
    index_t numel() const { return shape.numel(); }
};

/// How a tensor is initialised by a model's init (see model/mae.hpp).
class parameter_table {
public:
    /// Appends a tensor; returns its offset. Names must be unique.
    index_t add(const std::string& name, const vasomim::shape& s, bool trainable = true, bool decay = true) {
        for (const auto& e : entries_)
            if (e.name == name) throw config_error("parameter_table: duplicate parameter name '" + name + "'");
        parameter_entry e{name, s, layout_.take(s.numel()), trainable, decay};
        entries_.push_back(e);
        return e.offset;
    }
    /// A weight matrix (decayed) or a bias / norm parameter (not decayed, by rank).
    index_t add_auto(const std::string& name, const vasomim::shape& s) { return add(name, s, true, s.rank() > 1); }

    const std::vector<parameter_entry>& entries() const { return entries_; }
    /// Total elements of the flat buffer including alignment padding.
    index_t size() const { return layout_.size(); }
    /// Elements in named tensors (no padding).
    index_t count(bool trainable_only = false) const {
        index_t n = 0;
        for (const auto& e : entries_)
            if (e.trainable || !trainable_only) n += e.numel();
        return n;
    }
    const parameter_entry& find(const std::string& name) const {
        for (const auto& e : entries_)
            if (e.name == name) return e;
        throw config_error("parameter_table: no parameter named '" + name + "'");
    }
    bool contains(const std::string& name) const {
        for (const auto& e : entries_)
            if (e.name == name) return true;
        return false;
    }

private:
    std::vector<parameter_entry> entries_;
    arena_layout layout_;
};

}  // namespace vasomim::nn
