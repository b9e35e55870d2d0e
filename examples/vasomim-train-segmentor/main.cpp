// vasomim-train-segmentor: trains the co-guidance segmentor UNeXt-S on angiograms and their vessel
// pseudo-labels (0.5 BCE + 0.5 Dice, Adam lr 1e-3 with poly(0.9) decay; augmentation: random
// resized crop (scale 0.2-1, ratio 3/4-4/3; bilinear for images, nearest for labels) and horizontal
// flip p = 0.5), saves the weights (one safetensors file, PyTorch state_dict names, loadable with
// --init to continue or to evaluate with --iterations 0) and reports Dice against the
// pseudo-labels and, when given, against expert masks; also the Dice of the pseudo-labels and of
// the mixed guidance G = 0.5 B + 0.5 sigmoid(S(I)) thresholded at 0.5.
//
// Input normalisation: the gray image replicated to 3 channels and ImageNet-normalised, reduced
// to its channel mean (what the consistency loss feeds the segmentor).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "vasomim/backend/backends.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/nn/unext.hpp"
#include "vasomim/optim/adam.hpp"
#include "vasomim/train/segmentor_training.hpp"

namespace fs = std::filesystem;
using namespace vasomim;
using B = default_backend;  // backend::cpu, or thrust_cuda when nvcc compiles this file (VASOMIM_BACKEND=cuda)
using T = float;

namespace {

struct sample {
    std::string name;
    index_t h = 0, w = 0;
    std::vector<float> image;   ///< normalised gray (channel mean of the ImageNet-normalised replica)
    std::vector<float> label;   ///< pseudo-label in {0, 1}
    std::vector<float> expert;  ///< expert mask in {0, 1} (empty when not given)
};

float normalise(float g01) {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    float s = 0;
    for (int c = 0; c < 3; ++c) s += (g01 - mean[c]) / stdv[c];
    return s / 3;
}

std::vector<float> read_binary(const fs::path& p, index_t h, index_t w) {
    const auto m = io::read_gray8(p);
    if (static_cast<index_t>(m.shape()[0]) != h || static_cast<index_t>(m.shape()[1]) != w)
        throw shape_error("mask " + p.string() + " does not match its image size");
    std::vector<float> out(m.size());
    for (std::size_t i = 0; i < m.size(); ++i) out[i] = m.data()[i] >= 128 ? 1.f : 0.f;
    return out;
}

std::vector<sample> load(const fs::path& images, const fs::path& labels, const std::string& masks,
                         const std::string& prefix, const std::string& mask_suffix) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(images))
        if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw io_error("no images named " + prefix + "* in " + images.string());
    std::vector<sample> out;
    for (const auto& f : files) {
        sample s;
        s.name = f.stem().string();
        const auto g = io::read_gray8(f);
        s.h = static_cast<index_t>(g.shape()[0]);
        s.w = static_cast<index_t>(g.shape()[1]);
        s.image.resize(g.size());
        for (std::size_t i = 0; i < g.size(); ++i) s.image[i] = normalise(g.data()[i] / 255.f);
        fs::path lp = labels / (s.name + ".png");
        if (!fs::exists(lp)) throw io_error("no pseudo-label " + lp.string() + " for " + f.string());
        s.label = read_binary(lp, s.h, s.w);
        if (!masks.empty()) s.expert = read_binary(fs::path(masks) / (s.name + mask_suffix + ".png"), s.h, s.w);
        out.push_back(std::move(s));
    }
    return out;
}

