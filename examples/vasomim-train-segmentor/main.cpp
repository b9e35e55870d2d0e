// vasomim-train-segmentor: trains the co-guidance segmentor UNeXt-S on angiograms and their vessel
// pseudo-labels (0.5 BCE + 0.5 Dice, Adam lr 1e-3 with poly(0.9) decay), saves the weights (one
// safetensors file, PyTorch state_dict names, in_channels in its metadata, loadable with --init to
// continue or to evaluate with --iterations 0) and reports Dice against the pseudo-labels and, when
// given, against expert masks; also the Dice of the pseudo-labels and of the mixed guidance
// G = 0.5 B + 0.5 sigmoid(S(I)) thresholded at 0.5.
//
// Augmentation as the released segmentor training (XA-SSL segmodel/dataset.py, DESIGN 4.5):
// random resized crop (scale 0.2-1, ratio 3/4-4/3; PIL's bicubic for images, nearest for labels)
// and horizontal flip p = 0.5 (data::augment).
//
// Input: the gray image replicated to 3 channels and ImageNet-normalised, per channel
// (x/255 - mean_c)/std_c, as the pre-training encoder sees it; the released UNeXt-S takes these 3
// channels (--channels 3, the default). --channels 1 is the gray configuration: a 1-channel
// UNeXt-S on their channel mean.
//
// --init takes a safetensors state dict of any float or integer dtype (e.g. the released
// segmodel/unext.pth converted by tools/convert_torch_checkpoint.py), with or without the
// "seg_model." prefix of a VasoMIM state dict (found automatically, or --init-prefix); a file of
// the other channel count is refused with the option to use.
//
// Under `mpirun -np N` (built with MPI) it trains on N data-parallel ranks: --batch images per rank,
// each rank drawing its own samples, rank 0's initial weights broadcast, synchronised BatchNorm and
// the loss's one Dice over the global batch, gradients summed before every Adam step
// (train/segmentor_training.hpp); rank 0 prints, evaluates and writes the weights.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/backend/backends.hpp"
#include "vasomim/data/random_stream.hpp"
#include "vasomim/data/transforms.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/mpi.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/nn/unext.hpp"
#include "vasomim/nn/unext_weights.hpp"
#include "vasomim/optim/adam.hpp"
#include "vasomim/train/segmentor_training.hpp"

namespace fs = std::filesystem;
using namespace vasomim;
using B = default_backend;  // backend::cpu, or thrust_cuda when nvcc compiles this file (VASOMIM_BACKEND=cuda)
using T = float;
#if VASOMIM_HAS_MPI
using communicator = dist::mpi;  // the ranks of mpirun -np N (a world of one when started by hand)
#else
using communicator = dist::single;
#endif

