#pragma once
// Boundary modes of the Gaussian filters, with scipy.ndimage's meaning (its 1-D filters extend each
// line before filtering, NI_ExtendLine). Lines shorter than the kernel extend periodically, so the
// mapping below is a modulo, never a single reflection.
//   reflect  (d c b a | a b c d | d c b a)  half-sample symmetric, period 2n  (the default)
//   mirror   (d c b | a b c d | c b a)      whole-sample symmetric, period 2n - 2
//   nearest  (a a a | a b c d | d d d)
//   wrap     (a b c d | a b c d | a b c d)  period n
//   constant (k k k | a b c d | k k k)      k = cval

#include <cstdint>
#include <string>
#include <string_view>

#include "vasomim/core/config.hpp"
#include "vasomim/core/error.hpp"

namespace vasomim::vessel {

enum class boundary_mode : int { reflect, constant, nearest, mirror, wrap };

/// "reflect", "constant", "nearest", "mirror" or "wrap" (scipy's names); config_error otherwise.
inline boundary_mode parse_boundary_mode(std::string_view name) {
    if (name == "reflect") return boundary_mode::reflect;
    if (name == "constant") return boundary_mode::constant;
    if (name == "nearest") return boundary_mode::nearest;
    if (name == "mirror") return boundary_mode::mirror;
    if (name == "wrap") return boundary_mode::wrap;
    throw config_error("unknown boundary mode '" + std::string(name) +
                       "' (expected reflect, constant, nearest, mirror or wrap)");
}

inline const char* to_string(boundary_mode m) {
    switch (m) {
        case boundary_mode::reflect: return "reflect";
        case boundary_mode::constant: return "constant";
        case boundary_mode::nearest: return "nearest";
        case boundary_mode::mirror: return "mirror";
        case boundary_mode::wrap: return "wrap";
    }
    return "?";
}

/// map_index outside [0, n) beyond one reflection, and for the other modes.
VASOMIM_HOST_DEVICE inline std::int64_t map_index_outside(std::int64_t i, std::int64_t n, boundary_mode m) {
    switch (m) {
        case boundary_mode::constant: return -1;
        case boundary_mode::nearest: return i < 0 ? 0 : n - 1;
        case boundary_mode::wrap: {
            std::int64_t r = i % n;
            return r < 0 ? r + n : r;
        }
        case boundary_mode::mirror: {
            if (n == 1) return 0;
            const std::int64_t p = 2 * n - 2;
            std::int64_t r = i % p;
            if (r < 0) r += p;
            return r < n ? r : p - r;
        }
        case boundary_mode::reflect:
        default: {
            const std::int64_t p = 2 * n;
            std::int64_t r = i % p;
            if (r < 0) r += p;
            return r < n ? r : p - 1 - r;
        }
    }
}

/// Index of the sample that stands at position i (any integer) of a line of n >= 1 samples, or -1
/// for mode constant outside [0, n) (the caller substitutes cval). Mirror needs n >= 2. The common
/// cases (inside, one reflection) stay small enough to inline into the passes' boundary loops.
VASOMIM_HOST_DEVICE inline std::int64_t map_index(std::int64_t i, std::int64_t n, boundary_mode m) {
    if (i >= 0 && i < n) return i;
    if (m == boundary_mode::reflect && i >= -n && i < 2 * n) return i < 0 ? -1 - i : 2 * n - 1 - i;  // no division
    return map_index_outside(i, n, m);
}

}  // namespace vasomim::vessel
