#pragma once
// NumPy .npy files through xtensor's reader/writer (xtensor/xnpy.hpp), with the library's error
// types: io_error when a file is missing or cannot be written, format_error when its content is
// corrupt or of another dtype. Writes are atomic (temporary file + rename).

#include <complex>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <type_traits>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/detail/atomic_file.hpp"

namespace vasomim::io {

namespace detail {

/// Parses the bytes of an .npy file; format_error naming `path` on a bad header or short data.
inline xt::detail::npy_file parse_npy(const std::string& bytes, const std::filesystem::path& path,
                                      const char* what) {
    std::istringstream in(bytes);
    try {
        auto file = xt::detail::load_npy_file(in);
        if (!in)
            throw format_error(std::string(what) + ": '" + path.string() + "' is truncated: the header announces " +
                               std::to_string(file.n_bytes()) + " data bytes, the file holds fewer");
        return file;
    } catch (const format_error&) {
        throw;
    } catch (const std::exception& e) {
        throw format_error(std::string(what) + ": '" + path.string() + "' is not a valid .npy file (" + e.what() + ")");
    }
}

/// Copies the elements of `file` (dtype `From`) into a row-major xarray<To>.
template <class To, class From>
xt::xarray<To> convert_npy(xt::detail::npy_file& file) {
    auto adapted = std::move(file).template cast<From>(true);
    if constexpr (std::is_same_v<To, From>) {
        return xt::xarray<To>(adapted);
    } else {
        return xt::xarray<To>(xt::cast<To>(adapted));
    }
}

}  // namespace detail

/// Reads an .npy file whose dtype is exactly T (float32 for float, uint8 for std::uint8_t, ...),
/// C or Fortran order, little-endian. Throws io_error (missing/unreadable file) or format_error
/// (corrupt header, truncated data, other dtype), each naming the path.
template <class T>
xt::xarray<T> read_npy(const std::filesystem::path& path) {
    const std::string bytes = io::detail::read_file_bytes(path, "read_npy");
    auto file = detail::parse_npy(bytes, path, "read_npy");
    const std::string want = xt::detail::build_typestring<T>();
    if (file.m_typestring != want)
        throw format_error("read_npy: '" + path.string() + "' holds dtype '" + file.m_typestring +
                           "' but '" + want + "' was requested");
    return detail::convert_npy<T, T>(file);
}

/// Reads an .npy file of any real numeric or bool dtype and converts its values to T
/// (static_cast semantics). Throws as read_npy for missing or corrupt files and for complex,
/// big-endian or object dtypes.
template <class T>
xt::xarray<T> read_npy_as(const std::filesystem::path& path) {
    const std::string bytes = io::detail::read_file_bytes(path, "read_npy");
    auto file = detail::parse_npy(bytes, path, "read_npy");
    const std::string& t = file.m_typestring;
    using xt::detail::build_typestring;
    if (t == build_typestring<float>()) return detail::convert_npy<T, float>(file);
    if (t == build_typestring<double>()) return detail::convert_npy<T, double>(file);
    if (t == build_typestring<std::uint8_t>()) return detail::convert_npy<T, std::uint8_t>(file);
    if (t == build_typestring<std::int8_t>()) return detail::convert_npy<T, std::int8_t>(file);
    if (t == build_typestring<std::uint16_t>()) return detail::convert_npy<T, std::uint16_t>(file);
    if (t == build_typestring<std::int16_t>()) return detail::convert_npy<T, std::int16_t>(file);
    if (t == build_typestring<std::uint32_t>()) return detail::convert_npy<T, std::uint32_t>(file);
    if (t == build_typestring<std::int32_t>()) return detail::convert_npy<T, std::int32_t>(file);
    if (t == build_typestring<std::uint64_t>()) return detail::convert_npy<T, std::uint64_t>(file);
    if (t == build_typestring<std::int64_t>()) return detail::convert_npy<T, std::int64_t>(file);
    if (t == build_typestring<bool>()) return detail::convert_npy<T, bool>(file);
    throw format_error("read_npy: '" + path.string() + "' holds dtype '" + t +
                       "', which cannot be converted (expected a little-endian real or bool dtype)");
}

/// Writes an xtensor expression as .npy (dtype from its value type). The file appears complete or
/// not at all: the data goes to a temporary file in the same folder, then is renamed.
/// Throws io_error naming the path when the folder is missing or not writable.
template <class E>
void write_npy(const std::filesystem::path& path, const E& expr) {
    std::string bytes;
    try {
        bytes = xt::dump_npy(expr);
    } catch (const std::exception& e) {
        throw io_error("write_npy: cannot encode the array for '" + path.string() + "' (" + e.what() + ")");
    }
    io::detail::write_atomically(path, "write_npy", [&](std::ostream& out) {
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    });
}

}  // namespace vasomim::io
