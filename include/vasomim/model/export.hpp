#pragma once
// Exporting a pre-trained encoder for use elsewhere (GitHub issue 16):
//   - timm_encoder(): the encoder of a pre-training checkpoint (train/checkpoint.hpp) as exactly the
//     state_dict of timm's
//       VisionTransformer(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4,
//                         qkv_bias=True, num_classes=0, global_pool='token',
//                         norm_layer=partial(nn.LayerNorm, eps=1e-6))
//     (cls_token, pos_embed, patch_embed.proj.*, blocks.i.*, norm.*; decoder, mask token and
//     segmentor dropped), with that configuration in the metadata. The library's MAE names are
//     timm's already (DESIGN 4.3), so the export selects and checks, it renames nothing; the fixed
//     sin-cos pos_embed becomes timm's (learnable) pos_embed with the same values.
//   - released_state_dict(): the whole checkpoint under the names of the released VasoMIM model
//     (XA-SSL models_vmae.py): MAE names as they are, the segmentor "segmentor." -> "seg_model.",
//     and an I64 scalar "<bn>.num_batches_tracked" after every BatchNorm's running_var, so that
//     PyTorch's load_state_dict(strict=True) accepts it (after tools/convert_torch_checkpoint.py
//     --to-torch).
// Errors: format_error for a file that is not a pre-training checkpoint (it names every missing
// metadata entry and encoder tensor), checkpoint_mismatch_error listing every missing or misshapen
// encoder tensor, config_error when the number of heads is known neither from the checkpoint's
// signature nor from the caller, io_error for unreadable paths.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/nn/parameters.hpp"
#include "vasomim/train/checkpoint.hpp"

namespace vasomim::model {

/// The `format` metadata of training checkpoints (train/checkpoint.hpp) and of the exports.
inline constexpr const char* pretrain_format = train::pretrain_checkpoint_format;
inline constexpr const char* finetune_format = train::finetune_checkpoint_format;
inline constexpr const char* timm_encoder_format = "vasomim-timm-vit-encoder-1";
inline constexpr const char* released_state_dict_format = "vasomim-released-state-dict-1";
/// Prefix of the segmentor in the released model's state dict.
inline constexpr const char* released_segmentor_prefix = "seg_model.";

/// The arguments of timm's VisionTransformer that an exported encoder needs.
struct vit_encoder_config {
    index_t img_size = 0, patch_size = 0, in_chans = 3, embed_dim = 0, depth = 0, num_heads = 0, mlp_ratio = 4;

    index_t num_patches() const { return (img_size / patch_size) * (img_size / patch_size); }

