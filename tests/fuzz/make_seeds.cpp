// Writes the generated part of the seed corpora in tests/data/fuzz/ (the rest are copies of the
// fixtures in tests/data/png, tests/data/nn and tests/data/checkpoint, and the checkpoint target
// writes its own with VASOMIM_FUZZ_WRITE_SEEDS): 64 x 64 crops of the coronary80 training_* images
// and masks re-encoded as PNG (gray and RGB), JPEG, BMP and TGA, small .npy files and the
// folder_dataset target's image + mask inputs. Not part of any build; run by hand:
//   g++ -std=gnu++20 -Iinclude -isystem /usr/include/eigen3 tests/fuzz/make_seeds.cpp -o /tmp/make_seeds \
//       -lstb -lisal && /tmp/make_seeds /work/shared/data/coronary80 tests/data/fuzz
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <stb/stb_image_write.h>
#include <xtensor/xview.hpp>

#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"

namespace fs = std::filesystem;
using img8 = xt::xtensor<std::uint8_t, 2>;

static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
static void spit(const fs::path& p, const std::string& s) {
    std::ofstream(p, std::ios::binary).write(s.data(), static_cast<std::streamsize>(s.size()));
}
static void to_string_cb(void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), n); }

/// FuzzedDataProvider's ConsumeRandomLengthString escaping: '\\' doubled, then "\\ " ends the string.
static std::string escaped(const std::string& s) {
    std::string o;
    for (char c : s) {
        o += c;
        if (c == '\\') o += '\\';
    }
    return o + "\\ ";
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    const fs::path src = argv[1], dst = argv[2];
    for (const char* t : {"png_decode", "image", "npy", "folder_dataset"}) fs::create_directories(dst / t);
    const int ids[] = {1, 7, 13};
    const int at[][2] = {{120, 110}, {60, 150}, {180, 90}};
    for (int k = 0; k < 3; ++k) {
        char name[64];
        std::snprintf(name, sizeof name, "training_%02d", ids[k]);
        const img8 full = vasomim::io::read_gray8(src / "images" / (std::string(name) + ".png"));
        const img8 fullm = vasomim::io::read_gray8(src / "masks" / (std::string(name) + "_gt.png"));
        const std::size_t r = at[k][0], c = at[k][1];
        const img8 crop = xt::view(full, xt::range(r, r + 64), xt::range(c, c + 64));
        const img8 mcrop = xt::view(fullm, xt::range(r, r + 64), xt::range(c, c + 64));
        const std::string base = std::string("coronary80_") + name + "_64";
        std::string png, mpng, rgbpng, jpg, bmp, tga;
        stbi_write_png_to_func(to_string_cb, &png, 64, 64, 1, crop.data(), 64);
        stbi_write_png_to_func(to_string_cb, &mpng, 64, 64, 1, mcrop.data(), 64);
        xt::xtensor<std::uint8_t, 3> rgb = xt::stack(xt::xtuple(crop, mcrop, crop), 2);
        stbi_write_png_to_func(to_string_cb, &rgbpng, 64, 64, 3, rgb.data(), 64 * 3);
        stbi_write_jpg_to_func(to_string_cb, &jpg, 64, 64, 1, crop.data(), 80);
        stbi_write_bmp_to_func(to_string_cb, &bmp, 32, 32, 1, crop.data());
        stbi_write_tga_to_func(to_string_cb, &tga, 32, 32, 1, crop.data());
        spit(dst / "png_decode" / (base + ".png"), png);
        spit(dst / "png_decode" / (base + "_rgb.png"), rgbpng);
        spit(dst / "image" / (base + ".png"), png);
        spit(dst / "image" / (base + ".jpg"), jpg);
        spit(dst / "image" / (base + "_32.bmp"), bmp);
        spit(dst / "image" / (base + "_32.tga"), tga);
        // folder_dataset: image, then mask, then the name index byte (0: a.png, 1: a.jpg, 2: a.bmp).
        spit(dst / "folder_dataset" / (base + "_png.seed"), escaped(png) + mpng + '\0');
        if (k == 0) {
            spit(dst / "folder_dataset" / (base + "_jpg.seed"), escaped(jpg) + mpng + '\1');
            spit(dst / "folder_dataset" / (base + "_bmp_mismatch.seed"), escaped(bmp) + mpng + '\2');
            const img8 small = xt::view(crop, xt::range(0, 16), xt::range(0, 16));
            vasomim::io::write_npy(dst / "npy" / "crop16_u8.npy", small);
            vasomim::io::write_npy(dst / "npy" / "crop16_f32.npy", xt::xtensor<float, 2>(xt::cast<float>(small)));
            vasomim::io::write_npy(dst / "npy" / "crop16_f64.npy", xt::xtensor<double, 2>(xt::cast<double>(small)));
            vasomim::io::write_npy(dst / "npy" / "crop16_i16_3d.npy",
                                   xt::xtensor<std::int16_t, 3>(xt::cast<std::int16_t>(xt::view(crop, xt::range(0, 4), xt::range(0, 4), xt::newaxis()))));
            const auto npy = slurp(dst / "npy" / "crop16_f32.npy");
            std::string msmall;
            const img8 ms = xt::view(mcrop, xt::range(0, 16), xt::range(0, 16));
            stbi_write_png_to_func(to_string_cb, &msmall, 16, 16, 1, ms.data(), 16);
            spit(dst / "folder_dataset" / (base + "_npy.seed"), escaped(npy) + msmall + '\3');
        }
    }
}
