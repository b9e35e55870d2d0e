// Finite-difference gradient checks (double) of every transformer layer, on every backend, plus
// forward checks against closed forms (sin-cos table, GELU, layer norm statistics).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "nn/gradcheck.hpp"
#include "test_backends.hpp"
#include "vasomim/nn.hpp"

namespace {

using namespace vasomim;
using vasomim::test::dot;
using vasomim::test::host_tensors;
using vasomim::test::up;
using vasomim::test::zeros;

template <class B>
using dtensor = tensor<double, B>;


template <class B>
class NnLayers : public ::testing::Test {};
TYPED_TEST_SUITE(NnLayers, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(NnLayers, LinearGradients) {
    using B = TypeParam;
    const index_t m = 5, k = 7, n = 4;
    const auto r = test::random_vector(static_cast<std::size_t>(m * n), 99);
    auto f = [&](const host_tensors& x, host_tensors* g) {
        auto in = up<B>(x[0]), w = up<B>(x[1]), b = up<B>(x[2]);
        auto out = zeros<B>(m * n);
        nn::linear_forward<B>(out.data(), in.data(), w.data(), b.data(), m, k, n);
        if (g) {
            auto dout = up<B>(r);
            auto din = zeros<B>(m * k), dw = zeros<B>(n * k), db = zeros<B>(n);
            nn::linear_backward<B>(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), m, k, n);
            *g = {din.to_host(), dw.to_host(), db.to_host()};
        }
        return dot(out.to_host(), r);
    };
    test::check_gradients(f, {test::random_vector(m * k, 1), test::random_vector(n * k, 2), test::random_vector(n, 3)},
                          {0, 1, 2}, {"input", "weight", "bias"});
}

TYPED_TEST(NnLayers, LinearResidualAndAccumulation) {
    using B = TypeParam;
    // out = residual + x W^T + b computed in place on the residual; gradients accumulate.
    const std::vector<double> x{1, 2}, w{1, 0, 0, 1, 1, 1}, b{0.5, -1, 2}, res{10, 20, 30};
    auto tx = up<B>(x), tw = up<B>(w), tb = up<B>(b), out = up<B>(res);
    nn::linear_forward<B>(out.data(), tx.data(), tw.data(), tb.data(), 1, 2, 3, out.data());
    EXPECT_EQ(out.to_host(), (std::vector<double>{11.5, 21, 35}));
    auto dw = up<B>(std::vector<double>(6, 1.0)), db = up<B>({1, 1, 1}), dout = up<B>({1, 2, 3});
    nn::linear_backward<B>(static_cast<double*>(nullptr), dw.data(), db.data(), dout.data(), tx.data(), tw.data(), 1, 2, 3);
    EXPECT_EQ(dw.to_host(), (std::vector<double>{2, 3, 3, 5, 4, 7}));
    EXPECT_EQ(db.to_host(), (std::vector<double>{2, 3, 4}));
}

TYPED_TEST(NnLayers, LayerNormForwardAndGradients) {
    using B = TypeParam;
    const index_t m = 4, c = 6;
    const auto r = test::random_vector(static_cast<std::size_t>(m * c), 98);
    auto f = [&](const host_tensors& x, host_tensors* g) {
        auto in = up<B>(x[0]), w = up<B>(x[1]), b = up<B>(x[2]);
        auto out = zeros<B>(m * c), mean = zeros<B>(m), rstd = zeros<B>(m);
        nn::layer_norm_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), m, c);
        if (g) {
            auto dout = up<B>(r);
            auto din = zeros<B>(m * c), dw = zeros<B>(c), db = zeros<B>(c);
            nn::layer_norm_backward<B>(din.data(), dw.data(), db.data(), dout.data(), in.data(), mean.data(),
                                       rstd.data(), w.data(), m, c);
            *g = {din.to_host(), dw.to_host(), db.to_host()};
        }
        return dot(out.to_host(), r);
    };
    auto x0 = test::random_vector(m * c, 4);
    test::check_gradients(f, {x0, test::random_vector(c, 5), test::random_vector(c, 6)}, {0, 1, 2},
                          {"input", "weight", "bias"});
    // Forward with unit weight and zero bias: each row has mean 0 and (biased) variance v/(v+eps).
    auto in = up<B>(x0), w = up<B>(std::vector<double>(c, 1.0)), b = zeros<B>(c);
    auto out = zeros<B>(m * c), mean = zeros<B>(m), rstd = zeros<B>(m);
    nn::layer_norm_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), m, c);
    const auto h = out.to_host();
    for (index_t row = 0; row < m; ++row) {
        double mu = 0, var = 0, s = 0, s2 = 0;
        for (index_t i = 0; i < c; ++i) mu += x0[row * c + i] / c;
        for (index_t i = 0; i < c; ++i) var += (x0[row * c + i] - mu) * (x0[row * c + i] - mu) / c;
        for (index_t i = 0; i < c; ++i) {
            s += h[row * c + i];
            s2 += h[row * c + i] * h[row * c + i];
        }
        EXPECT_NEAR(s, 0.0, 1e-12);
        EXPECT_NEAR(s2 / c, var / (var + 1e-6), 1e-12);
    }
}

