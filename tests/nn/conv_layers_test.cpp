// Finite-difference gradient checks (double) of the UNeXt layers on every backend (conv2d dense,
// grouped and depthwise; batch norm in training and eval; 2x2 max pooling; ReLU; bilinear x2
// upsampling; token shift; shifted-MLP block; overlapping patch embedding), plus forward checks
// against direct host references, and synchronised batch norm over two half batches in two threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "nn/gradcheck.hpp"
#include "test_backends.hpp"
#include "vasomim/nn/arena.hpp"
#include "vasomim/nn/batch_norm.hpp"
#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/overlap_patch_embed.hpp"
#include "vasomim/nn/pooling.hpp"
#include "vasomim/nn/relu.hpp"
#include "vasomim/nn/shifted_mlp.hpp"
#include "vasomim/nn/upsample.hpp"

namespace {

using namespace vasomim;
using vasomim::test::dot;
using vasomim::test::host_tensors;
using vasomim::test::up;
using vasomim::test::zeros;

template <class B>
using dtensor = tensor<double, B>;

std::size_t sz(index_t n) { return static_cast<std::size_t>(n); }

/// Direct host convolution (the definition) for forward checks.
std::vector<double> conv_reference(const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& b, const nn::conv2d_dims& d) {
    const index_t oh = d.oh(), ow = d.ow(), cpg = d.cin / d.groups, opg = d.cout / d.groups;
    std::vector<double> out(sz(d.n * d.cout * oh * ow));
    for (index_t n = 0; n < d.n; ++n)
        for (index_t co = 0; co < d.cout; ++co)
            for (index_t oy = 0; oy < oh; ++oy)
                for (index_t ox = 0; ox < ow; ++ox) {
                    double s = b[sz(co)];
                    for (index_t cl = 0; cl < cpg; ++cl)
                        for (index_t ky = 0; ky < d.kh; ++ky)
                            for (index_t kx = 0; kx < d.kw; ++kx) {
                                const index_t y = oy * d.stride - d.pad + ky, xx = ox * d.stride - d.pad + kx;
                                if (y < 0 || y >= d.h || xx < 0 || xx >= d.w) continue;
                                const index_t ci = (co / opg) * cpg + cl;
                                s += w[sz(((co * cpg + cl) * d.kh + ky) * d.kw + kx)] *
                                     x[sz(((n * d.cin + ci) * d.h + y) * d.w + xx)];
                            }
                    out[sz(((n * d.cout + co) * oh + oy) * ow + ox)] = s;
                }
    return out;
}

/// A cross_rank_sum for two "ranks" in two threads of one process: each call waits for the other
/// rank's and both get the element-wise sum, as an allreduce would.
class two_rank_sum {
public:
    void operator()(double* v, index_t n) {
        std::unique_lock<std::mutex> lock(mutex_);
        const int round = round_;
        if (arrived_ == 0) acc_.assign(v, v + n);
        else
            for (index_t i = 0; i < n; ++i) acc_[sz(i)] += v[i];
        if (++arrived_ == 2) {
            arrived_ = 0;
            result_ = acc_;  // kept until both have read it: the next round needs both ranks
            ++round_;
            done_.notify_all();
        } else {
            done_.wait(lock, [&] { return round_ != round; });
        }
        std::copy(result_.begin(), result_.begin() + n, v);
    }

private:
    std::mutex mutex_;
    std::condition_variable done_;
    std::vector<double> acc_, result_;
    int arrived_ = 0, round_ = 0;
};

template <class B>
class NnConvLayers : public ::testing::Test {
protected:
    void check_conv(const nn::conv2d_dims& d) {
        using Bk = B;
        const index_t nin = d.n * d.cin * d.h * d.w, nw = d.cout * (d.cin / d.groups) * d.kh * d.kw;
        const index_t nout = d.n * d.cout * d.oh() * d.ow();
        const auto r = test::random_vector(sz(nout), 91);
        auto f = [&](const host_tensors& x, host_tensors* g) {
            auto in = up<Bk>(x[0]), w = up<Bk>(x[1]), b = up<Bk>(x[2]);
            auto out = zeros<Bk>(nout);
            auto scratch = zeros<Bk>(nn::conv2d_backward_scratch(d));
            nn::conv2d_forward<Bk>(out.data(), in.data(), w.data(), b.data(), d, scratch.data());
            if (g) {
                auto dout = up<Bk>(r);
                auto din = zeros<Bk>(nin), dw = zeros<Bk>(nw), db = zeros<Bk>(d.cout);
                nn::conv2d_backward<Bk>(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), d,
                                        scratch.data());
                *g = {din.to_host(), dw.to_host(), db.to_host()};
            }
            return dot(out.to_host(), r);
        };
        host_tensors x0{test::random_vector(sz(nin), 1), test::random_vector(sz(nw), 2), test::random_vector(sz(d.cout), 3)};
        // forward against the direct definition
        auto in = up<Bk>(x0[0]), w = up<Bk>(x0[1]), b = up<Bk>(x0[2]);
        auto out = zeros<Bk>(nout);
        auto scratch = zeros<Bk>(nn::conv2d_forward_scratch(d));
        nn::conv2d_forward<Bk>(out.data(), in.data(), w.data(), b.data(), d, scratch.data());
        const auto ref = conv_reference(x0[0], x0[1], x0[2], d), got = out.to_host();
        ASSERT_EQ(got.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-12) << "output " << i;
        test::check_gradients(f, x0, {0, 1, 2}, {"input", "weight", "bias"}, 15);
    }
};
TYPED_TEST_SUITE(NnConvLayers, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(NnConvLayers, Conv2dDense) {
    this->check_conv(nn::conv2d_dims{2, 3, 7, 6, 4, 3, 3, 1, 1, 1});
    this->check_conv(nn::conv2d_dims{2, 3, 7, 8, 5, 3, 3, 2, 1, 1});  // overlapping patch embed geometry
    this->check_conv(nn::conv2d_dims{1, 4, 5, 5, 2, 1, 1, 1, 0, 1});  // 1x1 head
    this->check_conv(nn::conv2d_dims{2, 2, 6, 5, 3, 2, 3, 1, 0, 1});  // rectangular kernel, no padding
}

TYPED_TEST(NnConvLayers, Conv2dDenseDirectKernel) {
    // geometries of the register-blocked direct kernel (host backends: rows of >= 16 pixels, >= 8
    // output channels): partial channel and column blocks, both block widths, a 5 x 5 kernel, no
    // padding; the input gradient takes the direct path when cin >= 8
    this->check_conv(nn::conv2d_dims{2, 3, 4, 37, 9, 3, 3, 1, 1, 1});
    this->check_conv(nn::conv2d_dims{1, 2, 3, 70, 8, 3, 3, 1, 1, 1});
    this->check_conv(nn::conv2d_dims{1, 9, 3, 20, 16, 5, 5, 1, 2, 1});
    this->check_conv(nn::conv2d_dims{1, 8, 3, 21, 8, 3, 3, 1, 0, 1});
    // channels in eights (conv2d_direct8): interior and edge blocks, the last block shifted back,
    // rows narrower than a block, 1 x 1 without padding; input gradients of 16 channels
    this->check_conv(nn::conv2d_dims{2, 16, 3, 67, 16, 3, 3, 1, 1, 1});
    this->check_conv(nn::conv2d_dims{1, 16, 2, 64, 8, 3, 3, 1, 1, 1});
    this->check_conv(nn::conv2d_dims{1, 8, 2, 48, 24, 1, 1, 1, 0, 1});
    this->check_conv(nn::conv2d_dims{1, 16, 4, 17, 16, 3, 3, 1, 1, 1});
}

TYPED_TEST(NnConvLayers, Conv2dGroupedAndDepthwise) {
    this->check_conv(nn::conv2d_dims{2, 4, 5, 6, 6, 3, 3, 1, 1, 2});
    this->check_conv(nn::conv2d_dims{2, 5, 6, 5, 5, 3, 3, 1, 1, 5});  // depthwise, as in DWConv
    this->check_conv(nn::conv2d_dims{1, 3, 7, 7, 6, 3, 3, 2, 1, 3});  // depthwise multiplier 2, stride 2
}

TYPED_TEST(NnConvLayers, BatchNormTrainingGradientsAndRunningStats) {
    using B = TypeParam;
    const nn::batch_norm_dims d{3, 4, 10};
    const index_t n = d.n * d.c * d.hw;
    const auto r = test::random_vector(sz(n), 81);
    for (bool training : {true, false}) {
        const std::vector<double> rm0{0.1, -0.2, 0.3, 0.0}, rv0{1.0, 0.5, 2.0, 1.5};
        auto f = [&](const host_tensors& x, host_tensors* g) {
            auto in = up<B>(x[0]), w = up<B>(x[1]), b = up<B>(x[2]), rm = up<B>(rm0), rv = up<B>(rv0);
            auto out = zeros<B>(n), mean = zeros<B>(d.c), rstd = zeros<B>(d.c);
            nn::batch_norm_forward<B>(out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), in.data(), w.data(),
                                      b.data(), d, training);
            if (g) {
                auto dout = up<B>(r), dx = zeros<B>(n), dw = zeros<B>(d.c), db = zeros<B>(d.c);
                nn::batch_norm_backward<B>(dx.data(), dw.data(), db.data(), dout.data(), in.data(), mean.data(),
                                           rstd.data(), w.data(), d, training);
                *g = {dx.to_host(), dw.to_host(), db.to_host()};
            }
            return dot(out.to_host(), r);
        };
        auto x0 = test::random_vector(sz(n), 11);
        for (auto& v : x0) v = 2 * v + 0.5;
        test::check_gradients(f, {x0, test::random_vector(4, 12), test::random_vector(4, 13)}, {0, 1, 2},
                              {training ? "train input" : "eval input", "weight", "bias"});
        // running statistics: momentum 0.1, unbiased variance (untouched in eval)
        auto in = up<B>(x0), w = up<B>({1, 1, 1, 1}), b = zeros<B>(4), rm = up<B>(rm0), rv = up<B>(rv0);
        auto out = zeros<B>(n), mean = zeros<B>(4), rstd = zeros<B>(4);
        nn::batch_norm_forward<B>(out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), in.data(), w.data(),
                                  b.data(), d, training);
        const auto hrm = rm.to_host(), hrv = rv.to_host(), ho = out.to_host();
        for (index_t c = 0; c < d.c; ++c) {
            double mu = 0, var = 0;
            const double m = static_cast<double>(d.n * d.hw);
            for (index_t i = 0; i < d.n; ++i)
                for (index_t j = 0; j < d.hw; ++j) mu += x0[sz((i * d.c + c) * d.hw + j)] / m;
            for (index_t i = 0; i < d.n; ++i)
                for (index_t j = 0; j < d.hw; ++j) var += std::pow(x0[sz((i * d.c + c) * d.hw + j)] - mu, 2);
            const double em = training ? 0.9 * rm0[sz(c)] + 0.1 * mu : rm0[sz(c)];
            const double ev = training ? 0.9 * rv0[sz(c)] + 0.1 * var / (m - 1) : rv0[sz(c)];
            EXPECT_NEAR(hrm[sz(c)], em, 1e-12);
            EXPECT_NEAR(hrv[sz(c)], ev, 1e-12);
            const double nm = training ? mu : rm0[sz(c)], nv = training ? var / m : rv0[sz(c)];
            EXPECT_NEAR(ho[sz(c * d.hw)], (x0[sz(c * d.hw)] - nm) / std::sqrt(nv + 1e-5), 1e-12);
        }
    }
}

