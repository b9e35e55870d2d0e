#pragma once
// The pre-training loop: per-iteration warmup + half-cycle cosine learning rate, gradient
// accumulation, optional clipping, a CSV log (step, epoch, lr, loss, rec, cons, images/s), a
// progress bar with ETA on a terminal, PNG panels, checkpoints with the last K kept, exact resume
// and Ctrl-C handling. A resumed run continues bit for bit: batches, augmentations and masks are
// keyed by (seed, epoch/step), and the optimiser state is restored from the checkpoint.
//
// Data parallelism: pretrain(model, loader, options, log, comm) with a communicator policy
// (dist/communicator.hpp; without one, dist::single). The loader's batch size is per rank and its
// rank / world must be the communicator's; the learning rate is scaled from the global batch
// (blr * batch * ranks * accum_iter / 256, as MAE); the ranks check that they run one configuration
// (a hash, before any work), rank 0's parameters are broadcast, gradients are averaged before every
// optimiser step, the log shows losses averaged over the ranks and the images/s of all of them, and
// only rank 0 writes the log, panels and checkpoints (after a barrier). Steps count global batches,
// so a checkpoint resumes on any number of ranks that keeps ranks x batch.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <unistd.h>

#include "vasomim/data/loader.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/masking/schedule.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/optim/lr_schedule.hpp"
#include "vasomim/train/checkpoint.hpp"
#include "vasomim/train/interrupt.hpp"
#include "vasomim/train/panel.hpp"
#include "vasomim/train/progress.hpp"

