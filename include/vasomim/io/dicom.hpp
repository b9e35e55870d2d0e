#pragma once
// DICOM input (X-ray angiography cine runs and other single- or multi-frame objects) through DCMTK
// (Debian libdcmtk-dev), and the frame addressing / frame selection that programs use with it.
//
// Always available (no DCMTK needed): frame_ref / split_frame_ref ("run.dcm#17" -> run.dcm, frame
// 17), frame_suffix ("_f017"), frame_selection ("all", "*/4", "10-20", "1,5,9").
// Available where VASOMIM_DICOM_READER is 1 (the CMake option VASOMIM_WITH_DICOM defines
// VASOMIM_HAS_DICOM=1 on vasomim::vasomim and links DCMTK; not in translation units that nvcc
// compiles): dicom_reader, read_dicom_gray8, read_dicom_float, and io::read_gray8 reading .dcm files.
//
// Frames are numbered from 0. What a frame becomes (per frame, all arithmetic in double):
//   1. stored values (BitsStored bits, sign-extended when PixelRepresentation is 1);
//   2. colour (RGB, or what a JPEG decoder returns as RGB) is reduced to luminance as PIL's
//      convert("L") does: L = R*299/1000 + G*587/1000 + B*114/1000, computed exactly as PIL does
//      ((R*19595 + G*38470 + B*7471 + 0x8000) >> 16), the same as io::read_gray8 for colour PNGs;
//   3. monochrome: modality rescale v = stored * RescaleSlope + RescaleIntercept;
//   4. VOI (dicom_window::file, the default): the first VOI LUT of the VOI LUT Sequence when present
//      (index floor(v) - first mapped, clamped; y = LUT * 255 / (2^bits - 1)), else the first Window
//      Center/Width (DICOM's linear function, PS3.3 C.11.2.1.2.1, onto 0..255), else an object of
//      8-bit unsigned values without rescale is taken as it is (as the PNG it was made from) and
//      anything else is stretched min-max over the frame: y = (v - min) * 255 / (max - min), 0 when
//      flat. dicom_window::min_max always stretches min-max (colour included);
//   5. gray8: y rounded half to even (nearbyint), then MONOCHROME1 inverted (255 - y);
//      float: y, MONOCHROME1 as 255 - y (values 0..255 like read_image_any of a PNG).
// Transfer syntaxes: implicit / explicit little endian, explicit big endian, deflated, RLE, JPEG
// baseline / extended / lossless (processes 1, 2/4, 14, 14 SV1), JPEG-LS lossless / near-lossless.
// Lossless JPEG frames of one component are decoded by io/jpeg_lossless.hpp (about 3x DCMTK's
// speed; the same samples), every other frame and every stream that decoder refuses by DCMTK
// (dicom_options::lossless_jpeg chooses; dicom_reader::last_decoder() says who did).
// JPEG 2000, MPEG and others are refused by name. Errors are format_error / io_error naming the
// file (and frame): not DICOM, no pixel data, unsupported transfer syntax or photometric
// interpretation, frame index past the end (value_error).

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/jpeg_lossless.hpp"

#if defined(VASOMIM_HAS_DICOM) && VASOMIM_HAS_DICOM && !defined(__CUDACC__)
#define VASOMIM_DICOM_READER 1
#else
#define VASOMIM_DICOM_READER 0
#endif

#if VASOMIM_DICOM_READER
#include <memory>
#include <mutex>

#include <dcmtk/config/osconfig.h>  // first, as DCMTK requires
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfcache.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#endif

namespace vasomim::io {

// ---- frame addressing and selection (no DCMTK needed) -------------------------------------------

/// A file and, when addressed as "file.dcm#17", one frame of it.
struct frame_ref {
    std::filesystem::path file;
    std::optional<std::size_t> frame;
};

/// Splits "run.dcm#17" into {run.dcm, 17}. A path without a '#' followed by digits only at its end,
/// or one that exists as written, is returned whole with no frame.
inline frame_ref split_frame_ref(const std::filesystem::path& p) {
    const std::string s = p.string();
    const auto hash = s.rfind('#');
    if (hash == std::string::npos || hash + 1 >= s.size() || hash == 0) return {p, std::nullopt};
    std::size_t k = 0;
    const char* first = s.data() + hash + 1;
    const char* last = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(first, last, k);
    if (ec != std::errc() || ptr != last || !std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; }))
        return {p, std::nullopt};
    std::error_code exists_ec;
    if (std::filesystem::exists(p, exists_ec)) return {p, std::nullopt};
    return {std::filesystem::path(s.substr(0, hash)), k};
}

/// "file.dcm#17": how logs and listings name a frame.
inline std::string frame_ref_string(const std::filesystem::path& file, std::size_t frame) {
    return file.string() + "#" + std::to_string(frame);
}

/// "_f017": the suffix of the output of frame 17 (at least 3 digits).
inline std::string frame_suffix(std::size_t frame) {
    std::string d = std::to_string(frame);
    if (d.size() < 3) d.insert(0, 3 - d.size(), '0');
    return "_f" + d;
}

/// Which frames of a multi-frame object to take. Syntax: comma-separated items, each
///   all | *        every frame
///   N              frame N
///   A-B | A-       frames A to B inclusive, A to the last
/// each optionally followed by /K: every K-th frame of that item ("*/4": 0, 4, 8, ...; "10-40/10":
/// 10, 20, 30, 40). Frames are taken in the order given, each once.
class frame_selection {
public:
    frame_selection() = default;  // all frames

