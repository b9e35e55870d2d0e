// Ridge filters and the pseudo-label pipeline on a 512 x 512 angiogram-like image (cpu backend).
// The image is VASOMIM_BENCH_IMAGE (a PNG or .npy written by benchmarks/vesselness_vs_scipy.py,
// so that both sides time the same pixels) or, without it, a built-in synthetic image.
// Timings of the scipy-based reference come from benchmarks/vesselness_vs_scipy.py.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vasomim/vessel/sato.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

/// Bright background, three dark sinuous vessels, mild noise (deterministic).
tensor<std::uint8_t, B> synthetic(index_t n) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(n * n));
    const philox gen(7, 0);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) {
            double v = 190;
            const double params[3][4] = {{0.35, 0.15, 0.02, 2.0}, {0.6, -0.1, 0.012, 4.0}, {0.15, 0.3, 0.03, 1.3}};
            for (const auto& p : params) {
                const double c = p[0] * double(n) + p[1] * double(j) + 20 * std::sin(p[2] * double(j));
                v -= 70 * std::exp(-(double(i) - c) * (double(i) - c) / (2 * p[3] * p[3]));
            }
            v += 3 * gen.normal(static_cast<std::uint64_t>(i * n + j));
            px[static_cast<std::size_t>(i * n + j)] = static_cast<std::uint8_t>(std::clamp(std::round(v), 0.0, 255.0));
        }
    return tensor<std::uint8_t, B>::from_host(px, shape{n, n});
}

const tensor<std::uint8_t, B>& image() {
    static const tensor<std::uint8_t, B> img = [] {
        if (const char* p = std::getenv("VASOMIM_BENCH_IMAGE")) {
            const auto g = io::read_gray8(p);
            return tensor<std::uint8_t, B>::from_host(std::vector<std::uint8_t>(g.begin(), g.end()),
                                                      shape{index_t(g.shape(0)), index_t(g.shape(1))});
        }
        return synthetic(512);
    }();
    return img;
}

const tensor<float, B>& image_f32() {
    static const tensor<float, B> img = [] {
        const auto h = image().to_host();
        return tensor<float, B>::from_host(std::vector<float>(h.begin(), h.end()), image().shape());
    }();
    return img;
}

vessel::kernel_precision precision(const benchmark::State& st) {
    return st.range(0) ? vessel::kernel_precision::fast : vessel::kernel_precision::exact;
}

void BM_Frangi5Sigmas(benchmark::State& st) {  // uint8 in, double compute (as scikit-image)
    vessel::frangi_options o;
    o.precision = precision(st);
    for (auto _ : st) benchmark::DoNotOptimize(vessel::frangi(image(), o).data());
}
void BM_Frangi5SigmasFloat(benchmark::State& st) {  // float32 in, float compute
    vessel::frangi_options o;
    o.precision = precision(st);
    for (auto _ : st) benchmark::DoNotOptimize(vessel::frangi(image_f32(), o).data());
}
void BM_Sato1to4(benchmark::State& st) {
    vessel::sato_options o;
    o.sigmas = {1, 2, 3, 4};
    o.precision = precision(st);
    for (auto _ : st) benchmark::DoNotOptimize(vessel::sato(image(), o).data());
}
void BM_PseudoLabel(benchmark::State& st) {
    vessel::pseudo_label_options o;
    o.precision = precision(st);
    for (auto _ : st) benchmark::DoNotOptimize(vessel::pseudo_label(image(), o).data());
}

// Arg 0: exact (the parity mode), 1: fast.
BENCHMARK(BM_Frangi5Sigmas)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Frangi5SigmasFloat)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Sato1to4)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PseudoLabel)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
