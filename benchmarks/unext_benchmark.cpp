// UNeXt-S forward (eval) and forward + backward (training mode) on the cpu backend, the 3-channel
// segmentor as released and as VasoMIM uses it (nn::unext_config{3, 1}). Batch and side come from
// VASOMIM_UNEXT_BATCH / VASOMIM_UNEXT_SIZE (default 8 and 224, as the issue asks), the thread count
// from OMP_NUM_THREADS; benchmarks/unext_vs_torch.py runs this and PyTorch side by side.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "vasomim/backend/backends.hpp"
#include "vasomim/nn/unext.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

index_t env(const char* name, index_t fallback) {
    const char* v = std::getenv(name);
    return v ? static_cast<index_t>(std::atol(v)) : fallback;
}

void run(benchmark::State& state, bool backward) {
    constexpr nn::unext_config config{3, 1};  // in_channels, num_classes
    const index_t n = env("VASOMIM_UNEXT_BATCH", 8), s = env("VASOMIM_UNEXT_SIZE", 224), npix = n * s * s;
    nn::unext<B, float> net(config);
    net.init(0);
    tensor<float, B> x(shape{npix * config.in_channels}), y(shape{npix * config.num_classes}),
        dy(shape{npix * config.num_classes}, 1.f), dx(shape{npix * config.in_channels});
    fill_normal(x, philox(1, 0));
    // one untimed pass lays out the activation arena (PyTorch's side warms up too)
    net.forward(y.data(), x.data(), n, s, s, backward);
    if (backward) net.backward(dx.data(), dy.data());
    for (auto _ : state) {
        net.forward(y.data(), x.data(), n, s, s, backward);
        if (backward) {
            net.zero_grad();
            net.backward(dx.data(), dy.data());
        }
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}

void BM_unext_forward(benchmark::State& state) { run(state, false); }
void BM_unext_forward_backward(benchmark::State& state) { run(state, true); }

}  // namespace

BENCHMARK(BM_unext_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_unext_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
