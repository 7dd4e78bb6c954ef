#!/usr/bin/env bash
# Back-test throughput: ROWS application rows (the Lending Club applications repeated, each copy
# with its own ids) through the example `application` flow — scorecard, income model (XGBoost),
# recorded provider answers — with and without a challenger. Not a test: its numbers go in
# docs/benchmarks.md.
#
#   tools/backtest/bench.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-1000000}"
cargo build --release --quiet
bin=target/release/credence
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source_csv=data/backtest/lending_club_applications.csv
copies=$(( (rows + 9999) / 10000 ))
{
  head -1 "$source_csv"
  for copy in $(seq 1 "$copies"); do
    tail -n +2 "$source_csv" | sed "s/^LC-\([0-9]*\),LC-C-\([0-9]*\),/LC-$copy-\1,LC-C-$copy-\2,/"
  done
} | head -n $((rows + 1)) >"$work/rows.csv"
tools/backtest/make_challenger.sh "$work/challenger" >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date: $(date -u +%Y-%m-%d); rows: $rows ($(du -h "$work/rows.csv" | cut -f1))"
for mode in champion challenger; do
  extra=()
  [ "$mode" = challenger ] && extra=(--challenger "$work/challenger")
  start=$(date +%s.%N)
  /usr/bin/time -f "%M KB max resident" "$bin" backtest --strategy examples/consumer-loan "${extra[@]}" \
    --flow application --input "$work/rows.csv" --as-of 2026-11-29 --by grade \
    --summary-json "$work/summary-$mode.json" 2>"$work/err-$mode.txt"
  end=$(date +%s.%N)
  seconds=$(echo "$end - $start" | bc)
  echo "$mode: $seconds s, $(echo "$rows / $seconds" | bc) rows/s, $(tail -1 "$work/err-$mode.txt")"
done
