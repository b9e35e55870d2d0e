#pragma once
// Lossless JPEG of one component (ITU-T T.81 Annex H: process 14, SOF3, Huffman coding): the
// encoding of DICOM's transfer syntaxes 1.2.840.10008.1.2.4.57 and .70 (SV1), in which cine runs of
// X-ray angiography usually leave the lab.
//
// Why not DCMTK alone: DCMTK decodes these too, and dicom_reader falls back to it for every stream
// this decoder does not read, but its IJG decoder takes 2.3 ms for a 512 x 512 8-bit frame (one
// call per sample through function pointers), a third of what a frame may cost the pseudo-label
// program at 300 frames/s on two cores. Here a sample is one table lookup on a 64-bit bit register
// (code and extra bits together for the common short codes; two samples a lookup where each
// predicts from the one before) and one prediction: 0.62 ms for that frame.
//
// Read: one frame (SOF3) of 1 component, precision 2-16, one scan with predictor 1-7 and point
// transform Pt < P, Huffman tables (DHT) and a restart interval (DRI) of whole rows anywhere before
// the scan, other marker segments (APPn, COM, ...) skipped. Everything else (other SOFn, several
// components or scans, DNL, restart intervals that end inside a row) and every malformed stream
// (a code no table holds, data that ends early, restart markers out of order, samples outside P
// bits, a Huffman table that is no prefix code, a frame with more samples than its scan has bits)
// is refused with a format_error saying why, before anything of a size the header claims is
// allocated; nothing is guessed.
//
// Arithmetic as T.81 H.2: differences modulo 2^16 (SSSS 16 is 32768 without extra bits); the first
// row of the image and of each restart interval predicts from the left neighbour and its first
// sample from 2^(P - Pt - 1), later rows' first samples from the sample above; samples are returned
// shifted left by Pt.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/core/error.hpp"

