#!/usr/bin/env bash
# The side-by-side benchmark in one command (`make bench` runs it):
#   1. builds and installs this package in release mode into $VENV (default .venv),
#   2. installs APScheduler 3.11 + SQLAlchemy into a second venv ($APS_VENV),
#   3. runs the shared workloads against kron, APScheduler (memory store) and APScheduler
#      (SQLite store), --reps times, interleaved, one run at a time (run_matrix.py),
#   4. runs the Kron-only workloads: burst with every outcome committed, restart with 100k
#      persisted timers, status()/history() latency up to 1M events of history, a standby's
#      take-over after the owner's SIGKILL (and its idle cost), server mode (a `kron server`
#      node drained by 1 and 8 worker processes, due -> claimed latency, timer creations through
#      kron.Client; bench/server.py), a three-node cluster (committed claims/s, failover time
#      over 20 leader SIGKILLs; bench/failover.py), and the 1M-timer scaling runs,
#   5. prints the headline table (with the targets) and every detailed table (summarize.py).
#
# Usage: bench/run.sh [--reps N] [--only LABELS] [--quick] [--no-build] [--out DIR]
#   --reps N     repetitions of each workload (default 3)
#   --only L,..  run only these columns, of kron, apscheduler-memory, apscheduler-sqlite
#                ("apscheduler" = both APScheduler stores); e.g. --only kron re-measures the
#                Kron column, --only kron,apscheduler-memory skips the slow SQLite store
#   --quick      one repetition, no 1M scaling runs, server mode with 5,000 runs per drain
#                (about 13 minutes; 5 with --only kron)
#   --no-build   use the package already installed in $VENV
#   --out DIR    where results go (default target/bench); the JSONL of every run is kept there
# Environment: VENV, APS_VENV, PYTHON (the interpreter that creates the venvs; default python3),
#   BENCH_TMP (where data directories are created; default /tmp).
# Every run is bounded (a per-run timeout, a per-workload wait limit). The full run takes 20-45
# minutes on a 2-core machine, depending on other load (APScheduler's SQLite store slows down
# most); without the SQLite store about 12 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
VENV="$(abspath "${VENV:-$ROOT/.venv}")"
APS_VENV="$(abspath "${APS_VENV:-$ROOT/target/bench/apscheduler-venv}")"
PYTHON="${PYTHON:-python3}"
OUT_DIR="$ROOT/target/bench"
REPS=3
ONLY=all
QUICK=0
BUILD=1

while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --quick) QUICK=1; REPS=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT_DIR="$(abspath "$2")"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$ONLY" = all ] && ONLY=kron,apscheduler
columns=","
for label in ${ONLY//,/ }; do
  case "$label" in
    apscheduler) columns+="apscheduler-memory,apscheduler-sqlite," ;;
    kron|apscheduler-memory|apscheduler-sqlite) columns+="$label," ;;
    *) echo "--only: unknown column $label (kron, apscheduler-memory, apscheduler-sqlite)" >&2; exit 2 ;;
  esac
done
want() { [[ "$columns" == *",$1,"* ]]; }

mkdir -p "$OUT_DIR"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="$OUT_DIR/results-$STAMP.jsonl"
SUMMARY="$OUT_DIR/summary-$STAMP.md"
say() { printf '\n== %s\n' "$*" >&2; }

machine() {
  echo "date (UTC):  $(date -u '+%Y-%m-%d %H:%M')"
  echo "cores:       $(nproc)"
  echo "CPU:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory:      $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel:      $(uname -sr)"
  echo "python:      $("$PYTHON" --version 2>&1)"
  echo "rustc:       $(rustc --version 2>/dev/null || echo 'not found')"
  echo "data dirs:   $(df -T "${BENCH_TMP:-/tmp}" 2>/dev/null | awk 'NR == 2 {print $2 " at " $7}')"
  echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other work on the machine skews results)"
}

say "machine"
machine | tee "$OUT_DIR/machine-$STAMP.txt" >&2

targets=()
if want kron; then
  if [ "$BUILD" = 1 ]; then
    say "building kron (release) into $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    (cd "$ROOT" && "$VENV/bin/pip" install -q --force-reinstall --no-deps .)
  fi
  "$VENV/bin/python" -c 'import kron, sys; print("kron", kron.__version__, "from", kron.__file__, file=sys.stderr)'
  targets+=(--target "kron=$VENV/bin/python:kron")
fi
if want apscheduler-memory || want apscheduler-sqlite; then
  if ! "$APS_VENV/bin/python" -c 'import apscheduler, sqlalchemy' 2>/dev/null; then
    say "installing APScheduler 3.11 into $APS_VENV"
    "$PYTHON" -m venv "$APS_VENV"
    "$APS_VENV/bin/pip" install -q --upgrade pip
    "$APS_VENV/bin/pip" install -q "apscheduler==3.11.*" sqlalchemy
  fi
  "$APS_VENV/bin/python" -c 'import apscheduler, sqlalchemy, sys; print("apscheduler", apscheduler.__version__, "sqlalchemy", sqlalchemy.__version__, file=sys.stderr)'
  want apscheduler-memory && targets+=(--target "apscheduler-memory=$APS_VENV/bin/python:apscheduler:memory")
  want apscheduler-sqlite && targets+=(--target "apscheduler-sqlite=$APS_VENV/bin/python:apscheduler:sqlite")
fi

# The issue's table: lateness, the 50k burst, memory and registration at 10k/100k, restart with
# 10k timers; interval steadiness as a check. Then the Kron-only workloads (run_matrix skips
# them for APScheduler targets).
workloads="lateness,burst50k,memory10k,memory100k,restart,interval"
workloads+=",burst50k-committed,restart100k,history,takeover"
if [ "$QUICK" = 1 ]; then workloads+=",server-quick,failover-quick"; else workloads+=",server,failover,memory1m,restart1m"; fi
extras="burst10k-aps-default-grace,burst50k-aps-default-grace,interval-0.1s"
[ "$QUICK" = 1 ] && extras=""

say "running the workloads ($REPS repetitions), results in $RESULTS"
start=$(date +%s)
"$PYTHON" "$ROOT/bench/run_matrix.py" "${targets[@]}" --reps "$REPS" --workloads "$workloads" \
  --extras "$extras" --timeout 600 --out "$RESULTS"
echo "workloads took $(( ($(date +%s) - start) / 60 )) min; load avg now $(cut -d' ' -f1-3 /proc/loadavg)" >&2

say "summary (also in $SUMMARY)"
{
  echo '```'
  machine
  echo '```'
  "$PYTHON" "$ROOT/bench/summarize.py" "$RESULTS" --headline \
    --labels kron,apscheduler-memory,apscheduler-sqlite
} > "$SUMMARY"
cat "$SUMMARY"
