#!/usr/bin/env bash
# Fault tests of vasomim-pretrain (issue 19), on the tiny preset with a checkpoint every iteration:
#   1. SIGKILL at random moments (checkpoint writes included), resumed each time: the finished run's
#      checkpoint equals, byte for byte, that of a run never interrupted (same seed).
#   2. SIGTERM (and SIGINT): a checkpoint at the next step boundary, exit 0; resuming completes the
#      same run.
#   3. A full disk (RLIMIT_FSIZE, SIGXFSZ ignored so that write() fails with EFBIG): a clear message,
#      a non-zero exit, the previous checkpoint intact and no temporary file left behind.
#   4. A non-finite loss: the run stops naming the step; the last good checkpoint resumes.
# Usage: tests/faults/pretrain_faults.sh PATH/TO/vasomim-pretrain WORKDIR [KILLS]
set -euo pipefail
bin=$(realpath "$1")
work=$2
kills=${3:-6}
rm -rf "$work"
mkdir -p "$work"
cd "$work"
RANDOM=19  # the kill times are the same in every run of this test

fail() { echo "FAIL: $*" >&2; exit 1; }
common=(--preset tiny --synthetic-images 16 --batch-size 4 --warmup-epochs 1 --checkpoint-every 1
        --keep-checkpoints 2 --panel-every 100000 --seed 7 --threads 1 --workers 1)
run() { "$bin" "${common[@]}" "$@"; }
start() { "$bin" "${common[@]}" "$@" & }  # in the background; $! is the program itself
final() { ls "$1"/checkpoint-*.safetensors | grep -v optim | tail -1; }
same_final() {  # same last checkpoint (model and optimiser files) in two run folders
  local a b
  a=$(final "$1"); b=$(final "$2")
  [[ $(basename "$a") == $(basename "$b") ]] || fail "$2 ends at $(basename "$b"), $1 at $(basename "$a")"
  cmp -s "$a" "$b" || fail "$b differs from $a"
  cmp -s "${a%.safetensors}.optim.safetensors" "${b%.safetensors}.optim.safetensors" ||
    fail "the optimiser state of $b differs from that of $a"
}

# The segmentor of the guidance is trained once and shared (it is not what is tested here).
run --epochs 1 --max-steps 1 --segmentor-iterations 20 --output seg >/dev/null 2>&1 || fail "segmentor run"
common+=(--segmentor seg/segmentor.safetensors)

echo "== reference run (never interrupted)"
run --epochs 30 --output ref >ref.log 2>&1 || { cat ref.log; fail "reference run"; }
[[ $(basename "$(final ref)") == checkpoint-0000000120.safetensors ]] || fail "reference ends at $(final ref)"

echo "== SIGKILL at random moments, $kills times, resumed each time"
for ((k = 0; k < kills; ++k)); do
  resume=()
  ls killed/checkpoint-*.safetensors >/dev/null 2>&1 && resume=(--resume killed)
  start --epochs 30 --output killed "${resume[@]}" >>killed.log 2>&1
  pid=$!
  ms=$((400 + RANDOM % 1600))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "   killed at $(basename "$(final killed 2>/dev/null || echo none)")"
done
run --epochs 30 --output killed --resume killed >>killed.log 2>&1 || { tail -20 killed.log; fail "resume after kills"; }
same_final ref killed
echo "   resumed runs reach the reference's checkpoint exactly"

for sig in TERM INT; do
  echo "== SIG$sig: checkpoint at the next step boundary, exit 0"
  start --epochs 30 --output "sig$sig" >"sig$sig.log" 2>&1
  pid=$!
  for _ in $(seq 100); do ls "sig$sig"/checkpoint-*.safetensors >/dev/null 2>&1 && break; sleep 0.05; done
  kill -"$sig" "$pid"
  rc=0
  wait "$pid" || rc=$?
  [[ $rc == 0 ]] || { cat "sig$sig.log"; fail "SIG$sig: exit code $rc, expected 0"; }
  grep -q "interrupted at step" "sig$sig.log" || { cat "sig$sig.log"; fail "SIG$sig: no 'interrupted at step' line"; }
  step=$(sed -n 's/.*interrupted at step \([0-9]*\).*/\1/p' "sig$sig.log")
  [[ -f "sig$sig/$(printf 'checkpoint-%010d.safetensors' "$step")" ]] || fail "SIG$sig: no checkpoint at step $step"
  run --epochs 30 --output "sig$sig" --resume "sig$sig" >>"sig$sig.log" 2>&1 || fail "SIG$sig: resume"
  same_final ref "sig$sig"
  echo "   stopped at step $step with its checkpoint; the resumed run equals the reference"
