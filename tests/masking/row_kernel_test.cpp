// The one-pass row kernel of the samplers (masking/detail/row_masks.hpp) against the row-wise stable
// argsorts it replaced (kept as the path for large L), output for output, and the strip kernel of
// patch_weights on maps wider than one work item.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/masking.hpp"

namespace {

using namespace vasomim;
using masking::guided_counts;

template <class B>
class MaskingRowKernel : public ::testing::Test {};
TYPED_TEST_SUITE(MaskingRowKernel, vasomim::test::all_backends, vasomim::test::backend_name);

template <class B>
void expect_same_masks(const masking::patch_mask<B>& a, const masking::patch_mask<B>& b, const std::string& what) {
    ASSERT_EQ(a.len_keep, b.len_keep) << what;
    EXPECT_EQ(a.ids_shuffle.to_host(), b.ids_shuffle.to_host()) << what;
    EXPECT_EQ(a.ids_keep.to_host(), b.ids_keep.to_host()) << what;
    EXPECT_EQ(a.ids_restore.to_host(), b.ids_restore.to_host()) << what;
    EXPECT_EQ(a.mask.to_host(), b.mask.to_host()) << what;
}

/// Rows of every kind: all zero, one or a few positive patches, dense with ties, a wide range,
/// constant, and (for double) subnormal weights whose race keys overflow to +inf next to huge ones.
template <class W>
std::vector<W> kernel_weights(index_t n, index_t l, std::uint64_t seed) {
    std::vector<W> w(static_cast<std::size_t>(n * l), W(0));
    const philox g(seed, 5);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < l; ++j) {
            const float u = g.uniform(static_cast<std::uint64_t>(i * l + j));
            W& x = w[static_cast<std::size_t>(i * l + j)];
            switch (i % 8) {
                case 0: break;
                case 1: x = j == (i * 7) % l ? W(3) : W(0); break;
                case 2: x = j % 11 == 3 && j < 60 ? W(1 + j % 4) : W(0); break;
                case 3: x = W(std::floor(u * 4.0f)); break;
                case 4: x = u < 0.3f ? W(255.0f * u * u * u * 1e3f) : W(0); break;
                case 5: x = W(u); break;
                case 6: x = W(1); break;
                default:
                    if constexpr (std::is_same_v<W, double>)
                        x = u < 0.5f ? 5e-324 : (u < 0.6f ? 1e300 : 0.0);
                    else
                        x = u < 0.5f ? 1e-45f : 0.0f;
            }
        }
    return w;
}

template <class B, class W>
void compare_guided(index_t n, index_t l, std::uint64_t seed) {
    const auto weights = tensor<W, B>::from_host(kernel_weights<W>(n, l, seed), shape{n, l});
    for (double ratio : {0.02, 0.5, 0.75, 0.98})
        for (double beta : {0.0, 0.5, 1.0}) {
            const auto c = guided_counts::of(l, ratio, beta);
            const std::string what = "L " + std::to_string(l) + " ratio " + std::to_string(ratio) + " beta " +
                                     std::to_string(beta);
            expect_same_masks(masking::detail::anatomy_guided_masks(weights, c, seed, 77),
                              masking::detail::anatomy_guided_masks_sorted(weights, c, seed, 77), what);
            expect_same_masks(masking::detail::random_masks<B>(n, l, c.len_keep, seed, 78),
                              masking::detail::random_masks_sorted<B>(n, l, c.len_keep, seed, 78), "random " + what);
        }
}

TYPED_TEST(MaskingRowKernel, SameMasksAsRowWiseSorts) {
    using B = TypeParam;
    for (index_t l : {1, 2, 3, 16, 49, 196, 256, 257, 1024}) compare_guided<B, float>(l < 300 ? 24 : 8, l, 40 + l);
    for (index_t l : {7, 196}) compare_guided<B, double>(24, l, 90 + l);
    static_assert(masking::detail::fused_max_patches == 1024, "the sizes above straddle the kernel's limit");
}

TYPED_TEST(MaskingRowKernel, PatchWeightsOfWideMaps) {
    using B = TypeParam;
    // 40 patches per strip (more than one work item's block) and p = 12 (one run of 8 and a tail).
    for (index_t p : {8, 12}) {
        const index_t n = 2, h = 2 * p, w = 40 * p, gw = 40, l = 2 * gw;
        std::vector<float> g(static_cast<std::size_t>(n * h * w));
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = float((i * 37) % 11) * 0.25f;
        const auto t = tensor<float, B>::from_host(g, shape{n, h, w});
        const auto got = masking::patch_weights(t, p).to_host();
        ASSERT_EQ(got.size(), static_cast<std::size_t>(n * l));
        for (index_t i = 0; i < n; ++i)
            for (index_t k = 0; k < l; ++k) {
                double ref = 0;  // quarters: exact in any order
                for (index_t r = 0; r < p; ++r)
                    for (index_t c = 0; c < p; ++c)
                        ref += g[static_cast<std::size_t>((i * h + (k / gw) * p + r) * w + (k % gw) * p + c)];
                EXPECT_EQ(got[static_cast<std::size_t>(i * l + k)], float(ref)) << "p " << p << " patch " << k;
            }
        // A negative pixel in the second block of a strip, in a run and in a tail.
        for (index_t col : {35 * p + 2, 36 * p + 10}) {
            auto bad = g;
            bad[static_cast<std::size_t>((1 * h + p + 3) * w + col)] = -0.5f;
            EXPECT_THROW(masking::patch_weights(tensor<float, B>::from_host(bad, shape{n, h, w}), p), value_error)
                << "p " << p << " column " << col;
        }
    }
}

}  // namespace