    /// The Python expression that builds the matching timm model.
    std::string timm_constructor() const {
        std::ostringstream s;
        s << "timm.models.vision_transformer.VisionTransformer(img_size=" << img_size << ", patch_size=" << patch_size
          << ", in_chans=" << in_chans << ", embed_dim=" << embed_dim << ", depth=" << depth
          << ", num_heads=" << num_heads << ", mlp_ratio=" << mlp_ratio
          << ", qkv_bias=True, num_classes=0, global_pool='token', "
             "norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6))";
        return s.str();
    }
};

/// The encoder of an MAE configuration.
inline vit_encoder_config encoder_config_of(const mae_config& c) {
    return {c.img_size, c.patch_size, c.in_chans, c.embed_dim, c.depth, c.num_heads, c.mlp_ratio};
}

/// Names and shapes of timm's VisionTransformer state_dict for `c`, in timm's order.
inline std::vector<std::pair<std::string, shape>> timm_encoder_layout(const vit_encoder_config& c) {
    const index_t E = c.embed_dim, H = c.mlp_ratio * E, p = c.patch_size;
    std::vector<std::pair<std::string, shape>> out{{"cls_token", shape{1, 1, E}},
                                                   {"pos_embed", shape{1, 1 + c.num_patches(), E}},
                                                   {"patch_embed.proj.weight", shape{E, c.in_chans, p, p}},
                                                   {"patch_embed.proj.bias", shape{E}}};
    for (index_t i = 0; i < c.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        for (auto& e : std::vector<std::pair<std::string, shape>>{
                 {"norm1.weight", shape{E}},      {"norm1.bias", shape{E}},         {"attn.qkv.weight", shape{3 * E, E}},
                 {"attn.qkv.bias", shape{3 * E}}, {"attn.proj.weight", shape{E, E}}, {"attn.proj.bias", shape{E}},
                 {"norm2.weight", shape{E}},      {"norm2.bias", shape{E}},         {"mlp.fc1.weight", shape{H, E}},
                 {"mlp.fc1.bias", shape{H}},      {"mlp.fc2.weight", shape{E, H}},  {"mlp.fc2.bias", shape{E}}})
            out.emplace_back(b + e.first, e.second);
    }
    out.emplace_back("norm.weight", shape{E});
    out.emplace_back("norm.bias", shape{E});
    return out;
}

/// A model's parameters as named host tensors (the table's order), e.g. to export a live model.
template <class T>
std::vector<io::named_tensor> named_tensors(const nn::parameter_table& table, const std::vector<T>& values) {
    std::vector<io::named_tensor> out;
    for (const auto& e : table.entries()) {
        io::named_tensor t{e.name, e.shape, std::vector<float>(static_cast<std::size_t>(e.numel()))};
        for (index_t i = 0; i < e.numel(); ++i) t.data[static_cast<std::size_t>(i)] = static_cast<float>(values[e.offset + i]);
        out.push_back(std::move(t));
    }
    return out;
}

namespace detail {

inline const io::named_tensor* find_tensor(const std::vector<io::named_tensor>& ts, const std::string& name) {
    for (const auto& t : ts)
        if (t.name == name) return &t;
    return nullptr;
}

/// `key=value` of a whitespace-separated signature ("method=mae img=64 patch=8 enc=64x2/4 ..."), or "".
inline std::string signature_field(const std::string& signature, const std::string& key) {
    std::istringstream in(signature);
    std::string tok;
    while (in >> tok)
        if (tok.starts_with(key + "=")) return tok.substr(key.size() + 1);
    return {};
}

inline index_t parse_index(const std::string& s) {
    try {
        std::size_t used = 0;
        const long long v = std::stoll(s, &used);
        return used == s.size() && v > 0 ? static_cast<index_t>(v) : 0;
    } catch (const std::exception&) {
        return 0;
    }
}

/// 1 + the largest i of any "blocks.i." name (0 when there is none).
inline index_t count_blocks(const std::vector<io::named_tensor>& ts) {
    index_t d = 0;
    for (const auto& t : ts) {
        if (!t.name.starts_with("blocks.")) continue;
        const auto dot = t.name.find('.', 7);
        const std::string digits = t.name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6) continue;
        d = std::max<index_t>(d, std::stoll(digits) + 1);
    }
    return d;
}

/// Encoder tensor names that `ts` lacks (block 0's when there is no block at all).
inline std::vector<std::string> missing_encoder_names(const std::vector<io::named_tensor>& ts, index_t depth) {
    vit_encoder_config c;
    c.img_size = c.patch_size = c.embed_dim = 1;
    c.depth = depth > 0 ? depth : 1;
    std::vector<std::string> out;
    for (const auto& [name, s] : timm_encoder_layout(c))
        if (!find_tensor(ts, name)) out.push_back(name);
    return out;
}

}  // namespace detail

