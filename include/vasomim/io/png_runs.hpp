#pragma once
// A PNG writer for 8-bit grayscale images made of long runs of equal values (masks, label maps):
// one linear scan that codes each row (filter "none") as deflate with the fixed Huffman code and
// distance-1 matches only, i.e. run-length coding. stb's general encoder tries five row filters
// and searches a hash chain at every byte; for the 0/255 pseudo-label masks of a dataset batch that
// was the largest cost after the filtering itself. Mask files come out no larger than stb's
// (512 x 512 pseudo-labels: 5-7 KB).
// Any PNG reader decodes the result (standard zlib stream, CRCs and Adler-32 included).

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/detail/atomic_file.hpp"

namespace vasomim::io {

namespace detail {

/// Deflate's bit order: values packed from the least significant bit of each byte.
class deflate_bits {
public:
    explicit deflate_bits(std::string& out) : out_(out) {}
    void put(std::uint32_t bits, int count) {
        acc_ |= static_cast<std::uint64_t>(bits) << n_;
        n_ += count;
        while (n_ >= 8) {
            out_.push_back(static_cast<char>(acc_ & 0xffu));
            acc_ >>= 8;
            n_ -= 8;
        }
    }
    /// A Huffman code (most significant bit first in the stream).
    void put_code(std::uint32_t code, int len) {
        std::uint32_t rev = 0;
        for (int i = 0; i < len; ++i) rev |= ((code >> i) & 1u) << (len - 1 - i);
        put(rev, len);
    }
    void flush() {
        if (n_ > 0) put(0, 8 - n_);
    }

private:
    std::string& out_;
    std::uint64_t acc_ = 0;
    int n_ = 0;
};

/// Fixed Huffman code of a literal / length symbol (RFC 1951, 3.2.6).
inline void put_fixed_symbol(deflate_bits& bw, int sym) {
    if (sym < 144) bw.put_code(0x30u + static_cast<std::uint32_t>(sym), 8);
    else if (sym < 256) bw.put_code(0x190u + static_cast<std::uint32_t>(sym - 144), 9);
    else if (sym < 280) bw.put_code(static_cast<std::uint32_t>(sym - 256), 7);
    else bw.put_code(0xc0u + static_cast<std::uint32_t>(sym - 280), 8);
}

/// A match of length 3..258 at distance 1.
inline void put_run(deflate_bits& bw, int len) {
    static constexpr std::array<int, 29> base{3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                              31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static constexpr std::array<int, 29> extra{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                               2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    int c = 28;
    while (base[static_cast<std::size_t>(c)] > len) --c;
    put_fixed_symbol(bw, 257 + c);
    if (extra[static_cast<std::size_t>(c)] > 0)
        bw.put(static_cast<std::uint32_t>(len - base[static_cast<std::size_t>(c)]), extra[static_cast<std::size_t>(c)]);
    bw.put_code(0, 5);  // distance code 0: distance 1
}

/// The first position >= k (or n) whose byte differs from v: eight bytes per step.
inline std::size_t run_end(const std::uint8_t* p, std::size_t k, std::size_t n, std::uint8_t v) {
    if constexpr (std::endian::native == std::endian::little) {
        const std::uint64_t pattern = 0x0101010101010101ull * v;
        for (; k + 8 <= n; k += 8) {
            std::uint64_t word;
            std::memcpy(&word, p + k, 8);
            if (const std::uint64_t diff = word ^ pattern) return k + static_cast<std::size_t>(std::countr_zero(diff) / 8);
        }
    }
    while (k < n && p[k] == v) ++k;
    return k;
}

inline std::uint32_t crc32_update(std::uint32_t crc, const unsigned char* p, std::size_t n) {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

inline void put_be32(std::string& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xffu));
}

inline void put_chunk(std::string& png, const char* type, const std::string& data) {
    put_be32(png, static_cast<std::uint32_t>(data.size()));
    const std::size_t start = png.size();
    png.append(type, 4);
    png += data;
    put_be32(png, crc32_update(0, reinterpret_cast<const unsigned char*>(png.data() + start), png.size() - start));
}

}  // namespace detail

/// The PNG file (8-bit grayscale) of an h x w row-major image, as bytes.
inline std::string encode_png_runs(const std::uint8_t* data, std::size_t h, std::size_t w) {
    if (h == 0 || w == 0) throw shape_error("encode_png_runs: cannot encode an empty image");
    if (h > 0x7fffffffu || w > 0x7fffffffu) throw shape_error("encode_png_runs: image too large for PNG");
    std::string z{'\x78', '\x01'};  // zlib header: deflate, 32 KiB window, no dictionary
    detail::deflate_bits bw(z);
    bw.put(1, 1);  // final block
    bw.put(1, 2);  // fixed Huffman codes
    std::uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed stream
    // count (<= 258) copies of v at once: a grows by count v, b by count a + v count (count + 1) / 2
    // (below 2^25 before the reduction), the sums the byte-by-byte update adds.
    auto adler = [&](std::uint8_t v, std::size_t count) {
        const auto c = static_cast<std::uint32_t>(count);
        b = (b + c * a + v * (c * (c + 1) / 2)) % 65521u;
        a = (a + c * v) % 65521u;
    };
    // The scanlines (filter byte 0, then the row) as one stream, so that runs continue across rows.
    std::string raw(h * (w + 1), '\0');
    for (std::size_t i = 0; i < h; ++i)
        std::memcpy(raw.data() + i * (w + 1) + 1, data + i * w, w);
    const auto* stream = reinterpret_cast<const std::uint8_t*>(raw.data());
    const std::size_t total = raw.size();
    std::size_t j = 0;
    while (j < total) {
        const std::uint8_t v = stream[j];
        detail::put_fixed_symbol(bw, v);
        adler(v, 1);
        const std::size_t k = detail::run_end(stream, j + 1, total, v);
        std::size_t run = k - j - 1;  // repeats of v after its literal
        while (run >= 3) {
            const int len = static_cast<int>(run < 258 ? run : 258);
            const std::size_t left = run - static_cast<std::size_t>(len);
            const int use = (left > 0 && left < 3) ? len - 3 : len;  // leave >= 3 (or 0) for the next
            detail::put_run(bw, use);
            adler(v, static_cast<std::size_t>(use));
            run -= static_cast<std::size_t>(use);
        }
        for (; run > 0; --run) {
            detail::put_fixed_symbol(bw, v);
            adler(v, 1);
        }
        j = k;
    }
    detail::put_fixed_symbol(bw, 256);  // end of block
    bw.flush();
    detail::put_be32(z, (b << 16) | a);

    std::string png("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    detail::put_be32(ihdr, static_cast<std::uint32_t>(w));
    detail::put_be32(ihdr, static_cast<std::uint32_t>(h));
    ihdr += std::string{'\x08', '\x00', '\x00', '\x00', '\x00'};  // 8-bit gray, deflate, no interlace
    detail::put_chunk(png, "IHDR", ihdr);
    detail::put_chunk(png, "IDAT", z);
    detail::put_chunk(png, "IEND", std::string());
    return png;
}

/// Writes an 8-bit grayscale PNG (H x W) with encode_png_runs, atomically (temporary file in the
/// same folder + rename). Best for masks and label maps; any image is encoded correctly.
/// The h x w row-major pixels at `data` (no copy into an xtensor needed).
inline void write_png_runs(const std::filesystem::path& path, const std::uint8_t* data, std::size_t h, std::size_t w) {
    if (h == 0 || w == 0)
        throw shape_error("write_png_runs: cannot write an empty image to '" + path.string() + "'");
    const std::string png = encode_png_runs(data, h, w);
    detail::write_atomically(path, "write_png_runs", [&](std::ostream& out) {
        out.write(png.data(), static_cast<std::streamsize>(png.size()));
    });
}

inline void write_png_runs(const std::filesystem::path& path, const xt::xtensor<std::uint8_t, 2>& image) {
    write_png_runs(path, image.data(), image.shape(0), image.shape(1));
}

}  // namespace vasomim::io
