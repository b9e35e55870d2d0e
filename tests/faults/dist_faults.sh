#!/usr/bin/env bash
# Fault tests of data-parallel vasomim-pretrain under mpirun (issue 18), over Open MPI's TCP
# transport and a hostfile - the way ranks on different machines talk - instead of shared memory:
#   1. a training run of 2 ranks completes over TCP and its log says the world size;
#   2. rank 1 killed with SIGKILL between the pre-training steps, where the ranks meet in the
#      gradient sums: mpirun ends within 10 s (no rank left waiting in a collective), with a
#      non-zero status and Open MPI's message naming rank 1;
#   3. rank 0 killed the same way: the same.
# Usage: tests/faults/dist_faults.sh PATH/TO/vasomim-pretrain WORKDIR [MPIRUN]
set -euo pipefail
bin=$(realpath "$1")
work=$2
mpirun=${3:-mpirun}
rm -rf "$work"
mkdir -p "$work"
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
printf 'localhost slots=2\n' >hosts
# TCP over the loopback only (the shared-memory transport excluded); root and 2 ranks on fewer
# cores allowed, as in CI.
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
common=(--preset tiny --synthetic-images 16 --batch-size 2 --warmup-epochs 1 --panel-every 100000 --seed 7
        --segmentor-iterations 20 --threads 1 --workers 1)
launch() { "$mpirun" -np 2 --hostfile hosts --bind-to none "$bin" "${common[@]}" "$@"; }

echo "== 2 ranks over TCP"
launch --epochs 2 --output ok >ok.log 2>&1 || { tail -20 ok.log; fail "the 2-rank run over TCP"; }
grep -q "data parallel: 2 rank(s)" ok.log || { tail -20 ok.log; fail "nothing says the world size"; }
ls ok/checkpoint-*.safetensors >/dev/null 2>&1 || fail "no checkpoint after the 2-rank run"
echo "   done; the log says the world size"

# The programs running $bin (procfs only: no procps needed), and the pid of rank $1 among them
# (Open MPI puts the rank in each one's environment).
program_pids() {
  local d
  for d in /proc/[0-9]*; do
    [[ "$(readlink "$d/exe" 2>/dev/null)" == "$bin" ]] && echo "${d#/proc/}"
  done
  return 0
}
rank_pid() {
  local p
  for p in $(program_pids); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
  return 0
}

for victim in 1 0; do
  echo "== rank $victim killed with SIGKILL while training"
  launch --epochs 1000 --output killed$victim >killed$victim.log 2>&1 &
  job=$!
  pid=""
  for ((i = 0; i < 300; ++i)); do  # pre-training under way: steps in rank 0's log.csv (up to 30 s)
    sleep 0.1
    [[ -f killed$victim/log.csv && $(wc -l <killed$victim/log.csv) -ge 3 ]] && { pid=$(rank_pid "$victim"); break; }
  done
  [[ -n "$pid" ]] || { kill -KILL "$job" 2>/dev/null; tail -5 killed$victim.log; fail "rank $victim never reached its steps"; }
  kill -KILL "$pid"
  t0=$(date +%s%N)
  for ((i = 0; i < 100; ++i)); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$job" 2>/dev/null; then
    for p in $(program_pids); do kill -KILL "$p" 2>/dev/null || true; done
    kill -KILL "$job" 2>/dev/null || true
    fail "mpirun still running 10 s after rank $victim was killed"
  fi
  status=0
  wait "$job" || status=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  [[ $status -ne 0 ]] || fail "mpirun exited 0 after rank $victim was killed"
  grep -qi "rank $victim" killed$victim.log || { tail -20 killed$victim.log; fail "no message names rank $victim"; }
  [[ -z "$(program_pids)" ]] || fail "ranks left running after mpirun ended"
  printf '   mpirun ended %d ms after the kill, status %d, naming rank %d\n' "$ms" "$status" "$victim"
done
echo "PASS"
