#pragma once
// Shared helpers of the vessel tests: fixture loading (tests/data/vessel, written by
// tools/vesselness_reference.py) and the parity check max|ours - ref| <= rel * max|ref|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "vasomim/core/tensor.hpp"
#include "vasomim/io/npy.hpp"

namespace vasomim::test {

inline std::string vessel_data(const std::string& name) {
    return std::string(VASOMIM_TEST_DATA_DIR) + "/vessel/" + name + ".npy";
}

/// The coronary80 folder, or "" when absent (tests skip).
inline std::string coronary80_dir() {
    if (const char* env = std::getenv("VASOMIM_CORONARY80")) return env;
    const std::string d = std::string(VASOMIM_SOURCE_DIR) + "/../shared/data/coronary80";
    return std::filesystem::exists(d + "/images") ? d : std::string();
}

template <class T>
std::vector<T> load_values(const std::string& name, std::vector<std::size_t>* shape_out = nullptr) {
    const auto a = io::read_npy<T>(vessel_data(name));
    if (shape_out) shape_out->assign(a.shape().begin(), a.shape().end());
    return std::vector<T>(a.begin(), a.end());
}

template <class T, class B>
tensor<T, B> load_tensor(const std::string& name) {
    std::vector<std::size_t> sh;
    const auto v = load_values<T>(name, &sh);
    vasomim::shape s(sh.begin(), sh.end());
    return tensor<T, B>::from_host(v, s);
}

/// max|ours - ref| <= rel * max|ref| (ref_max given or computed from ref), with a readable report.
template <class A, class R>
::testing::AssertionResult close_to_reference(const std::vector<A>& ours, const std::vector<R>& ref, double rel,
                                              double ref_max = -1) {
    if (ours.size() != ref.size())
        return ::testing::AssertionFailure() << "size " << ours.size() << " vs reference " << ref.size();
    if (ref_max < 0) {
        ref_max = 0;
        for (const R& r : ref) ref_max = std::max(ref_max, std::abs(static_cast<double>(r)));
    }
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const double d = std::abs(static_cast<double>(ours[i]) - static_cast<double>(ref[i]));
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    if (worst <= rel * ref_max)
        return ::testing::AssertionSuccess() << "max diff " << worst << " (max|ref| " << ref_max << ")";
    return ::testing::AssertionFailure() << "max |ours - ref| = " << worst << " at flat index " << at << " (ours "
                                         << static_cast<double>(ours[at]) << ", ref " << static_cast<double>(ref[at])
                                         << ") exceeds " << rel << " * max|ref| = " << rel * ref_max;
}

/// Every `step`-th row and column of a rows x cols host image (numpy's a[::step, ::step]).
template <class T>
std::vector<T> subsample(const std::vector<T>& v, std::int64_t rows, std::int64_t cols, std::int64_t step) {
    std::vector<T> out;
    for (std::int64_t i = 0; i < rows; i += step)
        for (std::int64_t j = 0; j < cols; j += step) out.push_back(v[static_cast<std::size_t>(i * cols + j)]);
    return out;
}

}  // namespace vasomim::test
