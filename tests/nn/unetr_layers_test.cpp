// The layers of the UNETR decoder (issue 17) on every backend, in double:
//   - conv_transpose2d: forward against the definition (scatter of every input pixel through the
//     kernel) and finite differences of input, weight and bias, for UNETR's kernel 2 / stride 2 and
//     general geometries (kernel 3, stride 2, padding 1, output padding 1; stride 1; rectangular);
//     forward and gradients against torch's F.conv_transpose2d (tools/make_unetr_fixtures.py);
//   - instance_norm2d: finite differences with and without affine parameters, the accumulating
//     input gradient, and torch's F.instance_norm (affine) forward and gradients;
//   - leaky_relu (slope 0.01, in place) and channel_concat: finite differences;
//   - the fused pairs of the decoder (instance norm - LeakyReLU, residual sum - LeakyReLU): the
//     same values and gradients as the two layers one after the other, and finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nn/gradcheck.hpp"
#include "nn/npy.hpp"
#include "test_backends.hpp"
#include "vasomim/nn/channel_concat.hpp"
#include "vasomim/nn/conv_transpose2d.hpp"
#include "vasomim/nn/instance_norm2d.hpp"
#include "vasomim/nn/leaky_relu.hpp"
#include "vasomim/model/unetr_decoder.hpp"

namespace {

using namespace vasomim;
using vasomim::test::dot;
using vasomim::test::host_tensors;
using vasomim::test::up;
using vasomim::test::zeros;

const std::string dir = VASOMIM_TEST_DATA_DIR "/unetr/";

std::size_t sz(index_t n) { return static_cast<std::size_t>(n); }

std::vector<double> npy(const std::string& name) { return test::load_npy(dir + name + ".npy").as<double>(); }

void expect_all_near(const std::string& what, const std::vector<double>& got, const std::vector<double>& ref,
                     double rtol) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    double scale = 0;
    for (double r : ref) scale = std::max(scale, std::abs(r));
    for (std::size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(got[i], ref[i], rtol * std::max(std::abs(ref[i]), 1e-2 * scale)) << what << " element " << i;
}

/// The definition: out[b, co, y*s - p + ky, x*s - p + kx] += w[ci, co, ky, kx] * in[b, ci, y, x].
std::vector<double> conv_transpose_reference(const std::vector<double>& x, const std::vector<double>& w,
                                             const std::vector<double>& b, const nn::conv_transpose2d_dims& d) {
    const index_t oh = d.oh(), ow = d.ow();
    std::vector<double> out(sz(d.n * d.cout * oh * ow));
    for (index_t n = 0; n < d.n; ++n)
        for (index_t co = 0; co < d.cout; ++co)
            for (index_t i = 0; i < oh * ow; ++i) out[sz((n * d.cout + co) * oh * ow + i)] = b[sz(co)];
    for (index_t n = 0; n < d.n; ++n)
        for (index_t ci = 0; ci < d.cin; ++ci)
            for (index_t y = 0; y < d.h; ++y)
                for (index_t xx = 0; xx < d.w; ++xx)
                    for (index_t co = 0; co < d.cout; ++co)
                        for (index_t ky = 0; ky < d.kh; ++ky)
                            for (index_t kx = 0; kx < d.kw; ++kx) {
                                const index_t oy = y * d.stride - d.pad + ky, ox = xx * d.stride - d.pad + kx;
                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                                out[sz(((n * d.cout + co) * oh + oy) * ow + ox)] +=
                                    w[sz(((ci * d.cout + co) * d.kh + ky) * d.kw + kx)] *
                                    x[sz(((n * d.cin + ci) * d.h + y) * d.w + xx)];
                            }
    return out;
}

template <class B>
class NnUnetrLayers : public ::testing::Test {
protected:
    /// forward, input gradient (accumulated onto `prior` when given), weight and bias gradients.
    static host_tensors run_ct(const host_tensors& x, const std::vector<double>& r, const nn::conv_transpose2d_dims& d,
                               std::vector<double>* out_host, const std::vector<double>* prior = nullptr) {
        auto in = up<B>(x[0]), w = up<B>(x[1]), b = up<B>(x[2]);
        const index_t nout = d.n * d.cout * d.oh() * d.ow();
        auto out = zeros<B>(nout);
        auto scratch = zeros<B>(std::max(nn::conv_transpose2d_backward_scratch(d), nn::conv_transpose2d_forward_scratch(d)));
        nn::conv_transpose2d_forward<B>(out.data(), in.data(), w.data(), b.data(), d, scratch.data());
        if (out_host) *out_host = out.to_host();
        auto dout = up<B>(r);
        auto din = prior ? up<B>(*prior) : zeros<B>(d.n * d.cin * d.h * d.w);
        auto dw = zeros<B>(d.cin * d.cout * d.kh * d.kw), db = zeros<B>(d.cout);
        nn::conv_transpose2d_backward<B>(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), d,
                                         scratch.data(), prior != nullptr);
        return {din.to_host(), dw.to_host(), db.to_host()};
    }

