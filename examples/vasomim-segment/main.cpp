// vasomim-segment: applies a fine-tuned segmentation model (vasomim-finetune's best.safetensors or
// one of its checkpoints; the model is rebuilt from the file's signature) to image files or folders
// of any size (GitHub issue 17). Each image is resampled by the model's working scale, covered by
// overlapping tiles of the model's input side whose probabilities are blended with a Gaussian
// window (model/sliding_window.hpp), and resampled back; written as
//   OUT/<stem>.npy   vessel probability, float32 H x W in [0, 1]
//   OUT/<stem>.png   mask, 255 where the probability > --threshold
// With --masks DIR, each image is scored against DIR/<stem><suffix>.png (Dice, clDice,
// sensitivity, precision; metrics/) and the means are printed (and written with --csv).
//
// A file that cannot be read, or an image smaller than one tile, is skipped and reported; the
// others go on. Exit status: 0 every image segmented (and scored when --masks), 1 some skipped,
// 2 wrong arguments (unreadable model, outputs that exist without --overwrite, ...).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <omp.h>

#include "vasomim/backend/backends.hpp"
#include "vasomim/data/segmentation_folder.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/train/finetune.hpp"
#include "vasomim/train/finetune_presets.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = default_backend;

struct options {
    fs::path model_path, output, masks, csv;
    std::vector<fs::path> inputs;
    std::string mask_suffix = "auto";
    int mask_threshold = 0, threads = 0;
    double threshold = 0.5;
    std::optional<double> scale;
    model::sliding_window_options infer;
    bool overwrite = false, no_npy = false;
};

/// The mask of `stem` in `dir` (suffixes as data::list_labelled_files), or empty.
fs::path find_mask(const fs::path& dir, const std::string& stem, const std::string& suffix) {
    std::vector<std::string> suffixes = suffix == "auto" ? std::vector<std::string>{"", "_gt", "_mask", "_label"}
                                                         : std::vector<std::string>{suffix};
    for (const auto& s : suffixes)
        if (fs::is_regular_file(dir / (stem + s + ".png"))) return dir / (stem + s + ".png");
    return {};
}

std::vector<fs::path> expand(const std::vector<fs::path>& inputs) {
    std::vector<fs::path> out;
    for (const auto& p : inputs) {
        if (fs::is_directory(p)) {
            std::size_t found = 0;
            for (const auto& f : io::list_image_files(p))
                if (!io::has_dicom_extension(f)) {  // outputs are named by file stem
                    out.push_back(f);
                    ++found;
                }
            if (found == 0) throw config_error("folder " + p.string() + " holds no images");
        } else {
            out.push_back(p);  // a missing or unreadable file is reported when it is read
        }
    }
    return out;
}

