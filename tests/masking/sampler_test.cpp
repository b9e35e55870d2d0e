// Masking: patch weights, schedules and the random / anatomy-guided samplers on every backend.
// Statistical checks use fixed seeds, so they are deterministic; their bounds are the 0.999
// quantiles of the reference distributions (chi-square for multinomial cell counts, |z| < 4.5 for
// single frequencies), i.e. a correct sampler passes them for all but a few seeds in a thousand.
#include "vasomim/core/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#if !VASOMIM_HAS_CUDA
#include <omp.h>
#endif

#include "test_backends.hpp"
#include "vasomim/masking.hpp"

namespace {

using namespace vasomim;
using masking::guided_counts;
using masking::patch_mask;
using masking::progress;
using masking::step_info;

template <class B>
class Masking : public ::testing::Test {};
TYPED_TEST_SUITE(Masking, vasomim::test::all_backends, vasomim::test::backend_name);

using i64 = std::int64_t;

/// Host copies of a batch's masks.
struct host_masks {
    index_t n = 0, l = 0, len_keep = 0;
    std::vector<i64> shuffle, keep, restore;
    std::vector<float> mask;
    const i64* row(index_t i) const { return shuffle.data() + i * l; }
};

template <class B>
host_masks to_host(const patch_mask<B>& m) {
    host_masks h;
    h.n = m.batch();
    h.l = m.num_patches();
    h.len_keep = m.len_keep;
    h.shuffle = m.ids_shuffle.to_host();
    h.keep = m.ids_keep.to_host();
    h.restore = m.ids_restore.to_host();
    h.mask = m.mask.to_host();
    return h;
}

/// The MAE invariants of every row: ids_shuffle is a permutation, ids_restore its inverse, ids_keep
/// its first len_keep entries, mask 1 exactly on the others (so visible and masked are disjoint and
/// their counts are len_keep and L - len_keep).
void expect_consistent(const host_masks& h) {
    ASSERT_EQ(h.shuffle.size(), static_cast<std::size_t>(h.n * h.l));
    ASSERT_EQ(h.keep.size(), static_cast<std::size_t>(h.n * h.len_keep));
    for (index_t i = 0; i < h.n; ++i) {
        std::vector<int> seen(static_cast<std::size_t>(h.l), 0);
        index_t masked = 0;
        for (index_t k = 0; k < h.l; ++k) {
            const i64 j = h.shuffle[static_cast<std::size_t>(i * h.l + k)];
            ASSERT_GE(j, 0);
            ASSERT_LT(j, h.l);
            ASSERT_EQ(seen[static_cast<std::size_t>(j)]++, 0) << "row " << i << " repeats patch " << j;
            ASSERT_EQ(h.restore[static_cast<std::size_t>(i * h.l + j)], k) << "ids_restore is not the inverse, row " << i;
            if (k < h.len_keep) {
                ASSERT_EQ(h.keep[static_cast<std::size_t>(i * h.len_keep + k)], j);
            }
            const float m = h.mask[static_cast<std::size_t>(i * h.l + j)];
            ASSERT_EQ(m, k < h.len_keep ? 0.0f : 1.0f) << "row " << i << " patch " << j;
            masked += m == 1.0f;
        }
        ASSERT_EQ(masked, h.l - h.len_keep) << "row " << i;
    }
}

/// The released algorithm, one row at a time on the host, with the library's random-stream layout:
/// guided = the first min(target, #positive) patches of the exponential race; the visible ones are
/// the len_keep other patches of smallest noise, in ascending index order; then the guided patches in
/// draw order, then the rest by noise. All-zero rows: argsort(noise).
std::vector<i64> reference_row(const std::vector<double>& w, index_t len_keep, index_t target,
                               std::uint64_t seed, std::uint64_t step, index_t sample) {
    const auto l = static_cast<index_t>(w.size());
    const philox g = masking::detail::sample_stream(seed, step, sample);
    std::vector<double> key(w.size()), noise(w.size());
    double total = 0;
    index_t positive = 0;
    for (index_t j = 0; j < l; ++j) {
        const double x = w[static_cast<std::size_t>(j)];
        total += x;
        positive += x > 0;
        key[static_cast<std::size_t>(j)] =
            x > 0 ? -std::log(masking::detail::race_uniform(g, j)) / x : std::numeric_limits<double>::infinity();
        noise[static_cast<std::size_t>(j)] = masking::detail::order_noise(g, j);
    }
    auto by = [](const std::vector<double>& k) {
        return [&k](i64 a, i64 b) { return k[static_cast<std::size_t>(a)] < k[static_cast<std::size_t>(b)]; };
    };
    std::vector<i64> all(static_cast<std::size_t>(l));
    std::iota(all.begin(), all.end(), 0);
    if (!(total > 0)) {
        std::stable_sort(all.begin(), all.end(), by(noise));
        return all;
    }
    const index_t guided = std::min(target, positive);
    std::vector<i64> race = all;
    std::stable_sort(race.begin(), race.end(), by(key));
    std::vector<i64> g_ids(race.begin(), race.begin() + guided);
    std::vector<i64> rest;
    for (i64 j : all)
        if (std::find(g_ids.begin(), g_ids.end(), j) == g_ids.end()) rest.push_back(j);
    std::stable_sort(rest.begin(), rest.end(), by(noise));
    std::vector<i64> out(rest.begin(), rest.begin() + len_keep);
    std::sort(out.begin(), out.end());
    out.insert(out.end(), g_ids.begin(), g_ids.end());
    out.insert(out.end(), rest.begin() + len_keep, rest.end());
    return out;
}

/// A batch of weight rows covering the interesting cases: all zero, one positive patch, fewer
/// positive patches than the target, many positive patches with ties, tiny and huge weights.
std::vector<float> mixed_weights(index_t n, index_t l, std::uint64_t seed) {
    std::vector<float> w(static_cast<std::size_t>(n * l), 0.0f);
    const philox g(seed, 99);
    for (index_t i = 0; i < n; ++i) {
        float* row = w.data() + i * l;
        switch (i % 6) {
            case 0: break;                                   // all zero
            case 1: row[(i * 7) % l] = 3.0f; break;         // one positive patch
            case 2:                                          // a few positive patches
                for (index_t j = 0; j < 5; ++j) row[(i + 11 * j) % l] = 1.0f + float(j);
                break;
            case 3:                                          // dense, with ties
                for (index_t j = 0; j < l; ++j) row[j] = std::floor(g.uniform(static_cast<std::uint64_t>(i * l + j)) * 4.0f);
                break;
            case 4:                                          // sparse vessel-like, wide range
                for (index_t j = 0; j < l; ++j) {
                    const float u = g.uniform(static_cast<std::uint64_t>(i * l + j));
                    row[j] = u < 0.3f ? 255.0f * u * u * u * 1e3f : 0.0f;
                }
                break;
            default:                                         // tiny weights
                for (index_t j = 0; j < l; ++j) row[j] = 1e-30f * float(j % 3);
        }
    }
    return w;
}

// ---- patch weights and distribution -------------------------------------------------------------

TYPED_TEST(Masking, PatchWeightsSumEachPatch) {
    using B = TypeParam;
    const index_t n = 3, h = 8, w = 12, p = 4, l = 6;
    std::vector<float> g(static_cast<std::size_t>(n * h * w));
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = float((i * 37) % 11) * 0.25f;
    const auto t = tensor<float, B>::from_host(g, shape{n, h, w});
    const auto weights = masking::patch_weights(t, p);
    ASSERT_EQ(weights.shape(), (shape{n, l}));
    const auto got = weights.to_host();
    for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < l; ++k) {
            double ref = 0;
            for (index_t r = 0; r < p; ++r)
                for (index_t c = 0; c < p; ++c)
                    ref += g[static_cast<std::size_t>((i * h + (k / 3) * p + r) * w + (k % 3) * p + c)];
            EXPECT_EQ(got[static_cast<std::size_t>(i * l + k)], float(ref)) << "image " << i << " patch " << k;
        }