/// Random resized crop to size x size + horizontal flip, bilinear for the image, nearest for the label.
void augment(const sample& s, index_t size, std::mt19937_64& rng, float* img, float* lab) {
    std::uniform_real_distribution<double> U(0, 1);
    const double area = static_cast<double>(s.h * s.w);
    double cw = s.w, ch = s.h, x0 = 0, y0 = 0;
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double a = area * (0.2 + 0.8 * U(rng));
        const double r = std::exp(std::log(3.0 / 4) + (std::log(4.0 / 3) - std::log(3.0 / 4)) * U(rng));
        const double w = std::sqrt(a * r), h = std::sqrt(a / r);
        if (w <= s.w && h <= s.h) {
            cw = w;
            ch = h;
            x0 = U(rng) * (s.w - w);
            y0 = U(rng) * (s.h - h);
            break;
        }
    }
    const bool flip = U(rng) < 0.5;
    for (index_t y = 0; y < size; ++y)
        for (index_t x = 0; x < size; ++x) {
            const index_t xo = flip ? size - 1 - x : x;
            const double sy = y0 + (y + 0.5) * ch / size - 0.5, sx = x0 + (x + 0.5) * cw / size - 0.5;
            const double cy = std::clamp(sy, 0.0, static_cast<double>(s.h - 1)), cx = std::clamp(sx, 0.0, static_cast<double>(s.w - 1));
            const index_t iy = static_cast<index_t>(cy), ix = static_cast<index_t>(cx);
            const index_t iy1 = std::min(iy + 1, s.h - 1), ix1 = std::min(ix + 1, s.w - 1);
            const double ly = cy - iy, lx = cx - ix;
            const auto at = [&](index_t yy, index_t xx) { return static_cast<double>(s.image[static_cast<std::size_t>(yy * s.w + xx)]); };
            img[y * size + xo] = static_cast<float>((1 - ly) * ((1 - lx) * at(iy, ix) + lx * at(iy, ix1)) +
                                                     ly * ((1 - lx) * at(iy1, ix) + lx * at(iy1, ix1)));
            const index_t ny = std::min(static_cast<index_t>(std::lround(cy)), s.h - 1);
            const index_t nx = std::min(static_cast<index_t>(std::lround(cx)), s.w - 1);
            lab[y * size + xo] = s.label[static_cast<std::size_t>(ny * s.w + nx)];
        }
}

/// Logits for a whole image: zero-padded (normalised 0) to multiples of 32, cropped back.
std::vector<float> predict(nn::unext<B, T>& net, const sample& s) {
    const index_t H = (s.h + 31) / 32 * 32, W = (s.w + 31) / 32 * 32;
    std::vector<float> in(static_cast<std::size_t>(H * W), 0.f);
    for (index_t y = 0; y < s.h; ++y)
        for (index_t x = 0; x < s.w; ++x) in[static_cast<std::size_t>(y * W + x)] = s.image[static_cast<std::size_t>(y * s.w + x)];
    auto tin = tensor<T, B>::from_host(in, shape{H * W});
    tensor<T, B> out(shape{H * W});
    net.forward(out.data(), tin.data(), 1, H, W, false);
    const auto o = out.to_host();
    std::vector<float> z(static_cast<std::size_t>(s.h * s.w));
    for (index_t y = 0; y < s.h; ++y)
        for (index_t x = 0; x < s.w; ++x) z[static_cast<std::size_t>(y * s.w + x)] = o[static_cast<std::size_t>(y * W + x)];
    return z;
}

double dice(const std::vector<float>& pred01, const std::vector<float>& ref) {
    double in = 0, s = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        in += pred01[i] * ref[i];
        s += pred01[i] + ref[i];
    }
    return s > 0 ? 2 * in / s : 1.0;
}

struct scores {
    double seg_vs_label = 0, seg_vs_expert = 0, label_vs_expert = 0, mixed_vs_expert = 0;
};

