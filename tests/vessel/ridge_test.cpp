// Gaussian derivatives, Hessian and the Frangi / Sato / Meijering filters against the scipy-based
// reference (tools/vesselness_reference.py, scikit-image >= 0.20 semantics), on every backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/meijering.hpp"
#include "vasomim/vessel/sato.hpp"
#include "vessel/vessel_fixture.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::vessel;
using vasomim::test::close_to_reference;
using vasomim::test::load_tensor;
using vasomim::test::load_values;

constexpr double parity = 1e-5;  // the bar: max|ours - ref| <= 1e-5 max|ref|

template <class B>
class Ridge : public ::testing::Test {};
TYPED_TEST_SUITE(Ridge, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(Ridge, KernelsAreScipys) {
    // scipy: _gaussian_kernel1d(1.5, 0, 3) and (1.5, 1, 3), radius int(4 * 1.5 + 0.5) = 6.
    EXPECT_EQ(gaussian_radius(1.5, 4.0), 6);
    EXPECT_EQ(gaussian_radius(1.0 / std::sqrt(2.0), 100.0), 71);
    EXPECT_EQ(gaussian_radius(9.0 / std::sqrt(2.0), 8.0), 51);
    const auto g = gaussian_kernel1d(1.5, 0, 3);
    // scipy.ndimage._filters._gaussian_kernel1d(1.5, 0, 3)
    const std::vector<double> g_ref{0.03663284536919403, 0.11128075847888486, 0.21674532140370778, 0.27068214949642655,
                                    0.21674532140370778, 0.11128075847888486, 0.03663284536919403};
    const auto d = gaussian_kernel1d(1.5, 1, 3);
    for (std::size_t i = 0; i < 7; ++i) {
        EXPECT_NEAR(g[i], g_ref[i], 1e-16);
        const double x = static_cast<double>(i) - 3;
        EXPECT_DOUBLE_EQ(d[i], -x / 2.25 * g[i]) << "first order: -x / sigma^2 * phi";
    }
    double sum = 0;
    for (double v : g) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-15);
}

TYPED_TEST(Ridge, GaussianFilterMatchesScipyInEveryModeOnATinyImage) {
    using B = TypeParam;
    auto tiny = load_tensor<double, B>("tiny_input");  // 5 x 4: every kernel is longer than the image
    for (const char* m : {"reflect", "constant", "nearest", "mirror", "wrap"}) {
        SCOPED_TRACE(m);
        const auto ref = load_values<double>(std::string("tiny_gaussian_") + m);
        const auto mode = parse_boundary_mode(m);
        const auto a = gaussian_filter(tiny.view(), {1.7, 0.9}, {1, 0}, mode, 0.3, 6.0).to_host();
        const auto b = gaussian_filter(tiny.view(), {1.7, 0.9}, {0, 2}, mode, 0.3, 6.0).to_host();
        const auto c = gaussian_filter(tiny.view(), {0.6, 2.2}, {3, 0}, mode, 0.3, 4.0).to_host();
        std::vector<double> ours(a);
        ours.insert(ours.end(), b.begin(), b.end());
        ours.insert(ours.end(), c.begin(), c.end());
        EXPECT_TRUE(close_to_reference(ours, ref, 1e-12));
    }
    EXPECT_THROW(gaussian_filter(tiny.view(), {-1.0, 1.0}, {0, 0}), value_error);
    EXPECT_THROW(gaussian_filter(tiny.view(), {1.0, 1.0}, {0, -1}), value_error);
    EXPECT_THROW(gaussian_filter(tiny.view(), {1.0, 1.0}, {0, 0}, boundary_mode::reflect, 0.0, -2.0), value_error);
}

TYPED_TEST(Ridge, HessianMatchesTheTwoPassReference) {
    using B = TypeParam;
    const auto rnd = load_tensor<float, B>("random_input");
    const auto host = rnd.to_host();
    // The reference Hessian is of the top-left 19 x 23 corner, in double.
    std::vector<double> corner;
    for (int i = 0; i < 19; ++i)
        for (int j = 0; j < 23; ++j) corner.push_back(static_cast<double>(host[static_cast<std::size_t>(i * 53 + j)]));
    auto img = tensor<double, B>::from_host(corner, shape{19, 23});
    for (double sigma : {1.0, 2.5}) {
        SCOPED_TRACE(sigma);
        const auto ref = load_values<double>(sigma == 1.0 ? "random_hessian_s1" : "random_hessian_s2.5");
        const auto h = hessian(img, sigma);
        std::vector<double> ours = h.rr.to_host();
        for (const auto* t : {&h.rc, &h.cc}) {
            const auto v = t->to_host();
            ours.insert(ours.end(), v.begin(), v.end());
        }
        EXPECT_TRUE(close_to_reference(ours, ref, 1e-12));
        const auto e = hessian_eigenvalues(h);
        const auto l1 = e.l1.to_host(), l2 = e.l2.to_host();
        for (std::size_t i = 0; i < l1.size(); ++i) {
            ASSERT_GE(l1[i], l2[i]);
            ASSERT_NEAR(l1[i] + l2[i], ours[i] + ours[2 * l1.size() + i], 1e-12) << "trace";
        }
    }
}

