#pragma once
// The exception hierarchy. Every error the library raises derives from vasomim::error, and its
// message names the offending file, shape or value so that a batch job can report and move on.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

/// A checkpoint whose tensors do not fit a model's parameter table. Carries every mismatch, not the
/// first only, so that a caller can explain it (e.g. "a 1-channel UNeXt-S file": `encoder1.weight`
/// is (8, 1, 3, 3) in the file and (8, 3, 3, 3) in the model). Shapes are plain dimension lists
/// (this header sits below shape.hpp).
class checkpoint_mismatch_error : public config_error {
public:
    struct mismatch {
        enum class kind { missing, shape, unexpected };
        std::string name;                     ///< as the model names it (prefix and "module." stripped)
        std::vector<std::int64_t> file_shape;   ///< empty if missing
        std::vector<std::int64_t> model_shape;  ///< empty if unexpected
        kind what = kind::shape;              ///< tells a missing tensor from a rank-0 one
    };

    /// `context` says what was loaded from where (e.g. "load_parameters: 'unext.safetensors'").
    checkpoint_mismatch_error(const std::string& context, std::vector<mismatch> list)
        : config_error(describe(context, list)), mismatches_(std::move(list)) {}

    const std::vector<mismatch>& mismatches() const noexcept { return mismatches_; }
    /// The mismatch of `name`, or nullptr.
    const mismatch* find(const std::string& name) const noexcept {
        for (const auto& m : mismatches_)
            if (m.name == name) return &m;
        return nullptr;
    }

    static std::string shape_string(const std::vector<std::int64_t>& dims) {
        std::string s = "(";
        for (std::size_t i = 0; i < dims.size(); ++i) {
            if (i) s += ", ";  // apart: GCC 12's -Wrestrict misfires on ", " + std::string at -O3
            s += std::to_string(dims[i]);
        }
        return s + ")";
    }

private:
    static std::string describe(const std::string& context, const std::vector<mismatch>& list) {
        std::string s = context + " does not fit the model: " + std::to_string(list.size()) +
                        (list.size() == 1 ? " mismatch" : " mismatches");
        for (const auto& m : list) {
            switch (m.what) {
            case mismatch::kind::missing:
                s += "\n  missing:    '" + m.name + "' " + shape_string(m.model_shape) + " is not in the file";
                break;
            case mismatch::kind::shape:
                s += "\n  shape:      '" + m.name + "' is " + shape_string(m.file_shape) + " in the file, the model expects " +
                     shape_string(m.model_shape);
                break;
            case mismatch::kind::unexpected:
                s += "\n  unexpected: '" + m.name + "' " + shape_string(m.file_shape) + " is not a parameter of the model";
                break;
            }
        }
        return s;
    }
    std::vector<mismatch> mismatches_;
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
