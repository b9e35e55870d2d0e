// libFuzzer target: the hand-written PNG decoder (io/png_decode.hpp, ISA-L inflate + row filters).
#include "fuzz_common.hpp"
#include "vasomim/io/png_decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto img = vasomim::io::detail::decode_png8(vasomim_fuzz::view(data, size), "fuzz.png");
        if (img && img->size() == 0) __builtin_trap();  // a decoded image is never empty
    } catch (const vasomim::error&) {
    }
    return 0;
}
