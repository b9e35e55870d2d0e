// libFuzzer target: io::dicom_reader (DCMTK's parser and codecs underneath, the library's frame
// bookkeeping, rescale, windowing and colour reduction on top) on any bytes: open the object, then
// read up to four frames as 8-bit and as float. DCMTK itself comes from Debian's shared libraries
// (not instrumented); what is checked is that every file is read or refused with vasomim's own error
// naming it, never a crash, a hang or an allocation of what a header merely claims. Where the
// builtin lossless JPEG decoder (io/jpeg_lossless.hpp) reads a frame, DCMTK's decoder reading the same
// frame must agree: the same samples, or a refusal of its own.
#include "fuzz_common.hpp"
#include <optional>
#include <string_view>

#include "vasomim/io/dicom.hpp"

#if !VASOMIM_DICOM_READER
#error "dicom_fuzz needs DCMTK (VASOMIM_HAS_DICOM=1 and the DCMTK libraries)"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto path = vasomim_fuzz::scratch_dir() / "input.dcm";
    vasomim_fuzz::put(path, vasomim_fuzz::view(data, size));
    try {
        vasomim::io::dicom_reader r(path);
        const std::size_t n = r.frames();
        if (n == 0) __builtin_trap();  // an object without frames must have been refused
        for (std::size_t k = 0; k < n && k < 4; ++k) {
            const auto g = r.frame_gray8(k);
            const auto f = r.frame_float(k);
            if (g.size() == 0 || g.shape() != f.shape()) __builtin_trap();
            if (std::string_view(r.last_decoder()) == "builtin") {
                vasomim::io::dicom_reader d(path, {.lossless_jpeg = vasomim::io::dicom_lossless_jpeg::dcmtk});
                std::optional<xt::xtensor<float, 2>> other;
                try {
                    other = d.frame_float(k);
                } catch (const vasomim::error&) {
                }
                if (other && *other != f) __builtin_trap();
            }
        }
    } catch (const vasomim::error&) {
    }
    return 0;
}
