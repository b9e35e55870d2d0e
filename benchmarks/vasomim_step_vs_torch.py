#!/usr/bin/python3
"""One VasoMIM pre-training step (and the MAE baseline step) in images/s: vasomim's cpu backend
(build/benchmarks/vasomim_step_benchmark) and PyTorch (Debian python3-torch on OpenBLAS, all cores)
timed side by side in one run, interleaved repetition by repetition so both see the same load.

Workload (issue 7): MAE ViT-B/16 (512 x 8 decoder, 16 heads), batch 8, 224 x 224, norm-pix, mask
ratio 0.5 and beta_e 0.5 (the released base preset at the end of its 0 -> 0.5 schedule), AdamW
(betas 0.9 / 0.95, weight decay 0.05 on weights only). One VasoMIM step, both sides:
  S(I) with the frozen UNeXt-S (eval mode, no grad), G = 0.5 B + 0.5 sigmoid(S(I)),
  anatomy-guided masking of G (the released guided_masking, restated in masking_vs_torch.py),
  encoder + decoder, L_rec, I_hat from the de-normalised prediction, L_cons =
  BCEWithLogits(S(gray(I_hat)), sigmoid(S(gray(I)))), backward of L_rec + L_cons, AdamW step.
The MAE step: random masking (argsort of uniform noise), L_rec, backward, AdamW step.
The PyTorch models are the restatements of tools/make_mae_fixtures.py and make_unext_fixtures.py,
the step that of tools/make_vasomim_step_fixture.py (imported, not copied), here in float32.
The segmentor's parameters do not require grad, so the consistency gradient flows through S into
I_hat only (as released: S is frozen). Torch 1.13's float32 backward of UNeXt-S *parameters* was
unusable for the parity fixtures (make_unext_fixtures.py); this script checks the float32 input
gradient it times against float64 on one image and prints the relative difference.
Each side warms up with one untimed step. Images: synthetic angiograms on the vasomim side,
the fixture script's vessel caricatures on the PyTorch side (same sizes; the data do not change
the work except the guided sampling, a few ms).

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 benchmarks/vasomim_step_vs_torch.py [--build build/rel]
      [--reps 3] [--batch 8] [--mask-ratio 0.5] [--preset base] [--threads N]
Prints medians, images/s and the ratio vasomim / torch in images/s (> 1: vasomim is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import make_mae_fixtures as mae_ref  # noqa: E402
import make_unext_fixtures as unext_ref  # noqa: E402
from make_vasomim_step_fixture import vessel_images  # noqa: E402
from masking_vs_torch import released_guided_masking  # noqa: E402

ENCODERS = {"tiny": dict(embed_dim=192, depth=12, num_heads=3), "small": dict(embed_dim=384, depth=12, num_heads=6),
            **{k: v for k, v in mae_ref.presets().items() if k != "huge"}}
SIZE, PATCH, BETA = 224, 16, 0.5


def blas_library():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return ", ".join(sorted(libs)) or "unknown"


def adamw(model):
    dec, nodec = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (dec if mae_ref.decays(name, p) else nodec).append(p)
    return torch.optim.AdamW([{"params": nodec, "weight_decay": 0.0}, {"params": dec, "weight_decay": 0.05}],
                             lr=1.5e-4, betas=(0.9, 0.95))


def frozen_segmentor(dtype=torch.float32):
    seg = unext_ref.UNextS(in_channels=3).to(dtype)  # the released 3-channel segmentor
    unext_ref.set_params(seg)  # the fixture's closed-form weights and running statistics
    seg.eval()
    for p in seg.parameters():
        p.requires_grad_(False)
    return seg


def consistency(seg, imgs, pred, logits):
    """L_cons of make_vasomim_step_fixture.py: BCEWithLogits(S(I_hat), sigmoid(S(I))), S on 3 channels."""
    target = unext_ref.patchify(imgs, PATCH)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)  # unbiased, as MAE's norm_pix_loss
    img_hat = unext_ref.unpatchify(pred * (var + 1e-6) ** 0.5 + mean, PATCH, 3)
    return F.binary_cross_entropy_with_logits(seg(img_hat), torch.sigmoid(logits))


def vasomim_step(mae, seg, opt, imgs, labels, mask_ratio):
    opt.zero_grad()
    with torch.no_grad():
        logits = seg(imgs)
        guidance = 0.5 * labels + 0.5 * torch.sigmoid(logits[:, 0])
    ids_keep, mask, ids_restore = released_guided_masking(guidance.unsqueeze(1), PATCH, mask_ratio, BETA)
    pred = mae.forward_decoder(mae.forward_encoder(imgs, ids_keep), ids_restore)
    loss = mae.forward_loss(imgs, pred, mask) + consistency(seg, imgs, pred, logits)
    loss.backward()
    opt.step()
    return loss.item()


def mae_step(mae, opt, imgs, mask_ratio):
    opt.zero_grad()
    n, L = imgs.shape[0], (SIZE // PATCH) ** 2
    loss = mae(imgs, torch.argsort(torch.rand(n, L), dim=1), int(L * (1 - mask_ratio)))[0]
    loss.backward()
    opt.step()
    return loss.item()


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def check_float32_cons_gradient():
    """dL_cons/dpred through S in float32 against float64 (one 224 x 224 image): the path timed here."""
    torch.manual_seed(1)
    imgs = torch.randn(1, 3, SIZE, SIZE)
    pred = torch.randn(1, (SIZE // PATCH) ** 2, PATCH * PATCH * 3)
    grads = []
    for dtype in (torch.float32, torch.float64):
        seg = frozen_segmentor(dtype)
        x, p = imgs.to(dtype), pred.to(dtype).detach().clone().requires_grad_(True)
        with torch.no_grad():
            logits = seg(x)
        consistency(seg, x, p, logits).backward()
        grads.append(p.grad.double())
    g32, g64 = grads
    return bool(torch.isfinite(g32).all()), ((g32 - g64).norm() / g64.norm()).item()


def vasomim_times(binary, env):
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_min_time=0.01"], check=True,
                         capture_output=True, text=True, env=env).stdout
    return {b["name"].split("/")[0]: b["real_time"] / 1e3 for b in json.loads(out)["benchmarks"]}  # ms -> s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--mask-ratio", type=float, default=0.5)
    ap.add_argument("--preset", default="base", choices=sorted(ENCODERS))
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"vasomim threads {args.threads} (OMP_NUM_THREADS); torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, BLAS: {blas_library()}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    finite, rel = check_float32_cons_gradient()
    print(f"float32 dL_cons/dpred through UNeXt-S vs float64: finite {finite}, relative difference {rel:.1e}")

    torch.manual_seed(0)
    kw = dict(norm_pix_loss=True, **ENCODERS[args.preset])
    mae_v, mae_m = mae_ref.MaskedAutoencoderViT(**kw), mae_ref.MaskedAutoencoderViT(**kw)
    opt_v, opt_m = adamw(mae_v), adamw(mae_m)
    seg = frozen_segmentor()
    imgs_np, labels_np = vessel_images(args.batch, SIZE, np.random.default_rng(7))
    imgs, labels = torch.from_numpy(imgs_np), torch.from_numpy(labels_np)
    step_v = lambda: vasomim_step(mae_v, seg, opt_v, imgs, labels, args.mask_ratio)  # noqa: E731
    step_m = lambda: mae_step(mae_m, opt_m, imgs, args.mask_ratio)  # noqa: E731
    step_v()  # warm-up
    step_m()

    binary = os.path.join(args.build, "benchmarks", "vasomim_step_benchmark")
    env = dict(os.environ, VASOMIM_STEP_PRESET=args.preset, VASOMIM_STEP_BATCH=str(args.batch),
               VASOMIM_STEP_MASK_RATIO=str(args.mask_ratio), OMP_NUM_THREADS=str(args.threads))
    ours = {"vasomim": [], "mae": []}
    theirs = {"vasomim": [], "mae": []}
    loads = []
    for r in range(args.reps):
        res = vasomim_times(binary, env)
        ours["vasomim"].append(res["BM_vasomim_step"])
        ours["mae"].append(res["BM_mae_step"])
        theirs["vasomim"].append(timed(step_v))
        theirs["mae"].append(timed(step_m))
        loads.append(os.getloadavg()[0])
        print(f"  rep {r}: vasomim cpu backend: VasoMIM {ours['vasomim'][-1]:.2f} s, MAE {ours['mae'][-1]:.2f} s | "
              f"torch: VasoMIM {theirs['vasomim'][-1]:.2f} s, MAE {theirs['mae'][-1]:.2f} s | load {loads[-1]:.2f}")

    n = args.batch
    print(f"\nOne training step, MAE ViT-{args.preset}/16, batch {n}, {SIZE} x {SIZE}, mask ratio {args.mask_ratio}, "
          f"beta {BETA} (medians of {args.reps}); load average {min(loads):.2f} .. {max(loads):.2f}")
    print(f"{'':20}{'vasomim s':>11}{'torch s':>10}{'vasomim img/s':>15}{'torch img/s':>13}{'ratio':>8}")
    for key, name in (("vasomim", "VasoMIM step"), ("mae", "MAE step")):
        o, t = statistics.median(ours[key]), statistics.median(theirs[key])
        print(f"{name:20}{o:11.2f}{t:10.2f}{n / o:15.2f}{n / t:13.2f}{t / o:8.2f}")
    print("ratio = vasomim images/s / torch images/s (> 1: vasomim is faster)")


if __name__ == "__main__":
    main()
