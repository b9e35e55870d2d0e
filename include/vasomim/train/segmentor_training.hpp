#pragma once
// Training the co-guidance segmentor UNeXt-S on vessel pseudo-labels as released (XA-SSL
// segmodel/train_unext.py): 0.5 * BCE + 0.5 * (1 - Dice) with ONE Dice over the whole batch
// (pred.view(-1)), Adam lr 1e-3 with poly(0.9) decay stepped once per epoch (LambdaLR stepped after
// each epoch; DESIGN 4.4 said per iteration, the released code wins; per iteration remains an option). The segmentor sees
// what the consistency loss feeds it: the 3-channel ImageNet-normalised image as released
// (in_channels 3), or its channel mean for a 1-channel UNeXt-S (segmentor_input).
//
// Data parallelism (train_segmentor with a communicator, dist/): N ranks x batch b train as one
// process x batch N b, step for step, up to float round-off (issue 18). The BatchNorms are
// synchronised (SyncBatchNorm: per-channel sums reduced across ranks in forward and backward,
// nn/batch_norm.hpp) and the loss takes its BCE mean and its ONE Dice over the global batch
// (loss::global_bce_dice_loss), so every rank's backward pass yields its share of the global
// loss's gradient: the shares are summed across ranks (not averaged) before every Adam step.
// Every rank computes the same running statistics; rank 0's are broadcast at the end all the same.
// One process runs exactly as without a communicator.

#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/cross_rank_sum.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/data/loader.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/nn/unext.hpp"
#include "vasomim/optim/adam.hpp"

namespace vasomim::train {

/// What one training iteration measured.
struct segmentor_step {
    double loss = 0;  ///< 0.5 BCE + 0.5 (1 - Dice)
    double dice = 0;  ///< hard Dice of S > 0 against the labels on this batch (the global one
                      ///< under data parallelism)
};

struct segmentor_training_options {
    std::int64_t iterations = 200;  ///< length of the poly schedule
    double lr = 1e-3;               ///< Adam base learning rate
    double poly_power = 0.9;
    /// > 0: the poly factor (1 - epoch / epochs)^power changes once per epoch of this many
    /// iterations, epochs = ceil(iterations / iterations_per_epoch), as released; 0: per iteration.
    std::int64_t iterations_per_epoch = 0;
    std::int64_t log_every = 50;    ///< iterations between log lines (0: none)
    /// Called by train_segmentor after every iteration with its number (1-based) and measures.
    std::function<void(std::int64_t iteration, const segmentor_step&)> on_step = {};
};

/// Adam + poly(0.9) over UNeXt-S in training mode (BatchNorm batch statistics, running statistics
/// updated), one step per batch.
template <backend_policy B>
class segmentor_trainer {
public:
    segmentor_trainer(nn::unext<B, float>& net, segmentor_training_options o)
        : net_(net), o_(o), opt_(net.table(), optim::adam_config{o.lr}) {
        if (o.iterations <= 0) throw config_error("segmentor training: iterations must be positive");
        if (!(o.lr > 0)) throw config_error("segmentor training: the learning rate must be positive");
        if (o.iterations_per_epoch < 0) throw config_error("segmentor training: iterations_per_epoch must be >= 0");
    }

    /// The learning rate of iteration `step` (0-based).
    double lr_at(std::int64_t step) const {
        if (o_.iterations_per_epoch == 0) return optim::poly_lr(o_.lr, step, o_.iterations, o_.poly_power);
        const std::int64_t per = o_.iterations_per_epoch, epochs = (o_.iterations + per - 1) / per;
        return optim::poly_lr(o_.lr, step / per, epochs, o_.poly_power);
    }

