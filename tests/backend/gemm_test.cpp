// Strided batched GEMM on every backend against a double-precision reference loop.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/backend/detail/eigen_gemm.hpp"
#include "vasomim/core/tensor.hpp"

namespace {

using namespace vasomim;

/// Reference row-major GEMM in double.
template <class T>
std::vector<T> reference_gemm(transpose ta, transpose tb, index_t m, index_t n, index_t k, double alpha,
                              const std::vector<T>& a, index_t lda, index_t sa, const std::vector<T>& b,
                              index_t ldb, index_t sb, double beta, std::vector<T> c, index_t ldc,
                              index_t sc, index_t batch) {
    for (index_t q = 0; q < batch; ++q)
        for (index_t i = 0; i < m; ++i)
            for (index_t j = 0; j < n; ++j) {
                double acc = 0;
                for (index_t p = 0; p < k; ++p) {
                    const double av = ta == transpose::yes ? a[q * sa + p * lda + i] : a[q * sa + i * lda + p];
                    const double bv = tb == transpose::yes ? b[q * sb + j * ldb + p] : b[q * sb + p * ldb + j];
                    acc += av * bv;
                }
                T& cv = c[q * sc + i * ldc + j];
                cv = static_cast<T>(alpha * acc + (beta == 0 ? 0.0 : beta * cv));
            }
    return c;
}

template <class B>
class Gemm : public ::testing::Test {};
TYPED_TEST_SUITE(Gemm, vasomim::test::all_backends, vasomim::test::backend_name);

/// Runs `product(ta, tb, beta, a, lda, sa, b, ldb, sb, c, ldc, sc)` (host vectors; alpha 1.5) for every
/// transposition and beta 0 and 0.5, checking C against reference_gemm within `tolerance` relative.
template <class T, class Product>
void check_transpositions_of(Product&& product, double tolerance, index_t m, index_t n, index_t k, index_t batch) {
    const philox g(7, 1);
    for (auto ta : {transpose::no, transpose::yes})
        for (auto tb : {transpose::no, transpose::yes})
            for (double beta : {0.0, 0.5}) {
                // Padded pitches and strides exercise the lda/ldb/ldc and batch-stride paths.
                const index_t lda = (ta == transpose::yes ? m : k) + 3;
                const index_t ldb = (tb == transpose::yes ? k : n) + 2;
                const index_t ldc = n + 5;
                const index_t sa = lda * (ta == transpose::yes ? k : m) + 7;
                const index_t sb = ldb * (tb == transpose::yes ? n : k) + 1;
                const index_t sc = ldc * m + 4;
                std::vector<T> a(static_cast<std::size_t>(sa * batch)), b(static_cast<std::size_t>(sb * batch)),
                    c(static_cast<std::size_t>(sc * batch));
                for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<T>(g.uniform(i) - 0.5f);
                for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<T>(g.uniform(100000 + i) - 0.5f);
                for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<T>(g.uniform(200000 + i));
                const auto ref = reference_gemm<T>(ta, tb, m, n, k, 1.5, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);

                const std::vector<T> out = product(ta, tb, T(beta), a, lda, sa, b, ldb, sb, c, ldc, sc);
                double max_err = 0, max_ref = 0;
                for (std::size_t i = 0; i < out.size(); ++i) {
                    max_err = std::max(max_err, std::abs(double(out[i]) - double(ref[i])));
                    max_ref = std::max(max_ref, std::abs(double(ref[i])));
                }
                EXPECT_LE(max_err, tolerance * max_ref)
                    << "ta=" << int(ta) << " tb=" << int(tb) << " beta=" << beta;
            }
}

template <class B, class T>
void check_all_transpositions(double tolerance, index_t m = 23, index_t n = 17, index_t k = 31,
                              index_t batch = 3) {
    auto product = [&](transpose ta, transpose tb, T beta, const std::vector<T>& a, index_t lda, index_t sa,
                       const std::vector<T>& b, index_t ldb, index_t sb, const std::vector<T>& c, index_t ldc,
                       index_t sc) {
        auto da = tensor<T, B>::from_host(a, shape{static_cast<index_t>(a.size())});
        auto db = tensor<T, B>::from_host(b, shape{static_cast<index_t>(b.size())});
        auto dc = tensor<T, B>::from_host(c, shape{static_cast<index_t>(c.size())});
        gemm_batched<B>(ta, tb, m, n, k, T(1.5), da.data(), lda, sa, db.data(), ldb, sb, beta, dc.data(), ldc, sc,
                        batch);
        return dc.to_host();
    };
    check_transpositions_of<T>(product, tolerance, m, n, k, batch);
}

TYPED_TEST(Gemm, FloatAllTranspositionsWithin1e5Relative) { check_all_transpositions<TypeParam, float>(1e-5); }

// Large enough (over 4 MFLOP, batch 1) for the cpu backend's row-panel parallel path.
TYPED_TEST(Gemm, LargeSingleProductAllTranspositions) {
    check_all_transpositions<TypeParam, float>(1e-5, 130, 90, 181, 1);
    check_all_transpositions<TypeParam, double>(1e-12, 130, 90, 181, 1);
}

TYPED_TEST(Gemm, DoubleAllTranspositions) { check_all_transpositions<TypeParam, double>(1e-12); }

TYPED_TEST(Gemm, BetaZeroIgnoresNaNInOutput) {
    using B = TypeParam;
    std::vector<float> a{1, 2, 3, 4}, b{1, 0, 0, 1}, c(4, std::nanf(""));
    auto da = tensor<float, B>::from_host(a, shape{4});
    auto db = tensor<float, B>::from_host(b, shape{4});
    auto dc = tensor<float, B>::from_host(c, shape{4});
    gemm<B>(transpose::no, transpose::no, 2, 2, 2, 1.0f, da.data(), db.data(), 0.0f, dc.data());
    EXPECT_EQ(dc.to_host(), a);
}

// The large-product path (OpenBLAS where the build has it) overwrites C when beta is 0.
TYPED_TEST(Gemm, LargeSingleProductBetaZeroIgnoresNaNInOutput) {
    using B = TypeParam;
    const index_t m = 130, n = 90, k = 181;  // over 4 MFLOP
    std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n), 0.f);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) - 3.f;
    for (index_t i = 0; i < n; ++i) b[static_cast<std::size_t>(i * n + i)] = 1.f;  // identity in the top rows
    auto da = tensor<float, B>::from_host(a, shape{m, k});
    auto db = tensor<float, B>::from_host(b, shape{k, n});
    auto dc = tensor<float, B>::from_host(std::vector<float>(static_cast<std::size_t>(m * n), std::nanf("")), shape{m, n});
    gemm<B>(transpose::no, transpose::no, m, n, k, 1.0f, da.data(), db.data(), 0.0f, dc.data());
    const auto c = dc.to_host();
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j)
            ASSERT_EQ(c[static_cast<std::size_t>(i * n + j)], a[static_cast<std::size_t>(i * k + j)]) << i << ", " << j;
}

