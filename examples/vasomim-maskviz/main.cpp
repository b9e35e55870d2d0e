// vasomim-maskviz: simulates E epochs of masking of one image (or a folder of images) under random
// and anatomy-guided masking, from a guidance map per image (a pseudo-label or vesselness map,
// PNG or NPY), and writes
//   <out>/<image>_maskviz.png  image + guidance | random | anatomy-guided: per-patch masking
//                              frequency over the image (jet colours, red = often masked);
//   <out>/vessel_share.csv     per epoch: beta_e and the share of vessel-containing patches among
//                              the masked patches, random versus anatomy-guided;
//   <out>/vessel_share.png     the same as a plot (blue random, red guided, dashed: share of
//                              vessel-containing patches among all patches),
// and prints the shares. The guidance is either read from files (--guidance) or computed on the fly
// (--pseudo-label: the released pipeline, vessel::pseudo_label, on each image at its own
// resolution, then resampled like a mask; --pseudo-label --fov: the field-of-view-aware variant,
// vessel::fov_pseudo_label, for real angiograms with dark collimator areas).
//
// Examples (coronary80):
//   vasomim-maskviz --image ../shared/data/coronary80/images --pattern 'training_*' --pseudo-label
//       --out maskviz
//   # expert masks as the guidance:
//   vasomim-maskviz --image ../shared/data/coronary80/images --pattern 'training_*'
//       --guidance ../shared/data/coronary80/masks --guidance-suffix _gt --label "expert masks" --out maskviz
#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "canvas.hpp"
#include "vasomim/io.hpp"
#include "vasomim/masking.hpp"
#include "vasomim/vasomim.hpp"
#include "vasomim/vessel/fov_pseudo_label.hpp"
#include "vasomim/vessel/pseudo_label.hpp"

namespace fs = std::filesystem;
using namespace vasomim;

