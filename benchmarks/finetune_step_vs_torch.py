#!/usr/bin/python3
"""One fine-tuning step of the segmentation model (issue 17): vasomim's cpu backend
(build/benchmarks/finetune_step_benchmark) and PyTorch timed side by side in one run, interleaved
repetition by repetition so that both see the same load.

Workload: ViT-B/16 (768 wide, 12 blocks, 12 heads) on every patch, batch 8, 3 x 224 x 224, with
  unetr   MONAI's UNETR decoder in 2-D (feature size 16, instance norm without affine), the
          restatement of tools/make_unetr_fixtures.py (float64 there, float32 here);
  linear  the per-patch linear head of tools/make_segmentation_fixtures.py (the reference).
One step, both sides: forward (drop path off), BCE + Dice (0.5 BCEWithLogits + 0.5 (1 - mean
per-image Dice), the fixtures' bce_dice), backward, AdamW (betas 0.9 / 0.999, weight decay 0.05
on weights only) over MAE's param_groups_lrd with layer decay 0.75. Random images and ~20 %
foreground masks (the data do not change the work). Each side warms up with one untimed step.
Both sides run on --threads threads (default: the CPUs of this process): torch.set_num_threads and
the library's OMP_NUM_THREADS.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 benchmarks/finetune_step_vs_torch.py --build build/hE
      [--reps 5] [--batch 8] [--size 224] [--depth 12] [--threads N] [--decoders unetr,linear]
Prints every repetition with the load average, then medians, images/s and the ratio torch time /
vasomim time (> 1: vasomim is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from make_segmentation_fixtures import SegmentationViT, bce_dice, mae_init, param_groups_lrd  # noqa: E402
from make_unetr_fixtures import SegmentationUNETR  # noqa: E402

BENCH = {"unetr": "BM_finetune_step_unetr", "linear": "BM_finetune_step_linear"}


def torch_model(decoder, size, depth):
    torch.manual_seed(0)
    kw = dict(img_size=size, patch_size=16, in_chans=3, embed_dim=768, depth=depth, num_heads=12)
    model = SegmentationUNETR(feature_size=16, **kw) if decoder == "unetr" else SegmentationViT(**kw)
    with torch.no_grad():
        mae_init(model)  # the encoder as the C++ side; the step's cost does not depend on the values
    model.train()
    opt = torch.optim.AdamW(param_groups_lrd(model, 0.05, 0.75), lr=1e-3, betas=(0.9, 0.999))
    return model, opt


def torch_step(model, opt, imgs, masks):
    opt.zero_grad()
    loss = bce_dice(model(imgs), masks)
    loss.backward()
    opt.step()
    return loss.item()


def vasomim_times(binary, env, decoders):
    flt = "|".join(BENCH[d] for d in decoders)
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_min_time=0.01",
                          f"--benchmark_filter={flt}"], check=True, capture_output=True, text=True, env=env).stdout
    res = {b["name"].split("/")[0]: b["real_time"] / 1e3 for b in json.loads(out)["benchmarks"]}  # ms -> s
    return {d: res[BENCH[d]] for d in decoders}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--decoders", default="unetr,linear")
    a = ap.parse_args()
    decoders = [d for d in a.decoders.split(",") if d]
    for d in decoders:
        if d not in BENCH:
            ap.error(f"unknown decoder {d!r} (unetr, linear)")

    torch.set_num_threads(a.threads)
    print(f"vasomim threads {a.threads} (OMP_NUM_THREADS); torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")

    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(a.batch, 3, a.size, a.size, generator=g)
    masks = (torch.rand(a.batch, 1, a.size, a.size, generator=g) < 0.2).float()
    models = {d: torch_model(d, a.size, a.depth) for d in decoders}
    for d in decoders:
        torch_step(*models[d], imgs, masks)  # warm-up

    binary = os.path.join(a.build, "benchmarks", "finetune_step_benchmark")
    env = dict(os.environ, VASOMIM_FT_BATCH=str(a.batch), VASOMIM_FT_SIZE=str(a.size),
               VASOMIM_FT_DEPTH=str(a.depth), OMP_NUM_THREADS=str(a.threads))
    ours = {d: [] for d in decoders}
    theirs = {d: [] for d in decoders}
    loads = []
    for r in range(a.reps):
        res = vasomim_times(binary, env, decoders)
        for d in decoders:
            ours[d].append(res[d])
            t0 = time.perf_counter()
            torch_step(*models[d], imgs, masks)
            theirs[d].append(time.perf_counter() - t0)
        loads.append(os.getloadavg()[0])
        print(f"  rep {r}: " + " | ".join(f"{d}: vasomim {ours[d][-1]:.2f} s, torch {theirs[d][-1]:.2f} s"
                                          for d in decoders) + f" | load {loads[-1]:.2f}", flush=True)

    n = a.batch
    print(f"\nOne fine-tuning step, ViT-B/16 depth {a.depth}, batch {n}, 3 x {a.size} x {a.size} "
          f"(medians of {a.reps}); load average {min(loads):.2f} .. {max(loads):.2f}")
    print(f"{'':16}{'vasomim s':>11}{'torch s':>10}{'vasomim img/s':>15}{'torch img/s':>13}{'ratio':>8}")
    for d in decoders:
        o, t = statistics.median(ours[d]), statistics.median(theirs[d])
        print(f"{d + ' step':16}{o:11.2f}{t:10.2f}{n / o:15.2f}{n / t:13.2f}{t / o:8.2f}")
    print("ratio = torch seconds / vasomim seconds (> 1: vasomim is faster)")


if __name__ == "__main__":
    main()
