// vasomim-vesselness: Frangi / Sato / Meijering responses or VasoMIM pseudo-labels for a batch of
// images (PNG, JPEG, BMP, NPY files, or folders of them), e.g. the <name>_frangi/ mask folder of
// an XA-170K style dataset in one call:
//   vasomim-vesselness --pseudo-label data/cadica            (writes data/cadica_frangi/<stem>.png)
//   vasomim-vesselness --filter sato --sigmas 1,2,3 -o out a.png b.npy
//   vasomim-vesselness --pseudo-label --fov -o labels images/   (field-of-view-aware variant)
//   vasomim-vesselness --pseudo-label --fov --expert masks -o labels images/training_*.png
//                                  (Dice, sensitivity, precision against expert masks <stem>_gt.png)
// Existing outputs are skipped unless --overwrite; unreadable or bad files are reported at the
// end without stopping the batch, and the exit status is 1 if any failed.
#include <malloc.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/io/dicom.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/png_encode.hpp"
#include "vasomim/metrics/segmentation_metrics.hpp"
#include "vasomim/vessel/fov_pseudo_label.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/meijering.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vasomim/vessel/sato.hpp"

namespace fs = std::filesystem;
using namespace vasomim;
using B = vasomim::default_backend;

namespace {

struct settings {
    std::string filter = "frangi";
    std::vector<double> sigmas;
    std::optional<double> alpha, beta, gamma;
    bool white_ridges = false;
    vessel::boundary_mode mode = vessel::boundary_mode::reflect;
    double cval = 0;
    bool fast = false;
    bool pseudo_label = false;
    index_t border = 20;
    double percentile = 92;
    bool fov = false;  // the field-of-view-aware variant (fov_pseudo_label.hpp)
    vessel::fov_pseudo_label_options fov_options;
    std::string format;  // npy | png
};

/// What one file gave: the pseudo-label (for --expert) and the variant's status.
struct outcome {
    std::vector<std::uint8_t> mask;
    std::int64_t rows = 0, cols = 0;
    vessel::fov_status status = vessel::fov_status::ok;
};

/// The image as a backend tensor: uint8 for image files and uint8 .npy (filtered in double, as
/// scikit-image does), float for other .npy dtypes.
struct loaded {
    std::optional<tensor<std::uint8_t, B>> u8;
    std::optional<tensor<float, B>> f32;
};

loaded load(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    loaded l;
    if (e == ".npy") {
        try {
            const auto a = io::read_npy<std::uint8_t>(p);
            if (a.dimension() != 2) throw shape_error("'" + p.string() + "' is not a 2-D image");
            l.u8 = tensor<std::uint8_t, B>::from_host(std::vector<std::uint8_t>(a.begin(), a.end()),
                                                      shape{index_t(a.shape(0)), index_t(a.shape(1))});
            return l;
        } catch (const format_error& err) {
            if (std::string(err.what()).find("dtype") == std::string::npos) throw;
        }
        const auto a = io::read_image_any(p);
        l.f32 = tensor<float, B>::from_host(std::vector<float>(a.begin(), a.end()),
                                            shape{index_t(a.shape(0)), index_t(a.shape(1))});
        return l;
    }
    const auto g = io::read_gray8(p);
    l.u8 = tensor<std::uint8_t, B>::from_host(std::span<const std::uint8_t>(g.data(), g.size()),
                                              shape{index_t(g.shape(0)), index_t(g.shape(1))});
    return l;
}

void fill_ridge(vessel::ridge_options& r, const settings& s, std::vector<double> default_sigmas) {
    r.sigmas = s.sigmas.empty() ? default_sigmas : s.sigmas;
    r.black_ridges = !s.white_ridges;
    r.mode = s.mode;
    r.cval = s.cval;
    r.precision = s.fast ? vessel::kernel_precision::fast : vessel::kernel_precision::exact;
}

template <class T>
std::vector<float> response(const tensor<T, B>& img, const settings& s) {
    const std::vector<double> d{1, 3, 5, 7, 9};
    auto to_float = [](const auto& t) {
        const auto h = t.to_host();
        return std::vector<float>(h.begin(), h.end());
    };
    if (s.filter == "sato") {
        vessel::sato_options o;
        fill_ridge(o, s, d);
        return to_float(vessel::sato(img, o));
    }
    if (s.filter == "meijering") {
        vessel::meijering_options o;
        fill_ridge(o, s, d);
        o.alpha = s.alpha;
        return to_float(vessel::meijering(img, o));
    }
    vessel::frangi_options o;
    fill_ridge(o, s, d);
    if (s.alpha) o.alpha = *s.alpha;
    if (s.beta) o.beta = *s.beta;
    o.gamma = s.gamma;
    return to_float(vessel::frangi(img, o));
}

template <class T>
std::vector<std::uint8_t> pseudo(const tensor<T, B>& img, const settings& s, vessel::fov_status& status) {
    vessel::pseudo_label_options o;
    o.sigmas = s.sigmas.empty() ? std::vector<double>{1, 2, 3, 4} : s.sigmas;
    o.black_ridges = !s.white_ridges;
    o.mode = s.mode;
    o.cval = s.cval;
    o.precision = s.fast ? vessel::kernel_precision::fast : vessel::kernel_precision::exact;
    o.border = s.border;
    o.percentile = s.percentile;
    if (s.fov) {
        auto f = s.fov_options;
        f.released = o;
        auto r = vessel::fov_pseudo_label(img, f);
        status = r.status;
        return r.mask.to_host();
    }
    return vessel::pseudo_label(img, o).to_host();
}

outcome process(const fs::path& in, const fs::path& out, const settings& s) {
    const loaded l = load(in);
    outcome oc;
    const index_t rows = l.u8 ? l.u8->dim(0) : l.f32->dim(0);
    const index_t cols = l.u8 ? l.u8->dim(1) : l.f32->dim(1);
    const std::vector<std::size_t> sh{std::size_t(rows), std::size_t(cols)};
    if (s.pseudo_label) {
        auto mask = l.u8 ? pseudo(*l.u8, s, oc.status) : pseudo(*l.f32, s, oc.status);
        if (s.format == "npy") io::write_npy(out, xt::xtensor<std::uint8_t, 2>(xt::adapt(mask, sh)));
        else io::write_png_gray8(out, mask.data(), sh[0], sh[1]);  // 0/255 masks: ISA-L level 1, no filters
        oc.mask = std::move(mask);
        oc.rows = rows;
        oc.cols = cols;
        return oc;
    }
    const auto r = l.u8 ? response(*l.u8, s) : response(*l.f32, s);
    if (s.format == "npy") {
        io::write_npy(out, xt::xtensor<float, 2>(xt::adapt(r, sh)));
        return oc;
    }
    // 8-bit preview: linear scaling of [0, max] to [0, 255].
    float mx = 0;
    for (float v : r) mx = std::max(mx, v);
    xt::xtensor<std::uint8_t, 2> img = xt::xtensor<std::uint8_t, 2>::from_shape(sh);
    for (std::size_t i = 0; i < r.size(); ++i)
        img.data()[i] = mx > 0 ? static_cast<std::uint8_t>(std::lround(std::clamp(r[i] / mx, 0.0f, 1.0f) * 255.0f)) : 0;
    io::write_png(out, img);
    return oc;
}

/// Dice, clDice, sensitivity and precision (metrics/segmentation_metrics.hpp) of a 0/255 mask
/// against an expert mask (binarised at >= 128).
metrics::segmentation_scores score_against(const outcome& oc, const fs::path& expert) {
    const auto g = io::read_gray8(expert);
    if (std::int64_t(g.shape(0)) != oc.rows || std::int64_t(g.shape(1)) != oc.cols)
        throw shape_error("expert mask '" + expert.string() + "' is not " + std::to_string(oc.rows) + " x " +
                          std::to_string(oc.cols));
    std::vector<std::uint8_t> ref(g.size());
    for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = g.data()[i] >= 128;
    return metrics::evaluate(oc.mask.data(), ref.data(), std::size_t(oc.rows), std::size_t(oc.cols));
}

/// The expert mask of an input: <dir>/<stem>_gt.png, else <dir>/<stem>.png.
fs::path expert_for(const fs::path& dir, const fs::path& in) {
    const fs::path gt = dir / (io::input_stem(in) + "_gt.png");
    return fs::exists(gt) ? gt : dir / (io::input_stem(in) + ".png");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-vesselness: ridge-filter responses (Frangi, Sato, Meijering; scikit-image >= 0.20 "
                 "semantics) or VasoMIM pseudo-labels for images and folders of images"};
    settings s;
    std::vector<std::string> inputs;
    std::string outdir, mode = "reflect", expert;
    bool no_fov_mask = false, percentile_all = false;
    int threads = 0;
    bool overwrite = false;
    app.add_option("--filter", s.filter, "ridge filter")->check(CLI::IsMember({"frangi", "sato", "meijering"}))->capture_default_str();
    app.add_option("--sigmas", s.sigmas, "scales, e.g. 1,3,5,7,9 (default: 1,3,5,7,9; 1,2,3,4 with --pseudo-label)")->delimiter(',');
    app.add_option("--alpha", s.alpha, "frangi: plate weight (no effect in 2-D); meijering: eigenvalue mix (default 1/3)");
    app.add_option("--beta", s.beta, "frangi: blobness weight (default 0.5)");
    app.add_option("--gamma", s.gamma, "frangi: structureness weight (default: max(s)/2 at the first sigma)");
    app.add_flag("--white-ridges", s.white_ridges, "detect bright ridges (default: dark vessels on a bright background)");
    app.add_option("--mode", mode, "boundary mode")->check(CLI::IsMember({"reflect", "constant", "nearest", "mirror", "wrap"}))->capture_default_str();
    app.add_option("--cval", s.cval, "outside value for --mode constant")->capture_default_str();
    app.add_flag("--fast", s.fast, "drop kernel taps below float precision (not held to the scikit-image parity bar)");
    auto* pl = app.add_flag("--pseudo-label", s.pseudo_label, "write the released VasoMIM pseudo-label (sato 1..4, border, percentile, region growing)");
    app.add_option("--border", s.border, "pseudo-label: pixels zeroed at each side")->needs(pl)->capture_default_str();
    app.add_option("--percentile", s.percentile, "pseudo-label: threshold percentile")->needs(pl)->check(CLI::Range(0.0, 100.0))->capture_default_str();
    auto* fov = app.add_flag("--fov", s.fov,
                             "pseudo-label: the field-of-view-aware variant for real angiograms (dark collimator areas and "
                             "their edges removed before the percentile, several components kept); falls back to the "
                             "released mask, with a note, where no exposed region or an empty mask is found")
                    ->needs(pl);
    app.add_flag("--no-fov-mask", no_fov_mask, "--fov: switch off the field-of-view mask (measure the other parts alone)")->needs(fov);
    app.add_flag("--percentile-all", percentile_all, "--fov: take the percentile over the whole image as released, not the field of view")->needs(fov);
    app.add_option("--seeds", s.fov_options.seeds, "--fov: components grown from the strongest maxima (released: 1)")->needs(fov)->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--min-component", s.fov_options.min_component, "--fov: also keep every component of at least this many pixels (0: off)")->needs(fov)->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--dark-level", s.fov_options.fov.dark_level, "--fov: pixel value at or below which a pixel is dark (unexposed)")->needs(fov)->capture_default_str();
    app.add_option("--fov-erosion", s.fov_options.fov.erosion, "--fov: pixels the field of view is eroded by (-1: 2 x the largest sigma)")->needs(fov)->capture_default_str();
    app.add_option("--expert", expert, "pseudo-label: folder of expert masks (<stem>_gt.png or <stem>.png): prints Dice, "
                   "clDice, sensitivity and precision per image and their means (CSV on stdout)")->needs(pl);
    app.add_option("--format", s.format, "output format (default: npy for responses, png for pseudo-labels)")->check(CLI::IsMember({"npy", "png"}));
    app.add_option("--threads", threads, "worker threads (default: all cores)")->check(CLI::PositiveNumber);
    app.add_flag("--overwrite", overwrite, "recompute outputs that already exist");
    app.add_option("-o,--output", outdir, "output folder (default with one input folder DIR: DIR_frangi)");
    std::string frames_spec = "all";
    app.add_option("--frames", frames_spec, "frames of multi-frame DICOM files: all, */K (every K-th), A-B, A-, or a list "
                   "(1,5,9); numbered from 0, written as <stem>_f017.png")->capture_default_str();
    app.add_option("inputs", inputs, "image files (png, jpg, bmp, npy, dcm; file.dcm#K: frame K) or folders of them")->required();
    CLI11_PARSE(app, argc, argv);

