// The fused passes' kernels at every radius they specialise (vessel/hessian.hpp, row_tiles.hpp):
// row passes (strips and transposed tiles, the direct form for float radii 1-15, the symmetric
// form otherwise) against a plain correlation in double, within the rounding depth that
// checked_sato's error bound counts (row_pass_depth); the column pass with a compile-time radius
// against the same pass with a runtime one, bit for bit.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "vasomim/vessel/hessian.hpp"

namespace {

using namespace vasomim::vessel;
using namespace vasomim::vessel::detail;

template <class R>
class PassKernels : public ::testing::Test {};
using Reals = ::testing::Types<float, double>;
TYPED_TEST_SUITE(PassKernels, Reals);

/// Random taps of radius r, symmetric (c[-o] = c[o]) or antisymmetric (c[-o] = -c[o], c[0] = 0).
template <class R>
kernel_taps<R> random_taps(int r, bool anti, std::mt19937& gen) {
    std::uniform_real_distribution<double> U(-1, 1);
    kernel_taps<R> k;
    k.radius = r;
    k.taps.assign(static_cast<std::size_t>(2 * r + 1), R(0));
    for (int o = anti ? 1 : 0; o <= r; ++o) {
        const auto w = static_cast<R>(U(gen));
        k.taps[static_cast<std::size_t>(r + o)] = w;
        k.taps[static_cast<std::size_t>(r - o)] = anti ? -w : w;
    }
    return k;
}

// Every radius 1-17 (the direct form's 1-15 and two beyond), both symmetries: strips and tiles
// agree bit for bit, and each output is within gamma(row_pass_depth(r)) * sum |c x| of the exact
// correlation of the same samples (reflect mode).
TYPED_TEST(PassKernels, RowPassesStayWithinTheirRoundingDepth) {
    using R = TypeParam;
    constexpr int L = lanes64<R>;
    const double u = std::ldexp(1.0, -std::numeric_limits<R>::digits);
    std::mt19937 gen(5);
    std::uniform_real_distribution<double> U(-300, 300);
    const std::int64_t cols = 101;
    for (int r = 1; r <= 17; ++r)
        for (bool anti : {false, true}) {
            const auto k = random_taps<R>(r, anti, gen);
            std::vector<R> input(static_cast<std::size_t>(L * cols));
            for (auto& x : input) x = static_cast<R>(U(gen));
            std::vector<R> strips = input, tiles = input;
            std::vector<R> buf(static_cast<std::size_t>(cols + 2 * r));
            R* rows[L];
            for (int q = 0; q < L; ++q) {
                row_pass(strips.data() + q * cols, cols, k, anti, boundary_mode::reflect, R(0), buf.data());
                rows[q] = tiles.data() + q * cols;
            }
            row_tile_scratch<R> scratch;
            row_pass_tile(rows, rows, cols, k, anti, boundary_mode::reflect, R(0), scratch);
            const int depth = row_pass_depth(r);
            const double gamma = depth * u / (1 - depth * u);
            for (int q = 0; q < L; ++q)
                for (std::int64_t j = 0; j < cols; ++j) {
                    double exact = 0, magnitude = 0;
                    for (int o = -r; o <= r; ++o) {
                        const std::int64_t m = map_index(j + o, cols, boundary_mode::reflect);
                        const double t = static_cast<double>(k.taps[static_cast<std::size_t>(r + o)]) *
                                         static_cast<double>(input[static_cast<std::size_t>(q * cols + m)]);
                        exact += t;
                        magnitude += std::abs(t);
                    }
                    const auto p = static_cast<std::size_t>(q * cols + j);
                    ASSERT_EQ(strips[p], tiles[p]) << "r " << r << " anti " << anti << " at " << q << ", " << j;
                    ASSERT_LE(std::abs(static_cast<double>(strips[p]) - exact), gamma * magnitude * (1 + 1e-9))
                        << "r " << r << " anti " << anti << " at " << q << ", " << j;
                }
        }
}

// column_pass_rows4 unrolled for a compile-time radius computes the runtime radius's sums, inside
// the plane and across its edges.
TYPED_TEST(PassKernels, ColumnPassWithAFixedRadiusKeepsItsBits) {
    using R = TypeParam;
    std::mt19937 gen(9);
    std::uniform_real_distribution<double> U(-300, 300);
    const std::int64_t rows = 48, cols = 3 * lanes64<R> + 5;
    std::vector<R> plane(static_cast<std::size_t>(rows * cols));
    for (auto& x : plane) x = static_cast<R>(U(gen));
    const std::vector<R> cval(static_cast<std::size_t>(cols), R(0));
    const row_source<R> src{plane.data(), rows, cols, boundary_mode::reflect, cval.data()};
    int compared = 0;
    for (int r = 1; r <= 15; ++r) {
        const auto k = random_taps<R>(r, r % 2 == 1, gen);
        const auto padded = padded_taps(k);
        std::vector<const R*> ptrs(static_cast<std::size_t>(2 * r + 4));
        for (std::int64_t i0 : {std::int64_t(0), std::int64_t(20), rows - 4}) {
            std::vector<R> a(static_cast<std::size_t>(4 * cols)), b(a.size());
            R* pa[4] = {a.data(), a.data() + cols, a.data() + 2 * cols, a.data() + 3 * cols};
            R* pb[4] = {b.data(), b.data() + cols, b.data() + 2 * cols, b.data() + 3 * cols};
            column_pass_rows4(src, i0, padded.data(), r, pa, ptrs.data());
            bool dispatched = false;
            with_fixed_radius(r, [&](auto fixed) {
                static_assert(!std::is_same_v<decltype(fixed), int>);
                column_pass_rows4(src, i0, padded.data(), fixed, pb, ptrs.data());
                dispatched = true;
            });
            ASSERT_TRUE(dispatched) << "radius " << r;
            for (std::size_t p = 0; p < a.size(); ++p) ASSERT_EQ(a[p], b[p]) << "r " << r << " i0 " << i0 << " at " << p;
            ++compared;
        }
    }
    EXPECT_EQ(compared, 45);
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
