// libFuzzer target: io/jpeg_lossless.hpp on any bytes, from memory (the DICOM reader hands it a
// fragment). Every stream is decoded or refused with vasomim's format_error; a decoded one holds
// rows x columns samples below 2^precision, and where the precision allows 8-bit samples the 8-bit
// decoding gives the same samples as the 16-bit one.
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "vasomim/io/jpeg_lossless.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> stream(data, data + size);  // exactly sized: ASan sees any over-read
    std::vector<std::uint16_t> plane;
    vasomim::io::jpeg_lossless_info info;
    try {
        info = vasomim::io::decode_jpeg_lossless(stream.data(), stream.size(), plane);
    } catch (const vasomim::format_error&) {
        return 0;
    }
    const std::size_t n = std::size_t(info.rows) * std::size_t(info.columns);
    if (plane.size() != n) __builtin_trap();
    for (std::uint16_t v : plane)
        if (info.precision < 16 && (v >> info.precision) != 0) __builtin_trap();
    if (info.precision <= 8) {
        std::vector<std::uint8_t> eight(n);
        (void)vasomim::io::decode_jpeg_lossless(stream.data(), stream.size(), eight.data(), n);
        for (std::size_t i = 0; i < n; ++i)
            if (eight[i] != plane[i]) __builtin_trap();
    }
    return 0;
}
