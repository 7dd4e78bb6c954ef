#!/usr/bin/env bash
# Load benchmark of `credence serve`: the example application flow over loopback, with the
# durable decision log on. Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/run.sh [DURATION_S] [CONNECTIONS] [RATE]
#
# Builds the release binary, starts a server on a fresh data directory, runs the load,
# verifies the log's hash chain, and prints the results. Without RATE, wrk keeps CONNECTIONS
# requests in flight (a closed loop; needs wrk, Debian: apt-get install wrk). With RATE,
# requests arrive at RATE a second whatever happens to earlier ones (credence-loadgen, an open
# loop, on up to CONNECTIONS connections), each latency counted from when it was due.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/load/common.sh
duration="${1:-20}"
connections="${2:-32}"
rate="${3:-}"
[ -n "$rate" ] || command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

# CREDENCE_BIN runs a given binary instead (to compare two builds in alternation).
[ -n "${CREDENCE_BIN:-}" ] || cargo build --release --quiet
[ -z "$rate" ] || cargo build --release --quiet -p credence-loadgen
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

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ -n "$rate" ]; then
  echo "date: $(date -u +%Y-%m-%d); open loop at ${rate}/s"
else
  echo "date: $(date -u +%Y-%m-%d); ${connections} connections"
fi
send_load "$url" "$key" "$duration" "$connections" "$rate" tools/load/decide.lua \
  examples/consumer-loan/samples/application-approve.json
# The server's own view of the target (p99 within 5 ms).
print_share_within "$url" 0.005
echo "--- decision log"
curl -s "$url/metrics" | grep -E '^credence_log_(commit_seconds|batch_size)_(sum|count)' || true
print_slow_commits "$url"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
"$bin" audit verify --data-dir "$work/data"
