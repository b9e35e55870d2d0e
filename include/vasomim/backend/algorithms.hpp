#pragma once
// Free-function front end of the backend primitives. Pointer forms take the backend explicitly
// (`vasomim::fill<backend::cpu>(p, n, 0.f)`); tensor forms deduce it.

#include <cstdint>

#include "vasomim/backend/traits.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/core/tensor.hpp"

namespace vasomim {

/// Calls f(i) for every i in [0, n) in parallel on backend B. f must be VASOMIM_HOST_DEVICE.
template <backend_policy B, class F>
void parallel_for(index_t n, F f) {
    if (n > 0) backend_traits<B>::for_each_index(static_cast<std::size_t>(n), f);
}

template <class T, class B>
void copy(const tensor<T, B>& src, tensor<T, B>& dst) {
    if (!(src.shape() == dst.shape()))
        throw shape_error("copy: source " + src.shape().to_string() + " and destination " +
                          dst.shape().to_string() + " differ");
    backend_traits<B>::copy(src.data(), src.size(), dst.data());
}

/// out[i] = f(in[i]); shapes must agree.
template <class T, class U, class B, class F>
void transform(const tensor<T, B>& in, tensor<U, B>& out, F f) {
    if (in.size() != out.size())
        throw shape_error("transform: input " + in.shape().to_string() + " and output " +
                          out.shape().to_string() + " differ in size");
    backend_traits<B>::transform(in.data(), in.size(), out.data(), f);
}

/// out[i] = f(a[i], b[i]); sizes must agree.
template <class T1, class T2, class U, class B, class F>
void transform(const tensor<T1, B>& a, const tensor<T2, B>& b, tensor<U, B>& out, F f) {
    if (a.size() != b.size() || a.size() != out.size())
        throw shape_error("transform: operands " + a.shape().to_string() + ", " + b.shape().to_string() +
                          " and output " + out.shape().to_string() + " differ in size");
    backend_traits<B>::transform(a.data(), b.data(), a.size(), out.data(), f);
}

template <class T, class B, class U = T, class Op = plus>
U reduce(const tensor<T, B>& t, U init = U(0), Op op = {}) {
    return backend_traits<B>::reduce(t.data(), t.size(), init, op);
}

template <class T, class B>
T sum(const tensor<T, B>& t) { return reduce(t, T(0), plus{}); }

// ---- random fills: value i of the tensor is the generator's value at (offset + i) ----------------

/// Uniform values in [lo, hi) from the counter-based generator; identical on every backend.
template <backend_policy B, class T>
void fill_uniform(T* p, std::size_t n, const philox& gen, std::uint64_t offset = 0, T lo = T(0),
                  T hi = T(1)) {
    parallel_for<B>(static_cast<index_t>(n), [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const auto u = static_cast<T>(gen.uniform(offset + static_cast<std::uint64_t>(i)));
        p[i] = lo + (hi - lo) * u;
    });
}

/// Normal values N(mean, stddev^2) from the counter-based generator (Box-Muller).
template <backend_policy B, class T>
void fill_normal(T* p, std::size_t n, const philox& gen, std::uint64_t offset = 0, T mean = T(0),
                 T stddev = T(1)) {
    parallel_for<B>(static_cast<index_t>(n), [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        p[i] = mean + stddev * static_cast<T>(gen.normal(offset + static_cast<std::uint64_t>(i)));
    });
}

/// Raw 32-bit words of the stream.
template <backend_policy B>
void fill_bits(std::uint32_t* p, std::size_t n, const philox& gen, std::uint64_t offset = 0) {
    parallel_for<B>(static_cast<index_t>(n), [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        p[i] = gen.bits(offset + static_cast<std::uint64_t>(i));
    });
}

template <class T, class B>
void fill_uniform(tensor<T, B>& t, const philox& gen, std::uint64_t offset = 0, T lo = T(0), T hi = T(1)) {
    fill_uniform<B>(t.data(), t.size(), gen, offset, lo, hi);
}

template <class T, class B>
void fill_normal(tensor<T, B>& t, const philox& gen, std::uint64_t offset = 0, T mean = T(0),
                 T stddev = T(1)) {
    fill_normal<B>(t.data(), t.size(), gen, offset, mean, stddev);
}

// ---- ordering -----------------------------------------------------------------------------------

/// Stable ascending argsort of a 1-D tensor (or of all elements).
template <class K, class I, class B>
void argsort(const tensor<K, B>& keys, tensor<I, B>& out) {
    if (keys.size() != out.size())
        throw shape_error("argsort: keys " + keys.shape().to_string() + " and indices " +
                          out.shape().to_string() + " differ in size");
    backend_traits<B>::argsort(keys.data(), keys.size(), out.data());
}

/// Stable ascending argsort of every row of a 2-D tensor; indices are within the row.
template <class K, class I, class B>
void argsort_rows(const tensor<K, B>& keys, tensor<I, B>& out) {
    if (keys.rank() != 2 || !(keys.shape() == out.shape()))
        throw shape_error("argsort_rows: needs 2-D keys and indices of one shape, got " +
                          keys.shape().to_string() + " and " + out.shape().to_string());
    backend_traits<B>::argsort_rows(keys.data(), static_cast<std::size_t>(keys.dim(0)),
                                    static_cast<std::size_t>(keys.dim(1)), out.data());
}

// ---- GEMM ---------------------------------------------------------------------------------------

/// Row-major strided batched GEMM: for each b < batch,
///   C_b = alpha * op(A_b) * op(B_b) + beta * C_b,
/// with A_b = a + b*stride_a etc.; op(A) is m x k (stored k x m when ta == yes) with row pitch lda,
/// op(B) is k x n (stored n x k when tb == yes) with row pitch ldb, C is m x n with pitch ldc.
/// beta == 0 overwrites C. Throws shape_error for negative sizes or too-small pitches.
template <backend_policy B, class T>
void gemm_batched(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a,
                  index_t lda, index_t stride_a, const T* b, index_t ldb, index_t stride_b, T beta,
                  T* c, index_t ldc, index_t stride_c, index_t batch) {
    backend_traits<B>::gemm_batched(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                    c, ldc, stride_c, batch);
}

/// Single row-major GEMM with contiguous operands.
template <backend_policy B, class T>
void gemm(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
    const index_t lda = ta == transpose::yes ? m : k;
    const index_t ldb = tb == transpose::yes ? k : n;
    gemm_batched<B>(ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, n, 0, 1);
}

}  // namespace vasomim