TYPED_TEST(NnConvLayers, SyncBatchNormOfTwoHalvesIsTheWholeBatchs) {
    using B = TypeParam;
    const nn::batch_norm_dims whole{4, 3, 10}, half{2, 3, 10};
    const index_t n = whole.n * whole.c * whole.hw, nh = n / 2;
    auto x0 = test::random_vector(sz(n), 21);
    for (auto& v : x0) v = 2 * v + 0.5;
    const auto g0 = test::random_vector(sz(n), 22);
    const std::vector<double> w0{0.5, 1.5, -1.0}, b0{0.1, 0.0, -0.2}, rm0{0.1, -0.2, 0.3}, rv0{1.0, 0.5, 2.0};
    struct result {
        std::vector<double> out, dx, dw, db, rm, rv;
    };
    // forward and backward (training) of images [first, first + d.n) of the batch
    auto run = [&](const nn::batch_norm_dims& d, index_t first, const cross_rank_sum& sum) {
        const index_t m = d.n * d.c * d.hw, at = first * d.c * d.hw;
        auto x = up<B>(std::vector<double>(x0.begin() + at, x0.begin() + at + m));
        auto g = up<B>(std::vector<double>(g0.begin() + at, g0.begin() + at + m));
        auto w = up<B>(w0), b = up<B>(b0), rm = up<B>(rm0), rv = up<B>(rv0);
        auto out = zeros<B>(m), mean = zeros<B>(d.c), rstd = zeros<B>(d.c), dx = zeros<B>(m);
        auto dw = zeros<B>(d.c), db = zeros<B>(d.c), sums = zeros<B>(nn::sync_batch_norm_scratch(d.c));
        nn::sync_batch_norm_forward<B>(out.data(), mean.data(), rstd.data(), rm.data(), rv.data(), x.data(), w.data(),
                                       b.data(), d, true, sum, sums.data());
        nn::sync_batch_norm_backward<B>(dx.data(), dw.data(), db.data(), g.data(), x.data(), mean.data(), rstd.data(),
                                        w.data(), d, true, sum, sums.data());
        return result{out.to_host(), dx.to_host(), dw.to_host(), db.to_host(), rm.to_host(), rv.to_host()};
    };
    const result all = run(whole, 0, {});  // no hook: batch_norm_forward / _backward

    // one rank (a sum that adds nothing): the plain path bit for bit
    const result alone = run(whole, 0, [](double*, index_t) {});
    EXPECT_EQ(alone.out, all.out);
    EXPECT_EQ(alone.dx, all.dx);
    EXPECT_EQ(alone.dw, all.dw);
    EXPECT_EQ(alone.db, all.db);
    EXPECT_EQ(alone.rm, all.rm);
    EXPECT_EQ(alone.rv, all.rv);

    // two ranks with half the batch each: the whole batch's outputs, input gradients and running
    // statistics; the weight and bias gradients are shares that add up to the whole batch's
    two_rank_sum sum;
    result first, second;
    std::thread other([&] { second = run(half, 2, std::ref(sum)); });
    first = run(half, 0, std::ref(sum));
    other.join();
    for (index_t i = 0; i < nh; ++i) {
        EXPECT_NEAR(first.out[sz(i)], all.out[sz(i)], 1e-12) << i;
        EXPECT_NEAR(second.out[sz(i)], all.out[sz(nh + i)], 1e-12) << i;
        EXPECT_NEAR(first.dx[sz(i)], all.dx[sz(i)], 1e-12) << i;
        EXPECT_NEAR(second.dx[sz(i)], all.dx[sz(nh + i)], 1e-12) << i;
    }
    for (index_t c = 0; c < whole.c; ++c) {
        EXPECT_NEAR(first.dw[sz(c)] + second.dw[sz(c)], all.dw[sz(c)], 1e-12);
        EXPECT_NEAR(first.db[sz(c)] + second.db[sz(c)], all.db[sz(c)], 1e-12);
        EXPECT_NEAR(first.rm[sz(c)], all.rm[sz(c)], 1e-12);
        EXPECT_NEAR(first.rv[sz(c)], all.rv[sz(c)], 1e-12);
        EXPECT_EQ(first.rm[sz(c)], second.rm[sz(c)]);
        EXPECT_EQ(first.rv[sz(c)], second.rv[sz(c)]);
    }
    // without the sum a half batch normalises by its own statistics: far from the whole batch's
    const result own = run(half, 0, {});
    double apart = 0;
    for (index_t i = 0; i < nh; ++i) apart = std::max(apart, std::abs(own.out[sz(i)] - all.out[sz(i)]));
    EXPECT_GT(apart, 1e-2);
}

