#pragma once
// Pre-training checkpoints: the model's parameters under their timm/MAE names (and a frozen
// segmentor's under "segmentor.") plus the run state
// (step, epoch, seed, configuration signature) in one safetensors file, and the optimiser's moments
// in a sibling "<name>.optim.safetensors". Every write goes to a temporary file and is renamed, the
// optimiser file first, so a model file on disk always has a complete partner. The last K are kept.
// Because every random draw is keyed by (seed, step), the step and seed are the whole RNG state.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <utility>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"

namespace vasomim::train {

/// Name prefix of the frozen segmentor's tensors inside a pre-training checkpoint.
inline constexpr const char* segmentor_prefix = "segmentor.";

/// The `format` metadata of the training checkpoints: pre-training (vasomim-pretrain) and
/// fine-tuning (vasomim-finetune's rolling checkpoints and best.safetensors).
inline constexpr const char* pretrain_checkpoint_format = "vasomim-pretrain-1";
inline constexpr const char* finetune_checkpoint_format = "vasomim-finetune-1";

/// Run state stored beside the parameters.
struct run_state {
    std::uint64_t step = 0;       ///< completed optimiser iterations
    std::uint64_t seed = 0;       ///< seed of every counter-based stream of the run
    std::string signature;        ///< configuration the parameters belong to (checked on resume)
    std::uint64_t world_size = 1;    ///< data-parallel ranks that wrote it (information: any number may resume)
    std::uint64_t global_batch = 0;  ///< samples per iteration over all ranks (0: not recorded)
    const char* format = pretrain_checkpoint_format;  ///< the file's `format` metadata
};

inline std::filesystem::path checkpoint_path(const std::filesystem::path& dir, std::uint64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "checkpoint-%010llu.safetensors", static_cast<unsigned long long>(step));
    return dir / name;
}

inline std::filesystem::path optimiser_path(const std::filesystem::path& checkpoint) {
    auto p = checkpoint;
    p.replace_extension(".optim.safetensors");
    return p;
}

/// Checkpoints in `dir`, oldest first.
inline std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    if (!std::filesystem::is_directory(dir)) return out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const auto name = e.path().filename().string();
        if (name.starts_with("checkpoint-") && name.ends_with(".safetensors") &&
            name.find(".optim.") == std::string::npos)
            out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

inline std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir) {
    auto all = list_checkpoints(dir);
    if (all.empty()) return std::nullopt;
    return all.back();
}

/// Writes `model`'s parameters, its optimiser state and `state`; keeps the newest `keep_last`.
template <class Model>
std::filesystem::path save_checkpoint(const std::filesystem::path& dir, const Model& model, const run_state& state,
                                      std::size_t keep_last = 3) {
    std::filesystem::create_directories(dir);
    const auto path = checkpoint_path(dir, state.step);
    model.optimiser().save(optimiser_path(path).string());
    const auto& net = model.network();
    const auto params = net.params().to_host();
    std::vector<io::named_tensor> tensors;
    for (const auto& e : net.table().entries())
        tensors.push_back({e.name, e.shape, std::vector<float>(params.begin() + e.offset, params.begin() + e.offset + e.numel())});
    if constexpr (requires { model.segmentor(); }) {
        // The frozen segmentor travels with the checkpoint, so that a resumed run needs no other file.
        const auto& seg = model.segmentor();
        const auto sp = seg.parameters().to_host();
        for (const auto& e : seg.table().entries())
            tensors.push_back({segmentor_prefix + e.name, e.shape,
                               std::vector<float>(sp.begin() + e.offset, sp.begin() + e.offset + e.numel())});
    }
    io::write_safetensors(path.string(), tensors,
                          {{"format", state.format},
                           {"step", std::to_string(state.step)},
                           {"seed", std::to_string(state.seed)},
                           {"signature", state.signature},
                           {"world_size", std::to_string(state.world_size)},
                           {"global_batch", std::to_string(state.global_batch)}});
    auto all = list_checkpoints(dir);
    while (keep_last > 0 && all.size() > keep_last) {
        std::filesystem::remove(optimiser_path(all.front()));
        std::filesystem::remove(all.front());
        all.erase(all.begin());
    }
    return path;
}

namespace detail {
/// The optimiser's sibling file into `model`; a malformed number in it (std::stoll's
/// invalid_argument / out_of_range) becomes a format_error naming the file.
template <class Model>
void load_optimiser(Model& model, const std::filesystem::path& checkpoint) {
    const auto p = optimiser_path(checkpoint).string();
    try {
        model.optimiser().load(p);
    } catch (const std::invalid_argument& e) {
        throw format_error("optimiser state " + p + " holds a malformed number (" + e.what() + ")");
    } catch (const std::out_of_range& e) {
        throw format_error("optimiser state " + p + " holds an out-of-range number (" + e.what() + ")");
    }
}
}  // namespace detail

