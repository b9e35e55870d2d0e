// vasomim-embed: encoder features of angiograms (GitHub issue 17), e.g.
//   vasomim-embed run/checkpoint-00400.safetensors ../shared/data/coronary80/images -o feats.npy --pool mean
// The encoder comes from a pre-training checkpoint (file, or a run folder: its latest checkpoint), an
// encoder export (vasomim-export) or, with --num-heads, any state dict with timm encoder names. Each
// image is read as 8-bit gray, resized to the encoder's image size with the pre-training's bicubic
// filter, replicated to 3 channels and ImageNet-normalised (data/transforms.hpp), then the encoder
// runs on every patch (timm's forward_features: the final normed tokens). Written:
//   --pool cls   (default)  [n, E]         the cls token
//   --pool mean             [n, E]         the mean of the L patch tokens
//   --pool grid             [n, E, g, g]   the patch tokens as a feature map (g = image size / patch)
// as float32 .npy, and beside it OUT.txt: the image files, one per line, in the order of the rows.
// Exit status: 0 on success, 2 for a wrong argument or input file, 1 for anything unexpected.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xadapt.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/data/transforms.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/model/export.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = default_backend;

/// The encoder's tensors (timm names) and configuration from WEIGHTS.
model::exported_tensors read_encoder(const std::string& weights, index_t num_heads, model::vit_encoder_config& cfg) {
    std::error_code ec;
    io::safetensors_file raw;
    if (!fs::is_directory(weights, ec)) {
        if (!fs::exists(weights, ec)) throw io_error("'" + weights + "' does not exist");
        raw = io::read_safetensors(weights);
    }
    const std::string format = raw.metadata["format"];
    if (fs::is_directory(weights, ec) || format == model::pretrain_format || format == model::finetune_format) {
        const auto ck = model::read_pretrain_checkpoint(weights);
        std::printf("%s checkpoint: %s (step %s)\n", ck.is_finetune() ? "fine-tuning" : "pre-training", ck.path.c_str(),
                    ck.meta("step").c_str());
        auto ex = model::timm_encoder(ck, num_heads);
        cfg = model::encoder_config_from_metadata(ex.metadata, ck.path.string());
        return ex;
    }
    const auto file = io::select_state_dict(std::move(raw), "", weights);  // "module." stripped
    if (format == model::timm_encoder_format) {
        cfg = model::encoder_config_from_metadata(file.metadata, weights);
        if (num_heads > 0 && num_heads != cfg.num_heads)
            throw config_error("--num-heads " + std::to_string(num_heads) + ": the export '" + weights + "' says " +
                               std::to_string(cfg.num_heads));
        std::printf("encoder export: %s\n", weights.c_str());
    } else {
        if (weights.ends_with(".optim.safetensors"))
            throw format_error("'" + weights + "' is a checkpoint's optimiser state; pass its partner without '.optim'");
        if (num_heads <= 0)
            throw config_error("'" + weights + "' is neither a pre-training checkpoint nor an encoder export "
                               "(vasomim-export); for another state dict with timm encoder names give --num-heads");
        cfg = model::infer_encoder_config(file.tensors, "", num_heads, "'" + weights + "'");
        std::printf("state dict: %s\n", weights.c_str());
    }
    return model::timm_encoder(file.tensors, cfg, weights);  // every tensor checked
}

std::vector<fs::path> list_inputs(const std::vector<std::string>& inputs) {
    std::vector<fs::path> out;
    for (const auto& in : inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            const auto found = io::list_image_files(in);
            if (found.empty()) throw io_error("folder '" + in + "' holds no image files (png, jpg, bmp, tif, npy, dcm)");
            for (const auto& f : found) {
                const auto frames = io::expand_frames(f);  // every frame of a cine run
                out.insert(out.end(), frames.begin(), frames.end());
            }
        } else if (fs::exists(in, ec)) {
            const auto frames = io::expand_frames(in);
            out.insert(out.end(), frames.begin(), frames.end());
        } else if (io::split_frame_ref(in).frame) {
            out.emplace_back(in);  // run.dcm#K
        } else {
            throw io_error("'" + in + "' does not exist");
        }
    }
    return out;
}

/// One image as the pre-training sees it: [3, S, S], gray replicated, ImageNet-normalised.
xt::xtensor<float, 3> prepare(const fs::path& p, index_t size) {
    const auto grey = io::read_image_any(p);  // 0..255 for image files, values as stored for .npy
    if (grey.shape()[0] == 0 || grey.shape()[1] == 0) throw format_error("'" + p.string() + "' is an empty image");
    const data::crop_box all{0, 0, std::int64_t(grey.shape()[0]), std::int64_t(grey.shape()[1])};
    return data::to_normalised_rgb(data::resize_bicubic(grey, all, size, size));
}

constexpr const char* footer = R"(
Each image is read as 8-bit gray, resized to the encoder's image size (bicubic, as the pre-training
crops are), replicated to 3 channels and ImageNet-normalised; the encoder runs on every patch and its
final normed tokens are pooled:
  --pool cls    [n, E]          the cls token
  --pool mean   [n, E]          the mean of the patch tokens
  --pool grid   [n, E, g, g]    the patch tokens as a feature map (g = image size / patch size)