    static frame_selection parse(std::string_view spec) {
        frame_selection s;
        s.items_.clear();
        auto fail = [&](const std::string& why) -> void {
            throw value_error("frame selection '" + std::string(spec) + "': " + why +
                              " (expected e.g. all, */4, 10-20, 3-, 1,5,9)");
        };
        auto number = [&](std::string_view t) -> std::size_t {
            std::size_t v = 0;
            const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) fail("'" + std::string(t) + "' is not a frame number");
            return v;
        };
        std::size_t pos = 0;
        if (spec.empty()) fail("empty");
        while (pos <= spec.size()) {
            const auto comma = spec.find(',', pos);
            std::string_view item = spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
            while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
            if (item.empty()) fail("empty item");
            range r;
            const auto slash = item.find('/');
            if (slash != std::string_view::npos) {
                r.step = number(item.substr(slash + 1));
                if (r.step == 0) fail("a step of 0");
                item = item.substr(0, slash);
            }
            if (item == "all" || item == "*") {
                r.first = 0;
                r.last = std::nullopt;
            } else if (const auto dash = item.find('-'); dash != std::string_view::npos) {
                r.first = number(item.substr(0, dash));
                if (dash + 1 < item.size()) {
                    r.last = number(item.substr(dash + 1));
                    if (*r.last < r.first) fail("a range that ends before it starts");
                } else {
                    r.last = std::nullopt;
                }
            } else {
                r.first = number(item);
                r.last = r.first;
                r.single = true;
            }
            s.items_.push_back(r);
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
        s.spec_ = std::string(spec);
        return s;
    }

    /// The frames of an object of `frame_count` frames. A single frame or a range end past the
    /// last frame throws value_error naming `what` (e.g. the file); open ranges stop at the end.
    std::vector<std::size_t> resolve(std::size_t frame_count, const std::string& what = "") const {
        std::vector<std::size_t> out;
        std::vector<bool> seen(frame_count, false);
        for (const auto& r : items_) {
            const std::size_t last = r.last ? *r.last : (frame_count == 0 ? 0 : frame_count - 1);
            if ((r.last || r.single) && last >= frame_count)
                throw value_error("frame selection '" + spec_ + "': frame " + std::to_string(last) + " is past the end" +
                                  (what.empty() ? std::string() : " of '" + what + "'") + " (" +
                                  std::to_string(frame_count) + " frames, numbered from 0)");
            if (frame_count == 0) continue;
            for (std::size_t k = r.first; k <= last; k += r.step)
                if (!seen[k]) {
                    seen[k] = true;
                    out.push_back(k);
                }
        }
        return out;
    }

    const std::string& spec() const noexcept { return spec_; }
    bool is_all() const noexcept {
        return items_.size() == 1 && items_[0].first == 0 && !items_[0].last && items_[0].step == 1;
    }

private:
    struct range {
        std::size_t first = 0;
        std::optional<std::size_t> last;  // nullopt: to the end
        std::size_t step = 1;
        bool single = false;
    };
    std::vector<range> items_{range{}};
    std::string spec_ = "all";
};

/// True for the extensions .dcm / .dicom (any case).
inline bool has_dicom_extension(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return e == ".dcm" || e == ".dicom";
}

/// True when `bytes` start like a DICOM Part 10 file ("DICM" after the 128-byte preamble).
inline bool has_dicom_magic(std::string_view bytes) {
    return bytes.size() >= 132 && bytes.substr(128, 4) == "DICM";
}

// ---- the reader (DCMTK) ---------------------------------------------------------------------------

enum class dicom_window {
    file,     ///< VOI LUT, else first window, else 8-bit as is / min-max (see the top of this header)
    min_max,  ///< always min-max over each frame
};

/// Who decodes lossless JPEG frames (transfer syntaxes .57 and .70).
enum class dicom_lossless_jpeg {
    builtin,  ///< io/jpeg_lossless.hpp for the one-component streams it reads, DCMTK for the rest
    dcmtk,    ///< DCMTK always (its IJG decoder; about 3x slower)
};

struct dicom_options {
    dicom_window window = dicom_window::file;
    dicom_lossless_jpeg lossless_jpeg = dicom_lossless_jpeg::builtin;
    bool operator==(const dicom_options&) const = default;
};

#if VASOMIM_DICOM_READER

/// What an object holds, as read from its header.
struct dicom_info {
    std::size_t rows = 0, columns = 0, frames = 0;
    int samples_per_pixel = 1, bits_allocated = 0, bits_stored = 0, high_bit = 0;
    bool is_signed = false;
    std::string photometric;      ///< as stored (e.g. MONOCHROME1, RGB, YBR_FULL_422)
    std::string transfer_syntax;  ///< DCMTK's name, e.g. "JPEG Lossless, Non-hierarchical, First-Order Prediction"
    double rescale_slope = 1, rescale_intercept = 0;
    std::optional<double> window_center, window_width;  ///< the first ones
    bool has_voi_lut = false;
};

namespace detail {

/// Registers DCMTK's RLE, JPEG and JPEG-LS decoders once per process and quiets DCMTK's own logging
/// below errors (refusals are reported through exceptions).
inline void dicom_register_codecs() {
    static std::once_flag once;
    std::call_once(once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DcmRLEDecoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
    });
}