namespace vasomim::io {

/// The frame and scan parameters of a lossless JPEG stream.
struct jpeg_lossless_info {
    int rows = 0, columns = 0;
    int precision = 0;         ///< P, bits per sample
    int predictor = 0;         ///< selection value, 1..7
    int point_transform = 0;   ///< Pt
    int restart_interval = 0;  ///< samples per restart interval (0: none)
};

namespace detail {

/// A DC-class Huffman table as lookups on the next `lookup_bits` bits of the stream. An entry
/// either holds the whole difference (code and extra bits fit: `len` bits in all), or the code's
/// length and SSSS (extra bits to read), or says the code is longer than the lookup (slow path).
struct jpeg_huffman_table {
    static constexpr int lookup_bits = 11;
    enum : std::uint8_t { whole = 0, code_only = 1, long_code = 2 };
    struct entry {
        std::int32_t value;  ///< whole: the difference; code_only: SSSS
        std::uint8_t len;    ///< bits consumed (whole) or code length (code_only)
        std::uint8_t kind;
    };
    std::array<entry, std::size_t(1) << lookup_bits> fast{};
    /// Two whole differences in the same lookup (`count` 2: both, `len1` and `len` bits; else 0):
    /// where each sample predicts from the one before (the first row, predictor 1) a lookup then
    /// yields two samples, at ~2.5 bits a sample (cine frames) most of the time.
    struct pair_entry {
        std::int16_t d1, d2;
        std::uint8_t len1, len, count, pad;
    };
    std::array<pair_entry, std::size_t(1) << lookup_bits> pair{};
    // Canonical decoding for codes longer than the lookup (T.81 F.2.2.3).
    std::array<std::int32_t, 18> maxcode{}, mincode{}, valptr{};
    std::array<std::uint8_t, 256> values{};
    bool defined = false;
};

/// The difference of SSSS `s` (1..15) with extra bits `v` (T.81 H.1.2.2, F.2.2.1 EXTEND).
inline std::int32_t jpeg_extend(std::uint32_t v, int s) {
    return v < (std::uint32_t(1) << (s - 1)) ? static_cast<std::int32_t>(v) - (std::int32_t(1) << s) + 1
                                             : static_cast<std::int32_t>(v);
}

/// Builds `t` from a DHT table's 16 code counts and its values; throws on a table no stream can use.
inline void build_jpeg_huffman(jpeg_huffman_table& t, const std::uint8_t* bits, const std::uint8_t* vals, int count) {
    constexpr int K = jpeg_huffman_table::lookup_bits;
    for (auto& e : t.fast) e = {0, 0, jpeg_huffman_table::long_code};
    std::memcpy(t.values.data(), vals, static_cast<std::size_t>(count));
    std::uint32_t code = 0;
    int k = 0;
    for (int len = 1; len <= 16; ++len) {
        const int n = bits[len - 1];
        t.valptr[len] = k;
        t.mincode[len] = static_cast<std::int32_t>(code);
        for (int i = 0; i < n; ++i, ++k, ++code) {
            if (code >= (std::uint32_t(1) << len))  // before it indexes the lookup
                throw format_error("lossless JPEG: a Huffman table whose codes overflow " + std::to_string(len) + " bits");
            const int s = vals[k];
            if (s > 16) throw format_error("lossless JPEG: a Huffman table with SSSS " + std::to_string(s) + " (lossless allows 0-16)");
            if (len > K) continue;
            const std::uint32_t first = code << (K - len), span = std::uint32_t(1) << (K - len);
            for (std::uint32_t j = 0; j < span; ++j) {
                auto& e = t.fast[first + j];
                if (s == 0 || s == 16)
                    e = {s == 0 ? 0 : 32768, static_cast<std::uint8_t>(len), jpeg_huffman_table::whole};
                else if (len + s <= K)
                    e = {jpeg_extend((j >> (K - len - s)) & ((std::uint32_t(1) << s) - 1), s),
                         static_cast<std::uint8_t>(len + s), jpeg_huffman_table::whole};
                else
                    e = {s, static_cast<std::uint8_t>(len), jpeg_huffman_table::code_only};
            }
        }
        // As IJG (and so DCMTK): no code may be all ones, so the next code must still fit.
        if (code >= (std::uint32_t(1) << len))
            throw format_error("lossless JPEG: a Huffman table whose codes overflow " + std::to_string(len) + " bits");
        t.maxcode[len] = n > 0 ? static_cast<std::int32_t>(code) - 1 : -1;
        code <<= 1;
    }
    constexpr std::uint32_t mask = (std::uint32_t(1) << K) - 1;
    for (std::uint32_t i = 0; i <= mask; ++i) {
        auto& p = t.pair[i];
        p = {0, 0, 0, 0, 0, 0};
        const auto& a = t.fast[i];
        if (a.kind != jpeg_huffman_table::whole || a.value == 32768 || a.len >= K) continue;
        // The second symbol's bits are the index's bits after the first; it counts only if its
        // lookup used none of the zeros shifted in behind them.
        const auto& b = t.fast[(i << a.len) & mask];
        if (b.kind != jpeg_huffman_table::whole || b.value == 32768 || a.len + b.len > K) continue;
        p = {static_cast<std::int16_t>(a.value), static_cast<std::int16_t>(b.value), a.len,
             static_cast<std::uint8_t>(a.len + b.len), 2, 0};
    }
    t.defined = true;
}

/// Bits of the entropy-coded data, most significant first, in a register: `buf` holds `count`
/// (>= 32 after refill()) valid bits at its top; `next` is the first byte not yet in it.
struct jpeg_bit_reader {
    const std::uint8_t* next;
    std::uint64_t buf = 0;
    int count = 0;
    void refill() {
        if (count < 32) {
            std::uint32_t v;
            std::memcpy(&v, next, 4);
            buf |= std::uint64_t(__builtin_bswap32(v)) << (32 - count);
            next += 4;
            count += 32;
        }
    }
    /// Bits consumed since `base`.
    std::size_t position(const std::uint8_t* base) const {
        return static_cast<std::size_t>(next - base) * 8 - static_cast<std::size_t>(count);
    }
};

/// One difference (at most 31 bits: refill() first).
inline std::int32_t jpeg_decode_difference(const jpeg_huffman_table& t, jpeg_bit_reader& r) {
    constexpr int K = jpeg_huffman_table::lookup_bits;
    const std::uint64_t w = r.buf;
    const auto& e = t.fast[w >> (64 - K)];
    if (e.kind == jpeg_huffman_table::whole) [[likely]] {
        r.buf = w << e.len;
        r.count -= e.len;
        return e.value;
    }
    int len = e.len, s = e.value;
    if (e.kind == jpeg_huffman_table::long_code) {
        len = K + 1;
        for (;; ++len) {
            if (len > 16) throw format_error("lossless JPEG: a Huffman code that no table holds");
            const auto code = static_cast<std::int32_t>(w >> (64 - len));
            if (code <= t.maxcode[len]) {
                s = t.values[static_cast<std::size_t>(t.valptr[len] + code - t.mincode[len])];
                break;
            }
        }
    }
    std::int32_t diff = 0;
    if (s == 16) diff = 32768;
    else if (s > 0) diff = jpeg_extend(static_cast<std::uint32_t>((w << len) >> (64 - s)), s);
    const int used = len + (s == 16 ? 0 : s);
    r.buf = w << used;
    r.count -= used;
    return diff;
}

/// Samples [x, end) of a row where each predicts from the one before (ra), two per lookup where the
/// pair table holds them.
template <class S>
inline void jpeg_left_predicted(const jpeg_huffman_table& t, jpeg_bit_reader& r, S* cur, int x, int end,
                                std::int32_t& ra, std::uint32_t& acc) {
    constexpr int K = jpeg_huffman_table::lookup_bits;
    while (x < end) {
        r.refill();
        const auto& p = t.pair[r.buf >> (64 - K)];
        if (p.count == 2 && x + 1 < end) {
            const std::int32_t a = (ra + p.d1) & 0xffff;
            ra = (a + p.d2) & 0xffff;
            cur[x] = static_cast<S>(a);
            cur[x + 1] = static_cast<S>(ra);
            acc |= static_cast<std::uint32_t>(a | ra);
            r.buf <<= p.len;
            r.count -= p.len;
            x += 2;
        } else {
            ra = (ra + jpeg_decode_difference(t, r)) & 0xffff;
            cur[x] = static_cast<S>(ra);
            acc |= static_cast<std::uint32_t>(ra);
            ++x;
        }
    }
}

/// Rows [row_begin, row_end) of one restart interval, predictor `Pred` after the first row.
template <int Pred, class S>
void jpeg_lossless_rows(const jpeg_huffman_table& t, jpeg_bit_reader& reader, const std::uint8_t* base,
                        std::size_t end_bit, S* plane, int columns, int row_begin, int row_end,
                        int first_prediction, std::uint32_t& seen) {
    jpeg_bit_reader r = reader;  // a local copy stays in registers
    for (int y = row_begin; y < row_end; ++y) {
        S* cur = plane + std::size_t(y) * std::size_t(columns);
        std::uint32_t acc = 0;
        if (y == row_begin) {
            std::int32_t ra = first_prediction;
            jpeg_left_predicted(t, r, cur, 0, columns, ra, acc);
        } else {
            const S* up = cur - columns;
            r.refill();
            std::int32_t ra = (up[0] + jpeg_decode_difference(t, r)) & 0xffff;
            cur[0] = static_cast<S>(ra);
            acc |= static_cast<std::uint32_t>(ra);
            if constexpr (Pred == 1) jpeg_left_predicted(t, r, cur, 1, columns, ra, acc);
            else for (int x = 1; x < columns; ++x) {
                const std::int32_t rb = up[x], rc = up[x - 1];
                std::int32_t p;
                if constexpr (Pred == 1) p = ra;
                else if constexpr (Pred == 2) p = rb;
                else if constexpr (Pred == 3) p = rc;
                else if constexpr (Pred == 4) p = ra + rb - rc;
                else if constexpr (Pred == 5) p = ra + ((rb - rc) >> 1);
                else if constexpr (Pred == 6) p = rb + ((ra - rc) >> 1);
                else p = (ra + rb) >> 1;
                r.refill();
                ra = (p + jpeg_decode_difference(t, r)) & 0xffff;
                cur[x] = static_cast<S>(ra);
                acc |= static_cast<std::uint32_t>(ra);
            }
        }
        seen |= acc;
        if (r.position(base) > end_bit) throw format_error("lossless JPEG: the entropy-coded data ends before the samples do");
    }
    reader = r;
}

/// The decoder; `storage(n)` returns room for the n = rows x columns samples.
template <class S, class Storage>
jpeg_lossless_info decode_jpeg_lossless(const std::uint8_t* data, std::size_t size, Storage&& storage) {
    static_assert(std::is_same_v<S, std::uint8_t> || std::is_same_v<S, std::uint16_t>);
    auto fail = [](const std::string& why) { return format_error("lossless JPEG: " + why); };
    auto marker = [](unsigned m) {
        const char* hex = "0123456789ABCDEF";
        return std::string("0xFF") + hex[(m >> 4) & 15] + hex[m & 15];
    };
    auto be16 = [&](std::size_t at) { return std::size_t(data[at]) << 8 | data[at + 1]; };
    if (size < 4 || data[0] != 0xff || data[1] != 0xd8) throw fail("the stream does not start with SOI");
    std::array<jpeg_huffman_table, 4> tables;
    jpeg_lossless_info info;
    int component = -1, table = -1;
    std::size_t at = 2;
    for (;;) {  // marker segments up to the scan
        if (at + 4 > size) throw fail("the stream ends before its scan");
        if (data[at] != 0xff) throw fail("no marker at byte " + std::to_string(at));
        const unsigned m = data[at + 1];
        if (m == 0xff) {  // fill byte
            ++at;
            continue;
        }
        if (m == 0x01 || m == 0xd8 || m == 0xd9 || (m >= 0xd0 && m <= 0xd7) || m == 0xdc || m == 0xde ||
            m == 0xdf || m < 0xc0)
            throw fail("marker " + marker(m) + " before the scan");
        const std::size_t len = be16(at + 2);
        if (len < 2 || at + 2 + len > size)
            throw fail("a marker segment of length " + std::to_string(len) + " at byte " + std::to_string(at) +
                       " runs past the stream");
        const std::uint8_t* seg = data + at + 4;
        const std::size_t n = len - 2;
        if (m == 0xc3) {
            if (info.rows != 0) throw fail("two frame headers");
            if (n < 6) throw fail("a short frame header");
            info.precision = seg[0];
            info.rows = static_cast<int>(std::size_t(seg[1]) << 8 | seg[2]);
            info.columns = static_cast<int>(std::size_t(seg[3]) << 8 | seg[4]);
            if (seg[5] != 1) throw fail(std::to_string(seg[5]) + " components (one is read)");
            if (n < 9) throw fail("a short frame header");
            if (info.precision < 2 || info.precision > 16)
                throw fail("precision " + std::to_string(info.precision) + " (lossless allows 2-16)");
            if (info.rows == 0) throw fail("rows given by a DNL marker");
            if (info.columns == 0) throw fail("a frame of 0 columns");
            component = seg[6];
        } else if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            throw fail("frame header SOF" + std::to_string(m - 0xc0) + " (lossless Huffman is SOF3)");
        } else if (m == 0xc4) {
            for (std::size_t i = 0; i < n;) {
                if (i + 17 > n) throw fail("a short Huffman table segment");
                const int tc = seg[i] >> 4, th = seg[i] & 15;
                int count = 0;
                for (int b = 0; b < 16; ++b) count += seg[i + 1 + b];
                if (th > 3 || tc > 1 || count > 256 || i + 17 + std::size_t(count) > n)
                    throw fail("a malformed Huffman table segment");
                if (tc == 0) build_jpeg_huffman(tables[th], seg + i + 1, seg + i + 17, count);
                i += 17 + std::size_t(count);
            }
        } else if (m == 0xdd) {
            if (n < 2) throw fail("a short restart interval segment");
            info.restart_interval = static_cast<int>(std::size_t(seg[0]) << 8 | seg[1]);
        } else if (m == 0xda) {
            if (info.rows == 0) throw fail("a scan before the frame header");
            if (n < 6 || seg[0] != 1 || n != 6) throw fail("a scan of other than one component");
            if (seg[1] != component) throw fail("a scan of a component the frame does not have");
            table = seg[2] >> 4;
            info.predictor = seg[3];
            info.point_transform = seg[5] & 15;
            if (table > 3 || !tables[static_cast<std::size_t>(table)].defined)
                throw fail("the scan's Huffman table " + std::to_string(table) + " is not defined");
            if (info.predictor < 1 || info.predictor > 7)
                throw fail("predictor " + std::to_string(info.predictor) + " (1-7)");
            if (seg[4] != 0 || (seg[5] >> 4) != 0) throw fail("a scan header with Se or Ah set");
            if (info.point_transform >= info.precision)
                throw fail("point transform " + std::to_string(info.point_transform) + " of precision " +
                           std::to_string(info.precision));
            at += 2 + len;
            break;
        }
        at += 2 + len;
    }
    const int columns = info.columns, rows = info.rows;
    if (sizeof(S) == 1 && info.precision > 8)
        throw fail("precision " + std::to_string(info.precision) + " for 8-bit samples");
    if (info.restart_interval % columns != 0)
        throw fail("a restart interval of " + std::to_string(info.restart_interval) + " samples in rows of " +
                   std::to_string(columns) + " (whole rows are read)");
    const int rows_per_interval = info.restart_interval == 0 ? rows : info.restart_interval / columns;
    const int intervals = (rows + rows_per_interval - 1) / rows_per_interval;