/// The ViT configuration of the encoder in `tensors` (MAE/timm names): sizes from the tensors'
/// shapes (patch_embed.proj.weight, pos_embed, blocks.0.mlp.fc1.weight; the depth from the largest
/// block index), the number of heads from `num_heads` when > 0, else from the signature
/// ("enc=WxD/H", as vasomim-pretrain writes it). Throws config_error when the signature disagrees
/// with the shapes or the heads are known from neither, checkpoint_mismatch_error (every missing
/// encoder tensor) when the sizes cannot be read. timm_encoder() checks the rest.
inline vit_encoder_config infer_encoder_config(const std::vector<io::named_tensor>& tensors,
                                               const std::string& signature, index_t num_heads,
                                               const std::string& context) {
    using mm = checkpoint_mismatch_error::mismatch;
    const index_t depth = detail::count_blocks(tensors);
    const bool inferable = detail::find_tensor(tensors, "patch_embed.proj.weight") &&
                           detail::find_tensor(tensors, "pos_embed") &&
                           detail::find_tensor(tensors, "blocks.0.mlp.fc1.weight");
    if (!inferable) {  // report every missing tensor, not only those the sizes come from
        const auto missing = detail::missing_encoder_names(tensors, depth);
        std::vector<mm> list;
        for (const auto& n : missing) list.push_back({n, {}, {}, mm::kind::missing});
        throw checkpoint_mismatch_error(context + " (a timm VisionTransformer encoder)", std::move(list));
    }
    const auto& w = detail::find_tensor(tensors, "patch_embed.proj.weight")->shape;
    const auto& pos = detail::find_tensor(tensors, "pos_embed")->shape;
    const auto& fc1 = detail::find_tensor(tensors, "blocks.0.mlp.fc1.weight")->shape;
    vit_encoder_config c;
    if (w.rank() != 4 || w[2] != w[3] || pos.rank() != 3 || fc1.rank() != 2 || w[0] <= 0)
        throw config_error(context + ": patch_embed.proj.weight " + w.to_string() + " / pos_embed " + pos.to_string() +
                           " are not those of a square-patch ViT");
    c.embed_dim = w[0];
    c.in_chans = w[1];
    c.patch_size = w[2];
    c.depth = depth;
    c.mlp_ratio = fc1[0] / c.embed_dim;
    index_t grid = 0;
    while ((grid + 1) * (grid + 1) <= pos[1] - 1) ++grid;
    if (grid * grid != pos[1] - 1)
        throw config_error(context + ": pos_embed " + pos.to_string() + " is not 1 + a square number of patches");
    c.img_size = grid * c.patch_size;

    // The signature (when there is one) must agree, and gives the number of heads.
    index_t sig_heads = 0;
    if (const auto enc = detail::signature_field(signature, "enc"); !enc.empty()) {
        const auto x = enc.find('x'), slash = enc.find('/');
        if (x != std::string::npos && slash != std::string::npos && slash > x) {
            const index_t sw = detail::parse_index(enc.substr(0, x)), sd = detail::parse_index(enc.substr(x + 1, slash - x - 1));
            sig_heads = detail::parse_index(enc.substr(slash + 1));
            if ((sw && sw != c.embed_dim) || (sd && sd != c.depth))
                throw config_error(context + ": its signature says enc=" + enc + ", its tensors " +
                                   std::to_string(c.embed_dim) + "x" + std::to_string(c.depth));
        }
    }
    for (const auto& [key, value] : {std::pair{std::string("img"), c.img_size}, {std::string("patch"), c.patch_size},
                                     {std::string("chans"), c.in_chans}, {std::string("mlp"), c.mlp_ratio}}) {
        const index_t v = detail::parse_index(detail::signature_field(signature, key));
        if (v && v != value)
            throw config_error(context + ": its signature says " + key + "=" + std::to_string(v) + ", its tensors " +
                               std::to_string(value));
    }
    c.num_heads = num_heads > 0 ? num_heads : sig_heads;
    if (c.num_heads <= 0)
        throw config_error(context + ": the number of attention heads is not in the checkpoint's signature; pass it "
                                     "explicitly (e.g. --num-heads)");
    if (c.embed_dim % c.num_heads != 0)
        throw config_error(context + ": embed_dim " + std::to_string(c.embed_dim) + " is not divisible by " +
                           std::to_string(c.num_heads) + " heads");
    return c;
}

/// An export: the tensors in file order and the metadata, ready for io::write_safetensors.
struct exported_tensors {
    std::vector<io::named_tensor> tensors;
    std::map<std::string, std::string> metadata;
};

