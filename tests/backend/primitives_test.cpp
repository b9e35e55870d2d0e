// The backend primitives, one typed test suite run on every backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/core/tensor.hpp"

namespace {

using namespace vasomim;

// Named functors: nvcc forbids extended lambdas inside gtest's (private) TestBody.
struct square {
    template <class T>
    VASOMIM_HOST_DEVICE T operator()(T x) const { return x * x; }
};
struct subtract_first {
    VASOMIM_HOST_DEVICE float operator()(float x, float y) const { return y - x; }
};
struct write_triple {
    std::int64_t* p;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const { p[i] = 3 * i; }
};

template <class B>
class Primitives : public ::testing::Test {};
TYPED_TEST_SUITE(Primitives, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(Primitives, FillAndHostRoundTrip) {
    using B = TypeParam;
    tensor<float, B> t(shape{3, 5});
    EXPECT_EQ(t.to_host(), std::vector<float>(15, 0.0f)) << "new tensors are zero";
    t.fill(2.5f);
    EXPECT_EQ(t.to_host(), std::vector<float>(15, 2.5f));

    std::vector<float> host(15);
    std::iota(host.begin(), host.end(), -3.0f);
    auto u = tensor<float, B>::from_host(host, shape{3, 5});
    EXPECT_EQ(u.to_host(), host);
    auto c = u.clone();
    u.fill(0.0f);
    EXPECT_EQ(c.to_host(), host) << "clone is deep";
    EXPECT_THROW((tensor<float, B>::from_host(host, shape{4, 4})), shape_error);
    const tensor<float, B> none;
    EXPECT_TRUE(none.empty()) << "a default tensor holds no elements";
    EXPECT_TRUE(none.to_host().empty());
}

TYPED_TEST(Primitives, ReshapeKeepsDataAndChecksCount) {
    using B = TypeParam;
    std::vector<int> host(12);
    std::iota(host.begin(), host.end(), 0);
    auto t = tensor<int, B>::from_host(host, shape{3, 4});
    t.reshape(shape{2, 6});
    EXPECT_EQ(t.shape(), (shape{2, 6}));
    EXPECT_EQ(t.to_host(), host);
    EXPECT_THROW(t.reshape(shape{5, 2}), shape_error);
}

TYPED_TEST(Primitives, ElementwiseMaps) {
    using B = TypeParam;
    std::vector<float> a{1, -2, 3, -4, 5}, b{10, 20, 30, 40, 50};
    auto ta = tensor<float, B>::from_host(a, shape{5});
    auto tb = tensor<float, B>::from_host(b, shape{5});
    tensor<float, B> out(shape{5});
    transform(ta, out, square{});
    EXPECT_EQ(out.to_host(), (std::vector<float>{1, 4, 9, 16, 25}));
    transform(ta, tb, out, subtract_first{});
    EXPECT_EQ(out.to_host(), (std::vector<float>{9, 22, 27, 44, 45}));
    tensor<float, B> wrong(shape{4});
    EXPECT_THROW(transform(ta, wrong, identity{}), shape_error);

    // parallel_for writes by index.
    tensor<std::int64_t, B> idx(shape{1000});
    parallel_for<B>(1000, write_triple{idx.data()});
    const auto h = idx.to_host();
    for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(h[static_cast<std::size_t>(i)], 3 * i);
}

TYPED_TEST(Primitives, Reductions) {
    using B = TypeParam;
    const std::size_t n = 100000;  // several chunks on the cpu backend
    std::vector<double> host(n);
    for (std::size_t i = 0; i < n; ++i) host[i] = double(i % 97) - 40.0;
    auto t = tensor<double, B>::from_host(host, shape{static_cast<index_t>(n)});
    const double expect = std::accumulate(host.begin(), host.end(), 0.0);
    EXPECT_DOUBLE_EQ(sum(t), expect);
    EXPECT_DOUBLE_EQ(reduce(t, -1e9, maximum{}), 56.0);
    EXPECT_DOUBLE_EQ(reduce(t, 1e9, minimum{}), -40.0);
    const double sq = backend_traits<B>::transform_reduce(t.data(), n, 0.0, square{}, plus{});
    double sq_ref = 0;
    for (double x : host) sq_ref += x * x;
    EXPECT_DOUBLE_EQ(sq, sq_ref);
    tensor<double, B> empty(shape{0});
    EXPECT_EQ(sum(empty), 0.0);
}

TYPED_TEST(Primitives, Scans) {
    using B = TypeParam;
    std::vector<int> host{3, 1, 4, 1, 5, 9, 2, 6};
    auto t = tensor<int, B>::from_host(host, shape{8});
    tensor<int, B> out(shape{8});
    backend_traits<B>::inclusive_scan(t.data(), 8, out.data(), plus{});
    EXPECT_EQ(out.to_host(), (std::vector<int>{3, 4, 8, 9, 14, 23, 25, 31}));
    backend_traits<B>::exclusive_scan(t.data(), 8, out.data(), 0, plus{});
    EXPECT_EQ(out.to_host(), (std::vector<int>{0, 3, 4, 8, 9, 14, 23, 25}));
    backend_traits<B>::inclusive_scan(t.data(), 8, out.data(), maximum{});
    EXPECT_EQ(out.to_host(), (std::vector<int>{3, 3, 4, 4, 5, 9, 9, 9}));
}

TYPED_TEST(Primitives, GatherScatter) {
    using B = TypeParam;
    std::vector<float> src{10, 11, 12, 13, 14};
    std::vector<std::int64_t> map{4, 0, 3, 1, 2};
    auto ts = tensor<float, B>::from_host(src, shape{5});
    auto tm = tensor<std::int64_t, B>::from_host(map, shape{5});
    tensor<float, B> g(shape{5}), s(shape{5});
    backend_traits<B>::gather(tm.data(), 5, ts.data(), g.data());
    EXPECT_EQ(g.to_host(), (std::vector<float>{14, 10, 13, 11, 12}));
    backend_traits<B>::scatter(g.data(), 5, tm.data(), s.data());
    EXPECT_EQ(s.to_host(), src) << "scatter inverts gather for a permutation";
}

TYPED_TEST(Primitives, ArgsortIsStableAndAscending) {
    using B = TypeParam;
    std::vector<float> keys{0.5f, 0.1f, 0.5f, -1.0f, 0.1f, 2.0f};
    auto tk = tensor<float, B>::from_host(keys, shape{6});
    tensor<std::int64_t, B> idx(shape{6});
    argsort(tk, idx);
    EXPECT_EQ(idx.to_host(), (std::vector<std::int64_t>{3, 1, 4, 0, 2, 5}));
}

TYPED_TEST(Primitives, ArgsortRowsSortsEachRowIndependently) {
    using B = TypeParam;
    const index_t rows = 37, cols = 29;
    std::vector<float> keys(static_cast<std::size_t>(rows * cols));
    const philox g(5, 0);
    for (std::size_t i = 0; i < keys.size(); ++i)
        keys[i] = std::floor(g.uniform(i) * 8.0f);  // many ties
    auto tk = tensor<float, B>::from_host(keys, shape{rows, cols});
    tensor<std::int32_t, B> idx(shape{rows, cols});
    argsort_rows(tk, idx);
    const auto h = idx.to_host();
    for (index_t r = 0; r < rows; ++r) {
        std::vector<std::int32_t> ref(static_cast<std::size_t>(cols));
        std::iota(ref.begin(), ref.end(), 0);
        const float* row = keys.data() + r * cols;
        std::stable_sort(ref.begin(), ref.end(), [&](int a, int b) { return row[a] < row[b]; });
        for (index_t c = 0; c < cols; ++c)
            ASSERT_EQ(h[static_cast<std::size_t>(r * cols + c)], ref[static_cast<std::size_t>(c)])
                << "row " << r << " col " << c;
    }
    tensor<std::int32_t, B> bad(shape{rows, cols + 1});
    EXPECT_THROW(argsort_rows(tk, bad), shape_error);
}

TYPED_TEST(Primitives, RandomFillsFollowTheCounterStream) {
    using B = TypeParam;
    const philox g(2024, 11);
    tensor<float, B> u(shape{1001}), z(shape{1001});
    fill_uniform(u, g, 17, -2.0f, 3.0f);
    fill_normal(z, g, 5, 1.0f, 0.5f);
    const auto hu = u.to_host(), hz = z.to_host();
    for (std::size_t i = 0; i < hu.size(); ++i) {
        ASSERT_EQ(hu[i], -2.0f + 5.0f * g.uniform(17 + i)) << i;
        ASSERT_GE(hu[i], -2.0f);
        ASSERT_LT(hu[i], 3.0f);
#if !VASOMIM_HAS_CUDA
        ASSERT_EQ(hz[i], 1.0f + 0.5f * g.normal(5 + i)) << i;
#else
        ASSERT_NEAR(hz[i], 1.0f + 0.5f * g.normal(5 + i), 1e-5f) << i;
#endif
    }
}

TYPED_TEST(Primitives, TensorViewSlicesAndIndexes) {
    using B = TypeParam;
    std::vector<int> host(24);
    std::iota(host.begin(), host.end(), 0);
    auto t = tensor<int, B>::from_host(host, shape{2, 3, 4});
    auto v = t.view();
    EXPECT_TRUE(v.is_contiguous());
    auto s = v.slice(1);
    EXPECT_EQ(s.shape(), (shape{3, 4}));
    EXPECT_EQ(s.data(), t.data() + 12);
    EXPECT_THROW(v.slice(2), shape_error);
    if constexpr (backend_traits<B>::host_accessible) {
        EXPECT_EQ(t(1, 2, 3), 23);
        EXPECT_EQ(s(0, 1), 13);
    }
}

}  // namespace
