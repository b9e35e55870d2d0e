#!/usr/bin/env bash
# Load test of the batch pseudo-label program (issue 19): vasomim-vesselness --pseudo-label over
# COUNT files of which 5 % are damaged (truncated, empty, random bytes, a PNG with a broken
# chunk CRC, a header that lies about its size). Checks that every good file is written, every bad
# one reported and nothing else, and prints the peak resident memory (GNU time's maximum RSS) of a
# run over 1,000 files and over COUNT, which must stay flat.
# Usage: tools/load_test.sh BUILD_DIR [COUNT] [SIZE]   (defaults 20000 files of 128 x 128)
set -euo pipefail
prog=$(realpath "$1")/examples/vasomim-vesselness/vasomim-vesselness
count=${2:-20000}
size=${3:-128}
[[ -x $prog ]] || { echo "load_test.sh: no $prog (build the examples first)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 8 distinct good images (coronary80-like: synthetic angiograms of the library) and 5 kinds of damage.
/usr/bin/python3 - "$work" "$size" <<'PY'
import os, struct, sys, zlib
import numpy as np
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(19)
yy, xx = np.mgrid[0:n, 0:n]
for k in range(8):
    img = 200 - 30 * rng.random((n, n))
    for _ in range(3):  # dark sinuous vessels
        c = rng.uniform(0.2, 0.8) * n + rng.uniform(5, 15) * np.sin(xx / rng.uniform(8, 20))
        img -= 90 * np.exp(-((yy - c) ** 2) / rng.uniform(2, 8))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(out, "good%d.png" % k))
good = open(os.path.join(out, "good0.png"), "rb").read()
bad = {
    "truncated.png": good[: len(good) // 2],
    "empty.png": b"",
    "random.png": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "badcrc.png": good[:30] + bytes([good[30] ^ 0xFF]) + good[31:],  # IHDR's CRC
    "liar.png": good[:16] + struct.pack(">II", 60000, 60000) + good[24:29]
                + struct.pack(">I", zlib.crc32(good[12:16] + struct.pack(">II", 60000, 60000) + good[24:29])) + good[33:],
}
for name, b in bad.items():
    open(os.path.join(out, name), "wb").write(b)
PY

make_set() {  # make_set DIR N: N files, every 20th damaged (the kinds in turn)
  /usr/bin/python3 - "$work" "$1" "$2" <<'PY'
import os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
kinds = ["truncated", "empty", "random", "badcrc", "liar"]
blobs = {name: open(os.path.join(src, name + ".png"), "rb").read() for name in kinds + ["good%d" % k for k in range(8)]}
for i in range(n):
    name = kinds[(i // 20) % 5] if i % 20 == 19 else "good%d" % (i % 8)
    with open(os.path.join(out, "img%06d.png" % i), "wb") as f:
        f.write(blobs[name])
PY
}

run_set() {  # run_set N: prints "N files: written W, failed F, peak RSS R MB, T s"
  local n=$1 dir="$work/in$1" out="$work/out$1" log="$work/log$1"
  make_set "$dir" "$n"
  local rc=0
  /usr/bin/time -f '%M %e' -o "$work/time$n" "$prog" --pseudo-label "$dir" -o "$out" >"$log" 2>&1 || rc=$?
  local bad=$((n / 20)) written failed rss secs
  written=$(ls "$out" | wc -l)
  failed=$(grep -c '^  failed: ' "$log" || true)
  read -r rss secs < <(tail -1 "$work/time$n")  # after "Command exited with non-zero status 1"
  [[ $rc == 1 ]] || { tail "$log"; echo "FAIL: exit code $rc with damaged files (expected 1)"; exit 1; }
  [[ $written == $((n - bad)) ]] || { echo "FAIL: $written outputs for $((n - bad)) good files"; exit 1; }
  [[ $failed == "$bad" ]] || { grep '^  failed' "$log" | head; echo "FAIL: $failed reported for $bad damaged"; exit 1; }
  for ((i = 19; i < n; i += 20)); do
    [[ ! -e $out/$(printf 'img%06d' "$i").png ]] || { echo "FAIL: an output for damaged img$i"; exit 1; }
  done
  printf '%6d files: %6d written, %4d damaged reported, peak RSS %6.1f MB, %6.1f s (%.0f files/s)\n' \
    "$n" "$written" "$failed" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$secs" \
    "$(awk -v n="$n" -v s="$secs" 'BEGIN { print n / (s > 0 ? s : 1) }')"
  rm -rf "$dir" "$out"
}

echo "vasomim-vesselness --pseudo-label, ${size} x ${size} PNGs, every 20th damaged:"
run_set 1000
run_set "$count"
echo "every good file written, every damaged one reported"