    const auto f = masking::patch_distribution(weights).to_host();
    for (index_t i = 0; i < n; ++i) {
        double total = 0, s = 0;
        for (index_t k = 0; k < l; ++k) total += got[static_cast<std::size_t>(i * l + k)];
        for (index_t k = 0; k < l; ++k) {
            EXPECT_NEAR(f[static_cast<std::size_t>(i * l + k)], got[static_cast<std::size_t>(i * l + k)] / total, 1e-7);
            s += f[static_cast<std::size_t>(i * l + k)];
        }
        EXPECT_NEAR(s, 1.0, 1e-6);
    }
    // A row of zero weight has no distribution: it stays zero.
    const auto zero = masking::patch_distribution(tensor<float, B>(shape{2, 5})).to_host();
    EXPECT_EQ(zero, std::vector<float>(10, 0.0f));

    // 8-bit pseudo-labels (0/255) are summed without overflow.
    const auto u8 = tensor<std::uint8_t, B>::from_host(std::vector<std::uint8_t>(2 * 32 * 32, 255), shape{2, 32, 32});
    EXPECT_EQ(masking::patch_weights(u8, 16).to_host(), std::vector<float>(8, 255.0f * 256.0f));
}

TYPED_TEST(Masking, BadInputThrows) {
    using B = TypeParam;
    const tensor<float, B> g(shape{2, 32, 48});
    EXPECT_THROW(masking::patch_weights(g, 5), shape_error) << "5 does not divide 32 x 48";
    EXPECT_THROW(masking::patch_weights(g, 0), shape_error);
    EXPECT_THROW(masking::patch_weights(tensor<float, B>(shape{32, 48}), 16), shape_error) << "not N x H x W";
    EXPECT_NO_THROW(masking::patch_weights(g, 16));

    for (float bad : {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> host(2 * 32 * 48, 0.5f);
        host[1000] = bad;
        const auto t = tensor<float, B>::from_host(host, shape{2, 32, 48});
        EXPECT_THROW(masking::patch_weights(t, 16), value_error) << bad;
        // A negative pixel must not hide inside a positive patch sum.
        std::vector<float> w(2 * 6, 1.0f);
        w[7] = bad;
        const auto tw = tensor<float, B>::from_host(w, shape{2, 6});
        EXPECT_THROW(masking::anatomy_guided<>{}.sample(tw, {}), value_error) << bad;
        EXPECT_THROW(masking::patch_distribution(tw), value_error) << bad;
    }

    const tensor<float, B> w(shape{4, 16}, 1.0f);
    for (double r : {0.0, 1.0, -0.25, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
        EXPECT_THROW((masking::anatomy_guided<>{r}.sample(w, {})), value_error) << r;
        EXPECT_THROW((masking::random{r}.sample(w, {})), value_error) << r;
    }
    EXPECT_THROW(masking::random{}.sample(tensor<float, B>(shape{4, 4, 4}), {}), shape_error);
    EXPECT_THROW(masking::random{}.sample<B>(0, 16, {}), shape_error);
    EXPECT_THROW(masking::random{}.sample<B>(4, 16, {std::uint64_t(1) << 40, progress::from_ratio(1.0)}), value_error);
    EXPECT_THROW(masking::anatomy_guided<>{}.sample(w, {std::uint64_t(1) << 40, progress::from_ratio(1.0)}), value_error);

    // Schedules and progress.
    EXPECT_THROW(progress::from_epoch(0, 0), value_error);
    EXPECT_THROW(progress::from_epoch(0, -3), value_error);
    EXPECT_THROW(progress::from_epoch(5, 5), value_error);
    EXPECT_THROW(progress::from_epoch(-1, 5), value_error);
    EXPECT_THROW(progress::from_step(0, 0), value_error);
    EXPECT_THROW(progress::from_ratio(1.5), value_error);
    EXPECT_THROW((masking::schedule::linear{0.0, 1.5}(0, 10)), value_error);
    EXPECT_THROW((masking::schedule::constant{-0.1}(0, 10)), value_error);
    EXPECT_THROW((masking::schedule::linear{}(0, 0)), value_error);
    EXPECT_THROW((masking::anatomy_guided<masking::schedule::constant>{0.5, {2.0}}.sample(w, {})), value_error);
}

TEST(MaskingSchedule, LinearConstantCosine) {
    const masking::schedule::linear lin{};  // released: 0 -> 0.5
    EXPECT_DOUBLE_EQ(lin(0, 100), 0.005);
    EXPECT_DOUBLE_EQ(lin(49, 100), 0.25);
    EXPECT_DOUBLE_EQ(lin(99, 100), 0.5);
    const masking::schedule::linear lin2{0.2, 0.8};
    EXPECT_DOUBLE_EQ(lin2(3, 4), 0.8);
    EXPECT_DOUBLE_EQ(lin2(progress::from_ratio(0.5)), 0.5);
    EXPECT_DOUBLE_EQ((masking::schedule::constant{0.3}(7, 10)), 0.3);
    const masking::schedule::cosine cos{0.0, 0.5};
    EXPECT_NEAR(cos(progress::from_ratio(0.0)), 0.0, 1e-15);
    EXPECT_NEAR(cos(progress::from_ratio(0.5)), 0.25, 1e-15);
    EXPECT_DOUBLE_EQ(cos(9, 10), 0.5);
    double last = -1;
    for (int e = 0; e < 20; ++e) {
        EXPECT_GT(cos(e, 20), last);
        last = cos(e, 20);
    }
    // Per-step and per-epoch progress meet at the ends of epochs.
    EXPECT_DOUBLE_EQ(lin(progress::from_step(299, 1000)), lin(progress::from_epoch(2, 10)));
    // Counts as the released code: L = 196, ratio 0.75 -> keep 49, mask 147, beta 0.5 -> 73.
    const auto c = guided_counts::of(196, 0.75, 0.5);
    EXPECT_EQ(c.len_keep, 49);
    EXPECT_EQ(c.num_mask, 147);
    EXPECT_EQ(c.target, 73);
    EXPECT_EQ(guided_counts::of(196, 0.5, 0.5).target, 49);
}

// ---- structure: counts, disjointness, inverse, the algorithm row by row -------------------------

TYPED_TEST(Masking, GuidedRowsFollowTheReleasedAlgorithm) {
    using B = TypeParam;
    const index_t n = 60, l = 49;
    const auto w = mixed_weights(n, l, 7);
    const auto weights = tensor<float, B>::from_host(w, shape{n, l});
    for (double ratio : {0.75, 0.5, 0.1}) {
        for (int epoch : {0, 39, 99}) {
            const masking::anatomy_guided<> policy{ratio, {0.0, 0.5}, 1234};
            const step_info info{static_cast<std::uint64_t>(epoch) * 17 + 3, progress::from_epoch(epoch, 100)};
            const auto h = to_host(policy.sample(weights, info));
            expect_consistent(h);
            const auto c = guided_counts::of(l, ratio, policy.beta(info.at));
            for (index_t i = 0; i < n; ++i) {
                const std::vector<double> row(w.begin() + i * l, w.begin() + (i + 1) * l);
                const auto ref = reference_row(row, c.len_keep, c.target, 1234, info.step, i);
                ASSERT_EQ(std::vector<i64>(h.row(i), h.row(i) + l), ref)
                    << "row " << i << " ratio " << ratio << " epoch " << epoch;
            }
        }
    }
}

TYPED_TEST(Masking, GuidedCountsWithFewPositivePatches) {
    using B = TypeParam;
    // L = 16, ratio 0.5: 8 masked, beta 0.75 -> target 6. Rows with 0, 1, 3, 6 and 16 positive patches.
    const index_t l = 16;
    const std::vector<index_t> positives{0, 1, 3, 6, 16};
    const auto n = static_cast<index_t>(positives.size());
    std::vector<float> w(static_cast<std::size_t>(n * l), 0.0f);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < positives[static_cast<std::size_t>(i)]; ++j) w[static_cast<std::size_t>(i * l + (j * 5) % l)] = 1.0f + float(j);
    const auto weights = tensor<float, B>::from_host(w, shape{n, l});
    const masking::anatomy_guided<masking::schedule::constant> policy{0.5, {0.75}, 42};
    for (std::uint64_t step = 0; step < 20; ++step) {
        const auto h = to_host(policy.sample(weights, {step, progress::from_ratio(1.0)}));
        expect_consistent(h);
        for (index_t i = 0; i < n; ++i) {
            const index_t pos = positives[static_cast<std::size_t>(i)], guided = std::min<index_t>(6, pos);
            // The guided block (positions len_keep .. len_keep + guided) holds positive patches only,
            index_t masked_positive = 0;
            for (index_t k = 8; k < 8 + guided; ++k) ASSERT_GT(w[static_cast<std::size_t>(i * l + h.row(i)[k])], 0.0f);
            for (index_t j = 0; j < l; ++j)
                masked_positive += (w[static_cast<std::size_t>(i * l + j)] > 0 && h.mask[static_cast<std::size_t>(i * l + j)] == 1.0f);
            // and every positive patch is masked when there are no more of them than the target.
            if (pos <= 6) {
                ASSERT_EQ(masked_positive, pos) << "row " << i;
            } else {
                ASSERT_GE(masked_positive, guided);
            }
            // Visible patches of rows with weight are in ascending order (the released ordering).
            if (pos > 0) {
                ASSERT_TRUE(std::is_sorted(h.row(i), h.row(i) + 8));
            }
        }
    }
}

TYPED_TEST(Masking, AllZeroGuidanceIsRandomMasking) {
    using B = TypeParam;
    const index_t n = 33, l = 196;
    const tensor<float, B> zero(shape{n, l});
    const step_info info{77, progress::from_epoch(3, 10)};
    const auto guided = to_host(masking::anatomy_guided<>{0.75, {}, 5}.sample(zero, info));
    const auto random = to_host(masking::random{0.75, 5}.sample(zero, info));
    expect_consistent(random);
    EXPECT_EQ(guided.shuffle, random.shuffle);
    EXPECT_EQ(guided.restore, random.restore);
    EXPECT_EQ(guided.mask, random.mask);
    // Another step or seed gives other masks.
    EXPECT_NE(to_host(masking::random{0.75, 5}.sample(zero, {78, info.at})).shuffle, random.shuffle);
    EXPECT_NE(to_host(masking::random{0.75, 6}.sample(zero, info)).shuffle, random.shuffle);
}

// ---- statistics ----------------------------------------------------------------------------------

/// Exact probabilities of every ordered draw of k items by successive sampling without replacement
/// proportional to w (zero weights never drawn), by enumeration.
std::map<std::vector<i64>, double> successive_sampling(const std::vector<double>& w, int k) {
    std::map<std::vector<i64>, double> out;
    std::vector<i64> seq;
    std::function<void(double, double)> rec = [&](double prob, double left) {
        if (static_cast<int>(seq.size()) == k) {
            out[seq] = prob;
            return;
        }
        for (std::size_t j = 0; j < w.size(); ++j) {
            if (w[j] <= 0 || std::find(seq.begin(), seq.end(), i64(j)) != seq.end()) continue;
            seq.push_back(i64(j));
            rec(prob * w[j] / left, left - w[j]);
            seq.pop_back();
        }
    };
    rec(1.0, std::accumulate(w.begin(), w.end(), 0.0));
    return out;
}

double z_score(double count, double trials, double p) {
    return (count - trials * p) / std::sqrt(trials * p * (1 - p));
}

TYPED_TEST(Masking, GuidedDrawsAreSuccessiveSampling) {
    using B = TypeParam;
    // L = 8, ratio 0.5: 4 masked; beta 0.75 -> 3 guided of 5 positive patches, 1 uniform of the rest.
    const std::vector<double> w{5, 0, 3, 2, 0, 1, 0.5, 0};
    const index_t l = 8, rows = 10000, steps = 10, k = 3;
    std::vector<float> host(static_cast<std::size_t>(rows * l));
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < l; ++j) host[static_cast<std::size_t>(i * l + j)] = float(w[static_cast<std::size_t>(j)]);
    const auto weights = tensor<float, B>::from_host(host, shape{rows, l});
    const masking::anatomy_guided<masking::schedule::constant> policy{0.5, {0.75}, 2026};

    std::map<std::vector<i64>, double> seq_count;
    std::vector<double> guided_incl(static_cast<std::size_t>(l)), masked_incl(static_cast<std::size_t>(l));
    for (index_t s = 0; s < steps; ++s) {
        const auto h = to_host(policy.sample(weights, {static_cast<std::uint64_t>(s), progress::from_ratio(1.0)}));
        ASSERT_EQ(h.len_keep, 4);
        for (index_t i = 0; i < rows; ++i) {
            const i64* r = h.row(i);
            const std::vector<i64> seq(r + 4, r + 4 + k);  // the guided block, in draw order
            seq_count[seq] += 1;
            for (i64 j : seq) guided_incl[static_cast<std::size_t>(j)] += 1;
            for (index_t q = 4; q < l; ++q) masked_incl[static_cast<std::size_t>(r[q])] += 1;
        }
    }
    const double trials = double(rows * steps);
    const auto exact = successive_sampling(w, k);
    ASSERT_EQ(exact.size(), 60u);
    // Ordered draws: a multinomial over 60 cells; chi-square with 59 degrees of freedom.
    double chi2 = 0;
    for (const auto& [seq, p] : exact) {
        const double e = trials * p, o = seq_count.count(seq) ? seq_count[seq] : 0.0;
        chi2 += (o - e) * (o - e) / e;
    }
    for (const auto& [seq, c] : seq_count) ASSERT_TRUE(exact.count(seq)) << "impossible draw observed";
    EXPECT_LT(chi2, 98.32) << "chi2.ppf(0.999, 59)";

    // Inclusion: guided, and masked overall (guided or one uniform draw of the 5 others).
    std::vector<double> pi(static_cast<std::size_t>(l), 0.0);
    for (const auto& [seq, p] : exact)
        for (i64 j : seq) pi[static_cast<std::size_t>(j)] += p;
    for (index_t j = 0; j < l; ++j) {
        const double pg = pi[static_cast<std::size_t>(j)];
        const double pm = pg + (1 - pg) * 1.0 / 5.0;
        if (w[static_cast<std::size_t>(j)] == 0) {
            EXPECT_EQ(guided_incl[static_cast<std::size_t>(j)], 0.0);
        } else {
            EXPECT_LT(std::abs(z_score(guided_incl[static_cast<std::size_t>(j)], trials, pg)), 4.5) << "patch " << j;
        }
        EXPECT_LT(std::abs(z_score(masked_incl[static_cast<std::size_t>(j)], trials, pm)), 4.5) << "patch " << j;
    }
}

