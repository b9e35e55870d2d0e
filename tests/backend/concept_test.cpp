// Compile-time checks of the backend policy concept.
#include <gtest/gtest.h>

#include "test_backends.hpp"

namespace {

TEST(BackendConcept, EveryShippedBackendSatisfiesIt) {
#if VASOMIM_HAS_CUDA
    static_assert(vasomim::backend_policy<vasomim::backend::thrust_cuda>);
#else
    static_assert(vasomim::backend_policy<vasomim::backend::cpu>);
    static_assert(vasomim::backend_policy<vasomim::backend::thrust_omp>);
    static_assert(vasomim::backend_policy<vasomim::backend::thrust_cpp>);
    static_assert(vasomim::backend_traits<vasomim::backend::cpu>::host_accessible);
#endif
    SUCCEED();
}

}  // namespace
