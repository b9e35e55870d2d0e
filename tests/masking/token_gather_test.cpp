// Masking: the encoder's visible-token gather and the decoder's unshuffle, forward against their
// MAE definitions and backward against central finite differences (double).
#include "vasomim/core/config.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/masking.hpp"

namespace {

using namespace vasomim;
using i64 = std::int64_t;

template <class B>
class MaskingTokens : public ::testing::Test {};
TYPED_TEST_SUITE(MaskingTokens, vasomim::test::all_backends, vasomim::test::backend_name);

std::vector<double> host_values(std::size_t n, std::uint64_t seed) {
    std::vector<double> v(n);
    const philox g(seed, 4);
    for (std::size_t i = 0; i < n; ++i) v[i] = g.uniform_double(i) * 2.0 - 1.0;
    return v;
}

template <class B>
masking::patch_mask<B> some_masks(index_t n, index_t l) {
    // Rows of different weight patterns so that ids_keep is not the same in every row.
    std::vector<float> w(static_cast<std::size_t>(n * l), 0.0f);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < l; ++j) w[static_cast<std::size_t>(i * l + j)] = float((i + 3 * j) % 4);
    const auto weights = tensor<float, B>::from_host(w, shape{n, l});
    return masking::anatomy_guided<masking::schedule::constant>{0.5, {0.5}, 8}.sample(
        weights, {2, masking::progress::from_ratio(1.0)});
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

TYPED_TEST(MaskingTokens, GatherVisibleForwardAndBackward) {
    using B = TypeParam;
    const index_t n = 3, l = 10, d = 4;
    const auto m = some_masks<B>(n, l);
    const index_t k = m.len_keep;
    const auto xh = host_values(static_cast<std::size_t>(n * l * d), 1);
    const auto x = tensor<double, B>::from_host(xh, shape{n, l, d});
    const auto out = masking::gather_visible(x, m.ids_keep);
    ASSERT_EQ(out.shape(), (shape{n, k, d}));
    const auto oh = out.to_host();
    const auto keep = m.ids_keep.to_host();
    for (index_t i = 0; i < n; ++i)
        for (index_t q = 0; q < k; ++q)
            for (index_t c = 0; c < d; ++c)
                ASSERT_EQ(oh[static_cast<std::size_t>((i * k + q) * d + c)],
                          xh[static_cast<std::size_t>((i * l + keep[static_cast<std::size_t>(i * k + q)]) * d + c)]);

    // Backward: loss = <gather(x), R>; central differences in every input coordinate.
    const auto rh = host_values(static_cast<std::size_t>(n * k * d), 2);
    const auto r = tensor<double, B>::from_host(rh, shape{n, k, d});
    const auto grad = masking::gather_visible_backward(r, m.ids_keep, l).to_host();
    ASSERT_EQ(grad.size(), xh.size());
    const double eps = 1e-4;
    for (std::size_t e = 0; e < xh.size(); ++e) {
        auto xp = xh, xm = xh;
        xp[e] += eps;
        xm[e] -= eps;
        const double fp = dot(masking::gather_visible(tensor<double, B>::from_host(xp, shape{n, l, d}), m.ids_keep).to_host(), rh);
        const double fm = dot(masking::gather_visible(tensor<double, B>::from_host(xm, shape{n, l, d}), m.ids_keep).to_host(), rh);
        ASSERT_NEAR(grad[e], (fp - fm) / (2 * eps), 1e-9) << "element " << e;
    }

    tensor<double, B> other_batch(shape{n + 1, l, d});
    EXPECT_THROW(masking::gather_visible(other_batch, m.ids_keep), shape_error) << "mismatched batch sizes";
    EXPECT_THROW(masking::gather_visible_backward(r, m.ids_keep, k - 1), shape_error);
}

TYPED_TEST(MaskingTokens, UnshuffleForwardAndBackward) {
    using B = TypeParam;
    const index_t n = 3, l = 10, d = 4;
    const auto m = some_masks<B>(n, l);
    const index_t k = m.len_keep;
    const auto xh = host_values(static_cast<std::size_t>(n * k * d), 3);
    const auto th = host_values(static_cast<std::size_t>(d), 4);
    const auto x = tensor<double, B>::from_host(xh, shape{n, k, d});
    const auto tok = tensor<double, B>::from_host(th, shape{d});
    const auto out = masking::unshuffle(x, tok, m.ids_restore);
    ASSERT_EQ(out.shape(), (shape{n, l, d}));

    // MAE: x_ = cat([x, mask_tokens], 1); gather(x_, 1, ids_restore) -- and unshuffle undoes the
    // encoder's gather at the visible patches.
    const auto oh = out.to_host();
    const auto restore = m.ids_restore.to_host();
    const auto mask = m.mask.to_host();
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < l; ++j)
            for (index_t c = 0; c < d; ++c) {
                const i64 s = restore[static_cast<std::size_t>(i * l + j)];
                const double expect = s < k ? xh[static_cast<std::size_t>((i * k + s) * d + c)] : th[static_cast<std::size_t>(c)];
                ASSERT_EQ(oh[static_cast<std::size_t>((i * l + j) * d + c)], expect);
                ASSERT_EQ(s >= k, mask[static_cast<std::size_t>(i * l + j)] == 1.0f);
            }
    const auto round = masking::gather_visible(out, m.ids_keep).to_host();
    EXPECT_EQ(round, xh) << "gather_visible(unshuffle(x)) == x";