template <class Decoder>
int run(const options& o, const train::finetune_model_spec& spec, const io::safetensors_file& weights) {
    model::segmentation_model<B, model::encoder::vit, Decoder> net(spec.config);
    io::load_state_dict(weights, "model " + o.model_path.string(), net.table(), net.params());
    auto infer = o.infer;
    infer.scale = o.scale ? *o.scale : spec.scale;
    const auto files = expand(o.inputs);
    // nothing is overwritten without --overwrite, and two inputs never write one output
    std::vector<std::string> stems;
    for (const auto& f : files) {
        const auto stem = f.stem().string();
        if (std::find(stems.begin(), stems.end(), stem) != stems.end())
            throw config_error("two inputs have the name " + stem + " (outputs " + stem + ".png / .npy)");
        stems.push_back(stem);
        for (const auto* ext : {".png", ".npy"})
            if (!o.overwrite && fs::exists(o.output / (stem + ext)))
                throw config_error((o.output / (stem + ext)).string() + " exists; --overwrite replaces it");
    }
    if (!o.csv.empty() && !o.overwrite && fs::exists(o.csv))
        throw config_error(o.csv.string() + " exists; --overwrite replaces it");
    fs::create_directories(o.output);
    std::printf("model: %s (%s), tiles %lld px at scale %g, overlap %g; %zu image(s) -> %s\n", o.model_path.c_str(),
                spec.decoder.c_str(), static_cast<long long>(spec.config.img_size()), infer.scale, infer.overlap,
                files.size(), o.output.c_str());
    const bool scoring = !o.masks.empty();
    if (scoring) std::printf("%-28s %8s %8s %8s %8s %8s\n", "image", "size", "dice", "cldice", "sens", "prec");
    std::vector<std::pair<std::string, std::string>> skipped;
    std::vector<std::string> unscored;
    std::vector<metrics::segmentation_scores> scores;
    std::vector<std::string> scored_names;
    double seconds = 0;
    std::size_t done = 0;
    for (const auto& f : files) {
        const auto stem = f.stem().string();
        try {
            const auto image = io::read_gray8(f);
            const auto t0 = std::chrono::steady_clock::now();
            const auto prob = model::sliding_window_probability(net, image, infer, f.string());
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            xt::xtensor<std::uint8_t, 2> mask = xt::xtensor<std::uint8_t, 2>::from_shape(prob.shape());
            for (std::size_t k = 0; k < prob.size(); ++k) mask.data()[k] = prob.data()[k] > o.threshold ? 255 : 0;
            if (!o.no_npy) io::write_npy(o.output / (stem + ".npy"), prob);
            io::write_png(o.output / (stem + ".png"), mask);
            ++done;
            const std::string size = std::to_string(image.shape()[0]) + "x" + std::to_string(image.shape()[1]);
            if (!scoring) {
                std::printf("%s: %s -> %s.png\n", f.c_str(), size.c_str(), (o.output / stem).c_str());
                continue;
            }
            const auto mp = find_mask(o.masks, stem, o.mask_suffix);
            if (mp.empty()) {
                unscored.push_back(stem);
                std::printf("%-28s %8s %8s\n", stem.c_str(), size.c_str(), "(no mask)");
                continue;
            }
            const auto ref = data::read_binary_mask(mp, std::int64_t(image.shape()[0]), std::int64_t(image.shape()[1]), f,
                                                    o.mask_threshold);
            const auto s = metrics::evaluate(mask, ref);
            scores.push_back(s);
            scored_names.push_back(stem);
            std::printf("%-28s %8s %8.4f %8.4f %8.4f %8.4f\n", stem.c_str(), size.c_str(), s.dice, s.cldice,
                        s.sensitivity, s.precision);
        } catch (const vasomim::error& e) {
            skipped.emplace_back(f.string(), e.what());
            std::fprintf(stderr, "skipped %s: %s\n", f.c_str(), e.what());
        }
        std::fflush(stdout);
    }
    if (done > 0)
        std::printf("%zu image(s) segmented in %.2f s (%.2f images/s, reading and writing excluded)\n", done, seconds,
                    seconds > 0 ? double(done) / seconds : 0.0);
    if (scoring && !scores.empty()) {
        const auto sum = metrics::summarize(scores);
        std::printf("mean over %zu image(s) (+- population std):\n  dice        %.4f +- %.4f\n  cldice      %.4f +- %.4f\n"
                    "  sensitivity %.4f +- %.4f\n  precision   %.4f +- %.4f\n",
                    sum.images, sum.mean.dice, sum.std.dice, sum.mean.cldice, sum.std.cldice, sum.mean.sensitivity,
                    sum.std.sensitivity, sum.mean.precision, sum.std.precision);
        if (!o.csv.empty()) {
            std::ofstream csv(o.csv, std::ios::trunc);
            if (!csv) throw io_error("cannot write " + o.csv.string());
            csv << "image,dice,cldice,sensitivity,precision,topology_precision,topology_sensitivity\n";
            for (std::size_t i = 0; i < scores.size(); ++i) {
                char row[256];
                const auto& s = scores[i];
                std::snprintf(row, sizeof row, ",%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", s.dice, s.cldice, s.sensitivity,
                              s.precision, s.topology_precision, s.topology_sensitivity);
                csv << scored_names[i] << row;
            }
            std::printf("per-image rows in %s\n", o.csv.c_str());
        }
    }
    for (const auto& s : unscored) std::fprintf(stderr, "  no mask in %s for: %s\n", o.masks.c_str(), s.c_str());
    for (const auto& [f, why] : skipped) std::fprintf(stderr, "  skipped: %s: %s\n", f.c_str(), why.c_str());
    if (!skipped.empty()) std::fprintf(stderr, "%zu of %zu input(s) skipped\n", skipped.size(), files.size());
    return skipped.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-segment: apply a fine-tuned segmentation model to angiograms of any size (overlapping "
                 "tiles, Gaussian blending); probability maps (.npy) and masks (.png), Dice / clDice with --masks"};
    options o;
    app.add_option("model", o.model_path, "vasomim-finetune's best.safetensors or checkpoint-*.safetensors")->required();
    app.add_option("inputs", o.inputs, "image files or folders of images")->required();
    app.add_option("-o,--output", o.output, "output folder")->required();
    app.add_option("--masks", o.masks, "folder of reference masks: score each image against <stem><suffix>.png");
    app.add_option("--mask-suffix", o.mask_suffix, "reference mask suffix; auto tries '', _gt, _mask, _label")
        ->capture_default_str();
    app.add_option("--mask-threshold", o.mask_threshold,
                   "binarise reference masks: vessel = value >= T (0: they must be binary; coronary80: 128)")
        ->check(CLI::Range(0, 255))
        ->capture_default_str();
    app.add_option("--threshold", o.threshold, "mask = probability > this")->capture_default_str();
    app.add_option("--scale", o.scale, "model pixels per image pixel (default: the training scale of the model)");
    app.add_option("--overlap", o.infer.overlap, "least overlap of neighbouring tiles, in [0, 1)")->capture_default_str();
    app.add_option("--batch", o.infer.batch, "tiles per forward")->capture_default_str();
    app.add_option("--csv", o.csv, "write the per-image scores here (with --masks)");
    app.add_flag("--no-npy", o.no_npy, "masks only, no probability maps");
    app.add_flag("--overwrite", o.overwrite, "replace existing outputs");
    app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)");
    CLI11_PARSE(app, argc, argv);
    try {
        if (o.threads > 0) omp_set_num_threads(o.threads);
        if (!o.masks.empty() && !fs::is_directory(o.masks)) throw config_error("--masks " + o.masks.string() + " is not a folder");
        if (!o.csv.empty() && o.masks.empty()) throw config_error("--csv needs --masks");
        if (!(o.infer.overlap >= 0 && o.infer.overlap < 1)) throw config_error("--overlap must lie in [0, 1)");
        if (o.infer.batch <= 0) throw config_error("--batch must be positive");
        if (o.scale && !(*o.scale > 0)) throw config_error("--scale must be positive");
        const auto weights = io::read_safetensors(o.model_path.string());
        const auto it = weights.metadata.find("signature");
        if (it == weights.metadata.end())
            throw format_error(o.model_path.string() + " has no 'signature' entry: not written by vasomim-finetune");
        const auto spec = train::parse_finetune_signature(it->second, o.model_path.string());
        return train::dispatch_decoder(spec.decoder, [&]<class D>() { return run<D>(o, spec, weights); });
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "vasomim-segment: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vasomim-segment: unexpected error: %s\n", e.what());
        return 2;
    }
}
