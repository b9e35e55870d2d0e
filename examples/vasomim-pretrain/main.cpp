// vasomim-pretrain: pre-trains a masked autoencoder on angiograms, as VasoMIM (anatomy-guided
// masking steered by the ridge-filter pseudo-labels and the co-guidance segmentor, plus the
// anatomical consistency loss), as one of the paper's ablations, or as the MAE baseline with
// everything else equal. Without --segmentor, UNeXt-S is first trained briefly on the pseudo-labels.
// The co-guidance segmentor takes the 3-channel normalised images as released (--segmentor-channels
// 1: a segmentor of their channel mean); --init starts from released MAE / VasoMIM weights.
// Without arguments it pre-trains the tiny preset on the embedded synthetic angiograms in a few
// minutes on a CPU.
// Data parallel under `mpirun -np N` (built with MPI): --batch-size is per rank, the global batch is
// N times that; rank 0 trains the segmentor (when it is trained here), prints and writes the files.
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <omp.h>
#include <xtensor/xadapt.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/data.hpp"
#include "vasomim/dist.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/train/presets.hpp"
#include "vasomim/train/pretrain_loop.hpp"
#include "vasomim/train/segmentor_training.hpp"
#include "vasomim/vessel/fov_pseudo_label.hpp"
#include "vasomim/vessel/pseudo_label.hpp"

