// vasomim-synthetic: writes the procedural angiogram data set (the library's embedded default) to a
// folder, as images/ and masks/ PNGs of the same names, or in the XA-170K layout
// (<name>/ beside <name>_frangi/) with --xa-layout.
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/io/image.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Write procedural X-ray angiograms with exact vessel masks"};
    std::size_t count = 16;
    std::uint64_t seed = 0;
    std::filesystem::path out = "synthetic";
    bool xa_layout = false;
    vasomim::data::synthetic_angiogram_options opt;
    app.add_option("-n,--count", count, "number of images")->capture_default_str();
    app.add_option("--seed", seed, "data set seed")->capture_default_str();
    app.add_option("--height", opt.height, "image height")->capture_default_str();
    app.add_option("--width", opt.width, "image width")->capture_default_str();
    app.add_option("--noise", opt.noise_sigma, "noise standard deviation (grey levels)")->capture_default_str();
    app.add_flag("--xa-layout", xa_layout, "write <dir>/synthetic/ and <dir>/synthetic_frangi/ (XA-170K layout)");
    app.add_option("-o,--output", out, "output folder")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        const auto image_dir = out / (xa_layout ? "synthetic" : "images");
        const auto mask_dir = out / (xa_layout ? "synthetic_frangi" : "masks");
        std::filesystem::create_directories(image_dir);
        std::filesystem::create_directories(mask_dir);
        for (std::size_t k = 0; k < count; ++k) {
            const auto s = vasomim::data::make_synthetic_angiogram(opt, seed, k);
            char name[48];
            std::snprintf(name, sizeof name, "synthetic_%05zu.png", k);
            vasomim::io::write_png(image_dir / name, s.image);
            vasomim::io::write_png(mask_dir / name, s.mask);
        }
        std::printf("wrote %zu images to %s and masks to %s\n", count, image_dir.c_str(), mask_dir.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vasomim-synthetic: %s\n", e.what());
        return 1;
    }
    return 0;
}