OUT.txt lists the image files in the order of the rows.

Exit status: 0 on success, 2 for a wrong argument or input file, 1 for anything unexpected.)";

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-embed: encoder features of images (cls token, mean-pooled patch tokens or the patch grid)"};
    std::string weights, output, pool = "cls";
    std::vector<std::string> inputs;
    index_t num_heads = 0, batch = 8;
    bool overwrite = false;
    app.footer(footer);
    app.add_option("WEIGHTS", weights,
                   "pre-training checkpoint (or a run folder: its latest), encoder export, or a state dict with timm "
                   "encoder names (then --num-heads)")
        ->required();
    app.add_option("IMAGES", inputs, "image files and folders (png, jpg, bmp, tif, npy)")->required();
    app.add_option("-o,--output", output, "features .npy (and OUT.txt with the image files)")->required();
    app.add_option("--pool", pool, "cls: [n, E]; mean: [n, E] of the patch tokens; grid: [n, E, g, g]")
        ->check(CLI::IsMember({"cls", "mean", "grid"}))
        ->capture_default_str();
    app.add_option("--num-heads", num_heads, "attention heads (default: from the checkpoint or export)")
        ->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "images per encoder call")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--overwrite", overwrite, "replace existing output files");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }

    try {
        const fs::path out(output), list = fs::path(output + ".txt");
        std::error_code ec;
        if (fs::is_directory(out, ec)) throw io_error("-o must name a file, '" + output + "' is a folder");
        for (const auto& p : {out, list})
            if (!overwrite && fs::exists(p, ec))
                throw io_error("'" + p.string() + "' exists; pass --overwrite to replace it");
        const auto files = list_inputs(inputs);
        model::vit_encoder_config cfg;
        const auto ex = read_encoder(weights, num_heads, cfg);
        if (cfg.in_chans != 3)
            throw config_error("the encoder takes " + std::to_string(cfg.in_chans) +
                               " input channels; vasomim-embed feeds the 3-channel pre-training input");
        auto net = model::mae_with_encoder<B>(ex.tensors, cfg);
        const index_t S = cfg.img_size, E = cfg.embed_dim, L = cfg.num_patches(), g = S / cfg.patch_size;
        std::printf("encoder: %lld px, patch %lld, width %lld, depth %lld, %lld heads; %zu images, --pool %s\n",
                    (long long)S, (long long)cfg.patch_size, (long long)E, (long long)cfg.depth, (long long)cfg.num_heads,
                    files.size(), pool.c_str());

        const index_t n_all = static_cast<index_t>(files.size());
        const index_t per = pool == "grid" ? E * L : E;
        std::vector<float> feats(static_cast<std::size_t>(n_all * per));
        for (index_t start = 0; start < n_all; start += batch) {
            const index_t n = std::min(batch, n_all - start);
            std::vector<float> host(static_cast<std::size_t>(n * 3 * S * S));
            for (index_t i = 0; i < n; ++i) {
                const auto x = prepare(files[std::size_t(start + i)], S);
                std::copy(x.begin(), x.end(), host.begin() + i * 3 * S * S);
            }
            const auto imgs = tensor<float, B>::from_host(host, shape{n, 3, S, S});
            const auto tok = net.encode_all(imgs.data(), n).to_host();  // [n, 1 + L, E]
            for (index_t i = 0; i < n; ++i) {
                const float* t = tok.data() + i * (1 + L) * E;
                float* f = feats.data() + (start + i) * per;
                if (pool == "cls") {
                    std::copy(t, t + E, f);
                } else if (pool == "mean") {
                    for (index_t e = 0; e < E; ++e) {
                        double s = 0;
                        for (index_t l = 0; l < L; ++l) s += t[(1 + l) * E + e];
                        f[e] = static_cast<float>(s / static_cast<double>(L));
                    }
                } else {  // [E, g, g]
                    for (index_t e = 0; e < E; ++e)
                        for (index_t l = 0; l < L; ++l) f[e * L + l] = t[(1 + l) * E + e];
                }
            }
            std::printf("\r%lld / %lld images", (long long)(start + n), (long long)n_all);
            std::fflush(stdout);
        }
        std::printf("\n");
        std::vector<std::size_t> dims{std::size_t(n_all), std::size_t(E)};
        if (pool == "grid") dims = {std::size_t(n_all), std::size_t(E), std::size_t(g), std::size_t(g)};
        io::write_npy(out, xt::adapt(feats, dims));
        {
            std::ofstream names(list);
            for (const auto& f : files) names << f.string() << '\n';
            if (!names) throw io_error("cannot write '" + list.string() + "'");
        }
        std::string shape_s = "[" + std::to_string(n_all);
        for (std::size_t i = 1; i < dims.size(); ++i) shape_s += ", " + std::to_string(dims[i]);
        std::printf("wrote %s %s and %s\n", output.c_str(), (shape_s + "]").c_str(), list.c_str());
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "vasomim-embed: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vasomim-embed: unexpected error: %s\n", e.what());
        return 1;
    }
    return 0;
}
