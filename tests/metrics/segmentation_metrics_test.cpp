// metrics::skeletonize against scikit-image 0.19.3's skeletonize (2-D, Zhang's method) pixel for
// pixel, and the segmentation scores against numpy, on the fixtures of
// tools/make_metrics_fixtures.py: random masks (blobs, thin lines, noise, masks touching the
// borders, one-pixel-wide shapes, odd sizes, empty masks) and coronary80 expert masks (read from
// ../shared/data/coronary80 at test time; skipped when absent). Plus hand-made cases.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/metrics.hpp"

namespace {

using namespace vasomim;
using mask_t = std::vector<std::uint8_t>;

std::string metrics_data(const std::string& name) { return std::string(VASOMIM_TEST_DATA_DIR) + "/metrics/" + name; }

/// Plane `k` of a (planes, rows, ceil(cols / 8)) array of np.packbits rows (most significant bit first).
mask_t unpack(const xt::xarray<std::uint8_t>& packed, std::size_t k, std::size_t rows, std::size_t cols) {
    const std::size_t stride = packed.shape(2);
    mask_t m(rows * cols);
    const std::uint8_t* base = packed.data() + k * rows * stride;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) m[r * cols + c] = (base[r * stride + c / 8] >> (7 - c % 8)) & 1;
    return m;
}

mask_t skeleton_of(const mask_t& m, std::size_t rows, std::size_t cols) {
    mask_t s(m.size());
    metrics::skeletonize(m.data(), rows, cols, s.data());
    return s;
}

/// "" when equal, else how many pixels differ and where the first is.
std::string compare(const mask_t& got, const mask_t& want, std::size_t cols) {
    std::size_t n = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i] != want[i] && n++ == 0) first = i;
    if (n == 0) return "";
    return std::to_string(n) + " pixels differ, first at (" + std::to_string(first / cols) + ", " +
           std::to_string(first % cols) + "): got " + std::to_string(got[first]) + ", skimage " +
           std::to_string(want[first]);
}

std::vector<double> scores_vector(const metrics::segmentation_scores& s) {
    return {s.dice, s.cldice, s.sensitivity, s.precision, s.topology_precision, s.topology_sensitivity};
}

std::vector<std::int64_t> counts_vector(const metrics::overlap_counts& c) {
    return {c.pred, c.ref, c.both, c.pred_skeleton, c.ref_skeleton, c.pred_skeleton_in_ref, c.ref_skeleton_in_pred};
}

std::vector<std::string> case_names() {
    std::ifstream f(metrics_data("case_names.txt"));
    std::vector<std::string> names;
    for (std::string line; std::getline(f, line);) names.push_back(line);
    return names;
}

/// The coronary80 folder (VASOMIM_CORONARY80, else ../shared/data/coronary80), or "" when it has no masks/.
std::string coronary80_dir() {
    const char* env = std::getenv("VASOMIM_CORONARY80");
    const std::string d = env ? std::string(env) : std::string(VASOMIM_SOURCE_DIR) + "/../shared/data/coronary80";
    return std::filesystem::exists(d + "/masks") ? d : std::string();
}

const char* const score_names[] = {"dice", "cldice", "sensitivity", "precision", "Tprec", "Tsens"};

}  // namespace

TEST(Skeletonize, TableIsScikitImages) {
    const auto t = io::read_npy<std::uint8_t>(metrics_data("table.npy"));
    ASSERT_EQ(t.size(), 256u);
    for (std::size_t i = 0; i < 256; ++i) EXPECT_EQ(metrics::detail::skeleton_table[i], t(i)) << "code " << i;
}

TEST(Skeletonize, RandomMasksEqualScikitImage) {
    const auto table = io::read_npy<double>(metrics_data("cases.npy"));
    const auto names = case_names();
    ASSERT_EQ(table.dimension(), 2u);
    ASSERT_EQ(names.size(), table.shape(0));
    for (std::size_t k = 0; k < table.shape(0); ++k) {
        char file[32];
        std::snprintf(file, sizeof file, "case_%02zu.npy", k);
        const auto packed = io::read_npy<std::uint8_t>(metrics_data(file));
        const auto rows = static_cast<std::size_t>(table(k, 0)), cols = static_cast<std::size_t>(table(k, 1));
        const mask_t p = unpack(packed, 0, rows, cols), g = unpack(packed, 1, rows, cols);
        EXPECT_EQ(compare(skeleton_of(p, rows, cols), unpack(packed, 2, rows, cols), cols), "")
            << names[k] << ": skeleton of pred";
        EXPECT_EQ(compare(skeleton_of(g, rows, cols), unpack(packed, 3, rows, cols), cols), "")
            << names[k] << ": skeleton of ref";
    }
}

