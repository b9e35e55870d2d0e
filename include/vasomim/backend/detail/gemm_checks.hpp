#pragma once
// Argument validation shared by every backend's GEMM, so that a bad leading dimension is an
// exception naming the value rather than a silent out-of-bounds read.

#include <cstdint>
#include <string>

#include "vasomim/backend/traits.hpp"
#include "vasomim/core/error.hpp"

namespace vasomim::detail {

inline void check_gemm_args(transpose ta, transpose tb, std::int64_t m, std::int64_t n,
                            std::int64_t k, std::int64_t lda, std::int64_t ldb, std::int64_t ldc,
                            std::int64_t batch) {
    auto fail = [](const std::string& what) { throw shape_error("gemm: " + what); };
    if (m < 0 || n < 0 || k < 0 || batch < 0)
        fail("negative size (m=" + std::to_string(m) + ", n=" + std::to_string(n) +
             ", k=" + std::to_string(k) + ", batch=" + std::to_string(batch) + ")");
    const std::int64_t a_cols = ta == transpose::yes ? m : k;
    const std::int64_t b_cols = tb == transpose::yes ? k : n;
    if (lda < (a_cols > 1 ? a_cols : 1))
        fail("lda=" + std::to_string(lda) + " is smaller than op(A)'s stored row length " +
             std::to_string(a_cols));
    if (ldb < (b_cols > 1 ? b_cols : 1))
        fail("ldb=" + std::to_string(ldb) + " is smaller than op(B)'s stored row length " +
             std::to_string(b_cols));
    if (ldc < (n > 1 ? n : 1))
        fail("ldc=" + std::to_string(ldc) + " is smaller than n=" + std::to_string(n));
}

}  // namespace vasomim::detail