namespace {

using image_t = xt::xtensor<float, 2>;

struct options {
    std::string image, guidance, vessel, pattern = "*", guidance_suffix, vessel_suffix, out = "maskviz";
    std::string label = "guidance maps", schedule = "linear";
    index_t size = 224, patch = 16, epochs = 800;
    double mask_ratio = 0.5, beta_0 = 0.0, beta_E = 0.5, vessel_threshold = 0.5;
    index_t min_vessel_pixels = 1;
    std::uint64_t seed = 0;
    bool heatmaps = true;
    bool pseudo_label = false;
    bool fov = false;
};

struct item {
    std::string stem;
    fs::path image_path, guidance_path;
    image_t image, guidance;          // size x size
    std::vector<std::uint8_t> vessel;  // per patch: contains a vessel pixel
};

std::vector<fs::path> list_images(const fs::path& p, const std::string& pattern) {
    if (fs::is_regular_file(p)) return io::expand_frames(p);  // every frame of a DICOM cine run
    if (io::split_frame_ref(p).frame) return {p};                // run.dcm#K
    if (!fs::is_directory(p)) throw io_error("vasomim-maskviz: '" + p.string() + "' is neither a file nor a folder");
    std::vector<fs::path> out;
    for (const auto& f : io::list_image_files(p))
        if (fnmatch(pattern.c_str(), f.filename().c_str(), 0) == 0) {
            const auto frames = io::expand_frames(f);
            out.insert(out.end(), frames.begin(), frames.end());
        }
    if (out.empty()) throw io_error("vasomim-maskviz: no image matching '" + pattern + "' in '" + p.string() + "'");
    return out;
}

/// The partner file of an image: `source` itself when it is a file, else <source>/<stem><suffix>.<ext>.
fs::path partner(const fs::path& source, const std::string& stem, const std::string& suffix) {
    if (fs::is_regular_file(source)) return source;
    for (const char* ext : {".png", ".npy", ".jpg", ".jpeg", ".bmp", ".tga"}) {
        const fs::path c = source / (stem + suffix + ext);
        if (fs::is_regular_file(c)) return c;
    }
    throw io_error("vasomim-maskviz: no file '" + (source / (stem + suffix)).string() + ".{png,npy,...}' for image '" +
                   stem + "'");
}

/// Bilinear resampling with half-pixel centres (torch's align_corners=False), for display.
image_t resize_bilinear(const image_t& in, index_t size) {
    const auto h = static_cast<index_t>(in.shape(0)), w = static_cast<index_t>(in.shape(1));
    image_t out = image_t::from_shape({static_cast<std::size_t>(size), static_cast<std::size_t>(size)});
    for (index_t y = 0; y < size; ++y)
        for (index_t x = 0; x < size; ++x) {
            const double sy = std::clamp((y + 0.5) * double(h) / double(size) - 0.5, 0.0, double(h - 1));
            const double sx = std::clamp((x + 0.5) * double(w) / double(size) - 0.5, 0.0, double(w - 1));
            const auto y0 = static_cast<index_t>(sy), x0 = static_cast<index_t>(sx);
            const index_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
            const double fy = sy - double(y0), fx = sx - double(x0);
            out(y, x) = static_cast<float>((1 - fy) * ((1 - fx) * in(y0, x0) + fx * in(y0, x1)) +
                                           fy * ((1 - fx) * in(y1, x0) + fx * in(y1, x1)));
        }
    return out;
}

/// Nearest-neighbour resampling (torch's mode='nearest'), as the data pipeline resizes masks.
image_t resize_nearest(const image_t& in, index_t size) {
    const auto h = static_cast<index_t>(in.shape(0)), w = static_cast<index_t>(in.shape(1));
    image_t out = image_t::from_shape({static_cast<std::size_t>(size), static_cast<std::size_t>(size)});
    for (index_t y = 0; y < size; ++y)
        for (index_t x = 0; x < size; ++x)
            out(y, x) = in(std::min(h - 1, y * h / size), std::min(w - 1, x * w / size));
    return out;
}

image_t resized(image_t a, index_t size, bool nearest) {
    if (size == 0) return a;
    return nearest ? resize_nearest(a, size) : resize_bilinear(a, size);
}

image_t load_resized(const fs::path& p, index_t size, bool nearest) { return resized(io::read_image_any(p), size, nearest); }

/// The released pseudo-label (0 / 255) of an 8-bit angiogram, computed at its own resolution, or
/// with `fov` the field-of-view-aware variant (a fallback to the released mask is said on stderr).
image_t pseudo_label_of(const fs::path& p, bool fov) {
    const auto img = io::read_gray8(p);
    const auto t = tensor<std::uint8_t, default_backend>::from_host(
        std::vector<std::uint8_t>(img.begin(), img.end()),
        shape{static_cast<index_t>(img.shape(0)), static_cast<index_t>(img.shape(1))});
    std::vector<std::uint8_t> mask;
    if (fov) {
        const auto r = vessel::fov_pseudo_label(t);
        if (r.fallback())
            std::fprintf(stderr, "note: %s: %s; the released pseudo-label is used\n", p.string().c_str(),
                         vessel::to_string(r.status));
        mask = r.mask.to_host();
    } else {
        mask = vessel::pseudo_label(t).to_host();
    }
    image_t out = image_t::from_shape({img.shape(0), img.shape(1)});
    std::copy(mask.begin(), mask.end(), out.begin());
    return out;
}

/// Per patch: 1 when at least `min_pixels` pixels reach `threshold` times the map's maximum.
std::vector<std::uint8_t> vessel_patches(const image_t& map, index_t patch, double threshold, index_t min_pixels) {
    const auto h = static_cast<index_t>(map.shape(0)), w = static_cast<index_t>(map.shape(1));
    const float peak = *std::max_element(map.begin(), map.end());
    const index_t gw = w / patch;
    std::vector<std::uint8_t> out(static_cast<std::size_t>((h / patch) * gw), 0);
    if (!(peak > 0)) return out;
    for (std::size_t k = 0; k < out.size(); ++k) {
        index_t count = 0;
        const index_t r0 = index_t(k) / gw * patch, c0 = index_t(k) % gw * patch;
        for (index_t r = r0; r < r0 + patch; ++r)
            for (index_t c = c0; c < c0 + patch; ++c) count += map(r, c) >= threshold * peak;
        out[k] = count >= min_pixels;
    }
    return out;
}

/// image | random heat map | guided heat map, with titles and a colour bar.
void write_heatmaps(const fs::path& path, const item& it, index_t patch, const std::vector<double>& random_freq,
                    const std::vector<double>& guided_freq) {
    const auto s = static_cast<long>(it.image.shape(0)), gw = static_cast<long>(it.image.shape(1) / std::size_t(patch));
    const long gap = 8, top = 24, bottom = 34;
    maskviz::canvas c(static_cast<std::size_t>(top + s + bottom), static_cast<std::size_t>(3 * s + 4 * gap));
    const float lo = *std::min_element(it.image.begin(), it.image.end()), hi = *std::max_element(it.image.begin(), it.image.end());
    const float gmax = *std::max_element(it.guidance.begin(), it.guidance.end());
    auto pix = [&](long y, long x) { return hi > lo ? 255.0 * (it.image(y, x) - lo) / (hi - lo) : 0.0; };
    for (long y = 0; y < s; ++y)
        for (long x = 0; x < s; ++x) {
            const double v = pix(y, x);
            const double a = gmax > 0 ? 0.6 * it.guidance(y, x) / gmax : 0.0;  // guidance tinted red
            c.set(gap + x, top + y, {static_cast<std::uint8_t>(std::lround((1 - a) * v + a * 255)),
                                     static_cast<std::uint8_t>(std::lround((1 - a) * v)),
                                     static_cast<std::uint8_t>(std::lround((1 - a) * v))});
            const long k = (y / patch) * gw + x / patch;
            for (int panel = 1; panel <= 2; ++panel) {
                const double f = (panel == 1 ? random_freq : guided_freq)[static_cast<std::size_t>(k)];
                const auto h = maskviz::jet(f);
                c.set(gap + panel * (s + gap) + x, top + y,
                      {static_cast<std::uint8_t>(std::lround(0.35 * v + 0.65 * h.r)),
                       static_cast<std::uint8_t>(std::lround(0.35 * v + 0.65 * h.g)),
                       static_cast<std::uint8_t>(std::lround(0.35 * v + 0.65 * h.b))});
            }
        }
    const maskviz::rgb ink{20, 20, 20};
    c.text(gap, 6, "IMAGE + GUIDANCE", ink);
    c.text(gap + s + gap, 6, "RANDOM", ink);
    c.text(gap + 2 * (s + gap), 6, "ANATOMY-GUIDED", ink);
    // Colour bar: masking frequency 0 .. 1.
    const long bx = gap + s + gap, by = top + s + 8, bw = 2 * s + gap;
    for (long x = 0; x < bw; ++x) c.rect(bx + x, by, 1, 10, maskviz::jet(double(x) / double(bw - 1)));
    c.text(bx, by + 13, "0", ink);
    c.text(bx + bw - maskviz::canvas::text_width("1"), by + 13, "1", ink);
    const std::string caption = "FRACTION OF EPOCHS MASKED";
    c.text(bx + (bw - maskviz::canvas::text_width(caption)) / 2, by + 13, caption, ink);
    io::write_png(path, c.pixels());
}

void write_plot(const fs::path& path, const std::vector<double>& random_share, const std::vector<double>& guided_share,
                double baseline) {
    const long w = 720, h = 440, left = 60, right = 20, top = 40, bottom = 50;
    maskviz::canvas c(h, w);
    const long pw = w - left - right, ph = h - top - bottom;
    const auto epochs = static_cast<long>(random_share.size());
    auto px = [&](double e) { return double(left) + (epochs > 1 ? (e / double(epochs - 1)) * double(pw) : 0.0); };
    auto py = [&](double v) { return double(top + ph) - v * double(ph); };
    const maskviz::rgb ink{20, 20, 20}, grid{220, 220, 220}, blue{40, 90, 220}, red{220, 40, 40}, grey{120, 120, 120};
    for (int t = 0; t <= 4; ++t) {
        const double v = 0.25 * t;
        c.line(double(left), py(v), double(left + pw), py(v), grid);
        char lab[8];
        std::snprintf(lab, sizeof lab, "%.2f", v);
        c.text(left - 8 - maskviz::canvas::text_width(lab), std::lround(py(v)) - 5, lab, ink);
    }
    for (int t = 0; t <= 4; ++t) {
        const long e = (epochs - 1) * t / 4;
        const std::string lab = std::to_string(e + 1);
        c.line(px(double(e)), double(top + ph), px(double(e)), double(top + ph + 5), ink);
        c.text(std::lround(px(double(e))) - maskviz::canvas::text_width(lab) / 2, top + ph + 9, lab, ink);
    }
    c.line(double(left), double(top), double(left), double(top + ph), ink);
    c.line(double(left), double(top + ph), double(left + pw), double(top + ph), ink);
    c.line(double(left), py(baseline), double(left + pw), py(baseline), grey, 2, 6);
    for (long e = 1; e < epochs; ++e) {
        c.line(px(double(e - 1)), py(random_share[std::size_t(e - 1)]), px(double(e)), py(random_share[std::size_t(e)]), blue, 2);
        c.line(px(double(e - 1)), py(guided_share[std::size_t(e - 1)]), px(double(e)), py(guided_share[std::size_t(e)]), red, 2);
    }
    c.text(left, 10, "SHARE OF VESSEL PATCHES AMONG MASKED PATCHES", ink);
    c.text(left + pw / 2 - maskviz::canvas::text_width("EPOCH") / 2, h - 18, "EPOCH", ink);
    const long lx = left + 12, ly = top + 10;
    c.rect(lx - 6, ly - 6, 250, 58, {255, 255, 255});
    c.line(double(lx), double(ly + 4), double(lx + 24), double(ly + 4), red, 2);
    c.text(lx + 32, ly, "ANATOMY-GUIDED", ink);
    c.line(double(lx), double(ly + 20), double(lx + 24), double(ly + 20), blue, 2);
    c.text(lx + 32, ly + 16, "RANDOM", ink);
    c.line(double(lx), double(ly + 36), double(lx + 24), double(ly + 36), grey, 2, 6);
    c.text(lx + 32, ly + 32, "ALL PATCHES (BASELINE)", ink);
    io::write_png(path, c.pixels());
}

template <class Schedule>
int simulate(const options& opt, std::vector<item>& items, const Schedule& schedule) {
    using B = default_backend;
    const auto n = static_cast<index_t>(items.size());
    const auto s = static_cast<index_t>(items[0].guidance.shape(0)), sw = static_cast<index_t>(items[0].guidance.shape(1));
    const index_t l = masking::num_patches(s, sw, opt.patch);

    std::vector<float> host(static_cast<std::size_t>(n * s * sw));
    for (index_t i = 0; i < n; ++i) {
        if (items[std::size_t(i)].guidance.shape(0) != std::size_t(s) || items[std::size_t(i)].guidance.shape(1) != std::size_t(sw))
            throw shape_error("vasomim-maskviz: '" + items[std::size_t(i)].guidance_path.string() +
                              "' differs in size from the first guidance map; pass --size to resample");
        std::copy(items[std::size_t(i)].guidance.begin(), items[std::size_t(i)].guidance.end(), host.begin() + i * s * sw);
    }
    const auto guidance = tensor<float, B>::from_host(host, shape{n, s, sw});
    const auto weights = masking::patch_weights(guidance, opt.patch);

    const masking::random random{opt.mask_ratio, opt.seed};
    const masking::anatomy_guided<Schedule> guided{opt.mask_ratio, schedule, opt.seed};

    std::vector<std::uint8_t> vessel(static_cast<std::size_t>(n * l));
    index_t vessel_total = 0;
    for (index_t i = 0; i < n; ++i)
        for (index_t k = 0; k < l; ++k) {
            vessel[std::size_t(i * l + k)] = items[std::size_t(i)].vessel[std::size_t(k)];
            vessel_total += vessel[std::size_t(i * l + k)];
        }
    const double baseline = double(vessel_total) / double(n * l);

    std::vector<double> freq_random(std::size_t(n * l), 0.0), freq_guided(std::size_t(n * l), 0.0);
    std::vector<double> share_random, share_guided, betas;
    for (index_t e = 0; e < opt.epochs; ++e) {
        const masking::step_info info{static_cast<std::uint64_t>(e), masking::progress::from_epoch(e, opt.epochs)};
        betas.push_back(guided.beta(info.at));
        for (int pol = 0; pol < 2; ++pol) {
            const auto mask = (pol == 0 ? random.sample(weights, info) : guided.sample(weights, info)).mask.to_host();
            auto& freq = pol == 0 ? freq_random : freq_guided;
            double masked = 0, masked_vessel = 0;
            for (std::size_t q = 0; q < mask.size(); ++q)
                if (mask[q] == 1.0f) {
                    freq[q] += 1.0;
                    masked += 1;
                    masked_vessel += vessel[q];
                }
            (pol == 0 ? share_random : share_guided).push_back(masked_vessel / masked);
        }
    }

    fs::create_directories(opt.out);
    {
        const fs::path csv = fs::path(opt.out) / "vessel_share.csv";
        std::ofstream f(csv);
        if (!f) throw io_error("vasomim-maskviz: cannot write '" + csv.string() + "'");
        f << "epoch,beta,random_share,guided_share,all_patches_share\n";
        for (index_t e = 0; e < opt.epochs; ++e)
            f << e + 1 << ',' << betas[std::size_t(e)] << ',' << share_random[std::size_t(e)] << ','
              << share_guided[std::size_t(e)] << ',' << baseline << '\n';
        if (!f) throw io_error("vasomim-maskviz: error writing '" + csv.string() + "'");
    }
    write_plot(fs::path(opt.out) / "vessel_share.png", share_random, share_guided, baseline);
    if (opt.heatmaps)
        for (index_t i = 0; i < n; ++i) {
            const auto at = [&](const std::vector<double>& f) {
                std::vector<double> r(f.begin() + i * l, f.begin() + (i + 1) * l);
                for (double& v : r) v /= double(opt.epochs);
                return r;
            };
            write_heatmaps(fs::path(opt.out) / (items[std::size_t(i)].stem + "_maskviz.png"), items[std::size_t(i)],
                           opt.patch, at(freq_random), at(freq_guided));
        }

    const auto counts = masking::guided_counts::of(l, opt.mask_ratio, betas.back());
    std::printf("vasomim-maskviz: %lld image(s), guidance: %s; %lld x %lld, patch %lld (L = %lld), mask ratio %.2f "
                "(%lld masked), schedule %s %.2f -> %.2f, %lld epochs, seed %llu, backend %s\n",
                (long long)n, opt.label.c_str(), (long long)s, (long long)sw, (long long)opt.patch, (long long)l,
                opt.mask_ratio, (long long)counts.num_mask, opt.schedule.c_str(), betas.front(), betas.back(),
                (long long)opt.epochs, (unsigned long long)opt.seed, backend_traits<B>::name);
    std::printf("vessel-containing patches: %.1f%% of all patches (%lld of %lld)\n", 100 * baseline,
                (long long)vessel_total, (long long)(n * l));
    std::printf("%8s %7s %10s %10s   share of vessel-containing patches among masked patches\n", "epoch", "beta",
                "random", "guided");
    const index_t stride = std::max<index_t>(1, opt.epochs / 10);
    for (index_t e = 0; e < opt.epochs; ++e)
        if (e == 0 || (e + 1) % stride == 0 || e + 1 == opt.epochs)
            std::printf("%8lld %7.3f %9.1f%% %9.1f%%\n", (long long)(e + 1), betas[std::size_t(e)],
                        100 * share_random[std::size_t(e)], 100 * share_guided[std::size_t(e)]);
    std::printf("final epoch (beta_e = %.2f, %lld of %lld masked patches guided): random %.1f%%, anatomy-guided %.1f%%\n",
                betas.back(), (long long)counts.target, (long long)counts.num_mask, 100 * share_random.back(),
                100 * share_guided.back());
    std::printf("wrote %s/vessel_share.csv, %s/vessel_share.png%s\n", opt.out.c_str(), opt.out.c_str(),
                opt.heatmaps ? " and <image>_maskviz.png heat maps" : "");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    CLI::App app{"vasomim-maskviz: per-patch masking frequency and vessel-patch share, random vs anatomy-guided"};
    app.add_option("--image", opt.image, "Angiogram file (PNG/NPY/...) or folder of them")->required();
    auto* guidance_opt = app.add_option(
        "--guidance", opt.guidance,
        "Guidance map file (pseudo-label or vesselness, PNG or NPY) or folder holding <stem><suffix>.png|npy");
    auto* pseudo_opt = app.add_flag("--pseudo-label", opt.pseudo_label,
                                    "Compute the guidance on the fly: the released pseudo-label pipeline (sato, "
                                    "percentile 92, region growing) on each 8-bit image");
    app.add_flag("--fov", opt.fov,
                 "With --pseudo-label: the field-of-view-aware variant (dark collimator areas and their edges "
                 "removed, components of the 5 strongest maxima; vessel/fov_pseudo_label.hpp)")
        ->needs(pseudo_opt);
    guidance_opt->excludes(pseudo_opt);
    pseudo_opt->excludes(guidance_opt);
    app.add_option("--pattern", opt.pattern, "Only images whose file name matches this wildcard (folder input)");
    app.add_option("--guidance-suffix", opt.guidance_suffix, "Suffix of the guidance file stems (e.g. _gt)");
    app.add_option("--vessel", opt.vessel,
                   "Map deciding which patches contain vessels (file or folder; default: the guidance)");
    app.add_option("--vessel-suffix", opt.vessel_suffix, "Suffix of the vessel map file stems");
    app.add_option("--vessel-threshold", opt.vessel_threshold,
                   "A pixel is vessel when it reaches this fraction of its map's maximum")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--min-vessel-pixels", opt.min_vessel_pixels, "Vessel pixels that make a patch vessel-containing")
        ->check(CLI::PositiveNumber);
    app.add_option("--label", opt.label, "What the guidance is, for the printed summary");
    app.add_option("--out", opt.out, "Output folder");
    app.add_option("--size", opt.size, "Resample image and guidance to size x size (0: keep; must be a multiple of --patch)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--patch", opt.patch, "Patch size p")->check(CLI::PositiveNumber);
    app.add_option("--mask-ratio", opt.mask_ratio, "Share of masked patches, in (0, 1) (released: 0.5)");
    app.add_option("--epochs", opt.epochs, "Epochs to simulate (released: 800)");
    app.add_option("--schedule", opt.schedule, "beta_e schedule")->check(CLI::IsMember({"linear", "constant", "cosine"}));
    app.add_option("--beta0", opt.beta_0, "beta at the start (linear, cosine)");
    app.add_option("--beta", opt.beta_E, "beta at the end (linear, cosine) or throughout (constant)");
    app.add_option("--seed", opt.seed, "Seed of the counter-based generator");
    app.add_flag("!--no-heatmaps", opt.heatmaps, "Skip the per-image heat maps");
    CLI11_PARSE(app, argc, argv);

    try {
        if (opt.guidance.empty() && !opt.pseudo_label)
            throw config_error("vasomim-maskviz: pass --guidance <file|folder> or --pseudo-label");
        if (opt.pseudo_label && opt.label == "guidance maps")
            opt.label = opt.fov ? "FOV-aware pseudo-labels computed on the fly" : "pseudo-labels computed on the fly";
        if (opt.epochs <= 0) throw value_error("vasomim-maskviz: --epochs must be > 0, got " + std::to_string(opt.epochs));
        std::vector<item> items;
        for (const auto& p : list_images(opt.image, opt.pattern)) {
            item it;
            it.stem = io::input_stem(p);
            it.image_path = p;
            it.guidance_path = opt.pseudo_label ? p : partner(opt.guidance, it.stem, opt.guidance_suffix);
            it.image = load_resized(it.image_path, opt.size, false);
            it.guidance = opt.pseudo_label ? resized(pseudo_label_of(p, opt.fov), opt.size, true)
                                           : load_resized(it.guidance_path, opt.size, true);
            if (it.image.shape() != it.guidance.shape())
                throw shape_error("vasomim-maskviz: image '" + p.string() + "' and guidance '" + it.guidance_path.string() +
                                  "' differ in size");
            const image_t vmap = opt.vessel.empty()
                                     ? it.guidance
                                     : load_resized(partner(opt.vessel, it.stem, opt.vessel_suffix), opt.size, true);
            if (vmap.shape() != it.guidance.shape())
                throw shape_error("vasomim-maskviz: the vessel map of '" + p.string() + "' differs in size");
            masking::num_patches(static_cast<index_t>(vmap.shape(0)), static_cast<index_t>(vmap.shape(1)), opt.patch);
            it.vessel = vessel_patches(vmap, opt.patch, opt.vessel_threshold, opt.min_vessel_pixels);
            items.push_back(std::move(it));
        }
        if (opt.schedule == "constant")
            return simulate(opt, items, masking::schedule::constant{opt.beta_E});
        if (opt.schedule == "cosine") return simulate(opt, items, masking::schedule::cosine{opt.beta_0, opt.beta_E});
        return simulate(opt, items, masking::schedule::linear{opt.beta_0, opt.beta_E});
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
