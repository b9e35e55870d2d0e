#pragma once
// The backends every typed test runs on: the host ones under g++, thrust-cuda under nvcc.

#include <gtest/gtest.h>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/backend/backends.hpp"

namespace vasomim::test {

#if VASOMIM_HAS_CUDA
using all_backends = ::testing::Types<backend::thrust_cuda>;
#elif VASOMIM_TEST_SANITIZER_BACKENDS
// Sanitizer builds (tests/CMakeLists.txt): cpu and the parallel Thrust backend. thrust-cpp runs the
// same Thrust algorithms sequentially and is tested in the normal build; leaving it out here saves
// a third of the sanitizer build's compile time on CI's two cores.
using all_backends = ::testing::Types<backend::cpu, backend::thrust_omp>;
#else
using all_backends = ::testing::Types<backend::cpu, backend::thrust_omp, backend::thrust_cpp>;
#endif

/// Names typed-test instances after the backend ("cpu", "thrust-omp", ...).
struct backend_name {
    template <class B>
    static std::string GetName(int) {
        std::string n = backend_traits<B>::name;
        for (auto& c : n)
            if (c == '-') c = '_';
        return n;
    }
};

}  // namespace vasomim::test