/// Loads a checkpoint into `model` (parameters and optimiser state) and returns its run state.
/// Throws config_error when it was written for another configuration (signature),
/// checkpoint_mismatch_error listing every missing or misshapen tensor, format_error / io_error for
/// unreadable files; the model is left unchanged when anything fails.
template <class Model>
run_state load_checkpoint(const std::filesystem::path& path, Model& model, const std::string& expected_signature) {
    const auto file = io::read_safetensors(path.string());
    auto meta = [&](const char* key) {
        const auto it = file.metadata.find(key);
        if (it == file.metadata.end()) throw config_error("checkpoint " + path.string() + " has no '" + key + "' entry");
        return it->second;
    };
    auto number = [&](const char* key) {
        const std::string v = meta(key);
        std::uint64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size())
            throw format_error("checkpoint " + path.string() + " has the '" + key + "' entry \"" + v +
                               "\", not a step count / seed");
        return n;
    };
    run_state s{number("step"), number("seed"), meta("signature")};
    if (file.metadata.count("world_size")) s.world_size = number("world_size");  // older files: 1 and 0
    if (file.metadata.count("global_batch")) s.global_batch = number("global_batch");
    if (s.signature != expected_signature)
        throw config_error("checkpoint " + path.string() + " was written for another configuration:\n  checkpoint: " +
                           s.signature + "\n  this run:   " + expected_signature);
    // Everything is checked (every mismatch listed at once, checkpoint_mismatch_error) before
    // anything is replaced: a failed load leaves the model as it was.
    const std::string source = "checkpoint " + path.string();
    io::safetensors_file net_part, seg_part;
    for (const auto& t : file.tensors) (t.name.starts_with(segmentor_prefix) ? seg_part : net_part).tensors.push_back(t);
    auto& net = model.network();
    auto params = net.params().clone();
    io::load_state_dict(net_part, source, net.table(), params);
    if constexpr (requires { model.segmentor(); }) {
        auto& seg = model.segmentor();
        auto sp = seg.parameters().clone();
        io::load_state_dict(io::select_state_dict(std::move(seg_part), segmentor_prefix, path.string()),
                            source + " (segmentor)", seg.table(), sp, io::state_dict_options{segmentor_prefix});
        detail::load_optimiser(model, path);
        seg.parameters() = std::move(sp);
    } else {
        if (!seg_part.tensors.empty())
            throw config_error(source + " holds a segmentor ('" + seg_part.tensors.front().name +
                               "', ...), this model has none");
        detail::load_optimiser(model, path);
    }
    net.params() = std::move(params);
    return s;
}

/// Resumes from the newest intact checkpoint of `dir`: tries them newest first and skips one whose
/// files are unreadable, truncated or damaged (io_error / format_error, e.g. a CRC32C mismatch or a
/// missing optimiser file), saying on `log` which one it skipped and why. A checkpoint of another
/// configuration (config_error, checkpoint_mismatch_error) is not skipped: that error is thrown.
/// Throws config_error when the folder has no checkpoint or none is intact. Returns the path loaded
/// and its run state.
template <class Model>
std::pair<std::filesystem::path, run_state> load_latest_intact_checkpoint(const std::filesystem::path& dir, Model& model,
                                                                          const std::string& expected_signature,
                                                                          std::ostream& log) {
    const auto all = list_checkpoints(dir);
    if (all.empty()) throw config_error("--resume: no checkpoint in " + dir.string());
    std::string skipped;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
            return {*it, load_checkpoint(*it, model, expected_signature)};
        } catch (const io_error& e) {  // format_error included
            log << "resume: skipping damaged checkpoint " << it->string() << ": " << e.what() << "\n";
            skipped += "\n  " + it->filename().string() + ": " + e.what();
        }
    }
    throw config_error("--resume: no intact checkpoint in " + dir.string() + ":" + skipped);
}

/// What a resumed run needs to know about itself.
struct run_geometry {
    std::uint64_t seed = 0;        ///< the seed of this run: a checkpoint of another seed is refused
    std::uint64_t world_size = 1;  ///< data-parallel ranks now
    std::uint64_t batch_size = 1;  ///< samples per rank and iteration now
};

/// `--resume PATH` of the training loops: loads the checkpoint PATH, or the newest intact one when
/// PATH is a folder (load_latest_intact_checkpoint), refuses one written with another seed
/// (config_error: the streams would differ), and says on `log` where the run resumes, who wrote the
/// checkpoint and, when the global batch changed, that steps keep their numbers so the epochs and the
/// schedule are no longer those of the first run. Returns the path loaded and its run state.
template <class Model>
std::pair<std::filesystem::path, run_state> resume_run(std::filesystem::path path, Model& model,
                                                       const std::string& expected_signature,
                                                       const run_geometry& now, std::ostream& log) {
    run_state s;
    if (std::filesystem::is_directory(path))
        std::tie(path, s) = load_latest_intact_checkpoint(path, model, expected_signature, log);
    else
        s = load_checkpoint(path, model, expected_signature);
    if (s.seed != now.seed)
        throw config_error("checkpoint " + path.string() + " was written with seed " + std::to_string(s.seed) +
                           ", this run uses " + std::to_string(now.seed));
    const auto ranks = [](std::uint64_t n) { return std::to_string(n) + (n == 1 ? " rank" : " ranks"); };
    log << "resumed from " << path.string() << " at step " << s.step << " (written by " << ranks(s.world_size);
    if (s.global_batch) log << ", global batch " << s.global_batch;
    log << "; now " << ranks(now.world_size) << " x " << now.batch_size << ")\n";
    const std::uint64_t global_batch = now.world_size * now.batch_size;
    if (s.global_batch && s.global_batch != global_batch)
        log << "note: the global batch was " << s.global_batch << " and is now " << global_batch
            << ": steps keep their numbers, so the epochs and the schedule are not those of the first run\n";
    return {path, s};
}

}  // namespace vasomim::train
