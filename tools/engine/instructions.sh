#!/usr/bin/env bash
# Instructions the engine executes per decision of the example `application` flow, for each
# sample (approve, refer, decline): `decide_loop` (crates/credence-engine/examples) run under
# valgrind's callgrind for N and 2N decisions, and the difference divided by N, so that
# compiling the package and starting the process cancel out. Offline: the data steps have no
# recorded answers. The count moves by a fraction of a percent from run to run where CPU time
# moves by ±30 % on a shared host, so a cut of 1 % shows. Not a test: its numbers go in
# docs/benchmarks.md.
#
#   tools/engine/instructions.sh [N] [BINARY...]
#
# N decisions (default 20000). With no BINARY, builds and measures this checkout's
# `decide_loop`; with several (builds of two commits), measures each in turn for every sample.
# Needs valgrind (`apt-get install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-20000}"
shift || true
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
if [ "$#" -eq 0 ]; then
  cargo build --release --quiet --example decide_loop -p credence-engine
  set -- target/release/examples/decide_loop
fi
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 \
    | awk '/refs:/ { gsub(",", "", $4); print $4 }'
}
echo "| sample | binary | instructions per decision |"
echo "| --- | --- | --- |"
for sample in application-approve.json application-refer.json application-decline.json; do
  for bin in "$@"; do
    once=$(count "$bin" "$n" "$sample")
    twice=$(count "$bin" $((2 * n)) "$sample")
    echo "| $sample | $bin | $(( (twice - once) / n )) |"
  done
done