// Eigen's own panels, which run every GEMM where the build has no OpenBLAS (and small ones where
// it has): checked here whichever the backends use.
TEST(EigenGemmPanels, AllTranspositionsRowsAndColumnsSplit) {
    for (const auto [m, n, k] : {std::array<index_t, 3>{130, 90, 181}, std::array<index_t, 3>{40, 300, 200},
                                 std::array<index_t, 3>{23, 17, 31}})
        check_transpositions_of<float>(
            [&](transpose ta, transpose tb, float beta, const std::vector<float>& a, index_t lda, index_t,
                const std::vector<float>& b, index_t ldb, index_t, std::vector<float> c, index_t ldc, index_t) {
                detail::eigen_gemm_panels(ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
                return c;
            },
            1e-5, m, n, k, 1);
}

TYPED_TEST(Gemm, RejectsBadPitches) {
    using B = TypeParam;
    tensor<float, B> t(shape{64});
    EXPECT_THROW(gemm_batched<B>(transpose::no, transpose::no, 4, 4, 4, 1.0f, t.data(), 3, 0, t.data(), 4, 0,
                                 0.0f, t.data(), 4, 0, 1),
                 shape_error);
    EXPECT_THROW(gemm_batched<B>(transpose::no, transpose::no, -1, 4, 4, 1.0f, t.data(), 4, 0, t.data(), 4, 0,
                                 0.0f, t.data(), 4, 0, 1),
                 shape_error);
}

}  // namespace
