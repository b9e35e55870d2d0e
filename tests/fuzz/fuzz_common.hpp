#pragma once
// Shared by the libFuzzer targets of tests/fuzz (built and run by tools/fuzz.sh): readers that take
// a path get the input through a scratch file of this process. Only vasomim's own errors (each
// naming the file and the reason) are an accepted outcome; anything else escaping a reader, a
// crash, a sanitizer report, a hang or an allocation beyond -rss_limit_mb is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace vasomim_fuzz {

/// A folder of this process under the temporary directory, made on first use.
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("vasomim_fuzz_" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(scratch_dir(), ignored);
        });
        return d;
    }();
    return dir;
}

/// Writes `bytes` to `path` (replacing it) and returns the path.
inline std::filesystem::path put(const std::filesystem::path& path, std::string_view bytes) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

inline std::string_view view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace vasomim_fuzz
