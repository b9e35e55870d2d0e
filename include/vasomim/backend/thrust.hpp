#pragma once
// The Thrust backend: storage in Thrust vectors of the chosen system and algorithms through Thrust
// execution policies. The host systems (cpp, omp) are built with the host compiler, which makes
// the device code paths testable without a GPU; the cuda system is built with nvcc and its GEMM
// goes through cuBLAS. Never compile the host systems with nvcc (known CCCL breakage).

#include <cstdint>
#include <cstring>

#include "vasomim/core/config.hpp"

// Under the host compiler Thrust's default device system (CUDA) is unavailable; make it the
// sequential host system unless the user chose one. Systems are always named explicitly here.
#if !VASOMIM_HAS_CUDA && !defined(THRUST_DEVICE_SYSTEM)
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif

#include <thrust/copy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/scatter.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include "vasomim/backend/detail/gemm_checks.hpp"
#include "vasomim/backend/traits.hpp"

#if VASOMIM_HAS_CUDA
#include "vasomim/backend/detail/cublas_gemm.hpp"
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system/cuda/vector.h>
#else
#include "vasomim/backend/detail/eigen_gemm.hpp"
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/system/cpp/vector.h>
#include <thrust/system/omp/execution_policy.h>
#include <thrust/system/omp/vector.h>
#endif