TYPED_TEST(Ridge, FiltersMatchReferenceOnRandomFloatImage) {
    using B = TypeParam;
    const auto rnd = load_tensor<float, B>("random_input");  // 37 x 53 < the sigma = 1 kernel (143 taps)
    EXPECT_TRUE(close_to_reference(frangi(rnd).to_host(), load_values<float>("random_frangi"), parity));
    EXPECT_TRUE(close_to_reference(sato(rnd).to_host(), load_values<float>("random_sato"), parity));
    EXPECT_TRUE(close_to_reference(meijering(rnd).to_host(), load_values<float>("random_meijering"), parity));

    frangi_options white;
    white.black_ridges = false;
    EXPECT_TRUE(close_to_reference(frangi(rnd, white).to_host(), load_values<float>("random_frangi_white"), parity));

    frangi_options p;
    p.sigmas = {1.5, 2.5};
    p.alpha = 0.3;
    p.beta = 0.8;
    p.gamma = 0.05;
    EXPECT_TRUE(close_to_reference(frangi(rnd, p).to_host(), load_values<float>("random_frangi_params"), parity));

    meijering_options m;
    m.sigmas = {0.8, 2};
    m.alpha = -0.25;
    m.black_ridges = false;
    EXPECT_TRUE(close_to_reference(meijering(rnd, m).to_host(), load_values<float>("random_meijering_alpha"), parity));
}

TYPED_TEST(Ridge, SatoMatchesReferenceInEveryBoundaryMode) {
    using B = TypeParam;
    const auto rnd = load_tensor<float, B>("random_input");
    for (const char* m : {"reflect", "constant", "nearest", "mirror", "wrap"}) {
        SCOPED_TRACE(m);
        sato_options o;
        o.sigmas = {1, 2.5};
        o.mode = parse_boundary_mode(m);
        o.cval = 0.75;
        EXPECT_TRUE(close_to_reference(sato(rnd, o).to_host(), load_values<float>(std::string("random_sato_") + m), parity));
    }
}

TYPED_TEST(Ridge, FiltersMatchReferenceOnSyntheticVesselsUint8) {
    using B = TypeParam;
    const auto syn = load_tensor<std::uint8_t, B>("synthetic_input");
    const auto f = frangi(syn);
    static_assert(std::is_same_v<typename decltype(f)::value_type, double>, "uint8 images are filtered in double");
    EXPECT_TRUE(close_to_reference(f.to_host(), load_values<float>("synthetic_frangi"), parity));
    EXPECT_TRUE(close_to_reference(sato(syn).to_host(), load_values<float>("synthetic_sato"), parity));
    EXPECT_TRUE(close_to_reference(meijering(syn).to_host(), load_values<float>("synthetic_meijering"), parity));
}

TYPED_TEST(Ridge, FastModeStaysCloseToExact) {
    using B = TypeParam;
    const auto syn = load_tensor<std::uint8_t, B>("synthetic_input");
    sato_options fast;
    fast.precision = kernel_precision::fast;
    // Taps below 2^-24 of the peak are dropped: the change is of the order of float rounding.
    EXPECT_TRUE(close_to_reference(sato(syn, fast).to_host(), load_values<float>("synthetic_sato"), 1e-5));
    frangi_options ffast;
    ffast.precision = kernel_precision::fast;
    EXPECT_TRUE(close_to_reference(frangi(syn, ffast).to_host(), load_values<float>("synthetic_frangi"), 1e-5));
}

TYPED_TEST(Ridge, BadInputIsNamed) {
    using B = TypeParam;
    const auto rnd = load_tensor<float, B>("random_input");
    auto message = [](auto&& f) -> std::string {
        try {
            f();
        } catch (const vasomim::error& e) {
            return e.what();
        }
        return "no exception";
    };
    sato_options empty;
    empty.sigmas = {};
    EXPECT_NE(message([&] { sato(rnd, empty); }).find("empty"), std::string::npos);
    sato_options zero;
    zero.sigmas = {1, 0};
    EXPECT_NE(message([&] { sato(rnd, zero); }).find("sigma"), std::string::npos);
    EXPECT_THROW(sato(rnd, zero), value_error);
    sato_options neg;
    neg.truncate = -1.0;
    EXPECT_NE(message([&] { sato(rnd, neg); }).find("truncate"), std::string::npos);
    frangi_options beta;
    beta.beta = 0;
    EXPECT_THROW(frangi(rnd, beta), value_error);
    EXPECT_THROW(parse_boundary_mode("reflective"), config_error);

    auto host = rnd.to_host();
    host[100] = std::numeric_limits<float>::quiet_NaN();
    auto nan_img = tensor<float, B>::from_host(host, rnd.shape());
    EXPECT_NE(message([&] { frangi(nan_img); }).find("NaN"), std::string::npos);
    host[100] = std::numeric_limits<float>::infinity();
    auto inf_img = tensor<float, B>::from_host(host, rnd.shape());
    EXPECT_THROW(meijering(inf_img), value_error);

    tensor<float, B> one(shape{1, 1});
    EXPECT_THROW(sato(one), shape_error);
    tensor<float, B> none(shape{0, 5});
    EXPECT_THROW(frangi(none), shape_error);
    tensor<float, B> flat(shape{12});
    EXPECT_THROW(meijering(flat), shape_error);
    // Smaller than the kernel is fine: the boundary mode extends the image as scipy does.
    tensor<float, B> small(shape{2, 3}, 1.0f);
    const auto s = sato(small).to_host();
    for (float v : s) EXPECT_NEAR(v, 0.0f, 1e-6f) << "a constant image has no ridges";
}

}  // namespace
