// The segmentation model (model/segmentation_model.hpp) with the linear decoder:
//   - parity with tools/make_segmentation_fixtures.py (a float64 PyTorch restatement: img 32, patch 8,
//     width 32, depth 2, 2 heads): logits, BCE + Dice loss and the gradient of every parameter within
//     1e-4 relative, on every backend;
//   - pos_embed resampling against torch's bicubic F.interpolate (4 x 4 -> 6 x 6 and 3 x 3), and a
//     48 px model initialised from the 32 px parameters against the reference's logits;
//   - drop path as timm's DropPath (rate 0.5 over 2 blocks) for the draws the reference uses:
//     logits, loss and every gradient; evaluation forwards untouched;
//   - one AdamW step with MAE's layer-wise lr decay (param_groups_lrd, decay 0.75) from the
//     reference gradients: every parameter's update as torch's;
//   - finite differences through the decoder and the encoder with drop path (double, one backend);
//   - an init state dict of another width / depth / patch size refused with every mismatch and the
//     dimensions that differ named.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "nn/gradcheck.hpp"
#include "nn/npy.hpp"
#include "parity_check.hpp"
#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/segmentation_model.hpp"
#include "vasomim/optim/adamw.hpp"
#include "vasomim/optim/layer_decay.hpp"

namespace {

using namespace vasomim;

const std::string dir = VASOMIM_TEST_DATA_DIR "/segmentation/";

#if VASOMIM_HAS_CUDA
using one_backend = backend::thrust_cuda;  // nvcc builds no host backend
#else
using one_backend = backend::cpu;
#endif

model::segmentation_config fixture_config(index_t img = 32) {
    model::segmentation_config c;
    c.encoder = {img, 8, 3, 32, 2, 2, 4};  // img, patch, chans, width, depth, heads, mlp ratio
    return c;
}

template <class B>
class SegmentationParity : public ::testing::Test {};
TYPED_TEST_SUITE(SegmentationParity, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(SegmentationParity, LogitsLossAndEveryGradient) {
    using B = TypeParam;
    model::segmentation_model<B> m(fixture_config());
    io::load_parameters(dir + "params.safetensors", m.table(), m.params());
    const auto imgs = tensor<float, B>::from_host(test::load_npy(dir + "imgs.npy").as<float>(), shape{2, 3, 32, 32});
    const auto masks = tensor<float, B>::from_host(test::load_npy(dir + "masks.npy").as<float>(), shape{2, 1, 32, 32});
    m.zero_grad();
    m.forward(imgs);
    test::expect_close("logits", m.host_logits(), test::load_npy(dir + "logits.npy").as<float>());
    const double ref_loss = test::load_npy(dir + "loss.npy").as<double>()[0];
    EXPECT_NEAR(m.loss(masks.data()), ref_loss, 1e-4 * ref_loss);
    m.backward();
    const auto grads = io::read_safetensors(dir + "grads.safetensors");
    ASSERT_EQ(grads.tensors.size(), m.table().entries().size());
    for (const auto& e : m.table().entries()) {
        const auto* g = grads.find(e.name);
        ASSERT_NE(g, nullptr) << e.name;
        test::expect_close("grad " + e.name, m.parameter(e.name, true), g->data);
    }
}

TYPED_TEST(SegmentationParity, InitFromSmallerImagesResamplesPosEmbed) {
    using B = TypeParam;
    model::segmentation_model<B> m(fixture_config(48));
    m.init(1);
    std::ostringstream notes;
    m.load_encoder(dir + "params.safetensors", &notes);  // 32 px: 4 x 4 grid -> 6 x 6
    EXPECT_NE(notes.str().find("from a 4 x 4 to a 6 x 6 grid"), std::string::npos) << notes.str();
    test::expect_close("pos_embed 6x6", m.parameter("pos_embed"), test::load_npy(dir + "pos_grid6.npy").as<float>(),
                       1e-5);
    // the decoder is not part of the encoder init: take it from the same file
    const auto f = io::read_safetensors(dir + "params.safetensors");
    for (const char* name : {"decoder.head.weight", "decoder.head.bias"}) m.set_parameter(name, f.find(name)->data);
    const auto imgs = tensor<float, B>::from_host(test::load_npy(dir + "imgs48.npy").as<float>(), shape{1, 3, 48, 48});
    m.forward(imgs);
    test::expect_close("logits 48 px", m.host_logits(), test::load_npy(dir + "logits48.npy").as<float>());
}

TYPED_TEST(SegmentationParity, DropPathAsTimmForTheSameDraws) {
    using B = TypeParam;
    model::segmentation_model<B> m(fixture_config());
    io::load_parameters(dir + "params.safetensors", m.table(), m.params());
    m.set_drop_path(0.5, 7);
    const auto imgs = tensor<float, B>::from_host(test::load_npy(dir + "imgs.npy").as<float>(), shape{2, 3, 32, 32});
    const auto masks = tensor<float, B>::from_host(test::load_npy(dir + "masks.npy").as<float>(), shape{2, 1, 32, 32});
    m.forward(imgs);  // evaluation: no drop path
    test::expect_close("eval logits", m.host_logits(), test::load_npy(dir + "logits.npy").as<float>());
    // [block][attention, mlp][sample]: block 0 has rate 0; block 1 as the reference's DP_FACTORS
    const std::vector<float> want{1, 1, 1, 1, 0, 2, 2, 0};
    std::uint64_t step = 0;
    for (; step < 1000; ++step) {
        const model::drop_path_key key{step, 0};
        m.forward(imgs, &key);
        if (m.encoder().drop_path_factors() == want) break;
    }
    ASSERT_LT(step, 1000u) << "no step of seed 7 draws the reference's pattern";
    test::expect_close("logits with drop path", m.host_logits(), test::load_npy(dir + "logits_dp.npy").as<float>());
    const double ref_loss = test::load_npy(dir + "loss_dp.npy").as<double>()[0];
    m.zero_grad();
    EXPECT_NEAR(m.loss(masks.data()), ref_loss, 1e-4 * ref_loss);
    m.backward();
    const auto grads = io::read_safetensors(dir + "grads_dp.safetensors");
    for (const auto& e : m.table().entries())
        test::expect_close("drop path grad " + e.name, m.parameter(e.name, true), grads.find(e.name)->data);
}

TYPED_TEST(SegmentationParity, OneAdamWStepWithLayerWiseLrDecay) {
    using B = TypeParam;
    model::segmentation_model<B> m(fixture_config());
    io::load_parameters(dir + "params.safetensors", m.table(), m.params());
    io::load_parameters(dir + "grads.safetensors", m.table(), m.grads());  // the reference's gradients
    const auto scales = optim::layer_decay_scales(m.table(), 2, 0.75);
    EXPECT_DOUBLE_EQ(scales[0], 0.75 * 0.75 * 0.75);                      // cls_token: layer 0
    EXPECT_DOUBLE_EQ(scales.back(), 1.0);                                  // decoder.head.bias: the top
    optim::adamw<B, float> opt(m.table(), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05},
                               scales);
    const auto before = io::read_safetensors(dir + "params.safetensors");
    const auto after = io::read_safetensors(dir + "params_lrd_step1.safetensors");
    opt.step(m.params(), m.grads());
    for (const auto& e : m.table().entries()) {
        const auto got = m.parameter(e.name);
        const auto& p0 = before.find(e.name)->data;
        const auto& p1 = after.find(e.name)->data;
        std::vector<float> d_got(got.size()), d_ref(got.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            d_got[i] = got[i] - p0[i];
            d_ref[i] = p1[i] - p0[i];
        }
        test::expect_close("update of " + e.name, d_got, d_ref, 1e-3);
    }
}

TEST(SegmentationModel, PosEmbedResamplingMatchesTorchBicubic) {
    const auto f = io::read_safetensors(dir + "params.safetensors");
    const auto& pos = f.find("pos_embed")->data;
    std::vector<double> p(pos.begin(), pos.end());
    for (index_t g : {6, 3}) {
        const auto got = model::resample_abs_pos_embed(p, 32, 4, 4, g, g, 1);
        const auto ref = test::load_npy(dir + "pos_grid" + std::to_string(g) + ".npy").as<double>();
        ASSERT_EQ(got.size(), ref.size());
        double worst = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(got[i] - ref[i]));
        EXPECT_LT(worst, 1e-12) << "grid " << g;
    }
    EXPECT_THROW(model::resample_abs_pos_embed(p, 32, 4, 5, 6, 6, 1), shape_error);
}