TYPED_TEST(NnConvLayers, MaxPoolReluUpsample) {
    using B = TypeParam;
    // max pool (odd size drops the last row and column)
    const index_t planes = 3, h = 5, w = 6;
    const auto rp = test::random_vector(sz(planes * 2 * 3), 71);
    auto fp = [&](const host_tensors& x, host_tensors* g) {
        auto in = up<B>(x[0]), out = zeros<B>(planes * 2 * 3);
        tensor<std::int32_t, B> arg(shape{planes * 2 * 3});
        nn::max_pool2x2_forward<B>(out.data(), arg.data(), in.data(), planes, h, w);
        if (g) {
            auto dout = up<B>(rp), dx = zeros<B>(planes * h * w);
            nn::max_pool2x2_backward<B>(dx.data(), dout.data(), arg.data(), planes, h, w);
            *g = {dx.to_host()};
        }
        return dot(out.to_host(), rp);
    };
    const auto xp = test::random_vector(sz(planes * h * w), 72);
    test::check_gradients(fp, {xp}, {0}, {"max_pool input"});
    {
        auto in = up<B>(xp), out = zeros<B>(planes * 6);
        tensor<std::int32_t, B> arg(shape{planes * 6});
        nn::max_pool2x2_forward<B>(out.data(), arg.data(), in.data(), planes, h, w);
        const auto ho = out.to_host();
        for (index_t p = 0; p < planes; ++p)
            for (index_t oy = 0; oy < 2; ++oy)
                for (index_t ox = 0; ox < 3; ++ox) {
                    double m = -1e300;
                    for (index_t dy = 0; dy < 2; ++dy)
                        for (index_t dx = 0; dx < 2; ++dx) m = std::max(m, xp[sz((p * h + 2 * oy + dy) * w + 2 * ox + dx)]);
                    EXPECT_EQ(ho[sz((p * 2 + oy) * 3 + ox)], m);
                }
    }
    // ReLU (values kept away from the kink)
    auto xr = test::random_vector(20, 73);
    for (auto& v : xr) v += v > 0 ? 0.1 : -0.1;
    const auto rr = test::random_vector(20, 74);
    auto fr = [&](const host_tensors& x, host_tensors* g) {
        auto in = up<B>(x[0]), out = zeros<B>(20);
        nn::relu_forward<B>(out.data(), in.data(), 20);
        if (g) {
            auto dout = up<B>(rr), dx = zeros<B>(20);
            nn::relu_backward<B>(dx.data(), dout.data(), out.data(), 20);
            *g = {dx.to_host()};
        }
        return dot(out.to_host(), rr);
    };
    test::check_gradients(fr, {xr}, {0}, {"relu input"});
    // bilinear x2, align_corners=False: a 1 x 2 row [a, b] becomes [a, .75a+.25b, .25a+.75b, b]
    {
        auto in = up<B>({1.0, 5.0}), out = zeros<B>(8);
        nn::upsample2x_forward<B>(out.data(), in.data(), 1, 1, 2);
        EXPECT_EQ(out.to_host(), (std::vector<double>{1, 2, 4, 5, 1, 2, 4, 5}));
    }
    const index_t uh = 3, uw = 4;
    const auto ru = test::random_vector(sz(2 * 4 * uh * uw), 75);
    auto fu = [&](const host_tensors& x, host_tensors* g) {
        auto in = up<B>(x[0]), out = zeros<B>(2 * 4 * uh * uw);
        nn::upsample2x_forward<B>(out.data(), in.data(), 2, uh, uw);
        if (g) {
            auto dout = up<B>(ru), dx = zeros<B>(2 * uh * uw);
            nn::upsample2x_backward<B>(dx.data(), dout.data(), 2, uh, uw);
            *g = {dx.to_host()};
        }
        return dot(out.to_host(), ru);
    };
    test::check_gradients(fu, {test::random_vector(sz(2 * uh * uw), 76)}, {0}, {"upsample input"});
}

