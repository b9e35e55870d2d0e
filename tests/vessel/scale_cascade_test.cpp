// The scale cascade of the pseudo-label (vessel/scale_cascade.hpp): the sampled-Gaussian identity
// it rests on, the composite entries that hessian_cpu(composite) computes and cascade_cpu
// continues (edges included), scipy's entries away from the edges, and checked_sato's exact uint8
// values with the cascade against those without it.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "vasomim/vessel/checked_sato.hpp"
#include "vasomim/vessel/scale_cascade.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::vessel;
using namespace vasomim::vessel::detail;

double worst(const std::array<double, 3>& a) { return *std::max_element(a.begin(), a.end()); }

TEST(ScaleCascade, IdentityHoldsFromSigmaTwoNotFromOne) {
    hessian_options o;
    // sigma / sqrt 2 = 1.41 and up: the sampled Gaussians compose far below float precision (what
    // is left, ~1e-12, is scipy's truncation at 8 sigma).
    EXPECT_LT(worst(make_cascade_step(2, 3, o).identity), 1e-11);
    EXPECT_LT(worst(make_cascade_step(3, 4, o).identity), 1e-11);
    EXPECT_LT(worst(make_cascade_step(3, 5, o).identity), 1e-11);
    // sigma 1 (0.71): aliasing of the sampled kernel; checked_sato must not cascade from it.
    EXPECT_GT(worst(make_cascade_step(1, 2, o).identity), 1e-8);
}

TEST(ScaleCascade, EdgeBoundVanishesBeyondTheSecondPassRadius) {
    hessian_options o;
    EXPECT_EQ(worst(edge_bound(entry_kernels(2, o), 20)), 0.0);  // radius int(8 * 1.41 + .5) = 11
    EXPECT_GT(worst(edge_bound(entry_kernels(4, o), 20)), 0.0);   // radius 23: a tail
    EXPECT_LT(worst(edge_bound(entry_kernels(4, o), 20)), 1e-9);
    EXPECT_GT(worst(edge_bound(entry_kernels(4, o), 4)), 1e-3);
    // Only the axes whose first pass is antisymmetric: cc along axis 0 (g, g) has none.
    const auto e = entry_kernels(3, o);
    EXPECT_EQ(entry_axes::odd_first[2][0], false);
    EXPECT_EQ(l1_difference(e.composite[0][1], e.composite[2][0]), 0.0) << "rr along 1 = cc along 0";
}

struct planes3 {
    std::array<std::vector<float>, 3> p;
    explicit planes3(std::size_t n) {
        for (auto& v : p) v.assign(n, 0.0f);
    }
    std::array<float*, 3> ptrs() { return {p[0].data(), p[1].data(), p[2].data()}; }
};

// A noisy image with ridges, centred (as checked_sato centres it).
tensor<float, backend::cpu> test_image(index_t rows, index_t cols) {
    std::mt19937 gen(5);
    std::uniform_real_distribution<double> noise(-20, 20);
    std::vector<float> px(static_cast<std::size_t>(rows * cols));
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j)
            px[static_cast<std::size_t>(i * cols + j)] = static_cast<float>(
                -80 * std::exp(-std::pow((double(i) - 0.4 * double(j) - 20) / 3.0, 2)) + noise(gen));
    return tensor<float, backend::cpu>::from_host(px, shape{rows, cols});
}

// The three Hessian planes of a test image at sigma, as hessian_cpu computes them for the
// pipeline's float passes: composite entries, or scipy's (composite = false).
struct hessian_of {
    index_t rows, cols;
    tensor<float, backend::cpu> img;
    hessian_options o;
    hessian_workspace<float, backend::cpu> ws;
    hessian_of(index_t r, index_t c) : rows(r), cols(c), img(test_image(r, c)) { o.precision = kernel_precision::fast; }
    std::size_t n() const { return static_cast<std::size_t>(rows * cols); }
    planes3 operator()(double sigma, bool composite) {
        planes3 c(n());
        const auto k = make_hessian_kernels<float>(sigma, o, true);
        auto p = c.ptrs();
        hessian_cpu(as_const(img.view()), k.g, k.d, o.mode, 0.0f, 1.0f, ws, p[0], p[1], p[2], nullptr, composite, no_sink{});
        return c;
    }
};

// C(3) computed directly (composite passes) and continued from C(2) agree at every pixel,
// edges included: the odd and even extensions are the composites' own.
TEST(ScaleCascade, CascadeContinuesTheCompositeEntries) {
    hessian_of h{90, 77};
    const auto n = h.n();
    const planes3 c2 = h(2, true), c3 = h(3, true);
    planes3 cascaded(n);
    const auto step = make_cascade_step(2, 3, h.o);
    cascade_cpu<float>({c2.p[0].data(), c2.p[1].data(), c2.p[2].data()}, h.rows, h.cols, step.taps, cascaded.ptrs(),
                       nullptr, no_sink{});
    for (int e = 0; e < 3; ++e) {
        double scale = 0, diff = 0;
        for (std::size_t q = 0; q < n; ++q) {
            scale = std::max(scale, std::abs(double(c3.p[static_cast<std::size_t>(e)][q])));
            diff = std::max(diff, std::abs(double(c3.p[static_cast<std::size_t>(e)][q]) - cascaded.p[static_cast<std::size_t>(e)][q]));
        }
        EXPECT_GT(scale, 0.1) << "entry " << e;
        EXPECT_LT(diff, 1e-5 * scale) << "entry " << e << ": the cascade differs from the composite";
    }
}

