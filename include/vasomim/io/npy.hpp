#pragma once
// NumPy .npy files through xtensor's reader/writer (xtensor/xnpy.hpp), with the library's error
// types: io_error when a file is missing or cannot be written, format_error when its content is
// corrupt or of another dtype. Writes are atomic (temporary file + rename).

#include <algorithm>
#include <cctype>
#include <complex>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/detail/atomic_file.hpp"

namespace vasomim::io {

namespace detail {

/// Parses the bytes of an .npy file; format_error naming `path` on a bad header or short data.
/// The header is parsed here, strictly (xtensor's parser reads past empty strings on some damaged
/// headers, and allocates what the header claims before looking at the data): magic, version 1.0,
/// 2.0 or 3.0, a header that fits the file and ends with '\n', a dict of exactly 'descr' (a
/// typestring such as '<f4'), 'fortran_order' (True / False) and 'shape' (a tuple of integers) in
/// any order, and a data section at least as long as the shape says. Only then is anything allocated.
inline xt::detail::npy_file parse_npy(const std::string& bytes, const std::filesystem::path& path,
                                      const char* what) {
    auto bad = [&](const std::string& why) {
        return format_error(std::string(what) + ": '" + path.string() + "' is not a valid .npy file (" + why + ")");
    };
    auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])); };
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw bad("no \\x93NUMPY magic at the start");
    const std::uint32_t major = byte(6), minor = byte(7);
    std::size_t header_len = 0, start = 0;
    if (major == 1 && minor == 0) {
        header_len = byte(8) | byte(9) << 8;
        start = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (bytes.size() < 12) throw bad("the header length is cut off");
        header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
        start = 12;
    } else {
        throw bad("format version " + std::to_string(major) + "." + std::to_string(minor) + " (1.0, 2.0, 3.0 are read)");
    }
    if (header_len > bytes.size() - start)
        throw bad("the header claims " + std::to_string(header_len) + " bytes, past the end of the file");
    const std::string_view h(bytes.data() + start, header_len);
    if (h.empty() || h.back() != '\n') throw bad("the header does not end with a newline");

    std::size_t i = 0;
    auto skip = [&] {
        while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    };
    auto expect = [&](char c) {
        skip();
        if (i >= h.size() || h[i] != c)
            throw bad(std::string("header: expected '") + c + "' at header byte " + std::to_string(i));
        ++i;
    };
    auto quoted = [&] {
        skip();
        if (i >= h.size() || (h[i] != '\'' && h[i] != '"')) throw bad("header: expected a quoted string at header byte " + std::to_string(i));
        const char q = h[i++];
        const std::size_t end = h.find(q, i);
        if (end == std::string_view::npos) throw bad("header: unterminated string");
        std::string out(h.substr(i, end - i));
        i = end + 1;
        return out;
    };
    constexpr std::uint64_t max_extent = std::uint64_t(1) << 62;
    std::string descr;
    std::optional<bool> fortran;
    std::optional<std::vector<std::size_t>> shape;
    expect('{');
    for (;;) {
        skip();
        if (i < h.size() && h[i] == '}') break;
        const std::string key = quoted();
        expect(':');
        skip();
        if (key == "descr" && descr.empty()) {
            descr = quoted();
            const bool ok = descr.size() >= 3 && descr.size() <= 4 && std::string_view("<>|=").find(descr[0]) != std::string_view::npos &&
                            std::isalpha(static_cast<unsigned char>(descr[1])) &&
                            std::all_of(descr.begin() + 2, descr.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                            std::stoi(descr.substr(2)) >= 1 && std::stoi(descr.substr(2)) <= 16;
            if (!ok) throw bad("header: dtype '" + descr + "' is not a simple typestring such as '<f4'");
        } else if (key == "fortran_order" && !fortran) {
            if (h.substr(i, 4) == "True") fortran = true, i += 4;
            else if (h.substr(i, 5) == "False") fortran = false, i += 5;
            else throw bad("header: fortran_order is neither True nor False");
        } else if (key == "shape" && !shape) {
            shape.emplace();
            expect('(');
            for (;;) {
                skip();
                if (i < h.size() && h[i] == ')') break;
                std::uint64_t v = 0;
                const std::size_t first = i;
                while (i < h.size() && h[i] >= '0' && h[i] <= '9') {
                    v = v * 10 + std::uint64_t(h[i] - '0');
                    if (v > max_extent) throw bad("header: an extent of the shape is too large");
                    ++i;
                }
                if (i == first) throw bad("header: the shape is not a tuple of non-negative integers");
                shape->push_back(static_cast<std::size_t>(v));
                skip();
                if (i < h.size() && h[i] == ',') ++i;
                else if (i < h.size() && h[i] == ')') break;
                else throw bad("header: the shape is not a tuple of non-negative integers");
            }
            ++i;  // ')'
        } else {
            throw bad("header: unexpected or repeated key '" + key + "'");
        }
        skip();
        if (i < h.size() && h[i] == ',') ++i;
        else if (i < h.size() && h[i] == '}') break;
        else throw bad("header: expected ',' or '}' at header byte " + std::to_string(i));
    }
    ++i;  // '}'
    if (h.find_first_not_of(" \t\n", i) != std::string_view::npos) throw bad("header: text after the dict");
    if (descr.empty() || !fortran || !shape) throw bad("header: 'descr', 'fortran_order' and 'shape' are required");

    const std::uint64_t item = static_cast<std::uint64_t>(std::stoi(descr.substr(2)));
    const std::uint64_t available = bytes.size() - start - header_len;
    std::uint64_t needed = item;
    bool overflow = false;
    for (const auto x : *shape) {
        if (x != 0 && needed > std::numeric_limits<std::uint64_t>::max() / x) overflow = true;
        else needed *= x;
    }
    if (std::find(shape->begin(), shape->end(), std::size_t(0)) != shape->end()) needed = 0, overflow = false;
    if (overflow || needed > available)
        throw format_error(std::string(what) + ": '" + path.string() + "' is truncated: the header announces " +
                           (overflow ? std::string("more than 2^64") : std::to_string(needed)) + " data bytes, the file holds " +
                           std::to_string(available));
    xt::detail::npy_file file(*shape, *fortran, descr);
    if (needed) std::memcpy(file.ptr(), bytes.data() + start + header_len, static_cast<std::size_t>(needed));
    // A bool byte other than 0 or 1 is not a bool (undefined behaviour once read as one; found by
    // tests/fuzz/npy_fuzz.cpp): any non-zero byte is True, as numpy has it.
    if (descr[1] == 'b' && item == 1)
        for (std::size_t k = 0; k < needed; ++k) file.ptr()[k] = file.ptr()[k] != 0 ? 1 : 0;
    return file;
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
        // Evaluated first: xtensor's dump_npy of an unevaluated expression (e.g. view * 2) writes
        // a damaged shape such as (18446744073709551615, 18446744073709551615, 4, 5), which only its
        // own wrapping reader took back (issue 19's strict header parser refuses it).
        using value_type = typename std::decay_t<E>::value_type;
        const xt::xarray<value_type, xt::layout_type::row_major> concrete(expr);
        bytes = xt::dump_npy(concrete);
    } catch (const std::exception& e) {
        throw io_error("write_npy: cannot encode the array for '" + path.string() + "' (" + e.what() + ")");
    }
    io::detail::write_atomically(path, "write_npy", [&](std::ostream& out) {
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    });
}

}  // namespace vasomim::io
