#!/usr/bin/env bash
# The measurements behind vessel::fov_pseudo_label (issue 21): the released pseudo-label pipeline
# and the field-of-view-aware variant, per switch, against the expert masks of coronary80
# training_* (the development split; testing_* is never read here), and the time per 512 x 512
# image of both on one thread.
#   bash tools/fov_pseudo_label_table.sh [VESSELNESS_PROGRAM] [CORONARY80_DIR]
# Defaults: build/ci/examples/vasomim-vesselness/vasomim-vesselness, ../shared/data/coronary80.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
prog="${1:-$here/build/ci/examples/vasomim-vesselness/vasomim-vesselness}"
data="${2:-${VASOMIM_CORONARY80:-$here/../shared/data/coronary80}}"
[ -x "$prog" ] || { echo "no program at $prog (build the target vasomim-vesselness)"; exit 2; }
[ -d "$data/images" ] || { echo "coronary80 not found at $data (set VASOMIM_CORONARY80)"; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
images=("$data"/images/training_*.png)

row() {  # name, options...
    local name="$1"; shift
    "$prog" --pseudo-label "$@" --overwrite --threads 2 --expert "$data/masks" -o "$tmp/out" "${images[@]}" \
        >"$tmp/scores.csv" 2>"$tmp/log"
    local fb; fb=$(grep -o '^--fov: [0-9]* of' "$tmp/log" | awk '{print $2}' || true)
    awk -F, -v name="$name" -v opts="$*" -v fb="${fb:--}" '
        /^training_/ { n++; d += $2; c += $3; s += $4; p += $5; if ($2 < 0.1) low++; if (n == 1 || $2 < mn) mn = $2 }
        END { printf "| %s | `%s` | %.3f | %.3f | %.3f | %.3f | %.3f | %d/%d | %s |\n", name, opts, d/n, c/n, s/n, p/n, mn, low, n, fb }' \
        "$tmp/scores.csv"
}

echo "coronary80 training_* (${#images[@]} images), against the expert masks (binarised at >= 128); means over images"
echo
echo "| variant | options after --pseudo-label | Dice | clDice | sensitivity | precision | min Dice | Dice < 0.1 | fallbacks |"
echo "|---|---|---|---|---|---|---|---|---|"
row "released" 
row "released through --fov, every switch off" --fov --no-fov-mask --percentile-all --seeds 1
row "FOV-aware (defaults)" --fov
row "  FOV mask only (percentile as released, 1 seed)" --fov --percentile-all --seeds 1
row "  FOV mask + percentile in FOV, 1 seed" --fov --seeds 1
row "  FOV mask, percentile as released, 5 seeds" --fov --percentile-all
row "  no FOV mask, 5 seeds (percentile inside the border)" --fov --no-fov-mask
row "  no FOV mask, percentile as released, 5 seeds" --fov --no-fov-mask --percentile-all
row "  FOV, 3 seeds" --fov --seeds 3
row "  FOV, 8 seeds" --fov --seeds 8
row "  FOV, components >= 200 px instead of seeds" --fov --seeds 0 --min-component 200
row "  FOV, 5 seeds + components >= 200 px" --fov --min-component 200
row "  FOV, every component (threshold only)" --fov --seeds 0 --min-component 1
row "  no FOV mask, every component (threshold only)" --fov --no-fov-mask --percentile-all --seeds 0 --min-component 1
row "  FOV not eroded" --fov --fov-erosion 0
row "  FOV eroded by 16" --fov --fov-erosion 16
row "  dark level 25" --fov --dark-level 25
row "  dark level 60" --fov --dark-level 60

# Time per image on one thread, 512 x 512 (the training images resized bicubically), both
# pipelines in the same run, alternating, best of three.
/usr/bin/python3 - "$tmp/512" "${images[@]}" <<'PY'
import os, sys
from PIL import Image
out = sys.argv[1]; os.makedirs(out)
for k in range(2):
    for f in sys.argv[2:]:
        Image.open(f).convert("L").resize((512, 512), Image.BICUBIC).save(f"{out}/{k}_{os.path.basename(f)}")
PY
n=$(ls "$tmp/512" | wc -l)
best() { sort -g | head -1; }
for rep in 1 2 3; do
    for v in released fov; do
        extra=(); [ "$v" = fov ] && extra=(--fov)
        "$prog" --pseudo-label "${extra[@]}" --overwrite --threads 1 -o "$tmp/o512" "$tmp/512" 2>&1 \
            | grep -o 'failed, [0-9.]* s' | awk -v v="$v" '{print v, $2}' >>"$tmp/times"
    done
done
r=$(awk '$1=="released"{print $2}' "$tmp/times" | best)
f=$(awk '$1=="fov"{print $2}' "$tmp/times" | best)
echo
awk -v r="$r" -v f="$f" -v n="$n" 'BEGIN { printf "time per 512 x 512 image, one thread, whole program (decode, pipeline, PNG write), best of 3 over %d images: released %.2f ms, FOV-aware %.2f ms, ratio %.2f\n", n, 1000*r/n, 1000*f/n, f/r }'

# The pipelines alone (images decoded first), same images, same process, alternating.
if command -v c++ >/dev/null; then
    c++ -DEIGEN_DONT_PARALLELIZE -O3 -DNDEBUG -march=native -mprefer-vector-width=512 -fno-math-errno -fopenmp \
        -std=gnu++20 -I"$here/include" -isystem /usr/include/eigen3 "$here/tools/fov_pseudo_label_timing.cpp" \
        -o "$tmp/timing" -lstb -lisal
    "$tmp/timing" "$tmp"/512/*.png
fi