    /// One step on images n x in_channels x h x w and binary labels n x h x w, both on the host
    /// (h, w multiples of 32; see segmentor_input for the channels).
    segmentor_step step(const float* images, const float* labels, index_t n, index_t h, index_t w) {
        if (h % 32 || w % 32)
            throw shape_error("segmentor training: UNeXt-S needs sides that are multiples of 32, got " +
                              std::to_string(h) + " x " + std::to_string(w));
        const index_t npix = n * h * w, nin = npix * net_.config().in_channels;
        if (x_.numel() != nin || t_.numel() != npix) {
            x_ = tensor<float, B>(shape{nin});
            t_ = tensor<float, B>(shape{npix});
            z_ = tensor<float, B>(shape{npix});
            dz_ = tensor<float, B>(shape{npix});
            scratch_ = tensor<float, B>(shape{npix + 3 * n});
        }
        backend_traits<B>::copy_from_host(images, static_cast<std::size_t>(nin), x_.data());
        backend_traits<B>::copy_from_host(labels, static_cast<std::size_t>(npix), t_.data());
        net_.forward(z_.data(), x_.data(), n, h, w, true);
        // as released: the Dice term over the whole batch as one sample
        const float l = across_ranks_ ? loss::global_bce_dice_loss<B>(z_.data(), t_.data(), npix, scratch_.data(),
                                                                      dz_.data(), across_ranks_)
                                      : loss::bce_dice_loss<B>(z_.data(), t_.data(), 1, npix, scratch_.data(), dz_.data());
        if (!std::isfinite(l))
            throw numeric_error("segmentor training: non-finite loss at iteration " + std::to_string(opt_.steps()));
        const double d = loss::hard_dice<B>(z_.data(), t_.data(), npix, scratch_.data(), across_ranks_);
        net_.zero_grad();
        net_.backward(static_cast<float*>(nullptr), dz_.data());
        if (reduce_gradients) reduce_gradients(net_.gradients().data(), net_.gradients().numel());
        opt_.step(net_.parameters(), net_.gradients(), lr_at(opt_.steps()));
        return {double(l), d};
    }

    std::int64_t steps() const { return opt_.steps(); }

    /// Data parallelism (train_segmentor sets it from its communicator): `across` sums host doubles
    /// across ranks; the network's BatchNorms synchronise and the loss and Dice are the global
    /// batch's. reduce_gradients must then sum the gradients across ranks (they are shares of the
    /// global loss's gradient). Empty: one process. The network keeps the hook until it is reset.
    void synchronise(cross_rank_sum across) {
        across_ranks_ = across;
        net_.synchronise_batch_norm(std::move(across));
    }

