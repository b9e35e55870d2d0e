// One ViT-B/16 block (batch 8, 197 tokens, width 768, 12 heads, MLP 3072) forward and
// forward + backward on the cpu backend, float. Run benchmarks/vit_block_vs_torch.py for the
// side-by-side table with PyTorch, the ratio and GFLOP/s against the machine's sgemm peak.
#include <benchmark/benchmark.h>

#include "vasomim/backend/backends.hpp"
#include "vasomim/nn.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

/// FLOPs of the block's GEMMs: 24 M C^2 for the four linears, 4 n t^2 c for QK^T and PV.
double block_forward_flops(const nn::block_dims& d) {
    const double m = double(d.rows()), c = double(d.c);
    return 2 * m * c * (3 * c) + 2 * m * c * c + 2 * 2 * m * c * double(d.hidden) +
           4.0 * double(d.n) * double(d.t) * double(d.t) * c;
}

struct block_fixture {
    nn::block_dims d{8, 197, 768, 12, 3072};
    nn::parameter_table table;
    nn::vit_block_layout layout;
    tensor<float, B> params, grads, arena, x, out, dres;
    nn::vit_block_acts<float> acts;
    nn::vit_block_scratch<float> scratch;

    block_fixture() {
        layout = nn::vit_block_layout::add(table, "blocks.0.", d.c, d.hidden);
        params = tensor<float, B>(shape{table.size()});
        grads = tensor<float, B>(shape{table.size()});
        fill_uniform(params, philox(1), 0, -0.03f, 0.03f);
        nn::arena_counter counter;
        nn::vit_block_acts<float>::take(counter, d);
        nn::vit_block_scratch<float>::take(counter, d);
        arena = tensor<float, B>(shape{counter.layout.size()});
        nn::arena_cursor<float> cur(arena.data());
        acts = nn::vit_block_acts<float>::take(cur, d);
        scratch = nn::vit_block_scratch<float>::take(cur, d);
        x = tensor<float, B>(shape{d.n, d.t, d.c});
        out = tensor<float, B>(shape{d.n, d.t, d.c});
        dres = tensor<float, B>(shape{d.n, d.t, d.c});
        fill_normal(x, philox(2));
    }
    void forward() {
        nn::vit_block_forward<B>(out.data(), x.data(), nn::vit_block_tensors<const float>::at(params.data(), layout),
                                 acts, scratch, d);
    }
    void backward() {
        dres.fill(1e-3f);
        nn::vit_block_backward<B>(dres.data(), nn::vit_block_tensors<float>::at(grads.data(), layout), x.data(),
                                  nn::vit_block_tensors<const float>::at(params.data(), layout), acts, scratch, d);
    }
};

void BM_vit_block_forward(benchmark::State& state) {
    block_fixture f;
    f.forward();
    for (auto _ : state) {
        f.forward();
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(block_forward_flops(f.d), benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

void BM_vit_block_forward_backward(benchmark::State& state) {
    block_fixture f;
    f.forward();
    f.backward();
    for (auto _ : state) {
        f.forward();
        f.backward();
        benchmark::ClobberMemory();
    }
    state.counters["GFLOP/s"] = benchmark::Counter(3 * block_forward_flops(f.d),
                                                   benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

BENCHMARK(BM_vit_block_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_block_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
