#pragma once
// Backend tag types. A backend is an empty struct; everything it can do lives in
// backend_traits<Backend> (backend/traits.hpp), chosen at compile time.

namespace vasomim::backend {

/// CPU backend: Eigen maps over aligned host buffers, OpenMP loops, GEMM through Eigen.
struct cpu {};

/// Thrust execution systems.
namespace system {
struct cpp {};   ///< sequential host system (built with the host compiler)
struct omp {};   ///< OpenMP host system (built with the host compiler)
struct cuda {};  ///< CUDA device system (built with nvcc; GEMM through cuBLAS)
}  // namespace system

/// Thrust backend on execution system `System` (system::cpp, system::omp or system::cuda).
template <class System>
struct thrust {};

/// True for backend tag types; a new backend specialises it next to its backend_traits. The backend
/// concept tests it first, so overload resolution with a non-backend type fails softly.
template <class B>
inline constexpr bool is_backend_v = false;
template <>
inline constexpr bool is_backend_v<cpu> = true;
template <class System>
inline constexpr bool is_backend_v<thrust<System>> = true;

using thrust_cpp = thrust<system::cpp>;
using thrust_omp = thrust<system::omp>;
using thrust_cuda = thrust<system::cuda>;

}  // namespace vasomim::backend
