// libFuzzer target: the safetensors header and tensor table (io/safetensors.hpp, checksums
// included), then the state-dict matching of io/state_dict.hpp against a small parameter table
// (prefix and "module." stripping, strict and lenient).
#include "fuzz_common.hpp"
#include "vasomim/backend/cpu.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace vasomim;
    static const nn::parameter_table table = [] {
        nn::parameter_table t;
        t.add("w", shape{2, 2});
        t.add("b", shape{2}, true, false);
        t.add("s", shape{});
        return t;
    }();
    try {
        auto file = io::parse_safetensors(vasomim_fuzz::view(data, size), "fuzz.safetensors");
        for (const bool strict : {true, false}) {
            for (const char* prefix : {"", "seg_model."}) {
                try {
                    auto flat = tensor<float, backend::cpu>(shape{table.size()});
                    io::load_state_dict(io::select_state_dict(file, prefix, "fuzz"), "fuzz", table, flat,
                                        io::state_dict_options{prefix, strict, nullptr});
                } catch (const vasomim::error&) {
                }
            }
        }
    } catch (const vasomim::error&) {
    }
    return 0;
}