TYPED_TEST(Masking, RandomMaskingIsUniform) {
    using B = TypeParam;
    // L = 6, ratio 0.5: the whole order ids_shuffle is a uniform permutation (720 cells).
    const index_t l = 6, rows = 12000, steps = 6;
    const masking::random policy{0.5, 99};
    std::map<std::vector<i64>, double> perm_count;
    for (index_t s = 0; s < steps; ++s) {
        const auto h = to_host(policy.sample<B>(rows, l, {static_cast<std::uint64_t>(s), progress::from_ratio(1.0)}));
        expect_consistent(h);
        for (index_t i = 0; i < rows; ++i) perm_count[std::vector<i64>(h.row(i), h.row(i) + l)] += 1;
    }
    ASSERT_EQ(perm_count.size(), 720u);
    const double e = double(rows * steps) / 720.0;
    double chi2 = 0;
    for (const auto& [perm, o] : perm_count) chi2 += (o - e) * (o - e) / e;
    EXPECT_LT(chi2, 841.9) << "chi2.ppf(0.999, 719)";
}

TYPED_TEST(Masking, UniformRemainderWhenPositivesRunOut) {
    using B = TypeParam;
    // L = 8, ratio 0.5: 4 masked, beta 1 -> target 4 but only 2 positive patches: both always
    // masked (guided), the other 2 masked patches uniform among the 6 zero-weight ones.
    const std::vector<float> w{0, 2, 0, 0, 1, 0, 0, 0};
    const index_t l = 8, rows = 20000;
    std::vector<float> host(static_cast<std::size_t>(rows * l));
    for (index_t i = 0; i < rows; ++i) std::copy(w.begin(), w.end(), host.begin() + i * l);
    const auto weights = tensor<float, B>::from_host(host, shape{rows, l});
    const masking::anatomy_guided<masking::schedule::constant> policy{0.5, {1.0}, 3};
    const auto h = to_host(policy.sample(weights, {5, progress::from_ratio(1.0)}));
    expect_consistent(h);
    std::map<std::pair<i64, i64>, double> pairs;
    double first_is_1 = 0;
    for (index_t i = 0; i < rows; ++i) {
        const i64* r = h.row(i);
        ASSERT_TRUE((r[4] == 1 && r[5] == 4) || (r[4] == 4 && r[5] == 1)) << "row " << i;
        first_is_1 += r[4] == 1;
        pairs[{std::min(r[6], r[7]), std::max(r[6], r[7])}] += 1;
    }
    EXPECT_LT(std::abs(z_score(first_is_1, double(rows), 2.0 / 3.0)), 4.5);
    ASSERT_EQ(pairs.size(), 15u) << "every pair of the 6 zero-weight patches";
    double chi2 = 0;
    for (const auto& [pr, o] : pairs) {
        const double e = double(rows) / 15.0;
        chi2 += (o - e) * (o - e) / e;
    }
    EXPECT_LT(chi2, 36.12) << "chi2.ppf(0.999, 14)";
}