scores evaluate(nn::unext<B, T>& net, const std::vector<sample>& set) {
    scores sc;
    for (const auto& s : set) {
        const auto z = predict(net, s);
        std::vector<float> seg(z.size()), mixed(z.size());
        for (std::size_t i = 0; i < z.size(); ++i) {
            seg[i] = z[i] > 0 ? 1.f : 0.f;
            const double m = 1 / (1 + std::exp(-static_cast<double>(z[i])));
            mixed[i] = 0.5 * s.label[i] + 0.5 * m > 0.5 ? 1.f : 0.f;
        }
        sc.seg_vs_label += dice(seg, s.label) / set.size();
        if (!s.expert.empty()) {
            sc.seg_vs_expert += dice(seg, s.expert) / set.size();
            sc.label_vs_expert += dice(s.label, s.expert) / set.size();
            sc.mixed_vs_expert += dice(mixed, s.expert) / set.size();
        }
    }
    return sc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-train-segmentor: train UNeXt-S on vessel pseudo-labels (0.5 BCE + 0.5 Dice, Adam, poly lr)"};
    std::string images, labels, masks, eval_images, eval_labels, eval_masks, out = "unext_s.safetensors", init;
    std::string prefix, eval_prefix, mask_suffix = "_gt";
    int iterations = 500, batch = 8, size = 160;
    double lr = 1e-3;
    std::uint64_t seed = 0;
    app.add_option("--images", images, "folder of training angiograms")->required();
    app.add_option("--labels", labels, "folder of their pseudo-labels (same file stem, .png)")->required();
    app.add_option("--masks", masks, "folder of expert masks of the training images (reported only)");
    app.add_option("--prefix", prefix, "use only training images whose name starts with this");
    app.add_option("--eval-images", eval_images, "folder of held-out images to report on (never used for training)");
    app.add_option("--eval-labels", eval_labels, "their pseudo-labels");
    app.add_option("--eval-masks", eval_masks, "their expert masks");
    app.add_option("--eval-prefix", eval_prefix, "report only on held-out images starting with this");
    app.add_option("--mask-suffix", mask_suffix, "expert mask file = <stem><suffix>.png");
    app.add_option("--iterations", iterations, "training iterations (0: only evaluate, e.g. with --init)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--size", size, "training crop side (multiple of 32)")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "Adam base learning rate (poly 0.9 decay)");
    app.add_option("--seed", seed, "seed of initialisation and augmentation");
    app.add_option("-o,--output", out, "output weights, one .safetensors file (PyTorch state_dict names)");
    app.add_option("--init", init, "start from these weights (.safetensors with the same names and shapes)");
    CLI11_PARSE(app, argc, argv);
    try {
        if (size % 32 != 0) throw config_error("--size must be a multiple of 32, got " + std::to_string(size));
        if (iterations > 0 && fs::is_directory(out))
            throw config_error("-o must name a .safetensors file, '" + out + "' is a folder");
        const auto train = load(images, labels, masks, prefix, mask_suffix);
        std::printf("training on %zu images (pseudo-labels from %s)\n", train.size(), labels.c_str());
        nn::unext<B, T> net;
        net.init(seed);
        if (!init.empty()) {
            io::load_parameters(init, net.table(), net.parameters());
            std::printf("initial weights: %s\n", init.c_str());
        }
        std::mt19937_64 rng(seed + 1);
        const index_t n = batch, S = size, npix = n * S * S;
        std::vector<float> img(static_cast<std::size_t>(npix)), lab(static_cast<std::size_t>(npix));
        std::uniform_int_distribution<std::size_t> pick(0, train.size() - 1);
        const auto t0 = std::chrono::steady_clock::now();
        if (iterations > 0) {
            vasomim::train::segmentor_trainer<B> trainer(net, {.iterations = iterations, .lr = lr});
            for (int it = 0; it < iterations; ++it) {
                for (index_t b = 0; b < n; ++b)
                    augment(train[pick(rng)], S, rng, img.data() + b * S * S, lab.data() + b * S * S);
                const auto r = trainer.step(img.data(), lab.data(), n, S, S);
                if (it % 25 == 0 || it + 1 == iterations) {
                    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    std::printf("iter %4d  loss %.4f  Dice %.3f  lr %.2e  %.1f s\n", it, r.loss, r.dice,
                                optim::poly_lr(lr, it, iterations), sec);
                    std::fflush(stdout);
                }
            }
        }
        if (iterations > 0) {
            io::save_parameters(out, net.table(), net.parameters(),
                                {{"model", "UNeXt-S"}, {"in_channels", "1"}, {"iterations", std::to_string(iterations)}});
            std::printf("weights: %s (%zu tensors, state_dict names)\n", out.c_str(), net.table().entries().size());
        }
        const auto st = evaluate(net, train);
        std::printf("training set (%zu): Dice segmentor vs pseudo-labels %.4f", train.size(), st.seg_vs_label);
        if (!masks.empty())
            std::printf("; vs expert: pseudo-label %.4f, segmentor %.4f, G=0.5B+0.5M>0.5 %.4f", st.label_vs_expert,
                        st.seg_vs_expert, st.mixed_vs_expert);
        std::printf("\n");
        if (!eval_images.empty()) {
            const auto held = load(eval_images, eval_labels, eval_masks, eval_prefix, mask_suffix);
            const auto se = evaluate(net, held);
            std::printf("held-out set (%zu, reporting only): Dice segmentor vs pseudo-labels %.4f", held.size(), se.seg_vs_label);
            if (!eval_masks.empty())
                std::printf("; vs expert: (a) pseudo-label %.4f, (b) segmentor %.4f, (c) G>0.5 %.4f", se.label_vs_expert,
                            se.seg_vs_expert, se.mixed_vs_expert);
            std::printf("\n");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vasomim-train-segmentor: %s\n", e.what());
        return 1;
    }
    return 0;
}