namespace vasomim::train {

struct pretrain_options {
    std::int64_t epochs = 20;
    double warmup_epochs = 2;
    double blr = 1.5e-4;        ///< base learning rate: lr = blr * batch * accum_iter / 256
    double min_lr = 0;
    std::size_t accum_iter = 1;  ///< iterations per optimiser step
    double clip_grad = 0;        ///< max gradient norm (0: off)
    std::uint64_t seed = 0;
    std::filesystem::path output = "vasomim-output";
    std::size_t checkpoint_every = 0;  ///< iterations between checkpoints (0: at the end of each epoch)
    std::size_t keep_checkpoints = 3;
    std::size_t panel_every = 0;       ///< iterations between panels (0: at the end of each epoch)
    std::string signature;             ///< configuration signature stored in checkpoints
    std::optional<std::filesystem::path> resume_from;  ///< a checkpoint file, or a folder (its newest intact one)
    std::uint64_t max_steps = 0;       ///< stop after this many iterations in total (0: the whole schedule)
    bool show_progress = ::isatty(STDERR_FILENO) != 0;
    /// Called on every rank after each iteration with its number (from 0) and the losses averaged
    /// over the ranks (e.g. for tests); empty: nothing.
    std::function<void(std::uint64_t step, const model::step_losses&)> on_step;
    /// With several ranks and a communicator that allows it (dist::nccl on its stream; dist::mpi
    /// on host memory with MPI_THREAD_SERIALIZED): sum the gradients in buckets during the backward
    /// pass (dist::overlapped_gradient_sum); else, or when false, in one allreduce after it.
    bool overlap_gradients = true;
};

struct pretrain_summary {
    std::uint64_t first_step = 0, steps = 0;
    double first_loss = NAN, last_loss = NAN;
    bool interrupted = false;
    std::optional<std::filesystem::path> last_checkpoint;
};


/// Runs (or resumes) pre-training of `model` on `loader`'s batches as one rank of `comm`; returns
/// what happened. Only rank 0 writes to `log`.
template <class Model, class Dataset, dist::communicator Comm>
pretrain_summary pretrain(Model& model, data::prefetch_loader<Dataset>& loader, const pretrain_options& o,
                          std::ostream& log_to, Comm& comm) {
    namespace fs = std::filesystem;
    const bool root = comm.rank() == 0;
    std::ostream silent(nullptr);
    std::ostream& log = root ? log_to : silent;
    const auto world = static_cast<std::uint64_t>(comm.size());
    const auto& lo = loader.options();
    if (lo.world != world || lo.rank != static_cast<std::size_t>(comm.rank()))
        throw config_error("pretrain: " + dist::rank_text(comm.rank(), comm.size()) + " was given the loader of rank " +
                           std::to_string(lo.rank) + " of " + std::to_string(lo.world));
    const std::uint64_t global_batch = lo.batch_size * world;
    {
        // The same run on every rank, checked before any work (a hash of all that steers it).
        std::ostringstream c;
        c << o.signature << " | seed=" << o.seed << " epochs=" << o.epochs << " warmup=" << o.warmup_epochs
          << " blr=" << o.blr << " min_lr=" << o.min_lr << " accum=" << o.accum_iter << " clip=" << o.clip_grad
          << " batch/rank=" << lo.batch_size << " max_steps=" << o.max_steps << " resume="
          << (o.resume_from ? o.resume_from->string() : std::string("-")) << " output=" << o.output.string();
        dist::check_same_configuration(comm, c.str());
    }
    if (o.epochs <= 0) throw config_error("pretrain: epochs must be positive");
    if (o.accum_iter == 0) throw config_error("pretrain: accum_iter must be positive");
    const auto per_epoch = static_cast<std::uint64_t>(loader.batches_per_epoch());
    const std::uint64_t total = per_epoch * static_cast<std::uint64_t>(o.epochs);
    const std::uint64_t end = o.max_steps ? std::min(total, o.max_steps) : total;
    if (root) fs::create_directories(o.output);

    pretrain_summary summary;
    std::uint64_t step = 0;
    if (o.resume_from) {
        const auto [path, s] = resume_run(*o.resume_from, model, o.signature,
                                          {.seed = o.seed, .world_size = world, .batch_size = lo.batch_size}, log);
        step = s.step;
        summary.last_checkpoint = path;
    }
    summary.first_step = step;
    // Every rank starts from rank 0's weights (DDP's broadcast at construction).
    dist::broadcast_parameters(comm, model);
    // The backward pass takes 1 / ranks with 1 / accum_iter (ctx.accumulation_scale), so the
    // gradient average is the bare sum across ranks: no extra pass over the buffer.
    using backend = typename Model::backend_type;
    dist::gradient_averager<backend, Comm> average(comm, dist::gradient_scaling::prescaled);
    std::optional<dist::overlapped_gradient_sum<Comm>> overlapped;
    if constexpr (dist::stream_ordered_communicator<Comm>) {
        if (world > 1 && o.overlap_gradients) overlapped.emplace(comm);
    } else if constexpr (backend_traits<backend>::host_accessible && !Comm::device_memory &&
                         requires { comm.threads_serialized(); }) {
        if (world > 1 && o.overlap_gradients && comm.threads_serialized()) overlapped.emplace(comm);
    }

    const fs::path csv_path = o.output / "log.csv";
    const bool new_csv = !fs::exists(csv_path) || step == 0;
    std::ofstream csv;
    if (root) {
        csv.open(csv_path, new_csv ? std::ios::trunc : std::ios::app);
        if (!csv) throw io_error("cannot write " + csv_path.string());
        if (new_csv) csv << "step,epoch,lr,loss,rec,cons,images_per_s\n";
    }

    const auto& cfg = model.config();
    optim::warmup_cosine lr_schedule{0, o.min_lr, o.warmup_epochs, double(o.epochs)};
    std::optional<data::batch> last_batch;
    auto save = [&](std::uint64_t at) {
        comm.barrier();  // every rank has finished step `at`
        if (root)
            summary.last_checkpoint =
                save_checkpoint(o.output, model, {at, o.seed, o.signature, world, global_batch}, o.keep_checkpoints);
        else
            summary.last_checkpoint = checkpoint_path(o.output, at);
    };
    auto panel = [&](std::uint64_t at) {
        if (!last_batch || !root) return;
        const auto& net = model.network();
        const std::int64_t L = cfg.num_patches(), ps = cfg.patch_values(), s = cfg.img_size;
        const auto pred = net.host_copy(net.acts().pred + ps, L * ps);  // sample 0, skip the cls row
        const auto mask = model.last_mask().mask.to_host();
        std::vector<float> guidance;
        if (!model.last_guidance().empty()) guidance = model.last_guidance().to_host();
        char name[48];
        std::snprintf(name, sizeof name, "panel-%010llu.png", static_cast<unsigned long long>(at));
        write_panel(o.output / name, {last_batch->images.data(), pred.data(), mask.data(),
                                      guidance.empty() ? nullptr : guidance.data(), s, cfg.patch_size, cfg.norm_pix_loss});
    };

    const auto start = std::chrono::steady_clock::now();
    auto t_last = start;
    double rate = 0;
    while (step < end) {
        const std::int64_t epoch = static_cast<std::int64_t>(step / per_epoch);
        loader.start_epoch(epoch, static_cast<std::size_t>(step % per_epoch));
        while (step < end && step / per_epoch == static_cast<std::uint64_t>(epoch)) {
            // Stops only where an optimiser step is complete (with accum_iter > 1, after the last
            // iteration of the cycle), so that the checkpoint below holds every gradient taken.
            // With more ranks: agreed on after each step, below.
            if (world == 1 && interrupted() && step % o.accum_iter == 0) {
                summary.interrupted = true;
                break;
            }
            auto b = loader.next();
            if (!b) break;
            const std::uint64_t cycle_start = step - step % o.accum_iter;
            const double n = static_cast<double>(b->images.shape()[0]);
            lr_schedule.lr = optim::scaled_lr(o.blr, static_cast<index_t>(global_batch) * static_cast<index_t>(o.accum_iter));
            model::step_context ctx;
            ctx.step = step;
            ctx.at = masking::progress::from_epoch(epoch, o.epochs);
            ctx.lr = lr_schedule.at_iteration(static_cast<index_t>(cycle_start), static_cast<index_t>(per_epoch));
            ctx.apply_update = (step + 1) % o.accum_iter == 0;
            ctx.accumulation_scale = 1.0 / (double(o.accum_iter) * double(world));
            ctx.clip_grad_norm = o.clip_grad;
            ctx.first_sample = static_cast<std::int64_t>(b->first_sample);
            if (overlapped) {
                ctx.gradients_final_from = [&](float* g, index_t from, index_t count) { overlapped->final_from(g, from, count); };
                ctx.reduce_gradients = [&](float* g, index_t count) { (*overlapped)(g, count); };
            } else if (world > 1) {
                ctx.reduce_gradients = [&average](float* g, index_t count) { average(g, count); };
            }
            model::step_losses l;
            try {
                l = model.train_step(b->images, b->masks, ctx);
            } catch (const numeric_error& e) {
                log << "\nstopping: " << e.what() << "\nlast good checkpoint: "
                    << (summary.last_checkpoint ? summary.last_checkpoint->string() : std::string("none")) << "\n";
                throw;
            }
            last_batch = std::move(b);
            const auto now = std::chrono::steady_clock::now();
            const double dt = std::chrono::duration<double>(now - t_last).count();
            t_last = now;
            double inst = dt > 0 ? n / dt : 0;
            bool stop = false;
            if (world > 1) {  // the log's numbers over all ranks, and whether any was interrupted
                double v[5] = {l.loss, l.rec, l.cons, inst, interrupted() ? 1.0 : 0.0};
                comm.allreduce_sum_host(v, 5);
                const double w = double(world);
                l = {v[0] / w, v[1] / w, v[2] / w};
                inst = v[3];
                stop = v[4] > 0;
            }
            if (o.on_step) o.on_step(step, l);
            if (step == summary.first_step) summary.first_loss = l.loss;
            summary.last_loss = l.loss;
            ++step;
            ++summary.steps;

            rate = rate == 0 ? inst : 0.9 * rate + 0.1 * inst;
            char row[160];
            std::snprintf(row, sizeof row, "%llu,%lld,%.6g,%.6f,%.6f,%.6f,%.1f\n", static_cast<unsigned long long>(step),
                          static_cast<long long>(epoch), ctx.lr, l.loss, l.rec, l.cons, inst);
            if (root) csv << row << std::flush;  // readable while the run goes on, complete after a crash
            if (o.show_progress && root)
                draw_progress(stderr, epoch + 1, o.epochs, step, end, l.loss, ctx.lr, rate, double(global_batch));
            const bool boundary = step % o.accum_iter == 0;
            const bool epoch_end = step % per_epoch == 0;
            if (boundary && (o.checkpoint_every ? step % o.checkpoint_every == 0 : epoch_end)) save(step);
            if (o.panel_every ? step % o.panel_every == 0 : epoch_end) panel(step);
            if (stop && boundary) {
                summary.interrupted = true;
                break;
            }
        }
        if (summary.interrupted) break;
    }
    if (o.show_progress && root) std::fputc('\n', stderr);
    if (root) csv.flush();
    if (summary.steps > 0 && step % o.accum_iter == 0 &&
        (!summary.last_checkpoint || summary.last_checkpoint->filename() != checkpoint_path(o.output, step).filename()))
        save(step);
    if (summary.interrupted)
        log << "interrupted at step " << step << "; last checkpoint: "
            << (summary.last_checkpoint ? summary.last_checkpoint->string() : std::string("none")) << "\n";
    return summary;
}

/// One process (dist::single): training without data parallelism.
template <class Model, class Dataset>
pretrain_summary pretrain(Model& model, data::prefetch_loader<Dataset>& loader, const pretrain_options& o,
                          std::ostream& log) {
    dist::single one;
    return pretrain(model, loader, o, log, one);
}

}  // namespace vasomim::train
