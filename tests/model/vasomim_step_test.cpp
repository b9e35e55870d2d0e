// Parity of one VasoMIM step with PyTorch: tools/make_vasomim_step_fixture.py runs the MAE and
// UNeXt-S restatements (64 x 64 vessel-like images, patch 8, width 64, depth 2, 4 heads; decoder
// 32 wide, 1 block) on a given mask: G = 0.5 B + 0.5 sigmoid(S(I)), L = L_rec + L_cons, backward,
// one AdamW step. S is the released 3-channel UNeXt-S with generic closed-form weights (different
// per input channel) on ImageNet-normalised gray images (channels differ after normalisation).
// Here model::vasomim_pretraining with the same MAE weights, the same closed-form UNeXt-S weights
// and running statistics, and the same mask (given as ids_shuffle + len_keep) must give the same
// S(I), G, both losses and every MAE gradient, within 1e-4 relative, and the same parameters
// after the AdamW step with the released weight-decay groups, on every host backend.
#include <gtest/gtest.h>

#include "parity_check.hpp"
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>

#include "nn/npy.hpp"
#include "nn/unext_fixture.hpp"
#include "model/vasomim_step_fixture.hpp"
#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/masked_image_model.hpp"

namespace {

using namespace vasomim;

const std::string dir = VASOMIM_TEST_DATA_DIR "/vasomim_step/";

model::mae_config fixture_config() { return test::vasomim_step_config(); }

template <class B>
using model_t = model::vasomim_pretraining<B>;

/// The fixture's inputs, the step's model set up with the fixture's weights, and the given mask.
template <class B>
struct step_setup {
    model::mae_config cfg = fixture_config();
    test::npy_array imgs_npy = test::load_npy(dir + "imgs.npy"), labels_npy = test::load_npy(dir + "labels.npy");
    index_t n = imgs_npy.shape[0];
    xt::xtensor<float, 4> images = xt::adapt(imgs_npy.as<float>(), std::array<std::size_t, 4>{std::size_t(n), 3, 64, 64});
    xt::xtensor<float, 3> labels = xt::adapt(labels_npy.as<float>(), std::array<std::size_t, 3>{std::size_t(n), 64, 64});