    void check_ct(const nn::conv_transpose2d_dims& d) {
        const index_t nin = d.n * d.cin * d.h * d.w, nw = d.cin * d.cout * d.kh * d.kw;
        const index_t nout = d.n * d.cout * d.oh() * d.ow();
        const auto r = test::random_vector(sz(nout), 31);
        auto f = [&](const host_tensors& x, host_tensors* g) {
            std::vector<double> out;
            const auto grads = run_ct(x, r, d, &out);
            if (g) *g = grads;
            return dot(out, r);
        };
        const host_tensors x0{test::random_vector(sz(nin), 1), test::random_vector(sz(nw), 2),
                              test::random_vector(sz(d.cout), 3)};
        std::vector<double> got;
        const auto g0 = run_ct(x0, r, d, &got);
        const auto ref = conv_transpose_reference(x0[0], x0[1], x0[2], d);
        ASSERT_EQ(got.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-12) << "output " << i;
        test::check_gradients(f, x0, {0, 1, 2}, {"input", "weight", "bias"}, 15);
        // the accumulating input gradient adds onto what is there
        const auto prior = test::random_vector(sz(nin), 4);
        const auto g1 = run_ct(x0, r, d, nullptr, &prior);
        for (std::size_t i = 0; i < prior.size(); ++i) ASSERT_NEAR(g1[0][i], g0[0][i] + prior[i], 1e-12);
    }
};
TYPED_TEST_SUITE(NnUnetrLayers, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(NnUnetrLayers, ConvTranspose2dUnetrGeometry) {
    this->check_ct({2, 5, 3, 4, 3, 2, 2, 2, 0, 0});  // kernel 2, stride 2: UNETR's upsampling
    this->check_ct({1, 16, 2, 2, 6, 2, 2, 2, 0, 0});
}

TYPED_TEST(NnUnetrLayers, ConvTranspose2dGeneralGeometry) {
    this->check_ct({2, 3, 5, 4, 4, 3, 3, 2, 1, 1});  // kernel 3, stride 2, padding 1, output padding 1
    this->check_ct({1, 2, 4, 5, 3, 3, 3, 1, 1, 0});  // stride 1
    this->check_ct({2, 2, 3, 3, 2, 2, 3, 3, 0, 2});  // rectangular kernel, stride 3, output padding 2
    EXPECT_THROW(nn::conv_transpose2d_dims({1, 2, 3, 3, 2, 2, 2, 2, 0, 2}).validate(), shape_error);  // out_pad >= stride
}

TYPED_TEST(NnUnetrLayers, ConvTranspose2dAsTorch) {
    using B = TypeParam;
    const nn::conv_transpose2d_dims d{2, 3, 5, 4, 4, 3, 3, 2, 1, 1};
    ASSERT_EQ(d.oh(), 10);
    ASSERT_EQ(d.ow(), 8);
    std::vector<double> out;
    const auto g = NnUnetrLayers<B>::run_ct({npy("ct_x"), npy("ct_w"), npy("ct_b")}, npy("ct_r"), d, &out);
    expect_all_near("conv_transpose2d output", out, npy("ct_out"), 1e-12);
    expect_all_near("conv_transpose2d input gradient", g[0], npy("ct_gx"), 1e-12);
    expect_all_near("conv_transpose2d weight gradient", g[1], npy("ct_gw"), 1e-12);
    expect_all_near("conv_transpose2d bias gradient", g[2], npy("ct_gb"), 1e-12);
}

TYPED_TEST(NnUnetrLayers, InstanceNorm) {
    using B = TypeParam;
    const nn::instance_norm_dims d{3, 4, 10};
    const index_t n = d.n * d.c * d.hw;
    const auto r = test::random_vector(sz(n), 81);
    for (bool affine : {true, false}) {
        auto f = [&](const host_tensors& x, host_tensors* g) {
            auto in = up<B>(x[0]), w = up<B>(x[1]), b = up<B>(x[2]);
            auto out = zeros<B>(n), mean = zeros<B>(d.n * d.c), rstd = zeros<B>(d.n * d.c);
            nn::instance_norm_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), affine ? w.data() : nullptr,
                                         affine ? b.data() : nullptr, d);
            if (g) {
                auto dout = up<B>(r), dx = zeros<B>(n), dw = zeros<B>(d.c), db = zeros<B>(d.c);
                nn::instance_norm_backward<B>(dx.data(), affine ? dw.data() : nullptr, affine ? db.data() : nullptr,
                                              dout.data(), in.data(), mean.data(), rstd.data(),
                                              affine ? w.data() : nullptr, d);
                *g = {dx.to_host(), dw.to_host(), db.to_host()};
            }
            return dot(out.to_host(), r);
        };
        auto x0 = test::random_vector(sz(n), 11);
        for (auto& v : x0) v = 2 * v + 0.5;
        const host_tensors x{x0, test::random_vector(sz(d.c), 12), test::random_vector(sz(d.c), 13)};
        if (affine) test::check_gradients(f, x, {0, 1, 2}, {"affine input", "weight", "bias"});
        else test::check_gradients(f, x, {0}, {"input"});
    }
}

