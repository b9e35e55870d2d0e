// Compile-time checks of the backend policy concept.
#include <gtest/gtest.h>

#include <string>

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

#if !VASOMIM_HAS_CUDA
// The host backends name the engine their GEMMs run on, the one the build links.
TEST(BackendConcept, HostBackendsNameTheirGemmEngine) {
    const std::string cpu = vasomim::backend_traits<vasomim::backend::cpu>::gemm_engine;
    EXPECT_EQ(cpu.find("OpenBLAS") != std::string::npos, bool(VASOMIM_HAS_OPENBLAS)) << cpu;
    EXPECT_EQ(std::string(vasomim::backend_traits<vasomim::backend::thrust_omp>::gemm_engine), cpu);
    EXPECT_EQ(std::string(vasomim::backend_traits<vasomim::backend::thrust_cpp>::gemm_engine), cpu);
}
#endif

}  // namespace