namespace vasomim {
namespace detail {

/// What differs between Thrust systems: vector type, execution policy, memory transfers, GEMM.
template <class System>
struct thrust_system {
    static_assert(always_false<System>,
                  "vasomim: this Thrust system is not available in this translation unit. The "
                  "cpp and omp systems need the host compiler (g++), the cuda system needs nvcc.");
};

#if !VASOMIM_HAS_CUDA
/// Host systems share memory semantics and the Eigen GEMM.
struct thrust_host_system {
    static constexpr const char* gemm_engine = host_gemm_engine;
    static constexpr bool host_accessible = true;
    template <class T>
    static void copy_to_host(const T* src, std::size_t n, T* host) {
        if (n) std::memmove(host, src, n * sizeof(T));
    }
    template <class T>
    static void copy_from_host(const T* host, std::size_t n, T* dst) {
        if (n) std::memmove(dst, host, n * sizeof(T));
    }
    template <class T>
    static void gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n,
                             std::int64_t k, T alpha, const T* a, std::int64_t lda,
                             std::int64_t sa, const T* b, std::int64_t ldb, std::int64_t sb,
                             T beta, T* c, std::int64_t ldc, std::int64_t sc, std::int64_t batch) {
        eigen_gemm_batched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
    }
};

template <>
struct thrust_system<backend::system::cpp> : thrust_host_system {
    static constexpr const char* name = "thrust-cpp";
    template <class T>
    using vector = ::thrust::cpp::vector<T>;
    static auto policy() { return ::thrust::cpp::par; }
};

template <>
struct thrust_system<backend::system::omp> : thrust_host_system {
    static constexpr const char* name = "thrust-omp";
    template <class T>
    using vector = ::thrust::omp::vector<T>;
    static auto policy() { return ::thrust::omp::par; }
};
#else
template <>
struct thrust_system<backend::system::cuda> {
    static constexpr const char* name = "thrust-cuda";
    static constexpr const char* gemm_engine = "cuBLAS";
    static constexpr bool host_accessible = false;
    template <class T>
    using vector = ::thrust::cuda::vector<T>;
    static auto policy() { return ::thrust::cuda::par; }
    template <class T>
    static void copy_to_host(const T* src, std::size_t n, T* host) {
        if (n) cuda_check(cudaMemcpy(host, src, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy");
    }
    template <class T>
    static void copy_from_host(const T* host, std::size_t n, T* dst) {
        if (n) cuda_check(cudaMemcpy(dst, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    template <class T>
    static void gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n,
                             std::int64_t k, T alpha, const T* a, std::int64_t lda,
                             std::int64_t sa, const T* b, std::int64_t ldb, std::int64_t sb,
                             T beta, T* c, std::int64_t ldc, std::int64_t sc, std::int64_t batch) {
        cublas_gemm_batched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
    }
};
#endif

// Functors of the Thrust algorithms (namespace scope: nvcc's kernel stubs must be able to name them).
template <class U, class Map>
struct cast_map {
    Map map;
    template <class T>
    VASOMIM_HOST_DEVICE U operator()(const T& x) const { return static_cast<U>(map(x)); }
};
template <class I>
struct row_of {
    I cols;
    VASOMIM_HOST_DEVICE I operator()(I i) const { return i / cols; }
};
template <class I>
struct col_of {
    I cols;
    VASOMIM_HOST_DEVICE I operator()(I i) const { return i % cols; }
};

}  // namespace detail

template <class System>
struct backend_traits<backend::thrust<System>> {
private:
    using sys = detail::thrust_system<System>;

public:
    static constexpr const char* name = sys::name;
    /// What runs GEMMs (backend_traits<backend::cpu>::gemm_engine on the host systems).
    static constexpr const char* gemm_engine = sys::gemm_engine;
    static constexpr bool host_accessible = sys::host_accessible;

    template <class T>
    using vector = typename sys::template vector<T>;

    template <class T>
    static T* data(vector<T>& v) { return ::thrust::raw_pointer_cast(v.data()); }
    template <class T>
    static const T* data(const vector<T>& v) { return ::thrust::raw_pointer_cast(v.data()); }

    template <class F>
    static void for_each_index(std::size_t n, F f) {
        ::thrust::for_each_n(sys::policy(), ::thrust::counting_iterator<std::int64_t>(0),
                             static_cast<std::int64_t>(n), f);
    }

    template <class T>
    static void fill(T* p, std::size_t n, T value) {
        ::thrust::fill_n(sys::policy(), p, n, value);
    }
    template <class T>
    static void copy(const T* src, std::size_t n, T* dst) {
        ::thrust::copy_n(sys::policy(), src, n, dst);
    }
    template <class T>
    static void copy_to_host(const T* src, std::size_t n, T* host) { sys::copy_to_host(src, n, host); }
    template <class T>
    static void copy_from_host(const T* host, std::size_t n, T* dst) { sys::copy_from_host(host, n, dst); }

    template <class T, class U, class F>
    static void transform(const T* in, std::size_t n, U* out, F f) {
        ::thrust::transform(sys::policy(), in, in + n, out, f);
    }
    template <class T1, class T2, class U, class F>
    static void transform(const T1* a, const T2* b, std::size_t n, U* out, F f) {
        ::thrust::transform(sys::policy(), a, a + n, b, out, f);
    }

    template <class T, class U, class Map, class Op>
    static U transform_reduce(const T* p, std::size_t n, U init, Map map, Op op) {
        return ::thrust::transform_reduce(sys::policy(), p, p + n, detail::cast_map<U, Map>{map}, init, op);
    }
    template <class T, class U, class Op>
    static U reduce(const T* p, std::size_t n, U init, Op op) {
        return ::thrust::reduce(sys::policy(), p, p + n, init, op);
    }

    template <class T, class Op>
    static void inclusive_scan(const T* in, std::size_t n, T* out, Op op) {
        ::thrust::inclusive_scan(sys::policy(), in, in + n, out, op);
    }
    template <class T, class Op>
    static void exclusive_scan(const T* in, std::size_t n, T* out, T init, Op op) {
        ::thrust::exclusive_scan(sys::policy(), in, in + n, out, init, op);
    }

    template <class I, class T>
    static void gather(const I* map, std::size_t n, const T* src, T* dst) {
        ::thrust::gather(sys::policy(), map, map + n, src, dst);
    }
    template <class T, class I>
    static void scatter(const T* src, std::size_t n, const I* map, T* dst) {
        ::thrust::scatter(sys::policy(), src, src + n, map, dst);
    }

    /// Stable ascending argsort (ties keep index order, matching the cpu backend).
    template <class K, class I>
    static void argsort(const K* keys, std::size_t n, I* out) {
        vector<K> tmp(n);
        copy(keys, n, data(tmp));
        ::thrust::sequence(sys::policy(), out, out + n);
        ::thrust::stable_sort_by_key(sys::policy(), data(tmp), data(tmp) + n, out);
    }
    /// Row-wise stable argsort without a loop over rows: a global stable sort by key, then a
    /// stable sort by row index, then reduction of the indices to within-row positions.
    template <class K, class I>
    static void argsort_rows(const K* keys, std::size_t rows, std::size_t cols, I* out) {
        const std::size_t n = rows * cols;
        if (n == 0) return;
        argsort(keys, n, out);
        vector<I> row(n);
        const auto c = static_cast<I>(cols);
        transform(out, n, data(row), detail::row_of<I>{c});
        ::thrust::stable_sort_by_key(sys::policy(), data(row), data(row) + n, out);
        transform(out, n, out, detail::col_of<I>{c});
    }

    template <class T>
    static void gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n,
                             std::int64_t k, T alpha, const T* a, std::int64_t lda,
                             std::int64_t stride_a, const T* b, std::int64_t ldb,
                             std::int64_t stride_b, T beta, T* c, std::int64_t ldc,
                             std::int64_t stride_c, std::int64_t batch) {
        detail::check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc, batch);
        sys::gemm_batched(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                          stride_c, batch);
    }
};

}  // namespace vasomim
