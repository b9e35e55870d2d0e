#pragma once
// Fine-tuning a segmentation model on labelled angiograms (GitHub issue 17, DESIGN 4.6):
//   - batches of joint image / mask augmentations (data/joint_augment.hpp); epoch e's order is a
//     Philox permutation of (seed, e), sample i's augmentation the stream (seed', e, i): every batch
//     is a function of (seed, epoch, batch number) alone; the last batch of an epoch may be smaller
//   - BCE + Dice (loss/bce_dice.hpp: 0.5 BCE + 0.5 (1 - mean per-image Dice)), drop path in the
//     encoder keyed by the step
//   - AdamW (betas 0.9 / 0.999 by default, as MAE's fine-tuning) with layer-wise learning-rate decay
//     (optim/layer_decay.hpp, MAE's param_groups_lrd); weight decay as the parameter table says
//   - per-iteration warmup + half-cycle cosine (optim/lr_schedule.hpp) from `lr` to `min_lr`
//   - validation after every epoch: whole images through the sliding window
//     (model/sliding_window.hpp) at their own size, thresholded at 0.5, Dice / clDice / sensitivity /
//     precision per image (metrics/), and a panel of the first validation image
//   - best.safetensors: the parameters of the epoch with the highest mean validation Dice (an
//     earlier epoch keeps the title on ties), with the signature, epoch and scores in its metadata
//   - checkpoints (train/checkpoint.hpp: atomic, CRC-checked, optimiser beside) after each epoch and
//     on Ctrl-C; --resume continues exactly: steps.csv / log.csv are cut back to the checkpoint's step
//     and the best Dice so far is read back from log.csv
//   - steps.csv (step, epoch, lr, loss, images/s) and log.csv (one row per epoch: train loss, the
//     validation means and standard deviations, best Dice so far, seconds)
//
// The decoder is a template parameter (model::decoder::linear, or any decoder of
// model/segmentation_model.hpp's interface).
//
// Data parallelism (run with a communicator, dist/; issue 18): batch_size is per rank and a step
// takes a global batch of ranks x batch_size images, positions [k N b, (k+1) N b) of the epoch's
// order, rank r the slice [r b, (r+1) b) of it (the last global batch may leave a rank fewer
// images, or none); drop path is keyed by the global position. The loss's BCE mean and mean
// per-image Dice are over the global batch: each rank's gradient is scaled by its share of the
// images and the shares summed across ranks, so N ranks x batch b step as one process x batch
// N b. Rank 0's initial weights are broadcast; every rank resumes from the same checkpoint; only
// rank 0 validates and writes (CSV files, panels, best.safetensors, checkpoints after a barrier);
// Ctrl-C on any rank is agreed on by all after the step.

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/data/joint_augment.hpp"
#include "vasomim/data/segmentation_folder.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/metrics/segmentation_metrics.hpp"
#include "vasomim/model/segmentation_model.hpp"
#include "vasomim/model/sliding_window.hpp"
#include "vasomim/optim/adamw.hpp"
#include "vasomim/optim/layer_decay.hpp"
#include "vasomim/optim/lr_schedule.hpp"
#include "vasomim/train/checkpoint.hpp"
#include "vasomim/train/interrupt.hpp"
#include "vasomim/train/progress.hpp"
#include "vasomim/train/segmentation_panel.hpp"

