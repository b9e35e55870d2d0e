#pragma once
// Loading UNeXt-S weights from a state dict, wherever they lie in it: a bare UNeXt-S file (e.g. the
// released segmodel/unext.pth converted by tools/convert_torch_checkpoint.py), the seg_model.* of a
// released VasoMIM state dict, or the segmentor.* of this library's pre-training checkpoints. A
// file made for another number of input channels is named as such (encoder1.weight's shape), with
// the caller's hint on how to build a matching segmentor.

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "vasomim/core/error.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/nn/unext.hpp"

namespace vasomim::nn {

/// "seg_model." or "segmentor." when the file holds a UNeXt-S under that prefix and none bare, else "".
inline std::string unext_prefix_in(const io::safetensors_file& file) {
    bool bare = false, released = false, library = false;
    for (const auto& t : file.tensors) {
        const auto name = io::strip_ddp_prefix(t.name);
        bare = bare || name == "encoder1.weight";
        released = released || name == "seg_model.encoder1.weight";
        library = library || name == "segmentor.encoder1.weight";
    }
    if (bare) return "";
    return released ? "seg_model." : library ? "segmentor." : "";
}

/// Loads `file` (read from `path`) into `net` under `prefix` (found by unext_prefix_in when not
/// given); integer buffers are noted on `notes`. Throws checkpoint_mismatch_error listing every
/// mismatch; when encoder1.weight has another channel count, the message says so first and adds
/// channel_hint(channels in the file). Nothing is loaded when anything does not fit.
template <backend_policy B, class T>
void load_unext(unext<B, T>& net, io::safetensors_file file, const std::string& path,
                std::optional<std::string> prefix, std::ostream* notes,
                const std::function<std::string(std::int64_t)>& channel_hint) {
    const std::string p = prefix ? *prefix : unext_prefix_in(file);
    const auto selected = io::select_state_dict(std::move(file), p, path);
    const std::string source = "UNeXt-S '" + path + "'";
    try {
        io::load_state_dict(selected, source, net.table(), net.parameters(), io::state_dict_options{p, true, notes});
    } catch (const checkpoint_mismatch_error& e) {
        const auto* m = e.find("encoder1.weight");
        if (!m || m->file_shape.size() != 4 || m->model_shape.size() != 4 || m->file_shape[1] == m->model_shape[1])
            throw;
        const auto file_c = m->file_shape[1], model_c = m->model_shape[1];
        throw checkpoint_mismatch_error(
            source + " is a " + std::to_string(file_c) + "-channel UNeXt-S (encoder1.weight " +
                checkpoint_mismatch_error::shape_string(m->file_shape) + "), this one takes " + std::to_string(model_c) +
                " channel" + (model_c == 1 ? "" : "s") + "; " + channel_hint(file_c) + ". In detail: " + source,
            e.mismatches());
    }
}

}  // namespace vasomim::nn
