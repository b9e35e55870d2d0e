#!/usr/bin/python3
"""Times vasomim's ridge filters and pseudo-label pipeline against the scipy-based reference
(tools/vesselness_reference.py: scikit-image >= 0.20 semantics on scipy.ndimage, and the released
pipeline with its pure-Python region growing) on the same 512 x 512 image, in one run, and prints
medians and ratios. Then measures the throughput of `vasomim-vesselness --pseudo-label` over a
folder of 512 x 512 PNGs (median of as many whole-program runs).

Usage: benchmarks/vesselness_vs_scipy.py [--build BUILD_DIR] [--reps N] [--images K] [--threads T]
Needs the targets vesselness_benchmark and vasomim-vesselness built in BUILD_DIR (default ./build).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tools"))
import vesselness_reference as ref  # noqa: E402


def median_time(f, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    bench = os.path.join(a.build, "benchmarks", "vesselness_benchmark")
    prog = os.path.join(a.build, "examples", "vasomim-vesselness", "vasomim-vesselness")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))

    with tempfile.TemporaryDirectory() as tmp:
        img = ref.synthetic_vessels(512, 512, seed=1)
        path = os.path.join(tmp, "bench512.png")
        Image.fromarray(img).save(path)

        print(f"reference (numpy {np.__version__}, scipy; 1 thread: scipy.ndimage and the Python region "
              f"growing are serial) on 512 x 512, median of {a.reps} ...", flush=True)
        peer = {
            "frangi, 5 sigmas": median_time(lambda: ref.frangi(img), a.reps),
            "sato, sigmas 1-4": median_time(lambda: ref.sato(img, sigmas=[1, 2, 3, 4]), a.reps),
            "pseudo-label pipeline": median_time(lambda: ref.pseudo_label(img), a.reps),
        }
        print(f"vasomim (vesselness_benchmark, {a.threads} threads), median of {a.reps} ...", flush=True)
        out = subprocess.run([bench, f"--benchmark_repetitions={a.reps}", "--benchmark_format=json",
                              "--benchmark_report_aggregates_only=true"],
                             env=dict(env, VASOMIM_BENCH_IMAGE=path), check=True, capture_output=True, text=True)
        med = {}
        for b in json.loads(out.stdout)["benchmarks"]:
            if b.get("aggregate_name") == "median":
                med[b["run_name"]] = b["real_time"] / 1e3  # ms -> s
        ours = {
            "frangi, 5 sigmas": ("BM_Frangi5Sigmas/0/real_time", "BM_Frangi5Sigmas/1/real_time", 40),
            "sato, sigmas 1-4": ("BM_Sato1to4/0/real_time", "BM_Sato1to4/1/real_time", 40),
            "pseudo-label pipeline": ("BM_PseudoLabel/0/real_time", "BM_PseudoLabel/1/real_time", 100),
        }
        print(f"\n{'':24s}{'reference':>12s}{'vasomim':>12s}{'ratio':>9s}{'fast mode':>12s}{'ratio':>9s}{'goal':>7s}")
        for k, (exact, fast, goal) in ours.items():
            p, e, f = peer[k], med[exact], med[fast]
            print(f"{k:24s}{p * 1e3:10.1f}ms{e * 1e3:10.1f}ms{p / e:8.1f}x{f * 1e3:10.1f}ms{p / f:8.1f}x{goal:6d}x")
        e = med["BM_Frangi5SigmasFloat/0/real_time"]
        print(f"{'frangi, float32 input':24s}{'':12s}{e * 1e3:10.1f}ms")

        # Throughput of the program over a folder (distinct images, PNG in, PNG masks out).
        folder = os.path.join(tmp, "xa")
        os.makedirs(folder)
        for i in range(a.images):
            Image.fromarray(ref.synthetic_vessels(512, 512, seed=100 + i)).save(os.path.join(folder, f"{i:04d}.png"))
        # Whole program runs (start, reading, writing included), median of --reps runs, each into
        # a new output folder as in dataset preparation (replacing existing files costs the file
        # system about 0.1 ms more per file here).
        outdir = os.path.join(tmp, "xa_frangi")
        for extra in ([], ["--fast"]):
            times = []
            for _ in range(a.reps):
                shutil.rmtree(outdir, ignore_errors=True)
                t = time.perf_counter()
                subprocess.run([prog, "--pseudo-label", "--threads", str(a.threads), *extra, "-o", outdir, folder],
                               check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            dt = statistics.median(times)
            print(f"vasomim-vesselness --pseudo-label {' '.join(extra):7s}: {a.images} images of 512 x 512 in "
                  f"{dt:.3f} s (median of {a.reps} runs) = {a.images / dt:.1f} images/s (goal 300)")
        # Sanity: the program's mask of the first image equals the released pipeline's.
        first = np.asarray(Image.open(os.path.join(tmp, "xa_frangi", "0000.png")))
        subprocess.run([prog, "--pseudo-label", "--overwrite", "-o", os.path.join(tmp, "xa_frangi"),
                        os.path.join(folder, "0000.png")], check=True, capture_output=True)
        first = np.asarray(Image.open(os.path.join(tmp, "xa_frangi", "0000.png")))
        expected = ref.pseudo_label(np.asarray(Image.open(os.path.join(folder, "0000.png"))))
        print("program mask of image 0 equals the reference pipeline's:", bool((first == expected).all()))


if __name__ == "__main__":
    main()