TYPED_TEST(NnUnetrLayers, InstanceNormAsTorch) {
    using B = TypeParam;
    const nn::instance_norm_dims d{2, 3, 20};
    const index_t n = d.n * d.c * d.hw;
    auto in = up<B>(npy("in_x")), w = up<B>(npy("in_w")), b = up<B>(npy("in_b")), dout = up<B>(npy("in_r"));
    auto out = zeros<B>(n), mean = zeros<B>(d.n * d.c), rstd = zeros<B>(d.n * d.c);
    nn::instance_norm_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), d);
    expect_all_near("instance_norm output", out.to_host(), npy("in_out"), 1e-12);
    const auto prior = test::random_vector(sz(n), 5);
    auto dx = up<B>(prior), dw = zeros<B>(d.c), db = zeros<B>(d.c);
    nn::instance_norm_backward<B>(dx.data(), dw.data(), db.data(), dout.data(), in.data(), mean.data(), rstd.data(),
                                  w.data(), d, true);  // accumulating onto prior
    auto gx = dx.to_host();
    for (std::size_t i = 0; i < gx.size(); ++i) gx[i] -= prior[i];
    expect_all_near("instance_norm input gradient", gx, npy("in_gx"), 1e-10);
    expect_all_near("instance_norm weight gradient", dw.to_host(), npy("in_gw"), 1e-12);
    expect_all_near("instance_norm bias gradient", db.to_host(), npy("in_gb"), 1e-12);
}

