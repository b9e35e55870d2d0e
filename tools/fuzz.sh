#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with Debian's clang (-fsanitize=fuzzer,address,undefined)
# and runs each for a fixed budget on its seed corpus tests/data/fuzz/<target>/ (new inputs go to
# build/fuzz/corpus/<target>, the committed seeds are only read). Fails on the first crash, sanitizer
# report, uncaught exception other than vasomim's own errors, hang (-timeout) or allocation beyond
# -rss_limit_mb / -malloc_limit_mb; the input is left in build/fuzz/artifacts/<target>/.
# Usage: tools/fuzz.sh [seconds-per-target] [target ...]   (default 25 s, every target)
#        FUZZ_JOBS=N (parallel builds, default nproc), FUZZ_RSS_MB (default 2048),
#        FUZZ_SEED=N and FUZZ_RUNS=N: libFuzzer's -seed / -runs from a fresh corpus, so that runs
#        mostly repeat the same inputs (CI; coverage still differs a little between runs); without
#        them each run explores anew and keeps its corpus in build/fuzz/corpus for the next.
# Reproduce a finding: build/fuzz/<target> build/fuzz/artifacts/<target>/crash-...
# A fixed finding's input belongs in tests/data/fuzz/<target>/ as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-25}
shift || true
all=(png_decode image npy safetensors checkpoint folder_dataset dicom jpeg_lossless)
targets=("${@:-${all[@]}}")
out=build/fuzz
mkdir -p "$out"
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (bash tools/install-deps.sh)"; exit 1; }

flags=(-std=gnu++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -DEIGEN_DONT_PARALLELIZE -I"$root/include" -I"$root/tests/fuzz"
       -isystem /usr/include/eigen3 -Wall -Wextra -Wno-unknown-pragmas)
build_one() {
  local t=$1 src="tests/fuzz/$1_fuzz.cpp" bin="$out/$1"
  # Rebuilt when the target, the shared header or any library header is newer than the binary.
  if [[ -x $bin && -z $(find "$src" tests/fuzz/fuzz_common.hpp include -newer "$bin" -print -quit) ]]; then
    return 0
  fi
  local libs=(-lisal -lstb) defs=()
  # stb_image is compiled into the targets that reach it, so that the sanitizers see inside it too.
  if grep -q STB_IMAGE_IMPLEMENTATION "$src"; then libs=(-lisal); fi
  # DCMTK from Debian's shared libraries (the libraries vasomim::vasomim links for DICOM).
  if [[ $1 == dicom ]]; then
    defs=(-DVASOMIM_HAS_DICOM=1)
    libs+=(-ldcmjpls -ldcmjpeg -ldcmimage -ldcmimgle -ldcmdata -loflog -lofstd -lijg8 -lijg12 -lijg16)
  fi
  "$cxx" "${flags[@]}" ${defs[@]+"${defs[@]}"} "$src" -o "$bin.tmp" "${libs[@]}" && mv "$bin.tmp" "$bin"
}
export -f build_one
export out cxx root
export flags_str="${flags[*]}"

start=$(date +%s)
printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_JOBS:-$(nproc)}" -I{} bash -c \
  'IFS=" " read -r -a flags <<<"$flags_str"; build_one "$1" || { echo "fuzz.sh: building $1 failed"; exit 255; }' _ {}
echo "fuzz.sh: built ${#targets[@]} targets in $(( $(date +%s) - start )) s"

status=0
summary=()
extra=()
[[ -n ${FUZZ_SEED:-} ]] && extra+=(-seed="$FUZZ_SEED")
[[ -n ${FUZZ_RUNS:-} ]] && extra+=(-runs="$FUZZ_RUNS")
for t in "${targets[@]}"; do
  # a repeatable run starts from the committed seeds alone
  [[ -n ${FUZZ_SEED:-} ]] && rm -rf "$out/corpus/$t"
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  log="$out/$t.log"
  seeds="tests/data/fuzz/$t"
  [[ $t == dicom ]] && seeds=tests/data/dicom  # the DICOM fixtures are its seeds (and its regressions)
  [[ $t == jpeg_lossless ]] && seeds=tests/data/jpeg_lossless  # the decoder's test streams
  [[ -d $seeds ]] || { echo "fuzz.sh: no seed corpus $seeds"; exit 1; }
  echo "==== fuzzing $t for ${seconds} s"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$out/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
       -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" ${extra[@]+"${extra[@]}"} \
       "$out/corpus/$t" "$seeds" >"$log" 2>&1; then
    line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    summary+=("$t: $execs runs, $(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$line" | tail -1), corpus $(ls "$out/corpus/$t" | wc -l) files")
  else
    status=1
    echo "fuzz.sh: $t FAILED; the end of $log:"
    tail -40 "$log"
    summary+=("$t: FAILED (artifacts in $out/artifacts/$t/)")
  fi
done
echo
echo "fuzz.sh summary (${seconds} s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
