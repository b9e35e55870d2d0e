#!/usr/bin/env bash
# The small replication of VasoMIM's downstream claim (GitHub issue 17), on a folder of labelled
# angiograms (default: coronary80's training_* images; its testing_* half is never touched):
#
#   1. pre-train MAE and VasoMIM with the same budget (tiny preset, same epochs, same seed) on
#      unlabelled angiograms: the synthetic set plus the images of the training part (their expert
#      masks are not used; VasoMIM computes its pseudo-labels from the images);
#   2. fine-tune a ViT + segmentation decoder from scratch, from MAE and from VasoMIM with the same
#      budget, one run per seed (default 3 seeds); the last --val-count images of the training part
#      choose each run's best epoch, the others are trained on;
#   3. train UNeXt-S from scratch on the expert masks of the same images as the CNN baseline;
#   4. segment the evaluation part with every model and score it (vasomim-metrics: Dice, clDice);
#   5. write OUT/results.md (mean +- std over seeds of the per-run mean over images) and
#      OUT/results.png (or .svg without matplotlib).
#
# Usage: benchmarks/replication.sh [--quick] [--out DIR] [--data DIR] [--build DIR] ... (--help)
# Every step keeps a DONE marker in its folder: a second call with the same --out resumes where the
# first stopped (a step without its marker is run again from the start).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

data="$root/../shared/data/coronary80"
train_spec="training_01..training_30"
eval_spec="training_31..training_40"
val_count=4
out=""
build=""
seeds="0 1 2"
pretrain_seed=0
decoder="linear"
preset="tiny"
threads=0
quick=0
python="${PYTHON:-}"
# budget (default: about 20 minutes on 2 cores, measured 18 min 47 s; --quick: about 10 minutes)
synthetic=""; pretrain_epochs=""; pretrain_img=""; seg_iters=""; ft_epochs=""; unext_iters=""; unext_size=""

usage() {
    cat <<EOF
usage: $0 [options]
  --data DIR            labelled folder: images/<stem>.png and masks/<stem>_gt.png (default: $data)
  --train SPEC          training part: comma-separated items, each A..B (a range of stems), a stem
                        prefix or @FILE (a list of stems) (default: $train_spec)
  --eval SPEC           evaluation part, same syntax (default: $eval_spec); never trained on
  --val-count N         the last N images of the training part choose the best fine-tuning epoch
                        and are not trained on (default: $val_count)
  --out DIR             output folder (default: build/replication, or build/replication-quick with --quick)
  --build DIR           build folder holding the programs (default: the first of build/rel, build/ci,
                        build that has them)
  --seeds "S1 S2 .."    fine-tuning and UNeXt-S seeds (default: "$seeds")
  --pretrain-seed S     seed of both pre-training runs (default: $pretrain_seed)
  --decoder NAME        linear or unetr (default: $decoder)
  --threads N           OpenMP threads of every program (default: all cores)
  --quick               the 10-minute budget
budget (defaults: full / quick):
  --synthetic N         synthetic angiograms added to the pre-training set (512 / 64)
  --pretrain-epochs N   pre-training epochs, MAE and VasoMIM alike (30 / 3)
  --pretrain-img N      pre-training image side (64 / 64; tiny preset, patch 8)
  --segmentor-iters N   VasoMIM's co-guidance segmentor training (200 / 30)
  --finetune-epochs N   fine-tuning epochs of every run (60 / 3); batch, learning rate
                        and the rest are the preset's (vasomim-finetune --preset)
  --unext-iters N       UNeXt-S iterations (batch 8) (400 / 40)
  --unext-size N        UNeXt-S training crop side (160 / 128)
EOF
}

die() { echo "replication.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) data="$2"; shift 2 ;;
        --train) train_spec="$2"; shift 2 ;;
        --eval) eval_spec="$2"; shift 2 ;;
        --val-count) val_count="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --build) build="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --pretrain-seed) pretrain_seed="$2"; shift 2 ;;
        --decoder) decoder="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --synthetic) synthetic="$2"; shift 2 ;;
        --pretrain-epochs) pretrain_epochs="$2"; shift 2 ;;
        --pretrain-img) pretrain_img="$2"; shift 2 ;;
        --segmentor-iters) seg_iters="$2"; shift 2 ;;
        --finetune-epochs) ft_epochs="$2"; shift 2 ;;
        --unext-iters) unext_iters="$2"; shift 2 ;;
        --unext-size) unext_size="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