    // Backward against central differences in x and in the mask token.
    const auto rh = host_values(static_cast<std::size_t>(n * l * d), 5);
    const auto r = tensor<double, B>::from_host(rh, shape{n, l, d});
    const auto grads = masking::unshuffle_backward(r, m.ids_restore, k);
    const auto gx = grads.x.to_host(), gt = grads.mask_token.to_host();
    ASSERT_EQ(gx.size(), xh.size());
    ASSERT_EQ(gt.size(), th.size());
    auto loss = [&](const std::vector<double>& xv, const std::vector<double>& tv) {
        return dot(masking::unshuffle(tensor<double, B>::from_host(xv, shape{n, k, d}),
                                      tensor<double, B>::from_host(tv, shape{d}), m.ids_restore)
                       .to_host(),
                   rh);
    };
    const double eps = 1e-4;
    for (std::size_t e = 0; e < xh.size(); ++e) {
        auto xp = xh, xm = xh;
        xp[e] += eps;
        xm[e] -= eps;
        ASSERT_NEAR(gx[e], (loss(xp, th) - loss(xm, th)) / (2 * eps), 1e-9) << "x element " << e;
    }
    for (std::size_t e = 0; e < th.size(); ++e) {
        auto tp = th, tm = th;
        tp[e] += eps;
        tm[e] -= eps;
        ASSERT_NEAR(gt[e], (loss(xh, tp) - loss(xh, tm)) / (2 * eps), 1e-9) << "mask token element " << e;
    }

    EXPECT_THROW(masking::unshuffle(x, tensor<double, B>(shape{d + 1}), m.ids_restore), shape_error);
    tensor<double, B> other_batch(shape{n + 1, k, d});
    EXPECT_THROW(masking::unshuffle(other_batch, tok, m.ids_restore), shape_error) << "mismatched batch sizes";
    EXPECT_THROW(masking::unshuffle_backward(r, m.ids_restore, l + 1), shape_error);
}

TYPED_TEST(MaskingTokens, ApplySamplesAndGathers) {
    using B = TypeParam;
    const index_t n = 4, l = 16, d = 3;
    const auto xh = host_values(static_cast<std::size_t>(n * l * d), 6);
    const auto x = tensor<double, B>::from_host(xh, shape{n, l, d});
    std::vector<float> wh(static_cast<std::size_t>(n * l), 0.0f);
    for (index_t j = 0; j < l; j += 3) wh[static_cast<std::size_t>(j)] = 1.0f;
    const auto w = tensor<float, B>::from_host(wh, shape{n, l});
    const masking::step_info info{9, masking::progress::from_epoch(4, 5)};
    const masking::anatomy_guided<> guided{0.75, {}, 1};
    const auto out = masking::apply(guided, x, w, info);
    const auto ref = guided.sample(w, info);
    EXPECT_EQ(out.masks.ids_shuffle.to_host(), ref.ids_shuffle.to_host());
    EXPECT_EQ(out.visible.to_host(), masking::gather_visible(x, ref.ids_keep).to_host());
    EXPECT_EQ(out.visible.shape(), (shape{n, 4, d}));
    const auto rnd = masking::apply(masking::random{0.5, 1}, x, w, info);
    EXPECT_EQ(rnd.visible.shape(), (shape{n, 8, d}));

    EXPECT_THROW(masking::apply(guided, tensor<double, B>(shape{n + 1, l, d}), w, info), shape_error)
        << "mismatched batch sizes";
    EXPECT_THROW(masking::apply(guided, tensor<double, B>(shape{n, l + 1, d}), w, info), shape_error);
    EXPECT_THROW(masking::apply(masking::random{}, tensor<double, B>(shape{n, l}), w, info), shape_error);
}

}  // namespace