TEST(SegmentationModel, FiniteDifferencesThroughDecoderAndEncoder) {
    using B = one_backend;
    model::segmentation_config c;
    c.encoder = {16, 4, 3, 8, 2, 2, 4};
    model::segmentation_model<B, model::encoder::vit, model::decoder::linear, double> m(c);
    m.init(3);
    m.set_drop_path(0.5, 1);  // block 1 of 2: rate 0.5; fixed draws for every evaluation of the loss
    const std::vector<std::string> names{"decoder.head.weight", "decoder.head.bias", "norm.weight", "pos_embed",
                                         "cls_token", "blocks.0.attn.qkv.weight", "patch_embed.proj.weight"};
    const auto imgs = test::up<B>(test::random_vector(2 * 3 * 16 * 16, 11));
    std::vector<double> mask_host(2 * 16 * 16);
    for (std::size_t i = 0; i < mask_host.size(); ++i) mask_host[i] = (i * 7919) % 5 < 2 ? 1.0 : 0.0;
    const auto masks = test::up<B>(mask_host);
    auto both = [&] {  // the draws drop one branch of block 1 and keep (x 2) another
        const auto fac = m.encoder().drop_path_factors();
        return std::find(fac.begin() + 4, fac.end(), 0.0) != fac.end() &&
               std::find(fac.begin() + 4, fac.end(), 2.0) != fac.end();
    };
    model::drop_path_key key{0, 0};
    for (; key.step < 100; ++key.step) {
        m.forward(imgs.data(), 2, &key);
        if (both()) break;
    }
    ASSERT_TRUE(both());
    test::host_tensors x;
    for (const auto& n : names) {
        auto v = m.parameter(n);
        const auto r = test::random_vector(v.size(), 5 + x.size(), 0.05);  // away from zero biases
        for (std::size_t i = 0; i < v.size(); ++i) v[i] += r[i];
        x.push_back(v);
    }
    const test::loss_fn f = [&](const test::host_tensors& t, test::host_tensors* g) {
        for (std::size_t i = 0; i < names.size(); ++i) m.set_parameter(names[i], t[i]);
        m.zero_grad();
        m.forward(imgs.data(), 2, &key);
        const double loss = m.loss(masks.data());
        if (g) {
            m.backward();
            g->clear();
            for (const auto& n : names) g->push_back(m.parameter(n, true));
        }
        return loss;
    };
    std::vector<std::size_t> which(names.size());
    for (std::size_t i = 0; i < which.size(); ++i) which[i] = i;
    test::check_gradients(f, x, which, names, 8);
    EXPECT_TRUE(both());
}