namespace {

using namespace vasomim;
using B = default_backend;
#if VASOMIM_HAS_NCCL && VASOMIM_HAS_MPI && VASOMIM_HAS_CUDA
using communicator = dist::nccl;  // one rank per GPU, bootstrapped through MPI
#elif VASOMIM_HAS_MPI
using communicator = dist::mpi;
#else
using communicator = dist::single;
#endif

bool quiet = false;  // ranks other than 0 print nothing but errors

/// printf on rank 0.
[[gnu::format(printf, 1, 2)]] void say(const char* format, ...) {
    if (quiet) return;
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
}

struct options {
    std::string preset = "tiny", method = "vasomim";
    train::pretrain_options run;
    train::pretrain_preset p;
    std::optional<std::filesystem::path> data;
    std::optional<std::filesystem::path> segmentor;
    std::optional<std::filesystem::path> init;  // weights to start from (MAE names; seg_model.* too)
    std::int64_t segmentor_channels = 3;
    std::int64_t segmentor_iterations = 500;  // enough for Dice ~0.5 against the synthetic masks at 64 px
    double consistency_weight = 1.0;
    std::size_t workers = 2;
    std::string pseudo_labels = "released";  // released | fov (vessel/fov_pseudo_label.hpp)
    int threads = 0;
    bool norm_pix = true;
};

std::string signature(const options& o) {
    const auto& m = o.p.model;
    std::ostringstream s;
    s << "method=" << o.method << " img=" << m.img_size << " patch=" << m.patch_size << " chans=" << m.in_chans
      << " enc=" << m.embed_dim << "x" << m.depth << "/" << m.num_heads << " dec=" << m.decoder_embed_dim << "x"
      << m.decoder_depth << "/" << m.decoder_num_heads << " mlp=" << m.mlp_ratio << " norm_pix=" << m.norm_pix_loss;
    if (o.method == "vasomim" || o.method == "consistency") s << " cons_weight=" << o.consistency_weight;
    if (o.method != "mae" && o.method != "filter-masking") s << " seg_chans=" << o.segmentor_channels;
    if (o.pseudo_labels != "released") s << " pseudo_labels=" << o.pseudo_labels;
    return s.str();
}

/// Whether a state dict holds a co-guidance segmentor under a prefix (a released VasoMIM state
/// dict's seg_model.* or this library's checkpoint's segmentor.*).
bool holds_segmentor(const std::filesystem::path& path) {
    return !nn::unext_prefix_in(io::read_safetensors(path.string())).empty();
}

/// The released pseudo-label pipeline as the mask maker of folders without masks.
xt::xtensor<std::uint8_t, 2> pseudo_label_of(const xt::xtensor<std::uint8_t, 2>& img) {
    const shape s{index_t(img.shape()[0]), index_t(img.shape()[1])};
    const auto t = tensor<std::uint8_t, B>::from_host(std::span<const std::uint8_t>(img.data(), img.size()), s);
    const auto mask = vessel::pseudo_label(t).to_host();
    return xt::adapt(mask, img.shape());
}

/// --pseudo-labels fov: the field-of-view-aware variant (the released mask where it falls back).
xt::xtensor<std::uint8_t, 2> fov_pseudo_label_of(const xt::xtensor<std::uint8_t, 2>& img) {
    const shape s{index_t(img.shape()[0]), index_t(img.shape()[1])};
    const auto t = tensor<std::uint8_t, B>::from_host(std::span<const std::uint8_t>(img.data(), img.size()), s);
    const auto r = vessel::fov_pseudo_label(t);
    if (r.fallback()) std::fprintf(stderr, "pseudo-labels: %s for one image; its released pseudo-label is used\n",
                                   vessel::to_string(r.status));
    const auto mask = r.mask.to_host();
    return xt::adapt(mask, img.shape());
}

template <class Model, class Dataset>
int run(const options& o, const Dataset& dataset, Model& model, communicator& comm) {
    data::loader_options lo;
    lo.batch_size = o.p.batch_size;
    lo.workers = o.workers;
    lo.seed = o.run.seed;
    lo.augment.size = o.p.model.img_size;
    lo.rank = static_cast<std::size_t>(comm.rank());
    lo.world = static_cast<std::size_t>(comm.size());
    data::prefetch_loader<Dataset> loader(dataset, lo);
    model.init(o.run.seed);
    if (o.init && !o.run.resume_from) {
        model.load_weights(o.init->string(), quiet ? nullptr : &std::cout);
        say("init: weights from %s (optimiser fresh, step 0)\n", o.init->c_str());
    }
    say("vasomim-pretrain: %s, preset %s, backend %s, %zu images, %zu iterations/epoch, %lld epochs\n", o.method.c_str(),
        o.preset.c_str(), backend_traits<B>::name, dataset.size(), loader.batches_per_epoch(),
        static_cast<long long>(o.run.epochs));
    say("  data parallel: %d rank(s) x batch %zu = global batch %zu (lr = blr x %zu x accum / 256)\n", comm.size(),
        o.p.batch_size, o.p.batch_size * std::size_t(comm.size()), o.p.batch_size * std::size_t(comm.size()));
    say("  model: %s\n  output: %s (log.csv, panel-*.png, checkpoint-*.safetensors)\n", signature(o).c_str(),
        o.run.output.c_str());
    train::install_interrupt_handler();
    const auto summary = train::pretrain(model, loader, o.run, std::cout, comm);
    // Unreadable files are each rank's own: every rank reports those of its shard.
    for (const auto& f : loader.failures())
        std::printf("  %sskipped %s: %s\n", comm.size() > 1 ? (dist::rank_text(comm.rank(), comm.size()) + ": ").c_str() : "",
                    f.name.c_str(), f.message.c_str());
    if (!loader.failures().empty()) std::printf("  %zu unreadable file(s) skipped\n", loader.failures().size());
    say("done: %llu iterations, loss %.4f -> %.4f%s\n", static_cast<unsigned long long>(summary.steps),
        summary.first_loss, summary.last_loss, summary.interrupted ? " (interrupted)" : "");
    if (summary.last_checkpoint) say("checkpoint: %s\n", summary.last_checkpoint->c_str());
    return 0;  // interrupted or not: a checkpoint of the last step is on disk (issue 19)
}

/// Gives a model with a segmentor its weights: --segmentor, the checkpoint when resuming, or a
/// brief training run on the pseudo-labels of the same data (saved as <output>/segmentor.safetensors).
template <class Model, class Dataset>
void prepare_segmentor(const options& o, const Dataset& dataset, Model& model, communicator& comm) {
    model.configure_segmentor(nn::unext_config{.in_channels = o.segmentor_channels});
    if (o.run.resume_from) {
        say("segmentor: restored from the checkpoint\n");
        return;
    }
    if (o.segmentor) {
        model.load_segmentor(o.segmentor->string(), quiet ? nullptr : &std::cout);
        say("segmentor: %s (%lld input channels)\n", o.segmentor->c_str(), static_cast<long long>(o.segmentor_channels));
        return;
    }
    if (o.init && holds_segmentor(*o.init)) {
        model.load_segmentor(o.init->string(), quiet ? nullptr : &std::cout);
        say("segmentor: the one inside %s\n", o.init->c_str());
        return;
    }
    if (comm.rank() != 0) return;  // rank 0 trains it; train::pretrain broadcasts rank 0's segmentor
    std::printf("segmentor: no --segmentor given; training UNeXt-S on the pseudo-labels first (%lld iterations, "
                "0.5 BCE + 0.5 Dice, Adam 1e-3, poly 0.9)\n", static_cast<long long>(o.segmentor_iterations));
    data::loader_options lo;
    // the global batch (capped at 16), so that N ranks x b get the segmentor of one process x N b
    lo.batch_size = std::min<std::size_t>(o.p.batch_size * static_cast<std::size_t>(comm.size()), 16);
    lo.workers = o.workers;
    lo.seed = o.run.seed + 1;  // its own augmentation stream
    lo.augment.size = o.p.model.img_size;
    data::prefetch_loader<Dataset> loader(dataset, lo);
    auto& seg = model.segmentor();
    seg.init(o.run.seed);
    train::segmentor_training_options so;
    so.iterations = o.segmentor_iterations;
    const auto last = train::train_segmentor(seg, loader, so, std::cout);
    std::filesystem::create_directories(o.run.output);
    const auto path = o.run.output / "segmentor.safetensors";
    io::save_parameters(path.string(), seg.table(), seg.parameters(), {{"format", "unext-s"}});
    std::printf("segmentor: trained (last batch: loss %.4f, Dice vs pseudo-labels %.3f), saved to %s\n", last.loss,
                last.dice, path.c_str());
    if (last.dice < 0.05)
        std::fprintf(stderr, "warning: the co-guidance segmentor's Dice against the pseudo-labels is %.3f: it predicts "
                             "(almost) only background and its guidance is empty; train it longer "
                             "(--segmentor-iterations), pass --segmentor WEIGHTS, or check the pseudo-labels "
                             "(--pseudo-labels fov for angiograms with dark collimator areas)\n", last.dice);
}

template <class Dataset>
int dispatch(const options& o, const Dataset& dataset, communicator& comm) {
    // Every rank must get a batch of every global batch: checked here, the same on every rank.
    if (dataset.size() < o.p.batch_size * std::size_t(comm.size()))
        throw dist::collective_error("the data set has " + std::to_string(dataset.size()) + " images, fewer than " +
                                     std::to_string(comm.size()) + " rank(s) x --batch-size " +
                                     std::to_string(o.p.batch_size));
    optim::adamw_options ao;
    ao.weight_decay = o.p.weight_decay;
    const masking::random uniform{o.p.mask_ratio, o.run.seed};
    const masking::anatomy_guided<masking::schedule::linear> guided{o.p.mask_ratio, {o.p.beta_0, o.p.beta_E}, o.run.seed};
    const objective::reconstruction_plus_consistency with_cons{o.consistency_weight};
    if (o.method == "mae") {
        model::mae_pretraining<B> m(o.p.model, uniform, ao);
        return run(o, dataset, m, comm);
    }
    if (o.method == "filter-masking") {
        model::filter_guided_pretraining<B> m(o.p.model, guided, ao);
        return run(o, dataset, m, comm);
    }
    if (o.method == "guided-masking") {
        model::guided_masking_pretraining<B> m(o.p.model, guided, ao);
        prepare_segmentor(o, dataset, m, comm);
        return run(o, dataset, m, comm);
    }
    if (o.method == "consistency") {
        model::consistency_pretraining<B> m(o.p.model, uniform, ao, with_cons);
        prepare_segmentor(o, dataset, m, comm);
        return run(o, dataset, m, comm);
    }
    model::vasomim_pretraining<B> m(o.p.model, guided, ao, with_cons);
    prepare_segmentor(o, dataset, m, comm);
    return run(o, dataset, m, comm);
}

}  // namespace

