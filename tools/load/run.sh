#!/usr/bin/env bash
# Load benchmark of `credence serve`: the example application flow over loopback, with the
# durable decision log on. Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/run.sh [DURATION_S] [CONNECTIONS]
#
# Needs wrk (Debian: apt-get install wrk). Builds the release binary, starts a server on a
# fresh data directory, runs wrk, verifies the log's hash chain, and prints the results.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-20}"
connections="${2:-32}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

# CREDENCE_BIN runs a given binary instead (to compare two builds in alternation).
[ -n "${CREDENCE_BIN:-}" ] || cargo build --release --quiet
bin="${CREDENCE_BIN:-target/release/credence}"
work="$(mktemp -d)"
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
url="$(head -1 "$work/server.out" | awk '{print $4}')"
key="$("$bin" keys create --data-dir "$work/data" --role decide --user load | tail -1)"

# Warm up (connections, caches), then measure.
CREDENCE_KEY="$key" CREDENCE_BODY_FILE=examples/consumer-loan/samples/application-approve.json \
  wrk -t1 -c"$connections" -d3s -s tools/load/decide.lua "$url/v1/decisions/application" >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date: $(date -u +%Y-%m-%d)"
CREDENCE_KEY="$key" CREDENCE_BODY_FILE=examples/consumer-loan/samples/application-approve.json \
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s tools/load/decide.lua "$url/v1/decisions/application"

echo "--- decision log"
curl -s "$url/metrics" | grep -E '^credence_log_(commit_seconds|batch_size)_(sum|count)' || true
# Commits slower than 5 ms: on this VM they come from the disk, not from Credence
# (tools/load/disk_probe.py).
curl -s "$url/metrics" | awk -F'[ ]' '/^credence_log_commit_seconds_bucket\{le="0.005"\}/ {fast=$2}
  /^credence_log_commit_seconds_count/ {all=$2}
  END {if (all) printf "log commits over 5 ms: %d of %d (%.2f%%)\n", all-fast, all, 100*(all-fast)/all}'
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
"$bin" audit verify --data-dir "$work/data"
