#pragma once
// Layer-wise learning-rate decay for fine-tuning a ViT, as MAE's param_groups_lrd (util/lr_decay.py,
// DESIGN 4.6): layer 0 = patch embedding, cls token and position embedding; block i = layer i + 1;
// everything else (the encoder's final norm, any decoder or head) = layer depth + 1; an entry's
// learning rate is lr * decay^(depth + 1 - layer). The scales go to optim::adamw's constructor (one
// per parameter-table entry); weight decay stays the table's (DESIGN 4.5).

#include <string>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::optim {

/// MAE's get_layer_id_for_vit(name, depth + 1).
inline index_t vit_layer_id(const std::string& name, index_t depth) {
    if (name == "cls_token" || name == "pos_embed" || name.starts_with("patch_embed")) return 0;
    if (name.starts_with("blocks.")) {
        const auto dot = name.find('.', 7);
        const std::string digits = name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
            throw config_error("vit_layer_id: '" + name + "' has no block number");
        return std::stoll(digits) + 1;
    }
    return depth + 1;
}

/// decay^(depth + 1 - layer) for every entry of `table` in its order (fixed entries included; the
/// optimiser skips them).
inline std::vector<double> layer_decay_scales(const nn::parameter_table& table, index_t depth, double decay) {
    if (!(decay > 0.0 && decay <= 1.0)) throw config_error("layer_decay_scales: decay must be in (0, 1]");
    std::vector<double> out;
    out.reserve(table.entries().size());
    for (const auto& e : table.entries()) {
        const index_t layer = vit_layer_id(e.name, depth);
        if (layer > depth + 1)
            throw config_error("layer_decay_scales: '" + e.name + "' is beyond the " + std::to_string(depth) +
                               " blocks of the encoder");
        double s = 1.0;
        for (index_t i = layer; i < depth + 1; ++i) s *= decay;
        out.push_back(s);
    }
    return out;
}

}  // namespace vasomim::optim