/// The timm VisionTransformer state dict of the encoder in `tensors` for configuration `c`: every
/// tensor of timm_encoder_layout(c), checked; every mismatch (missing or misshapen) is reported at
/// once in a checkpoint_mismatch_error. `source` is recorded in the metadata with the configuration.
inline exported_tensors timm_encoder(const std::vector<io::named_tensor>& tensors, const vit_encoder_config& c,
                                     const std::string& source, const std::map<std::string, std::string>& extra = {}) {
    using mm = checkpoint_mismatch_error::mismatch;
    exported_tensors out;
    std::vector<mm> bad;
    for (const auto& [name, s] : timm_encoder_layout(c)) {
        const auto* t = detail::find_tensor(tensors, name);
        const std::vector<std::int64_t> want(s.begin(), s.end());
        if (!t) {
            bad.push_back({name, {}, want, mm::kind::missing});
        } else if (!(t->shape == s)) {
            bad.push_back({name, std::vector<std::int64_t>(t->shape.begin(), t->shape.end()), want, mm::kind::shape});
        } else {
            out.tensors.push_back({name, s, t->data});
        }
    }
    if (!bad.empty()) throw checkpoint_mismatch_error("timm encoder export of " + source, std::move(bad));
    out.metadata = extra;
    out.metadata["format"] = timm_encoder_format;
    out.metadata["timm_model"] = "VisionTransformer";
    out.metadata["timm_constructor"] = c.timm_constructor();
    out.metadata["img_size"] = std::to_string(c.img_size);
    out.metadata["patch_size"] = std::to_string(c.patch_size);
    out.metadata["in_chans"] = std::to_string(c.in_chans);
    out.metadata["embed_dim"] = std::to_string(c.embed_dim);
    out.metadata["depth"] = std::to_string(c.depth);
    out.metadata["num_heads"] = std::to_string(c.num_heads);
    out.metadata["mlp_ratio"] = std::to_string(c.mlp_ratio);
    out.metadata["qkv_bias"] = "True";
    out.metadata["num_classes"] = "0";
    out.metadata["global_pool"] = "token";
    out.metadata["norm_eps"] = "1e-6";
    out.metadata["source"] = source;
    return out;
}

/// The configuration recorded in an encoder export's metadata (timm_encoder()).
inline vit_encoder_config encoder_config_from_metadata(const std::map<std::string, std::string>& meta,
                                                       const std::string& context) {
    auto get = [&](const char* key) {
        const auto it = meta.find(key);
        const index_t v = it == meta.end() ? 0 : detail::parse_index(it->second);
        if (v <= 0) throw format_error(context + ": no positive '" + key + "' in the metadata (not an encoder export?)");
        return v;
    };
    return {get("img_size"), get("patch_size"), get("in_chans"), get("embed_dim"), get("depth"), get("num_heads"),
            get("mlp_ratio")};
}

/// An MAE whose encoder holds `tensors` (timm/MAE names, e.g. an encoder export read back), so that
/// its encode_all() is the exported encoder's forward_features. The decoder, which encode_all does
/// not use, is a minimal placeholder (no blocks, zero weights).
template <backend_policy B, class T = float>
mae<B, T> mae_with_encoder(const std::vector<io::named_tensor>& tensors, const vit_encoder_config& c) {
    mae_config m;
    m.img_size = c.img_size;
    m.patch_size = c.patch_size;
    m.in_chans = c.in_chans;
    m.embed_dim = c.embed_dim;
    m.depth = c.depth;
    m.num_heads = c.num_heads;
    m.mlp_ratio = c.mlp_ratio;
    m.decoder_embed_dim = 4;
    m.decoder_depth = 0;
    m.decoder_num_heads = 1;
    mae<B, T> net(m);
    net.params().fill(T(0));
    const auto checked = timm_encoder(tensors, c, "encoder");  // every tensor present with its shape
    for (const auto& t : checked.tensors)
        net.set_parameter(t.name, std::vector<T>(t.data.begin(), t.data.end()));
    return net;
}

/// A pre-training checkpoint read from disk, with where it came from.
struct pretrain_checkpoint {
    std::filesystem::path path;  ///< the file (the latest one when a folder was given)
    io::safetensors_file file;

    std::string meta(const std::string& key) const {
        const auto it = file.metadata.find(key);
        return it == file.metadata.end() ? std::string() : it->second;
    }
    bool has_segmentor() const {
        for (const auto& t : file.tensors)
            if (t.name.starts_with(train::segmentor_prefix)) return true;
        return false;
    }
    /// Written by fine-tuning (encoder + segmentation decoder) rather than pre-training.
    bool is_finetune() const { return meta("format") == finetune_format; }
};