done

echo "== SIGTERM inside a gradient accumulation cycle (--accum-iter 3): stops where the cycle ends"
run --epochs 6 --accum-iter 3 --output ref3 >ref3.log 2>&1 || { cat ref3.log; fail "accumulation reference run"; }
start --epochs 6 --accum-iter 3 --output acc >acc.log 2>&1
pid=$!
for _ in $(seq 100); do ls acc/checkpoint-*.safetensors >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.1
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc == 0 ]] || { cat acc.log; fail "accumulation: exit code $rc"; }
step=$(sed -n 's/.*interrupted at step \([0-9]*\).*/\1/p' acc.log)
[[ -n $step && $((step % 3)) == 0 ]] || { cat acc.log; fail "accumulation: stopped at step '$step', inside a cycle of 3"; }
[[ -f "acc/$(printf 'checkpoint-%010d.safetensors' "$step")" ]] || fail "accumulation: no checkpoint at step $step"
run --epochs 6 --accum-iter 3 --output acc --resume acc >>acc.log 2>&1 || fail "accumulation: resume"
same_final ref3 acc
echo "   stopped at step $step (a multiple of 3) with its checkpoint; the resumed run equals its reference"

echo "== full disk: RLIMIT_FSIZE below one checkpoint"
run --epochs 30 --output full --max-steps 4 >full.log 2>&1 || fail "full: first part"
size=$(stat -c %s full/checkpoint-0000000004.safetensors)
sum=$(cat full/checkpoint-0000000004.safetensors full/checkpoint-0000000004.optim.safetensors | cksum)
rc=0
( trap '' XFSZ; ulimit -f $((size / 2048)); exec "$bin" "${common[@]}" --epochs 30 --output full --resume full ) \
  >>full.log 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "full disk: the run went on"
grep -Eq "writing '.*checkpoint-0000000005.*' failed: File too large" full.log || { tail full.log; fail "full disk: no clear message"; }
[[ $(cat full/checkpoint-0000000004.safetensors full/checkpoint-0000000004.optim.safetensors | cksum) == "$sum" ]] ||
  fail "full disk: the previous checkpoint changed"
if ls full | grep -q '\.tmp\.'; then fail "full disk: temporary files left: $(ls full | grep '\.tmp\.')"; fi
run --epochs 30 --output full --resume full >>full.log 2>&1 || fail "full disk: resume after space came back"
same_final ref full
echo "   stopped with '$(grep -Eo "writing '[^']*' failed" full.log | head -1)', step 4 intact, resumed to the reference"

echo "== non-finite loss"
rc=0
run --epochs 30 --blr 1e9 --output nan >nan.log 2>&1 || rc=$?
[[ $rc != 0 ]] || { cat nan.log; fail "non-finite loss: exit code 0"; }
grep -q "non-finite loss at step" nan.log || { cat nan.log; fail "non-finite loss: the step is not named"; }
good=$(sed -n 's/^last good checkpoint: //p' nan.log)
[[ -f $good ]] || { cat nan.log; fail "non-finite loss: no last good checkpoint named"; }
run --epochs 30 --blr 1e9 --output nan --resume "$good" --max-steps "$(basename "$good" | sed 's/checkpoint-0*\([0-9]*\).*/\1/')" \
  >>nan.log 2>&1 || { tail nan.log; fail "non-finite loss: the last good checkpoint does not load"; }
echo "   $(grep -o 'non-finite loss at step [0-9]*' nan.log | head -1); $good loads"
echo "all fault tests passed"
