#pragma once
// The cpu backend: aligned host buffers, OpenMP loops, Eigen GEMM.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "vasomim/backend/detail/eigen_gemm.hpp"
#include "vasomim/backend/detail/gemm_checks.hpp"
#include "vasomim/backend/traits.hpp"

namespace vasomim {

template <>
struct backend_traits<backend::cpu> {
    static constexpr const char* name = "cpu";
    /// What runs GEMMs: Eigen, and OpenBLAS for large single products where the build links it.
    static constexpr const char* gemm_engine = detail::host_gemm_engine;
    /// Host memory: pointers may be dereferenced directly and mapped with Eigen / xtensor.
    static constexpr bool host_accessible = true;

    /// Storage aligned for Eigen's vectorised kernels.
    template <class T>
    using vector = std::vector<T, Eigen::aligned_allocator<T>>;

    template <class T>
    static T* data(vector<T>& v) { return v.data(); }
    template <class T>
    static const T* data(const vector<T>& v) { return v.data(); }

    template <class F>
    static void for_each_index(std::size_t n, F f) {
        const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < count; ++i) f(i);
    }

    template <class T>
    static void fill(T* p, std::size_t n, T value) {
        for_each_index(n, [=](std::int64_t i) { p[i] = value; });
    }

    template <class T>
    static void copy(const T* src, std::size_t n, T* dst) {
        if (n) std::memmove(dst, src, n * sizeof(T));
    }
    template <class T>
    static void copy_to_host(const T* src, std::size_t n, T* host) { copy(src, n, host); }
    template <class T>
    static void copy_from_host(const T* host, std::size_t n, T* dst) { copy(host, n, dst); }

    template <class T, class U, class F>
    static void transform(const T* in, std::size_t n, U* out, F f) {
        for_each_index(n, [=](std::int64_t i) { out[i] = f(in[i]); });
    }
    template <class T1, class T2, class U, class F>
    static void transform(const T1* a, const T2* b, std::size_t n, U* out, F f) {
        for_each_index(n, [=](std::int64_t i) { out[i] = f(a[i], b[i]); });
    }

    /// Deterministic for a given n: fixed-size chunks combined in order, whatever the thread count.
    template <class T, class U, class Map, class Op>
    static U transform_reduce(const T* p, std::size_t n, U init, Map map, Op op) {
        constexpr std::int64_t chunk = 4096;
        const auto count = static_cast<std::int64_t>(n);
        const std::int64_t chunks = (count + chunk - 1) / chunk;
        if (chunks <= 1) {
            U acc = init;
            for (std::int64_t i = 0; i < count; ++i) acc = op(acc, static_cast<U>(map(p[i])));
            return acc;
        }
        std::vector<U> partial(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
            const std::int64_t lo = c * chunk, hi = std::min(count, lo + chunk);
            U acc = static_cast<U>(map(p[lo]));
            for (std::int64_t i = lo + 1; i < hi; ++i) acc = op(acc, static_cast<U>(map(p[i])));
            partial[static_cast<std::size_t>(c)] = acc;
        }
        U acc = init;
        for (const U& v : partial) acc = op(acc, v);
        return acc;
    }
    template <class T, class U, class Op>
    static U reduce(const T* p, std::size_t n, U init, Op op) {
        return transform_reduce(p, n, init, identity{}, op);
    }

    template <class T, class Op>
    static void inclusive_scan(const T* in, std::size_t n, T* out, Op op) {
        std::inclusive_scan(in, in + n, out, op);
    }
    template <class T, class Op>
    static void exclusive_scan(const T* in, std::size_t n, T* out, T init, Op op) {
        std::exclusive_scan(in, in + n, out, init, op);
    }

    /// dst[i] = src[map[i]] for i < n.
    template <class I, class T>
    static void gather(const I* map, std::size_t n, const T* src, T* dst) {
        for_each_index(n, [=](std::int64_t i) { dst[i] = src[map[i]]; });
    }
    /// dst[map[i]] = src[i] for i < n (map must not repeat).
    template <class T, class I>
    static void scatter(const T* src, std::size_t n, const I* map, T* dst) {
        for_each_index(n, [=](std::int64_t i) { dst[map[i]] = src[i]; });
    }

    /// Stable ascending argsort: ties keep index order, so every backend agrees.
    template <class K, class I>
    static void argsort(const K* keys, std::size_t n, I* out) {
        std::iota(out, out + n, I(0));
        std::stable_sort(out, out + n, [keys](I a, I b) { return keys[a] < keys[b]; });
    }
    /// Row-wise stable argsort of a rows x cols matrix; indices are within the row.
    template <class K, class I>
    static void argsort_rows(const K* keys, std::size_t rows, std::size_t cols, I* out) {
        const auto r = static_cast<std::int64_t>(rows);
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < r; ++i)
            argsort(keys + i * static_cast<std::int64_t>(cols), cols,
                    out + i * static_cast<std::int64_t>(cols));
    }

    /// Row-major strided batched GEMM (see backend/gemm.hpp for the full contract).
    template <class T>
    static void gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n,
                             std::int64_t k, T alpha, const T* a, std::int64_t lda,
                             std::int64_t stride_a, const T* b, std::int64_t ldb,
                             std::int64_t stride_b, T beta, T* c, std::int64_t ldc,
                             std::int64_t stride_c, std::int64_t batch) {
        detail::check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc, batch);
        detail::eigen_gemm_batched(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                   c, ldc, stride_c, batch);
    }
};

}  // namespace vasomim
