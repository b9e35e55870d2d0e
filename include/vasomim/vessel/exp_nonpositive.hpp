#pragma once
// e^x for x <= 0 as straight-line arithmetic (no library call, no branch), so that per-pixel loops
// calling it vectorise on the host (glibc's exp is a scalar call: with it, Frangi spent a quarter
// of its time in exp) and the same code runs on every backend. Cody-Waite reduction
// x = k ln2 + r, |r| <= ln2 / 2, a Taylor polynomial of e^r, and 2^k built in the exponent bits.
// Relative error: double below 1e-15 (degree-12 remainder <= 0.347^13 / 13! * 1.42 < 2.5e-16, plus
// a few roundings), float below 1e-6 (degree 7: < 7e-9, plus roundings). Arguments below the
// normal range (x < -708 for double, x < -87 for float) give 0, an absolute error below 1e-307 /
// 1.7e-38. e^0 = 1 exactly.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "vasomim/core/config.hpp"

namespace vasomim::vessel {

namespace detail {
// Bit casts usable on host and device (device: CUDA's intrinsics).
VASOMIM_HOST_DEVICE inline std::uint64_t bits_of(double v) {
#if defined(__CUDA_ARCH__)
    return static_cast<std::uint64_t>(__double_as_longlong(v));
#else
    std::uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
#endif
}
VASOMIM_HOST_DEVICE inline double double_of(std::uint64_t b) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(static_cast<long long>(b));
#else
    double v;
    std::memcpy(&v, &b, sizeof v);
    return v;
#endif
}
VASOMIM_HOST_DEVICE inline std::uint32_t bits_of(float v) {
#if defined(__CUDA_ARCH__)
    return static_cast<std::uint32_t>(__float_as_int(v));
#else
    std::uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
#endif
}
VASOMIM_HOST_DEVICE inline float float_of(std::uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __int_as_float(static_cast<int>(b));
#else
    float v;
    std::memcpy(&v, &b, sizeof v);
    return v;
#endif
}
}  // namespace detail

VASOMIM_HOST_DEVICE inline double exp_nonpositive(double x) {
    const bool tiny = x < -708.0;
    const double xc = tiny ? -708.0 : x;
    constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    const double t = xc * 1.4426950408889634 + shifter;
    const double k = t - shifter;
    // ln 2 = hi + lo with hi's low bits zero, so k * hi is exact for |k| < 2^11.
    const double r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 479001600.0;  // 1/12!
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // The low bits of t hold k (two's complement); k + 1023 in the exponent field is 2^k.
    const double scale = detail::double_of((detail::bits_of(t) + 1023u) << 52);
    return tiny ? 0.0 : p * scale;
}

VASOMIM_HOST_DEVICE inline float exp_nonpositive(float x) {
    const bool tiny = x < -87.0f;
    const float xc = tiny ? -87.0f : x;
    constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
    const float t = xc * 1.44269504f + shifter;
    const float k = t - shifter;
    const float r = (xc - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float scale = detail::float_of((detail::bits_of(t) + 127u) << 23);
    return tiny ? 0.0f : p * scale;
}

}  // namespace vasomim::vessel