int main(int argc, char** argv) {
#if VASOMIM_HAS_MPI
    dist::mpi_environment mpi_env(argc, argv);
#endif
#if VASOMIM_HAS_NCCL && VASOMIM_HAS_MPI && VASOMIM_HAS_CUDA
    dist::mpi bootstrap;
    communicator comm(bootstrap);  // picks this rank's GPU before anything is allocated
#else
    communicator comm;
#endif
    quiet = comm.rank() != 0;
    CLI::App app{"Pre-train a vascular anatomy-aware masked autoencoder (VasoMIM) or the MAE baseline"};
    options o;
    app.add_option("--preset", o.preset, "tiny (CPU demo), small, base (as released)")->capture_default_str();
    app.add_option("--method", o.method,
                   "vasomim (guided masking with filter + segmentor guidance, plus the consistency loss), mae "
                   "(random masking), or an ablation: guided-masking (no consistency loss), consistency (random "
                   "masking plus the consistency loss), filter-masking (guided by the ridge filter alone, no segmentor)")
        ->check(CLI::IsMember({"vasomim", "mae", "guided-masking", "consistency", "filter-masking"}))
        ->capture_default_str();
    std::optional<std::size_t> batch, synthetic;
    std::optional<std::int64_t> epochs, img_size, patch_size;
    std::optional<double> warmup, blr, wd, mask_ratio, beta0, betaE;
    app.add_option("--data", o.data, "data folder (XA-170K layout, images/ + masks/, or images only: pseudo-labels "
                                      "are computed and cached); default: synthetic angiograms");
    app.add_option("--pseudo-labels", o.pseudo_labels,
                   "pseudo-labels computed for --data folders without masks: released (the VasoMIM pipeline, cached "
                   "in <folder>_frangi/) or fov (field-of-view-aware, vessel/fov_pseudo_label.hpp, cached in "
                   "<folder>_fov/; never mixed with released ones)")
        ->check(CLI::IsMember({"released", "fov"}))
        ->capture_default_str();
    app.add_option("--synthetic-images", synthetic, "size of the synthetic data set");
    app.add_option("--segmentor", o.segmentor,
                   "UNeXt-S weights (safetensors, state_dict names) for co-guidance; without it one is trained "
                   "briefly on the pseudo-labels first")
        ->check(CLI::ExistingFile);
    app.add_option("--segmentor-channels", o.segmentor_channels,
                   "input channels of the co-guidance segmentor: 3 (as released: the 3-channel normalised image "
                   "and reconstruction) or 1 (their channel mean)")
        ->check(CLI::IsMember({1, 3}))
        ->capture_default_str();
    app.add_option("--init", o.init,
                   "start from these weights (safetensors with MAE names, e.g. a released MAE / VasoMIM checkpoint "
                   "converted by tools/convert_torch_checkpoint.py; module. stripped; its seg_model.* serves as the "
                   "segmentor when no --segmentor is given); optimiser and step start fresh")
        ->check(CLI::ExistingFile);
    app.add_option("--segmentor-iterations", o.segmentor_iterations,
                   "iterations of that brief segmentor training")->capture_default_str();
    app.add_option("--consistency-weight", o.consistency_weight, "weight of the consistency loss")->capture_default_str();
    app.add_option("--batch-size", batch, "images per iteration and rank (under mpirun -np N the global batch is N times it)");
    app.add_option("--accum-iter", o.run.accum_iter, "iterations per optimiser step")->capture_default_str();
    app.add_option("--epochs", epochs, "epochs");
    app.add_option("--warmup-epochs", warmup, "linear warmup epochs");
    app.add_option("--blr", blr, "base learning rate (lr = blr * effective batch / 256)");
    app.add_option("--min-lr", o.run.min_lr, "final learning rate")->capture_default_str();
    app.add_option("--weight-decay", wd, "AdamW weight decay (weights only)");
    app.add_option("--clip-grad", o.run.clip_grad, "max gradient norm (0: off)")->capture_default_str();
    app.add_option("--mask-ratio", mask_ratio, "share of masked patches, in (0, 1)");
    app.add_option("--beta0", beta0, "guided share of the masked patches at the start");
    app.add_option("--betaE", betaE, "guided share at the end (linear schedule)");
    app.add_option("--img-size", img_size, "image size (overrides the preset)");
    app.add_option("--patch-size", patch_size, "patch size (overrides the preset)");
    app.add_flag("!--no-norm-pix", o.norm_pix, "reconstruct raw pixels instead of per-patch normalised ones");
    app.add_option("--seed", o.run.seed, "seed of every random stream")->capture_default_str();
    app.add_option("--output", o.run.output, "output folder")->capture_default_str();
    app.add_option("--resume", o.run.resume_from, "checkpoint file or folder (its latest checkpoint) to continue from");
    app.add_option("--checkpoint-every", o.run.checkpoint_every, "iterations between checkpoints (0: each epoch)");
    app.add_option("--keep-checkpoints", o.run.keep_checkpoints, "checkpoints kept")->capture_default_str();
    app.add_option("--panel-every", o.run.panel_every, "iterations between PNG panels (0: each epoch)");
    app.add_option("--max-steps", o.run.max_steps, "stop after this many iterations in total (0: all)");
    app.add_option("--workers", o.workers, "data loading threads")->capture_default_str();
    app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)");
    std::string backend_name = backend_traits<B>::name;
    app.add_option("--backend", backend_name, "backend (this build: " + backend_name + ")")
        ->check(CLI::IsMember({std::string(backend_traits<B>::name)}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return quiet ? (e.get_exit_code() == 0 ? 0 : 2) : app.exit(e);
    }

    return dist::run_guarded(comm, "vasomim-pretrain", [&]() -> int {
        o.p = train::preset_by_name(o.preset);
        if (batch) o.p.batch_size = *batch;
        if (epochs) o.p.epochs = *epochs;
        if (warmup) o.p.warmup_epochs = *warmup;
        if (blr) o.p.blr = *blr;
        if (wd) o.p.weight_decay = *wd;
        if (mask_ratio) o.p.mask_ratio = *mask_ratio;
        if (beta0) o.p.beta_0 = *beta0;
        if (betaE) o.p.beta_E = *betaE;
        if (synthetic) o.p.synthetic_images = *synthetic;
        if (img_size) o.p.model.img_size = *img_size;
        if (patch_size) o.p.model.patch_size = *patch_size;
        o.p.model.norm_pix_loss = o.norm_pix;
        // Configuration errors stop here, before any work.
        o.p.model.validate();
        masking::keep_count(o.p.model.num_patches(), o.p.mask_ratio);
        if (o.p.batch_size == 0) throw config_error("--batch-size must be positive");
        if (!(o.p.beta_0 >= 0 && o.p.beta_0 <= 1 && o.p.beta_E >= 0 && o.p.beta_E <= 1))
            throw config_error("--beta0/--betaE must lie in [0, 1]");
        o.run.epochs = o.p.epochs;
        o.run.warmup_epochs = std::min(o.p.warmup_epochs, double(o.p.epochs) - 1e-9);
        o.run.blr = o.p.blr;
        o.run.signature = signature(o);
        if (o.threads > 0) omp_set_num_threads(o.threads);
        if (o.segmentor_iterations <= 0) throw config_error("--segmentor-iterations must be positive");
        const bool with_segmentor = o.method != "mae" && o.method != "filter-masking";
        if (o.segmentor && !with_segmentor)
            throw config_error("--segmentor: method " + o.method + " uses no segmentor");
        if (o.init && o.run.resume_from)
            throw config_error("--init and --resume: a resumed run takes its weights from the checkpoint");
        if (with_segmentor && o.p.model.img_size % 32 != 0)
            throw config_error("method " + o.method + " needs an image size that is a multiple of 32 (UNeXt-S), got " +
                               std::to_string(o.p.model.img_size));
        if (o.method == "filter-masking")
            say("guidance: ridge-filter pseudo-labels only (no segmentor, no consistency loss)\n");
        if (o.data) {
            const bool fov = o.pseudo_labels == "fov";
            const data::folder_dataset dataset(*o.data, fov ? fov_pseudo_label_of : pseudo_label_of,
                                               fov ? "_fov" : "_frangi");
            say("pseudo-labels: %s\n", fov ? "field-of-view-aware (cached in <folder>_fov/)" : "released");
            return dispatch(o, dataset, comm);
        }
        data::synthetic_angiogram_options so;
        so.height = so.width = std::max<std::int64_t>(o.p.model.img_size, 64);
        const data::synthetic_dataset dataset(o.p.synthetic_images, o.run.seed, so);
        say("data: %zu synthetic angiograms (exact vessel masks as pseudo-labels)\n", dataset.size());
        return dispatch(o, dataset, comm);
    });
}