if [[ $quick == 1 ]]; then
    : "${synthetic:=64}" "${pretrain_epochs:=3}" "${pretrain_img:=64}" "${seg_iters:=30}"
    : "${ft_epochs:=3}" "${unext_iters:=40}" "${unext_size:=128}" "${out:=$root/build/replication-quick}"
else
    : "${synthetic:=512}" "${pretrain_epochs:=30}" "${pretrain_img:=64}" "${seg_iters:=200}"
    : "${ft_epochs:=60}" "${unext_iters:=400}" "${unext_size:=160}" "${out:=$root/build/replication}"
fi
for v in val_count synthetic pretrain_epochs pretrain_img seg_iters ft_epochs unext_iters unext_size threads pretrain_seed; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-} must be a whole number, got '${!v}'"
done
[[ $decoder == linear || $decoder == unetr ]] || die "--decoder must be linear or unetr, got '$decoder'"
read -r -a seed_list <<<"$seeds"
[[ ${#seed_list[@]} -ge 1 ]] || die "--seeds is empty"
for s in "${seed_list[@]}"; do [[ $s =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a whole number"; done

# --- programs ------------------------------------------------------------------------------------
programs=(vasomim-pretrain vasomim-finetune vasomim-segment vasomim-train-segmentor vasomim-metrics vasomim-synthetic)
if [[ -z $build ]]; then
    for b in "$root/build/rel" "$root/build/ci" "$root/build"; do
        [[ -x $b/examples/vasomim-finetune/vasomim-finetune ]] && { build=$b; break; }
    done
    [[ -n $build ]] || die "no built programs in build/rel, build/ci or build; build them, e.g.
  cmake -S . -B build/rel -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_BUILD_TESTS=OFF -DVASOMIM_BUILD_BENCHMARKS=OFF
  cmake --build build/rel --target ${programs[*]}
and pass --build build/rel"
fi
declare -A bin
for p in "${programs[@]}"; do
    bin[$p]="$build/examples/$p/$p"
    [[ -x ${bin[$p]} ]] || die "program $p is missing: ${bin[$p]} (cmake --build $build --target $p)"
done
if [[ -z $python ]]; then
    for p in /usr/bin/python3 python3; do command -v "$p" >/dev/null 2>&1 && { python=$p; break; }; done
fi
[[ -n $python ]] || die "python3 is needed for the table (standard library only; matplotlib for a PNG plot)"

# --- data ----------------------------------------------------------------------------------------
[[ -d $data ]] || die "data folder '$data' does not exist (coronary80 lives in ../shared/data/coronary80; --data DIR)"
[[ -d $data/images && -d $data/masks ]] || die "data folder '$data' needs images/ and masks/"
data=$(cd "$data" && pwd)

# Stem selection as vasomim-finetune's --train/--val: A..B, prefix or @FILE. Only file *names* of
# images/ are listed; no image outside the selections is ever opened.
mapfile -t all_stems < <(cd "$data/images" && for f in *.png; do [[ -e $f ]] && echo "${f%.png}"; done | LC_ALL=C sort)
[[ ${#all_stems[@]} -gt 0 ]] || die "$data/images holds no .png images"
select_stems() {  # spec what -> stems, one a line, sorted
    local spec=$1 what=$2 item s a b line n
    local -A picked=()
    IFS=',' read -r -a items <<<"$spec"
    for item in "${items[@]}"; do
        item=$(echo "$item" | xargs)
        [[ -z $item ]] && continue
        n=${#picked[@]}
        if [[ $item == @* ]]; then
            [[ -r ${item#@} ]] || die "$what: cannot read the list ${item#@}"
            while IFS= read -r line; do
                line=$(echo "${line%%#*}" | xargs); line=${line%.png}
                [[ -z $line ]] && continue
                [[ " ${all_stems[*]} " == *" $line "* ]] || die "$what: '$line' is not an image of $data/images"
                picked[$line]=1
            done <"${item#@}"
        elif [[ $item == *..* ]]; then
            a=${item%%..*}; b=${item#*..}
            for s in "${all_stems[@]}"; do [[ ! $s < $a && ! $s > $b ]] && picked[$s]=1; done
        else
            for s in "${all_stems[@]}"; do [[ $s == "$item"* ]] && picked[$s]=1; done
        fi
        [[ ${#picked[@]} -gt $n ]] || die "$what: '$item' selects no image in $data/images"
    done
    [[ ${#picked[@]} -gt 0 ]] || die "$what: '$spec' selects no image"
    printf '%s\n' "${!picked[@]}" | LC_ALL=C sort
}
picked=$(select_stems "$train_spec" --train)
mapfile -t train_stems <<<"$picked"
picked=$(select_stems "$eval_spec" --eval)
mapfile -t eval_stems <<<"$picked"
[[ ${#train_stems[@]} -gt 0 && ${#eval_stems[@]} -gt 0 ]] || die "empty training or evaluation part"
for s in "${train_stems[@]}"; do
    [[ " ${eval_stems[*]} " != *" $s "* ]] || die "image $s is in both the training and the evaluation part"
done
n_fit=$(( ${#train_stems[@]} - val_count ))
[[ $val_count -ge 1 && $n_fit -ge 1 ]] || die "--val-count must be at least 1 and leave training images (${#train_stems[@]} in the training part)"
fit_stems=("${train_stems[@]:0:n_fit}")
val_stems=("${train_stems[@]:n_fit}")
mask_of() {  # stem -> its expert mask
    local s=$1 m
    for m in "$data/masks/${s}_gt.png" "$data/masks/$s.png" "$data/masks/${s}_mask.png"; do
        [[ -f $m ]] && { echo "$m"; return; }
    done
    die "no mask for $s in $data/masks (looked for ${s}_gt.png, $s.png, ${s}_mask.png)"
}
declare -A mask
for s in "${train_stems[@]}" "${eval_stems[@]}"; do mask[$s]=$(mask_of "$s"); done

# --- output folder -------------------------------------------------------------------------------
if [[ -e $out && ! -f $out/.replication ]] && [[ -n $(ls -A "$out" 2>/dev/null) ]]; then
    die "--out $out exists and was not written by this script; name another folder"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
budget="preset=$preset decoder=$decoder synthetic=$synthetic pretrain_epochs=$pretrain_epochs pretrain_img=$pretrain_img segmentor_iters=$seg_iters finetune_epochs=$ft_epochs unext_iters=$unext_iters unext_size=$unext_size seeds=${seed_list[*]} pretrain_seed=$pretrain_seed train=${train_stems[0]}..${train_stems[-1]} val_count=$val_count eval=${eval_stems[0]}..${eval_stems[-1]} data=$data"
if [[ -f $out/.replication && $(cat "$out/.replication") != "$budget" ]]; then
    die "$out holds a run with other settings:
  $(cat "$out/.replication")
name another --out folder"
fi
echo "$budget" >"$out/.replication"
thr=()
if [[ $threads -gt 0 ]]; then thr=(--threads "$threads"); export OMP_NUM_THREADS=$threads; fi  # (train-segmentor has no --threads)
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
t_start=$(date +%s)
log "replication: $budget"
log "output: $out (logs in $out/logs)"
mkdir -p "$out/logs"
step() {  # name folder command... : runs unless folder/DONE exists; the log in logs/name.log
    local name=$1 dir=$2; shift 2
    if [[ -f $dir/DONE ]]; then log "$name: done before, kept"; return; fi
    rm -rf "$dir"; mkdir -p "$dir"
    local t0; t0=$(date +%s)
    log "$name ..."
    if ! "$@" >"$out/logs/$name.log" 2>&1; then
        tail -n 20 "$out/logs/$name.log" >&2
        die "$name failed (log: $out/logs/$name.log)"
    fi
    # vasomim-pretrain exits 0 when a signal stops it (it saves a checkpoint): not a finished step
    if grep -q '^done: .*(interrupted)' "$out/logs/$name.log"; then
        die "$name was interrupted (log: $out/logs/$name.log); run the script again to redo it"
    fi
    echo "$(( $(date +%s) - t0 ))" >"$dir/DONE"
    log "$name: $(( $(date +%s) - t0 )) s"
}

# Folders of links, so that no program lists or opens a file outside its part: the labelled
# training part for vasomim-finetune (images/ + masks/), the pre-training images, the UNeXt-S
# training pairs (<stem>.png labels) and the evaluation images and masks.
d="$out/data"
rm -rf "$d"
mkdir -p "$d/labelled/images" "$d/labelled/masks" "$d/pretrain/coronary" "$d/unext/images" "$d/unext/labels" \
         "$d/eval/images" "$d/eval/masks"
for s in "${train_stems[@]}"; do
    ln -s "$data/images/$s.png" "$d/labelled/images/$s.png"
    ln -s "${mask[$s]}" "$d/labelled/masks/${s}_gt.png"
done
for s in "${train_stems[@]}"; do ln -s "$data/images/$s.png" "$d/pretrain/coronary/$s.png"; done
for s in "${fit_stems[@]}"; do
    ln -s "$data/images/$s.png" "$d/unext/images/$s.png"
    ln -s "${mask[$s]}" "$d/unext/labels/$s.png"
done
for s in "${eval_stems[@]}"; do
    ln -s "$data/images/$s.png" "$d/eval/images/$s.png"
    ln -s "${mask[$s]}" "$d/eval/masks/${s}_gt.png"
done
printf '%s\n' "${fit_stems[@]}" >"$d/fit.txt"
printf '%s\n' "${val_stems[@]}" >"$d/val.txt"
printf '%s\n' "${eval_stems[@]}" >"$d/eval.txt"
log "data: ${#fit_stems[@]} fine-tuning images (${fit_stems[0]}..${fit_stems[-1]}), ${#val_stems[@]} validation (${val_stems[0]}..${val_stems[-1]}), ${#eval_stems[@]} evaluation (${eval_stems[0]}..${eval_stems[-1]}); pre-training: $synthetic synthetic + ${#train_stems[@]} unlabelled"

# --- 1. pre-training -----------------------------------------------------------------------------
# The synthetic set (XA-170K layout: synthetic/ + synthetic_frangi/ with its exact masks as
# pseudo-labels) beside coronary/ (pseudo-labels computed by the released pipeline and cached in
# coronary_frangi/ on first use). Images at the labelled images' side, so vessels have similar widths.
side=$("$python" - "$data/images/${train_stems[0]}.png" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(24)
print(struct.unpack(">I", head[16:20])[0] if head[:8] == b"\x89PNG\r\n\x1a\n" else 256)
EOF
)
step synthetic "$out/synthetic" "${bin[vasomim-synthetic]}" -n "$synthetic" --seed 1000 --height "$side" --width "$side" \
    --xa-layout -o "$out/synthetic"
rm -f "$d/pretrain/synthetic" "$d/pretrain/synthetic_frangi"
ln -s "$out/synthetic/synthetic" "$d/pretrain/synthetic"
ln -s "$out/synthetic/synthetic_frangi" "$d/pretrain/synthetic_frangi"

declare -A init
for method in mae vasomim; do
    extra=(); [[ $method == vasomim ]] && extra=(--segmentor-iterations "$seg_iters")
    step "pretrain-$method" "$out/pretrain-$method" "${bin[vasomim-pretrain]}" --method "$method" --preset "$preset" \
        --data "$d/pretrain" --epochs "$pretrain_epochs" --img-size "$pretrain_img" --seed "$pretrain_seed" \
        --keep-checkpoints 1 "${extra[@]}" "${thr[@]}" --output "$out/pretrain-$method"
    ck=$(ls "$out/pretrain-$method"/checkpoint-*.safetensors 2>/dev/null | LC_ALL=C sort | tail -n 1 || true)
    [[ -n $ck ]] || die "pre-training $method wrote no checkpoint in $out/pretrain-$method"
    init[$method]=$ck
done

# --- 2. fine-tuning ------------------------------------------------------------------------------
runs=()
for from in scratch mae vasomim; do
    for s in "${seed_list[@]}"; do
        name="$from-s$s"
        what=scratch; [[ $from != scratch ]] && what=${init[$from]}
        step "finetune-$name" "$out/finetune/$name" "${bin[vasomim-finetune]}" --data "$d/labelled" \
            --train "@$d/fit.txt" --val "@$d/val.txt" --mask-threshold 128 --preset "$preset" --decoder "$decoder" \
            --init "$what" --epochs "$ft_epochs" --seed "$s" "${thr[@]}" --overwrite -o "$out/finetune/$name"
        [[ -f $out/finetune/$name/best.safetensors ]] || die "fine-tuning $name wrote no best.safetensors"
        mapfile -t eval_files < <(sed "s|.*|$d/eval/images/&.png|" "$d/eval.txt")
        step "segment-$name" "$out/pred/$name" "${bin[vasomim-segment]}" "$out/finetune/$name/best.safetensors" \
            "${eval_files[@]}" --no-npy --overwrite "${thr[@]}" -o "$out/pred/$name"
        runs+=("$name")
    done
done

# --- 3. UNeXt-S from scratch on the expert masks -------------------------------------------------
# vasomim-train-segmentor evaluates (--iterations 0) by writing each image's logits; mask = logit > 0.
unext_segment() {  # weights outdir
    local s
    mkdir -p "$2/eval-labels"
    for s in "${eval_stems[@]}"; do ln -s "${mask[$s]}" "$2/eval-labels/$s.png"; done
    "${bin[vasomim-train-segmentor]}" --images "$d/eval/images" --labels "$2/eval-labels" --iterations 0 \
        --init "$1" --save-logits "$2/logits"
    "$python" - "$2/logits" "$2" <<'EOF'
import ast, pathlib, struct, sys, zlib
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted(src.glob("*.npy")):
    raw = f.read_bytes()
    assert raw[:6] == b"\x93NUMPY", f
    off = 10 if raw[6] == 1 else 12
    hl = struct.unpack("<H", raw[8:10])[0] if raw[6] == 1 else struct.unpack("<I", raw[8:12])[0]
    hdr = ast.literal_eval(raw[off:off + hl].decode("latin1"))
    assert hdr["descr"] == "<f4" and not hdr["fortran_order"], (f, hdr)
    h, w = hdr["shape"]
    vals = struct.unpack("<%df" % (h * w), raw[off + hl:off + hl + 4 * h * w])
    rows = b"".join(b"\0" + bytes(255 if v > 0 else 0 for v in vals[y * w:(y + 1) * w]) for y in range(h))
    chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    (dst / (f.stem + ".png")).write_bytes(png)
EOF
    rm -rf "$2/logits" "$2/eval-labels"
}
for s in "${seed_list[@]}"; do
    name="unext-s$s"
    step "train-$name" "$out/unext/$name" "${bin[vasomim-train-segmentor]}" --images "$d/unext/images" \
        --labels "$d/unext/labels" --iterations "$unext_iters" --size "$unext_size" --seed "$s" \
        -o "$out/unext/$name/unext.safetensors"
    step "segment-$name" "$out/pred/$name" unext_segment "$out/unext/$name/unext.safetensors" "$out/pred/$name"
    runs+=("$name")
done

# --- 4. scores -----------------------------------------------------------------------------------
mkdir -p "$out/scores"
for name in "${runs[@]}"; do
    "${bin[vasomim-metrics]}" --pred "$out/pred/$name" --ref "$d/eval/masks" --ref-suffix _gt --threshold 128 \
        --csv "$out/scores/$name.csv" --overwrite -q >"$out/logs/metrics-$name.log" 2>&1 ||
        { cat "$out/logs/metrics-$name.log" >&2; die "scoring $name failed"; }
    n=$(( $(wc -l <"$out/scores/$name.csv") - 1 ))
    [[ $n == "${#eval_stems[@]}" ]] || die "$name: $n of ${#eval_stems[@]} evaluation images scored"
done

# --- 5. table and plot ---------------------------------------------------------------------------
wall=$(( $(date +%s) - t_start ))
"$python" - "$out" "$wall" "$budget" "${seed_list[*]}" "$quick" <<'EOF'
import csv, math, pathlib, statistics, sys
out, wall, budget, seeds, quick = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5] == "1"
rows = [("UNeXt-S (CNN, from scratch)", "unext"), ("ViT from scratch", "scratch"),
        ("ViT from MAE", "mae"), ("ViT from VasoMIM", "vasomim")]
def run_means(key):
    dice, cl = [], []
    for s in seeds:
        with open(out / "scores" / f"{key}-s{s}.csv") as f:
            r = list(csv.DictReader(f))
        dice.append(100 * statistics.fmean(float(x["dice"]) for x in r))
        cl.append(100 * statistics.fmean(float(x["cldice"]) for x in r))
    return dice, cl
def ms(v):
    return (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
res = {label: run_means(key) for label, key in rows}
n_img = sum(1 for _ in open(out / "scores" / f"{rows[0][1]}-s{seeds[0]}.csv")) - 1
steps = sum(int(f.read_text()) for f in list(out.glob("*/DONE")) + list(out.glob("*/*/DONE")))
lines = [f"| model | Dice (%) | clDice (%) | per seed: Dice |", "|---|---|---|---|"]
for label, _ in rows:
    d, c = res[label]
    (dm, dsd), (cm, csd) = ms(d), ms(c)
    lines.append(f"| {label} | {dm:.2f} +- {dsd:.2f} | {cm:.2f} +- {csd:.2f} | " + " / ".join(f"{x:.2f}" for x in d) + " |")
text = "\n".join(lines)
note = (f"{'Quick' if quick else 'Default'} budget; mean +- sample std (n-1) over seeds {', '.join(seeds)} of each run's "
        f"mean over the {n_img} evaluation images; masks at probability 0.5 (UNeXt-S: logit 0). "
        f"Steps: {steps // 60} min {steps % 60} s in all (summed over the calls that ran them); this call: "
        f"{wall // 60} min {wall % 60} s.\n\nSettings: `{budget}`\n")
(out / "results.md").write_text("# Small replication (issue 17)\n\n" + text + "\n\n" + note)
print(text)
print(note)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
labels = [l.replace(" (CNN, from scratch)", "") for l, _ in rows]
if plt is not None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    w = 0.38
    for j, (metric, colour) in enumerate((("Dice", "#4477aa"), ("clDice", "#ee6677"))):
        m = [ms(res[l][j])[0] for l, _ in rows]
        e = [ms(res[l][j])[1] for l, _ in rows]
        xs = [i + (j - 0.5) * w for i in range(len(rows))]
        ax.bar(xs, m, w, yerr=e, capsize=3, color=colour, label=metric)
        for x, v in zip(xs, m):
            ax.text(x, v + 1, f"{v:.1f}", ha="center", fontsize=7)
        for i, (l, _) in enumerate(rows):
            ax.plot([xs[i]] * len(res[l][j]), res[l][j], "k.", ms=3)
    ax.set_xticks(range(len(rows)), labels)
    ax.set_ylabel("% on the evaluation images")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{'quick' if quick else 'default'} budget, {len(seeds)} seeds (bars: mean, whiskers: std, dots: seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=120)
    print(f"plot: {out / 'results.png'}")
else:  # a plain SVG bar chart
    W, H, x0, y0, ph = 640, 300, 60, 250, 200
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<line x1="{x0}" y1="{y0}" x2="{W - 10}" y2="{y0}" stroke="black"/>']
    for t in range(0, 101, 20):
        y = y0 - ph * t / 100
        svg.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{t}</text><line x1="{x0}" y1="{y}" x2="{W - 10}" y2="{y}" stroke="#ddd"/>')
    gw = (W - 10 - x0) / len(rows)
    for i, (l, _) in enumerate(rows):
        for j, colour in enumerate(("#4477aa", "#ee6677")):
            m, e = ms(res[l][j])
            x = x0 + i * gw + gw * (0.15 + 0.35 * j)
            svg.append(f'<rect x="{x:.1f}" y="{y0 - ph * m / 100:.1f}" width="{gw * 0.33:.1f}" height="{ph * m / 100:.1f}" fill="{colour}"/>')
            xc = x + gw * 0.165
            svg.append(f'<line x1="{xc:.1f}" x2="{xc:.1f}" y1="{y0 - ph * (m - e) / 100:.1f}" y2="{y0 - ph * (m + e) / 100:.1f}" stroke="black"/>')
        svg.append(f'<text x="{x0 + (i + 0.5) * gw:.1f}" y="{y0 + 16}" text-anchor="middle">{labels[i]}</text>')
    svg.append(f'<text x="{x0}" y="{H - 10}">Dice (blue), clDice (red), % on the evaluation images, mean +- std over seeds</text></svg>')
    (out / "results.svg").write_text("\n".join(svg))
    print(f"plot: {out / 'results.svg'} (matplotlib not found)")
EOF
log "done in $(( wall / 60 )) min $(( wall % 60 )) s: $out/results.md"
