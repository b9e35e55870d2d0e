#pragma once
// 8-bit images (PNG, JPEG, BMP, TGA, ...) through stb_image / stb_image_write, and .npy images.
// 8-bit PNGs, the common case of datasets, are read by png_decode.hpp (ISA-L inflate) instead.
//
// Linking: the declarations come from Debian's libstb-dev headers (<stb/stb_image.h>,
// <stb/stb_image_write.h>) and the implementation from its shared library libstb.so; the CMake
// target vasomim::vasomim links it (find_library(stb)), so users of this header need nothing else.
// No translation unit of the library defines STB_IMAGE_IMPLEMENTATION, which keeps the header-only
// library free of duplicate-symbol problems.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/detail/atomic_file.hpp"
#include "vasomim/io/dicom.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/png_decode.hpp"

namespace vasomim::io {

namespace detail {

inline std::string lower_extension(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return e;
}

struct stbi_deleter {
    void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

extern "C" inline void append_to_string(void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

/// Debian 12's stb_image (2.27) trusts the code counts of a JPEG DHT segment: a table of more than
/// 256 codes writes past its Huffman tables on the heap (found by tests/fuzz/image_fuzz.cpp; upstream
/// checks it since 2.28). It also decodes a scan with a Huffman table no DHT segment defined, from
/// whatever the heap held there: stb's own assertion then aborts the process, or not, depending on
/// earlier allocations (found by tests/fuzz/folder_dataset_fuzz.cpp). This walks the JPEG's markers
/// as stb reads them and refuses both first, naming the file and the offset. Other bytes are left
/// to stb.
inline void check_jpeg_huffman_tables(std::string_view b, const std::string& name) {
    auto at = [&](std::size_t i) -> std::uint32_t { return i < b.size() ? static_cast<unsigned char>(b[i]) : 0u; };
    // stb takes any number of 0xFF fill bytes before SOI too (a file starting FF FF D8 is a JPEG).
    std::size_t pos = 0;
    while (at(pos) == 0xFF && pos < b.size()) ++pos;
    if (pos == 0 || at(pos) != 0xD8) return;
    ++pos;
    bool defined[2][4] = {};  // [DC, AC][table]
    bool progressive = false;
    while (pos + 1 < b.size()) {
        if (at(pos) != 0xFF) {  // entropy-coded data after a scan header: look for the next marker
            ++pos;
            continue;
        }
        const std::uint32_t m = at(pos + 1);
        if (m == 0xFF) {  // fill byte
            ++pos;
            continue;
        }
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // stuffed 0xFF, TEM, RSTn, SOI: no length
            pos += 2;
            continue;
        }
        if (m == 0xD9) return;  // EOI
        const std::size_t len = at(pos + 2) << 8 | at(pos + 3);
        if (m == 0xC4) {
            // As stb_image reads it: tables while the segment length lasts, each 1 + 16 count bytes
            // and then its symbols; bytes past the end of the file read as 0.
            long left = static_cast<long>(len) - 2;
            std::size_t q = pos + 4;
            while (left > 0) {
                const std::uint32_t tc = at(q) >> 4, th = at(q) & 15;
                if (tc > 1 || th > 3) break;  // stb refuses the segment itself
                std::uint32_t n = 0;
                for (std::size_t i = 1; i <= 16; ++i) n += at(q + i);
                if (n > 256)
                    throw format_error("read_gray8: '" + name + "' is a damaged JPEG: the Huffman table at byte " +
                                       std::to_string(q) + " claims " + std::to_string(n) + " codes (at most 256)");
                defined[tc][th] = true;
                q += 17 + n;
                left -= 17 + static_cast<long>(n);
            }
        } else if (m == 0xC2) {
            progressive = true;
        } else if (m == 0xDA) {
            // The tables the scan decodes with: baseline scans both of each component's; progressive
            // DC first passes (Ss = 0, Ah = 0) the DC table, AC passes (Ss > 0) the AC table.
            const std::uint32_t ns = at(pos + 4), ss = at(pos + 5 + 2 * ns), ah = at(pos + 7 + 2 * ns) >> 4;
            const bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
            for (std::uint32_t k = 0; k < ns; ++k) {
                const std::uint32_t t = at(pos + 6 + 2 * k), td = t >> 4, ta = t & 15;
                const char* missing = dc && td <= 3 && !defined[0][td] ? "DC" : ac && ta <= 3 && !defined[1][ta] ? "AC" : nullptr;
                if (missing)
                    throw format_error("read_gray8: '" + name + "' is a damaged JPEG: the scan at byte " +
                                       std::to_string(pos) + " uses " + missing + " Huffman table " +
                                       std::to_string(missing[0] == 'D' ? td : ta) + ", which no DHT segment defines");
            }
        }
        pos += 2 + len;
    }
}

}  // namespace detail

/// Reads an image file (PNG, JPEG, BMP, TGA, GIF's first frame, PNM) as 8-bit grayscale H x W.
/// Colour is converted like PIL's convert('L') (see detail::pil_luma); alpha is ignored; 16-bit
/// PNGs are reduced to their high byte. DICOM files (.dcm / .dicom, or "DICM" after the preamble)
/// are read through io/dicom.hpp where the build has DCMTK (VASOMIM_DICOM_READER): their frame 0, or
/// frame k when addressed as "file.dcm#k". Throws io_error (missing/unreadable) or format_error
/// (corrupt or unsupported content), naming the path.
inline xt::xtensor<std::uint8_t, 2> read_gray8(const std::filesystem::path& path) {
#if VASOMIM_DICOM_READER
    if (const frame_ref ref = split_frame_ref(path); ref.frame || has_dicom_extension(path))
        return read_dicom_gray8(path);
#endif
    const std::string bytes = detail::read_file_bytes(path, "read_gray8");
    if (bytes.empty()) throw format_error("read_gray8: '" + path.string() + "' is empty");
    if (has_dicom_magic(bytes)) {
#if VASOMIM_DICOM_READER
        return read_dicom_gray8(path);
#else
        throw format_error("read_gray8: '" + path.string() +
                           "' is a DICOM file; this build reads none (VASOMIM_WITH_DICOM needs DCMTK, libdcmtk-dev)");
#endif
    }
    if (auto png = detail::decode_png8(bytes, path.string())) return std::move(*png);
    detail::check_jpeg_huffman_tables(bytes, path.string());
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX))
        throw format_error("read_gray8: '" + path.string() + "' is larger than 2 GiB");
    int w = 0, h = 0, channels = 0;
    // What the header claims, before stb allocates and loops for it: no format stb reads packs more
    // than a few thousand pixels into a byte (LZW, run lengths), so a claim beyond 4096 pixels per
    // byte of file (plus 4 Mpixels) is a lie that would cost time and memory (a 1 KB TGA claiming
    // 16k x 16k kept stb busy for seconds; found by tests/fuzz/image_fuzz.cpp).
    if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                              &channels) &&
        static_cast<std::uint64_t>(std::max(w, 0)) * static_cast<std::uint64_t>(std::max(h, 0)) >
            4096 * static_cast<std::uint64_t>(bytes.size()) + (std::uint64_t(1) << 22))
        throw format_error("read_gray8: '" + path.string() + "' claims " + std::to_string(w) + " x " + std::to_string(h) +
                           " pixels, more than its " + std::to_string(bytes.size()) + " bytes can hold");
    std::unique_ptr<stbi_uc, detail::stbi_deleter> pixels(
        stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                              &w, &h, &channels, 0));
    if (!pixels) {
        const char* why = stbi_failure_reason();
        throw format_error("read_gray8: '" + path.string() + "' is not a readable image (" +
                           (why ? why : "unknown reason") + ")");
    }
    if (w <= 0 || h <= 0)  // stb returns a BMP of height 0 as a success (found by tests/fuzz/image_fuzz.cpp)
        throw format_error("read_gray8: '" + path.string() + "' is a " + std::to_string(w) + " x " + std::to_string(h) +
                           " image, without pixels");
    if (channels < 1 || channels > 4)
        throw format_error("read_gray8: '" + path.string() + "' has " + std::to_string(channels) +
                           " channels, expected 1 to 4");
    xt::xtensor<std::uint8_t, 2> out = xt::xtensor<std::uint8_t, 2>::from_shape(
        {static_cast<std::size_t>(h), static_cast<std::size_t>(w)});
    detail::samples_to_gray(pixels.get(), out.size(), channels, out.data());
    return out;
}