TEST(SegmentationMetrics, RandomMasksEqualNumpy) {
    const auto table = io::read_npy<double>(metrics_data("cases.npy"));
    const auto names = case_names();
    std::vector<metrics::segmentation_scores> all;
    for (std::size_t k = 0; k < table.shape(0); ++k) {
        char file[32];
        std::snprintf(file, sizeof file, "case_%02zu.npy", k);
        const auto packed = io::read_npy<std::uint8_t>(metrics_data(file));
        const auto rows = static_cast<std::size_t>(table(k, 0)), cols = static_cast<std::size_t>(table(k, 1));
        const mask_t p = unpack(packed, 0, rows, cols), g = unpack(packed, 1, rows, cols);
        const auto counts = counts_vector(metrics::count_overlap(p.data(), g.data(), rows, cols));
        for (std::size_t j = 0; j < 7; ++j)
            EXPECT_EQ(counts[j], static_cast<std::int64_t>(table(k, 2 + j))) << names[k] << ": count " << j;
        const auto s = metrics::evaluate(p.data(), g.data(), rows, cols);
        const auto v = scores_vector(s);
        for (std::size_t j = 0; j < 6; ++j) EXPECT_NEAR(v[j], table(k, 9 + j), 1e-12) << names[k] << ": " << score_names[j];
        all.push_back(s);
    }
    const auto summary = io::read_npy<double>(metrics_data("summary.npy"));
    const auto sum = metrics::summarize(all);
    EXPECT_EQ(sum.images, all.size());
    const auto mean = scores_vector(sum.mean), sd = scores_vector(sum.std);
    for (std::size_t j = 0; j < 6; ++j) {
        EXPECT_NEAR(mean[j], summary(0, j), 1e-12) << "mean " << score_names[j];
        EXPECT_NEAR(sd[j], summary(1, j), 1e-12) << "std " << score_names[j];
    }
}

TEST(SegmentationMetrics, Coronary80ExpertMasksEqualScikitImage) {
    const std::string dir = coronary80_dir();
    if (dir.empty())
        GTEST_SKIP() << "coronary80 masks not found (../shared/data/coronary80/masks or VASOMIM_CORONARY80): "
                        "the skeletons of real expert masks are not compared with scikit-image's";
    const auto skeletons = io::read_npy<std::uint8_t>(metrics_data("real_skeletons.npy"));
    const auto index = io::read_npy<double>(metrics_data("real_index.npy"));
    ASSERT_EQ(skeletons.shape(0), index.shape(0));
    auto read_mask = [&](int nn, std::size_t& rows, std::size_t& cols) {
        char name[64];
        std::snprintf(name, sizeof name, "/masks/training_%02d_gt.png", nn);
        const auto img = io::read_gray8(dir + name);
        rows = img.shape(0);
        cols = img.shape(1);
        mask_t m(img.size());
        for (std::size_t i = 0; i < m.size(); ++i) m[i] = img.data()[i] >= 128;  // the data set's README
        return m;
    };
    for (std::size_t k = 0; k < index.shape(0); ++k) {
        const int np_ = static_cast<int>(index(k, 0)), ng = static_cast<int>(index(k, 1));
        std::size_t rows = 0, cols = 0, rg = 0, cg = 0;
        const mask_t p = read_mask(np_, rows, cols), g = read_mask(ng, rg, cg);
        ASSERT_EQ(rows, skeletons.shape(1));
        ASSERT_EQ(rg, rows);
        ASSERT_EQ(cg, cols);
        EXPECT_EQ(compare(skeleton_of(p, rows, cols), unpack(skeletons, k, rows, cols), cols), "")
            << "training_" << np_ << "_gt.png";
        const auto counts = counts_vector(metrics::count_overlap(p.data(), g.data(), rows, cols));
        for (std::size_t j = 0; j < 7; ++j)
            EXPECT_EQ(counts[j], static_cast<std::int64_t>(index(k, 2 + j))) << "training_" << np_ << ": count " << j;
        const auto v = scores_vector(metrics::evaluate(p.data(), g.data(), rows, cols));
        for (std::size_t j = 0; j < 6; ++j)
            EXPECT_NEAR(v[j], index(k, 9 + j), 1e-12) << "training_" << np_ << " vs " << ng << ": " << score_names[j];
    }
}