TYPED_TEST(NnConvLayers, TokenShiftMatchesPadChunkRollNarrow) {
    using B = TypeParam;
    // c = 7 -> chunks of 2: channels {0,1} shift -2, {2,3} -1, {4,5} 0, {6} +1 (only 4 chunks).
    const nn::token_dims d{1, 4, 3, 7};
    std::vector<double> x(sz(d.numel()));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
    for (int axis : {0, 1}) {
        auto in = up<B>(x), out = zeros<B>(d.numel()), back = zeros<B>(d.numel());
        nn::token_shift<B>(out.data(), in.data(), d, axis, false);
        const auto h = out.to_host();
        for (index_t y = 0; y < d.h; ++y)
            for (index_t xx = 0; xx < d.w; ++xx)
                for (index_t c = 0; c < d.c; ++c) {
                    const index_t s = c / 2 - 2, sy = axis == 0 ? y - s : y, sx = axis == 1 ? xx - s : xx;
                    const bool in_range = sy >= 0 && sy < d.h && sx >= 0 && sx < d.w;
                    EXPECT_EQ(h[sz((y * d.w + xx) * d.c + c)], in_range ? x[sz((sy * d.w + sx) * d.c + c)] : 0.0);
                }
        // the adjoint: <shift(x), r> == <x, shift^T(r)>
        const auto r = test::random_vector(x.size(), 5);
        auto tr = up<B>(r);
        nn::token_shift<B>(back.data(), tr.data(), d, axis, true);
        EXPECT_NEAR(dot(h, r), dot(x, back.to_host()), 1e-9);
    }
}

