// vasomim-export: a pre-training checkpoint's encoder as a timm VisionTransformer state dict, or the
// whole checkpoint under the released VasoMIM model's names (model/export.hpp, GitHub issue 16).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xadapt.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/export.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = default_backend;

constexpr const char* footer = R"(
--what encoder (default) writes exactly the state_dict of
  timm.models.vision_transformer.VisionTransformer(img_size, patch_size, in_chans, embed_dim, depth,
      num_heads, mlp_ratio=4, qkv_bias=True, num_classes=0, global_pool='token',
      norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6))
(cls_token, pos_embed, patch_embed.proj, blocks.i, norm; decoder, mask token and segmentor dropped),
from a pre-training checkpoint or a fine-tuning one (its fine-tuned encoder; segmentation decoder dropped);
the file's metadata holds that configuration ("timm_constructor") and the source checkpoint.
With --images X.npy --features F.npy the library's encoder, read back from the exported file, runs
on every patch of the float32 images [n, c, H, W] and writes its final normed tokens [n, 1 + L, D];
`/usr/bin/python3 tools/make_export_fixture.py --check FILE --images X.npy --features F.npy` loads
the export into a PyTorch restatement of timm's model (strict=True) and prints the difference.

--what state-dict writes every tensor of the checkpoint under the names of the released VasoMIM
model (XA-SSL models_vmae.py): MAE names unchanged, the segmentor as seg_model.*, with an int64
num_batches_tracked for each BatchNorm, so that load_state_dict(strict=True) accepts it after
  /usr/bin/python3 tools/convert_torch_checkpoint.py --to-torch FILE OUT.pth            # {'model': ...}
  /usr/bin/python3 tools/convert_torch_checkpoint.py --to-torch FILE OUT.pth --key ''   # bare state_dict

Exit status: 0 on success, 2 for a wrong argument or input file, 1 for anything unexpected.)";

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-export: a pre-trained encoder for timm, or the checkpoint for the released PyTorch code"};
    app.footer(footer);
    std::string checkpoint, output, what = "encoder", images, features;
    index_t num_heads = 0;
    app.add_option("CHECKPOINT", checkpoint,
                   "pre-training checkpoint (checkpoint-*.safetensors) or a run folder (its latest checkpoint); a "
                   "fine-tuning checkpoint (vasomim-finetune's best.safetensors, ...) exports its encoder")
        ->required();
    app.add_option("-o,--output", output, "output .safetensors file")->required();
    app.add_option("--what", what, "encoder: timm VisionTransformer state dict; state-dict: the whole checkpoint, "
                                   "released names")
        ->check(CLI::IsMember({"encoder", "state-dict"}))
        ->capture_default_str();
    app.add_option("--num-heads", num_heads, "attention heads of the encoder (default: from the checkpoint's signature)")
        ->check(CLI::PositiveNumber);
    app.add_option("--images", images, "with --what encoder: float32 images [n, c, H, W] (.npy) to run the export on");
    app.add_option("--features", features, "where to write the encoder's features of --images (.npy)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help: 0; a wrong argument: 2, as for a wrong input file
    }

    try {
        if (images.empty() != features.empty()) throw config_error("--images and --features go together");
        if (!images.empty() && what != "encoder") throw config_error("--images/--features need --what encoder");
        if (fs::is_directory(output)) throw io_error("-o must name a file, '" + output + "' is a folder");
        const auto ck = model::read_pretrain_checkpoint(checkpoint);
        std::printf("checkpoint: %s (step %s, %s)\n", ck.path.c_str(), ck.meta("step").c_str(), ck.meta("signature").c_str());
        const auto ex = what == "encoder" ? model::timm_encoder(ck, num_heads) : model::released_state_dict(ck);
        io::write_safetensors(output, ex.tensors, ex.metadata);
        if (what == "encoder") {
            std::printf("wrote %s: %zu tensors, the state_dict of\n  %s\n", output.c_str(), ex.tensors.size(),
                        ex.metadata.at("timm_constructor").c_str());
        } else {
            std::size_t counts = 0;
            for (const auto& t : ex.tensors) counts += t.dtype == "I64";
            std::printf("wrote %s: %zu tensors under the released names (%zu num_batches_tracked)\n", output.c_str(),
                        ex.tensors.size(), counts);
            if (!ck.has_segmentor())
                std::printf("note: the checkpoint has no segmentor (method without one), so seg_model.* is absent: "
                            "the released VasoMIM model loads it with strict=False only\n");
            std::printf("for PyTorch: /usr/bin/python3 tools/convert_torch_checkpoint.py --to-torch %s OUT.pth "
                        "[--key '' for a bare state_dict]\n",
                        output.c_str());
        }
        if (!images.empty()) {
            const auto file = io::read_safetensors(output);  // what was written, read back
            const auto cfg = model::encoder_config_from_metadata(file.metadata, output);
            auto net = model::mae_with_encoder<B>(file.tensors, cfg);
            const auto x = io::read_npy_as<float>(images);
            if (x.dimension() != 4 || index_t(x.shape()[1]) != cfg.in_chans || index_t(x.shape()[2]) != cfg.img_size ||
                index_t(x.shape()[3]) != cfg.img_size)
                throw shape_error("--images '" + images + "' must be [n, " + std::to_string(cfg.in_chans) + ", " +
                                  std::to_string(cfg.img_size) + ", " + std::to_string(cfg.img_size) + "]");
            const auto n = index_t(x.shape()[0]);
            const std::vector<float> host(x.begin(), x.end());
            const auto dev = tensor<float, B>::from_host(host, shape{n, cfg.in_chans, cfg.img_size, cfg.img_size});
            const auto f = net.encode_all(dev.data(), n).to_host();
            io::write_npy(features, xt::adapt(f, std::vector<std::size_t>{std::size_t(n), std::size_t(1 + cfg.num_patches()),
                                                                       std::size_t(cfg.embed_dim)}));
            std::printf("features of %lld images: %s [%lld, %lld, %lld]\n", static_cast<long long>(n), features.c_str(),
                        static_cast<long long>(n), static_cast<long long>(1 + cfg.num_patches()),
                        static_cast<long long>(cfg.embed_dim));
        }
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "vasomim-export: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vasomim-export: unexpected error: %s\n", e.what());
        return 1;
    }
    return 0;
}