TYPED_TEST(NnLayers, GeluForwardAndGradient) {
    using B = TypeParam;
    auto x = up<B>({-3, -1, 0, 0.5, 2});
    auto y = zeros<B>(5);
    nn::gelu_forward<B>(y.data(), x.data(), 5);
    const auto h = y.to_host();
    const std::vector<double> xs{-3, -1, 0, 0.5, 2};
    for (std::size_t i = 0; i < 5; ++i)
        EXPECT_NEAR(h[i], 0.5 * xs[i] * std::erfc(-xs[i] / std::sqrt(2.0)), 1e-15);
    const index_t n = 17;
    const auto r = test::random_vector(n, 97);
    auto f = [&](const host_tensors& v, host_tensors* g) {
        auto in = up<B>(v[0]), out = zeros<B>(n);
        nn::gelu_forward<B>(out.data(), in.data(), n);
        if (g) {
            auto d = up<B>(r);
            nn::gelu_backward<B>(d.data(), d.data(), in.data(), n);
            *g = {d.to_host()};
        }
        return dot(out.to_host(), r);
    };
    test::check_gradients(f, {test::random_vector(n, 7, 2.0)}, {0}, {"input"});
}

TYPED_TEST(NnLayers, SoftmaxGradientWithScale) {
    using B = TypeParam;
    const index_t m = 3, n = 5;
    const double scale = 0.35;
    const auto r = test::random_vector(m * n, 96);
    auto f = [&](const host_tensors& v, host_tensors* g) {
        std::vector<double> scaled = v[0];
        for (auto& e : scaled) e *= scale;
        auto p = up<B>(scaled);
        nn::softmax_forward<B>(p.data(), m, n);
        if (g) {
            auto d = up<B>(r);
            nn::softmax_backward<B>(d.data(), p.data(), m, n, scale);
            *g = {d.to_host()};
        }
        const auto ph = p.to_host();
        double rowsum = 0;
        for (index_t i = 0; i < n; ++i) rowsum += ph[i];
        EXPECT_NEAR(rowsum, 1.0, 1e-14);
        return dot(ph, r);
    };
    test::check_gradients(f, {test::random_vector(m * n, 8, 3.0)}, {0}, {"scores"});
}

// Attention, MLP and the whole block share one parameter layout through vit_block_layout.
template <class B>
struct block_case {
    nn::block_dims d;
    nn::parameter_table table;
    nn::vit_block_layout layout;
    explicit block_case(nn::block_dims dims) : d(dims) { layout = nn::vit_block_layout::add(table, "blocks.0.", d.c, d.hidden); }

    std::vector<double> init_params(std::uint64_t seed) const {
        auto p = test::random_vector(static_cast<std::size_t>(table.size()), seed, 0.4);
        for (const auto& e : table.entries())
            if (e.name.find("norm") != std::string::npos && e.name.ends_with("weight"))
                for (index_t i = 0; i < e.numel(); ++i) p[e.offset + i] += 1.0;
        return p;
    }
};

enum class block_part { attention, mlp, block };