// ---- the same masks everywhere -------------------------------------------------------------------

#if !VASOMIM_HAS_CUDA
template <class B>
std::vector<i64> guided_shuffle(const std::vector<float>& w, index_t n, index_t l) {
    const auto weights = tensor<float, B>::from_host(w, shape{n, l});
    const masking::anatomy_guided<> policy{0.75, {0.0, 0.5}, 31337};
    return policy.sample(weights, {123456, progress::from_epoch(60, 100)}).ids_shuffle.to_host();
}
template <class B>
std::vector<i64> random_shuffle(index_t n, index_t l) {
    return masking::random{0.75, 31337}.sample<B>(n, l, {123456, progress::from_ratio(1.0)}).ids_shuffle.to_host();
}

TEST(MaskingDeterminism, IdenticalAcrossBackendsAndThreadCounts) {
    const index_t n = 256, l = 196;
    const auto w = mixed_weights(n, l, 11);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto ref = guided_shuffle<backend::cpu>(w, n, l);
    const auto ref_random = random_shuffle<backend::cpu>(n, l);
    EXPECT_EQ(guided_shuffle<backend::thrust_omp>(w, n, l), ref);
    omp_set_num_threads(2);
    EXPECT_EQ(guided_shuffle<backend::cpu>(w, n, l), ref) << "cpu, 2 threads";
    EXPECT_EQ(guided_shuffle<backend::thrust_omp>(w, n, l), ref) << "thrust-omp, 2 threads";
    EXPECT_EQ(guided_shuffle<backend::thrust_cpp>(w, n, l), ref) << "thrust-cpp";
    EXPECT_EQ(random_shuffle<backend::thrust_omp>(n, l), ref_random);
    EXPECT_EQ(random_shuffle<backend::thrust_cpp>(n, l), ref_random);
    omp_set_num_threads(threads);
    EXPECT_NE(guided_shuffle<backend::cpu>(w, n, l), ref_random) << "guidance changes the masks";
}
#endif

}  // namespace