TYPED_TEST(NnUnetrLayers, LeakyReluAndChannelConcat) {
    using B = TypeParam;
    auto x0 = test::random_vector(30, 73);
    for (auto& v : x0) v += v > 0 ? 0.1 : -0.1;  // away from the kink
    const auto r = test::random_vector(30, 74);
    auto f = [&](const host_tensors& x, host_tensors* g) {
        auto t = up<B>(x[0]);
        nn::leaky_relu_forward<B>(t.data(), t.data(), 30);  // in place, as UNETR's
        const auto out = t.to_host();
        if (g) {
            auto d = up<B>(r);
            nn::leaky_relu_backward<B>(d.data(), d.data(), t.data(), 30);
            *g = {d.to_host()};
        }
        return dot(out, r);
    };
    test::check_gradients(f, {x0}, {0}, {"leaky_relu input"});
    {
        auto t = up<B>(x0);
        nn::leaky_relu_forward<B>(t.data(), t.data(), 30);
        const auto y = t.to_host();
        for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], x0[i] > 0 ? x0[i] : 0.01 * x0[i]);
    }
    // concat of [2, 2, 3] and [2, 3, 3] along channels, accumulating backward
    const index_t n = 2, ca = 2, cb = 3, hw = 3;
    const auto rc = test::random_vector(sz(n * (ca + cb) * hw), 75);
    auto fc = [&](const host_tensors& x, host_tensors* g) {
        auto a = up<B>(x[0]), b = up<B>(x[1]), out = zeros<B>(n * (ca + cb) * hw);
        nn::channel_concat_forward<B>(out.data(), a.data(), b.data(), n, ca, cb, hw);
        if (g) {
            auto d = up<B>(rc), da = zeros<B>(n * ca * hw), db = zeros<B>(n * cb * hw);
            nn::channel_concat_backward<B>(da.data(), db.data(), d.data(), n, ca, cb, hw, true);
            *g = {da.to_host(), db.to_host()};
        }
        return dot(out.to_host(), rc);
    };
    test::check_gradients(fc, {test::random_vector(sz(n * ca * hw), 76), test::random_vector(sz(n * cb * hw), 77)},
                          {0, 1}, {"concat a", "concat b"});
}

TYPED_TEST(NnUnetrLayers, InstanceNormLeakyReluIsTheNormThenTheActivation) {
    using B = TypeParam;
    const nn::instance_norm_dims d{3, 4, 10};
    const index_t n = d.n * d.c * d.hw;
    const auto r = test::random_vector(sz(n), 82);
    auto x0 = test::random_vector(sz(n), 14);
    for (auto& v : x0) v = 2 * v + 0.5;
    const host_tensors x{x0, test::random_vector(sz(d.c), 15), test::random_vector(sz(d.c), 16)};
    for (bool affine : {true, false}) {
        const std::string what = affine ? "affine" : "plain";
        auto run = [&](const host_tensors& xs, host_tensors* g, bool fused, const std::vector<double>* prior) {
            auto in = up<B>(xs[0]), w = up<B>(xs[1]), b = up<B>(xs[2]);
            const double* wp = affine ? w.data() : nullptr;
            auto out = zeros<B>(n), mean = zeros<B>(d.n * d.c), rstd = zeros<B>(d.n * d.c);
            if (fused) {
                nn::instance_norm_leaky_relu_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), wp,
                                                        affine ? b.data() : nullptr, d);
            } else {
                nn::instance_norm_forward<B>(out.data(), mean.data(), rstd.data(), in.data(), wp,
                                             affine ? b.data() : nullptr, d);
                nn::leaky_relu_forward<B>(out.data(), out.data(), n);
            }
            if (g) {
                auto dout = up<B>(r), dx = prior ? up<B>(*prior) : zeros<B>(n), dw = zeros<B>(d.c), db = zeros<B>(d.c);
                double* dwp = affine ? dw.data() : nullptr;
                double* dbp = affine ? db.data() : nullptr;
                if (fused) {
                    nn::instance_norm_leaky_relu_backward<B>(dx.data(), dwp, dbp, dout.data(), in.data(), out.data(),
                                                             mean.data(), rstd.data(), wp, d,
                                                             nn::leaky_relu_default_slope, prior != nullptr);
                } else {
                    nn::leaky_relu_backward<B>(dout.data(), dout.data(), out.data(), n);
                    nn::instance_norm_backward<B>(dx.data(), dwp, dbp, dout.data(), in.data(), mean.data(), rstd.data(),
                                                  wp, d, prior != nullptr);
                }
                *g = {dx.to_host(), dw.to_host(), db.to_host()};
            }
            return out.to_host();
        };
        // the normalised values keep clear of the kink, so that finite differences do not cross it
        host_tensors g_plain;
        const auto y_plain = run(x, &g_plain, false, nullptr);
        double closest = 1e300;
        for (double v : y_plain) closest = std::min(closest, std::abs(v));
        ASSERT_GT(closest, 1e-4) << what;
        ASSERT_LT(*std::min_element(y_plain.begin(), y_plain.end()), 0) << what << ": some values on the slope side";
        host_tensors g_fused;
        const auto y_fused = run(x, &g_fused, true, nullptr);
        expect_all_near(what + " output", y_fused, y_plain, 1e-14);
        for (std::size_t t = 0; t < 3; ++t) expect_all_near(what + " gradient " + std::to_string(t), g_fused[t], g_plain[t], 1e-12);
        const auto prior = test::random_vector(sz(n), 17);
        host_tensors g_acc;
        run(x, &g_acc, true, &prior);
        for (std::size_t i = 0; i < prior.size(); ++i) ASSERT_NEAR(g_acc[0][i], g_plain[0][i] + prior[i], 1e-12) << what;
        auto f = [&](const host_tensors& xs, host_tensors* g) { return dot(run(xs, g, true, nullptr), r); };
        if (affine) test::check_gradients(f, x, {0, 1, 2}, {"fused input", "fused weight", "fused bias"});
        else test::check_gradients(f, x, {0}, {"fused input"});
    }
}

