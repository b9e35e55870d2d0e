// vasomim-finetune: fine-tunes a ViT encoder (from a pre-training checkpoint, an exported encoder,
// or from scratch) with a segmentation decoder on labelled angiograms (images/ + masks/), validating
// with Dice and clDice after every epoch and keeping the best epoch's weights (GitHub issue 17).
// The loop is train/finetune.hpp; presets are train/finetune_presets.hpp.
//
// Output folder: log.csv (one row per epoch), steps.csv (one row per step), panel-eNNNN.png (the
// first validation image | its mask | the prediction: true positives green, false positives red,
// false negatives blue), best.safetensors (for vasomim-segment) and checkpoint-*.safetensors
// (for --resume).
//
// Under `mpirun -np N` (built with MPI) it trains on N data-parallel ranks (train/finetune.hpp):
// --batch-size images per rank, a global batch of N times that, stepping as one process with the
// global batch would; rank 0's initial weights are broadcast, rank 0 validates, prints and writes.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include <CLI/CLI.hpp>
#include <omp.h>

#include "vasomim/backend/backends.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/mpi.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/train/finetune.hpp"
#include "vasomim/train/finetune_presets.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = default_backend;
#if VASOMIM_HAS_MPI
using communicator = dist::mpi;  // the ranks of mpirun -np N (a world of one when started by hand)
#else
using communicator = dist::single;
#endif

struct options {
    std::string preset = "tiny", decoder = "linear", init = "scratch", train_spec, val_spec, mask_suffix = "auto";
    fs::path data;
    train::finetune_preset p;
    train::finetune_options run;
    int threads = 0, mask_threshold = 0;
};

