// BCEWithLogits, Dice, BCE+Dice and the anatomical consistency loss: closed forms, finite-difference
// gradients (double) on every backend, guidance maps, and PyTorch parity of L_cons and dL/dP.
#include "vasomim/core/config.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "nn/gradcheck.hpp"
#include "nn/unext_fixture.hpp"
#include "test_backends.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/loss/consistency.hpp"
#include "vasomim/model/guidance.hpp"
#include "vasomim/train/segmentor_training.hpp"

#if !VASOMIM_HAS_CUDA
#include "vasomim/io/npy.hpp"
#endif

namespace {

using namespace vasomim;

template <class B>
class SegmentationLoss : public ::testing::Test {};
TYPED_TEST_SUITE(SegmentationLoss, vasomim::test::all_backends, vasomim::test::backend_name);

template <class B>
tensor<double, B> up(const std::vector<double>& v) {
    return tensor<double, B>::from_host(v, shape{static_cast<index_t>(v.size())});
}

TYPED_TEST(SegmentationLoss, BceDiceValuesAndGradients) {
    using B = TypeParam;
    const index_t batch = 2, per = 9, n = batch * per;
    std::vector<double> t(n);
    for (index_t i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 7 % 3 == 0) ? 1.0 : 0.0;
    auto tt = up<B>(t);
    tensor<double, B> scratch(shape{n + 3 * batch});
    // closed forms at one point
    const auto z0 = test::random_vector(static_cast<std::size_t>(n), 3, 2.0);
    auto tz = up<B>(z0);
    double bce = 0, dice = 0;
    for (index_t i = 0; i < n; ++i) {
        const double z = z0[i], y = t[i];
        bce += std::log(1 + std::exp(-std::abs(z))) + std::max(z, 0.0) - z * y;
    }
    for (index_t b = 0; b < batch; ++b) {
        double in = 0, sd = 0;
        for (index_t k = 0; k < per; ++k) {
            const double p = 1 / (1 + std::exp(-z0[b * per + k]));
            in += p * t[b * per + k];
            sd += p + t[b * per + k];
        }
        dice += (2 * in + 1e-5) / (sd + 1e-5) / batch;
    }
    EXPECT_NEAR(loss::bce_with_logits<B>(tz.data(), tt.data(), n, scratch.data()), bce / n, 1e-12);
    EXPECT_NEAR(loss::dice_loss<B>(tz.data(), tt.data(), batch, per, scratch.data()), 1 - dice, 1e-12);
    EXPECT_NEAR(loss::bce_dice_loss<B>(tz.data(), tt.data(), batch, per, scratch.data()), 0.5 * bce / n + 0.5 * (1 - dice),
                1e-12);
    auto f = [&](const test::host_tensors& x, test::host_tensors* g) {
        auto z = up<B>(x[0]);
        tensor<double, B> dz(shape{n});
        const double l = loss::bce_dice_loss<B>(z.data(), tt.data(), batch, per, scratch.data(), g ? dz.data() : nullptr);
        if (g) *g = {dz.to_host()};
        return l;
    };
    test::check_gradients(f, {z0}, {0}, {"logits"});
    // a perfect prediction has Dice ~ 1 and hard Dice 1
    std::vector<double> zp(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) zp[i] = t[i] > 0 ? 30 : -30;
    auto tzp = up<B>(zp);
    EXPECT_NEAR(loss::dice_loss<B>(tzp.data(), tt.data(), batch, per, scratch.data()), 0.0, 1e-6);
    EXPECT_DOUBLE_EQ(loss::hard_dice<B>(tzp.data(), tt.data(), n, scratch.data()), 1.0);
}

TYPED_TEST(SegmentationLoss, GlobalBceDiceOfTwoHalvesIsTheWholeBatchs) {
    // the released loss (one Dice over the batch) with the batch split between two "ranks": each
    // half's cross_rank_sum adds the other half's sums (recorded first), as an allreduce would
    using B = TypeParam;
    const index_t n = 24, half = n / 2;
    std::vector<double> t(n);
    for (index_t i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 5 % 3 == 0) ? 1.0 : 0.0;
    const auto z0 = test::random_vector(static_cast<std::size_t>(n), 4, 2.0);
    auto tz = up<B>(z0), tt = up<B>(t);
    tensor<double, B> scratch(shape{n + 3}), dz(shape{n});
    const double whole = loss::bce_dice_loss<B>(tz.data(), tt.data(), 1, n, scratch.data(), dz.data());
    const auto dwhole = dz.to_host();
    // one process: the same loss
    EXPECT_NEAR(loss::global_bce_dice_loss<B>(tz.data(), tt.data(), n, scratch.data(), dz.data(), {}), whole, 1e-12);
    std::vector<double> sums[2];
    auto part = [&](int r, const cross_rank_sum& sum, tensor<double, B>& g) {
        return loss::global_bce_dice_loss<B>(tz.data() + r * half, tt.data() + r * half, half, scratch.data(), g.data(), sum);
    };
    tensor<double, B> g0(shape{half}), g1(shape{half});
    for (int r : {0, 1}) part(r, [&](double* v, index_t k) { sums[r].assign(v, v + k); }, g0);
    auto add = [&](int other) {
        return [&, other](double* v, index_t k) {
            for (index_t i = 0; i < k; ++i) v[i] += sums[other][static_cast<std::size_t>(i)];
        };
    };
    EXPECT_NEAR(part(0, add(1), g0), whole, 1e-12);
    EXPECT_NEAR(part(1, add(0), g1), whole, 1e-12);
    const auto d0 = g0.to_host(), d1 = g1.to_host();
    for (index_t i = 0; i < half; ++i) {
        EXPECT_NEAR(d0[static_cast<std::size_t>(i)], dwhole[static_cast<std::size_t>(i)], 1e-15) << i;
        EXPECT_NEAR(d1[static_cast<std::size_t>(i)], dwhole[static_cast<std::size_t>(half + i)], 1e-15) << i;
    }
    // hard Dice: the whole batch's too
    const double hard = loss::hard_dice<B>(tz.data(), tt.data(), n, scratch.data());
    std::vector<double> hs[2];
    for (int r : {0, 1})
        loss::hard_dice<B>(tz.data() + r * half, tt.data() + r * half, half, scratch.data(),
                           [&](double* v, index_t k) { hs[r].assign(v, v + k); });
    EXPECT_DOUBLE_EQ(loss::hard_dice<B>(tz.data(), tt.data(), half, scratch.data(),
                                        [&](double* v, index_t) {
                                            v[0] += hs[1][0];
                                            v[1] += hs[1][1];
                                        }),
                     hard);
}

TYPED_TEST(SegmentationLoss, ConsistencyGradientWithRespectToPredictions) {
    using B = TypeParam;
    const loss::consistency_dims d{1, 3, 32, 32, 16};
    const index_t np = d.n * d.patches() * d.patch_size();
    const auto img = test::random_vector(static_cast<std::size_t>(d.n * d.c * d.h * d.w), 21);
    auto timg = up<B>(img);
    // the released 3-channel segmentor (S sees I_hat's channels) and the gray configuration
    for (const index_t channels : {index_t(3), index_t(1)}) {
        nn::unext<B, double> s(nn::unext_config{.in_channels = channels});
        s.init(5);
        loss::consistency_loss<B, double> c(s);
        auto f = [&](const test::host_tensors& x, test::host_tensors* g) {
            auto p = up<B>(x[0]);
            tensor<double, B> dp(shape{np});
            const double l = c(p.data(), timg.data(), d, g ? dp.data() : nullptr);
            if (g) *g = {dp.to_host()};
            return l;
        };
        SCOPED_TRACE("segmentor with " + std::to_string(channels) + " input channel(s)");
        test::check_gradients(f, {test::random_vector(static_cast<std::size_t>(np), 22, 3.0)}, {0}, {"predicted patches"},
                              10, 1e-4, 1e-3);
    }
    nn::unext<B, double> seg;
    seg.init(5);
    loss::consistency_loss<B, double> cons(seg);
    // a segmentor for neither the images' channel count nor 1 is refused
    nn::unext<B, double> two(nn::unext_config{.in_channels = 2});
    loss::consistency_loss<B, double> wrong(two);
    tensor<double, B> logits(shape{d.n * d.h * d.w});
    EXPECT_THROW(wrong.segment(logits.data(), timg.data(), d), shape_error);
    // predicting the normalised target itself gives I_hat == I, so L_cons is the entropy floor:
    // BCE(z, sigmoid(z)) = mean of the binary entropy of sigmoid(S(I))
    std::vector<double> exact(static_cast<std::size_t>(np));
    const index_t p = d.p, L = d.patches(), ps = d.patch_size();
    for (index_t l = 0; l < L; ++l) {
        double mu = 0, var = 0;
        std::vector<double> v;
        for (index_t k = 0; k < ps; ++k) {
            const index_t i = k / (p * d.c), j = (k / d.c) % p, ch = k % d.c;
            v.push_back(img[static_cast<std::size_t>((ch * d.h + (l / 2) * p + i) * d.w + (l % 2) * p + j)]);
            mu += v.back() / ps;
        }
        for (double e : v) var += (e - mu) * (e - mu) / (ps - 1);
        for (index_t k = 0; k < ps; ++k) exact[static_cast<std::size_t>(l * ps + k)] = (v[k] - mu) / std::sqrt(var + 1e-6);
    }
    auto te = up<B>(exact);
    tensor<double, B> dp(shape{np});
    const double l = cons(te.data(), timg.data(), d, dp.data());
    // gradient vanishes at the target (sigmoid(z) - t == 0 everywhere)
    double gmax = 0;
    for (double g : dp.to_host()) gmax = std::max(gmax, std::abs(g));
    EXPECT_LT(gmax, 1e-12);
    EXPECT_GT(l, 0.0);
}

// The released schedule: LambdaLR((1 - epoch / epochs)^0.9) stepped after each epoch.
TYPED_TEST(SegmentationLoss, SegmentorLearningRateStepsPerEpochAsReleased) {
    using B = TypeParam;
    nn::unext<B, float> net;
    train::segmentor_trainer<B> per_epoch(net, {.iterations = 10, .lr = 1e-3, .iterations_per_epoch = 4});
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(per_epoch.lr_at(i), 1e-3);
    for (std::int64_t i = 4; i < 8; ++i) EXPECT_DOUBLE_EQ(per_epoch.lr_at(i), 1e-3 * std::pow(2.0 / 3.0, 0.9));
    for (std::int64_t i = 8; i < 10; ++i) EXPECT_DOUBLE_EQ(per_epoch.lr_at(i), 1e-3 * std::pow(1.0 / 3.0, 0.9));
    train::segmentor_trainer<B> per_iteration(net, {.iterations = 10, .lr = 1e-3});
    EXPECT_DOUBLE_EQ(per_iteration.lr_at(5), 1e-3 * std::pow(0.5, 0.9));
}

TYPED_TEST(SegmentationLoss, GuidanceMaps) {
    using B = TypeParam;
    auto mask = up<B>({1, 0, 1, 0}), logits = up<B>({0, 0, 1000, -1000});
    tensor<double, B> g(shape{4});
    guidance::guidance_map<guidance::filter_and_segmentor, B>(g.data(), mask.data(), logits.data(), 4);
    EXPECT_EQ(g.to_host(), (std::vector<double>{0.75, 0.25, 1.0, 0.0}));
    guidance::guidance_map<guidance::filter, B>(g.data(), mask.data(), logits.data(), 4);
    EXPECT_EQ(g.to_host(), (std::vector<double>{1, 0, 1, 0}));
    guidance::guidance_map<guidance::segmentor, B>(g.data(), mask.data(), logits.data(), 4);
    EXPECT_EQ(g.to_host(), (std::vector<double>{0.5, 0.5, 1.0, 0.0}));
    guidance::guidance_map<guidance::none, B>(g.data(), static_cast<const double*>(nullptr),
                                              static_cast<const double*>(nullptr), 4);
    EXPECT_EQ(g.to_host(), (std::vector<double>{1, 1, 1, 1}));
    static_assert(guidance::has_consistency<guidance::filter_and_segmentor> && !guidance::has_consistency<guidance::filter>);
}

#if !VASOMIM_HAS_CUDA
std::vector<float> load(const std::string& f) {
    const auto a = io::read_npy<float>(std::string(VASOMIM_TEST_DATA_DIR) + "/segmentor/" + f + ".npy");
    return std::vector<float>(a.begin(), a.end());
}

TYPED_TEST(SegmentationLoss, ConsistencyMatchesPyTorch) {
    using B = TypeParam;
    nn::unext<B, float> seg;
    const auto host = test::unext_fixture_parameters<float>(seg.table());
    seg.parameters() = tensor<float, B>::from_host(host, shape{seg.table().size()});
    loss::consistency_loss<B, float> cons(seg);
    const auto img = load("cons_image"), pred = load("cons_pred"), want = load("cons_dpred");
    const loss::consistency_dims d{1, 3, 64, 64, 16};
    auto ti = tensor<float, B>::from_host(img, shape{static_cast<index_t>(img.size())});
    auto tp = tensor<float, B>::from_host(pred, shape{static_cast<index_t>(pred.size())});
    tensor<float, B> dp(shape{static_cast<index_t>(pred.size())});
    const float l = cons(tp.data(), ti.data(), d, dp.data());
    EXPECT_NEAR(l, load("cons_loss")[0], 1e-4 * load("cons_loss")[0]);
    const auto got = dp.to_host();
    double scale = 0;
    for (float v : want) scale = std::max(scale, static_cast<double>(std::abs(v)));
    ASSERT_GT(scale, 0.0);
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4 * scale) << "dL/dP[" << i << "]";
}
#endif

}  // namespace