inline bool dicom_xfer_supported(E_TransferSyntax x) {
    switch (x) {
        case EXS_LittleEndianImplicit:
        case EXS_LittleEndianExplicit:
        case EXS_BigEndianExplicit:
        case EXS_BigEndianImplicit:
        case EXS_DeflatedLittleEndianExplicit:
        case EXS_RLELossless:
        case EXS_JPEGProcess1:
        case EXS_JPEGProcess2_4:
        case EXS_JPEGProcess14:
        case EXS_JPEGProcess14SV1:
        case EXS_JPEGLSLossless:
        case EXS_JPEGLSLossy:
            return true;
        default:
            return false;
    }
}

}  // namespace detail

/// One DICOM object, opened once; frames decoded on demand (sequential reads reuse DCMTK's fragment
/// position and file handle). Not thread-safe: one reader per thread.
class dicom_reader {
public:
    explicit dicom_reader(const std::filesystem::path& path, dicom_options options = {})
        : path_(path), options_(options), file_(std::make_unique<DcmFileFormat>()) {
        detail::dicom_register_codecs();
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec))
            throw io_error("read_dicom: '" + name() + "' does not exist or is not a file");
        const OFCondition c = file_->loadFile(OFFilename(path.c_str()));
        if (c.bad()) throw format_error("read_dicom: '" + name() + "' is not a DICOM file (" + c.text() + ")");
        DcmDataset* ds = file_->getDataset();
        const E_TransferSyntax xfer = ds->getOriginalXfer();
        info_.transfer_syntax = DcmXfer(xfer).getXferName();
        DcmElement* el = nullptr;
        if (ds->findAndGetElement(DCM_PixelData, el).bad() || el == nullptr ||
            (!DcmXfer(xfer).isEncapsulated() && el->getLength() == 0))
            throw format_error("read_dicom: '" + name() + "' holds no pixel data (transfer syntax " +
                               info_.transfer_syntax + ")");
        pixels_ = dynamic_cast<DcmPixelData*>(el);
        if (pixels_ == nullptr) throw format_error("read_dicom: '" + name() + "': Pixel Data is not pixel data");
        xfer_ = xfer;
        if (!detail::dicom_xfer_supported(xfer))
            throw format_error("read_dicom: '" + name() + "': transfer syntax '" + info_.transfer_syntax + "' (" +
                               DcmXfer(xfer).getXferID() + ") is not supported (supported: uncompressed, RLE, JPEG "
                               "baseline/extended/lossless, JPEG-LS; JPEG 2000 is not)");
        auto u16 = [&](const DcmTagKey& tag, const char* what) -> Uint16 {
            Uint16 v = 0;
            if (ds->findAndGetUint16(tag, v).bad())
                throw format_error("read_dicom: '" + name() + "' lacks " + what);
            return v;
        };
        info_.rows = u16(DCM_Rows, "Rows");
        info_.columns = u16(DCM_Columns, "Columns");
        info_.bits_allocated = u16(DCM_BitsAllocated, "BitsAllocated");
        Uint16 v = 0;
        info_.bits_stored = ds->findAndGetUint16(DCM_BitsStored, v).good() ? v : info_.bits_allocated;
        info_.high_bit = ds->findAndGetUint16(DCM_HighBit, v).good() ? v : info_.bits_stored - 1;
        info_.samples_per_pixel = ds->findAndGetUint16(DCM_SamplesPerPixel, v).good() ? v : 1;
        info_.is_signed = ds->findAndGetUint16(DCM_PixelRepresentation, v).good() && v == 1;
        planar_ = ds->findAndGetUint16(DCM_PlanarConfiguration, v).good() && v == 1;
        Sint32 frames = 1;
        if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
        info_.frames = static_cast<std::size_t>(frames);
        OFString s;
        if (ds->findAndGetOFString(DCM_PhotometricInterpretation, s).good()) info_.photometric = s.c_str();
        Float64 f = 0;
        if (ds->findAndGetFloat64(DCM_RescaleSlope, f).good() && std::isfinite(f) && f != 0) info_.rescale_slope = f;
        if (ds->findAndGetFloat64(DCM_RescaleIntercept, f).good() && std::isfinite(f)) info_.rescale_intercept = f;
        Float64 wc = 0, ww = 0;
        if (ds->findAndGetFloat64(DCM_WindowCenter, wc, 0).good() && ds->findAndGetFloat64(DCM_WindowWidth, ww, 0).good() &&
            std::isfinite(wc) && std::isfinite(ww) && ww >= 1) {
            info_.window_center = wc;
            info_.window_width = ww;
        }
        DcmItem* voi = nullptr;
        if (ds->findAndGetSequenceItem(DCM_VOILUTSequence, voi, 0).good() && voi != nullptr) {
            const Uint16* desc = nullptr;
            unsigned long n_desc = 0;
            const Uint16* data = nullptr;
            unsigned long n_data = 0;
            if (voi->findAndGetUint16Array(DCM_LUTDescriptor, desc, &n_desc).good() && n_desc == 3 &&
                voi->findAndGetUint16Array(DCM_LUTData, data, &n_data).good() && data != nullptr) {
                const std::size_t entries = desc[0] == 0 ? 65536 : desc[0];
                const int bits = desc[2];
                if (n_data >= entries && bits >= 1 && bits <= 16) {
                    info_.has_voi_lut = true;
                    lut_.assign(data, data + entries);
                    lut_first_ = info_.is_signed ? static_cast<std::int16_t>(desc[1]) : static_cast<long>(desc[1]);
                    lut_bits_ = bits;
                }
            }
        }
        if (info_.rows == 0 || info_.columns == 0)
            throw format_error("read_dicom: '" + name() + "' has an empty image (" + std::to_string(info_.rows) + " x " +
                               std::to_string(info_.columns) + ")");
        if (info_.bits_allocated != 8 && info_.bits_allocated != 16)
            throw format_error("read_dicom: '" + name() + "': " + std::to_string(info_.bits_allocated) +
                               " bits allocated per sample (8 or 16 are read)");
        if (info_.bits_stored < 1 || info_.bits_stored > info_.bits_allocated)
            throw format_error("read_dicom: '" + name() + "': BitsStored " + std::to_string(info_.bits_stored) +
                               " does not fit BitsAllocated " + std::to_string(info_.bits_allocated));
        if (info_.samples_per_pixel != 1 && info_.samples_per_pixel != 3)
            throw format_error("read_dicom: '" + name() + "': " + std::to_string(info_.samples_per_pixel) +
                               " samples per pixel (1 or 3 are read)");
        Uint32 frame_bytes = 0;
        if (pixels_->getUncompressedFrameSize(ds, frame_bytes).bad() || frame_bytes == 0)
            throw format_error("read_dicom: '" + name() + "': the frame size cannot be determined");
        frame_bytes_ = frame_bytes;
        const std::size_t need = info_.rows * info_.columns * std::size_t(info_.samples_per_pixel) *
                                 std::size_t(info_.bits_allocated / 8);
        if (frame_bytes_ < need)
            throw format_error("read_dicom: '" + name() + "': frames of " + std::to_string(frame_bytes_) +
                               " bytes cannot hold " + std::to_string(need));
        if (!DcmXfer(xfer).isEncapsulated()) {
            // Native pixel data must hold every frame it claims.
            const std::size_t have = pixels_->getLength();
            if (have / need < info_.frames)
                throw format_error("read_dicom: '" + name() + "' claims " + std::to_string(info_.frames) +
                                   " frames but its pixel data holds " + std::to_string(have / need));
        }
    }

    /// Who decoded the last frame read: "builtin" (io/jpeg_lossless.hpp) or "DCMTK".
    const char* last_decoder() const noexcept { return last_builtin_ ? "builtin" : "DCMTK"; }

    const dicom_info& info() const noexcept { return info_; }
    std::size_t frames() const noexcept { return info_.frames; }
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Frame k as 8-bit gray (see the top of this header).
    xt::xtensor<std::uint8_t, 2> frame_gray8(std::size_t k) {
        const auto [lo, hi] = stored(k);
        // Every stored (or luminance) value in [lo, hi] is mapped once through values_of(); the
        // pixels then go through that table. Same arithmetic per value as per pixel, fewer times.
        const std::vector<double> y = values_of(lo, hi);
        const bool invert = info_.photometric == "MONOCHROME1";
        std::vector<std::uint8_t> table(y.size());
        for (std::size_t i = 0; i < y.size(); ++i) {
            const auto u = static_cast<std::uint8_t>(std::nearbyint(std::clamp(y[i], 0.0, 255.0)));
            table[i] = invert ? static_cast<std::uint8_t>(255 - u) : u;
        }
        xt::xtensor<std::uint8_t, 2> out = xt::xtensor<std::uint8_t, 2>::from_shape({info_.rows, info_.columns});
        map_through(table, lo, out.data());
        return out;
    }

    /// Frame k as float 0..255, before rounding (see the top of this header).
    xt::xtensor<float, 2> frame_float(std::size_t k) {
        const auto [lo, hi] = stored(k);
        const std::vector<double> y = values_of(lo, hi);
        const bool invert = info_.photometric == "MONOCHROME1";
        std::vector<float> table(y.size());
        for (std::size_t i = 0; i < y.size(); ++i) {
            const double c = std::clamp(y[i], 0.0, 255.0);
            table[i] = static_cast<float>(invert ? 255.0 - c : c);
        }
        xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({info_.rows, info_.columns});
        map_through(table, lo, out.data());
        return out;
    }

