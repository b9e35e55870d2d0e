// libFuzzer target: the pre-training checkpoint loader (train/checkpoint.hpp: load_checkpoint, its
// metadata, the optimiser's sibling file, every tensor against the table) on a tiny model. The
// input's first byte picks the file it becomes: even, the checkpoint (beside an intact optimiser
// file); odd, the optimiser file (beside an intact checkpoint). With VASOMIM_FUZZ_WRITE_SEEDS=DIR
// set, the intact pair is also written to DIR (how tests/data/fuzz/checkpoint was made).
#include <cstdlib>

#include "fuzz_common.hpp"
#include "vasomim/backend/cpu.hpp"
#include "vasomim/optim/adamw.hpp"
#include "vasomim/train/checkpoint.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

struct tiny_network {
    nn::parameter_table t = [] {
        nn::parameter_table p;
        p.add("blocks.0.w", shape{3, 2});
        p.add("blocks.0.b", shape{3}, true, false);
        p.add("pos_embed", shape{1, 2, 2}, false);
        return p;
    }();
    tensor<float, B> p{shape{t.size()}};
    const nn::parameter_table& table() const { return t; }
    tensor<float, B>& params() { return p; }
    const tensor<float, B>& params() const { return p; }
};

struct tiny_model {
    tiny_network net;
    optim::adamw<B> opt{net.t};
    tiny_network& network() { return net; }
    const tiny_network& network() const { return net; }
    optim::adamw<B>& optimiser() { return opt; }
    const optim::adamw<B>& optimiser() const { return opt; }
};

const char* const signature = "fuzz-tiny";

struct intact_files {
    std::string checkpoint, optimiser;
};

const intact_files& intact() {
    static const intact_files files = [] {
        tiny_model m;
        auto host = m.net.p.to_host();
        for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * float(i);
        m.net.p = tensor<float, B>::from_host(host, m.net.p.shape());
        const auto dir = vasomim_fuzz::scratch_dir() / "intact";
        const auto path = train::save_checkpoint(dir, m, {7, 11, signature});
        auto slurp = [](const std::filesystem::path& p) {
            std::ifstream in(p, std::ios::binary);
            return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        };
        intact_files f{slurp(path), slurp(train::optimiser_path(path))};
        if (const char* out = std::getenv("VASOMIM_FUZZ_WRITE_SEEDS")) {
            vasomim_fuzz::put(std::filesystem::path(out) / "checkpoint.seed", std::string(1, '\0') + f.checkpoint);
            vasomim_fuzz::put(std::filesystem::path(out) / "optimiser.seed", std::string(1, '\1') + f.optimiser);
        }
        return f;
    }();
    return files;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)intact();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto& good = intact();
    const auto input = vasomim_fuzz::view(data + 1, size - 1);
    const bool optimiser = data[0] & 1;
    const auto path = train::checkpoint_path(vasomim_fuzz::scratch_dir() / "run", 7);
    vasomim_fuzz::put(path, optimiser ? std::string_view(good.checkpoint) : input);
    vasomim_fuzz::put(train::optimiser_path(path), optimiser ? input : std::string_view(good.optimiser));
    tiny_model m;
    try {
        (void)train::load_checkpoint(path, m, signature);
    } catch (const vasomim::error&) {
    }
    return 0;
}