/// Reads a 2-D image as float: .npy files (any real dtype, converted; values kept as stored) or
/// image files through read_gray8 (values 0..255, not rescaled). Throws shape_error for .npy
/// arrays that are not 2-D, and io_error / format_error as the readers do.
inline xt::xtensor<float, 2> read_image_any(const std::filesystem::path& path) {
    if (detail::lower_extension(path) == ".npy") {
        auto a = read_npy_as<float>(path);
        if (a.dimension() != 2)
            throw shape_error("read_image_any: '" + path.string() + "' holds a " +
                              std::to_string(a.dimension()) + "-D array, expected a 2-D image");
        return xt::xtensor<float, 2>(a);
    }
    return xt::xtensor<float, 2>(xt::cast<float>(read_gray8(path)));
}

namespace detail {
inline void write_png_pixels(const std::filesystem::path& path, const std::uint8_t* data, std::size_t h,
                             std::size_t w, int comp, const char* what) {
    if (h == 0 || w == 0)
        throw shape_error(std::string(what) + ": cannot write an empty image (" + std::to_string(h) + " x " +
                          std::to_string(w) + ") to '" + path.string() + "'");
    if (h > static_cast<std::size_t>(INT32_MAX / 8) || w > static_cast<std::size_t>(INT32_MAX / 8))
        throw shape_error(std::string(what) + ": image too large for PNG: '" + path.string() + "'");
    std::string encoded;
    const int ok = stbi_write_png_to_func(&append_to_string, &encoded, static_cast<int>(w),
                                          static_cast<int>(h), comp, data, static_cast<int>(w) * comp);
    if (!ok) throw io_error(std::string(what) + ": PNG encoding failed for '" + path.string() + "'");
    write_atomically(path, what, [&](std::ostream& out) {
        out.write(encoded.data(), static_cast<std::streamsize>(encoded.size()));
    });
}
}  // namespace detail

/// Writes an 8-bit grayscale PNG (H x W). Atomic: temporary file in the same folder + rename.
inline void write_png(const std::filesystem::path& path, const xt::xtensor<std::uint8_t, 2>& image) {
    detail::write_png_pixels(path, image.data(), image.shape(0), image.shape(1), 1, "write_png");
}

/// Writes an 8-bit RGB PNG from an H x W x 3 array. Atomic like write_png.
inline void write_png(const std::filesystem::path& path, const xt::xtensor<std::uint8_t, 3>& rgb) {
    if (rgb.shape(2) != 3)
        throw shape_error("write_png: an RGB image must be H x W x 3, got last extent " +
                          std::to_string(rgb.shape(2)) + " for '" + path.string() + "'");
    detail::write_png_pixels(path, rgb.data(), rgb.shape(0), rgb.shape(1), 3, "write_png");
}

}  // namespace vasomim::io
