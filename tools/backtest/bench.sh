#!/usr/bin/env bash
# Back-test throughput: ROWS application rows (the Lending Club applications repeated, each copy
# with its own ids) through the example `application` flow — scorecard, income model (XGBoost),
# recorded provider answers — with and without a challenger. Not a test: its numbers go in
# docs/benchmarks.md.
#
#   tools/backtest/bench.sh [ROWS] [RUNS]
#
# Each mode runs RUNS times (default 3) and prints every run and the median wall time, with the
# CPU seconds each run took: on a shared VM the same work takes from one run to the next a
# different amount of CPU time, and the CPU seconds show when a slow run was a slow host.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-1000000}"
runs="${2:-3}"
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
  walls=()
  for run in $(seq 1 "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$work/time-$mode.txt" "$bin" backtest \
      --strategy examples/consumer-loan "${extra[@]}" \
      --flow application --input "$work/rows.csv" --as-of 2026-11-29 --by grade \
      --summary-json "$work/summary-$mode.json" 2>"$work/err-$mode.txt"
    read -r wall user sys rss <"$work/time-$mode.txt"
    walls+=("$wall")
    echo "$mode run $run: $wall s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') CPU s, $(echo "$rows / $wall" | bc) rows/s, $rss KB max resident"
  done
  median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
  echo "$mode: median $median s over $runs run(s), $(echo "$rows / $median" | bc) rows/s"
done
