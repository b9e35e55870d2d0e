// vasomim-backends: runs the same small computation (random matrices, a GEMM, a reduction and a
// row-wise argsort) on every backend compiled into this program (cpu, thrust_omp and thrust_cpp
// under g++; thrust_cuda under nvcc) and checks each against a plain host GEMM of the same numbers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "vasomim/vasomim.hpp"

namespace {

constexpr vasomim::index_t n = 256;

/// C = A B^T / n with A ~ N(0, 1) and B ~ U(-1, 1) from Philox streams (the same numbers on every
/// backend); returns the largest difference from a double-precision host GEMM of those numbers.
template <class B>
double demo(std::uint64_t seed) {
    using namespace vasomim;
    tensor<float, B> a(shape{n, n}), b(shape{n, n}), c(shape{n, n});
    fill_normal(a, philox(seed, 0));
    fill_uniform(b, philox(seed, 1), 0, -1.0f, 1.0f);
    gemm<B>(transpose::no, transpose::yes, n, n, n, 1.0f / n, a.data(), b.data(), 0.0f, c.data());
    tensor<std::int32_t, B> order(shape{n, n});
    argsort_rows(c, order);
    std::printf("  %-11s sum(C) = %+.6f   first row argmin = %d   (GEMM: %s)\n", backend_traits<B>::name,
                double(sum(c)), order.to_host()[0], backend_traits<B>::gemm_engine);
    const auto ha = a.to_host(), hb = b.to_host(), hc = c.to_host();
    double worst = 0;
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) {
            double s = 0;
            for (index_t k = 0; k < n; ++k) s += double(ha[i * n + k]) * double(hb[j * n + k]);
            worst = std::max(worst, std::abs(s / n - double(hc[i * n + j])));
        }
    return worst;
}

}  // namespace

int main() {
    std::printf("vasomim %d.%d.%d: the same GEMM on every backend in this build\n", VASOMIM_VERSION_MAJOR,
                VASOMIM_VERSION_MINOR, VASOMIM_VERSION_PATCH);
#if VASOMIM_HAS_CUDA
    const double worst = demo<vasomim::backend::thrust_cuda>(2026);
#else
    const double worst = std::max({demo<vasomim::backend::cpu>(2026), demo<vasomim::backend::thrust_omp>(2026),
                                   demo<vasomim::backend::thrust_cpp>(2026)});
#endif
    std::printf("largest difference from a double-precision host GEMM: %.3g\n", worst);
    return worst < 1e-4 ? 0 : 1;
}