template <class B>
double run_block_part(block_part part, const block_case<B>& bc, const std::vector<double>& r, const host_tensors& v,
                      host_tensors* g) {
    const auto& d = bc.d;
    const index_t m = d.rows(), c = d.c;
    auto x = up<B>(v[0]), params = up<B>(v[1]);
    nn::arena_counter counter;
    nn::vit_block_acts<double>::take(counter, d);
    nn::vit_block_scratch<double>::take(counter, d);
    dtensor<B> arena(shape{counter.layout.size()});
    nn::arena_cursor<double> cur(arena.data());
    const auto acts = nn::vit_block_acts<double>::take(cur, d);
    const auto scratch = nn::vit_block_scratch<double>::take(cur, d);
    const auto p = nn::vit_block_tensors<const double>::at(params.data(), bc.layout);
    auto out = zeros<B>(m * c);
    if (part == block_part::attention)
        nn::attention_forward<B>(out.data(), x.data(), static_cast<const double*>(nullptr), p.attn_p(), acts.attn,
                                 scratch.attn, d.attn());
    else if (part == block_part::mlp)
        nn::mlp_forward<B>(out.data(), x.data(), static_cast<const double*>(nullptr), p.mlp_p(), acts.mlp, scratch.hidden,
                           d.mlp());
    else
        nn::vit_block_forward<B>(out.data(), x.data(), p, acts, scratch, d);
    if (g) {
        // Backward must not read the GELU and LayerNorm outputs left in scratch by forward: it
        // recomputes them.
        backend_traits<B>::fill(scratch.hidden, static_cast<std::size_t>(m * d.hidden),
                                std::numeric_limits<double>::quiet_NaN());
        backend_traits<B>::fill(scratch.ln, static_cast<std::size_t>(m * c), std::numeric_limits<double>::quiet_NaN());
        auto grads = zeros<B>(bc.table.size());
        const auto gt = nn::vit_block_tensors<double>::at(grads.data(), bc.layout);
        auto dres = up<B>(r);
        auto dx = zeros<B>(m * c);
        if (part == block_part::attention)
            nn::attention_backward<B>(dx.data(), gt.attn_g(), dres.data(), x.data(), p.attn_p(), acts.attn,
                                      scratch.attn, d.attn());
        else if (part == block_part::mlp)
            nn::mlp_backward<B>(dx.data(), gt.mlp_g(), dres.data(), x.data(), p.mlp_p(), acts.mlp, scratch.hidden,
                                scratch.dhidden, d.mlp());
        else {
            nn::vit_block_backward<B>(dres.data(), gt, x.data(), p, acts, scratch, d);
            dx = std::move(dres);
        }
        *g = {dx.to_host(), grads.to_host()};
    }
    return dot(out.to_host(), r);
}

template <class B>
void check_block_part(block_part part) {
    block_case<B> bc({2, 5, 8, 2, 12});
    const auto r = test::random_vector(static_cast<std::size_t>(bc.d.rows() * bc.d.c), 95);
    auto f = [&](const host_tensors& v, host_tensors* g) { return run_block_part<B>(part, bc, r, v, g); };
    test::check_gradients(f, {test::random_vector(bc.d.rows() * bc.d.c, 9), bc.init_params(10)}, {0, 1},
                          {"input", "parameters"}, 200);
}

TYPED_TEST(NnLayers, AttentionGradients) { check_block_part<TypeParam>(block_part::attention); }
TYPED_TEST(NnLayers, MlpGradients) { check_block_part<TypeParam>(block_part::mlp); }
TYPED_TEST(NnLayers, VitBlockGradients) { check_block_part<TypeParam>(block_part::block); }

TYPED_TEST(NnLayers, AttentionMatchesNaiveSingleHeadReference) {
    using B = TypeParam;
    // One head, identity projections, zero biases: out = softmax(x x^T / sqrt(c)) x.
    block_case<B> bc({1, 3, 4, 1, 4});
    const index_t t = 3, c = 4;
    std::vector<double> params(static_cast<std::size_t>(bc.table.size()), 0.0);
    for (int s = 0; s < 3; ++s)
        for (index_t i = 0; i < c; ++i) params[bc.layout.qkv_w + (s * c + i) * c + i] = 1.0;
    for (index_t i = 0; i < c; ++i) params[bc.layout.proj_w + i * c + i] = 1.0;
    const auto x = test::random_vector(t * c, 11);
    host_tensors grads;
    const auto r = std::vector<double>(t * c, 0.0);
    // Evaluate the output through the loss with unit vectors.
    std::vector<double> out(t * c);
    for (index_t k = 0; k < t * c; ++k) {
        std::vector<double> e(t * c, 0.0);
        e[k] = 1.0;
        out[k] = run_block_part<B>(block_part::attention, bc, e, {x, params}, nullptr);
    }
    for (index_t i = 0; i < t; ++i) {
        std::vector<double> s(t);
        double mx = -1e300, z = 0;
        for (index_t j = 0; j < t; ++j) {
            s[j] = 0;
            for (index_t q = 0; q < c; ++q) s[j] += x[i * c + q] * x[j * c + q] / 2.0;
            mx = std::max(mx, s[j]);
        }
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (index_t q = 0; q < c; ++q) {
            double ref = 0;
            for (index_t j = 0; j < t; ++j) ref += s[j] / z * x[j * c + q];
            EXPECT_NEAR(out[i * c + q], ref, 1e-12);
        }
    }
}

