#!/usr/bin/env bash
# Times each backend's 2048^3 float GEMM against OpenBLAS's sgemm in one run (interleaved
# repetitions, medians) and prints the ratio backend / OpenBLAS in throughput.
# Usage: benchmarks/gemm_vs_openblas.sh [build-dir] [repetitions]
set -euo pipefail
build=${1:-build}
reps=${2:-9}
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$build/benchmarks/gemm_benchmark" --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true --benchmark_format=json >"$json"
/usr/bin/python3 - "$json" "$threads" <<'PY'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
times = {}
for r in runs:
    if r.get("run_type") == "iteration":
        times.setdefault(r["run_name"], []).append(r["real_time"])
med = {k: statistics.median(v) for k, v in times.items()}
peer = next((k for k in med if "openblas" in k), None)
print(f"2048 x 2048 x 2048 sgemm, {sys.argv[2]} threads, median of {len(next(iter(times.values())))} interleaved runs")
for name, t in med.items():
    gflops = 2 * 2048**3 / (t * 1e-3) / 1e9
    ratio = f"  {med[peer] / t:5.2f}x OpenBLAS" if peer and name != peer else ""
    print(f"  {name:40s} {t:8.1f} ms  {gflops:6.1f} GFLOP/s{ratio}")
PY