TYPED_TEST(NnConvLayers, ShiftedBlockGradients) {
    using B = TypeParam;
    const nn::token_dims d{2, 3, 4, 6};
    const index_t N = d.numel(), c = d.c;
    const auto r = test::random_vector(sz(N), 61);
    auto f = [&](const host_tensors& x, host_tensors* g) {
        std::vector<dtensor<B>> t;
        for (const auto& v : x) t.push_back(up<B>(v));
        nn::shifted_block_params<double> p{t[1].data(), t[2].data(), t[3].data(), t[4].data(),
                                           t[5].data(), t[6].data(), t[7].data(), t[8].data()};
        nn::arena_layout lay;
        nn::shifted_block_acts<double> a{};
        a.carve([&](index_t n) { lay.take(n); return static_cast<double*>(nullptr); }, d);
        auto arena = zeros<B>(lay.size());
        nn::arena_cursor<double> cur(arena.data());
        a.carve([&](index_t n) { return cur.take(n); }, d);
        auto out = zeros<B>(N);
        nn::shifted_block_forward<B>(out.data(), t[0].data(), p, a, d);
        if (g) {
            std::vector<dtensor<B>> gt;
            for (const auto& v : x) gt.push_back(zeros<B>(static_cast<index_t>(v.size())));
            nn::shifted_block_grads<double> gp{gt[1].data(), gt[2].data(), gt[3].data(), gt[4].data(),
                                               gt[5].data(), gt[6].data(), gt[7].data(), gt[8].data()};
            auto dout = up<B>(r), scratch = zeros<B>(2 * N);
            nn::shifted_block_backward<B>(gt[0].data(), gp, dout.data(), t[0].data(), p, a, scratch.data(), d);
            g->clear();
            for (auto& v : gt) g->push_back(v.to_host());
        }
        return dot(out.to_host(), r);
    };
    auto nw = test::random_vector(sz(c), 3);
    for (auto& v : nw) v += 1;
    test::check_gradients(f,
                          {test::random_vector(sz(N), 1), nw, test::random_vector(sz(c), 4),
                           test::random_vector(sz(c * c), 5, 0.4), test::random_vector(sz(c), 6),
                           test::random_vector(sz(c * 9), 7, 0.4), test::random_vector(sz(c), 8),
                           test::random_vector(sz(c * c), 9, 0.4), test::random_vector(sz(c), 10)},
                          {0, 1, 2, 3, 4, 5, 6, 7, 8},
                          {"x", "norm2.weight", "norm2.bias", "fc1.weight", "fc1.bias", "dwconv.weight", "dwconv.bias",
                           "fc2.weight", "fc2.bias"});
}

