#pragma once
// The exception hierarchy. Every error the library raises derives from vasomim::error, and its
// message names the offending file, shape or value so that a batch job can report and move on.

#include <stdexcept>
#include <string>

namespace vasomim {

/// Base of every exception thrown by vasomim.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Tensor shapes or sizes that do not fit together (e.g. a patch size not dividing the image).
class shape_error : public error {
public:
    using error::error;
};

/// An argument value outside its domain (sigma <= 0, mask ratio outside (0, 1), NaN pixels, ...).
class value_error : public error {
public:
    using error::error;
};

/// A file that cannot be opened, read or written. The message names the path.
class io_error : public error {
public:
    using error::error;
};

/// A file that was read but whose content is malformed (corrupt PNG, bad safetensors header, ...).
class format_error : public io_error {
public:
    using io_error::io_error;
};

/// A configuration that cannot run (checkpoint from another model, unknown option value, ...).
class config_error : public error {
public:
    using error::error;
};

/// A numerical failure at run time (non-finite loss, singular input).
class numeric_error : public error {
public:
    using error::error;
};

/// A failure reported by a backend runtime (CUDA, cuBLAS, allocation).
class backend_error : public error {
public:
    using error::error;
};

namespace detail {
/// Throws E with `what` unless `condition` holds; keeps argument checks to one line each.
template <class E = value_error>
inline void require(bool condition, const std::string& what) {
    if (!condition) throw E(what);
}
}  // namespace detail

}  // namespace vasomim
