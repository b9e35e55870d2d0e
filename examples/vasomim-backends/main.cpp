// vasomim-backends: runs the same small computation (random matrices, a GEMM, a reduction and a
// row-wise argsort) on every backend compiled into this program, and shows that they agree.
#include <cmath>
#include <cstdio>
#include <vector>

#include "vasomim/vasomim.hpp"

namespace {

template <class B>
std::vector<float> demo(std::uint64_t seed) {
    using namespace vasomim;
    const index_t n = 256;
    tensor<float, B> a(shape{n, n}), b(shape{n, n}), c(shape{n, n});
    fill_normal(a, philox(seed, 0));
    fill_uniform(b, philox(seed, 1), 0, -1.0f, 1.0f);
    gemm<B>(transpose::no, transpose::yes, n, n, n, 1.0f / n, a.data(), b.data(), 0.0f, c.data());
    tensor<std::int32_t, B> order(shape{n, n});
    argsort_rows(c, order);
    std::printf("  %-11s sum(C) = %+.6f   first row argmin = %d\n", backend_traits<B>::name,
                double(sum(c)), order.to_host()[0]);
    return c.to_host();
}

}  // namespace

int main() {
    std::printf("vasomim %d.%d.%d: the same GEMM on every backend in this build\n", VASOMIM_VERSION_MAJOR,
                VASOMIM_VERSION_MINOR, VASOMIM_VERSION_PATCH);
    const auto ref = demo<vasomim::backend::cpu>(2026);
    double worst = 0;
    for (const auto& other : {demo<vasomim::backend::thrust_omp>(2026), demo<vasomim::backend::thrust_cpp>(2026)})
        for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::abs(ref[i] - other[i])));
    std::printf("largest difference between backends: %.3g\n", worst);
    return worst < 1e-4 ? 0 : 1;
}
