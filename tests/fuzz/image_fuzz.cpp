// libFuzzer target: io::read_gray8 on any bytes, i.e. the PNG decoder and, for what it declines
// (palette, 16-bit, interlaced PNGs, JPEG, BMP, TGA, GIF, PNM), Debian's stb_image.
#include "fuzz_common.hpp"
#include "vasomim/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto path = vasomim_fuzz::scratch_dir() / "input.img";
    vasomim_fuzz::put(path, vasomim_fuzz::view(data, size));
    try {
        auto img = vasomim::io::read_gray8(path);
        if (img.size() == 0) __builtin_trap();
    } catch (const vasomim::error&) {
    }
    return 0;
}

// stb_image compiled into this target (not Debian's libstb.so), so that AddressSanitizer sees its
// memory accesses. UndefinedBehaviorSanitizer is off inside stb only: Debian's stb 2.27 has benign
// undefined behaviour that is upstream's to fix and no reader of ours can avoid (a shift by 32 in the
// JPEG bit reader, memcpy of 0 bytes to a null pointer for a palette PNG; inputs kept in
// tests/data/fuzz/image and folder_dataset). Its real overrun (JPEG Huffman tables) is refused
// before stb by io::detail::check_jpeg_huffman_tables.
#pragma clang attribute push(__attribute__((no_sanitize("undefined"))), apply_to = function)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma clang attribute pop