/// A timm encoder state dict for cfg with zero values.
std::vector<io::named_tensor> encoder_tensors(const model::vit_encoder_config& cfg) {
    std::vector<io::named_tensor> out;
    for (const auto& [name, s] : model::timm_encoder_layout(cfg))
        out.push_back({name, s, std::vector<float>(static_cast<std::size_t>(s.numel()), 0.0f)});
    return out;
}

TEST(SegmentationModel, InitOfAnotherConfigurationSaysWhichDimensionsDiffer) {
    using B = one_backend;
    model::segmentation_model<B> m(fixture_config());
    m.init(0);
    const auto before = m.params().to_host();
    auto other = fixture_config().encoder;
    other.embed_dim = 64;
    other.depth = 3;
    other.patch_size = 4;
    try {
        m.load_encoder(encoder_tensors(other), "other.safetensors");
        FAIL() << "an encoder of another width/depth/patch size was accepted";
    } catch (const checkpoint_mismatch_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("width 64, depth 3, patch 4"), std::string::npos) << msg;
        EXPECT_NE(msg.find("width 32, depth 2, patch 8"), std::string::npos) << msg;
        EXPECT_NE(msg.find("(depth, width, patch size differ)"), std::string::npos) << msg;
        ASSERT_NE(e.find("patch_embed.proj.weight"), nullptr);
        EXPECT_EQ(e.find("patch_embed.proj.weight")->file_shape, (std::vector<std::int64_t>{64, 3, 4, 4}));
        EXPECT_NE(e.find("blocks.2.norm1.weight"), nullptr);  // a block the model does not have
        EXPECT_NE(e.find("blocks.0.mlp.fc1.weight"), nullptr);
    }
    EXPECT_EQ(m.params().to_host(), before);  // untouched

    // the same configuration loads; a missing tensor is named
    auto same = encoder_tensors(fixture_config().encoder);
    m.load_encoder(same, "same");
    same.erase(same.begin() + 3);  // patch_embed.proj.bias
    EXPECT_THROW(
        {
            try {
                m.load_encoder(same, "same");
            } catch (const checkpoint_mismatch_error& e) {
                EXPECT_NE(e.find("patch_embed.proj.bias"), nullptr);
                throw;
            }
        },
        checkpoint_mismatch_error);
}

}  // namespace
