// Results that must agree across backends and thread counts: the same GEMM within 1e-5 relative,
// the same Philox stream bit for bit (host backends; the CUDA build compares against the host
// generator in primitives_test).
#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <omp.h>

#include <cmath>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/core/tensor.hpp"

namespace {

using namespace vasomim;

template <class B>
std::vector<float> run_gemm(const std::vector<float>& a, const std::vector<float>& b, index_t m, index_t n,
                            index_t k) {
    auto da = tensor<float, B>::from_host(a, shape{m, k});
    auto db = tensor<float, B>::from_host(b, shape{k, n});
    tensor<float, B> dc(shape{m, n});
    gemm<B>(transpose::no, transpose::no, m, n, k, 1.0f, da.data(), db.data(), 0.0f, dc.data());
    return dc.to_host();
}

template <class B>
std::vector<float> run_rng(std::size_t n) {
    tensor<float, B> u(shape{static_cast<index_t>(n)}), z(shape{static_cast<index_t>(n)});
    const philox g(123456789, 42);
    fill_uniform(u, g);
    fill_normal(z, g);
    auto out = u.to_host();
    const auto hz = z.to_host();
    out.insert(out.end(), hz.begin(), hz.end());
    return out;
}

double max_relative(const std::vector<float>& x, const std::vector<float>& y) {
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        err = std::max(err, std::abs(double(x[i]) - double(y[i])));
        scale = std::max(scale, std::abs(double(y[i])));
    }
    return err / scale;
}

TEST(CrossBackend, GemmAgreesWithin1e5Relative) {
    const index_t m = 192, n = 160, k = 256;
    std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
    const philox g(3, 3);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = g.normal(i);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = g.normal(a.size() + i);
    const auto c_cpu = run_gemm<backend::cpu>(a, b, m, n, k);
    EXPECT_LE(max_relative(run_gemm<backend::thrust_omp>(a, b, m, n, k), c_cpu), 1e-5);
    EXPECT_LE(max_relative(run_gemm<backend::thrust_cpp>(a, b, m, n, k), c_cpu), 1e-5);
}

TEST(CrossBackend, PhiloxStreamBitIdenticalAcrossBackendsAndThreadCounts) {
    const std::size_t n = 100003;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto cpu1 = run_rng<backend::cpu>(n);
    const auto omp1 = run_rng<backend::thrust_omp>(n);
    omp_set_num_threads(2);
    const auto cpu2 = run_rng<backend::cpu>(n);
    const auto omp2 = run_rng<backend::thrust_omp>(n);
    omp_set_num_threads(saved);
    const auto seq = run_rng<backend::thrust_cpp>(n);
    EXPECT_EQ(cpu1, cpu2);
    EXPECT_EQ(cpu1, omp1);
    EXPECT_EQ(cpu1, omp2);
    EXPECT_EQ(cpu1, seq);
}

TEST(CrossBackend, ReductionIsDeterministicAcrossThreadCounts) {
    const std::size_t n = 1 << 18;
    std::vector<float> host(n);
    const philox g(8, 8);
    for (std::size_t i = 0; i < n; ++i) host[i] = g.normal(i);
    auto t = tensor<float, backend::cpu>::from_host(host, shape{static_cast<index_t>(n)});
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const float s1 = sum(t);
    omp_set_num_threads(2);
    const float s2 = sum(t);
    omp_set_num_threads(saved);
    EXPECT_EQ(s1, s2);
}

}  // namespace
#endif
