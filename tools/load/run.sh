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
  # Each request is a new customer.
  sed -e "s/\"C-100001\"/\"C-rate-$RANDOM-{n}\"/" \
    examples/consumer-loan/samples/application-approve.json >"$work/body.json"
  target/release/credence-loadgen "$url/v1/decisions/application" --rate "$rate" \
    --duration-s "$duration" --warmup-s 3 --max-connections "$connections" \
    --body-file "$work/body.json" --header "Authorization: Bearer $key"
else
  # Warm up (connections, caches), then measure.
  CREDENCE_KEY="$key" CREDENCE_BODY_FILE=examples/consumer-loan/samples/application-approve.json \
    wrk -t1 -c"$connections" -d3s -s tools/load/decide.lua "$url/v1/decisions/application" >/dev/null
  echo "date: $(date -u +%Y-%m-%d)"
  CREDENCE_KEY="$key" CREDENCE_BODY_FILE=examples/consumer-loan/samples/application-approve.json \
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s tools/load/decide.lua "$url/v1/decisions/application"
fi

# The server's own view of the target (p99 within 5 ms), warm-up included: from a request
# reaching its route (body read, key checked) to its answer being ready, commit included;
# without the load generator, the network or the wait for a core before the request is read.
curl -s "$url/metrics" | awk '
  index($0, "credence_http_request_seconds_bucket{route=\"/v1/decisions/{flow_or_id}\",le=\"0.005\"}") == 1 {ok=$2}
  index($0, "credence_http_request_seconds_count{route=\"/v1/decisions/{flow_or_id}\"}") == 1 {all=$2}
  END {if (all && ok != "") printf "decisions answered within 5 ms, server side: %d of %d (%.2f%%)\n", ok, all, 100*ok/all}'
echo "--- decision log"
curl -s "$url/metrics" | grep -E '^credence_log_(commit_seconds|batch_size)_(sum|count)' || true
# Commits slower than 5 ms: on this VM they come from the disk, not from Credence
# (tools/load/disk_probe.py).
curl -s "$url/metrics" | awk -F'[ ]' '/^credence_log_commit_seconds_bucket\{le="0.005"\}/ {fast=$2}
  /^credence_log_commit_seconds_count/ {all=$2}
  END {if (all) printf "log commits over 5 ms: %d of %d (%.2f%%)\n", all-fast, all, 100*(all-fast)/all}'
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
"$bin" audit verify --data-dir "$work/data"