    // The entropy-coded data without byte stuffing, cut at the restart markers; zeros after it, as
    // many as one row can over-read before the end check (a difference takes at most 32 bits).
    std::vector<std::uint8_t> bytes;
    bytes.reserve(size - at + 4 * std::size_t(columns) + 16);
    std::vector<std::size_t> cuts{0};
    for (;;) {
        const void* ff = std::memchr(data + at, 0xff, size - at);
        if (ff == nullptr) throw fail("the scan has no end marker");
        const auto k = static_cast<std::size_t>(static_cast<const std::uint8_t*>(ff) - data);
        bytes.insert(bytes.end(), data + at, data + k);
        if (k + 1 >= size) throw fail("the scan has no end marker");
        const unsigned next = data[k + 1];
        if (next == 0x00) {
            bytes.push_back(0xff);
            at = k + 2;
        } else if (next == 0xff) {
            at = k + 1;
        } else if (next >= 0xd0 && next <= 0xd7) {
            if (info.restart_interval == 0 || next - 0xd0 != (cuts.size() - 1) % 8 ||
                static_cast<int>(cuts.size()) >= intervals)
                throw fail("restart marker RST" + std::to_string(next - 0xd0) + " out of place");
            cuts.push_back(bytes.size());
            at = k + 2;
        } else {
            if (next != 0xd9) throw fail("marker " + marker(next) + " after the scan (one scan is read)");
            break;
        }
    }
    if (static_cast<int>(cuts.size()) != intervals)
        throw fail(std::to_string(cuts.size() - 1) + " restart markers for " + std::to_string(intervals) +
                   " intervals");
    cuts.push_back(bytes.size());
    bytes.resize(bytes.size() + 4 * std::size_t(columns) + 16, 0);

