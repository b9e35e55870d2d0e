// libFuzzer target: the folder data set's file probing (data/folder_dataset.hpp): the input is cut
// into an image and its mask, laid out as images/ + masks/ under one of the probed names
// (.png, .jpg, .bmp, .npy, ...), scanned and loaded as the loader does.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_common.hpp"
#include "vasomim/data/folder_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace fs = std::filesystem;
    static const char* const names[] = {"a.png", "a.jpg", "a.bmp", "a.npy", "a.tif", "A.PNG"};
    FuzzedDataProvider in(data, size);
    const char* name = names[in.ConsumeIntegralInRange<std::size_t>(0, std::size(names) - 1)];
    const auto image = in.ConsumeRandomLengthString(size);
    const auto mask = in.ConsumeRemainingBytesAsString();
    const auto root = vasomim_fuzz::scratch_dir() / "data";
    fs::remove_all(root);
    fs::path mask_name = fs::path(name);
    if (mask_name.extension() == ".npy") mask_name.replace_extension(".png");
    vasomim_fuzz::put(root / "images" / name, image);
    vasomim_fuzz::put(root / "masks" / mask_name, mask);
    try {
        const vasomim::data::folder_dataset ds(root);
        for (std::size_t i = 0; i < ds.size(); ++i) {
            auto s = ds.load(i);
            if (s.image.shape() != s.mask.shape()) __builtin_trap();
        }
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
