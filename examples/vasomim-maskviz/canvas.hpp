#pragma once
// A small RGB canvas for vasomim-maskviz: filled rectangles, thick lines, a 3 x 5 pixel font and a
// jet colour map. Enough to draw heat maps and a line plot without a plotting library.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <xtensor/xtensor.hpp>

namespace maskviz {

struct rgb {
    std::uint8_t r, g, b;
};

/// Jet colour map on [0, 1]: blue (rarely masked) -> cyan -> yellow -> red (often masked).
inline rgb jet(double t) {
    t = std::clamp(t, 0.0, 1.0);
    auto ch = [t](double centre) {
        return static_cast<std::uint8_t>(std::lround(255.0 * std::clamp(1.5 - std::abs(4.0 * t - centre), 0.0, 1.0)));
    };
    return {ch(3.0), ch(2.0), ch(1.0)};
}

class canvas {
public:
    canvas(std::size_t h, std::size_t w, rgb fill = {255, 255, 255}) : px_(xt::xtensor<std::uint8_t, 3>::from_shape({h, w, 3})) {
        rect(0, 0, static_cast<long>(w), static_cast<long>(h), fill);
    }

    long height() const { return static_cast<long>(px_.shape(0)); }
    long width() const { return static_cast<long>(px_.shape(1)); }
    const xt::xtensor<std::uint8_t, 3>& pixels() const { return px_; }

    void set(long x, long y, rgb c) {
        if (x < 0 || y < 0 || x >= width() || y >= height()) return;
        px_(y, x, 0) = c.r;
        px_(y, x, 1) = c.g;
        px_(y, x, 2) = c.b;
    }
    rgb get(long x, long y) const { return {px_(y, x, 0), px_(y, x, 1), px_(y, x, 2)}; }

    void rect(long x0, long y0, long w, long h, rgb c) {
        for (long y = y0; y < y0 + h; ++y)
            for (long x = x0; x < x0 + w; ++x) set(x, y, c);
    }

    /// A line of the given thickness (square brush), dashed when dash > 0.
    void line(double x0, double y0, double x1, double y1, rgb c, int thickness = 1, int dash = 0) {
        const double len = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
        const int steps = std::max(1, static_cast<int>(std::ceil(len)));
        for (int s = 0; s <= steps; ++s) {
            if (dash > 0 && (s / dash) % 2 == 1) continue;
            const double t = double(s) / steps;
            const long x = std::lround(x0 + t * (x1 - x0)), y = std::lround(y0 + t * (y1 - y0));
            rect(x - thickness / 2, y - thickness / 2, thickness, thickness, c);
        }
    }

    /// Text in a 3 x 5 pixel font scaled by `scale`; upper-case letters, digits and . - % ( ) = / ,
    void text(long x, long y, const std::string& s, rgb c, int scale = 2) {
        for (char ch : s) {
            const auto glyph = glyph_of(ch);
            for (int r = 0; r < 5; ++r)
                for (int col = 0; col < 3; ++col)
                    if ((glyph[static_cast<std::size_t>(r)] >> (2 - col)) & 1) rect(x + col * scale, y + r * scale, scale, scale, c);
            x += 4 * scale;
        }
    }
    static long text_width(const std::string& s, int scale = 2) { return static_cast<long>(s.size()) * 4 * scale - scale; }

private:
    static std::array<std::uint8_t, 5> glyph_of(char ch) {
        switch (ch) {
            case '0': return {7, 5, 5, 5, 7};
            case '1': return {2, 6, 2, 2, 7};
            case '2': return {7, 1, 7, 4, 7};
            case '3': return {7, 1, 7, 1, 7};
            case '4': return {5, 5, 7, 1, 1};
            case '5': return {7, 4, 7, 1, 7};
            case '6': return {7, 4, 7, 5, 7};
            case '7': return {7, 1, 1, 1, 1};
            case '8': return {7, 5, 7, 5, 7};
            case '9': return {7, 5, 7, 1, 7};
            case '.': return {0, 0, 0, 0, 2};
            case ',': return {0, 0, 0, 2, 4};
            case '-': return {0, 0, 7, 0, 0};
            case '%': return {5, 1, 2, 4, 5};
            case '(': return {2, 4, 4, 4, 2};
            case ')': return {2, 1, 1, 1, 2};
            case '=': return {0, 7, 0, 7, 0};
            case '/': return {1, 1, 2, 4, 4};
            case '+': return {0, 2, 7, 2, 0};
            case 'A': return {2, 5, 7, 5, 5};
            case 'B': return {6, 5, 6, 5, 6};
            case 'C': return {3, 4, 4, 4, 3};
            case 'D': return {6, 5, 5, 5, 6};
            case 'E': return {7, 4, 6, 4, 7};
            case 'F': return {7, 4, 6, 4, 4};
            case 'G': return {3, 4, 5, 5, 3};
            case 'H': return {5, 5, 7, 5, 5};
            case 'I': return {7, 2, 2, 2, 7};
            case 'J': return {1, 1, 1, 5, 2};
            case 'K': return {5, 5, 6, 5, 5};
            case 'L': return {4, 4, 4, 4, 7};
            case 'M': return {5, 7, 7, 5, 5};
            case 'N': return {6, 5, 5, 5, 5};
            case 'O': return {2, 5, 5, 5, 2};
            case 'P': return {6, 5, 6, 4, 4};
            case 'Q': return {2, 5, 5, 6, 3};
            case 'R': return {6, 5, 6, 5, 5};
            case 'S': return {3, 4, 2, 1, 6};
            case 'T': return {7, 2, 2, 2, 2};
            case 'U': return {5, 5, 5, 5, 7};
            case 'V': return {5, 5, 5, 5, 2};
            case 'W': return {5, 5, 7, 7, 5};
            case 'X': return {5, 5, 2, 5, 5};
            case 'Y': return {5, 5, 2, 2, 2};
            case 'Z': return {7, 1, 2, 4, 7};
            default: return {0, 0, 0, 0, 0};
        }
    }

    xt::xtensor<std::uint8_t, 3> px_;
};

}  // namespace maskviz
