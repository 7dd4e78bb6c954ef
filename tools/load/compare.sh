#!/usr/bin/env bash
# Two builds of `credence serve` under the same load, in alternation: decisions/s, p50/p99 and
# server CPU µs per decision (utime + stime of the server process from /proc, over the measured
# run only). Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/compare.sh BIN_A BIN_B [ROUNDS] [DURATION_S] [CONNECTIONS]
#
# Each round runs A then B (then B then A in the next round, so neither always goes first), each
# on a fresh data directory, wrk with CONNECTIONS connections for DURATION_S after a 3 s warm-up,
# the example application decision (tools/load/decide.lua), the log synced before each answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_a="$1"; bin_b="$2"; rounds="${3:-3}"; duration="${4:-15}"; connections="${5:-16}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
ticks=$(getconf CLK_TCK)
sample=examples/consumer-loan/samples/application-approve.json

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() {
  local label="$1" bin="$2" work
  work="$(mktemp -d)"
  "$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  local url key
  url="$(head -1 "$work/out" | awk '{print $4}')"
  key="$("$bin" keys create --data-dir "$work/data" --role decide --user load | tail -1)"
  CREDENCE_KEY="$key" CREDENCE_BODY_FILE="$sample" \
    wrk -t1 -c"$connections" -d3s -s tools/load/decide.lua "$url/v1/decisions/application" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  CREDENCE_KEY="$key" CREDENCE_BODY_FILE="$sample" \
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s tools/load/decide.lua \
    "$url/v1/decisions/application" >"$work/wrk"
  after=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v label="$label" -v cpu=$((after - before)) -v ticks="$ticks" '
    /Requests\/sec/ {rps=$2}
    / 50%/ {p50=$2} / 99%/ {p99=$2}
    /requests in/ {n=$1}
    /Non-2xx/ {bad=$NF}
    END {printf "%-6s %9.0f decisions/s  p50 %8s  p99 %8s  server CPU %6.1f µs/decision%s\n",
         label, rps, p50, p99, cpu / ticks * 1e6 / n, (bad ? "  NON-2XX " bad : "")}' "$work/wrk"
  rm -rf "$work"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "A: $bin_a"; echo "B: $bin_b"; echo "wrk: $connections connections, ${duration}s per run"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then run_one A "$bin_a"; run_one B "$bin_b"; else run_one B "$bin_b"; run_one A "$bin_a"; fi
done
