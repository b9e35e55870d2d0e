// Parity of one VasoMIM step with PyTorch: tools/make_vasomim_step_fixture.py runs the MAE and
// UNeXt-S restatements (64 x 64 vessel-like images, patch 8, width 64, depth 2, 4 heads; decoder
// 32 wide, 1 block) on a given mask: G = 0.5 B + 0.5 sigmoid(S(I)), L = L_rec + L_cons, backward.
// Here model::vasomim_pretraining with the same MAE weights, the same closed-form UNeXt-S weights
// and running statistics, and the same mask must give the same S(I), G, both losses and every MAE
// gradient, within 1e-4 relative, on every host backend.
#include <gtest/gtest.h>

#include "parity_check.hpp"
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>

#include "nn/npy.hpp"
#include "nn/unext_fixture.hpp"
#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/masked_image_model.hpp"

namespace {

using namespace vasomim;

const std::string dir = VASOMIM_TEST_DATA_DIR "/vasomim_step/";

model::mae_config fixture_config() {
    model::mae_config c;
    c.img_size = 64;
    c.patch_size = 8;
    c.in_chans = 3;
    c.embed_dim = 64;
    c.depth = 2;
    c.num_heads = 4;
    c.decoder_embed_dim = 32;
    c.decoder_depth = 1;
    c.decoder_num_heads = 4;
    c.norm_pix_loss = true;
    return c;
}

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
        const auto restore = test::load_npy(dir + "ids_restore.npy");
        const auto keep = test::load_npy(dir + "ids_keep.npy");
        auto pos = tensor<std::int64_t, B>::from_host(restore.as<std::int64_t>(), shape{n, cfg.num_patches()});
        auto m = masking::detail::finish_from_positions(std::move(pos), keep.shape[1]);
        EXPECT_EQ(m.ids_keep.to_host(), keep.as<std::int64_t>()) << "the mask made from ids_restore keeps other patches";
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