private:
    std::string name() const { return path_.string(); }

    /// out[i] = table[value of pixel i - lo], the values from gray_, or for 8-bit samples taken as
    /// they are straight from buffer_.
    template <class T>
    void map_through(const std::vector<T>& table, std::int32_t lo, T* out) const {
        const std::size_t n = info_.rows * info_.columns;
        if (direct8_) {
            const std::uint8_t* b = buffer_.data();
            for (std::size_t i = 0; i < n; ++i) out[i] = table[static_cast<std::size_t>(b[i] - lo)];
            return;
        }
        const std::int32_t* g = gray_.data();
        for (std::size_t i = 0; i < n; ++i) out[i] = table[static_cast<std::size_t>(g[i] - lo)];
    }

    /// DCMTK 3.6.7's RLE decoder trusts the segment offsets of a frame's RLE header and reads past
    /// the fragment when one lies beyond it (found by tests/fuzz/dicom_fuzz.cpp). The header is
    /// checked here first (PS3.5 G.5: one fragment per frame; 64 bytes, the segment count - one per
    /// byte of each sample - then the offsets, the first 64, increasing, inside the fragment).
    void check_rle_frame(std::size_t k) const {
        auto fail = [&](const std::string& why) {
            return format_error("read_dicom: '" + frame_name(k) + "' is damaged RLE data: " + why);
        };
        DcmPixelSequence* seq = nullptr;
        if (pixels_->getEncapsulatedRepresentation(xfer_, nullptr, seq).bad() || seq == nullptr)
            throw fail("no encapsulated pixel data");
        if (seq->card() != info_.frames + 1)
            throw fail(std::to_string(seq->card()) + " items for " + std::to_string(info_.frames) +
                       " frames (RLE takes an offset table and one fragment per frame)");
        DcmPixelItem* item = nullptr;
        Uint8* bytes = nullptr;
        if (seq->getItem(item, static_cast<unsigned long>(k + 1)).bad() || item == nullptr ||
            item->getUint8Array(bytes).bad())
            throw fail("its fragment cannot be read");
        const Uint32 len = item->getLength();
        if (len < 64 || bytes == nullptr) throw fail("a fragment of " + std::to_string(len) + " bytes (the header alone is 64)");
        auto le32 = [&](std::size_t i) {
            return Uint32(bytes[4 * i]) | Uint32(bytes[4 * i + 1]) << 8 | Uint32(bytes[4 * i + 2]) << 16 |
                   Uint32(bytes[4 * i + 3]) << 24;
        };
        const Uint32 segments = le32(0);
        const Uint32 expected = static_cast<Uint32>(info_.samples_per_pixel) * ((info_.bits_allocated + 7u) / 8u);
        if (segments != expected)
            throw fail(std::to_string(segments) + " segments where " + std::to_string(expected) + " are expected");
        Uint32 previous = 0;
        for (Uint32 i = 0; i < segments; ++i) {
            const Uint32 offset = le32(1 + i);
            if ((i == 0 && offset != 64) || (i > 0 && offset <= previous) || offset >= len)
                throw fail("segment " + std::to_string(i) + " starts at byte " + std::to_string(offset) + " of a " +
                           std::to_string(len) + "-byte fragment");
            previous = offset;
        }
    }

    /// DCMTK 3.6.7's JPEG decoder first walks the markers of a frame's first fragment for the
    /// frame header's precision (DJCodecDecoder::scanJpegDataForBitDepth) and never steps past a
    /// TEM marker (0xFF01): a fragment whose walk meets one before any frame header hangs the
    /// process (found by tests/fuzz/dicom_fuzz.cpp). The same walk is made here first, by the
    /// marker syntax of ITU-T T.81 B.1: SOI, EOI, RSTn and the reserved 0xFF02-0xFFBF are 2 bytes,
    /// a fill byte 0xFF is 1, every other marker begins a segment of 2 + its stated length; a frame
    /// header (SOFn) ends it, and so does anything else DCMTK stops at on its own. `start` is the
    /// fragment DCMTK is given (0: it finds it: then every fragment that opens a JPEG stream, SOI
    /// first, is checked, unless the fragment is known from one fragment per frame).
    void check_jpeg_frame(std::size_t k, Uint32 start) const {
        DcmPixelSequence* seq = nullptr;
        if (pixels_->getEncapsulatedRepresentation(xfer_, nullptr, seq).bad() || seq == nullptr) return;  // DCMTK says so
        const unsigned long items = seq->card();
        auto check = [&](unsigned long index, bool only_streams) {
            DcmPixelItem* item = nullptr;
            Uint8* b = nullptr;
            if (index == 0 || index >= items || seq->getItem(item, index).bad() || item == nullptr ||
                item->getUint8Array(b).bad() || b == nullptr)
                return;  // DCMTK reports a missing fragment itself
            const Uint32 len = item->getLength();
            if (only_streams && !(len >= 2 && b[0] == 0xff && b[1] == 0xd8)) return;
            for (Uint32 at = 0; at + 4 < len;) {
                if (b[at] != 0xff) return;  // not a marker: DCMTK stops
                const unsigned m = b[at + 1];
                const bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
                if (sof) return;
                if (m == 0x01)
                    throw format_error("read_dicom: '" + frame_name(k) + "' is damaged JPEG data: a TEM marker at byte " +
                                       std::to_string(at) + " of fragment " + std::to_string(index) +
                                       " before the frame header");
                if (m == 0xff) at += 1;
                else if ((m >= 0xd0 && m <= 0xd9) || (m >= 0x02 && m <= 0xbf)) at += 2;
                else if (m >= 0xc4) at += 2u + (Uint32(b[at + 2]) << 8 | b[at + 3]);  // a marker segment
                else return;  // 0xFF00: DCMTK stops
            }
        };
        if (start != 0) check(start, false);
        else if (k == 0 || items == info_.frames + 1) check(static_cast<unsigned long>(k + 1), false);
        else
            for (unsigned long i = 1; i < items; ++i) check(i, true);
    }

    std::string frame_name(std::size_t k) const { return frame_ref_string(path_, k); }

    /// Decodes frame k into gray_ (stored values, luminance for colour; 8-bit gray stays in buffer_)
    /// and returns their range.
    std::pair<std::int32_t, std::int32_t> stored(std::size_t k) {
        if (k >= info_.frames)
            throw value_error("read_dicom: frame " + std::to_string(k) + " is past the end of '" + name() + "' (" +
                              std::to_string(info_.frames) + " frames, numbered from 0)");
        buffer_.resize(frame_bytes_ + 1);
        builtin_refusal_.clear();
        last_builtin_ = builtin_lossless_frame(k);
        if (last_builtin_) {
            next_frame_ = std::numeric_limits<std::size_t>::max();  // DCMTK's fragment position is stale
            return convert_frame(k, info_.photometric);
        }
        if (xfer_ == EXS_RLELossless) check_rle_frame(k);
        Uint32 start = (k == next_frame_) ? next_fragment_ : 0;
        if (xfer_ == EXS_JPEGProcess1 || xfer_ == EXS_JPEGProcess2_4 || xfer_ == EXS_JPEGProcess14 ||
            xfer_ == EXS_JPEGProcess14SV1)
            check_jpeg_frame(k, start);
        OFString model;
        const OFCondition c = pixels_->getUncompressedFrame(file_->getDataset(), static_cast<Uint32>(k), start,
                                                            buffer_.data(), static_cast<Uint32>(frame_bytes_), model,
                                                            &cache_);
        if (c.bad()) {
            next_frame_ = std::numeric_limits<std::size_t>::max();
            throw format_error("read_dicom: '" + frame_name(k) + "' cannot be decoded (" + info_.transfer_syntax +
                               "): " + c.text() +
                               (builtin_refusal_.empty() ? "" : " (and by the builtin decoder: " + builtin_refusal_ + ")"));
        }
        next_frame_ = k + 1;
        next_fragment_ = start;
        return convert_frame(k, model.empty() ? info_.photometric : std::string(model.c_str()));
    }

    /// The fragments (items of the pixel sequence, from 1) that hold frame k: [first, last]. One per
    /// frame; all of a single-frame object; else by the Basic Offset Table (item 0), or without one
    /// by the fragments that begin a JPEG stream (SOI), when their count is the frame count. {0, 0}
    /// when the layout says nothing certain (DCMTK then finds the frame itself). The layout is
    /// worked out once per reader (frame_starts_), reading 2 bytes of each fragment at most.
    std::pair<unsigned long, unsigned long> frame_fragments(DcmPixelSequence* seq, std::size_t k) {
        const unsigned long items = seq->card(), frames = static_cast<unsigned long>(info_.frames);
        if (items < 2) return {0, 0};
        const unsigned long kk = static_cast<unsigned long>(k);
        if (items - 1 == frames) return {kk + 1, kk + 1};
        if (frames == 1) return {1, items - 1};
        if (!frame_starts_) frame_starts_ = find_frame_starts(seq, items, frames);
        const auto& starts = *frame_starts_;
        if (starts.empty()) return {0, 0};
        return {starts[k], k + 1 < frames ? starts[k + 1] - 1 : items - 1};
    }

    /// The first fragment of every frame (frame_fragments), empty when uncertain.
    static std::vector<unsigned long> find_frame_starts(DcmPixelSequence* seq, unsigned long items, unsigned long frames) {
        auto item_at = [&](unsigned long i) -> DcmPixelItem* {
            DcmPixelItem* it = nullptr;
            return seq->getItem(it, i).good() ? it : nullptr;
        };
        std::vector<unsigned long> starts;
        DcmPixelItem* bot = item_at(0);
        Uint8* table = nullptr;
        if (bot != nullptr && bot->getLength() == 4 * frames && bot->getUint8Array(table).good() && table != nullptr) {
            // Offsets of each frame's first item from the first fragment's item tag (8 bytes of tag and
            // length before each fragment).
            std::uint64_t at = 0;
            unsigned long f = 0;
            for (unsigned long i = 1; i < items && f < frames; ++i) {
                const std::uint64_t want = std::uint64_t(table[4 * f]) | std::uint64_t(table[4 * f + 1]) << 8 |
                                           std::uint64_t(table[4 * f + 2]) << 16 | std::uint64_t(table[4 * f + 3]) << 24;
                if (at == want) starts.push_back(i), ++f;
                else if (at > want) return {};
                DcmPixelItem* it = item_at(i);
                if (it == nullptr) return {};
                at += 8 + it->getLength();
            }
        } else {
            for (unsigned long i = 1; i < items; ++i) {
                DcmPixelItem* it = item_at(i);
                std::uint8_t b[2] = {0, 0};
                if (it == nullptr || it->getLength() < 2 || it->getPartialValue(b, 0, 2).bad()) return {};
                if (b[0] == 0xff && b[1] == 0xd8) starts.push_back(i);
            }
        }
        if (starts.size() != frames || starts[0] != 1) return {};
        return starts;
    }

    /// Decodes frame k with io/jpeg_lossless.hpp into buffer_ when the object is lossless JPEG of
    /// one component, frame k's fragments are known (frame_fragments) and its stream is one that
    /// decoder reads, of the object's size, with samples of BitsAllocated (precision up to 8 in 8
    /// bits, above 8 in 16; like DCMTK, more bits than BitsStored are decoded and then masked);
    /// false otherwise: DCMTK then decodes the frame, or says why it cannot.
    bool builtin_lossless_frame(std::size_t k) {
        if (options_.lossless_jpeg != dicom_lossless_jpeg::builtin ||
            (xfer_ != EXS_JPEGProcess14 && xfer_ != EXS_JPEGProcess14SV1) || info_.samples_per_pixel != 1)
            return false;
        DcmPixelSequence* seq = nullptr;
        if (pixels_->getEncapsulatedRepresentation(xfer_, nullptr, seq).bad() || seq == nullptr) return false;
        const auto [first, last] = frame_fragments(seq, k);
        if (first == 0) return false;
        // The stream: the fragment itself, or the frame's fragments one after another. Whatever
        // happens, the fragments loaded leave memory again when this returns (DCMTK reloads them
        // from the file if it reads them).
        struct compact_on_return {
            std::vector<DcmPixelItem*> items;
            ~compact_on_return() {
                for (DcmPixelItem* item : items) item->compact();
            }
        } parts;
        const std::uint8_t* stream = nullptr;
        std::size_t length = 0;
        stream_.clear();
        for (unsigned long i = first; i <= last; ++i) {
            DcmPixelItem* item = nullptr;
            Uint8* bytes = nullptr;
            if (seq->getItem(item, i).bad() || item == nullptr || item->getUint8Array(bytes).bad() ||
                (bytes == nullptr && item->getLength() > 0))
                return false;
            parts.items.push_back(item);
            if (first == last) stream = bytes, length = item->getLength();
            else stream_.insert(stream_.end(), bytes, bytes + item->getLength());
        }
        if (first != last) stream = stream_.data(), length = stream_.size();
        // Straight into the frame buffer (DCMTK overwrites it where this decoder gives up).
        const std::size_t n = info_.rows * info_.columns;
        jpeg_lossless_info got;
        try {
            if (stream == nullptr) throw format_error("lossless JPEG: an empty fragment");
            if (info_.bits_allocated == 8)
                got = decode_jpeg_lossless(stream, length, buffer_.data(), n);
            else
                got = decode_jpeg_lossless(stream, length, reinterpret_cast<std::uint16_t*>(buffer_.data()), n);
        } catch (const format_error& e) {
            builtin_refusal_ = e.what();
            return false;
        }
        // DCMTK's 8-bit decoder fills 8-bit samples, its 12- and 16-bit ones 16-bit samples.
        return static_cast<std::size_t>(got.rows) == info_.rows && static_cast<std::size_t>(got.columns) == info_.columns &&
               (info_.bits_allocated == 8) == (got.precision <= 8);
    }

    /// buffer_ (frame k, decoded) -> gray_ (unless direct8_); returns the range of its values.
    std::pair<std::int32_t, std::int32_t> convert_frame(std::size_t k, const std::string& photometric) {
        const std::size_t n = info_.rows * info_.columns;
        const int spp = info_.samples_per_pixel;
        const bool mono = photometric == "MONOCHROME1" || photometric == "MONOCHROME2";
        if (spp == 1 && !mono)
            throw format_error("read_dicom: '" + frame_name(k) + "': photometric interpretation '" + photometric +
                               "' is not read (MONOCHROME1, MONOCHROME2, RGB)");
        if (spp == 3 && photometric != "RGB")
            throw format_error("read_dicom: '" + frame_name(k) + "': colour in '" + photometric +
                               "' is not read (RGB; JPEG-compressed YBR is decoded to RGB)");
        std::int32_t lo = std::numeric_limits<std::int32_t>::max(), hi = std::numeric_limits<std::int32_t>::min();
        // Unsigned 8-bit gray (most cine runs): the samples are the values; only their range is needed.
        direct8_ = spp == 1 && info_.bits_allocated == 8 && info_.bits_stored == 8 && !info_.is_signed;
        if (direct8_) {
            std::uint8_t mn = 255, mx = 0;
            for (std::size_t i = 0; i < n; ++i) {
                mn = std::min(mn, buffer_[i]);
                mx = std::max(mx, buffer_[i]);
            }
            return {mn, mx};
        }
        gray_.resize(n);
        if (info_.bits_allocated == 16)
            convert<std::uint16_t>(n, lo, hi);
        else
            convert<std::uint8_t>(n, lo, hi);
        return {lo, hi};
    }

    /// buffer_ (samples of type S, local byte order as DCMTK returns them) -> gray_, with the range.
    template <class S>
    void convert(std::size_t n, std::int32_t& lo, std::int32_t& hi) {
        const int bits = info_.bits_stored;
        const std::uint32_t mask = (std::uint32_t(1) << bits) - 1;
        const bool sign = info_.is_signed;
        const std::int32_t wrap = std::int32_t(1) << bits;
        auto sample = [&](std::size_t idx) -> std::int32_t {
            S w;
            std::memcpy(&w, buffer_.data() + sizeof(S) * idx, sizeof(S));
            const std::uint32_t raw = std::uint32_t(w) & mask;
            return sign && ((raw >> (bits - 1)) & 1u) ? static_cast<std::int32_t>(raw) - wrap
                                                       : static_cast<std::int32_t>(raw);
        };
        std::int32_t* g = gray_.data();
        if (info_.samples_per_pixel == 1) {
            for (std::size_t i = 0; i < n; ++i) {
                const std::int32_t v = sample(i);
                g[i] = v;
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
            return;
        }
        // Colour as PIL's convert("L"). Native data, and what DCMTK's decoders return, are laid out
        // as PlanarConfiguration says.
        const bool by_plane = planar_;
        for (std::size_t i = 0; i < n; ++i) {
            const std::int64_t r = by_plane ? sample(i) : sample(3 * i);
            const std::int64_t gg = by_plane ? sample(n + i) : sample(3 * i + 1);
            const std::int64_t b = by_plane ? sample(2 * n + i) : sample(3 * i + 2);
            const auto v = static_cast<std::int32_t>((r * 19595 + gg * 38470 + b * 7471 + 0x8000) >> 16);
            g[i] = v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }

    /// The values of stored values lo..hi after modality rescale and VOI, 0..255 (not clamped,
    /// not rounded, not inverted).
    std::vector<double> values_of(std::int32_t lo, std::int32_t hi) const {
        const std::size_t count = static_cast<std::size_t>(std::int64_t(hi) - lo + 1);
        std::vector<double> v(count), y(count);
        const bool colour = info_.samples_per_pixel == 3;
        const double slope = colour ? 1.0 : info_.rescale_slope, intercept = colour ? 0.0 : info_.rescale_intercept;
        for (std::size_t i = 0; i < count; ++i) {
            double x = static_cast<double>(lo + static_cast<std::int32_t>(i));
            if (slope != 1.0) x = x * slope;
            if (intercept != 0.0) x = x + intercept;
            v[i] = x;
        }
        if (options_.window == dicom_window::file && !colour && info_.has_voi_lut) {
            const double scale = 255.0 / static_cast<double>((std::uint32_t(1) << lut_bits_) - 1);
            const long n = static_cast<long>(lut_.size());
            for (std::size_t i = 0; i < count; ++i) {
                const long idx = std::clamp(static_cast<long>(std::floor(v[i])) - lut_first_, 0L, n - 1);
                y[i] = static_cast<double>(lut_[static_cast<std::size_t>(idx)]) * scale;
            }
            return y;
        }
        if (options_.window == dicom_window::file && !colour && info_.window_center) {
            const double c = *info_.window_center, w = *info_.window_width;
            const double below = c - 0.5 - (w - 1) / 2, above = c - 0.5 + (w - 1) / 2;
            for (std::size_t i = 0; i < count; ++i) {
                if (v[i] <= below)
                    y[i] = 0;
                else if (v[i] > above)
                    y[i] = 255;
                else
                    y[i] = ((v[i] - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
            }
            return y;
        }
        if (options_.window == dicom_window::file && info_.bits_allocated == 8 && !info_.is_signed && slope == 1.0 &&
            intercept == 0.0)
            return v;
        // Min-max over the frame: the rescale is monotone, so the extremes are those of lo and hi.
        const double mn = std::min(v.front(), v.back()), mx = std::max(v.front(), v.back());
        for (std::size_t i = 0; i < count; ++i) y[i] = mx > mn ? (v[i] - mn) * 255.0 / (mx - mn) : 0.0;
        return y;
    }

    std::filesystem::path path_;
    dicom_options options_;
    std::unique_ptr<DcmFileFormat> file_;
    DcmPixelData* pixels_ = nullptr;
    E_TransferSyntax xfer_ = EXS_Unknown;
    DcmFileCache cache_;
    dicom_info info_;
    bool planar_ = false;
    std::size_t frame_bytes_ = 0;
    std::vector<std::uint8_t> buffer_;
    std::vector<std::int32_t> gray_;
    std::size_t next_frame_ = 0;
    Uint32 next_fragment_ = 0;
    std::vector<std::uint8_t> stream_;  // a frame's fragments one after another (several per frame)
    std::optional<std::vector<unsigned long>> frame_starts_;  // frame_fragments' layout, once found
    bool last_builtin_ = false;
    bool direct8_ = false;  // the last frame's values are buffer_'s bytes (gray_ unused)
    std::string builtin_refusal_;  // why the builtin decoder refused the frame being read
    std::vector<std::uint16_t> lut_;
    long lut_first_ = 0;
    int lut_bits_ = 8;
};

namespace detail {

/// The reader of the DICOM file this thread last read a frame of, kept for its next frame: a run read
/// frame by frame ("run.dcm#0", "#1", ...) is opened once (opening a 64-frame JPEG-lossless run of
/// 512 x 512 took 0.7 ms, a third of a frame's decoding). Opened anew for another path or options,
/// or when the file's size or modification time changed since.
inline dicom_reader& kept_dicom_reader(const std::filesystem::path& file, const dicom_options& options) {
    struct kept {
        std::filesystem::path file;
        dicom_options options;
        std::uintmax_t size = 0;
        std::filesystem::file_time_type time;
        std::unique_ptr<dicom_reader> reader;
    };
    thread_local kept k;
    std::error_code e1, e2;
    const std::uintmax_t size = std::filesystem::file_size(file, e1);
    const auto time = std::filesystem::last_write_time(file, e2);
    if (!k.reader || e1 || e2 || k.file != file || !(k.options == options) || k.size != size || k.time != time) {
        k.reader.reset();  // a failed open below leaves nothing kept
        k.reader = std::make_unique<dicom_reader>(file, options);
        k.file = file;
        k.options = options;
        k.size = size;
        k.time = time;
    }
    return *k.reader;
}

}  // namespace detail

/// Reads one frame of a DICOM file as 8-bit gray: `path` may address a frame ("run.dcm#17");
/// otherwise frame 0. The file stays open on this thread for its next frame (see kept_dicom_reader).
inline xt::xtensor<std::uint8_t, 2> read_dicom_gray8(const std::filesystem::path& path, dicom_options options = {}) {
    const frame_ref ref = split_frame_ref(path);
    return detail::kept_dicom_reader(ref.file, options).frame_gray8(ref.frame.value_or(0));
}

/// As read_dicom_gray8, as float 0..255 before rounding.
inline xt::xtensor<float, 2> read_dicom_float(const std::filesystem::path& path, dicom_options options = {}) {
    const frame_ref ref = split_frame_ref(path);
    return detail::kept_dicom_reader(ref.file, options).frame_float(ref.frame.value_or(0));
}

#endif  // VASOMIM_DICOM_READER

}  // namespace vasomim::io
