// AdamW against a closed-form double reference, parameter groups from the MAE table, state
// save/restore, and MAE's warmup + half-cycle cosine schedule.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/optim.hpp"

namespace {

using namespace vasomim;

TEST(LrSchedule, WarmupThenHalfCycleCosine) {
    const optim::warmup_cosine s{.lr = 1e-3, .min_lr = 1e-5, .warmup_epochs = 2, .epochs = 10};
    EXPECT_EQ(s(0.0), 0.0);
    EXPECT_DOUBLE_EQ(s(1.0), 0.5e-3);
    EXPECT_DOUBLE_EQ(s(2.0), 1e-3);
    EXPECT_DOUBLE_EQ(s(6.0), 1e-5 + (1e-3 - 1e-5) * 0.5);
    EXPECT_DOUBLE_EQ(s(10.0), 1e-5);
    EXPECT_DOUBLE_EQ(s.at_iteration(25, 10), s(2.5));
    EXPECT_DOUBLE_EQ(optim::scaled_lr(1.5e-4, 4096), 2.4e-3);
    EXPECT_THROW((optim::warmup_cosine{.lr = 1, .min_lr = 0, .warmup_epochs = 5, .epochs = 5}(1.0)), config_error);
}

template <class B>
class AdamW : public ::testing::Test {};
TYPED_TEST_SUITE(AdamW, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(AdamW, MatchesClosedFormAndRespectsGroups) {
    using B = TypeParam;
    nn::parameter_table t;
    const index_t w = t.add_auto("fc.weight", {2, 2});           // decayed
    const index_t b = t.add_auto("fc.bias", {2});                // 1-D: not decayed
    const index_t pos = t.add("pos_embed", {1, 2, 2}, false, false);  // fixed
    const index_t tok = t.add("cls_token", {1, 1, 2});               // 3-D token: decayed, as released
    std::vector<double> p0(static_cast<std::size_t>(t.size()), 0.0), g(p0.size(), 0.0);
    for (const auto& e : t.entries())
        for (index_t i = 0; i < e.numel(); ++i) {
            p0[e.offset + i] = 0.3 + 0.1 * static_cast<double>(e.offset + i);
            g[e.offset + i] = (i % 2 ? -1.0 : 1.0) * (0.01 + 0.02 * static_cast<double>(i));
        }
    auto params = tensor<double, B>::from_host(p0, shape{t.size()});
    auto grads = tensor<double, B>::from_host(g, shape{t.size()});
    optim::adamw_options o{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05};
    optim::adamw<B, double> opt(t, o);
    auto params_timm = params.clone();
    optim::adamw_options o_timm = o;
    o_timm.exempt_tokens = true;  // timm's no_weight_decay rule: tokens spared
    optim::adamw<B, double> opt_timm(t, o_timm);
    for (int s = 0; s < 2; ++s) {
        opt.step(params, grads);
        opt_timm.step(params_timm, grads);
    }
    const auto got = params.to_host(), got_timm = params_timm.to_host();
    auto reference = [&](index_t off, bool decay) {  // two steps with the same gradient
        double p = p0[off], m = 0, v = 0;
        for (int s = 1; s <= 2; ++s) {
            p *= 1 - o.lr * (decay ? o.weight_decay : 0.0);
            m = 0.9 * m + 0.1 * g[off];
            v = 0.95 * v + 0.05 * g[off] * g[off];
            p -= o.lr / (1 - std::pow(0.9, s)) * m / (std::sqrt(v) / std::sqrt(1 - std::pow(0.95, s)) + o.eps);
        }
        return p;
    };
    for (index_t i = 0; i < 4; ++i) EXPECT_NEAR(got[w + i], reference(w + i, true), 1e-14);
    for (index_t i = 0; i < 2; ++i) {
        EXPECT_NEAR(got[b + i], reference(b + i, false), 1e-14);
        EXPECT_NEAR(got[tok + i], reference(tok + i, true), 1e-14);
        EXPECT_NEAR(got_timm[tok + i], reference(tok + i, false), 1e-14);
        EXPECT_EQ(got_timm[b + i], got[b + i]);
    }
    for (index_t i = 0; i < 4; ++i) EXPECT_EQ(got_timm[w + i], got[w + i]);
    for (index_t i = 0; i < 4; ++i) EXPECT_EQ(got[pos + i], p0[pos + i]) << "fixed tensors are not updated";
    EXPECT_EQ(opt.steps(), 2);
    EXPECT_THROW(opt.step(params, tensor<double, B>(shape{3})), shape_error);
}

TYPED_TEST(AdamW, GroupsOfTheMaeTable) {
    model::mae_config c;
    c.img_size = 16;
    c.patch_size = 8;
    c.embed_dim = 8;
    c.depth = 1;
    c.num_heads = 2;
    c.decoder_embed_dim = 8;
    c.decoder_depth = 1;
    c.decoder_num_heads = 2;
    nn::parameter_table t;
    model::build_mae_table(c, t);
    for (const auto& e : t.entries()) {
        // the released add_weight_decay: ndim == 1 or a name ending in ".bias" is not decayed; the
        // tokens are; the fixed position embeddings are not optimised at all
        if (!e.trainable) continue;
        EXPECT_EQ(e.decay, e.shape.rank() > 1 && !e.name.ends_with(".bias")) << e.name;
        EXPECT_EQ(e.trainable, e.name.find("pos_embed") == std::string::npos) << e.name;
    }
}

TYPED_TEST(AdamW, StateSaveAndRestoreContinuesIdentically) {
    using B = TypeParam;
    nn::parameter_table t;
    t.add_auto("a.weight", {3, 5});
    t.add_auto("a.bias", {3});
    auto params = tensor<float, B>(shape{t.size()});
    auto grads = tensor<float, B>(shape{t.size()});
    fill_normal(params, philox(1));
    fill_normal(grads, philox(2));
    optim::adamw<B, float> a(t);
    a.step(params, grads);
    a.step(params, grads);
    const auto path = (std::filesystem::temp_directory_path() /
                       (std::string("vasomim_adamw_") + backend_traits<B>::name + ".safetensors")).string();
    a.save(path);
    optim::adamw<B, float> b(t);
    b.load(path);
    EXPECT_EQ(b.steps(), 2);
    EXPECT_EQ(b.exp_avg().to_host(), a.exp_avg().to_host());
    EXPECT_EQ(b.exp_avg_sq().to_host(), a.exp_avg_sq().to_host());
    auto p2 = params.clone();
    a.step(params, grads);
    b.step(p2, grads);
    EXPECT_EQ(p2.to_host(), params.to_host());
    nn::parameter_table other;
    other.add_auto("b.weight", {3, 5});
    optim::adamw<B, float> c(other);
    EXPECT_THROW(c.load(path), config_error);
    std::filesystem::remove(path);
}

}  // namespace
