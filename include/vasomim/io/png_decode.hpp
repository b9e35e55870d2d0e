#pragma once
// A fast reader for the PNGs datasets are made of: 8 bits per sample, gray / gray+alpha / RGB /
// RGBA, not interlaced (XA-170K and coronary angiograms are 8-bit gray). The zlib stream is inflated
// by ISA-L (libisal, Intel's igzip: 0.35 ms against zlib's 1.25 ms on a 512 x 512 angiogram-like
// image; a whole stb_image decode took 1.55 ms, a sixth of the pseudo-label program's time); the
// five row filters are undone here, runs of gray Paeth rows (what PIL and libpng write for
// angiograms) 16 or 4 rows at a time.
// Everything else (palette, 1/2/4/16-bit, Adam7, Apple's CgBI) returns nullopt, and read_gray8
// hands those to stb_image. Unlike stb, every chunk's CRC and the zlib Adler-32 are checked.
//
// Linking: declarations from Debian's libisal-dev (<isa-l/igzip_lib.h>, <isa-l/crc.h>), code from
// its libisal.so; the CMake target vasomim::vasomim links it.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"

namespace vasomim::io {

namespace detail {

/// ITU-R 601 luma with PIL's fixed-point rounding (Image.convert('L')):
/// L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e. R*299/1000 + G*587/1000 + B*114/1000
/// rounded to nearest the way PIL does it.
inline std::uint8_t pil_luma(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    return static_cast<std::uint8_t>((std::uint32_t(r) * 19595u + std::uint32_t(g) * 38470u +
                                      std::uint32_t(b) * 7471u + 0x8000u) >> 16);
}

/// One pixel row of `channels` samples each to gray: gray kept, alpha dropped, colour by pil_luma.
inline void samples_to_gray(const std::uint8_t* s, std::size_t w, int channels, std::uint8_t* out) {
    switch (channels) {
        case 1: std::memcpy(out, s, w); break;
        case 2:
            for (std::size_t i = 0; i < w; ++i) out[i] = s[2 * i];
            break;
        case 3:
            for (std::size_t i = 0; i < w; ++i) out[i] = pil_luma(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
            break;
        default:
            for (std::size_t i = 0; i < w; ++i) out[i] = pil_luma(s[4 * i], s[4 * i + 1], s[4 * i + 2]);
            break;
    }
}

inline std::uint32_t png_be32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

/// PNG's Paeth predictor of a byte from its left (a), upper (b) and upper-left (c) neighbours,
/// without branches: PIL and libpng pick filters per row, and on real angiograms the predictor's
/// choice is noise to a branch predictor (the branchy form took 10 % of a 512 x 512 pseudo-label).
/// pa = |p - a| = |b - c|, pb = |a - c|, pc = |a + b - 2c|, and "pa <= pb && pa <= pc" is
/// "pa <= min(pb, pc)".
inline int paeth_predictor(int a, int b, int c) {
    const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
    const int bc = pb <= pc ? b : c, pbc = pb <= pc ? pb : pc;
    return pa <= pbc ? a : bc;
}

/// Undoes PNG filter `type` (RFC 2083 section 6) on one row of n bytes in place; prev is the row
/// above, already unfiltered (zeros for the first row); bpp bytes per pixel. Sub, Average and
/// Paeth depend on the byte bpp to the left: for gray (bpp 1) it stays in a register, where
/// reading it back from the row just stored waits for store forwarding at every byte.
inline bool unfilter_row(int type, std::uint8_t* __restrict cur, const std::uint8_t* __restrict prev, std::size_t n,
                         std::size_t bpp) {
    const auto paeth = paeth_predictor;
    switch (type) {
        case 0: return true;
        case 1:
            if (bpp == 1)
                for (std::size_t i = 1, a = cur[0]; i < n; ++i) a = cur[i] = std::uint8_t(cur[i] + a);
            else
                for (std::size_t i = bpp; i < n; ++i) cur[i] = std::uint8_t(cur[i] + cur[i - bpp]);
            return true;
        case 2:
            for (std::size_t i = 0; i < n; ++i) cur[i] = std::uint8_t(cur[i] + prev[i]);
            return true;
        case 3:
            for (std::size_t i = 0; i < bpp; ++i) cur[i] = std::uint8_t(cur[i] + (prev[i] >> 1));
            if (bpp == 1)
                for (std::size_t i = 1, a = cur[0]; i < n; ++i) a = cur[i] = std::uint8_t(cur[i] + ((a + prev[i]) >> 1));
            else
                for (std::size_t i = bpp; i < n; ++i)
                    cur[i] = std::uint8_t(cur[i] + ((unsigned(cur[i - bpp]) + prev[i]) >> 1));
            return true;
        case 4:
            for (std::size_t i = 0; i < bpp; ++i) cur[i] = std::uint8_t(cur[i] + prev[i]);  // a = c = 0
            if (bpp == 1)
                for (std::size_t i = 1, a = cur[0]; i < n; ++i)
                    a = cur[i] = std::uint8_t(cur[i] + paeth(int(a), prev[i], prev[i - 1]));
            else
                for (std::size_t i = bpp; i < n; ++i) cur[i] = std::uint8_t(cur[i] + paeth(cur[i - bpp], prev[i], prev[i - bpp]));
            return true;
        default: return false;
    }
}

/// Undoes Paeth on K consecutive gray rows (bpp 1) of n bytes, `stride` apart from `first`;
/// `prev` is the row above the first, already unfiltered. Byte i of a row needs only bytes i - 1
/// and i of the row above, so the rows advance together, each one byte behind the row above:
/// their dependency chains (every byte waits for its left neighbour through the predictor, ~6
/// cycles) interleave. Encoders that filter adaptively (PIL, libpng) choose Paeth for most rows
/// of angiograms, where this was most of the decoding time.
template <int K>
inline void unpaeth_gray_rows(std::uint8_t* first, std::size_t stride, const std::uint8_t* prev, std::size_t n) {
    std::uint8_t* cur[K];
    const std::uint8_t* up[K];
    for (int k = 0; k < K; ++k) {
        cur[k] = first + std::size_t(k) * stride;
        up[k] = k == 0 ? prev : cur[k - 1];
    }
    int a[K];  // each row's left neighbour, unfiltered
    for (int k = 0; k < K; ++k) a[k] = cur[k][0] = std::uint8_t(cur[k][0] + up[k][0]);  // a = c = 0
    const auto step = [&](int k, std::size_t i) {
        a[k] = cur[k][i] = std::uint8_t(cur[k][i] + paeth_predictor(a[k], up[k][i], up[k][i - 1]));
    };
    // Step t unfilters byte t - k of row k: the row above reached it at step t - 1.
    const std::size_t steps = n + K - 1, full_from = K, full_to = n;  // [K, n): every row inside
    for (std::size_t t = 1; t < std::min(full_from, steps); ++t)
        for (int k = 0; k < K; ++k)
            if (t >= std::size_t(k) + 1 && t - std::size_t(k) < n) step(k, t - std::size_t(k));
#if !defined(__CUDACC__)  // nvcc's front end does not know GCC's loop pragma (it warns)
#pragma GCC unroll 4
#endif
    for (std::size_t t = full_from; t < full_to; ++t)
        for (int k = 0; k < K; ++k) step(k, t - std::size_t(k));
    for (std::size_t t = std::max(full_from, full_to); t < steps; ++t)
        for (int k = 0; k < K; ++k)
            if (t >= std::size_t(k) + 1 && t - std::size_t(k) < n) step(k, t - std::size_t(k));
}

// GCC (12 on) and clang vector extensions; not under nvcc, whose host front end lacks them.
#if !defined(__CUDACC__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12))
#define VASOMIM_PNG_PAETH_LANES 1
typedef std::uint8_t png_v16u8 __attribute__((vector_size(16)));

/// One butterfly stage of transpose_bytes16 on the pair (x, y): lanes j with (j & b) != 0 of x
/// swap with lanes j - b of y.
template <int b, std::size_t... J>
inline void png_transpose_stage(png_v16u8& x, png_v16u8& y, std::index_sequence<J...>) {
    const png_v16u8 lo = __builtin_shufflevector(x, y, ((J & b) == 0 ? int(J) : 16 + int(J) - b)...);
    const png_v16u8 hi = __builtin_shufflevector(x, y, ((J & b) == 0 ? int(J) + b : 16 + int(J))...);
    x = lo;
    y = hi;
}

/// 16 x 16 bytes transposed in registers (tile[i] = row i in, column i out): four butterfly stages.
inline void transpose_bytes16(std::uint8_t (&tile)[16][16]) {
    png_v16u8 v[16];
    std::memcpy(v, tile, sizeof v);
    constexpr auto J = std::make_index_sequence<16>{};
    for (int i = 0; i < 16; i += 2) png_transpose_stage<1>(v[i], v[i + 1], J);
    for (int i = 0; i < 16; ++i)
        if (!(i & 2)) png_transpose_stage<2>(v[i], v[i + 2], J);
    for (int i = 0; i < 16; ++i)
        if (!(i & 4)) png_transpose_stage<4>(v[i], v[i + 4], J);
    for (int i = 0; i < 8; ++i) png_transpose_stage<8>(v[i], v[i + 8], J);
    std::memcpy(tile, v, sizeof v);
}

/// Undoes Paeth on 16 consecutive gray rows at once, one row per lane of a vector: at step s,
/// lane k unfilters byte s - k of row k, whose left neighbour is the lane's own previous result
/// and whose upper and upper-left neighbours are lane k - 1's results of the two steps before (the
/// row above, one byte ahead). A step is one short chain of vector operations for 16 bytes, where
/// unpaeth_gray_rows waits ~6 cycles for every byte. The rows go in and out through a skewed copy
/// (row k shifted right by k bytes) transposed in 16 x 16 tiles, so that step s reads and writes
/// one vector. Same arguments and results as unpaeth_gray_rows<16>; `work` is scratch.
inline void unpaeth_gray_rows16(std::uint8_t* first, std::size_t stride, const std::uint8_t* prev, std::size_t n,
                                std::vector<std::uint8_t>& work) {
    constexpr std::size_t G = 16;
    const std::size_t steps = n + G - 1, span = (steps + G - 1) / G * G;  // skewed row length, whole tiles
    // Bytes outside the rows are never read into a result (their lanes are inactive), so neither
    // half needs clearing.
    if (work.size() < 2 * G * span) work.resize(2 * G * span);
    std::uint8_t* skew = work.data();                 // G rows of span bytes
    std::uint8_t* by_step = work.data() + G * span;   // span steps of G lanes
    for (std::size_t k = 0; k < G; ++k) std::memcpy(skew + k * span + k, first + k * stride, n);
    std::uint8_t tile[16][16];
    auto transpose_blocks = [&](const std::uint8_t* from, std::uint8_t* to) {  // G x span <-> span x G
        for (std::size_t c = 0; c < span; c += G) {
            for (std::size_t k = 0; k < G; ++k) std::memcpy(tile[k], from + k * span + c, G);
            transpose_bytes16(tile);
            for (std::size_t k = 0; k < G; ++k) std::memcpy(to + (c + k) * G, tile[k], G);
        }
    };
    auto untranspose_blocks = [&](const std::uint8_t* from, std::uint8_t* to) {
        for (std::size_t c = 0; c < span; c += G) {
            for (std::size_t k = 0; k < G; ++k) std::memcpy(tile[k], from + (c + k) * G, G);
            transpose_bytes16(tile);
            for (std::size_t k = 0; k < G; ++k) std::memcpy(to + k * span + c, tile[k], G);
        }
    };
    transpose_blocks(skew, by_step);
    typedef png_v16u8 v16u;
    typedef short v16s __attribute__((vector_size(32)));
    const v16s lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const short nn = static_cast<short>(n);
    v16s r1{}, r2{};  // the results of the last two steps
    for (std::size_t s = 0; s < steps; ++s) {
        v16u raw;
        std::memcpy(&raw, by_step + s * G, G);
        const v16s x = __builtin_convertvector(raw, v16s);
        // lane 0's upper neighbours come from the row above the group
        v16s b0{}, c0{};
        b0[0] = s < n ? prev[s] : 0;
        c0[0] = s >= 1 && s <= n ? prev[s - 1] : 0;
        // lane k <- lane k - 1 of the last two steps, lane 0 <- b0, c0 (written out: a vector
        // returned from a function changes the ABI without AVX, -Wpsabi)
        const v16s a = r1;
        const v16s b = __builtin_shufflevector(r1, b0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        const v16s c = __builtin_shufflevector(r2, c0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        const v16s pa = b - c < 0 ? c - b : b - c, pb = a - c < 0 ? c - a : a - c;
        const v16s t = a + b - c - c, pc = t < 0 ? -t : t;
        const v16s bc = pb <= pc ? b : c, pbc = pb <= pc ? pb : pc;
        const v16s pred = pa <= pbc ? a : bc;
        const short ss = static_cast<short>(s);
        const v16s active = (lane <= ss) & (lane > static_cast<short>(ss - nn));  // 0 <= s - k < n
        const v16s r = active ? ((x + pred) & 255) : v16s{};
        const v16u out = __builtin_convertvector(r, v16u);
        std::memcpy(by_step + s * G, &out, G);
        r2 = r1;
        r1 = r;
    }
    untranspose_blocks(by_step, skew);
    for (std::size_t k = 0; k < G; ++k) std::memcpy(first + k * stride, skew + k * span + k, n);
}
#else
#define VASOMIM_PNG_PAETH_LANES 0
#endif  // VASOMIM_PNG_PAETH_LANES

/// Decodes `bytes` (a whole PNG file; `name` for messages) to 8-bit gray as read_gray8 defines it,
/// or returns nullopt when the file is not a PNG this reader takes (see the header comment).
/// Throws format_error naming `name` for a damaged PNG: truncated or oversized chunks, a bad CRC,
/// a bad IHDR, missing IDAT / IEND, a corrupt zlib stream or Adler-32, too little or too much image
/// data, an unknown row filter.
inline std::optional<xt::xtensor<std::uint8_t, 2>> decode_png8(std::string_view bytes, const std::string& name) {
    static constexpr unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (bytes.size() < 8 || std::memcmp(bytes.data(), signature, 8) != 0) return std::nullopt;
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    auto fail = [&](const std::string& why) { return format_error("read_gray8: '" + name + "' is a damaged PNG: " + why); };

    std::size_t w = 0, h = 0;
    int channels = 0;
    std::string idat_joined;
    std::string_view idat;
    int idat_chunks = 0;
    bool idat_ended = false, iend = false;
    for (std::size_t pos = 8; !iend;) {
        if (bytes.size() - pos < 12) throw fail("truncated at byte " + std::to_string(pos) + " (no IEND chunk)");
        const std::uint32_t len = png_be32(data + pos);
        const unsigned char* type = data + pos + 4;
        const std::string tname(reinterpret_cast<const char*>(type), 4);
        if (len > 0x7fffffffu || bytes.size() - pos - 12 < len)
            throw fail("chunk " + tname + " at byte " + std::to_string(pos) + " claims " + std::to_string(len) +
                       " bytes, past the end of the file");
        const unsigned char* body = type + 4;
        if (crc32_gzip_refl(0, type, len + 4) != png_be32(body + len))
            throw fail("CRC mismatch in chunk " + tname + " at byte " + std::to_string(pos));
        if (pos == 8) {
            if (tname != "IHDR") return std::nullopt;  // e.g. Apple's CgBI: stb's
            if (len != 13) throw fail("IHDR has " + std::to_string(len) + " bytes, expected 13");
            w = png_be32(body);
            h = png_be32(body + 4);
            if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
                throw fail("IHDR gives a " + std::to_string(w) + " x " + std::to_string(h) + " image");
            const int depth = body[8], colour = body[9];
            if (depth != 8 || body[10] != 0 || body[11] != 0 || body[12] != 0) return std::nullopt;
            switch (colour) {
                case 0: channels = 1; break;
                case 2: channels = 3; break;
                case 4: channels = 2; break;
                case 6: channels = 4; break;
                default: return std::nullopt;  // palette (or invalid): stb's
            }
            // Rows of 1 + w * channels bytes must fit comfortably (stb's own limit is 2^24 a side).
            if (w > (std::size_t(1) << 24) || h > (std::size_t(1) << 24)) return std::nullopt;
        } else if (tname == "IDAT") {
            if (idat_ended) throw fail("IDAT chunks are not consecutive");
            if (++idat_chunks == 1) idat = std::string_view(reinterpret_cast<const char*>(body), len);
            else {
                if (idat_chunks == 2) idat_joined.assign(idat);
                idat_joined.append(reinterpret_cast<const char*>(body), len);
            }
        } else {
            if (idat_chunks > 0) idat_ended = true;
            if (tname == "IEND") iend = true;
        }
        pos += std::size_t(len) + 12;
    }
    if (idat_chunks == 0) throw fail("no IDAT chunk");
    if (idat_chunks > 1) idat = idat_joined;

    const std::size_t stride = 1 + w * std::size_t(channels);
    // Deflate expands at most 1032-fold (258-byte matches in ~2 bits): a header claiming far more
    // pixels than the data could hold is refused before allocating for it.
    if (stride * h / 1032 > idat.size() + 64)
        throw fail("IHDR claims " + std::to_string(w) + " x " + std::to_string(h) + " pixels, more than " +
                   std::to_string(idat.size()) + " bytes of image data can hold");
    if (stride * h > 0xffffffffu || idat.size() > 0xffffffffu)  // ISA-L counts in 32 bits
        throw fail(std::to_string(w) + " x " + std::to_string(h) + " is too large for this reader (over 4 GiB)");
    std::vector<std::uint8_t> raw(stride * h);
    inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_ZLIB;
    st.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(idat.data()));
    st.avail_in = static_cast<std::uint32_t>(idat.size());
    st.next_out = raw.data();
    st.avail_out = static_cast<std::uint32_t>(raw.size());
    const int rc = isal_inflate_stateless(&st);
    if (rc == ISAL_INCORRECT_CHECKSUM) throw fail("the image data's Adler-32 does not match");
    if (rc == ISAL_OUT_OVERFLOW) throw fail("more image data than " + std::to_string(w) + " x " + std::to_string(h));
    if (rc != ISAL_DECOMP_OK) throw fail("corrupt zlib stream in IDAT (ISA-L error " + std::to_string(rc) + ")");
    if (st.total_out != raw.size())
        throw fail("image data ends after " + std::to_string(st.total_out) + " of " + std::to_string(raw.size()) +
                   " bytes");

    auto out = xt::xtensor<std::uint8_t, 2>::from_shape({h, w});
    const std::size_t n = stride - 1, bpp = std::size_t(channels);
    const std::vector<std::uint8_t> zeros(n, 0);
    constexpr std::size_t group = 4;  // Paeth rows unfiltered together (unpaeth_gray_rows)
    const auto paeth_rows = [&](const std::uint8_t* row, std::size_t count) {  // the next `count` rows are Paeth
        bool all = bpp == 1 && (row - raw.data()) / stride + count <= h;
        for (std::size_t k = 0; all && k < count; ++k) all = row[k * stride] == 4;
        return all;
    };
#if VASOMIM_PNG_PAETH_LANES
    std::vector<std::uint8_t> work;
    const bool lanes = n <= 30000;  // unpaeth_gray_rows16 counts steps in 16-bit lanes
#endif
    for (std::size_t i = 0; i < h;) {
        std::uint8_t* row = raw.data() + i * stride;
        const std::uint8_t* prev = i == 0 ? zeros.data() : row - stride + 1;
        std::size_t rows = 1;
#if VASOMIM_PNG_PAETH_LANES
        if (lanes && paeth_rows(row, 16)) {
            unpaeth_gray_rows16(row + 1, stride, prev, n, work);
            rows = 16;
        } else
#endif
        if (paeth_rows(row, group)) {
            unpaeth_gray_rows<group>(row + 1, stride, prev, n);
            rows = group;
        } else if (!unfilter_row(row[0], row + 1, prev, n, bpp)) {
            throw fail("unknown filter type " + std::to_string(row[0]) + " in row " + std::to_string(i));
        }
        for (std::size_t k = 0; k < rows; ++k) samples_to_gray(row + 1 + k * stride, w, channels, out.data() + (i + k) * w);
        i += rows;
    }
    return out;
}

}  // namespace detail

}  // namespace vasomim::io
