// UNeXt-S: PyTorch parity (tools/make_unext_fixtures.py: forward in train and eval mode, running
// statistics, input and parameter gradients, state_dict names) on every backend, and a double
// finite-difference check of the whole network's input and parameter gradients.
#include "vasomim/core/config.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "nn/gradcheck.hpp"
#include "nn/unext_fixture.hpp"
#include "test_backends.hpp"
#include "vasomim/nn/unext.hpp"

#if !VASOMIM_HAS_CUDA
#include "vasomim/io/npy.hpp"
#endif

namespace {

using namespace vasomim;

template <class B>
class UnextS : public ::testing::Test {};
TYPED_TEST_SUITE(UnextS, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(UnextS, ParameterCountAndShapes) {
    nn::unext<TypeParam, float> net;  // the released layout: 3 input channels
    EXPECT_EQ(net.table().entries().size(), 94u);  // state_dict keys without num_batches_tracked
    EXPECT_EQ(net.table().find("block2.0.mlp.dwconv.dwconv.weight").shape, (shape{128, 1, 3, 3}));
    EXPECT_EQ(net.table().find("encoder1.weight").shape, (shape{8, 3, 3, 3}));
    nn::unext<TypeParam, float> gray(nn::unext_config{.in_channels = 1});
    EXPECT_EQ(gray.table().find("encoder1.weight").shape, (shape{8, 1, 3, 3}));
    EXPECT_FALSE(net.table().find("dbn1.running_var").trainable);
    EXPECT_THROW(net.forward(nullptr, nullptr, 1, 48, 64, false), shape_error);
}

TYPED_TEST(UnextS, FiniteDifferenceGradients) {
    using B = TypeParam;
    const index_t n = 2, h = 32, w = 32, npix = n * h * w;
    const std::vector<std::string> names{"encoder1.weight", "ebn2.weight", "block1.0.mlp.fc2.bias",
                                         "block1.0.mlp.dwconv.dwconv.weight", "dblock2.0.norm2.weight", "dbn3.bias"};
    for (bool training : {true, false}) {
        nn::unext<B, double> net(nn::unext_config{.in_channels = 1});
        net.init(3);
        const auto base = net.parameters().to_host();
        const auto r = test::random_vector(static_cast<std::size_t>(npix), 41);
        auto f = [&](const test::host_tensors& x, test::host_tensors* g) {
            auto p = base;
            for (std::size_t k = 0; k < names.size(); ++k) {
                const auto& e = net.table().find(names[k]);
                std::copy(x[k + 1].begin(), x[k + 1].end(), p.begin() + e.offset);
            }
            net.parameters() = tensor<double, B>::from_host(p, shape{net.table().size()});
            auto in = tensor<double, B>::from_host(x[0], shape{npix});
            tensor<double, B> out(shape{npix});
            net.forward(out.data(), in.data(), n, h, w, training);
            const auto ho = out.to_host();
            double s = 0;
            for (std::size_t i = 0; i < ho.size(); ++i) s += ho[i] * r[i];
            if (g) {
                net.zero_grad();
                auto dout = tensor<double, B>::from_host(r, shape{npix});
                tensor<double, B> dx(shape{npix});
                net.backward(dx.data(), dout.data());
                const auto hg = net.gradients().to_host();
                g->assign(1, dx.to_host());
                for (const auto& nm : names) {
                    const auto& e = net.table().find(nm);
                    g->emplace_back(hg.begin() + e.offset, hg.begin() + e.offset + e.numel());
                }
            }
            return s;
        };
        test::host_tensors x0{test::random_vector(static_cast<std::size_t>(npix), 42)};
        std::vector<std::size_t> which{0};
        std::vector<std::string> labels{training ? "input (train)" : "input (eval)"};
        for (std::size_t k = 0; k < names.size(); ++k) {
            const auto& e = net.table().find(names[k]);
            x0.emplace_back(base.begin() + e.offset, base.begin() + e.offset + e.numel());
            which.push_back(k + 1);
            labels.push_back(names[k]);
        }
        // The running statistics change in every training forward; they do not enter the training
        // output, so the finite differences are unaffected.
        test::check_gradients(f, x0, which, labels, 8, 1e-6, 1e-4);
    }
}

#if !VASOMIM_HAS_CUDA
std::string data(const std::string& f) { return std::string(VASOMIM_TEST_DATA_DIR) + "/segmentor/" + f; }

std::vector<float> load(const std::string& f) {
    const auto a = io::read_npy<float>(data(f + ".npy"));
    return std::vector<float>(a.begin(), a.end());
}

/// |a - b| <= tol * max|b| elementwise (relative to the array's scale).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what,
                  double floor = 0) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double scale = floor;
    for (float v : want) scale = std::max(scale, static_cast<double>(std::abs(v)));
    ASSERT_GT(scale, 0) << what;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (std::abs(static_cast<double>(got[i]) - want[i]) > tol * scale && bad++ < 5)
            ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << want[i] << " (scale " << scale << ")";
}