    try {
        s.mode = vessel::parse_boundary_mode(mode);
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    if (s.format.empty()) s.format = s.pseudo_label ? "png" : "npy";
    s.fov_options.field_of_view = !no_fov_mask;
    s.fov_options.percentile_in_fov = !percentile_all;
    if (!expert.empty() && !fs::is_directory(expert)) {
        std::fprintf(stderr, "error: --expert '%s' is not a folder\n", expert.c_str());
        return 2;
    }
    if (!expert.empty() && !overwrite) {
        std::fprintf(stderr, "note: --expert scores the files computed in this run; add --overwrite to score every input\n");
    }
    for (double sg : s.sigmas)
        if (!(sg > 0) || !std::isfinite(sg)) {
            std::fprintf(stderr, "error: every sigma must be > 0 (got %g)\n", sg);
            return 2;
        }
    if (s.border < 0) {
        std::fprintf(stderr, "error: --border must be >= 0\n");
        return 2;
    }

    io::frame_selection frames;
    try {
        frames = io::frame_selection::parse(frames_spec);
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "error: --frames: %s\n", e.what());
        return 2;
    }
    // Collect the files (folders: their image files, sorted; not recursive).
    std::vector<fs::path> files;
    std::vector<std::pair<std::string, std::string>> failures;
    for (const auto& in : inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            try {
                const auto found = io::list_image_files(in);
                files.insert(files.end(), found.begin(), found.end());
            } catch (const vasomim::error& e) {
                failures.emplace_back(in, e.what());
            }
        } else if (fs::exists(in, ec) || io::split_frame_ref(in).frame) {
            files.emplace_back(in);
        } else {
            failures.emplace_back(in, "does not exist");
        }
    }
    if (outdir.empty()) {
        if (inputs.size() == 1 && fs::is_directory(inputs[0])) {
            fs::path d = fs::path(inputs[0]);
            if (!d.has_filename()) d = d.parent_path();
            outdir = d.string() + "_frangi";
        } else {
            std::fprintf(stderr, "error: -o OUTDIR is required unless a single input folder is given\n");
            return 2;
        }
    }
    std::error_code ec;
    fs::create_directories(outdir, ec);
    if (ec) {
        std::fprintf(stderr, "error: cannot create output folder '%s': %s\n", outdir.c_str(), ec.message().c_str());
        return 2;
    }

    // Multi-frame DICOM files become one input per selected frame, file.dcm#K -> <stem>_f0KK.
    {
        std::vector<fs::path> expanded;
        for (const auto& f : files) {
            try {
                const auto inputs = io::expand_frames(f, frames);
                expanded.insert(expanded.end(), inputs.begin(), inputs.end());
            } catch (const std::exception& e) {
                failures.emplace_back(f.string(), e.what());
            }
        }
        files.swap(expanded);
    }
    // Work list: skip existing outputs, refuse two inputs with the same stem.
    std::vector<std::pair<fs::path, fs::path>> work;
    std::set<std::string> stems;
    std::size_t skipped = 0;
    for (const auto& f : files) {
        const std::string stem = io::input_stem(f);
        const fs::path out = fs::path(outdir) / (stem + "." + s.format);
        if (!stems.insert(out.string()).second) {
            failures.emplace_back(f.string(), "another input already writes " + out.string());
            continue;
        }
        if (!overwrite && fs::exists(out)) {
            ++skipped;
            continue;
        }
        work.emplace_back(f, out);
    }
    // The listing and the name check are done with: over a large archive only the work list stays.
    std::vector<fs::path>().swap(files);
    std::set<std::string>().swap(stems);

    // Each image allocates and frees the same few 256 KB buffers (decoded pixels, label, PNG): by
    // default glibc serves those by mmap and gives them back on free, so every image faults its
    // pages in again (about 200 faults per 512 x 512 image; 64 images on one thread took 0.490 s
    // that way, 0.478 s without). Keep freed memory in the heap for the next image instead.
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    const int nthreads = threads > 0 ? threads : omp_get_max_threads();
    omp_set_num_threads(nthreads);
    omp_set_max_active_levels(1);
    // Many images: one image per thread (no nested parallelism). Few: parallel inside each image.
    const bool across_images = static_cast<int>(work.size()) >= nthreads && nthreads > 1;
    const bool tty = isatty(fileno(stderr));
    std::atomic<std::size_t> done{0}, written{0};
    std::vector<std::pair<std::string, std::string>> fallbacks;  // file, why (--fov)
    std::vector<std::optional<metrics::segmentation_scores>> scores(work.size());
    std::mutex mu;
    const auto t0 = std::chrono::steady_clock::now();
    auto report = [&](bool final) {
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const std::size_t d = done.load();
        if (tty || final)
            std::fprintf(stderr, "%s[%zu/%zu] %.1f images/s%s", tty ? "\r" : "", d, work.size(),
                         sec > 0 ? double(d) / sec : 0.0, final ? "\n" : "");
    };
    auto run_one = [&](std::size_t i) {
        try {
            const outcome oc = process(work[i].first, work[i].second, s);
            ++written;
            if (oc.status != vessel::fov_status::ok) {
                std::lock_guard<std::mutex> lock(mu);
                fallbacks.emplace_back(work[i].first.string(), vessel::to_string(oc.status));
            }
            if (!expert.empty()) scores[i] = score_against(oc, expert_for(expert, work[i].first));
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(mu);
            failures.emplace_back(work[i].first.string(), e.what());
        }
        const std::size_t d = ++done;
        if (tty && (d % 16 == 0 || d == work.size())) {
            std::lock_guard<std::mutex> lock(mu);
            report(false);
        }
    };
    const auto n = static_cast<std::int64_t>(work.size());
    if (across_images) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
        for (std::int64_t i = 0; i < n; ++i) run_one(static_cast<std::size_t>(i));
    } else {
        for (std::int64_t i = 0; i < n; ++i) run_one(static_cast<std::size_t>(i));
    }
    report(true);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%zu written, %zu skipped (already present), %zu failed, %.3f s, output in %s\n",
                 written.load(), skipped, failures.size(), sec, outdir.c_str());
    for (const auto& [path, why] : failures) std::fprintf(stderr, "  failed: %s: %s\n", path.c_str(), why.c_str());
    if (s.fov) {
        std::sort(fallbacks.begin(), fallbacks.end());
        std::fprintf(stderr, "--fov: %zu of %zu fell back to the released pseudo-label\n", fallbacks.size(), written.load());
        for (const auto& [path, why] : fallbacks)
            std::fprintf(stderr, "  fallback: %s: %s; the released pseudo-label was written\n", path.c_str(), why.c_str());
    }
    if (!expert.empty()) {
        std::vector<metrics::segmentation_scores> all;
        std::size_t low = 0;
        std::printf("file,dice,cldice,sensitivity,precision\n");
        for (std::size_t i = 0; i < work.size(); ++i) {
            if (!scores[i]) continue;
            const auto& c = *scores[i];
            std::printf("%s,%.4f,%.4f,%.4f,%.4f\n", io::input_stem(work[i].first).c_str(), c.dice, c.cldice, c.sensitivity, c.precision);
            all.push_back(c);
            low += c.dice < 0.1;
        }
        if (!all.empty()) {
            const auto m = metrics::summarize(all);
            std::printf("mean (%zu images),%.4f,%.4f,%.4f,%.4f\nDice < 0.1: %zu of %zu (%.1f%%)\n", all.size(), m.mean.dice,
                        m.mean.cldice, m.mean.sensitivity, m.mean.precision, low, all.size(),
                        100.0 * double(low) / double(all.size()));
        }
    }
    return failures.empty() ? 0 : 1;
}