/// Reads a pre-training checkpoint: a file, or a folder (its latest checkpoint-*.safetensors).
/// A fine-tuning checkpoint (vasomim-finetune's checkpoints and best.safetensors) is taken too: its
/// encoder has the same names, so its encoder exports alike (is_finetune() tells them apart).
/// Throws io_error for a missing path or a folder without checkpoints, and format_error for a file
/// that is neither, naming every metadata entry and encoder tensor it lacks.
inline pretrain_checkpoint read_pretrain_checkpoint(const std::filesystem::path& path) {
    std::error_code ec;
    pretrain_checkpoint ck;
    if (std::filesystem::is_directory(path, ec)) {
        const auto latest = train::latest_checkpoint(path);
        if (!latest) throw io_error("'" + path.string() + "' is a folder without checkpoint-*.safetensors files");
        ck.path = *latest;
    } else if (std::filesystem::exists(path, ec)) {
        ck.path = path;
    } else {
        throw io_error("'" + path.string() + "' does not exist");
    }
    ck.file = io::read_safetensors(ck.path.string());
    std::vector<std::string> missing;
    const bool format_ok = ck.meta("format") == pretrain_format || ck.meta("format") == finetune_format;
    if (!format_ok) {
        const std::string wanted = std::string("metadata 'format' = '") + pretrain_format + "' (or '" + finetune_format + "')";
        missing.push_back(ck.meta("format").empty() ? wanted : wanted + " (it says '" + ck.meta("format") + "')");
    }
    for (const char* key : {"step", "seed", "signature"})
        if (ck.meta(key).empty()) missing.push_back(std::string("metadata '") + key + "'");
    if (!missing.empty()) {
        for (const auto& n : detail::missing_encoder_names(ck.file.tensors, detail::count_blocks(ck.file.tensors)))
            missing.push_back("tensor '" + n + "'");
        std::string s = "'" + ck.path.string() + "' is not a vasomim pre-training checkpoint (written by "
                        "train::save_checkpoint / vasomim-pretrain); it lacks:";
        for (const auto& m : missing) s += "\n  " + m;
        if (ck.path.filename().string().ends_with(".optim.safetensors"))
            s += "\n(this is a checkpoint's optimiser state; pass its partner without '.optim')";
        throw format_error(s);
    }
    return ck;
}

/// The encoder of a pre-training checkpoint as a timm VisionTransformer state dict (see the top of
/// this file); `num_heads` > 0 overrides the signature's.
inline exported_tensors timm_encoder(const pretrain_checkpoint& ck, index_t num_heads = 0) {
    const std::string source = ck.path.string();
    const auto c = infer_encoder_config(ck.file.tensors, ck.meta("signature"), num_heads, "checkpoint '" + source + "'");
    return timm_encoder(ck.file.tensors, c, source,
                        {{"source_step", ck.meta("step")}, {"source_seed", ck.meta("seed")},
                         {"source_signature", ck.meta("signature")}});
}

/// The whole checkpoint under the released VasoMIM model's state_dict names (see the top of this
/// file). num_batches_tracked is written as 0 (the library keeps no count; PyTorch uses it only for
/// BatchNorm with momentum=None, and the released segmentor is frozen in eval mode).
inline exported_tensors released_state_dict(const pretrain_checkpoint& ck) {
    if (ck.is_finetune())
        throw format_error("'" + ck.path.string() + "' is a fine-tuning checkpoint: it holds a segmentation decoder, not "
                           "the pre-training model that the released state dict describes; export its encoder instead");
    exported_tensors out;
    const std::string seg = train::segmentor_prefix;
    for (const auto& t : ck.file.tensors) {
        if (!t.name.starts_with(seg)) {
            out.tensors.push_back(t);
            continue;
        }
        const std::string name = released_segmentor_prefix + t.name.substr(seg.size());
        out.tensors.push_back({name, t.shape, t.data});
        constexpr std::string_view rv = ".running_var";
        if (name.ends_with(rv)) {
            io::named_tensor count{name.substr(0, name.size() - rv.size()) + ".num_batches_tracked", shape{}, {0.0f}};
            count.dtype = "I64";
            out.tensors.push_back(std::move(count));
        }
    }
    out.metadata = {{"format", released_state_dict_format},
                    {"source", ck.path.string()},
                    {"source_step", ck.meta("step")},
                    {"source_seed", ck.meta("seed")},
                    {"source_signature", ck.meta("signature")},
                    {"released_model", "XA-SSL models_vmae.py MaskedAutoencoderViT (seg_model = UNext_S)"}};
    return out;
}

}  // namespace vasomim::model
