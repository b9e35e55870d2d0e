// One fine-tuning step of the segmentation model (issue 17) on the cpu backend: forward, BCE + Dice
// (loss/bce_dice.hpp), backward through decoder and encoder, AdamW with layer-wise decay 0.75 (the
// step of train::finetuner::train_step, without the data pipeline):
//   BM_finetune_step_unetr   segmentation_model<cpu, encoder::vit, decoder::unetr>  (feature size 16)
//   BM_finetune_step_linear  segmentation_model<cpu, encoder::vit, decoder::linear> (the reference)
// Default workload: ViT-B/16 (768 wide, 12 blocks, 12 heads), batch 8, 3 x 224 x 224, drop path off.
// Environment overrides: VASOMIM_FT_BATCH, VASOMIM_FT_SIZE, VASOMIM_FT_DEPTH; the thread count is
// OMP_NUM_THREADS.
// benchmarks/finetune_step_vs_torch.py runs this and the PyTorch restatement side by side.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "vasomim/backend/backends.hpp"
#include "vasomim/model/segmentation_model.hpp"
#include "vasomim/optim/adamw.hpp"
#include "vasomim/optim/layer_decay.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

index_t env(const char* name, index_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<index_t>(std::atol(v)) : fallback;
}

model::segmentation_config config() {
    auto m = model::presets::mae_vit_base_patch16();
    m.depth = env("VASOMIM_FT_DEPTH", m.depth);
    return model::segmentation_config_of(m, env("VASOMIM_FT_SIZE", 224));
}

template <class Decoder>
void run(benchmark::State& state) {
    const auto c = config();
    const index_t n = env("VASOMIM_FT_BATCH", 8), S = c.img_size();
    model::segmentation_model<B, model::encoder::vit, Decoder, float> net(c);
    net.init(0);
    optim::adamw<B, float> opt(net.table(), optim::adamw_options{1e-3, 0.9, 0.999, 1e-8, 0.05},
                               optim::layer_decay_scales(net.table(), c.encoder.depth, 0.75));
    tensor<float, B> x(shape{n, 3, S, S}), u(shape{n, 1, S, S}), m(shape{n, 1, S, S});
    fill_normal(x, philox(1, 0));
    fill_uniform(u, philox(2, 0));
    {  // masks: ~20 % foreground
        auto h = u.to_host();
        for (auto& v : h) v = v < 0.2f ? 1.f : 0.f;
        m = tensor<float, B>::from_host(h, shape{n, 1, S, S});
    }
    auto step = [&] {
        net.zero_grad();
        net.forward(x);
        const float loss = net.loss(m.data());
        net.backward();
        opt.step(net.params(), net.grads());
        return loss;
    };
    step();  // lays out the activation arena (PyTorch's side warms up too)
    for (auto _ : state) benchmark::DoNotOptimize(step());
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_finetune_step_unetr(benchmark::State& state) { run<model::decoder::unetr>(state); }
void BM_finetune_step_linear(benchmark::State& state) { run<model::decoder::linear>(state); }

}  // namespace

BENCHMARK(BM_finetune_step_unetr)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_finetune_step_linear)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
