// MAE: finite-difference check of the whole loss (double) on every backend, patchify round trip,
// masking semantics, presets and initialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "nn/gradcheck.hpp"
#include "test_backends.hpp"
#include "vasomim/model.hpp"

namespace {

using namespace vasomim;
using vasomim::test::host_tensors;

model::mae_config tiny_config() {
    model::mae_config c;
    c.img_size = 8;
    c.patch_size = 2;
    c.in_chans = 3;
    c.embed_dim = 8;
    c.depth = 2;
    c.num_heads = 2;
    c.decoder_embed_dim = 8;
    c.decoder_depth = 1;
    c.decoder_num_heads = 2;
    return c;
}

/// ids_shuffle of each sample from a fixed permutation rule; returns (ids_keep, ids_restore).
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> make_masking(index_t n, index_t L, index_t keep,
                                                                           std::uint64_t seed) {
    std::vector<std::int64_t> ids_keep, ids_restore(static_cast<std::size_t>(n * L));
    const philox g(seed, 3);
    for (index_t b = 0; b < n; ++b) {
        std::vector<float> noise(static_cast<std::size_t>(L));
        for (index_t l = 0; l < L; ++l) noise[l] = g.uniform(static_cast<std::uint64_t>(b * L + l));
        std::vector<std::int64_t> shuffle(static_cast<std::size_t>(L));
        std::iota(shuffle.begin(), shuffle.end(), 0);
        std::stable_sort(shuffle.begin(), shuffle.end(), [&](auto i, auto j) { return noise[i] < noise[j]; });
        for (index_t l = 0; l < L; ++l) ids_restore[b * L + shuffle[l]] = l;
        ids_keep.insert(ids_keep.end(), shuffle.begin(), shuffle.begin() + keep);
    }
    return {ids_keep, ids_restore};
}

template <class B>
class Mae : public ::testing::Test {};
TYPED_TEST_SUITE(Mae, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(Mae, WholeLossGradientMatchesFiniteDifferences) {
    using B = TypeParam;
    for (bool norm_pix : {true, false}) {
        auto cfg = tiny_config();
        cfg.norm_pix_loss = norm_pix;
        model::mae<B, double> m(cfg);
        m.init(5);
        const index_t n = 2, L = cfg.num_patches(), keep = 5;
        const auto [keep_ids, restore_ids] = make_masking(n, L, keep, 17);
        auto ids_keep = tensor<std::int64_t, B>::from_host(keep_ids, shape{n, keep});
        auto ids_restore = tensor<std::int64_t, B>::from_host(restore_ids, shape{n, L});
        auto imgs = tensor<double, B>::from_host(test::random_vector(n * 3 * 8 * 8, 21), shape{n, 3, 8, 8});
        std::vector<std::string> names;
        host_tensors x;
        std::vector<std::size_t> which;
        std::size_t k = 0;
        for (const auto& e : m.table().entries()) {
            if (!e.trainable) continue;
            auto v = test::random_vector(static_cast<std::size_t>(e.numel()), 100 + k, 0.5);
            if (e.name.find("norm") != std::string::npos && e.name.ends_with("weight"))
                for (auto& w : v) w += 1.0;
            names.push_back(e.name);
            x.push_back(v);
            which.push_back(k++);
        }
        auto f = [&](const host_tensors& v, host_tensors* g) {
            for (std::size_t i = 0; i < names.size(); ++i) m.set_parameter(names[i], v[i]);
            const double loss = m.forward(imgs, ids_keep, ids_restore);
            if (g) {
                m.zero_grad();
                m.backward();
                g->clear();
                for (const auto& name : names) g->push_back(m.parameter(name, true));
            }
            return loss;
        };
        test::check_gradients(f, x, which, names, 8);
    }
}

TYPED_TEST(Mae, PatchifyRoundTripAndOrder) {
    using B = TypeParam;
    const nn::patch_dims d{2, 3, 4, 6, 2};
    std::vector<float> img(static_cast<std::size_t>(2 * 3 * 4 * 6));
    std::iota(img.begin(), img.end(), 0.0f);
    auto ti = tensor<float, B>::from_host(img, shape{2, 3, 4, 6});
    tensor<float, B> patches(shape{2, d.patches(), d.patch_size()}), back(shape{2, 3, 4, 6});
    model::patchify<B>(patches.data(), ti.data(), d);
    model::unpatchify<B>(back.data(), patches.data(), d);
    EXPECT_EQ(back.to_host(), img);
    // Image 1, patch (gy=1, gx=2) = l 5, pixel (i=1, j=0), channel 2: img[1, 2, 3, 4].
    const auto h = patches.to_host();
    EXPECT_EQ(h[(1 * 6 + 5) * 12 + (1 * 2 + 0) * 3 + 2], img[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
}

TYPED_TEST(Mae, MaskAndVisibleTokensFollowIds) {
    using B = TypeParam;
    const auto cfg = tiny_config();
    model::mae<B, float> m(cfg);
    m.init(1);
    const index_t n = 2, L = cfg.num_patches(), keep = 4;
    const auto [keep_ids, restore_ids] = make_masking(n, L, keep, 9);
    auto ids_keep = tensor<std::int64_t, B>::from_host(keep_ids, shape{n, keep});
    auto ids_restore = tensor<std::int64_t, B>::from_host(restore_ids, shape{n, L});
    auto imgs = tensor<float, B>(shape{n, 3, 8, 8});
    fill_normal(imgs, philox(3));
    const float loss = m.forward(imgs, ids_keep, ids_restore);
    EXPECT_TRUE(std::isfinite(loss));
    const auto mask = m.host_copy(m.acts().mask, n * L);
    for (index_t b = 0; b < n; ++b) {
        float masked = 0;
        for (index_t l = 0; l < L; ++l) masked += mask[b * L + l];
        EXPECT_EQ(masked, float(L - keep));
        for (index_t j = 0; j < keep; ++j) EXPECT_EQ(mask[b * L + keep_ids[b * keep + j]], 0.0f);
    }
    // Encoder token 1 + j of sample b is the patch embedding of patch ids_keep[b, j].
    const index_t E = cfg.embed_dim;
    const auto emb = m.host_copy(m.acts().emb, n * L * E);
    const auto x0 = m.host_copy(m.acts().enc_x[0], n * (1 + keep) * E);
    for (index_t b = 0; b < n; ++b)
        for (index_t j = 0; j < keep; ++j)
            for (index_t e = 0; e < E; ++e)
                EXPECT_EQ(x0[(b * (1 + keep) + 1 + j) * E + e], emb[(b * L + keep_ids[b * keep + j]) * E + e]);
    // The loss is the mean of the per-patch losses over masked patches.
    const auto pl = m.host_copy(m.acts().patch_loss, n * L);
    double ref = 0;
    for (index_t i = 0; i < n * L; ++i) ref += pl[i] * mask[i];
    EXPECT_NEAR(loss, ref / (n * (L - keep)), 1e-6);
}

TYPED_TEST(Mae, InitialisationFollowsMae) {
    using B = TypeParam;
    auto cfg = tiny_config();
    cfg.embed_dim = 32;
    cfg.decoder_embed_dim = 16;
    model::mae<B, float> m(cfg);
    m.init(7);
    const auto w = m.parameter("blocks.0.mlp.fc1.weight");  // [128, 32]
    const float bound = std::sqrt(6.0f / (128 + 32));
    float mx = 0, sum2 = 0;
    for (float v : w) {
        mx = std::max(mx, std::abs(v));
        sum2 += v * v;
    }
    EXPECT_LE(mx, bound);
    EXPECT_NEAR(std::sqrt(sum2 / w.size()), bound / std::sqrt(3.0f), 0.05f * bound);  // uniform std
    const auto pw = m.parameter("patch_embed.proj.weight");  // [32, 3, 2, 2] viewed [32, 12]
    for (float v : pw) EXPECT_LE(std::abs(v), std::sqrt(6.0f / (32 + 12)));
    for (float v : m.parameter("blocks.0.attn.qkv.bias")) EXPECT_EQ(v, 0.0f);
    for (float v : m.parameter("decoder_norm.weight")) EXPECT_EQ(v, 1.0f);
    const auto cls = m.parameter("cls_token");
    float s2 = 0;
    for (float v : cls) s2 += v * v;
    EXPECT_GT(s2, 0.0f);
    EXPECT_LT(std::sqrt(s2 / cls.size()), 0.05f);
    const auto pos = m.parameter("pos_embed");
    const auto ref = nn::sincos_pos_embed_2d<float>(32, 4, 4, true);
    EXPECT_EQ(pos, ref);
    EXPECT_FALSE(m.table().find("pos_embed").trainable);
    EXPECT_TRUE(m.table().find("cls_token").decay);  // as released (add_weight_decay)
    EXPECT_TRUE(m.table().find("mask_token").decay);
    EXPECT_FALSE(m.table().find("blocks.1.norm2.weight").decay);
    EXPECT_TRUE(m.table().find("decoder_pred.weight").decay);
    // Same seed, same parameters (counter-based generator).
    model::mae<B, float> m2(cfg);
    m2.init(7);
    EXPECT_EQ(m2.params().to_host(), m.params().to_host());
}

TEST(MaeConfig, PresetsAndValidation) {
    // Parameter counts of the reference MAE models (sum of numel over the state dict, fixed
    // position embeddings included), computed with tools/make_mae_fixtures.py --count.
    const std::pair<const char*, index_t> expected[] = {{"base", 111907840}, {"large", 329541888}, {"huge", 657074508}};
    for (const auto& [name, count] : expected) {
        const auto cfg = model::presets::by_name(name);
        EXPECT_NO_THROW(cfg.validate());
        EXPECT_EQ(model::mae_parameter_count(cfg), count) << name;
    }
    EXPECT_EQ(model::presets::mae_vit_huge_patch14().patch_size, 14);
    EXPECT_EQ(model::presets::mae_vit_large_patch16().decoder_embed_dim, 512);
    EXPECT_THROW(model::presets::by_name("giant"), config_error);
    auto bad = tiny_config();
    bad.num_heads = 3;
    EXPECT_THROW(bad.validate(), config_error);
    bad = tiny_config();
    bad.patch_size = 3;
    EXPECT_THROW(bad.validate(), config_error);
}

}  // namespace