    // Every difference takes a code of at least one bit: a header that claims more samples than
    // the scan has bits is refused before anything of its size is allocated.
    const std::size_t n = std::size_t(rows) * std::size_t(columns), bits = 8 * cuts.back();
    if (n > bits)
        throw fail("a frame of " + std::to_string(rows) + " x " + std::to_string(columns) + " samples from a scan of " +
                   std::to_string(bits) + " bits (each sample takes one at least)");
    S* plane = storage(n);
    const auto& t = tables[static_cast<std::size_t>(table)];
    const int first = 1 << (info.precision - info.point_transform - 1);
    std::uint32_t seen = 0;
    for (int i = 0; i < intervals; ++i) {
        jpeg_bit_reader reader{bytes.data() + cuts[std::size_t(i)]};
        const std::size_t end_bit = cuts[std::size_t(i) + 1] * 8;
        const int r0 = i * rows_per_interval, r1 = std::min(rows, r0 + rows_per_interval);
        auto run = [&](auto pred) {
            jpeg_lossless_rows<decltype(pred)::value>(t, reader, bytes.data(), end_bit, plane, columns, r0, r1,
                                                      first, seen);
        };
        switch (info.predictor) {
            case 1: run(std::integral_constant<int, 1>{}); break;
            case 2: run(std::integral_constant<int, 2>{}); break;
            case 3: run(std::integral_constant<int, 3>{}); break;
            case 4: run(std::integral_constant<int, 4>{}); break;
            case 5: run(std::integral_constant<int, 5>{}); break;
            case 6: run(std::integral_constant<int, 6>{}); break;
            default: run(std::integral_constant<int, 7>{}); break;
        }
    }
    if (seen >> (info.precision - info.point_transform))
        throw fail("samples outside " + std::to_string(info.precision - info.point_transform) + " bits");
    if (info.point_transform > 0)
        for (std::size_t i = 0; i < n; ++i) plane[i] = static_cast<S>(plane[i] << info.point_transform);
    return info;
}

}  // namespace detail

/// Decodes a lossless JPEG stream of one component into `plane` (rows x columns samples, row-major,
/// each shifted left by the point transform), resized to fit. Throws format_error naming what is
/// malformed or not read (see the top of this header).
inline jpeg_lossless_info decode_jpeg_lossless(const std::uint8_t* data, std::size_t size,
                                               std::vector<std::uint16_t>& plane) {
    return detail::decode_jpeg_lossless<std::uint16_t>(data, size, [&](std::size_t n) {
        plane.resize(n);
        return plane.data();
    });
}

/// As above, into `out`, room for `capacity` samples of S: 16 bits, or 8 for precision up to 8
/// (a stream of higher precision, or of more samples, is refused).
template <class S>
jpeg_lossless_info decode_jpeg_lossless(const std::uint8_t* data, std::size_t size, S* out, std::size_t capacity) {
    return detail::decode_jpeg_lossless<S>(data, size, [&](std::size_t n) {
        if (n > capacity)
            throw format_error("lossless JPEG: a frame of " + std::to_string(n) + " samples where " +
                               std::to_string(capacity) + " fit");
        return out;
    });
}

}  // namespace vasomim::io
