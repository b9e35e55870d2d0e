// GEMM throughput of each backend against the machine's reference sgemm (OpenBLAS), and of Eigen
// alone (BM_gemm_eigen: the cpu backend's GEMM where the build has no OpenBLAS; with it, the
// backends' large products run on OpenBLAS, backend/detail/blas_gemm.hpp).
// Run benchmarks/gemm_vs_openblas.sh for the side-by-side table and the ratio.
#include <benchmark/benchmark.h>

#include <vector>

#include "vasomim/vasomim.hpp"

#if VASOMIM_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using namespace vasomim;

void set_flops(benchmark::State& state, index_t n) {
    state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n) * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

template <class B>
void BM_gemm(benchmark::State& state) {
    const index_t n = state.range(0);
    tensor<float, B> a(shape{n, n}), b(shape{n, n}), c(shape{n, n});
    fill_normal(a, philox(1, 0));
    fill_normal(b, philox(1, 1));
    for (auto _ : state) {
        gemm<B>(transpose::no, transpose::no, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, n);
}

#if VASOMIM_HAVE_OPENBLAS
void BM_gemm_openblas(benchmark::State& state) {
    const index_t n = state.range(0);
    std::vector<float> a(static_cast<std::size_t>(n * n)), b(a.size()), c(a.size());
    const philox g(1, 0);
    for (std::size_t i = 0; i < a.size(); ++i) {
        a[i] = g.normal(i);
        b[i] = g.normal(a.size() + i);
    }
    const int ni = static_cast<int>(n);
    for (auto _ : state) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a.data(), ni, b.data(), ni,
                    0.0f, c.data(), ni);
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, n);
}
BENCHMARK(BM_gemm_openblas)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

// Eigen's kernels in the cpu backend's row panels, whatever the build links.
void BM_gemm_eigen(benchmark::State& state) {
    const index_t n = state.range(0);
    tensor<float, backend::cpu> a(shape{n, n}), b(shape{n, n}), c(shape{n, n});
    fill_normal(a, philox(1, 0));
    fill_normal(b, philox(1, 1));
    for (auto _ : state) {
        detail::eigen_gemm_panels(transpose::no, transpose::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                                  c.data(), n);
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, n);
}
BENCHMARK(BM_gemm_eigen)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK(BM_gemm<backend::cpu>)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm<backend::thrust_omp>)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm<backend::thrust_cpp>)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
