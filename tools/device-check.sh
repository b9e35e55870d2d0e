#!/usr/bin/env bash
# The GPU check (issue 18): on a machine with an NVIDIA GPU and nvcc, builds the CUDA tests and the
# CUDA-built programs for sm_90, runs the CUDA test suite, vasomim-backends, a short
# vasomim-pretrain on the GPU backend, the pre-training step on the GPU (ViT-B/16, images/s from
# vasomim-pretrain's log) and a one-rank NCCL gradient average (dist_allreduce_benchmark_cuda under
# mpirun), and writes a short report. Meant to take under 8 minutes on one H100 with 16 cores; every
# step has its own time limit and a failed step does not stop the others.
#   bash tools/device-check.sh [REPORT]      (default build/device/report.md; exit status 1 if a step failed)
# Environment: DEVICE_CHECK_ARCH (default 90), JOBS (default nproc).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=build/device
report=${1:-$out/report.md}
arch=${DEVICE_CHECK_ARCH:-90}
jobs=${JOBS:-$(nproc)}
mkdir -p "$out" "$(dirname "$report")"
rm -f "$out/notes.md"
# mpirun as root (containers) and with more ranks than cores, without flags on every line.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
t0=$(date +%s)
failed=0

{
  echo "# vasomim device check"
  echo
  echo "- date: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'none found')"
  echo "- nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo 'not found'), sm_$arch, $jobs jobs"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
} > "$report"

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND with a time limit, its output in $out/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local s rc result
  s=$(date +%s)
  printf '\n==== %s (limit %ss)\n' "$name" "$limit"
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  case $rc in
    0) result=pass ;;
    124 | 137) result="TIMEOUT after ${limit}s"; failed=1 ;;
    *) result="FAIL (status $rc)"; failed=1 ;;
  esac
  tail -n 15 "$out/$name.log"
  echo "| $name | $result | $(($(date +%s) - s)) |" >>"$report"
  return $rc
}

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "| gpu | FAIL (no GPU visible: nvidia-smi -L) | 0 |" >>"$report"
  cat "$report"
  exit 1
fi

# 1. Builds: the CUDA test suite and the NCCL benchmark (one tree), the programs with
#    default_backend = thrust_cuda (another tree).
configure_suite() {
  cmake -S . -B "$out/suite" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_ENABLE_CUDA=ON \
    -DVASOMIM_CUDA_ARCHITECTURES="$arch" -DVASOMIM_BUILD_EXAMPLES=OFF -DVASOMIM_WERROR=ON &&
    cmake --build "$out/suite" -j "$jobs" --target vasomim_tests_cuda dist_allreduce_benchmark_cuda
}
configure_programs() {
  cmake -S . -B "$out/programs" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_BACKEND=cuda \
    -DVASOMIM_CUDA_ARCHITECTURES="$arch" -DVASOMIM_BUILD_TESTS=OFF -DVASOMIM_BUILD_BENCHMARKS=OFF -DVASOMIM_WERROR=ON &&
    cmake --build "$out/programs" -j "$jobs" --target vasomim-pretrain vasomim-backends
}
export -f configure_suite configure_programs
export out arch jobs
step build-programs 240 bash -c configure_programs
step build-cuda-tests 300 bash -c configure_suite

# 2. Runs.
tests=$out/suite/tests/vasomim_tests_cuda
programs=$out/programs/examples
[[ -x $tests ]] && step cuda-tests 120 "$tests" --gtest_brief=1
[[ -x $programs/vasomim-backends/vasomim-backends ]] && step vasomim-backends 60 "$programs/vasomim-backends/vasomim-backends"
pretrain=$programs/vasomim-pretrain/vasomim-pretrain
if [[ -x $pretrain ]]; then
  rm -rf "$out/pretrain-tiny" "$out/pretrain-base"
  step pretrain-tiny 120 "$pretrain" --method vasomim --preset tiny --segmentor-iterations 100 --max-steps 40 \
    --synthetic-images 256 --output "$out/pretrain-tiny"
  # The step on the GPU: VasoMIM ViT-B/16 at 224 px, batch 32 (images/s of the last steps).
  step step-vit-b16 150 "$pretrain" --method vasomim --preset base --batch-size 32 --synthetic-images 256 \
    --segmentor-iterations 20 --max-steps 8 --checkpoint-every 1000 --panel-every 1000 --output "$out/pretrain-base"
  if [[ -f $out/pretrain-base/log.csv ]]; then
    rate=$(tail -n 4 "$out/pretrain-base/log.csv" | awk -F, '{s += $7; n++} END {if (n) printf "%.1f", s / n}')
    echo "- VasoMIM ViT-B/16 step, batch 32, 224 px: ${rate:-?} images/s (mean of the last 4 of 8 steps)" >>"$out/notes.md"
  fi
fi
bench=$out/suite/benchmarks/dist_allreduce_benchmark_cuda
if [[ -x $bench ]]; then
  step nccl-one-rank 90 mpirun -np 1 "$bench" 112000000 5
  grep -E "gradient_averager|MPI_Allreduce|sums" "$out/nccl-one-rank.log" | sed 's/^/- /' >>"$out/notes.md"
fi

{
  echo
  echo "Total: $(($(date +%s) - t0)) s. Logs: $out/*.log."
  [[ -f $out/notes.md ]] && { echo; cat "$out/notes.md"; }
} >>"$report"
rm -f "$out/notes.md"
printf '\n'
cat "$report"
exit $failed
