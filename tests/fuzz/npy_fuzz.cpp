// libFuzzer target: .npy files (io/npy.hpp over xtensor's parser), as read_image_any reads them.
#include "fuzz_common.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto path = vasomim_fuzz::scratch_dir() / "input.npy";
    vasomim_fuzz::put(path, vasomim_fuzz::view(data, size));
    try {
        (void)vasomim::io::read_npy_as<float>(path);
    } catch (const vasomim::error&) {
    }
    try {
        (void)vasomim::io::read_npy<std::uint8_t>(path);
    } catch (const vasomim::error&) {
    }
    try {
        (void)vasomim::io::read_image_any(path);
    } catch (const vasomim::error&) {
    }
    return 0;
}