// The composite entries equal scipy's (hessian_cpu as the ridge filters run it) bit for bit away
// from the edges, and not near them (where scipy re-reflects an antisymmetric pass's output).
TEST(ScaleCascade, CompositeEqualsScipysAwayFromTheEdges) {
    hessian_of hs{64, 70};
    const index_t rows = hs.rows, cols = hs.cols;
    const planes3 c = hs(2, true), h = hs(2, false);
    const auto k = make_hessian_kernels<float>(2, hs.o, true);
    const int r = std::max(k.g.radius, k.d.radius);
    for (int e = 0; e < 3; ++e) {
        std::size_t edge_differs = 0;
        for (index_t i = 0; i < rows; ++i)
            for (index_t j = 0; j < cols; ++j) {
                const auto q = static_cast<std::size_t>(i * cols + j);
                const bool inside = i >= r && i < rows - r && j >= r && j < cols - r;
                if (inside) ASSERT_EQ(c.p[static_cast<std::size_t>(e)][q], h.p[static_cast<std::size_t>(e)][q]) << e << " at " << i << ", " << j;
                else edge_differs += c.p[static_cast<std::size_t>(e)][q] != h.p[static_cast<std::size_t>(e)][q];
            }
        EXPECT_GT(edge_differs, 0u) << "entry " << e << " has an antisymmetric first pass along some axis";
    }
}

// checked_sato's uint8 values inside the border are exact with the cascade (every sigma above the
// first that composes continues from the one below: a chain) as without it (no pipeline tail: the
// direct passes).
TEST(ScaleCascade, CheckedSatoValuesAreExactWithTheCascade) {
    const index_t rows = 120, cols = 110, border = 20;
    std::vector<std::uint8_t> px(static_cast<std::size_t>(rows * cols));
    const auto f = test_image(rows, cols).to_host();
    for (std::size_t q = 0; q < px.size(); ++q) px[q] = static_cast<std::uint8_t>(std::clamp(180.0f + f[q], 0.0f, 255.0f));
    const auto img = tensor<std::uint8_t, backend::cpu>::from_host(px, shape{rows, cols});
    // {1, 2, 3, 4}: 3 from 2 and 4 from 3 (a chain). {2, 3, 5}: 3 from 2 only, as scipy's edge
    // effect of sigma 5 (radius 28) reaches past a 20-pixel border. {2, 3, 4, 2, 3}: a direct
    // source (the second 2) after a chain, whose passes reuse the planes of the chain's second set.
    const std::pair<std::vector<double>, std::size_t> cases[] = {
        {{1, 2, 3, 4}, 2}, {{2, 3, 5}, 1}, {{2, 3, 4, 2, 3}, 3}};
    for (const auto& [sigmas, cascaded] : cases) {
        sato_options o;
        o.sigmas = sigmas;
        const auto with = checked_sato(as_const(img.view()), o, border, false, true);
        const auto without = checked_sato(as_const(img.view()), o, border, false, false);
        EXPECT_EQ(with.cascaded, cascaded);
        EXPECT_EQ(without.cascaded, 0u);
        const auto a = with.value.to_host(), b = without.value.to_host();
        std::size_t nonzero = 0;
        for (index_t i = border; i < rows - border; ++i)
            for (index_t j = border; j < cols - border; ++j) {
                const auto q = static_cast<std::size_t>(i * cols + j);
                ASSERT_EQ(a[q], b[q]) << "at " << i << ", " << j;
                nonzero += a[q] != 0;
            }
        EXPECT_GT(nonzero, 100u);
    }
}

TEST(ScaleCascade, MaxAbsFindsTheLargestMagnitudeAnywhere) {
    // every length across the vector, unrolled and tail loops, the largest magnitude (of either
    // sign) at every position
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::int64_t n = 0; n <= 100; ++n) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& x : v) x = u(rng);
        EXPECT_EQ(max_abs(v.data(), n), 0.0f + (n ? std::abs(*std::max_element(v.begin(), v.end(), [](float a, float b) {
                                                  return std::abs(a) < std::abs(b);
                                              })) : 0.0f))
            << n;
        for (std::int64_t at = 0; at < n; ++at) {
            auto w = v;
            w[static_cast<std::size_t>(at)] = at % 2 ? 3.0f : -3.0f;
            ASSERT_EQ(max_abs(w.data(), n), 3.0f) << "length " << n << ", at " << at;
        }
    }
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