template <class Decoder>
int run(const options& o, const std::vector<data::segmentation_sample>& train_set,
        const std::vector<data::segmentation_sample>& val_set, communicator& comm) {
    train::finetuner<B, Decoder> t(o.p.model, o.run);
    if (o.init != "scratch" && !o.run.resume_from) {
        t.network().load_encoder(o.init, &std::cout);
        std::printf("init: encoder from %s (decoder initialised, optimiser fresh)\n", o.init.c_str());
    } else if (!o.run.resume_from) {
        std::printf("init: from scratch (MAE initialisation, seed %llu)\n", static_cast<unsigned long long>(o.run.seed));
    }
    std::printf("vasomim-finetune: preset %s, backend %s, %zu training / %zu validation images, %llu steps/epoch, "
                "%lld epochs\n  model: %s\n  output: %s\n",
                o.preset.c_str(), backend_traits<B>::name, train_set.size(), val_set.size(),
                static_cast<unsigned long long>(t.steps_per_epoch(train_set.size(), std::size_t(comm.size()))),
                static_cast<long long>(o.run.epochs), o.run.signature.c_str(), o.run.output.c_str());
    if (comm.size() > 1)
        std::printf("data parallel: %d ranks x batch %zu = global batch %zu\n", comm.size(), o.run.batch_size,
                    o.run.batch_size * std::size_t(comm.size()));
    std::fflush(stdout);
    train::install_interrupt_handler();
    const auto s = t.run(train_set, val_set, std::cout, comm);
    if (s.best)
        std::printf("best: epoch %lld, validation Dice %.4f -> %s\n", static_cast<long long>(s.best_epoch), s.best_dice,
                    s.best->c_str());
    if (s.last_checkpoint) std::printf("checkpoint: %s\n", s.last_checkpoint->c_str());
    return s.interrupted ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
#if VASOMIM_HAS_MPI
    dist::mpi_environment mpi_env(argc, argv);
#endif
    communicator comm;
    CLI::App app{"vasomim-finetune: fine-tune a ViT encoder + segmentation decoder on labelled angiograms "
                 "(BCE + Dice, AdamW with layer-wise lr decay, warmup + cosine), validating Dice / clDice every epoch"};
    options o;
    app.add_option("--data", o.data, "labelled folder: images/ and masks/ (mask = <stem><suffix>.png)")->required();
    app.add_option("--val", o.val_spec,
                   "validation images: comma-separated items, each A..B (a range of stems, e.g. "
                   "training_31..training_40), a stem prefix, or @FILE (a list of stems)")
        ->required();
    app.add_option("--train", o.train_spec, "training images, same syntax (default: every image not in --val)");
    app.add_option("--mask-suffix", o.mask_suffix,
                   "mask file = masks/<stem><suffix>.png; auto tries '', _gt, _mask, _label")
        ->capture_default_str();
    app.add_option("--mask-threshold", o.mask_threshold,
                   "binarise masks: vessel = value >= T (0: masks must be binary, e.g. 0/255; coronary80 asks for 128)")
        ->check(CLI::Range(0, 255))
        ->capture_default_str();
    app.add_option("--preset", o.preset, "tiny (CPU minutes), small (ViT-S/16), base (ViT-B/16)")
        ->check(CLI::IsMember({"tiny", "small", "base"}))
        ->capture_default_str();
    app.add_option("--decoder", o.decoder, "linear (per-patch linear head) or unetr (MONAI's 2-D UNETR decoder)")
        ->check(CLI::IsMember({"linear", "unetr"}))
        ->capture_default_str();
    app.add_option("--init", o.init,
                   "scratch, or the encoder of a checkpoint: vasomim-pretrain's checkpoint-*.safetensors, a "
                   "vasomim-export encoder, or a converted MAE / VasoMIM state dict (timm / MAE names); the "
                   "position embedding is resampled when its grid differs")
        ->capture_default_str();
    std::optional<std::int64_t> img_size, patch, width, depth, heads, epochs, feature_size;
    std::optional<std::size_t> batch;
    std::optional<double> scale, warmup, lr, min_lr, ld, wd, dp;
    app.add_option("--img-size", img_size, "model input side (tile) in pixels");
    app.add_option("--scale", scale, "model pixels per image pixel (images are resampled by it, train and inference)");
    app.add_option("--patch-size", patch, "ViT patch size");
    app.add_option("--embed-dim", width, "ViT width");
    app.add_option("--depth", depth, "ViT blocks");
    app.add_option("--num-heads", heads, "ViT attention heads");
    app.add_option("--feature-size", feature_size, "UNETR decoder: channels of its image-scale stage (MONAI's feature_size, 16)");
    bool norm_affine = false;
    app.add_flag("--norm-affine", norm_affine, "UNETR decoder: affine instance norms (MONAI: off)");
    app.add_option("--epochs", epochs, "epochs");
    app.add_option("--warmup-epochs", warmup, "linear warmup epochs");
    app.add_option("--batch-size", batch, "images per step (per rank under mpirun)");
    app.add_option("--lr", lr, "peak learning rate of the top layer");
    app.add_option("--min-lr", min_lr, "final learning rate");
    app.add_option("--layer-decay", ld, "layer-wise lr decay (1: none; default: the preset's with --init, 1 from scratch; --resume of a run "
                   "started with --init needs the same value again)");
    app.add_option("--weight-decay", wd, "AdamW weight decay (weights only)");
    app.add_option("--drop-path", dp, "stochastic depth rate of the last block");
    app.add_option("--beta1", o.run.beta1, "AdamW beta1")->capture_default_str();
    app.add_option("--beta2", o.run.beta2, "AdamW beta2")->capture_default_str();
    auto& a = o.run.augment;
    app.add_option("--zoom-max", a.zoom_max, "random crop side = tile * zoom, zoom log-uniform in [1/z, z]")
        ->capture_default_str();
    app.add_option("--flip", a.flip_probability, "probability of each flip (horizontal, vertical)")->capture_default_str();
    app.add_flag("!--no-rotate", a.rotate90, "no random 90-degree rotations");
    app.add_option("--brightness", a.brightness, "brightness jitter (share of 255)")->capture_default_str();
    app.add_option("--contrast", a.contrast, "contrast jitter (factor 1 +- this)")->capture_default_str();
    app.add_option("--gamma", a.gamma, "gamma jitter (gamma in [1/(1+g), 1+g])")->capture_default_str();
    app.add_option("--overlap", o.run.infer.overlap, "least overlap of validation tiles")->capture_default_str();
    app.add_option("--seed", o.run.seed, "seed of initialisation, order, augmentation and drop path")
        ->capture_default_str();
    app.add_option("-o,--output", o.run.output, "output folder")->capture_default_str();
    app.add_option("--resume", o.run.resume_from, "checkpoint file, or the output folder (its newest intact checkpoint)");
    app.add_flag("--overwrite", o.run.overwrite, "start afresh in an output folder that holds a previous run");
    app.add_option("--max-steps", o.run.max_steps, "stop after this many steps in total (0: the whole schedule)");
    app.add_option("--keep-checkpoints", o.run.keep_checkpoints, "checkpoints kept")->capture_default_str();
    app.add_flag("!--no-panels", o.run.panels, "no PNG panels");
    app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)");
    CLI11_PARSE(app, argc, argv);
    if (comm.rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;  // rank 0 prints

    return dist::run_guarded(comm, "vasomim-finetune", [&]() -> int {
        o.p = train::finetune_preset_by_name(o.preset);
        auto& e = o.p.model.encoder;
        if (img_size) e.img_size = *img_size;
        if (patch) e.patch_size = *patch;
        if (width) e.embed_dim = *width;
        if (depth) e.depth = *depth;
        if (heads) e.num_heads = *heads;
        if (feature_size) o.p.model.unetr.feature_size = *feature_size;
        o.p.model.unetr.norm_affine = norm_affine;
        if ((feature_size || norm_affine) && o.decoder != "unetr")
            throw config_error("--feature-size / --norm-affine are settings of --decoder unetr");
        if (scale) o.p.scale = *scale;
        if (epochs) o.p.epochs = *epochs;
        if (warmup) o.p.warmup_epochs = *warmup;
        if (batch) o.p.batch_size = *batch;
        if (lr) o.p.lr = *lr;
        if (min_lr) o.p.min_lr = *min_lr;
        if (ld) o.p.layer_decay = *ld;
        else if (o.init == "scratch") o.p.layer_decay = 1.0;  // no pre-trained layers to protect
        if (wd) o.p.weight_decay = *wd;
        if (dp) o.p.drop_path = *dp;
        if (e.patch_size <= 0 || e.img_size % e.patch_size != 0)
            throw config_error("--img-size " + std::to_string(e.img_size) + " is not a multiple of the patch size " +
                               std::to_string(e.patch_size));
        if (e.num_heads <= 0 || e.embed_dim % e.num_heads != 0)
            throw config_error("--embed-dim " + std::to_string(e.embed_dim) + " is not a multiple of --num-heads " +
                               std::to_string(e.num_heads));
        o.run.epochs = o.p.epochs;
        o.run.warmup_epochs = std::min(o.p.warmup_epochs, double(o.p.epochs) - 1e-9);
        o.run.batch_size = o.p.batch_size;
        o.run.lr = o.p.lr;
        o.run.min_lr = std::min(o.p.min_lr, o.p.lr);
        o.run.layer_decay = o.p.layer_decay;
        o.run.weight_decay = o.p.weight_decay;
        o.run.drop_path = o.p.drop_path;
        o.run.augment.size = e.img_size;
        o.run.augment.scale = o.p.scale;
        // the layer decay too: a resumed run must give every layer the learning rate it had
        o.run.signature = train::finetune_signature(o.decoder, o.p.model, o.p.scale) + " lrd=" + std::to_string(o.p.layer_decay);
        if (o.init != "scratch" && !fs::is_regular_file(o.init))
            throw config_error("--init: " + o.init + " is neither 'scratch' nor a file");
        if (o.init != "scratch" && o.run.resume_from)
            throw config_error("--init and --resume: a resumed run takes its weights from the checkpoint");
        if (o.threads > 0) omp_set_num_threads(o.threads);

        const auto files = data::list_labelled_files(o.data, o.mask_suffix, true);
        std::vector<std::string> stems;
        for (const auto& f : files) stems.push_back(f.stem);
        const auto val = data::select_stems(stems, o.val_spec, "--val");
        std::vector<std::string> train_stems;
        if (o.train_spec.empty()) {
            const std::set<std::string> v(val.begin(), val.end());
            for (const auto& s : stems)
                if (!v.count(s)) train_stems.push_back(s);
            if (train_stems.empty()) throw config_error("--val selects every image: nothing is left to train on");
        } else {
            train_stems = data::select_stems(stems, o.train_spec, "--train");
        }
        for (const auto& s : train_stems)
            if (std::find(val.begin(), val.end(), s) != val.end())
                throw config_error("image " + s + " is selected by both --train and --val");
        const auto train_set = data::load_segmentation_samples(files, train_stems, o.mask_threshold);
        const auto val_set = data::load_segmentation_samples(files, val, o.mask_threshold);
        std::printf("data: %s, training %s .. %s (%zu), validation %s .. %s (%zu)\n", o.data.c_str(),
                    train_stems.front().c_str(), train_stems.back().c_str(), train_stems.size(), val.front().c_str(),
                    val.back().c_str(), val.size());
        return train::dispatch_decoder(o.decoder, [&]<class D>() { return run<D>(o, train_set, val_set, comm); });
    });
}