namespace vasomim::train {

struct finetune_options {
    std::int64_t epochs = 50;
    double warmup_epochs = 5;
    double lr = 5e-4;       ///< peak learning rate (of the top layer; lower layers get lr * decay^k)
    double min_lr = 1e-6;
    double layer_decay = 0.75;
    double weight_decay = 0.05;
    double beta1 = 0.9, beta2 = 0.999;
    double drop_path = 0.1;
    std::size_t batch_size = 8;
    std::uint64_t seed = 0;
    data::joint_augment_options augment{};    ///< size must be the model's input side
    model::sliding_window_options infer{};    ///< scale must be augment.scale
    std::filesystem::path output = "finetune-output";
    std::string signature;                    ///< stored in checkpoints and best.safetensors
    std::optional<std::filesystem::path> resume_from;  ///< a checkpoint file, or a folder (its newest intact one)
    bool overwrite = false;                   ///< allow a fresh run in a folder holding a previous run's files
    std::uint64_t max_steps = 0;              ///< stop after this many steps in total (0: the whole schedule)
    std::size_t keep_checkpoints = 2;
    bool panels = true;
    bool show_progress = ::isatty(STDERR_FILENO) != 0;
    /// Called after every step with its number (0-based) and loss (the global batch's).
    std::function<void(std::uint64_t step, double loss)> on_step = {};
};

/// What one epoch measured.
struct epoch_record {
    std::int64_t epoch = 0;     ///< 1-based
    std::uint64_t step = 0;     ///< steps done at its end
    double lr = 0, train_loss = 0, seconds = 0;
    metrics::score_summary validation;
    double best_dice = 0;
};

struct finetune_summary {
    std::uint64_t first_step = 0, steps = 0;
    std::vector<epoch_record> epochs;   ///< the epochs this call completed
    double best_dice = -1;              ///< -1: no epoch validated yet
    std::int64_t best_epoch = 0;
    bool interrupted = false;
    std::optional<std::filesystem::path> last_checkpoint, best;
};

/// The configuration signature of a fine-tuning run: what a checkpoint's parameters belong to, and
/// what vasomim-segment needs to rebuild the model (parse_finetune_signature).
inline std::string finetune_signature(const std::string& decoder, const model::segmentation_config& c, double scale) {
    const auto& e = c.encoder;
    std::ostringstream s;
    s << "finetune decoder=" << decoder << " img=" << e.img_size << " patch=" << e.patch_size << " chans=" << e.in_chans
      << " enc=" << e.embed_dim << "x" << e.depth << "/" << e.num_heads << " mlp=" << e.mlp_ratio
      << " classes=" << c.num_classes << " scale=" << scale;
    if (decoder == "unetr") s << " feature_size=" << c.unetr.feature_size << " norm_affine=" << int(c.unetr.norm_affine);
    return s.str();
}

/// What a signature says.
struct finetune_model_spec {
    std::string decoder;
    model::segmentation_config config;
    double scale = 1;
};

/// Reads finetune_signature's text back; format_error naming `source` when it is not one.
inline finetune_model_spec parse_finetune_signature(const std::string& sig, const std::string& source) {
    std::istringstream in(sig);
    std::string word;
    in >> word;
    if (word != "finetune")
        throw format_error(source + " is not a fine-tuned segmentation model (its signature is \"" + sig +
                           "\"; vasomim-finetune writes best.safetensors and checkpoint-*.safetensors)");
    std::map<std::string, std::string> kv;
    while (in >> word) {
        const auto eq = word.find('=');
        if (eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
    }
    finetune_model_spec m;
    try {
        auto& e = m.config.encoder;
        m.decoder = kv.at("decoder");
        e.img_size = std::stoll(kv.at("img"));
        e.patch_size = std::stoll(kv.at("patch"));
        e.in_chans = std::stoll(kv.at("chans"));
        const auto& enc = kv.at("enc");
        const auto x = enc.find('x'), sl = enc.find('/');
        if (x == std::string::npos || sl == std::string::npos || sl < x) throw std::invalid_argument("enc");
        e.embed_dim = std::stoll(enc.substr(0, x));
        e.depth = std::stoll(enc.substr(x + 1, sl - x - 1));
        e.num_heads = std::stoll(enc.substr(sl + 1));
        e.mlp_ratio = std::stoll(kv.at("mlp"));
        m.config.num_classes = std::stoll(kv.at("classes"));
        m.scale = std::stod(kv.at("scale"));
        if (m.decoder == "unetr") {
            m.config.unetr.feature_size = std::stoll(kv.at("feature_size"));
            m.config.unetr.norm_affine = kv.at("norm_affine") == "1";
        }
    } catch (const std::exception&) {
        throw format_error(source + " has a malformed fine-tuning signature: \"" + sig + "\"");
    }
    return m;
}

/// Reads the signature of a fine-tuned model file (best.safetensors or a checkpoint).
inline finetune_model_spec read_finetune_spec(const std::filesystem::path& path) {
    const auto f = io::read_safetensors(path.string());
    const auto it = f.metadata.find("signature");
    if (it == f.metadata.end())
        throw format_error(path.string() + " has no 'signature' entry: not written by vasomim-finetune");
    return parse_finetune_signature(it->second, path.string());
}

namespace detail {

/// The shortest decimal text that reads back as `v`.
inline std::string exact(double v) {
    char buf[40];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// Keeps the header and the rows of a CSV whose column `col` (a step count) is <= `step`; returns
/// the kept rows split into fields. A missing file gives no rows.
inline std::vector<std::vector<std::string>> cut_csv(const std::filesystem::path& path, std::size_t col, std::uint64_t step) {
    std::vector<std::vector<std::string>> rows;
    std::ifstream in(path);
    if (!in) return rows;
    std::string header, line, kept;
    std::getline(in, header);
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) f.push_back(cell);
        if (f.size() <= col) continue;
        std::uint64_t v = 0;
        try {
            v = std::stoull(f[col]);
        } catch (const std::exception&) {
            continue;
        }
        if (v > step) continue;
        kept += line;
        kept += '\n';
        rows.push_back(std::move(f));
    }
    in.close();
    std::ofstream out(path, std::ios::trunc);
    if (!out) throw io_error("cannot rewrite " + path.string());
    out << header << '\n' << kept;
    return rows;
}

}  // namespace detail

/// Fine-tunes a segmentation_model<B, encoder::vit, Decoder>; see the top of this file.
template <backend_policy B, class Decoder, class T = float>
class finetuner {
public:
    using network_type = model::segmentation_model<B, model::encoder::vit, Decoder, T>;

