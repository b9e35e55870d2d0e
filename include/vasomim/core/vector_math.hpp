#pragma once
// exp and erf written without branches or library calls, so that a compiler vectorises the loops
// that call them (libm's exp / erf are scalar calls: they were ~12 % of a ViT block's forward and a
// quarter of Frangi's time). exp / erf of a double forward to libm, so generic code can call
// vmath::exp(T) and keep double precision exact (finite-difference checks run in double);
// exp_nonpositive(double) is the branch-free double exp for x <= 0 (Frangi's two exponentials).
//
// Accuracy, float (tests/core/vector_math_test.cpp checks it against double libm):
//   exp: relative error below 3e-7 for x in [-87.3, 88.7]; 0 below -87.34 (the logarithm of the
//        smallest normal float: results that would be subnormal are flushed), +inf above 88.73,
//        NaN for NaN.
//   erf: absolute error below 2.5e-7 (the approximation's own 1.5e-7 plus float rounding).
// Accuracy of exp_nonpositive(double): relative error below 1e-15 on [-708, 0] (degree-12 Taylor
// remainder 0.347^13 / 13! * 1.42 < 2.5e-16 plus a few roundings); 0 below -708 (an absolute error
// below 1e-307); e^0 = 1 exactly.

#include <math.h>

#include <bit>
#include <cstdint>

#include "vasomim/core/config.hpp"

namespace vasomim::vmath {

namespace detail {

VASOMIM_HOST_DEVICE inline float float_from_bits(std::int32_t bits) {
#ifdef __CUDA_ARCH__
    return __int_as_float(bits);
#else
    return std::bit_cast<float>(bits);
#endif
}
VASOMIM_HOST_DEVICE inline std::uint64_t bits_of(double v) {
#ifdef __CUDA_ARCH__
    return static_cast<std::uint64_t>(__double_as_longlong(v));
#else
    return std::bit_cast<std::uint64_t>(v);
#endif
}
VASOMIM_HOST_DEVICE inline double double_from_bits(std::uint64_t bits) {
#ifdef __CUDA_ARCH__
    return __longlong_as_double(static_cast<long long>(bits));
#else
    return std::bit_cast<double>(bits);
#endif
}

}  // namespace detail

/// e^x: x = n ln 2 + r with |r| <= ln(2) / 2, e^r by its Taylor polynomial of degree 7 (truncation
/// error r^8 / 8! < 6e-9), 2^n from the exponent bits in two halves (n reaches 128 near the top).
VASOMIM_HOST_DEVICE inline float exp(float x) {
    constexpr float lo = -87.33654475f, hi = 88.72283905f;  // ln of the smallest normal / largest float
    const float xc = x < lo ? lo : (x > hi ? hi : x);
    // Round to nearest by the 1.5 * 2^23 shift (exact for |x log2 e| < 2^22, no rounding mode call).
    const float shift = 12582912.0f;
    const float n = (xc * 1.44269504088896341f + shift) - shift;
    // ln 2 split so that n * ln2_hi is exact for |n| < 2^9.
    const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const auto k = static_cast<std::int32_t>(n), k1 = k / 2, k2 = k - k1;
    float y = p * detail::float_from_bits((k1 + 127) << 23) * detail::float_from_bits((k2 + 127) << 23);
    y = x < lo ? 0.0f : y;
    y = x > hi ? HUGE_VALF : y;
    return x != x ? x : y;
}

/// erf(x): for |x| >= 0.75, sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^{-x^2}) with
/// t = 1 / (1 + p |x|) (Abramowitz & Stegun 7.1.26); below, where 1 - (...) would cancel, the
/// Maclaurin series 2/sqrt(pi) sum (-1)^k x^(2k+1) / (k! (2k+1)) to x^15 (truncation error < 2e-8). Both are
/// evaluated and one selected, so loops stay branch-free.
VASOMIM_HOST_DEVICE inline float erf(float x) {
    const float a = x < 0.0f ? -x : x;
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float q = 1.061405429f;
    q = q * t - 1.453152027f;
    q = q * t + 1.421413741f;
    q = q * t - 0.284496736f;
    q = q * t + 0.254829592f;
    const float tail = 1.0f - q * t * vmath::exp(-a * a);
    const float z = x * x;
    float s = -1.0f / 75600.0f;
    s = s * z + 1.0f / 9360.0f;
    s = s * z - 1.0f / 1320.0f;
    s = s * z + 1.0f / 216.0f;
    s = s * z - 1.0f / 42.0f;
    s = s * z + 1.0f / 10.0f;
    s = s * z - 1.0f / 3.0f;
    s = s * z + 1.0f;
    const float series = 1.12837916709551257f * a * s;
    const float y = a < 0.75f ? series : tail;
    return x < 0.0f ? -y : (x != x ? x : y);
}

/// e^x for x <= 0 in double: x = k ln 2 + r (Cody-Waite, |r| <= ln(2) / 2), e^r by its Taylor
/// polynomial of degree 12, 2^k built in the exponent bits.
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
    const double scale = detail::double_from_bits((detail::bits_of(t) + 1023u) << 52);
    return tiny ? 0.0 : p * scale;
}
/// e^x for x <= 0 in float: vmath::exp (branch-free over its whole range).
VASOMIM_HOST_DEVICE inline float exp_nonpositive(float x) { return vmath::exp(x); }

VASOMIM_HOST_DEVICE inline double exp(double x) { return ::exp(x); }
VASOMIM_HOST_DEVICE inline double erf(double x) { return ::erf(x); }

}  // namespace vasomim::vmath