TEST(Skeletonize, HandMadeShapes) {
    // A filled 3 x 5 rectangle thins to its middle row's inner part; a single pixel and a
    // one-pixel line stay; any nonzero value is foreground; out may alias the input.
    xt::xtensor<std::uint8_t, 2> rect = xt::zeros<std::uint8_t>({5, 7});
    for (std::size_t r = 1; r < 4; ++r)
        for (std::size_t c = 1; c < 6; ++c) rect(r, c) = 255;
    const auto s = metrics::skeletonize(rect);
    std::size_t on = 0;
    for (auto v : s) {
        EXPECT_TRUE(v == 0 || v == 1);
        on += v;
    }
    EXPECT_GT(on, 0u);
    for (std::size_t c = 0; c < 7; ++c) EXPECT_EQ(s(0, c), 0) << c;

    mask_t dot = {0, 0, 0, 0, 7, 0, 0, 0, 0};
    metrics::skeletonize(dot.data(), 3, 3, dot.data());
    EXPECT_EQ(dot, (mask_t{0, 0, 0, 0, 1, 0, 0, 0, 0}));

    mask_t line(9, 1);
    EXPECT_EQ(skeleton_of(line, 1, 9), line);
    EXPECT_EQ(skeleton_of(line, 9, 1), line);

    mask_t empty(12, 0);
    EXPECT_EQ(skeleton_of(empty, 3, 4), empty);
    metrics::skeletonize<std::uint8_t>(nullptr, 0, 5, nullptr);  // nothing to do

    // float masks: nonzero is foreground
    const xt::xtensor<float, 2> f = xt::cast<float>(rect) * 0.5f;
    EXPECT_EQ(metrics::skeletonize(f), s);

    // A workspace reused across masks of different sizes gives what fresh buffers give.
    metrics::skeleton_workspace ws;
    mask_t a(35), b(9);
    metrics::skeletonize(rect.data(), 5, 7, a.data(), ws);
    metrics::skeletonize(line.data(), 9, 1, b.data(), ws);
    EXPECT_EQ(a, mask_t(s.begin(), s.end()));
    EXPECT_EQ(b, line);
    metrics::skeletonize(rect.data(), 5, 7, a.data(), ws);
    EXPECT_EQ(a, mask_t(s.begin(), s.end()));
}

TEST(SegmentationMetrics, EmptyFullAndDisjoint) {
    const mask_t empty(20, 0), full(20, 1);
    auto all_equal = [](const metrics::segmentation_scores& s, double v) {
        for (double x : scores_vector(s)) EXPECT_EQ(x, v);
    };
    all_equal(metrics::evaluate(empty.data(), empty.data(), 4, 5), 1.0);  // both empty: 1
    all_equal(metrics::evaluate(full.data(), full.data(), 4, 5), 1.0);
    all_equal(metrics::evaluate(empty.data(), full.data(), 4, 5), 0.0);  // exactly one empty: 0
    all_equal(metrics::evaluate(full.data(), empty.data(), 4, 5), 0.0);

    mask_t left(20, 0), right(20, 0);
    for (std::size_t r = 0; r < 4; ++r) {
        left[r * 5] = left[r * 5 + 1] = 1;
        right[r * 5 + 3] = right[r * 5 + 4] = 1;
    }
    all_equal(metrics::evaluate(left.data(), right.data(), 4, 5), 0.0);

    // Half of G found, nothing extra: Dice 2/3, sensitivity 1/2, precision 1.
    mask_t half = left, both = left;
    for (std::size_t r = 0; r < 4; ++r) both[r * 5 + 3] = both[r * 5 + 4] = 1;
    const auto s = metrics::evaluate(half.data(), both.data(), 4, 5);
    EXPECT_DOUBLE_EQ(s.dice, 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(s.sensitivity, 0.5);
    EXPECT_DOUBLE_EQ(s.precision, 1.0);
    EXPECT_DOUBLE_EQ(s.topology_precision, 1.0);

    // A mask of 255s scores as one of 1s.
    mask_t p255 = left;
    for (auto& v : p255) v *= 255;
    EXPECT_EQ(scores_vector(metrics::evaluate(p255.data(), both.data(), 4, 5)), scores_vector(s));
}

TEST(SegmentationMetrics, ShapeMismatchAndSummary) {
    const xt::xtensor<std::uint8_t, 2> a = xt::ones<std::uint8_t>({4, 5}), b = xt::ones<std::uint8_t>({5, 4});
    EXPECT_THROW(metrics::evaluate(a, b), shape_error);
    EXPECT_EQ(metrics::evaluate(a, a).dice, 1.0);

    std::vector<metrics::segmentation_scores> v(3);
    v[0].dice = 0.2;
    v[1].dice = 0.4;
    v[2].dice = 0.9;
    const auto s0 = metrics::summarize(v), s1 = metrics::summarize(v, 1);
    EXPECT_EQ(s0.images, 3u);
    EXPECT_NEAR(s0.mean.dice, 0.5, 1e-15);
    EXPECT_NEAR(s0.std.dice, std::sqrt((0.09 + 0.01 + 0.16) / 3), 1e-15);
    EXPECT_NEAR(s1.std.dice, std::sqrt((0.09 + 0.01 + 0.16) / 2), 1e-15);
    EXPECT_EQ(s0.std.cldice, 0.0);
    EXPECT_EQ(metrics::summarize({}).images, 0u);
    EXPECT_EQ(metrics::summarize(std::span(v.data(), 1), 1).std.dice, 0.0);
}
