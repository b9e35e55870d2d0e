#pragma once
// Atomic file replacement: write everything to a temporary file in the destination folder, then
// rename it over the destination. A crash or a full disk never leaves a half-written output, and a
// batch job that is restarted sees either the old file or the complete new one.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "vasomim/core/error.hpp"

namespace vasomim::io::detail {

/// A temporary name beside `target` that no other writer (thread or process) picks.
inline std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
    static std::atomic<unsigned long long> counter{0};
    const auto stamp = static_cast<unsigned long long>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    const auto tid = std::hash<std::thread::id>{}(std::this_thread::get_id());
    std::filesystem::path tmp = target;
    tmp += ".tmp." + std::to_string(stamp ^ tid) + "." + std::to_string(counter++);
    return tmp;
}

/// Calls `write(stream)` on a binary stream to a temporary file, then renames it to `target`.
/// Throws io_error naming `target` when the folder is missing, the disk is full or rename fails.
template <class Writer>
void write_atomically(const std::filesystem::path& target, std::string_view what, Writer&& write) {
    const auto tmp = temporary_sibling(target);
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            throw io_error(std::string(what) + ": cannot create '" + target.string() + "': " +
                           std::strerror(errno));
        try {
            write(out);
        } catch (...) {
            out.close();
            std::error_code ignored;
            std::filesystem::remove(tmp, ignored);
            throw;
        }
        out.flush();
        if (!out) {
            const int why = errno;  // of the write that failed, e.g. ENOSPC or EFBIG
            out.close();
            std::error_code ignored;
            std::filesystem::remove(tmp, ignored);
            throw io_error(std::string(what) + ": writing '" + target.string() + "' failed" +
                           (why ? std::string(": ") + std::strerror(why) : std::string()) +
                           "; the file there before, if any, is unchanged");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, target, ec);
    if (ec) {
        std::error_code ignored;
        std::filesystem::remove(tmp, ignored);
        throw io_error(std::string(what) + ": cannot move the finished file to '" + target.string() +
                       "': " + ec.message());
    }
}

/// The whole content of a file; io_error naming the path when it is missing or unreadable.
inline std::string read_file_bytes(const std::filesystem::path& path, std::string_view what) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw io_error(std::string(what) + ": '" + path.string() + "' does not exist");
    if (std::filesystem::is_directory(path, ec))
        throw io_error(std::string(what) + ": '" + path.string() + "' is a directory, not a file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw io_error(std::string(what) + ": cannot open '" + path.string() + "': " + std::strerror(errno));
    // One read of the size the file has now (a character-by-character copy took a noticeable
    // share of a batch of small images), then whatever it may have grown by.
    std::string bytes;
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > 0) {
        bytes.resize(static_cast<std::size_t>(size));
        in.read(bytes.data(), static_cast<std::streamsize>(size));
        bytes.resize(static_cast<std::size_t>(in.gcount()));
        in.clear(in.rdstate() & ~(std::ios::eofbit | std::ios::failbit));
    }
    bytes.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw io_error(std::string(what) + ": reading '" + path.string() + "' failed");
    return bytes;
}

}  // namespace vasomim::io::detail
