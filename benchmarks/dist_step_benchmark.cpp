// The VasoMIM pre-training step under data parallelism (issue 18): the workload of
// vasomim_step_benchmark (ViT-B/16 + 512x8 decoder, frozen 3-channel UNeXt-S guidance,
// anatomy-guided masking at beta 0.5, L_rec + L_cons, AdamW; 224 px, mask ratio 0.5) with a global
// batch split over the ranks, gradients averaged as train::pretrain does it (prescaled sum,
// dist::gradient_averager). Compare, on the same machine and global batch:
//   OMP_NUM_THREADS=1 mpirun -np 2 build/benchmarks/dist_step_benchmark 8 4    (2 ranks x 1 thread)
//   OMP_NUM_THREADS=2 mpirun -np 1 build/benchmarks/dist_step_benchmark 8 4    (1 rank x 2 threads)
// Arguments: global batch (default 8), timed steps (default 4, after one untimed step); the
// environment variable VASOMIM_STEP_PRESET picks another preset (tiny, small, base, large).
// VASOMIM_DIST_OVERLAP=1 sums the gradients in buckets during the backward pass
// (dist::overlapped_gradient_sum, as train::pretrain does by default); else one sum after it.
// Rank 0 prints the median step time, images/s over all ranks, and the median time the step waits
// for the gradient sum after the backward pass (all of the sum without overlap, its unhidden rest
// with it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <omp.h>
#include <xtensor/xtensor.hpp>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/data/transforms.hpp"
#include "vasomim/dist.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/model/masked_image_model.hpp"

#if !VASOMIM_HAS_MPI
#error "dist_step_benchmark needs MPI (VASOMIM_HAS_MPI)"
#endif

namespace {

using namespace vasomim;
using B = backend::cpu;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point a) { return std::chrono::duration<double>(clock_type::now() - a).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    dist::mpi_environment env(argc, argv);
    dist::mpi comm;
    return dist::run_guarded(comm, "dist_step_benchmark", [&]() -> int {
        const std::size_t global = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8;
        const int steps = argc > 2 ? std::atoi(argv[2]) : 4;
        const char* preset = std::getenv("VASOMIM_STEP_PRESET");
        const auto world = static_cast<std::size_t>(comm.size());
        if (global % world != 0)
            throw dist::collective_error("the global batch " + std::to_string(global) + " is not a multiple of the " +
                                         std::to_string(world) + " ranks");
        const std::size_t b = global / world;
        const model::mae_config cfg = model::presets::by_name(preset && *preset ? preset : "base");
        const auto s = static_cast<std::size_t>(cfg.img_size);
        // This rank's slice of the global batch: samples rank * b ... of the synthetic set.
        xt::xtensor<float, 4> images = xt::xtensor<float, 4>::from_shape({b, 3, s, s});
        xt::xtensor<float, 3> labels = xt::xtensor<float, 3>::from_shape({b, s, s});
        data::synthetic_angiogram_options o;
        o.height = o.width = cfg.img_size;
        for (std::size_t i = 0; i < b; ++i) {
            const auto a = data::make_synthetic_angiogram(o, 1, comm.rank() * b + i);
            xt::xtensor<float, 2> grey = xt::xtensor<float, 2>::from_shape({s, s});
            for (std::size_t k = 0; k < s * s; ++k) grey.data()[k] = float(a.image.data()[k]);
            const xt::xtensor<float, 3> rgb = data::to_normalised_rgb(grey);
            std::copy(rgb.data(), rgb.data() + rgb.size(), images.data() + i * 3 * s * s);
            for (std::size_t k = 0; k < s * s; ++k) labels.data()[i * s * s + k] = a.mask.data()[k] ? 1.f : 0.f;
        }
        optim::adamw_options ao;
        ao.weight_decay = 0.05;
        model::vasomim_pretraining<B> m(cfg, masking::anatomy_guided<masking::schedule::linear>{0.5, {0.0, 0.5}, 0}, ao);
        m.init(0);
        dist::broadcast_parameters(comm, m);
        dist::gradient_averager<B, dist::mpi> average(comm, dist::gradient_scaling::prescaled);
        const char* ov = std::getenv("VASOMIM_DIST_OVERLAP");
        const bool overlap = ov && std::string(ov) == "1" && comm.threads_serialized();
        dist::overlapped_gradient_sum<dist::mpi> overlapped(comm);
        std::vector<double> reduce_times, step_times;
        model::step_context ctx;
        ctx.lr = 1.5e-4 * double(global) / 256.0;
        ctx.at = masking::progress::from_ratio(1.0);
        ctx.accumulation_scale = 1.0 / double(world);
        ctx.first_sample = static_cast<std::int64_t>(comm.rank() * b);
        ctx.reduce_gradients = [&](float* g, index_t n) {
            const auto a = clock_type::now();
            if (overlap)
                overlapped(g, n);
            else
                average(g, n);
            reduce_times.push_back(seconds_since(a));
        };
        if (overlap)
            ctx.gradients_final_from = [&](float* g, index_t from, index_t n) { overlapped.final_from(g, from, n); };
        double loss = 0;
        for (int k = 0; k <= steps; ++k) {  // step 0 lays out the arenas and the optimiser state: untimed
            ctx.step = std::uint64_t(k);
            comm.barrier();
            const auto a = clock_type::now();
            double l = m.train_step(images, labels, ctx).loss;
            comm.barrier();
            if (k > 0) step_times.push_back(seconds_since(a));
            comm.allreduce_sum_host(&l, 1);
            loss = l / double(world);
        }
        reduce_times.erase(reduce_times.begin());
        const double step = median(step_times), reduce = median(reduce_times);
        if (comm.rank() == 0)
            std::printf("VasoMIM %s step, global batch %zu = %zu rank(s) x %zu, %d thread(s) per rank: %.3f s "
                        "(%.2f images/s), waiting for the gradient sum %.3f s (%.1f%% of the step%s), loss %.4f, %d steps\n",
                        preset && *preset ? preset : "base", global, world, b, omp_get_max_threads(), step,
                        double(global) / step, reduce, 100 * reduce / step, overlap ? ", overlapped" : "", loss, steps);
        return 0;
    });
}