    finetuner(const model::segmentation_config& c, finetune_options o)
        : o_(std::move(o)),
          net_(c),
          opt_(net_.table(), optim::adamw_options{o_.lr, o_.beta1, o_.beta2, 1e-8, o_.weight_decay},
               optim::layer_decay_scales(net_.table(), c.encoder.depth, o_.layer_decay)) {
        if (o_.epochs <= 0) throw config_error("fine-tuning: epochs must be positive");
        if (o_.batch_size == 0) throw config_error("fine-tuning: the batch size must be positive");
        if (!(o_.lr > 0) || o_.min_lr < 0 || o_.min_lr > o_.lr)
            throw config_error("fine-tuning: need lr > 0 and 0 <= min_lr <= lr");
        if (!(o_.warmup_epochs >= 0 && o_.warmup_epochs < double(o_.epochs)))
            throw config_error("fine-tuning: warmup epochs must lie in [0, epochs)");
        if (!(o_.drop_path >= 0 && o_.drop_path < 1)) throw config_error("fine-tuning: drop path must lie in [0, 1)");
        if (c.encoder.in_chans != 3) throw config_error("fine-tuning: the encoder must take 3 channels (the grey image replicated)");
        if (c.num_classes != 1) throw config_error("fine-tuning: one output channel (vessel) only");
        if (o_.augment.size != c.img_size())
            throw config_error("fine-tuning: augmentation size " + std::to_string(o_.augment.size) +
                               " differs from the model's input " + std::to_string(c.img_size()));
        o_.augment.validate();
        o_.infer.scale = o_.augment.scale;
        net_.init(o_.seed);
        net_.set_drop_path(o_.drop_path, o_.seed ^ 0xd509a7c4u);
    }