template <class T>
std::vector<float> as_float(const std::vector<T>& v) {
    return std::vector<float>(v.begin(), v.end());
}

/// Compares with the float64 PyTorch reference. In float the training-mode gradients of the early
/// layers are small residues of large cancelling sums (BatchNorm's backward removes the mean and the
/// x-correlated part), so there the element tolerance is relative to the model's largest gradient
/// norm; double meets 1e-4 relative to each tensor's own largest element everywhere.
template <class B, class T>
void check_parity() {
    nn::unext<B, T> net(nn::unext_config{.in_channels = 1});  // the fixture's gray configuration
    {
        std::ifstream names(data("names.txt"));
        ASSERT_TRUE(names) << data("names.txt");
        std::string line;
        std::size_t k = 0;
        while (std::getline(names, line))
            if (!line.empty()) {
                ASSERT_LT(k, net.table().entries().size());
                EXPECT_EQ(net.table().entries()[k++].name, line);
            }
        EXPECT_EQ(k, net.table().entries().size());
    }
    const auto params = test::unext_fixture_parameters<T>(net.table());
    const auto xf = load("x"), rf = load("r");
    const std::vector<T> x(xf.begin(), xf.end()), r(rf.begin(), rf.end());
    const index_t n = 2, h = 64, w = 64, npix = n * h * w;
    for (const std::string mode : {"train", "eval"}) {
        net.parameters() = tensor<T, B>::from_host(params, shape{net.table().size()});
        net.zero_grad();
        auto in = tensor<T, B>::from_host(x, shape{npix}), dout = tensor<T, B>::from_host(r, shape{npix});
        tensor<T, B> out(shape{npix}), dx(shape{npix});
        net.forward(out.data(), in.data(), n, h, w, mode == "train");
        net.backward(dx.data(), dout.data());
        expect_close(as_float(out.to_host()), load("logits_" + mode), 1e-4, "logits " + mode);
        expect_close(as_float(dx.to_host()), load("dx_" + mode), 1e-4, "input gradient " + mode);
        const auto g = net.gradients().to_host();
        const auto stats = load("gstats_" + mode), small = load("gsmall_" + mode);
        // Tensors whose gradient vanishes mathematically (conv biases before training-mode BN) are
        // compared against a floor tied to the model's largest gradient norm (1e-5 of it in double,
        // 1e-3 in float: element tolerance 1e-4 * floor, i.e. 1e-7 of the largest norm), not
        // against their own round-off.
        double gmax = 0;
        for (std::size_t k = 0; k < stats.size(); k += 3) gmax = std::max(gmax, static_cast<double>(stats[k + 2]));
        const double floor = (std::is_same_v<T, float> ? 1e-3 : 1e-5) * gmax;
        std::size_t t = 0, at = 0;
        for (const auto& e : net.table().entries()) {
            if (!e.trainable) continue;
            double s = 0, a = 0, q = 0;
            std::vector<float> mine;
            for (index_t j = 0; j < e.numel(); ++j) {
                const double v = g[static_cast<std::size_t>(e.offset + j)];
                s += v;
                a += std::abs(v);
                q += v * v;
                mine.push_back(static_cast<float>(v));
            }
            const double n = static_cast<double>(e.numel());
            EXPECT_NEAR(a, stats[3 * t + 1], 1e-4 * stats[3 * t + 1] + n * floor) << e.name << " sum|g| " << mode;
            EXPECT_NEAR(std::sqrt(q), stats[3 * t + 2], 1e-4 * stats[3 * t + 2] + std::sqrt(n) * floor) << e.name << " |g| " << mode;
            EXPECT_NEAR(s, stats[3 * t], 1e-4 * stats[3 * t + 1] + n * floor) << e.name << " sum g " << mode;
            if (e.numel() <= 2048) {
                ASSERT_LE(at + mine.size(), small.size());
                expect_close(mine, std::vector<float>(small.begin() + static_cast<std::ptrdiff_t>(at),
                                                      small.begin() + static_cast<std::ptrdiff_t>(at + mine.size())),
                             1e-4, e.name + " gradient " + mode, floor);
                at += mine.size();
            }
            ++t;
        }
        EXPECT_EQ(at, small.size());
        if (mode == "train") {
            std::vector<float> running;
            const auto hp = net.parameters().to_host();
            for (const auto& e : net.table().entries())
                if (e.name.find("running") != std::string::npos)
                    for (index_t j = 0; j < e.numel(); ++j)
                        running.push_back(static_cast<float>(hp[static_cast<std::size_t>(e.offset + j)]));
            expect_close(running, load("running_train"), 1e-5, "running statistics");
        }
    }
}
TYPED_TEST(UnextS, MatchesPyTorchDouble) { check_parity<TypeParam, double>(); }
TYPED_TEST(UnextS, MatchesPyTorchFloat) { check_parity<TypeParam, float>(); }
#endif

}  // namespace
