// The pseudo-label pipeline and its steps against the released-pipeline reference, the coronary80
// training images (filters and masks), and the host input adapters.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/meijering.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vasomim/vessel/sato.hpp"
#include "vessel/vessel_fixture.hpp"

#if !VASOMIM_HAS_CUDA
#include <Eigen/Core>
#include <xtensor/xarray.hpp>
#include <xtensor/xview.hpp>

#include "vasomim/vessel/image_view.hpp"
#endif

namespace {

using namespace vasomim;
using namespace vasomim::vessel;
using vasomim::test::close_to_reference;
using vasomim::test::load_tensor;
using vasomim::test::load_values;

template <class B>
class PseudoLabel : public ::testing::Test {};
TYPED_TEST_SUITE(PseudoLabel, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(PseudoLabel, PercentileIsNumpysLinear) {
    using B = TypeParam;
    // numpy 1.24: np.percentile(a, q) for these values.
    const std::vector<std::uint8_t> a{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
    auto t = tensor<std::uint8_t, B>::from_host(a, shape{11});
    EXPECT_DOUBLE_EQ(percentile(t, 0), 1.0);
    EXPECT_DOUBLE_EQ(percentile(t, 10), 1.0);
    EXPECT_DOUBLE_EQ(percentile(t, 50), 4.0);
    EXPECT_DOUBLE_EQ(percentile(t, 92), 6.600000000000003);
    EXPECT_DOUBLE_EQ(percentile(t, 92.5), 6.75);
    EXPECT_DOUBLE_EQ(percentile(t, 100), 9.0);
    EXPECT_DOUBLE_EQ(percentile(t, 33.3), 3.0);
    const std::vector<double> b{0.5, -2.25, 7.0, 3.5};
    EXPECT_DOUBLE_EQ(percentile(b.data(), b.size(), 25), -0.1875);
    EXPECT_DOUBLE_EQ(percentile(b.data(), b.size(), 92), 6.160000000000001);
    EXPECT_DOUBLE_EQ(percentile(b.data(), b.size(), 60), 2.8999999999999995);
    EXPECT_THROW(percentile(t, 100.5), value_error);
    EXPECT_THROW(percentile(b.data(), 0, 50), value_error);
}

TYPED_TEST(PseudoLabel, StepsDoWhatTheyShould) {
    using B = TypeParam;
    auto r = tensor<double, B>::from_host({-1.5, 0.0, 0.99, 1.0, 37.999, 254.9, 255.0, 1e6}, shape{2, 4});
    EXPECT_EQ(to_uint8(r).to_host(), (std::vector<std::uint8_t>{0, 0, 0, 1, 37, 254, 255, 255}));

    tensor<std::uint8_t, B> img(shape{5, 6}, 7);
    zero_border(img, 2);
    const auto h = img.to_host();
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 6; ++j)
            EXPECT_EQ(h[static_cast<std::size_t>(i * 6 + j)], (i == 2 && (j == 2 || j == 3)) ? 7 : 0) << i << "," << j;
    tensor<std::uint8_t, B> keep(shape{3, 3}, 9);
    zero_border(keep, 0);
    EXPECT_EQ(keep.to_host(), std::vector<std::uint8_t>(9, 9)) << "border 0 zeroes nothing";
    EXPECT_THROW(zero_border(keep, -1), value_error);

    // Two components; the first maximum (value 9, first in row-major order) lies in the second one;
    // a diagonal neighbour is not 4-connected.
    const std::vector<std::uint8_t> v{1, 1, 0, 0, 0,  //
                                      0, 0, 0, 9, 3,  //
                                      0, 0, 0, 0, 9,  //
                                      5, 0, 0, 0, 0};
    auto vt = tensor<std::uint8_t, B>::from_host(v, shape{4, 5});
    const auto [labels, n] = connected_components(vt);
    EXPECT_EQ(n, 3);
    EXPECT_EQ(labels.to_host(), (std::vector<std::int32_t>{1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0}));
    EXPECT_EQ(region_grow(vt).to_host(),
              (std::vector<std::uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0}));
    tensor<std::uint8_t, B> zeros(shape{3, 3});
    EXPECT_EQ(region_grow(zeros).to_host(), std::vector<std::uint8_t>(9, 0));
}

// The span fill behind connected_components and region_grow against a plain breadth-first
// labelling, on random masks of many sizes and densities (spirals and U shapes arise at ~50%).
TYPED_TEST(PseudoLabel, ComponentsMatchABreadthFirstOracle) {
    using B = TypeParam;
    std::mt19937 gen(3);
    for (int t = 0; t < 60; ++t) {
        const index_t rows = 1 + static_cast<index_t>(gen() % 40), cols = 1 + static_cast<index_t>(gen() % 40);
        const double density = 0.2 + 0.1 * (t % 6);
        std::bernoulli_distribution on(density);
        std::uniform_int_distribution<int> level(1, 250);
        std::vector<std::uint8_t> v(static_cast<std::size_t>(rows * cols));
        for (auto& x : v) x = on(gen) ? static_cast<std::uint8_t>(level(gen)) : 0;
        // Oracle: label in row-major order of first pixels, breadth first over 4 neighbours.
        std::vector<std::int32_t> want(v.size(), 0);
        std::int32_t n = 0;
        for (std::size_t p = 0; p < v.size(); ++p) {
            if (!v[p] || want[p]) continue;
            want[p] = ++n;
            std::vector<std::size_t> queue{p};
            for (std::size_t h = 0; h < queue.size(); ++h) {
                const auto q = static_cast<index_t>(queue[h]);
                const index_t i = q / cols, j = q % cols;
                const index_t nb[4][2] = {{i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
                for (const auto& [a, b] : nb) {
                    if (a < 0 || a >= rows || b < 0 || b >= cols) continue;
                    const auto r = static_cast<std::size_t>(a * cols + b);
                    if (v[r] && !want[r]) {
                        want[r] = n;
                        queue.push_back(r);
                    }
                }
            }
        }
        const auto vt = tensor<std::uint8_t, B>::from_host(v, shape{rows, cols});
        const auto [labels, count] = connected_components(vt);
        ASSERT_EQ(count, n) << "case " << t;
        ASSERT_EQ(labels.to_host(), want) << "case " << t;
        // region_grow: the component of the first maximum.
        const auto top = static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
        std::vector<std::uint8_t> grown(v.size(), 0);
        for (std::size_t p = 0; p < v.size(); ++p)
            if (v[top] && want[p] == want[top]) grown[p] = 255;
        ASSERT_EQ(region_grow(vt).to_host(), grown) << "case " << t;
    }
}

TYPED_TEST(PseudoLabel, SyntheticPipelineMatchesTheReleasedPipeline) {
    using B = TypeParam;
    const auto syn = load_tensor<std::uint8_t, B>("synthetic_input");
    pseudo_label_options o;
    o.border = 5;
    const auto s = pseudo_label_steps_of(syn.view(), o);
    EXPECT_TRUE(close_to_reference(s.response.to_host(), load_values<float>("synthetic_pipeline_sato"), 1e-5));
    EXPECT_EQ(s.value.to_host(), load_values<std::uint8_t>("synthetic_pipeline_uint8"));
    const auto mask = s.mask.to_host();
    const auto ref = load_values<std::uint8_t>("synthetic_pipeline_mask");
    EXPECT_EQ(mask, ref);
    std::size_t on = 0;
    for (auto m : ref) on += m == 255;
    EXPECT_GT(on, 100u) << "the fixture's vessel region is not trivial";
    EXPECT_EQ(pseudo_label(syn, o).to_host(), ref);
}

TYPED_TEST(PseudoLabel, Coronary80TrainingImagesMatchReference) {
    using B = TypeParam;
    const std::string dir = vasomim::test::coronary80_dir();
    if (dir.empty()) GTEST_SKIP() << "coronary80 not found (set VASOMIM_CORONARY80 or place it at ../shared/data/coronary80)";
    for (const std::string name : {"training_01", "training_07", "training_23"}) {
        SCOPED_TRACE(name);
        const auto gray = io::read_gray8(dir + "/images/" + name + ".png");
        ASSERT_EQ(gray.shape(0), 300u);
        const std::vector<std::uint8_t> pixels(gray.begin(), gray.end());
        const auto img = tensor<std::uint8_t, B>::from_host(pixels, shape{300, 300});
        const auto maxima = load_values<double>(name + "_maxima");
        auto check = [&](const tensor<double, B>& ours, const std::string& key, double ref_max) {
            const auto h = ours.to_host();
            double our_max = 0;
            for (double v : h) our_max = std::max(our_max, std::abs(v));
            EXPECT_NEAR(our_max, ref_max, 1e-5 * ref_max) << key;
            EXPECT_TRUE(close_to_reference(vasomim::test::subsample(h, 300, 300, 6),
                                           load_values<float>(name + "_" + key + "_sub6"), 1e-5, ref_max))
                << key;
        };
        check(frangi(img), "frangi", maxima[0]);
        check(sato(img), "sato", maxima[1]);
        check(meijering(img), "meijering", maxima[2]);
        const auto s = pseudo_label_steps_of(img.view());
        check(s.response, "pipeline_sato", maxima[3]);
        EXPECT_EQ(vasomim::test::subsample(s.value.to_host(), 300, 300, 6),
                  load_values<std::uint8_t>(name + "_pipeline_uint8_sub6"));
        const auto packed = load_values<std::uint8_t>(name + "_mask_packed");
        const auto mask = s.mask.to_host();
        std::size_t differ = 0, on = 0;
        for (std::size_t i = 0; i < mask.size(); ++i) {
            const bool ref_on = (packed[i / 8] >> (7 - i % 8)) & 1;
            differ += ref_on != (mask[i] == 255);
            on += ref_on;
        }
        EXPECT_EQ(differ, 0u) << "pseudo-label pixels differing from the released pipeline";
        EXPECT_GT(on, 1000u);
        // The mask-only path (on the host: folded tail, Hessians inside the border, scale cascade).
        EXPECT_EQ(pseudo_label(img).to_host(), mask);
    }
}

#if !VASOMIM_HAS_CUDA
TEST(VesselInputs, EigenXtensorAndRawPointerNeedNoCopyAndAgree) {
    const auto ref_t = load_tensor<std::uint8_t, backend::cpu>("synthetic_input");  // 64 x 72
    const auto rows = ref_t.dim(0), cols = ref_t.dim(1);
    sato_options o;
    o.sigmas = {1, 2};
    const auto expected = sato(ref_t, o).to_host();

    // Raw pointer + shape.
    const auto host = ref_t.to_host();
    const auto v = image_view(host.data(), rows, cols);
    EXPECT_EQ(v.data(), host.data()) << "no copy";
    EXPECT_EQ(sato(v, o).to_host(), expected);

    // Eigen, row-major map and column-major matrix (strided access).
    using RowMat = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMat> map(host.data(), rows, cols);
    EXPECT_EQ(image_view(map).data(), host.data());
    EXPECT_EQ(sato(map, o).to_host(), expected);
    Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic> colmajor = map;
    EXPECT_EQ(image_view(colmajor).stride(1), rows);
    EXPECT_EQ(sato(colmajor, o).to_host(), expected);
    // An Eigen expression without storage is evaluated once.
    EXPECT_EQ(sato(map.cast<float>() * 1.0f, o).to_host(), sato(image_view(map.cast<float>().eval()), o).to_host());

    // xtensor: container, transposed strided view, lazy expression.
    xt::xarray<std::uint8_t> xa = xt::xarray<std::uint8_t>::from_shape({static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    std::copy(host.begin(), host.end(), xa.begin());
    EXPECT_EQ(sato(xa, o).to_host(), expected);
    xt::xarray<std::uint8_t> xt_t = xt::transpose(xa);
    auto back = xt::transpose(xt_t);  // strided view of xt_t, no copy
    EXPECT_EQ(image_view(back).data(), xt_t.data());
    EXPECT_EQ(sato(back, o).to_host(), expected);
    xt::xarray<float> xf = xt::cast<float>(xa);
    EXPECT_EQ(frangi(xf * 2.0f).to_host(), frangi(image_view(xt::xarray<float>(xf * 2.0f))).to_host());
    EXPECT_EQ(as_xtensor(sato(xa, o)).shape(0), static_cast<std::size_t>(rows));

    // Bright ridges and pseudo_label through an adapter.
    EXPECT_EQ(pseudo_label(map).to_host(), pseudo_label(ref_t).to_host());
}

TEST(VesselInputs, BackendsAgree) {
    const auto syn = load_tensor<std::uint8_t, backend::cpu>("synthetic_input");
    const auto host = syn.to_host();
    const auto omp = tensor<std::uint8_t, backend::thrust_omp>::from_host(host, syn.shape());
    // The host trims frangi's kernels within a proven tolerance (frangi_trim.hpp); without the
    // trimming both backends compute the same sums up to rounding.
    const frangi_options trimmed;
    EXPECT_TRUE(close_to_reference(frangi(syn, trimmed).to_host(), frangi(omp).to_host(), trimmed.tolerance + 1e-12));
    frangi_options untrimmed;
    untrimmed.tolerance = 0;
    EXPECT_TRUE(close_to_reference(frangi(syn, untrimmed).to_host(), frangi(omp, untrimmed).to_host(), 1e-12));
    EXPECT_TRUE(close_to_reference(meijering(syn).to_host(), meijering(omp).to_host(), 1e-12));
}

// The host pipeline filters integer images in float and recomputes in double only the pixels whose
// uint8 cast is in doubt: its uint8 values must equal the cast of the double Sato response (the
// path every other backend takes), in every mode it serves and for both ridge polarities, on noise
// (many values near integers) and on the synthetic vessels.
/// 97 x 83 uniform noise (a fixed LCG): many Sato values near integers.
tensor<std::uint8_t, backend::cpu> noise_image() {
    std::vector<std::uint8_t> noise(97 * 83);
    std::uint32_t state = 12345;
    for (auto& v : noise) {
        state = state * 1664525u + 1013904223u;
        v = static_cast<std::uint8_t>(state >> 24);
    }
    return tensor<std::uint8_t, backend::cpu>::from_host(noise, shape{97, 83});
}

TEST(PseudoLabelHost, CheckedFloatPathEqualsTheDoubleCast) {
    const auto rnd = noise_image();
    const auto syn = load_tensor<std::uint8_t, backend::cpu>("synthetic_input");
    for (const auto* img : {&rnd, &syn})
        for (const char* m : {"reflect", "nearest", "mirror", "wrap"})
            for (bool black : {true, false}) {
                SCOPED_TRACE(std::string(m) + (black ? " black" : " white"));
                pseudo_label_options o;
                o.mode = parse_boundary_mode(m);
                o.black_ridges = black;
                o.border = 3;
                auto expected = to_uint8(sato(*img, o.sato()));
                zero_border(expected, o.border);
                const auto s = pseudo_label_steps_of(img->view(), o);
                EXPECT_EQ(s.value.to_host(), expected.to_host());
                EXPECT_TRUE(close_to_reference(s.response.to_host(), sato(*img, o.sato()).to_host(), 1e-5));
                // The double recomputation runs (and is what the equality above checks at those pixels).
                if (img == &rnd) {
                    EXPECT_GT(vessel::detail::checked_sato(rnd.view(), o.sato(), o.border).rechecked, 0u);
                }
            }
    // 32-bit pixels beyond float's exact integers: the recheck reads a double copy of the image
    // (8- and 16-bit images are read from the centred float plane).
    const auto noise = rnd.to_host();
    std::vector<std::int32_t> wide(noise.size());
    for (std::size_t q = 0; q < noise.size(); ++q) wide[q] = 40'000'000 + 3 * std::int32_t(noise[q]);
    const auto big = tensor<std::int32_t, backend::cpu>::from_host(wide, shape{97, 83});
    pseudo_label_options o;
    o.border = 3;
    auto expected = to_uint8(sato(big, o.sato()));
    zero_border(expected, o.border);
    EXPECT_EQ(pseudo_label_steps_of(big.view(), o).value.to_host(), expected.to_host());
    EXPECT_GT(vessel::detail::checked_sato(big.view(), o.sato(), o.border).rechecked, 0u);
}

// The mask's choice of doubtful pixels (mask_recheck) against brute force: values crowded into a
// few levels, many of them doubtful (their exact value one above or below the float one), and
// checked_sato's loop replayed with the exact values. Whatever it leaves in doubt, the threshold,
// the kept pixels and the first pixel of the maximum (which fix the grown mask) must be those of
// the exact values.
TEST(PseudoLabelHost, MaskRecheckDecidesWhatTheMaskDependsOn) {
    std::mt19937 gen(2026);
    std::size_t left_alone = 0, doubtful = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        const std::size_t n = 1 + gen() % 80;
        const int levels = 1 + static_cast<int>(gen() % 6), base = trial % 3 == 0 ? 0 : static_cast<int>(gen() % 250);
        const double q = std::array{0.0, 10.0, 50.0, 92.0, 99.0, 100.0}[gen() % 6];
        std::vector<int> exact(n), now(n);
        std::vector<vessel::detail::doubtful_pixel> pending;
        std::array<std::size_t, 256> hist{}, exact_hist{};
        for (std::size_t p = 0; p < n; ++p) {
            exact[p] = std::min(255, base + static_cast<int>(gen() % static_cast<unsigned>(levels)));
            now[p] = exact[p];
            if (gen() % 3 == 0) {  // doubtful: the float value one off, or right
                const int low = std::max(0, exact[p] - static_cast<int>(gen() % 2)), high = std::min(255, low + 1);
                if (low < high) {
                    now[p] = gen() % 2 ? low : high;
                    pending.push_back({static_cast<std::int64_t>(p), static_cast<std::uint8_t>(now[p]),
                                       static_cast<std::uint8_t>(low), static_cast<std::uint8_t>(high)});
                }
            }
            ++hist[static_cast<std::size_t>(now[p])];
            ++exact_hist[static_cast<std::size_t>(exact[p])];
        }
        doubtful += pending.size();
        const vessel::detail::mask_recheck choose{q};
        for (;;) {  // checked_sato's loop
            const auto sel = choose(hist, pending);
            if (sel.empty()) break;
            std::vector<char> done(pending.size(), 0);
            for (std::size_t k : sel) {
                const auto p = static_cast<std::size_t>(pending[k].index);
                --hist[static_cast<std::size_t>(now[p])];
                now[p] = exact[p];
                ++hist[static_cast<std::size_t>(now[p])];
                done[k] = 1;
            }
            std::vector<vessel::detail::doubtful_pixel> rest;
            for (std::size_t k = 0; k < pending.size(); ++k)
                if (!done[k]) rest.push_back(pending[k]);
            pending = rest;
        }
        left_alone += pending.size();
        SCOPED_TRACE("trial " + std::to_string(trial));
        const double t = percentile_of_histogram(hist, q);
        ASSERT_EQ(t, percentile_of_histogram(exact_hist, q));
        const int lowest = std::max(1, static_cast<int>(std::ceil(t)));
        int top = 0;
        for (std::size_t p = 0; p < n; ++p) {
            ASSERT_EQ(now[p] >= lowest, exact[p] >= lowest) << "pixel " << p;
            top = std::max(top, exact[p]);
        }
        if (top >= lowest) {
            EXPECT_EQ(std::find(now.begin(), now.end(), top) - now.begin(),
                      std::find(exact.begin(), exact.end(), top) - exact.begin());
        }
    }
    // It does leave pixels alone (else it would be recheck_all).
    EXPECT_GT(left_alone, doubtful / 10) << doubtful << " doubtful";
}

// On real angiograms (coronary80's 40 training images) the mask alone, which recomputes only the
// doubtful pixels it depends on, equals the mask of the steps run one by one on exact values.
TEST(PseudoLabelHost, MaskAloneEqualsTheStepsOnRealAngiograms) {
    const std::string dir = vasomim::test::coronary80_dir();
    if (dir.empty()) GTEST_SKIP() << "coronary80 not found (set VASOMIM_CORONARY80 or place it at ../shared/data/coronary80)";
    std::size_t doubtful = 0, rechecked = 0;
    for (int k = 1; k <= 40; ++k) {
        const std::string name = "training_" + std::string(k < 10 ? "0" : "") + std::to_string(k);
        SCOPED_TRACE(name);
        const auto gray = io::read_gray8(dir + "/images/" + name + ".png");
        const auto img = tensor<std::uint8_t, backend::cpu>::from_host(
            std::vector<std::uint8_t>(gray.begin(), gray.end()),
            shape{static_cast<index_t>(gray.shape(0)), static_cast<index_t>(gray.shape(1))});
        const pseudo_label_options o;
        EXPECT_EQ(pseudo_label(img, o).to_host(), pseudo_label_steps_of(img.view(), o).mask.to_host());
        const auto c = vessel::detail::checked_sato(img.view(), o.sato(), o.border, false, true,
                                                    vessel::detail::mask_recheck{o.percentile});
        doubtful += c.doubtful;
        rechecked += c.rechecked;
    }
    EXPECT_GT(doubtful, 0u);
    EXPECT_LT(rechecked, doubtful) << "the mask leaves some doubtful pixels alone";
    std::printf("coronary80 training_01..40: %zu doubtful pixels, %zu recomputed for the mask\n", doubtful, rechecked);
}

// pseudo_label (mask only) folds the border, the histogram of the percentile and the region growing
// into the filter's last pass; pseudo_label_steps_of runs the steps one by one. Their masks and
// thresholds must agree for every mode, polarity, border and percentile, on noise and on vessels.
TEST(PseudoLabelHost, FoldedTailEqualsTheSteps) {
    const auto syn = load_tensor<std::uint8_t, backend::cpu>("synthetic_input");
    auto banded = [](index_t rows, index_t cols) {  // noise with a dark band across row 30
        std::vector<std::uint8_t> noise(static_cast<std::size_t>(rows * cols));
        std::uint32_t state = 777;
        for (std::size_t p = 0; p < noise.size(); ++p) {
            state = state * 1664525u + 1013904223u;
            const double ridge = 90 * std::exp(-std::pow((double(p / std::size_t(cols)) - 30) / 3.0, 2));
            noise[p] = static_cast<std::uint8_t>(200 - ridge - double(state >> 27));
        }
        return tensor<std::uint8_t, backend::cpu>::from_host(noise, shape{rows, cols});
    };
    const auto band = banded(61, 150);
    std::size_t cases = 0, nontrivial = 0;
    auto check = [&](const tensor<std::uint8_t, backend::cpu>& img, const char* m, bool black, index_t border, double q) {
        SCOPED_TRACE(std::string(m) + (black ? " black" : " white") + " border " + std::to_string(border) + " q " +
                     std::to_string(q));
        pseudo_label_options o;
        o.mode = parse_boundary_mode(m);
        o.black_ridges = black;
        o.border = border;
        o.percentile = q;
        const auto steps = pseudo_label_steps_of(img.view(), o);
        const auto mask = pseudo_label(img, o).to_host();
        EXPECT_EQ(mask, steps.mask.to_host());
        std::size_t on = 0;
        for (auto v : mask) on += v == 255;
        ++cases;
        nontrivial += on > 20;
    };
    for (const auto* img : {&syn, &band})
        for (const char* m : {"reflect", "nearest", "mirror", "wrap"})
            for (bool black : {true, false})
                for (index_t border : {0, 5}) check(*img, m, black, border, 92.0);
    // Noise, where many values are in doubt (mask_recheck leaves most of them), at percentiles
    // that put the threshold among them.
    const auto rnd = noise_image();
    for (double q : {30.0, 60.0, 92.0, 97.0})
        for (bool black : {true, false}) check(rnd, "reflect", black, 3, q);
    // Other percentiles, and a border that covers the band image (an all-zero mask).
    for (const auto* img : {&syn, &band})
        for (index_t border : {3, 40})
            for (double q : {0.0, 50.0, 99.9, 100.0}) check(*img, "reflect", true, border, q);
    // The folded tail computes the Hessians inside the border only: whole blocks of rows left out
    // (border 20 of 130 rows), and windows narrower than a row pass's strip (30 columns).
    const auto tall = banded(130, 90);
    for (index_t border : {20, 30})
        for (bool black : {true, false}) check(tall, "reflect", black, border, 92.0);
    EXPECT_GT(nontrivial, cases / 2) << "most cases grow a real region";
}

TEST(PseudoLabelHost, PercentileOfHistogramIsNumpys) {
    const std::vector<std::uint8_t> a{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
    std::array<std::size_t, 256> h{};
    for (auto v : a) ++h[v];
    for (double q : {0.0, 10.0, 33.3, 50.0, 92.0, 92.5, 100.0}) EXPECT_EQ(percentile_of_histogram(h, q), percentile(a.data(), a.size(), q)) << q;
    EXPECT_DOUBLE_EQ(percentile_of_histogram(h, 92), 6.600000000000003);
    EXPECT_THROW(percentile_of_histogram(std::array<std::size_t, 256>{}, 50), value_error);
    EXPECT_THROW(percentile_of_histogram(h, -1), value_error);
}
#endif

}  // namespace