    network_type& network() { return net_; }
    const network_type& network() const { return net_; }
    optim::adamw<B, T>& optimiser() { return opt_; }
    const optim::adamw<B, T>& optimiser() const { return opt_; }
    const finetune_options& options() const { return o_; }

    /// Steps per epoch for `n` training images on `world` ranks (the last batch may be smaller).
    std::uint64_t steps_per_epoch(std::size_t n, std::size_t world = 1) const {
        const std::size_t global = o_.batch_size * world;
        return (n + global - 1) / global;
    }

    /// Images of the global batch of step `number` of an epoch of `n` on `world` ranks.
    std::size_t global_batch_size(std::size_t n, std::uint64_t number, std::size_t world = 1) const {
        const std::size_t global = o_.batch_size * world, first = static_cast<std::size_t>(number) * global;
        return std::min(n, first + global) - std::min(n, first);
    }

    /// The training images of step `number` of epoch `epoch` (indices into the training set): rank
    /// `rank`'s slice of the global batch of `world` ranks (possibly empty).
    std::vector<std::size_t> batch_indices(std::size_t n, std::int64_t epoch, std::uint64_t number, std::size_t rank = 0,
                                           std::size_t world = 1) const {
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), std::size_t(0));
        const philox g(o_.seed, 0x5e9f000000000000ull ^ static_cast<std::uint64_t>(epoch));
        std::vector<std::uint32_t> keys(n);
        for (std::size_t i = 0; i < n; ++i) keys[i] = g.bits(i);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
        const std::size_t first = std::min(n, static_cast<std::size_t>(number) * o_.batch_size * world + rank * o_.batch_size);
        const std::size_t last = std::min(n, first + o_.batch_size);
        return {order.begin() + std::ptrdiff_t(first), order.begin() + std::ptrdiff_t(last)};
    }

    /// The augmented batch of (epoch, number): images [n, 3, S, S] and masks [n, 1, S, S] on the host.
    std::pair<std::vector<T>, std::vector<T>> make_batch(const std::vector<data::segmentation_sample>& train,
                                                         std::int64_t epoch, std::uint64_t number, std::size_t rank = 0,
                                                         std::size_t world = 1) const {
        const auto idx = batch_indices(train.size(), epoch, number, rank, world);
        const auto S = static_cast<std::size_t>(o_.augment.size);
        std::vector<T> images(idx.size() * 3 * S * S), masks(idx.size() * S * S);
        for (std::size_t j = 0; j < idx.size(); ++j) {
            data::random_stream rng(o_.seed ^ 0x6a09e667f3bcc909ull, stream_id(static_cast<std::uint64_t>(epoch), idx[j]));
            const auto a = data::joint_augment(train[idx[j]].image, train[idx[j]].mask, o_.augment, rng);
            std::copy(a.image.begin(), a.image.end(), images.begin() + std::ptrdiff_t(j * 3 * S * S));
            std::copy(a.mask.begin(), a.mask.end(), masks.begin() + std::ptrdiff_t(j * S * S));
        }
        return {std::move(images), std::move(masks)};
    }

    /// This rank's part of a data-parallel step (see the top of this file).
    struct rank_share {
        std::uint64_t first_sample = 0;  ///< global position of this rank's first image (drop path)
        double weight = 1;               ///< this rank's images / the global batch's
        std::function<void(T* grads, index_t n)> sum_gradients;  ///< across ranks, in place
    };

    /// One optimiser step at global step `step` with learning rate `lr`; returns the loss of these
    /// images. With `share`, the gradient (none without images) is scaled by share->weight and
    /// summed across ranks before the update.
    double train_step(const std::vector<T>& images, const std::vector<T>& masks, std::uint64_t step, double lr,
                      const rank_share* share = nullptr) {
        const index_t S = net_.config().img_size(), n = static_cast<index_t>(masks.size()) / (S * S);
        net_.zero_grad();
        double loss = 0;
        if (n > 0) {
            const auto x = tensor<T, B>::from_host(images, shape{n, 3, S, S});
            const auto m = tensor<T, B>::from_host(masks, shape{n, 1, S, S});
            const model::drop_path_key key{step, share ? share->first_sample : step * o_.batch_size};
            net_.forward(x, &key);
            loss = net_.loss(m.data());
            if (!std::isfinite(loss))
                throw numeric_error("fine-tuning: non-finite loss " + std::to_string(loss) + " at step " + std::to_string(step));
            net_.backward();
        }
        if (share) {
            T* g = net_.grads().data();
            if (share->weight != 1) {
                const T w = static_cast<T>(share->weight);
                parallel_for<B>(net_.grads().numel(), [=] VASOMIM_HOST_DEVICE(std::int64_t i) { g[i] *= w; });
            }
            share->sum_gradients(g, net_.grads().numel());
        }
        opt_.set_lr(lr);
        opt_.step(net_.params(), net_.grads());
        return loss;
    }

    /// Vessel probabilities of a whole image (sliding window at the training scale).
    xt::xtensor<float, 2> predict(const xt::xtensor<std::uint8_t, 2>& image, const std::string& name) {
        return model::sliding_window_probability(net_, image, o_.infer, name);
    }

    /// Scores of every validation image (prediction = probability > 0.5); with `panel`, the first
    /// image's panel is written there.
    std::vector<metrics::segmentation_scores> validate(const std::vector<data::segmentation_sample>& val,
                                                       const std::filesystem::path& panel = {}) {
        std::vector<metrics::segmentation_scores> out;
        for (std::size_t i = 0; i < val.size(); ++i) {
            const auto prob = predict(val[i].image, val[i].name);
            xt::xtensor<std::uint8_t, 2> pred = xt::xtensor<std::uint8_t, 2>::from_shape(prob.shape());
            for (std::size_t k = 0; k < prob.size(); ++k) pred.data()[k] = prob.data()[k] > 0.5f ? 1 : 0;
            out.push_back(metrics::evaluate(pred, val[i].mask));
            if (i == 0 && !panel.empty()) write_segmentation_panel(panel, val[i].image, val[i].mask, pred);
        }
        return out;
    }

    /// Runs (or resumes) the schedule on `train`, validating on `val` after each epoch.
    finetune_summary run(const std::vector<data::segmentation_sample>& train,
                         const std::vector<data::segmentation_sample>& val, std::ostream& log) {
        dist::single one;
        return run(train, val, log, one);
    }

    /// The same as one rank of `comm` (see the top of this file); every rank passes the same sets.
    /// Only rank 0 writes to `log`; the summary's validation and best entries are rank 0's.
    template <dist::communicator Comm>
    finetune_summary run(const std::vector<data::segmentation_sample>& train,
                         const std::vector<data::segmentation_sample>& val, std::ostream& log_to, Comm& comm) {
        namespace fs = std::filesystem;
        const bool root = comm.rank() == 0;
        const auto world = static_cast<std::size_t>(comm.size()), rank = static_cast<std::size_t>(comm.rank());
        std::ostream silent(nullptr);
        std::ostream& log = root ? log_to : silent;
        if (world > 1) {
            static_assert(std::is_same_v<T, float> || std::is_same_v<Comm, dist::single>,
                          "data-parallel fine-tuning sums float gradients");
            std::ostringstream c;  // the same run on every rank, checked before any work
            c << o_.signature << " | seed=" << o_.seed << " epochs=" << o_.epochs << " warmup=" << o_.warmup_epochs
              << " lr=" << o_.lr << " min_lr=" << o_.min_lr << " ld=" << o_.layer_decay << " wd=" << o_.weight_decay
              << " dp=" << o_.drop_path << " batch/rank=" << o_.batch_size << " max_steps=" << o_.max_steps
              << " train=" << train.size() << " val=" << val.size() << " resume="
              << (o_.resume_from ? o_.resume_from->string() : std::string("-")) << " output=" << o_.output.string();
            dist::check_same_configuration(comm, c.str());
        }
        if (train.empty()) throw config_error("fine-tuning: the training set is empty");
        if (val.empty()) throw config_error("fine-tuning: the validation set is empty");
        check_tiles(val);
        const std::uint64_t per_epoch = steps_per_epoch(train.size(), world);
        const std::uint64_t total = per_epoch * static_cast<std::uint64_t>(o_.epochs);
        const std::uint64_t end = o_.max_steps ? std::min(total, o_.max_steps) : total;
        const fs::path steps_csv = o_.output / "steps.csv", epochs_csv = o_.output / "log.csv",
                       best_path = o_.output / "best.safetensors";
        finetune_summary summary;
        std::uint64_t step = 0;
        double epoch_loss_sum = 0;
        std::uint64_t epoch_loss_count = 0;
        if (o_.resume_from) {
            const auto [path, s] = resume_run(*o_.resume_from, *this, o_.signature,
                                              {.seed = o_.seed, .world_size = world, .batch_size = o_.batch_size}, log);
            step = s.step;
            summary.last_checkpoint = path;
            if (root) {  // the logs are cut back to the checkpoint, the best Dice read back
                const auto epoch_rows = detail::cut_csv(epochs_csv, 1, step);
                for (const auto& r : epoch_rows)
                    if (r.size() > 4 && std::stod(r[4]) > summary.best_dice) {
                        summary.best_dice = std::stod(r[4]);
                        summary.best_epoch = std::stoll(r[0]);
                    }
                const auto step_rows = detail::cut_csv(steps_csv, 0, step);
                const auto epoch_now = static_cast<std::int64_t>(step / per_epoch);
                for (const auto& r : step_rows)
                    if (r.size() > 3 && std::stoll(r[1]) == epoch_now + 1) {
                        epoch_loss_sum += std::stod(r[3]);
                        ++epoch_loss_count;
                    }
                if (fs::exists(best_path) && summary.best_dice >= 0) {
                    // the CSV rounds; best.safetensors holds the exact value of its epoch
                    summary.best = best_path;
                    const auto meta = io::read_safetensors(best_path.string()).metadata;
                    const auto e = meta.find("epoch"), d = meta.find("val_dice");
                    if (e != meta.end() && d != meta.end() && e->second == std::to_string(summary.best_epoch))
                        summary.best_dice = std::stod(d->second);
                }
            }
        } else if (!o_.overwrite) {
            for (const auto& f : {steps_csv, epochs_csv, best_path})
                if (fs::exists(f))
                    throw config_error("output folder " + o_.output.string() + " holds a previous run (" +
                                       f.filename().string() + "); --resume continues it, --overwrite replaces it");
            if (!list_checkpoints(o_.output).empty())
                throw config_error("output folder " + o_.output.string() +
                                   " holds checkpoints of a previous run; --resume continues it, --overwrite replaces it");
        } else if (root) {
            for (const auto& c : list_checkpoints(o_.output)) {
                fs::remove(optimiser_path(c));
                fs::remove(c);
            }
            fs::remove(best_path);
        }
        summary.first_step = step;
        if (root) fs::create_directories(o_.output);
        comm.barrier();  // rank 0 has cleared and made the folder
        const bool fresh = step == 0;
        std::ofstream scsv, ecsv;
        if (root) {
            scsv.open(steps_csv, fresh ? std::ios::trunc : std::ios::app);
            ecsv.open(epochs_csv, fresh ? std::ios::trunc : std::ios::app);
            if (!scsv) throw io_error("cannot write " + steps_csv.string());
            if (!ecsv) throw io_error("cannot write " + epochs_csv.string());
        }
        if (root && fresh) {
            scsv << "step,epoch,lr,loss,images_per_s\n";
            ecsv << "epoch,step,lr,train_loss,val_dice,val_dice_std,val_cldice,val_cldice_std,val_sensitivity,"
                    "val_precision,best_dice,seconds\n";
        }
        const optim::warmup_cosine schedule{o_.lr, o_.min_lr, o_.warmup_epochs, double(o_.epochs)};
        rank_share share;  // data parallelism: this rank's part of each step
        std::optional<dist::gradient_averager<B, Comm>> sum;
        if constexpr (std::is_same_v<T, float>) {
            if (world > 1) {
                dist::broadcast_from_root<B>(comm, net_.params());  // every rank starts from rank 0's weights
                sum.emplace(comm, dist::gradient_scaling::prescaled);  // the shares are weighted: summed
                share.sum_gradients = [&sum](T* g, index_t count) { (*sum)(g, count); };
            }
        }
        auto save = [&](std::uint64_t at) {
            comm.barrier();  // every rank has finished step `at`
            if (root)
                summary.last_checkpoint = save_checkpoint(
                    o_.output, *this, {at, o_.seed, o_.signature, world, world * o_.batch_size, finetune_checkpoint_format},
                    o_.keep_checkpoints);
            else
                summary.last_checkpoint = checkpoint_path(o_.output, at);
        };
        auto epoch_start = std::chrono::steady_clock::now();
        auto t_last = epoch_start;
        double rate = 0, lr = 0, last_loss = 0;
        while (step < end) {
            if (world == 1 && interrupted()) {  // with more ranks: agreed on after each step, below
                summary.interrupted = true;
                break;
            }
            const auto epoch = static_cast<std::int64_t>(step / per_epoch);
            const std::uint64_t number = step % per_epoch;
            const auto [images, masks] = make_batch(train, epoch, number, rank, world);
            lr = schedule.at_iteration(static_cast<index_t>(step), static_cast<index_t>(per_epoch));
            double n = double(masks.size()) / double(o_.augment.size * o_.augment.size);
            bool stop = false;
            if (world > 1) {
                const std::size_t global = global_batch_size(train.size(), number, world);
                share.first_sample = step * world * o_.batch_size + rank * o_.batch_size;
                share.weight = n / double(global);
                const double mine = train_step(images, masks, step, lr, &share);
                double v[2] = {mine * share.weight, interrupted() ? 1.0 : 0.0};  // the global loss; any Ctrl-C
                comm.allreduce_sum_host(v, 2);
                last_loss = v[0];
                stop = v[1] > 0;
                n = double(global);
            } else {
                last_loss = train_step(images, masks, step, lr);
            }
            if (o_.on_step) o_.on_step(step, last_loss);
            ++step;
            ++summary.steps;
            epoch_loss_sum += last_loss;
            ++epoch_loss_count;
            const auto now = std::chrono::steady_clock::now();
            const double dt = std::chrono::duration<double>(now - t_last).count();
            t_last = now;
            const double inst = dt > 0 ? n / dt : 0;
            rate = rate == 0 ? inst : 0.8 * rate + 0.2 * inst;
            char row[128];
            std::snprintf(row, sizeof row, "%llu,%lld,%.6g,%.6f,%.2f\n", static_cast<unsigned long long>(step),
                          static_cast<long long>(epoch + 1), lr, last_loss, inst);
            if (root) scsv << row << std::flush;
            if (o_.show_progress && root)
                draw_progress(stderr, epoch + 1, o_.epochs, step, end, last_loss, lr, rate, double(o_.batch_size * world));
            if (step % per_epoch == 0 && !root) {  // rank 0 validates and writes
                save(step);
                epoch_loss_sum = 0;
                epoch_loss_count = 0;
                epoch_start = t_last = std::chrono::steady_clock::now();
            } else if (step % per_epoch == 0) {  // the epoch's end: validate, keep the best, checkpoint, log
                epoch_record r;
                r.epoch = epoch + 1;
                r.step = step;
                r.lr = lr;
                r.train_loss = epoch_loss_count ? epoch_loss_sum / double(epoch_loss_count) : NAN;
                char panel_name[40];
                std::snprintf(panel_name, sizeof panel_name, "panel-e%04lld.png", static_cast<long long>(r.epoch));
                const auto scores = validate(val, o_.panels ? o_.output / panel_name : fs::path());
                r.validation = metrics::summarize(scores);
                if (r.validation.mean.dice > summary.best_dice) {
                    summary.best_dice = r.validation.mean.dice;
                    summary.best_epoch = r.epoch;
                    io::save_parameters(best_path.string(), net_.table(), net_.params(),
                                        {{"format", finetune_checkpoint_format},
                                         {"signature", o_.signature},
                                         {"epoch", std::to_string(r.epoch)},
                                         {"step", std::to_string(step)},
                                         {"seed", std::to_string(o_.seed)},
                                         {"val_dice", detail::exact(r.validation.mean.dice)},
                                         {"val_cldice", detail::exact(r.validation.mean.cldice)}});
                    summary.best = best_path;
                }
                r.best_dice = summary.best_dice;
                r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
                char line[320];
                std::snprintf(line, sizeof line, "%lld,%llu,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f\n",
                              static_cast<long long>(r.epoch), static_cast<unsigned long long>(step), lr, r.train_loss,
                              r.validation.mean.dice, r.validation.std.dice, r.validation.mean.cldice,
                              r.validation.std.cldice, r.validation.mean.sensitivity, r.validation.mean.precision,
                              r.best_dice, r.seconds);
                ecsv << line << std::flush;  // before the checkpoint: a resume never lacks the row of its epoch
                save(step);
                if (o_.show_progress) std::fputc('\n', stderr);
                char text[320];
                std::snprintf(text, sizeof text,
                              "epoch %lld/%lld: train loss %.4f, validation Dice %.4f +- %.4f, clDice %.4f +- %.4f "
                              "(best %.4f, epoch %lld), %.1f s\n",
                              static_cast<long long>(r.epoch), static_cast<long long>(o_.epochs), r.train_loss,
                              r.validation.mean.dice, r.validation.std.dice, r.validation.mean.cldice,
                              r.validation.std.cldice, summary.best_dice, static_cast<long long>(summary.best_epoch),
                              r.seconds);
                log << text << std::flush;
                summary.epochs.push_back(r);
                epoch_loss_sum = 0;
                epoch_loss_count = 0;
                epoch_start = t_last = std::chrono::steady_clock::now();
            }
            if (stop) {  // Ctrl-C on some rank, agreed on by all
                summary.interrupted = true;
                break;
            }
        }
        if (o_.show_progress && root && step % per_epoch != 0) std::fputc('\n', stderr);
        if (summary.steps > 0 && step % per_epoch != 0) save(step);  // stopped mid-epoch (Ctrl-C or max_steps)
        if (summary.interrupted)
            log << "interrupted at step " << step << "; last checkpoint: "
                << (summary.last_checkpoint ? summary.last_checkpoint->string() : std::string("none")) << "\n";
        return summary;
    }

private:
    /// Every validation image must hold one tile at the working scale.
    void check_tiles(const std::vector<data::segmentation_sample>& val) const {
        const index_t S = net_.config().img_size();
        for (const auto& s : val) {
            const auto [h, w] = model::scaled_size(index_t(s.image.shape()[0]), index_t(s.image.shape()[1]), o_.infer.scale);
            if (h < S || w < S)
                throw shape_error("validation image '" + s.name + "' is " + std::to_string(s.image.shape()[0]) + " x " +
                                  std::to_string(s.image.shape()[1]) + " pixels, " + std::to_string(h) + " x " +
                                  std::to_string(w) + " at scale " + model::detail::short_number(o_.infer.scale) +
                                  ": smaller than one " + std::to_string(S) + " x " + std::to_string(S) + " tile");
        }
    }

    finetune_options o_;
    network_type net_;
    optim::adamw<B, T> opt_;
};

}  // namespace vasomim::train
