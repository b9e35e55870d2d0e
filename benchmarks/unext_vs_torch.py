#!/usr/bin/python3
"""UNeXt-S forward and forward+backward, vasomim (cpu backend) vs PyTorch, side by side in one run.

Usage: benchmarks/unext_vs_torch.py [BUILD_DIR] [--batch 8] [--size 224] [--reps 5] [--threads N]
Both sides time the 3-channel segmentor as released and as VasoMIM's co-guidance uses it
(nn::unext_config{3, 1}; tools/make_unext_fixtures.py's restatement with in_channels=3), in float32,
on the same number of threads: --threads (default os.cpu_count()) is torch.set_num_threads() and the
library's OMP_NUM_THREADS. Forward in eval mode under no_grad, forward+backward in training mode.
Prints both thread counts, the median of each and the ratio torch / vasomim (> 1: vasomim is
faster). Install libopenblas0-pthread first (DESIGN 5), or torch runs on the reference BLAS.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_unext_fixtures import UNextS  # noqa: E402


IN_CHANNELS = 3  # the released segmentor; the C++ side times nn::unext_config{3, 1}


def torch_times(batch, size, reps):
    torch.manual_seed(0)
    model = UNextS(in_channels=IN_CHANNELS)
    x = torch.randn(batch, IN_CHANNELS, size, size)
    out = {}
    model.eval()
    with torch.no_grad():
        model(x)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            ts.append(time.perf_counter() - t0)
    out["forward"] = statistics.median(ts)
    model.train()
    ts = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        model.zero_grad()
        xx = x.clone().requires_grad_(True)
        model(xx).sum().backward()
        if i:
            ts.append(time.perf_counter() - t0)
    out["forward_backward"] = statistics.median(ts)
    return out


def vasomim_times(build, batch, size, reps, threads):
    exe = os.path.join(build, "benchmarks", "unext_benchmark")
    env = dict(os.environ, VASOMIM_UNEXT_BATCH=str(batch), VASOMIM_UNEXT_SIZE=str(size),
               OMP_NUM_THREADS=str(threads))
    res = subprocess.run([exe, f"--benchmark_repetitions={reps}", "--benchmark_min_time=0.01",
                          "--benchmark_format=json", "--benchmark_report_aggregates_only=true"],
                         env=env, check=True, capture_output=True, text=True)
    data = json.loads(res.stdout)
    out = {}
    for b in data["benchmarks"]:
        # with --reps 1 Google Benchmark reports the one run and no aggregates
        if b.get("aggregate_name") == "median" or (reps == 1 and b.get("run_type") == "iteration"):
            key = "forward_backward" if "forward_backward" in b["run_name"] else "forward"
            out[key] = b["real_time"] / 1e3  # ms -> s
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads of both sides: torch.set_num_threads and the library's OMP_NUM_THREADS")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    v = vasomim_times(a.build, a.batch, a.size, a.reps, a.threads)
    t = torch_times(a.batch, a.size, a.reps)
    print(f"UNeXt-S batch {a.batch} x {IN_CHANNELS} x {a.size} x {a.size}, medians of {a.reps}; "
          f"vasomim threads {a.threads} (OMP_NUM_THREADS), torch threads {torch.get_num_threads()}")
    print(f"{'':18s}{'vasomim [s]':>12s}{'torch [s]':>12s}{'torch/vasomim':>15s}")
    for k in ("forward", "forward_backward"):
        print(f"{k:18s}{v[k]:12.3f}{t[k]:12.3f}{t[k] / v[k]:15.2f}")


if __name__ == "__main__":
    main()
