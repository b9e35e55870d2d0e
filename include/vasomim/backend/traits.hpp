#pragma once
// backend_traits<Backend>: the one place a backend says what it provides, and the concept that
// checks it. The primary template fails with a message naming the problem (as CuTe's MMA_Traits).

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "vasomim/backend/tags.hpp"
#include "vasomim/core/functional.hpp"
#include "vasomim/core/philox.hpp"

namespace vasomim {

namespace detail {
template <class>
inline constexpr bool always_false = false;

/// Index functor that does nothing; used to check for_each_index in the concept.
struct noop_index {
    VASOMIM_HOST_DEVICE void operator()(std::int64_t) const {}
};
}

/// Operand transposition for GEMM.
enum class transpose : bool { no = false, yes = true };

/// Specialised by each backend header (backend/cpu.hpp, backend/thrust.hpp).
template <class Backend>
struct backend_traits {
    static_assert(detail::always_false<Backend>,
                  "vasomim: no backend_traits for this type. Use vasomim::backend::cpu or "
                  "vasomim::backend::thrust<System>, and include the header that defines it "
                  "(vasomim/backend/cpu.hpp or vasomim/backend/thrust.hpp).");
};

/// The storage type of backend B for elements of type T.
template <class B, class T>
using backend_vector = typename backend_traits<B>::template vector<T>;

/// What every backend provides: storage, transfers, parallel primitives, batched GEMM.
/// Pointers are backend ("device") pointers; `host` pointers are plain host memory.
template <class B>
concept backend_policy =
    backend::is_backend_v<B> &&
    requires { typename backend_vector<B, float>; } &&
    requires(float* p, const float* cp, std::int64_t* ip, const std::int64_t* cip, std::size_t n,
             backend_vector<B, float>& v) {
        { backend_traits<B>::name } -> std::convertible_to<const char*>;
        { backend_traits<B>::host_accessible } -> std::convertible_to<bool>;
        { backend_traits<B>::data(v) } -> std::same_as<float*>;
        backend_traits<B>::fill(p, n, 1.0f);
        backend_traits<B>::copy(cp, n, p);
        backend_traits<B>::copy_to_host(cp, n, p);
        backend_traits<B>::copy_from_host(cp, n, p);
        backend_traits<B>::for_each_index(n, detail::noop_index{});
        backend_traits<B>::transform(cp, n, p, identity{});
        backend_traits<B>::transform(cp, cp, n, p, plus{});
        { backend_traits<B>::reduce(cp, n, 0.0f, plus{}) } -> std::same_as<float>;
        { backend_traits<B>::transform_reduce(cp, n, 0.0f, identity{}, plus{}) } -> std::same_as<float>;
        backend_traits<B>::inclusive_scan(cp, n, p, plus{});
        backend_traits<B>::exclusive_scan(cp, n, p, 0.0f, plus{});
        backend_traits<B>::gather(cip, n, cp, p);
        backend_traits<B>::scatter(cp, n, cip, p);
        backend_traits<B>::argsort(cp, n, ip);
        backend_traits<B>::argsort_rows(cp, n, n, ip);
        backend_traits<B>::gemm_batched(transpose::no, transpose::no, 1, 1, 1, 1.0f, cp, 1, 1, cp,
                                        1, 1, 0.0f, p, 1, 1, 1);
    };

}  // namespace vasomim
