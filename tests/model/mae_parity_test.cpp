// Parity with PyTorch: tools/make_mae_fixtures.py runs a restatement of MAE/timm (32 x 32 images,
// patch 8, width 64, depth 2, 4 heads; decoder 32 wide, 2 blocks) with a given mask, the loss,
// backward and 3 AdamW steps. Here the same parameters (loaded from the safetensors file the script
// wrote by hand) must give the same loss, activations, every gradient and the parameters after the
// 3 steps, on every backend, within 1e-4 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "parity_check.hpp"
#include "nn/npy.hpp"
#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/optim.hpp"

namespace {

using namespace vasomim;

const std::string dir = VASOMIM_TEST_DATA_DIR "/nn/";

model::mae_config fixture_config() {
    model::mae_config c;
    c.img_size = 32;
    c.patch_size = 8;
    c.in_chans = 3;
    c.embed_dim = 64;
    c.depth = 2;
    c.num_heads = 4;
    c.decoder_embed_dim = 32;
    c.decoder_depth = 2;
    c.decoder_num_heads = 4;
    c.norm_pix_loss = true;
    return c;
}

template <class B>
class MaeParity : public ::testing::Test {};
TYPED_TEST_SUITE(MaeParity, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(MaeParity, LossActivationsGradientsAndThreeAdamWSteps) {
    using B = TypeParam;
    const auto cfg = fixture_config();
    model::mae<B, float> m(cfg);
    io::load_parameters(dir + "params_init.safetensors", m.table(), m.params());

    const auto imgs_npy = test::load_npy(dir + "imgs.npy");
    const auto keep_npy = test::load_npy(dir + "ids_keep.npy");
    const auto restore_npy = test::load_npy(dir + "ids_restore.npy");
    const index_t n = imgs_npy.shape[0], keep = keep_npy.shape[1], L = cfg.num_patches();
    ASSERT_EQ(restore_npy.shape[1], L);
    auto imgs = tensor<float, B>::from_host(imgs_npy.as<float>(), shape{n, 3, 32, 32});
    auto ids_keep = tensor<std::int64_t, B>::from_host(keep_npy.as<std::int64_t>(), shape{n, keep});
    auto ids_restore = tensor<std::int64_t, B>::from_host(restore_npy.as<std::int64_t>(), shape{n, L});
    const auto losses = test::load_npy(dir + "losses.npy").as<double>();
    const auto lrs = test::load_npy(dir + "lrs.npy").as<double>();

    // Step 0: forward, activations, loss, backward, every gradient.
    m.zero_grad();
    const float loss = m.forward(imgs, ids_keep, ids_restore);
    EXPECT_NEAR(loss, losses[0], 1e-4 * std::abs(losses[0]));
    const auto& a = m.acts();
    const index_t E = cfg.embed_dim, D = cfg.decoder_embed_dim;
    test::expect_close("mask", m.host_copy(a.mask, n * L), test::load_npy(dir + "mask.npy").as<float>(), 0.0);
    test::expect_close("latent", m.host_copy(a.latent, n * (1 + keep) * E), test::load_npy(dir + "latent.npy").as<float>());
    test::expect_close("decoder_input", m.host_copy(a.dec_x[0], n * (1 + L) * D),
                 test::load_npy(dir + "decoder_input.npy").as<float>());
    test::expect_close("target", m.host_copy(a.target, n * L * cfg.patch_values()),
                 test::load_npy(dir + "target.npy").as<float>());
    test::expect_close("pred", m.prediction(), test::load_npy(dir + "pred.npy").as<float>());
    m.backward();
    const auto grads = io::read_safetensors(dir + "grads_step0.safetensors");
    std::size_t checked = 0;
    for (const auto& e : m.table().entries()) {
        const auto* g = grads.find(e.name);
        if (!e.trainable) {
            EXPECT_EQ(g, nullptr) << e.name << " is fixed in MAE (requires_grad=False)";
            continue;
        }
        ASSERT_NE(g, nullptr) << e.name;
        ASSERT_EQ(g->shape, e.shape) << e.name;
        test::expect_close("grad " + e.name, m.parameter(e.name, true), g->data);
        ++checked;
    }
    EXPECT_EQ(checked, grads.tensors.size());

    // Three AdamW steps with MAE's schedule (iterations 1..3 of 2 per epoch, warmup 1 of 3 epochs).
    optim::adamw<B, float> opt(m.table(), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05});
    const optim::warmup_cosine sched{.lr = optim::scaled_lr(0.128, n), .min_lr = 1e-5, .warmup_epochs = 1, .epochs = 3};
    for (int step = 0; step < 3; ++step) {
        if (step > 0) {
            m.zero_grad();
            const float l = m.forward(imgs, ids_keep, ids_restore);
            EXPECT_NEAR(l, losses[step], 1e-4 * std::abs(losses[step])) << "step " << step;
            m.backward();
        }
        const double lr = sched.at_iteration(step + 1, 2);
        EXPECT_NEAR(lr, lrs[step], 1e-15);
        opt.set_lr(lr);
        opt.step(m.params(), m.grads());
    }
    // Parameters after the steps: within 1e-4 of the tensor's scale (max |value|). Adam divides
    // each gradient by its own running magnitude, so an element whose gradient is tiny or changes
    // sign between steps amplifies float round-off; the tensor scale is the meaningful yardstick.
    // The key slice of every qkv bias is left out: its exact gradient is zero (adding a constant
    // to all keys shifts every score row by a constant, which softmax ignores), so both sides feed
    // pure round-off to Adam, which normalises it into steps of size lr with random signs.
    const auto after = io::read_safetensors(dir + "params_step3.safetensors");
    for (const auto& e : m.table().entries()) {
        const auto* p = after.find(e.name);
        ASSERT_NE(p, nullptr) << e.name;
        auto got = m.parameter(e.name);
        auto ref = p->data;
        if (e.name.ends_with("attn.qkv.bias")) {
            const auto c = static_cast<std::ptrdiff_t>(e.numel() / 3);
            const auto* g0 = grads.find(e.name);
            float gmax = 0, kmax = 0;
            for (float v : g0->data) gmax = std::max(gmax, std::abs(v));
            for (std::ptrdiff_t i = c; i < 2 * c; ++i) kmax = std::max(kmax, std::abs(g0->data[i]));
            EXPECT_LT(kmax, 1e-5f * gmax) << e.name << ": PyTorch's key-bias gradient should be round-off";
            got.erase(got.begin() + c, got.begin() + 2 * c);
            ref.erase(ref.begin() + c, ref.begin() + 2 * c);
        }
        double scale = 0, worst = 0;
        for (float r : ref) scale = std::max(scale, double(std::abs(r)));
        for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - ref[i]));
        EXPECT_LE(worst, 1e-4 * scale) << "after 3 AdamW steps: " << e.name;
    }
}

}  // namespace
