// Row passes on transposed tiles (vessel/row_tiles.hpp) against the row-by-row passes they replace:
// the same sums tap for tap, so the same bits, for every boundary mode, both kernel symmetries,
// double and float, and widths that leave partial tiles.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "vasomim/vessel/hessian.hpp"

namespace {

using namespace vasomim::vessel;
using namespace vasomim::vessel::detail;

template <class R>
class RowTiles : public ::testing::Test {};
using Reals = ::testing::Types<double, float>;
TYPED_TEST_SUITE(RowTiles, Reals);

TYPED_TEST(RowTiles, TransposeTileTransposes) {
    using R = TypeParam;
    using V = typename vec64<R>::type;
    constexpr int L = lanes64<R>;
    V v[L];
    for (int i = 0; i < L; ++i)
        for (int j = 0; j < L; ++j) v[i][j] = static_cast<R>(100 * i + j);
    transpose_tile<R>(v);
    for (int i = 0; i < L; ++i)
        for (int j = 0; j < L; ++j) EXPECT_EQ(v[i][j], static_cast<R>(100 * j + i)) << i << ", " << j;
}

TYPED_TEST(RowTiles, SameBitsAsRowPasses) {
    using R = TypeParam;
    constexpr int L = lanes64<R>;
    std::mt19937 gen(7);
    std::uniform_real_distribution<double> U(-200, 200);
    int compared = 0;
    for (std::int64_t cols : {2, 3, 2 * L - 1, 2 * L, 2 * L + 5, 3 * L, 100, 257})
        for (double s : {0.7, 2.3, 5.1})
            for (int order : {0, 1})
                for (int m = 0; m < 5; ++m) {
                    const auto mode = static_cast<boundary_mode>(m);
                    const auto k = make_taps<R>(s, order, 8.0, kernel_precision::exact);
                    std::vector<R> tiled(static_cast<std::size_t>(L * cols));
                    for (auto& x : tiled) x = static_cast<R>(U(gen));
                    std::vector<R> rowwise = tiled;
                    std::vector<R> buf(static_cast<std::size_t>(cols + 2 * k.radius));
                    for (int q = 0; q < L; ++q)
                        row_pass(rowwise.data() + q * cols, cols, k, order == 1, mode, R(3), buf.data());
                    R* rows[L];
                    for (int q = 0; q < L; ++q) rows[q] = tiled.data() + q * cols;
                    row_tile_scratch<R> scratch;
                    row_pass_tile(rows, rows, cols, k, order == 1, mode, R(3), scratch);
                    for (std::size_t p = 0; p < tiled.size(); ++p) {
                        if (cols >= 2 * L) {
                            // Row passes this wide take the strip kernel, whose sums the tiles repeat.
                            ASSERT_EQ(tiled[p], rowwise[p]) << "cols " << cols << " s " << s << " order " << order
                                                            << " mode " << m << " at " << p;
                        } else {
                            // Narrow rows take a scalar loop that groups the taps differently.
                            const double tol = (sizeof(R) == 4 ? 1e-4 : 1e-12) * 200;
                            ASSERT_NEAR(tiled[p], rowwise[p], tol) << "cols " << cols << " at " << p;
                        }
                    }
                    ++compared;
                }
    EXPECT_EQ(compared, 8 * 3 * 2 * 5);
}

// A column window [jb, je) (hessian_cpu's, for the pseudo-label's border) computes the same bits
// inside it, with the strips and the tiles, whether or not the window is a whole number of strips.
TYPED_TEST(RowTiles, WindowedPassesKeepTheirBits) {
    using R = TypeParam;
    constexpr int L = lanes64<R>;
    std::mt19937 gen(11);
    std::uniform_real_distribution<double> U(-200, 200);
    const std::int64_t cols = 200;
    for (double s : {0.7, 5.1})
        for (int order : {0, 1}) {
            const auto k = make_taps<R>(s, order, 8.0, kernel_precision::exact);
            std::vector<R> full(static_cast<std::size_t>(L * cols));
            for (auto& x : full) x = static_cast<R>(U(gen));
            const std::vector<R> input = full;
            std::vector<R> buf(static_cast<std::size_t>(cols + 2 * k.radius));
            for (int q = 0; q < L; ++q) row_pass(full.data() + q * cols, cols, k, order == 1, boundary_mode::reflect, R(0), buf.data());
            for (auto [jb, je] : {std::pair<std::int64_t, std::int64_t>{20, 180}, {7, 7 + 2 * L + 3}, {33, 33 + 2 * L}}) {
                std::vector<R> strips = input, tiles = input;
                R* rows[L];
                for (int q = 0; q < L; ++q) {
                    row_pass(strips.data() + q * cols, cols, k, order == 1, boundary_mode::reflect, R(0), buf.data(), jb, je);
                    rows[q] = tiles.data() + q * cols;
                }
                row_tile_scratch<R> scratch;
                row_pass_tile(rows, rows, cols, k, order == 1, boundary_mode::reflect, R(0), scratch, jb, je);
                for (int q = 0; q < L; ++q)
                    for (std::int64_t j = jb; j < je; ++j) {
                        const auto p = static_cast<std::size_t>(q * cols + j);
                        ASSERT_EQ(strips[p], full[p]) << "strips, s " << s << " window " << jb << ".." << je << " at " << j;
                        ASSERT_EQ(tiles[p], full[p]) << "tiles, s " << s << " window " << jb << ".." << je << " at " << j;
                    }
            }
        }
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