TYPED_TEST(NnLayers, PatchEmbedIsStridedConvolutionWithGradients) {
    using B = TypeParam;
    const nn::patch_dims d{2, 3, 4, 6, 2};  // 2 images, 3 x 4 x 6, patch 2: grid 2 x 3
    const index_t e = 5, L = d.patches(), ps = d.patch_size();
    const auto img = test::random_vector(d.n * d.channels * d.h * d.w, 12);
    const auto r = test::random_vector(d.n * L * e, 94);
    auto f = [&](const host_tensors& v, host_tensors* g) {
        auto ti = up<B>(img), w = up<B>(v[0]), b = up<B>(v[1]);
        auto out = zeros<B>(d.n * L * e), cols = zeros<B>(d.n * L * ps);
        nn::patch_embed_forward<B>(out.data(), cols.data(), ti.data(), w.data(), b.data(),
                                   static_cast<const double*>(nullptr), d, e);
        if (g) {
            auto dout = up<B>(r), dw = zeros<B>(e * ps), db = zeros<B>(e);
            nn::patch_embed_backward<B>(dw.data(), db.data(), dout.data(), cols.data(), d, e);
            *g = {dw.to_host(), db.to_host()};
        }
        return dot(out.to_host(), r);
    };
    const auto w = test::random_vector(e * ps, 13), bias = test::random_vector(e, 14);
    test::check_gradients(f, {w, bias}, {0, 1}, {"weight", "bias"});
    // Direct convolution reference for one output element per (image, channel, patch).
    auto ti = up<B>(img), tw = up<B>(w), tb = up<B>(bias);
    auto out = zeros<B>(d.n * L * e), cols = zeros<B>(d.n * L * ps);
    nn::patch_embed_forward<B>(out.data(), cols.data(), ti.data(), tw.data(), tb.data(),
                               static_cast<const double*>(nullptr), d, e);
    const auto h = out.to_host();
    for (index_t n = 0; n < d.n; ++n)
        for (index_t oc = 0; oc < e; ++oc)
            for (index_t gy = 0; gy < d.grid_h(); ++gy)
                for (index_t gx = 0; gx < d.grid_w(); ++gx) {
                    double ref = bias[oc];
                    for (index_t ch = 0; ch < d.channels; ++ch)
                        for (index_t i = 0; i < d.p; ++i)
                            for (index_t j = 0; j < d.p; ++j)
                                ref += w[((oc * d.channels + ch) * d.p + i) * d.p + j] *
                                       img[((n * d.channels + ch) * d.h + gy * d.p + i) * d.w + gx * d.p + j];
                    EXPECT_NEAR(h[(n * L + gy * d.grid_w() + gx) * e + oc], ref, 1e-12);
                }
}

TEST(NnPosEmbed, SinCosTableMatchesMaeDefinition) {
    const index_t dim = 8, gh = 2, gw = 3;
    const auto t = nn::sincos_pos_embed_2d<double>(dim, gh, gw, true);
    ASSERT_EQ(t.size(), static_cast<std::size_t>((1 + gh * gw) * dim));
    for (index_t i = 0; i < dim; ++i) EXPECT_EQ(t[i], 0.0) << "cls slot is zero";
    // Row of grid cell (y=1, x=2): [sin(2 w0), sin(2 w1), cos(2 w0), cos(2 w1), sin(1 w0), ...],
    // w_k = 1 / 10000^(k/2).
    const double* row = t.data() + (1 + 1 * gw + 2) * dim;
    const double w1 = 1.0 / 100.0;
    const std::vector<double> ref{std::sin(2.0), std::sin(2 * w1), std::cos(2.0), std::cos(2 * w1),
                                  std::sin(1.0), std::sin(w1),     std::cos(1.0), std::cos(w1)};
    for (index_t i = 0; i < dim; ++i) EXPECT_NEAR(row[i], ref[i], 1e-15) << i;
    EXPECT_THROW(nn::sincos_pos_embed_2d<float>(6, 2, 2, false), config_error);
}

}  // namespace
