// One full pre-training step on the cpu backend, in images per second:
//   BM_vasomim_step  model::vasomim_pretraining: S(I) through the frozen UNeXt-S, G = 0.5 B +
//                    0.5 sigmoid(S(I)), anatomy-guided masking, MAE encoder + decoder, L_rec + L_cons
//                    (S(I_hat) forward and backward into the prediction), backward, AdamW step;
//   BM_mae_step      model::mae_pretraining (random masking, L_rec only), the baseline.
// Default workload (issue 7): MAE ViT-B/16 with the 512 x 8 decoder, batch 8, 224 x 224, mask
// ratio 0.5 and beta_e 0.5 (the released base preset at the end of its 0 -> 0.5 schedule), norm-pix.
// Environment overrides: VASOMIM_STEP_PRESET (tiny, small, base, large), VASOMIM_STEP_BATCH,
// VASOMIM_STEP_MASK_RATIO. Images and pseudo-labels are synthetic angiograms (data::synthetic_angiogram).
// benchmarks/vasomim_step_vs_torch.py runs this and the PyTorch restatement side by side.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <xtensor/xtensor.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/data/transforms.hpp"
#include "vasomim/model/masked_image_model.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

const char* env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

double mask_ratio() { return std::atof(env_or("VASOMIM_STEP_MASK_RATIO", "0.5")); }

/// Batch of synthetic angiograms (grey replicated to 3 channels, ImageNet-normalised) and their
/// exact vessel masks as the pseudo-labels B.
struct workload {
    model::mae_config config = model::presets::by_name(env_or("VASOMIM_STEP_PRESET", "base"));
    std::size_t batch = static_cast<std::size_t>(std::atol(env_or("VASOMIM_STEP_BATCH", "8")));
    xt::xtensor<float, 4> images;
    xt::xtensor<float, 3> labels;

    workload() {
        const auto s = static_cast<std::size_t>(config.img_size);
        images = xt::xtensor<float, 4>::from_shape({batch, 3, s, s});
        labels = xt::xtensor<float, 3>::from_shape({batch, s, s});
        data::synthetic_angiogram_options o;
        o.height = o.width = config.img_size;
        for (std::size_t i = 0; i < batch; ++i) {
            const auto a = data::make_synthetic_angiogram(o, 1, i);
            xt::xtensor<float, 2> grey = xt::xtensor<float, 2>::from_shape({s, s});
            for (std::size_t k = 0; k < s * s; ++k) grey.data()[k] = float(a.image.data()[k]);
            const xt::xtensor<float, 3> rgb = data::to_normalised_rgb(grey);
            std::copy(rgb.data(), rgb.data() + rgb.size(), images.data() + i * 3 * s * s);
            for (std::size_t k = 0; k < s * s; ++k) labels.data()[i * s * s + k] = a.mask.data()[k] ? 1.f : 0.f;
        }
    }
};

template <class Model, class Masking>
void run(benchmark::State& state, Masking policy) {
    const workload w;
    optim::adamw_options ao;
    ao.weight_decay = 0.05;
    Model m(w.config, policy, ao);
    m.init(0);
    model::step_context ctx;
    ctx.lr = 1.5e-4 * double(w.batch) / 256.0;  // blr * batch / 256, as released
    ctx.at = masking::progress::from_ratio(1.0);  // beta_e = 0.5 for the guided masking
    // one untimed step lays out the activation arenas and optimiser state (PyTorch warms up too)
    double loss = m.train_step(w.images, w.labels, ctx).loss;
    for (auto _ : state) {
        ++ctx.step;  // a new mask every step
        loss = m.train_step(w.images, w.labels, ctx).loss;
        // no DoNotOptimize(loss): the step writes the parameters anyway, and Debian's Google
        // Benchmark's "+m,r" asm constraint clobbered the double here with GCC (denormal garbage)
        benchmark::ClobberMemory();
    }
    state.counters["images/s"] =
        benchmark::Counter(static_cast<double>(w.batch) * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
    state.counters["loss"] = loss;
    state.SetLabel(env_or("VASOMIM_STEP_PRESET", "base") + std::string(" batch ") + std::to_string(w.batch) +
                   " mask " + std::to_string(mask_ratio()).substr(0, 4));
}

void BM_vasomim_step(benchmark::State& state) {
    run<model::vasomim_pretraining<B>>(state, masking::anatomy_guided<masking::schedule::linear>{mask_ratio(), {0.0, 0.5}, 0});
}

void BM_mae_step(benchmark::State& state) {
    run<model::mae_pretraining<B>>(state, masking::random{mask_ratio(), 0});
}

}  // namespace

BENCHMARK(BM_vasomim_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mae_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
