#!/usr/bin/env bash
# Load benchmark of decisions that call third-party providers: the example application flow
# without a verified income (so it asks the income and the liabilities provider, concurrently),
# every request a new customer (no cache hits), against `credence sim-providers` with a fixed
# latency. Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/providers.sh [DURATION_S] [CONNECTIONS] [PROVIDER_LATENCY_MS] [RATE]
#
# Without RATE, wrk keeps CONNECTIONS requests in flight (a closed loop). With RATE, requests
# arrive at RATE a second whatever happens to earlier ones (credence-loadgen, an open loop),
# and each one's latency counts from when it was due: the test of "sustains RATE decisions/s
# with p99 ≤ X". Needs wrk (Debian: apt-get install wrk) for the closed loop.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/load/common.sh
duration="${1:-20}"
connections="${2:-256}"
latency="${3:-50}"
rate="${4:-}"
[ -n "$rate" ] || command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

# CREDENCE_BIN runs a given binary instead (to compare two builds in alternation).
[ -n "${CREDENCE_BIN:-}" ] || cargo build --release --quiet
[ -z "$rate" ] || cargo build --release --quiet -p credence-loadgen
bin="${CREDENCE_BIN:-target/release/credence}"
work="$(mktemp -d)"
trap 'kill "$server_pid" "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" sim-providers --addr 127.0.0.1:0 --latency-ms "$latency" >"$work/sim.out" 2>&1 &
sim_pid=$!
server_pid=$sim_pid
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/sim.out" 2>/dev/null && break
  sleep 0.1
done
sim_url="$(head -1 "$work/sim.out" | awk '{print $5}')"
CREDENCE_PROVIDERS_URL="$sim_url" "$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
url="$(head -1 "$work/server.out" | awk '{print $4}')"
key="$("$bin" keys create --data-dir "$work/data" --role decide --user load | tail -1)"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ -n "$rate" ]; then
  echo "date: $(date -u +%Y-%m-%d); provider latency ${latency} ms; open loop at ${rate}/s"
else
  echo "date: $(date -u +%Y-%m-%d); provider latency ${latency} ms; ${connections} connections"
fi
# The lender sends no verified income, so the flow asks the providers (providers.lua drops it
# for wrk); each request is a new customer.
send_load "$url" "$key" "$duration" "$connections" "$rate" tools/load/providers.lua \
  examples/consumer-loan/samples/application-approve.json -e 's/"verified_monthly_income": [0-9]*,//'
echo "--- provider calls"
curl -s "$url/metrics" | grep -E '^credence_provider_(calls|cache_hits)_total' || true
# The server's own view of the target (p99 within the provider latency + 10 ms), when the
# histogram has that bucket (it has 60 ms for the default 50 ms latency).
print_share_within "$url" "$(awk -v l="$latency" 'BEGIN {printf "%g", (l + 10) / 1000}')"
print_slow_commits "$url"
