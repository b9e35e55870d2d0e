// Anatomy-guided masking of a batch: N = 256 guidance maps of 224 x 224, p = 16 (L = 196), mask
// ratio 0.5, beta 0.5 -- patch weights + sampling + index outputs (ids_keep, mask, ids_restore),
// and the parts on their own. Run benchmarks/masking_vs_torch.py for the side-by-side table against
// the released PyTorch code and the ratio.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "vasomim/masking.hpp"
#include "vasomim/vasomim.hpp"

namespace {

using namespace vasomim;

constexpr index_t kBatch = 256, kSize = 224, kPatch = 16, kPatches = (kSize / kPatch) * (kSize / kPatch);
constexpr double kMaskRatio = 0.5, kBeta = 0.5;

/// Synthetic guidance G = 0.5 B + 0.5 M of a vessel-like curve: B = 1 within 3 pixels of the
/// curve, M = exp(-d^2 / 32). benchmarks/masking_vs_torch.py builds the same maps.
std::vector<float> synthetic_guidance() {
    std::vector<float> g(static_cast<std::size_t>(kBatch * kSize * kSize));
    const double two_pi = 6.283185307179586;
    for (index_t n = 0; n < kBatch; ++n)
        for (index_t x = 0; x < kSize; ++x) {
            const double c = 112.0 + 70.0 * std::sin(two_pi * double(x) / double(kSize) * double(1 + n % 3) + 0.1 * double(n));
            for (index_t y = 0; y < kSize; ++y) {
                const double d = std::abs(double(y) - c);
                g[static_cast<std::size_t>((n * kSize + y) * kSize + x)] =
                    float(0.5 * (d < 3.0 ? 1.0 : 0.0) + 0.5 * std::exp(-d * d / 32.0));
            }
        }
    return g;
}

masking::anatomy_guided<masking::schedule::constant> policy() { return {kMaskRatio, {kBeta}, 2026}; }

/// Weights + sampling + index outputs, the number compared with PyTorch.
template <class B>
void BM_guided_masking(benchmark::State& state) {
    const auto g = tensor<float, B>::from_host(synthetic_guidance(), shape{kBatch, kSize, kSize});
    const auto p = policy();
    std::uint64_t step = 0;
    for (auto _ : state) {
        auto m = p.sample_maps(g, kPatch, {step++, masking::progress::from_ratio(1.0)});
        benchmark::DoNotOptimize(m.ids_keep.data());
        benchmark::DoNotOptimize(m.ids_restore.data());
        benchmark::DoNotOptimize(m.mask.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

/// The patch weights alone (memory bound: 51 MB of guidance per batch).
template <class B>
void BM_patch_weights(benchmark::State& state) {
    const auto g = tensor<float, B>::from_host(synthetic_guidance(), shape{kBatch, kSize, kSize});
    for (auto _ : state) {
        auto w = masking::patch_weights(g, kPatch);
        benchmark::DoNotOptimize(w.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * kBatch * kSize * kSize * index_t(sizeof(float)));
}

/// The floor of any implementation that reads the guidance once: a plain streaming sum of the 51 MB
/// (16 float lanes per thread, OpenMP), no patches, no sampling. torch_time / floor bounds the
/// ratio the benchmark can show on this machine.
void BM_guidance_read_floor(benchmark::State& state) {
    const auto g = synthetic_guidance();
    const float* p = g.data();
    const auto count = static_cast<std::int64_t>(g.size()) / 16;
    for (auto _ : state) {
        double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (std::int64_t b = 0; b < count; b += 64) {
            float lane[16] = {};
            const std::int64_t end = b + 64 < count ? b + 64 : count;
            for (std::int64_t i = b; i < end; ++i)
                for (int q = 0; q < 16; ++q) lane[q] += p[i * 16 + q];
            for (float x : lane) total += double(x);
        }
        benchmark::DoNotOptimize(total);
    }
    state.SetBytesProcessed(state.iterations() * kBatch * kSize * kSize * index_t(sizeof(float)));
}
BENCHMARK(BM_guidance_read_floor)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

/// Sampling + index outputs from precomputed weights.
template <class B>
void BM_guided_from_weights(benchmark::State& state) {
    const auto g = tensor<float, B>::from_host(synthetic_guidance(), shape{kBatch, kSize, kSize});
    const auto w = masking::patch_weights(g, kPatch);
    const auto p = policy();
    std::uint64_t step = 0;
    for (auto _ : state) {
        auto m = p.sample(w, {step++, masking::progress::from_ratio(1.0)});
        benchmark::DoNotOptimize(m.ids_keep.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

/// MAE random masking of the same batch shape.
template <class B>
void BM_random_masking(benchmark::State& state) {
    const masking::random p{kMaskRatio, 2026};
    std::uint64_t step = 0;
    for (auto _ : state) {
        auto m = p.sample<B>(kBatch, kPatches, {step++, masking::progress::from_ratio(1.0)});
        benchmark::DoNotOptimize(m.ids_keep.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

// Wall-clock time is the number reported; process CPU time (all threads) is recorded beside it
// because this machine's 2 cores are shared and wall-clock time suffers from the contention.
#define VASOMIM_MASKING_BENCH(fn)                                                                      \
    BENCHMARK(fn<backend::cpu>)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime(); \
    BENCHMARK(fn<backend::thrust_omp>)                                                                 \
        ->Unit(benchmark::kMillisecond)                                                                \
        ->UseRealTime()                                                                                \
        ->MeasureProcessCPUTime();                                                                     \
    BENCHMARK(fn<backend::thrust_cpp>)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

VASOMIM_MASKING_BENCH(BM_guided_masking)
VASOMIM_MASKING_BENCH(BM_patch_weights)
VASOMIM_MASKING_BENCH(BM_guided_from_weights)
VASOMIM_MASKING_BENCH(BM_random_masking)

}  // namespace

BENCHMARK_MAIN();
