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

// stb_image compiled into this target (not Debian's libstb.so), so that the sanitizers see inside it.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