TYPED_TEST(NnConvLayers, OverlapPatchEmbedGradients) {
    using B = TypeParam;
    const nn::conv2d_dims d{2, 3, 6, 5, 4, 3, 3, 2, 1, 1};
    const index_t L = d.oh() * d.ow(), nout = d.n * L * d.cout, nin = d.n * d.cin * d.h * d.w;
    const auto r = test::random_vector(sz(nout), 51);
    auto f = [&](const host_tensors& x, host_tensors* g) {
        std::vector<dtensor<B>> t;
        for (const auto& v : x) t.push_back(up<B>(v));
        nn::overlap_embed_params<double> p{t[1].data(), t[2].data(), t[3].data(), t[4].data()};
        nn::arena_layout lay;
        nn::overlap_embed_acts<double> a{};
        a.carve([&](index_t n) { lay.take(n); return static_cast<double*>(nullptr); }, d);
        auto arena = zeros<B>(lay.size());
        nn::arena_cursor<double> cur(arena.data());
        a.carve([&](index_t n) { return cur.take(n); }, d);
        auto out = zeros<B>(nout), scratch = zeros<B>(nn::overlap_embed_scratch(d));
        nn::overlap_embed_forward<B>(out.data(), t[0].data(), p, a, d, scratch.data());
        if (g) {
            std::vector<dtensor<B>> gt;
            for (const auto& v : x) gt.push_back(zeros<B>(static_cast<index_t>(v.size())));
            nn::overlap_embed_grads<double> gp{gt[1].data(), gt[2].data(), gt[3].data(), gt[4].data()};
            auto dout = up<B>(r);
            nn::overlap_embed_backward<B>(gt[0].data(), gp, dout.data(), t[0].data(), p, a, d, scratch.data());
            g->clear();
            for (auto& v : gt) g->push_back(v.to_host());
        }
        return dot(out.to_host(), r);
    };
    auto nw = test::random_vector(sz(d.cout), 3);
    for (auto& v : nw) v += 1;
    test::check_gradients(f,
                          {test::random_vector(sz(nin), 1), test::random_vector(sz(d.cout * d.cin * 9), 2, 0.3),
                           test::random_vector(sz(d.cout), 4), nw, test::random_vector(sz(d.cout), 5)},
                          {0, 1, 2, 3, 4}, {"x", "proj.weight", "proj.bias", "norm.weight", "norm.bias"});
}

}  // namespace
