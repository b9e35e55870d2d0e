#pragma once
// The element-wise comparison every parity test uses against a reference implementation's tensors.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vasomim::test {

/// Every element within rtol of the reference, relative to max(|ref|, floor * max|ref| of the
/// tensor): floor 1e-2 is an element-wise relative error with a floor for elements that are tiny
/// compared to the tensor; floor 1 is relative to the tensor's scale.
inline void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                         double rtol = 1e-4, double floor = 1e-2) {
    ASSERT_EQ(got.size(), ref.size()) << what;
    double scale = 0;
    for (float r : ref) scale = std::max(scale, double(std::abs(r)));
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const double err =
            std::abs(double(got[i]) - ref[i]) / std::max(double(std::abs(ref[i])), floor * scale + 1e-30);
        if (err > worst) worst = err, at = i;
    }
    EXPECT_LE(worst, rtol) << what << ": worst relative error at element " << at << ": got " << got[at]
                           << ", reference " << ref[at];
}

}  // namespace vasomim::test