    void load_weights(model_t<B>& m) const {
        io::load_parameters(dir + "params.safetensors", m.network().table(), m.network().params());
        auto& seg = m.segmentor();
        seg.parameters() = tensor<float, B>::from_host(test::unext_fixture_parameters<float>(seg.table()),
                                                       shape{seg.table().size()});
    }
    masking::patch_mask<B> mask() const {
        const auto shuffle = test::load_npy(dir + "ids_shuffle.npy");
        const auto keep = test::load_npy(dir + "ids_keep.npy");
        auto m = masking::patch_mask_from_shuffle<B>(shuffle.as<std::int64_t>(), n, cfg.num_patches(), keep.shape[1]);
        EXPECT_EQ(m.ids_keep.to_host(), keep.as<std::int64_t>()) << "ids_keep differs from MAE's";
        EXPECT_EQ(m.ids_restore.to_host(), test::load_npy(dir + "ids_restore.npy").as<std::int64_t>())
            << "ids_restore differs from MAE's";
        return m;
    }
};

template <class B>
class VasomimStep : public ::testing::Test {};
TYPED_TEST_SUITE(VasomimStep, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(VasomimStep, GuidanceLossesAndGradientsMatchPyTorch) {
    using B = TypeParam;
    const step_setup<B> s;
    model_t<B> m(s.cfg, masking::anatomy_guided<>{});
    s.load_weights(m);
    model::step_context ctx;
    ctx.apply_update = false;  // gradients before the optimiser step
    const auto l = m.train_step(s.images, s.labels, s.mask(), ctx);

    const auto losses = test::load_npy(dir + "losses.npy").as<double>();
    EXPECT_NEAR(l.rec, losses[0], 1e-4 * std::abs(losses[0])) << "L_rec";
    EXPECT_NEAR(l.cons, losses[1], 1e-4 * std::abs(losses[1])) << "L_cons";
    EXPECT_NEAR(l.loss, losses[2], 1e-4 * std::abs(losses[2])) << "L";
    test::expect_close("S(I)", m.last_segmentor_logits().to_host(), test::load_npy(dir + "logits.npy").as<float>());
    test::expect_close("G", m.last_guidance().to_host(), test::load_npy(dir + "guidance.npy").as<float>());

    const auto grads = io::read_safetensors(dir + "grads.safetensors");
    std::size_t checked = 0;
    for (const auto& e : m.network().table().entries()) {
        const auto* g = grads.find(e.name);
        if (!e.trainable) {
            EXPECT_EQ(g, nullptr) << e.name << " is fixed in MAE (requires_grad=False)";
            continue;
        }
        ASSERT_NE(g, nullptr) << e.name;
        ASSERT_EQ(g->shape, e.shape) << e.name;
        test::expect_close("grad " + e.name, m.network().parameter(e.name, true), g->data);
        ++checked;
    }
    EXPECT_EQ(checked, grads.tensors.size());
}

// One AdamW step (lr 1e-2, weight decay 0.05) in the released add_weight_decay groups: no decay for
// 1-D tensors and biases; cls_token and mask_token decayed. Adam's first step is lr * g / (|g| +
// eps) (plus the decay), so elements whose gradient is near zero turn float32 round-off of g into
// steps of either sign: they are left out (|g| below 1e-3 of the tensor's largest). Elsewhere the
// step is exact to float round-off; the tokens' decay, lr * wd * |p| (~1e-5 here), is checked to
// lie far above the tolerance, so the test tells the groups apart.
TYPED_TEST(VasomimStep, AdamWStepInTheReleasedWeightDecayGroups) {
    using B = TypeParam;
    const step_setup<B> s;
    model_t<B> m(s.cfg, masking::anatomy_guided<>{});
    s.load_weights(m);
    const auto before = io::read_safetensors(dir + "params.safetensors");
    model::step_context ctx;
    ctx.lr = 1e-2;
    m.train_step(s.images, s.labels, s.mask(), ctx);
    EXPECT_EQ(m.optimiser().steps(), 1);

    const auto after = io::read_safetensors(dir + "params_step1.safetensors");
    const auto grads = io::read_safetensors(dir + "grads.safetensors");
    const double lr = 1e-2, wd = 0.05;
    std::size_t compared = 0, tokens = 0, tokens_told_apart = 0;
    for (const auto& e : m.network().table().entries()) {
        const auto* want = after.find(e.name);
        const auto* p0 = before.find(e.name);
        ASSERT_NE(want, nullptr) << e.name;
        const auto got = m.network().parameter(e.name);
        if (!e.trainable) {
            EXPECT_EQ(got, want->data) << e.name << " is fixed";
            continue;
        }
        const bool released_decay = !(e.shape.rank() == 1 || e.name.ends_with(".bias"));
        EXPECT_EQ(e.decay, released_decay) << e.name;
        const auto& g = grads.find(e.name)->data;
        float gmax = 0;
        for (float v : g) gmax = std::max(gmax, std::abs(v));
        for (std::size_t i = 0; i < g.size(); ++i) {
            if (!(std::abs(g[i]) > 1e-3f * gmax)) continue;
            const double tol = 1e-7 + 1e-5 * std::abs(want->data[i]);
            ASSERT_NEAR(got[i], want->data[i], tol) << e.name << "[" << i << "]";
            if (e.name.ends_with("_token")) {
                // without decay the token would sit lr * wd * |p| away
                const double undecayed = double(want->data[i]) + lr * wd * p0->data[i];
                ++tokens;
                tokens_told_apart += std::abs(undecayed - want->data[i]) > 5 * tol;
            }
            ++compared;
        }
    }
    // the tolerance tells decayed from undecayed tokens (all but those with |p| < ~1e-3)
    EXPECT_GT(tokens, 0u);
    EXPECT_GT(tokens_told_apart, tokens * 8 / 10) << "of " << tokens << " token elements";
    EXPECT_GT(compared, std::size_t(m.network().table().count(true) * 9 / 10));
}

// A given mask whose parts disagree, or that is for another batch, is refused before any work.
TYPED_TEST(VasomimStep, GivenMaskIsChecked) {
    using B = TypeParam;
    const step_setup<B> s;
    model_t<B> m(s.cfg, masking::anatomy_guided<>{});
    s.load_weights(m);
    model::step_context ctx;
    auto bad = s.mask();
    auto mk = bad.mask.to_host();
    mk[0] = 1.0f - mk[0];
    bad.mask = tensor<float, B>::from_host(mk, bad.mask.shape());
    EXPECT_THROW(m.train_step(s.images, s.labels, bad, ctx), value_error);
    const auto l = static_cast<index_t>(s.cfg.num_patches());
    std::vector<std::int64_t> twice(static_cast<std::size_t>(s.n * l));
    for (index_t i = 0; i < s.n * l; ++i) twice[static_cast<std::size_t>(i)] = i % l;
    twice[1] = 0;  // row 0 names patch 0 twice
    EXPECT_THROW(masking::patch_mask_from_shuffle<B>(twice, s.n, l, 16), value_error);
    twice[1] = 1;
    const auto one_row = masking::patch_mask_from_shuffle<B>(
        std::vector<std::int64_t>(twice.begin(), twice.begin() + l), 1, l, 16);
    EXPECT_THROW(m.train_step(s.images, s.labels, one_row, ctx), shape_error);
    EXPECT_EQ(m.optimiser().steps(), 0) << "nothing was updated";

    // guidance without the ridge filter: a given mask needs no pseudo-labels
    model::consistency_pretraining<B> c(s.cfg, masking::random{0.75, 1});
    const auto lc = c.train_step(s.images, s.mask(), ctx);
    EXPECT_TRUE(std::isfinite(lc.loss) && lc.cons > 0);
    EXPECT_EQ(c.optimiser().steps(), 1);
}

// The segmentor inside a released VasoMIM state dict (seg_model.*, num_batches_tracked int64,
// "module." of DDP) loads into the 3-channel segmentor; a 1-channel UNeXt-S file is refused saying
// so, and loads once the model is configured for it; the MAE weights load from the same file.
TYPED_TEST(VasomimStep, LoadsReleasedStateDicts) {
    using B = TypeParam;
    const step_setup<B> s;
    model_t<B> src(s.cfg, masking::anatomy_guided<>{});
    s.load_weights(src);
    const auto dir_tmp = std::filesystem::temp_directory_path();
    const std::string tag = backend_traits<B>::name;
    const auto released = (dir_tmp / ("vasomim_released_" + tag + ".safetensors")).string();
    std::vector<io::named_tensor> ts;
    auto add = [&](const std::string& prefix, const nn::parameter_table& table, const std::vector<float>& flat) {
        for (const auto& e : table.entries())
            ts.push_back({prefix + e.name, e.shape,
                          std::vector<float>(flat.begin() + e.offset, flat.begin() + e.offset + e.numel())});
    };
    add("module.", src.network().table(), src.network().params().to_host());
    add("module.seg_model.", src.segmentor().table(), src.segmentor().parameters().to_host());
    for (const char* bn : {"ebn1", "ebn2", "ebn3", "dbn1", "dbn2", "dbn3", "dbn4"})
        ts.push_back({std::string("module.seg_model.") + bn + ".num_batches_tracked", shape{}, {1234.0f}, "I64"});
    io::write_safetensors(released, ts);

    model_t<B> m(s.cfg, masking::anatomy_guided<>{});
    std::ostringstream notes;
    m.load_segmentor(released, &notes);
    EXPECT_EQ(m.segmentor().parameters().to_host(), src.segmentor().parameters().to_host());
    EXPECT_NE(notes.str().find("ignored 7 integer tensors"), std::string::npos) << notes.str();
    m.load_weights(released, &notes);
    EXPECT_EQ(m.network().params().to_host(), src.network().params().to_host());

    // a 1-channel UNeXt-S file
    nn::unext<B, float> gray(nn::unext_config{.in_channels = 1});
    gray.init(3);
    const auto gray_path = (dir_tmp / ("vasomim_gray_unext_" + tag + ".safetensors")).string();
    io::save_parameters(gray_path, gray.table(), gray.parameters());
    const auto before = m.segmentor().parameters().to_host();
    try {
        m.load_segmentor(gray_path);
        ADD_FAILURE() << "a 1-channel segmentor file loaded into the 3-channel segmentor";
    } catch (const checkpoint_mismatch_error& e) {
        EXPECT_NE(std::string(e.what()).find("is a 1-channel UNeXt-S"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--segmentor-channels 1"), std::string::npos) << e.what();
        ASSERT_EQ(e.mismatches().size(), 1u) << e.what();
    }
    EXPECT_EQ(m.segmentor().parameters().to_host(), before) << "nothing is half-loaded";
    m.configure_segmentor(nn::unext_config{.in_channels = 1});
    m.load_segmentor(gray_path);
    EXPECT_EQ(m.segmentor().parameters().to_host(), gray.parameters().to_host());
    try {
        m.load_segmentor(released);
        ADD_FAILURE() << "a 3-channel segmentor loaded into a 1-channel one";
    } catch (const checkpoint_mismatch_error& e) {
        EXPECT_NE(std::string(e.what()).find("is a 3-channel UNeXt-S"), std::string::npos) << e.what();
    }
    EXPECT_THROW(m.configure_segmentor(nn::unext_config{.in_channels = 2}), config_error);
    std::filesystem::remove(released);
    std::filesystem::remove(gray_path);
}

// L_cons adds only ~1% to the gradient of L here, so the check above sees only gross errors in
// it. With the consistency weight w the gradient is grad L_rec + w grad L_cons: the difference of
// the steps with w = 1000 and w = 1, divided by 999, is grad L_cons alone, to be compared with the
// reference's (every bias, norm, token and the decoder: the consistency gradient's whole path).
// Relative to each tensor's largest element: computed in float through UNeXt-S's backward, the
// elements 100x below a tensor's largest carry ~1e-4 relative round-off (cf. unext_test.cpp).
TYPED_TEST(VasomimStep, ConsistencyGradientAloneMatchesPyTorch) {
    using B = TypeParam;
    const step_setup<B> s;
    constexpr double w = 1000;
    model_t<B> m1(s.cfg, masking::anatomy_guided<>{});
    model_t<B> mw(s.cfg, masking::anatomy_guided<>{}, {}, objective::reconstruction_plus_consistency{w});
    s.load_weights(m1);
    s.load_weights(mw);
    model::step_context ctx;
    ctx.apply_update = false;
    const auto l1 = m1.train_step(s.images, s.labels, s.mask(), ctx);
    const auto lw = mw.train_step(s.images, s.labels, s.mask(), ctx);
    EXPECT_EQ(l1.rec, lw.rec);
    EXPECT_EQ(l1.cons, lw.cons);
    EXPECT_NEAR(lw.loss, l1.rec + w * l1.cons, 1e-6 * lw.loss);

    const auto ref = io::read_safetensors(dir + "grads_cons.safetensors");
    ASSERT_GE(ref.tensors.size(), 20u);
    for (const auto& t : ref.tensors) {
        const auto g1 = m1.network().parameter(t.name, true), gw = mw.network().parameter(t.name, true);
        ASSERT_EQ(g1.size(), t.data.size()) << t.name;
        std::vector<float> cons(g1.size());
        for (std::size_t i = 0; i < g1.size(); ++i) cons[i] = static_cast<float>((double(gw[i]) - g1[i]) / (w - 1));
        test::expect_close("grad L_cons " + t.name, cons, t.data, 1e-4, 1.0);
    }
}

}  // namespace
#endif  // !VASOMIM_HAS_CUDA