namespace {

struct sample {
    std::string name;
    index_t h = 0, w = 0;
    xt::xtensor<std::uint8_t, 2> gray;   ///< the angiogram, 8-bit
    xt::xtensor<std::uint8_t, 2> label8; ///< pseudo-label, 0 or 255 (what data::augment resamples)
    std::vector<float> label;            ///< pseudo-label in {0, 1}
    std::vector<float> expert;           ///< expert mask in {0, 1} (empty when not given)
};

xt::xtensor<std::uint8_t, 2> read_binary8(const fs::path& p, index_t h, index_t w) {
    auto m = io::read_gray8(p);
    if (static_cast<index_t>(m.shape()[0]) != h || static_cast<index_t>(m.shape()[1]) != w)
        throw shape_error("mask " + p.string() + " is " + std::to_string(m.shape()[0]) + " x " +
                          std::to_string(m.shape()[1]) + ", its image " + std::to_string(h) + " x " + std::to_string(w));
    for (auto& v : m) v = v >= 128 ? 255 : 0;
    return m;
}

std::vector<float> to01(const xt::xtensor<std::uint8_t, 2>& m) {
    std::vector<float> out(m.size());
    for (std::size_t i = 0; i < m.size(); ++i) out[i] = m.data()[i] ? 1.f : 0.f;
    return out;
}

std::vector<sample> load(const fs::path& images, const fs::path& labels, const std::string& masks,
                         const std::string& prefix, const std::string& mask_suffix) {
    std::vector<fs::path> files;  // every frame of a DICOM cine run is an image (run.dcm#K, named run_f0KK)
    for (const auto& f : io::list_image_files(images))
        if (f.filename().string().rfind(prefix, 0) == 0) {
            const auto frames = io::expand_frames(f);
            files.insert(files.end(), frames.begin(), frames.end());
        }
    if (files.empty()) throw io_error("no images named " + prefix + "* in " + images.string());
    std::vector<sample> out;
    for (const auto& f : files) {
        sample s;
        s.name = io::input_stem(f);
        s.gray = io::read_gray8(f);
        s.h = static_cast<index_t>(s.gray.shape()[0]);
        s.w = static_cast<index_t>(s.gray.shape()[1]);
        fs::path lp = labels / (s.name + ".png");
        if (!fs::exists(lp)) throw io_error("no pseudo-label " + lp.string() + " for " + f.string());
        s.label8 = read_binary8(lp, s.h, s.w);
        s.label = to01(s.label8);
        if (!masks.empty())
            s.expert = to01(read_binary8(fs::path(masks) / (s.name + mask_suffix + ".png"), s.h, s.w));
        out.push_back(std::move(s));
    }
    return out;
}

/// The segmentor's input for one image: 3 x H x W ImageNet-normalised (zero-padded, i.e. the
/// normalised mean, to H x W), or its channel mean for a 1-channel segmentor.
std::vector<float> input_of(const sample& s, index_t in_channels, index_t H, index_t W) {
    const auto rgb = data::to_normalised_rgb(xt::xtensor<float, 2>(xt::cast<float>(s.gray)));
    xt::xtensor<float, 4> padded = xt::zeros<float>({std::size_t(1), std::size_t(3), std::size_t(H), std::size_t(W)});
    for (std::size_t c = 0; c < 3; ++c)
        for (index_t y = 0; y < s.h; ++y)
            for (index_t x = 0; x < s.w; ++x) padded(0, c, std::size_t(y), std::size_t(x)) = rgb(c, std::size_t(y), std::size_t(x));
    return train::segmentor_input(padded, in_channels);
}

/// Logits for a whole image: zero-padded (normalised 0) to multiples of 32, cropped back.
std::vector<float> predict(nn::unext<B, T>& net, const sample& s) {
    const index_t H = (s.h + 31) / 32 * 32, W = (s.w + 31) / 32 * 32;
    const auto in = input_of(s, net.config().in_channels, H, W);
    auto tin = tensor<T, B>::from_host(in, shape{static_cast<index_t>(in.size())});
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

/// Dice over the set; with `logits_dir`, writes each image's logits as <stem>.npy (float32 H x W).
scores evaluate(nn::unext<B, T>& net, const std::vector<sample>& set, const std::string& logits_dir) {
    scores sc;
    for (const auto& s : set) {
        const auto z = predict(net, s);
        if (!logits_dir.empty()) {
            xt::xtensor<float, 2> zz = xt::xtensor<float, 2>::from_shape({std::size_t(s.h), std::size_t(s.w)});
            std::copy(z.begin(), z.end(), zz.begin());
            io::write_npy(fs::path(logits_dir) / (s.name + ".npy"), zz);
        }
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

std::string channels_word(std::int64_t c) { return c == 1 ? "1-channel (gray)" : std::to_string(c) + "-channel"; }

/// Loads --init into `net`: any float/integer dtype, the prefix given or found ("", "seg_model." or
/// "segmentor."), a file of the other channel count refused with the option to use, every other
/// mismatch listed (nn::load_unext).
void load_init(nn::unext<B, T>& net, const std::string& path, std::string prefix, bool prefix_given) {
    auto file = io::read_safetensors(path);
    if (!prefix_given) prefix = nn::unext_prefix_in(file);
    const auto count = file.tensors.size();
    nn::load_unext(net, std::move(file), path, prefix, &std::cout, [](std::int64_t have) {
        return "use --channels " + std::to_string(have) + (have == 1 || have == 3 ? "" : " (only 1 and 3 are supported)");
    });
    std::printf("initial weights: %s%s (%zu tensors)\n", path.c_str(),
                prefix.empty() ? "" : (" under '" + prefix + "'").c_str(), count);
}

}  // namespace

int main(int argc, char** argv) {
#if VASOMIM_HAS_MPI
    dist::mpi_environment mpi_env(argc, argv);
#endif
    communicator comm;
    CLI::App app{"vasomim-train-segmentor: train UNeXt-S on vessel pseudo-labels (0.5 BCE + 0.5 Dice, Adam, poly lr)"};
    std::string images, labels, masks, eval_images, eval_labels, eval_masks, out = "unext_s.safetensors", init;
    std::string prefix, eval_prefix, mask_suffix = "_gt", init_prefix, logits_dir;
    int iterations = 500, batch = 8, size = 160, channels = 3;
    double lr = 1e-3;
    std::uint64_t seed = 0;
    app.add_option("--images", images, "folder of training angiograms")->required();
    app.add_option("--labels", labels,
                   "folder of their pseudo-labels (same file stem, .png; e.g. written by "
                   "`vasomim-vesselness --pseudo-label IMAGES`, the released pipeline, into IMAGES_frangi/)")
        ->required();
    app.add_option("--masks", masks, "folder of expert masks of the training images (reported only)");
    app.add_option("--prefix", prefix, "use only training images whose name starts with this");
    app.add_option("--eval-images", eval_images, "folder of held-out images to report on (never used for training)");
    app.add_option("--eval-labels", eval_labels, "their pseudo-labels");
    app.add_option("--eval-masks", eval_masks, "their expert masks");
    app.add_option("--eval-prefix", eval_prefix, "report only on held-out images starting with this");
    app.add_option("--mask-suffix", mask_suffix, "expert mask file = <stem><suffix>.png");
    app.add_option("--channels", channels,
                   "segmentor input channels: 3 = the ImageNet-normalised RGB replica, as released; "
                   "1 = the gray configuration (its channel mean)")
        ->check(CLI::IsMember({1, 3}))
        ->capture_default_str();
    app.add_option("--iterations", iterations, "training iterations (0: only evaluate, e.g. with --init)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--size", size, "training crop side (multiple of 32)")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "Adam base learning rate (poly 0.9 decay)");
    app.add_option("--seed", seed, "seed of initialisation and augmentation");
    app.add_option("-o,--output", out, "output weights, one .safetensors file (PyTorch state_dict names)");
    app.add_option("--init", init,
                   "start from these weights: a safetensors state dict (any float or integer dtype, e.g. "
                   "tools/convert_torch_checkpoint.py segmodel/unext.pth unext.safetensors), or a VasoMIM "
                   "state dict whose segmentor is under 'seg_model.'");
    auto* ip = app.add_option("--init-prefix", init_prefix,
                              "take the --init tensors under this prefix (default: '' or 'seg_model.', whichever "
                              "holds encoder1.weight)");
    app.add_option("--save-logits", logits_dir, "write each training image's logits S(I) as <stem>.npy (float32) here");
    CLI11_PARSE(app, argc, argv);
    const bool root = comm.rank() == 0;
    if (!root && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;  // rank 0 prints
    return dist::run_guarded(comm, "vasomim-train-segmentor", [&]() -> int {
        dist::check_same_configuration(comm, images + "|" + labels + "|" + prefix + "|" + std::to_string(iterations) +
                                                 "|" + std::to_string(batch) + "|" + std::to_string(size) + "|" +
                                                 std::to_string(lr) + "|" + std::to_string(seed) + "|" +
                                                 std::to_string(channels) + "|" + init);
        if (size % 32 != 0) throw config_error("--size must be a multiple of 32, got " + std::to_string(size));
        if (iterations > 0 && fs::is_directory(out))
            throw config_error("-o must name a .safetensors file, '" + out + "' is a folder");
        if (!ip->empty() && init.empty()) throw config_error("--init-prefix needs --init");
        if (!logits_dir.empty()) fs::create_directories(logits_dir);
        const auto train = load(images, labels, masks, prefix, mask_suffix);
        std::printf("training on %zu images (pseudo-labels from %s), %s UNeXt-S\n", train.size(), labels.c_str(),
                    channels_word(channels).c_str());
        nn::unext<B, T> net(nn::unext_config{.in_channels = channels});
        net.init(seed);
        if (!init.empty()) load_init(net, init, init_prefix, !ip->empty());
        dist::broadcast_from_root<B>(comm, net.parameters());  // every rank starts from rank 0's weights
        if (comm.size() > 1)
            std::printf("data parallel: %d ranks x batch %d, synchronised BatchNorm, Dice over the global batch\n",
                        comm.size(), batch);
        const index_t C = channels, n = batch, S = size;
        xt::xtensor<float, 4> img = xt::xtensor<float, 4>::from_shape({std::size_t(n), std::size_t(3), std::size_t(S), std::size_t(S)});
        std::vector<float> lab(static_cast<std::size_t>(n * S * S));
        data::random_stream rng(seed, comm.rank() == 0 ? 1 : 1000 + static_cast<std::uint64_t>(comm.rank()));
        const data::augment_options aug{.size = S};
        const auto t0 = std::chrono::steady_clock::now();
        if (iterations > 0) {
            // as released: the poly factor steps once per epoch (here: ceil(images / global batch) iterations)
            const std::size_t global = std::size_t(batch) * static_cast<std::size_t>(comm.size());
            const auto per_epoch = static_cast<std::int64_t>((train.size() + global - 1) / global);
            vasomim::train::segmentor_trainer<B> trainer(net, {.iterations = iterations, .lr = lr, .iterations_per_epoch = per_epoch});
            // each rank's gradient is its share of the global batch's loss: summed, not averaged
            dist::gradient_averager<B, communicator> sum(comm, dist::gradient_scaling::prescaled);
            if (comm.size() > 1) {
                trainer.synchronise([&comm](double* v, index_t count) { comm.allreduce_sum_host(v, count); });
                trainer.reduce_gradients = [&sum](float* g, index_t count) { sum(g, count); };
            }
            for (int it = 0; it < iterations; ++it) {
                for (index_t b = 0; b < n; ++b) {
                    const auto& s = train[static_cast<std::size_t>(rng.integer(0, static_cast<std::int64_t>(train.size()) - 1))];
                    const auto a = data::augment(s.gray, s.label8, aug, rng);
                    std::copy(a.image.begin(), a.image.end(), img.begin() + b * 3 * S * S);
                    std::copy(a.mask.begin(), a.mask.end(), lab.begin() + b * S * S);
                }
                const auto input = train::segmentor_input(img, C);
                const auto r = trainer.step(input.data(), lab.data(), n, S, S);
                if (it % 25 == 0 || it + 1 == iterations) {
                    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    std::printf("iter %4d  loss %.4f  Dice %.3f  lr %.2e  %.1f s\n", it, r.loss, r.dice,
                                trainer.lr_at(it), sec);
                    std::fflush(stdout);
                }
            }
            trainer.synchronise({});  // the evaluation below runs on rank 0 alone
        }
        if (!root) return 0;  // rank 0 writes and evaluates (the running statistics are the same on every rank)
        if (iterations > 0) {
            io::save_parameters(out, net.table(), net.parameters(),
                                {{"model", "UNeXt-S"},
                                 {"in_channels", std::to_string(C)},
                                 {"input", C == 3 ? "ImageNet-normalised RGB" : "channel mean of ImageNet-normalised RGB"},
                                 {"iterations", std::to_string(iterations)}});
            std::printf("weights: %s (%zu tensors, state_dict names, in_channels %lld)\n", out.c_str(),
                        net.table().entries().size(), static_cast<long long>(C));
        }
        const auto st = evaluate(net, train, logits_dir);
        std::printf("training set (%zu): Dice segmentor vs pseudo-labels %.4f", train.size(), st.seg_vs_label);
        if (!masks.empty())
            std::printf("; vs expert: pseudo-label %.4f, segmentor %.4f, G=0.5B+0.5M>0.5 %.4f", st.label_vs_expert,
                        st.seg_vs_expert, st.mixed_vs_expert);
        std::printf("\n");
        if (!logits_dir.empty()) std::printf("logits: %s/<stem>.npy\n", logits_dir.c_str());
        if (!eval_images.empty()) {
            const auto held = load(eval_images, eval_labels, eval_masks, eval_prefix, mask_suffix);
            const auto se = evaluate(net, held, "");
            std::printf("held-out set (%zu, reporting only): Dice segmentor vs pseudo-labels %.4f", held.size(), se.seg_vs_label);
            if (!eval_masks.empty())
                std::printf("; vs expert: (a) pseudo-label %.4f, (b) segmentor %.4f, (c) G>0.5 %.4f", se.label_vs_expert,
                            se.seg_vs_expert, se.mixed_vs_expert);
            std::printf("\n");
        }
        return 0;
    }, 1);
}
