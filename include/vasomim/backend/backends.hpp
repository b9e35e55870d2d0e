#pragma once
// Every backend this translation unit can use: cpu and the Thrust host systems under the host
// compiler, the Thrust CUDA system under nvcc.

#include "vasomim/backend/tags.hpp"
#include "vasomim/backend/thrust.hpp"
#if !VASOMIM_HAS_CUDA
#include "vasomim/backend/cpu.hpp"
#endif

namespace vasomim {

/// The backend programs use by default: thrust_cuda in a translation unit compiled by nvcc (CMake's
/// -DVASOMIM_BACKEND=cuda builds the programs that way), cpu otherwise.
#if VASOMIM_HAS_CUDA
using default_backend = backend::thrust_cuda;
#else
using default_backend = backend::cpu;
#endif

}  // namespace vasomim