    /// Called on the gradient buffer after each backward pass, before the Adam step (data
    /// parallelism: the sum across ranks, dist::gradient_averager). Empty: nothing.
    std::function<void(float* grads, index_t n)> reduce_gradients;

private:
    nn::unext<B, float>& net_;
    segmentor_training_options o_;
    optim::adam<B, float> opt_;
    cross_rank_sum across_ranks_;
    tensor<float, B> x_, t_, z_, dz_, scratch_;
};

/// Channel mean of images N x C x H x W (the input of a 1-channel UNeXt-S).
inline std::vector<float> channel_mean(const xt::xtensor<float, 4>& images) {
    const std::size_t n = images.shape()[0], c = images.shape()[1], hw = images.shape()[2] * images.shape()[3];
    std::vector<float> gray(n * hw, 0.f);
    for (std::size_t b = 0; b < n; ++b)
        for (std::size_t ch = 0; ch < c; ++ch) {
            const float* src = images.data() + (b * c + ch) * hw;
            float* dst = gray.data() + b * hw;
            for (std::size_t i = 0; i < hw; ++i) dst[i] += src[i];
        }
    for (auto& v : gray) v /= static_cast<float>(c);
    return gray;
}

/// The segmentor's input for images N x C x H x W: the images themselves when it takes C channels
/// (the released layout: C = 3), their channel mean when it takes one; shape_error otherwise.
inline std::vector<float> segmentor_input(const xt::xtensor<float, 4>& images, index_t in_channels) {
    const auto c = static_cast<index_t>(images.shape()[1]);
    if (in_channels == c) return std::vector<float>(images.begin(), images.end());
    if (in_channels == 1) return channel_mean(images);
    throw shape_error("segmentor input: UNeXt-S takes " + std::to_string(in_channels) + " channels, the images have " +
                      std::to_string(c));
}

/// Trains `net` for o.iterations on the loader's (augmented) images and pseudo-label masks, epoch
/// after epoch, the poly factor stepped per epoch of the loader (unless o.iterations_per_epoch says
/// otherwise); returns the last step's measures. Logs a line every o.log_every iterations.
/// With a communicator: this rank's part of data-parallel training (the loader's rank / world
/// must be the communicator's; see the top of this file); the returned measures are the global
/// batch's, the same on every rank.
template <backend_policy B, class Dataset, dist::communicator Comm>
segmentor_step train_segmentor(nn::unext<B, float>& net, data::prefetch_loader<Dataset>& loader,
                               const segmentor_training_options& o, std::ostream& log_to, Comm& comm) {
    if (loader.options().world != static_cast<std::size_t>(comm.size()) ||
        loader.options().rank != static_cast<std::size_t>(comm.rank()))
        throw config_error("segmentor training: " + dist::rank_text(comm.rank(), comm.size()) +
                           " was given the loader of rank " + std::to_string(loader.options().rank) + " of " +
                           std::to_string(loader.options().world));
    if (loader.batches_per_epoch() == 0) throw config_error("segmentor training: the data set has no full batch");
    std::ostream silent(nullptr);
    std::ostream& log = comm.rank() == 0 ? log_to : silent;
    segmentor_training_options per_epoch = o;
    if (per_epoch.iterations_per_epoch == 0) per_epoch.iterations_per_epoch = static_cast<std::int64_t>(loader.batches_per_epoch());
    segmentor_trainer<B> trainer(net, per_epoch);
    dist::broadcast_from_root<B>(comm, net.parameters());  // every rank starts from rank 0's weights
    // the gradients are shares of the global loss's: summed across ranks, not averaged
    dist::gradient_averager<B, Comm> sum_gradients(comm, dist::gradient_scaling::prescaled);
    struct unhook {  // the network must not keep a hook on this communicator past this call
        nn::unext<B, float>& net;
        ~unhook() { net.synchronise_batch_norm({}); }
    } guard{net};
    if (comm.size() > 1) {
        trainer.synchronise([&comm](double* v, index_t n) { comm.allreduce_sum_host(v, n); });
        trainer.reduce_gradients = [&sum_gradients](float* g, index_t n) { sum_gradients(g, n); };
    }
    segmentor_step last;
    for (std::int64_t epoch = 0; trainer.steps() < o.iterations; ++epoch) {
        loader.start_epoch(epoch);
        while (trainer.steps() < o.iterations) {
            auto b = loader.next();
            if (!b) break;
            const auto n = static_cast<index_t>(b->images.shape()[0]);
            const auto h = static_cast<index_t>(b->images.shape()[2]), w = static_cast<index_t>(b->images.shape()[3]);
            const auto input = segmentor_input(b->images, net.config().in_channels);
            last = trainer.step(input.data(), b->masks.data(), n, h, w);
            if (o.on_step) o.on_step(trainer.steps(), last);
            if (o.log_every > 0 && (trainer.steps() % o.log_every == 0 || trainer.steps() == o.iterations))
                log << "  segmentor iteration " << trainer.steps() << "/" << o.iterations << ": loss " << last.loss
                    << ", Dice vs pseudo-labels " << last.dice << "\n";
        }
    }
    // The weights are the same on every rank (same start, summed gradients), and so should the
    // running statistics be (global ones): rank 0's are broadcast in case of round-off.
    if (comm.size() > 1) {
        std::vector<float> staging;
        for (const auto& e : net.table().entries())
            if (!e.trainable)
                dist::detail::on_comm_memory<B>(Comm::device_memory, net.parameters().data() + e.offset, e.numel(), staging,
                                                [&](float* q) { comm.broadcast(q, e.numel(), 0); });
    }
    return last;
}

/// One process (dist::single).
template <backend_policy B, class Dataset>
segmentor_step train_segmentor(nn::unext<B, float>& net, data::prefetch_loader<Dataset>& loader,
                               const segmentor_training_options& o, std::ostream& log) {
    dist::single one;
    return train_segmentor(net, loader, o, log, one);
}

}  // namespace vasomim::train
