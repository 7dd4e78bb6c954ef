#!/usr/bin/env bash
# Live latency with and without a candidate in shadow, on one server, in alternation. The load
# is the card-line example's application decision (`serve --example`; no data provider), sent
# at a fixed RATE a second (credence-loadgen, an open loop: a request's latency counts from when
# it was due). Each round measures the live decisions with no rollout, then with a candidate
# version in shadow (every live decision also evaluated by the candidate, off the request's
# path), or the other way round on even rounds. Prints, per run: latency from the scheduled
# time (p50/p90/p99/p99.9), server CPU µs per live decision (the shadow evaluation included
# when on), and for the shadow runs the twins stored against the live decisions of the run
# (every one, once the queue drains). Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/shadow.sh BIN [ROUNDS] [DURATION_S] [RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$1"; rounds="${2:-3}"; duration="${3:-20}"; rate="${4:-2000}"
cargo build --release --quiet -p credence-loadgen
ticks=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/credence-shadow-bench.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

"$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" --example >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 200); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
url=$(head -1 "$work/out" | awk '{print $4}')
admin=$("$bin" keys create --data-dir "$work/data" --role admin --user load | tail -1)
approver=$("$bin" keys create --data-dir "$work/data" --role approver --user checker | tail -1)
# Each request a new customer.
sed 's/"C-200001"/"C-load-{n}"/' examples/card-line/samples/application-approve.json >"$work/body.json"

# The candidate: a stricter grey zone and a cheaper grade A.
cp -r examples/card-line "$work/candidate"
sed -i 's/- \["\[525..550)", D\]/- ["[540..550)", D]/; s/- \[\x27"A"\x27, 0.169, 3.0\]/- [\x27"A"\x27, 0.159, 3.0]/' "$work/candidate/flows/application.yaml"
sed -i 's/apr: 0.169/apr: 0.159/' "$work/candidate/tests/application.yaml"
version=$("$bin" strategy upload "$work/candidate" --server "$url" --key "$admin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["strategy"]["version"])')
"$bin" strategy approve "$version" --server "$url" --key "$approver" >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
load() { # SECONDS WARMUP OUT
  target/release/credence-loadgen "$url/v1/strategies/card-line/decisions/application" --rate "$rate" \
    --duration-s "$1" --warmup-s "$2" --body-file "$work/body.json" \
    --header "Authorization: Bearer $admin" --header "Content-Type: application/json" >"$3"
}
report() { "$bin" shadow report --strategy card-line --differing 0 --server "$url" --key "$admin"; }

run() { # MODE(off|shadow)
  local mode="$1" before after answered twins="" lag=""
  if [ "$mode" = shadow ]; then
    "$bin" strategy shadow "$version" --server "$url" --key "$approver" >/dev/null
  fi
  before=$(cpu_ticks)
  load "$duration" 0 "$work/run"
  after=$(cpu_ticks)
  answered=$(awk '/answered/ {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^answered/) print $i}' "$work/run")
  if [ "$mode" = shadow ]; then
    local start; start=$(date +%s%N)
    for _ in $(seq 1 300); do
      report >"$work/report"
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["live_without_twin"] == 0 else 1)' "$work/report" && break
      sleep 0.1
    done
    lag=$(( ($(date +%s%N) - start) / 1000000 ))
    twins=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%d/%d" % (r["twins"], r["live_decisions"]))' "$work/report")
    "$bin" strategy abort --strategy card-line --server "$url" --key "$approver" >/dev/null
  fi
  awk -v mode="$mode" -v cpu=$((after - before)) -v ticks="$ticks" -v n="$answered" -v twins="$twins" -v lag="$lag" '
    /latency from the scheduled time/ {sub(/^latency from the scheduled time: /, ""); latency = $0}
    END {
      printf "%-7s %s  server CPU %6.1f µs/decision", mode, latency, cpu / ticks * 1e6 / n
      if (twins != "") printf "  twins %s (all stored %d ms after the run)", twins, lag
      printf "\n"
    }' "$work/run"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "build: $bin; card-line application decisions at $rate/s, ${duration}s per run"
load 5 0 /dev/null
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then run off; run shadow; else run shadow; run off; fi
done
