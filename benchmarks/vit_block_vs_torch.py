#!/usr/bin/python3
"""ViT-B/16 block (batch 8, 197 tokens, width 768, 12 heads) forward and forward+backward: vasomim's
cpu backend (build/benchmarks/vit_block_benchmark) and PyTorch (Debian python3-torch on OpenBLAS,
all cores) timed side by side in one run, interleaved repetition by repetition so both see the same
machine load. Prints medians, the throughput ratio (PyTorch time / vasomim time; > 1 means vasomim
is faster), GFLOP/s and the fraction of the machine's sgemm peak (torch.mm 2048^3 on OpenBLAS).
Then the peak resident memory of one MAE-B/16 training step at batch 8 (forward, backward, AdamW)
in vasomim (build/benchmarks/mae_step_memory) and in PyTorch, each in a fresh process.

  /usr/bin/python3 benchmarks/vit_block_vs_torch.py [--build build] [--reps 7] [--no-memory]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from make_mae_fixtures import Block, MaskedAutoencoderViT, decays  # noqa: E402

N, T, C, H = 8, 197, 768, 12
FWD_FLOP = 2 * N * T * C * (3 * C + C + 4 * C + 4 * C) + 4 * N * T * T * C  # GEMM flops of one forward


def blas_library():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return ", ".join(sorted(libs)) or "unknown"


def sgemm_peak(reps=5):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2 * 2048 ** 3 / statistics.median(ts) / 1e9


def torch_block_times(block, x, iters):
    with torch.no_grad():
        t = time.perf_counter()
        for _ in range(iters):
            block(x)
        fwd = (time.perf_counter() - t) / iters
    xg = x.clone().requires_grad_(True)
    t = time.perf_counter()
    for _ in range(iters):
        block(xg).sum().backward()
    return fwd, (time.perf_counter() - t) / iters


def vasomim_block_times(binary, min_time, key="real_time", env=None):
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                         check=True, capture_output=True, text=True, env=env).stdout
    res = {b["name"].split("/")[0]: b[key] / 1e3 for b in json.loads(out)["benchmarks"]}  # ms -> s
    return res["BM_vit_block_forward"], res["BM_vit_block_forward_backward"]


def torch_block_cpu_times(block, x, iters):
    """Single-thread process CPU time: the work each side does, robust to other load on the machine."""
    with torch.no_grad():
        t = time.process_time()
        for _ in range(iters):
            block(x)
        fwd = (time.process_time() - t) / iters
    xg = x.clone().requires_grad_(True)
    t = time.process_time()
    for _ in range(iters):
        block(xg).sum().backward()
    return fwd, (time.process_time() - t) / iters


TORCH_STEP = r"""
import resource, sys, time, torch
sys.path.insert(0, {tools!r})
from make_mae_fixtures import MaskedAutoencoderViT, decays
torch.set_num_threads({threads})
torch.manual_seed(0)
m = MaskedAutoencoderViT(embed_dim=768, depth=12, num_heads=12, norm_pix_loss=True)
dec, nodec = [], []
for name, p in m.named_parameters():
    if p.requires_grad:
        (dec if decays(name, p) else nodec).append(p)
opt = torch.optim.AdamW([{{"params": nodec, "weight_decay": 0.0}}, {{"params": dec, "weight_decay": 0.05}}],
                        lr=1.5e-4, betas=(0.9, 0.95))
imgs = torch.randn({batch}, 3, 224, 224)
ids = torch.argsort(torch.rand({batch}, 196), dim=1)
t = time.perf_counter()
opt.zero_grad()
loss = m(imgs, ids, 49)[0]
loss.backward()
opt.step()
print("loss=%.6f step_s=%.3f peak_rss_kb=%d" % (loss.item(), time.perf_counter() - t,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"vasomim threads {args.threads} (OMP_NUM_THREADS); torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, BLAS: {blas_library()}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    block = Block(C, H)
    x = torch.randn(N, T, C)
    torch_block_times(block, x, 1)  # warm-up
    binary = os.path.join(args.build, "benchmarks", "vit_block_benchmark")
    ours_f, ours_fb, th_f, th_fb, peaks = [], [], [], [], []
    for r in range(args.reps):
        f, fb = vasomim_block_times(binary, 0.5, env=env)
        ours_f.append(f)
        ours_fb.append(fb)
        f, fb = torch_block_times(block, x, 2)
        th_f.append(f)
        th_fb.append(fb)
        peaks.append(sgemm_peak(3))
        print(f"  rep {r}: vasomim fwd {ours_f[-1]*1e3:.1f} ms, f+b {ours_fb[-1]*1e3:.1f} ms | "
              f"torch fwd {th_f[-1]*1e3:.1f} ms, f+b {th_fb[-1]*1e3:.1f} ms | sgemm {peaks[-1]:.0f} GFLOP/s")
    peak = statistics.median(peaks)
    print(f"\nViT-B/16 block, batch {N}, {T} tokens (medians of {args.reps}); sgemm peak {peak:.1f} GFLOP/s")
    print(f"{'':22}{'vasomim ms':>12}{'torch ms':>12}{'ratio':>8}{'vasomim GF/s':>14}{'torch GF/s':>12}{'% peak':>8}")
    for name, ours, th, flop in (("forward", ours_f, th_f, FWD_FLOP), ("forward+backward", ours_fb, th_fb, 3 * FWD_FLOP)):
        o, t = statistics.median(ours), statistics.median(th)
        print(f"{name:22}{o*1e3:12.1f}{t*1e3:12.1f}{t/o:8.2f}{flop/o/1e9:14.1f}{flop/t/1e9:12.1f}"
              f"{100*flop/o/1e9/peak:7.0f}%")

    # One thread each, CPU time (a shared, loaded machine distorts wall time; CPU time does not).
    torch.set_num_threads(1)
    env1 = dict(os.environ, OMP_NUM_THREADS="1")
    o1, t1 = [], []
    for r in range(max(3, args.reps // 2)):
        o1.append(vasomim_block_times(binary, 0.5, "cpu_time", env1))
        t1.append(torch_block_cpu_times(block, x, 2))
    torch.set_num_threads(args.threads)
    print(f"\nOne thread each, CPU time (medians of {len(o1)}):")
    for k, name in enumerate(("forward", "forward+backward")):
        o, t = statistics.median(v[k] for v in o1), statistics.median(v[k] for v in t1)
        flop = FWD_FLOP * (1 if k == 0 else 3)
        print(f"{name:22}{o*1e3:12.1f}{t*1e3:12.1f}{t/o:8.2f}{flop/o/1e9:14.1f}{flop/t/1e9:12.1f}")

    if args.no_memory:
        return
    print("\nOne MAE-B/16 training step, batch 8 (forward, backward, AdamW), fresh process each:")
    ours = subprocess.run([os.path.join(args.build, "benchmarks", "mae_step_memory"), "base", "8"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()
    code = TORCH_STEP.format(tools=os.path.join(HERE, "..", "tools"), threads=args.threads, batch=8)
    theirs = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    print("  vasomim:", ours)
    print("  torch:  ", theirs)
    kb = lambda s: int(s.split("peak_rss_kb=")[1].split()[0])
    print(f"  peak RSS: vasomim {kb(ours)/1024:.0f} MiB, torch {kb(theirs)/1024:.0f} MiB, "
          f"ratio {kb(ours)/kb(theirs):.2f}")


if __name__ == "__main__":
    main()