TYPED_TEST(NnUnetrLayers, AddLeakyReluIsTheSumThenTheActivation) {
    using B = TypeParam;
    const index_t n = 40;
    auto a0 = test::random_vector(sz(n), 91);
    const auto b0 = test::random_vector(sz(n), 92);
    for (std::size_t i = 0; i < a0.size(); ++i)  // sums away from the kink
        if (std::abs(a0[i] + b0[i]) < 0.05) a0[i] += 0.1;
    const auto r = test::random_vector(sz(n), 93), prior = test::random_vector(sz(n), 94);
    auto y = up<B>(a0);
    auto bb = up<B>(b0);
    model::detail::add_leaky_relu_forward<B>(y.data(), bb.data(), n);
    const auto yh = y.to_host();
    for (std::size_t i = 0; i < yh.size(); ++i) {
        const double v = a0[i] + b0[i];
        ASSERT_EQ(yh[i], v > 0 ? v : 0.01 * v) << i;
    }
    // backward: the gate in place, and the second summand's gradient copied, added, or not kept
    for (int mode = 0; mode < 3; ++mode) {
        auto g = up<B>(r), gb = up<B>(prior);
        model::detail::add_leaky_relu_backward<B>(g.data(), mode == 0 ? nullptr : gb.data(), y.data(), n, mode == 2);
        const auto gh = g.to_host(), gbh = gb.to_host();
        for (std::size_t i = 0; i < gh.size(); ++i) {
            const double v = yh[i] > 0 ? r[i] : 0.01 * r[i];
            ASSERT_EQ(gh[i], v) << i;
            ASSERT_EQ(gbh[i], mode == 0 ? prior[i] : mode == 1 ? v : prior[i] + v) << "mode " << mode << ", " << i;
        }
    }
    auto f = [&](const host_tensors& x, host_tensors* g) {
        auto t = up<B>(x[0]), u = up<B>(x[1]);
        model::detail::add_leaky_relu_forward<B>(t.data(), u.data(), n);
        if (g) {
            auto d = up<B>(r), du = zeros<B>(n);
            model::detail::add_leaky_relu_backward<B>(d.data(), du.data(), t.data(), n, false);
            *g = {d.to_host(), du.to_host()};
        }
        return dot(t.to_host(), r);
    };
    test::check_gradients(f, {a0, b0}, {0, 1}, {"sum input a", "sum input b"});
}

}  // namespace
