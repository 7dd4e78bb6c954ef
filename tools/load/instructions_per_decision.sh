#!/usr/bin/env bash
# User-space instructions per served request, the steady companion of cpu_per_decision.sh (issue
# 28): one `credence serve` on the embedded store runs under valgrind's callgrind; after a
# warm-up, a `/healthz` floor and then the example `application` decision are each sent REQUESTS
# times at a low fixed rate, and the instructions the whole node executed (every thread: HTTP,
# the decision, the log writer, the index writer) are divided by the requests. CPU time on this
# shared host moves ±30 % from hour to hour; this count moves by a fraction of a percent, so a
# cut of 1 % shows. Kernel work (system calls, the network path, fsync) is not counted.
#
#   tools/load/instructions_per_decision.sh [REQUESTS] [BINARY...]
#
# REQUESTS per measured phase (default 2000, sent at 200/s). With several binaries (two builds to
# compare) they are measured in turn, twice, alternating. Needs valgrind (`apt-get install
# valgrind`). Under valgrind the CPU's SHA extensions are hidden, so SHA-256 (the request's
# fingerprint, the hash chain, provider cache keys) runs in software at about ten times its real
# cost: it is printed apart, and "without SHA-256" is the figure to compare. Not a test: its
# numbers go in docs/benchmarks.md. CREDENCE_CALLGRIND_DIR=DIR keeps each phase's callgrind
# dump (`/healthz`, decision) in DIR, to read with `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/../.."
requests="${1:-2000}"
shift || true
rate=200
[ "$#" -gt 0 ] || { cargo build --release --quiet; set -- target/release/credence; }
cargo build --release --quiet -p credence-loadgen
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# total FILE [FUNCTION]: the program's instructions in a callgrind dump, or one function's own.
# (awk reads to the end: leaving early would fail the pipe under `pipefail`.)
total() {
  if [ -z "${2:-}" ]; then
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
  else
    callgrind_annotate --threshold=100 --auto=no "$1" 2>/dev/null \
      | awk -v f="$2" 'index($0, f) && !done {gsub(",", "", $1); print $1; done = 1}'
  fi
}

# inclusive FILE FUNCTION: instructions in a function and what it calls (0 when never called).
inclusive() {
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null \
    | awk -v f="$2" 'index($0, f) && !done {gsub(",", "", $1); print $1; done = 1} END {if (!done) print 0}'
}

sed -e 's/"C-100011"/"C-ins-{n}"/' examples/consumer-loan/samples/application-approve.json >"$work/body.json"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%d)"
echo "$requests requests per phase at ${rate}/s, after a warm-up of 600 of each; embedded store"
echo
echo "| binary | /healthz instructions | decision instructions | of which SHA-256 in software | decision without SHA-256 | engine (evaluate) | record JSON | body parse + validate |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
passes=1
[ "$#" -gt 1 ] && passes=2
for _ in $(seq 1 "$passes"); do
  for bin in "$@"; do
    data="$work/data-$RANDOM"
    key="$("$bin" keys create --data-dir "$data" --role decide --user load | tail -1)"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
      "$bin" serve --addr 127.0.0.1:0 --data-dir "$data" >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    for _ in $(seq 1 600); do
      grep -q "listening on" "$work/server.out" 2>/dev/null && break
      sleep 0.2
    done
    url="$(grep -m1 "listening on" "$work/server.out" | awk '{print $4}')"
    [ -n "$url" ] || { echo "the server did not start under valgrind: $(tail -3 "$work/server.err")" >&2; exit 1; }
    load() {
      target/release/credence-loadgen --rate "$rate" --duration-s "$1" --warmup-s 0 --max-connections 8 "${@:2}" >/dev/null
    }
    decide=(--body-file "$work/body.json" --header "Authorization: Bearer $key" "$url/v1/decisions/application")
    load 3 --get "$url/healthz"
    load 3 "${decide[@]}"
    # Zero, measure /healthz, dump (cg.out.1; a dump zeroes the counters), measure the decision,
    # dump again (cg.out.2).
    callgrind_control -z "$server_pid" >/dev/null 2>&1
    load $((requests / rate)) --get "$url/healthz"
    callgrind_control -d "$server_pid" >/dev/null 2>&1
    load $((requests / rate)) "${decide[@]}"
    callgrind_control -d "$server_pid" >/dev/null 2>&1
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    floor=$(total "$work/cg.out.1")
    all=$(total "$work/cg.out.2")
    sha=$(total "$work/cg.out.2" "sha2::sha256::soft::compress")
    engine=$(inclusive "$work/cg.out.2" "CompiledStrategy>::evaluate ")
    record=$(inclusive "$work/cg.out.2" "DecisionRecord::write ")
    # The body is read into its entries (a flat object of scalars by the flat read, any other
    # object by the strict parse) and validated from them: `InputBody::parse` does all of the
    # reading, its UTF-8 check included. Builds before it read the whole value, or called the
    # readers from elsewhere.
    parse=$(inclusive "$work/cg.out.2" "InputBody::parse ")
    if [ "${parse:-0}" = 0 ]; then
      parse=$(( $(inclusive "$work/cg.out.2" "strict_json::parse_value ") + $(inclusive "$work/cg.out.2" "strict_json::parse_object_entries ") + $(inclusive "$work/cg.out.2" "flat_json::parse_flat_object ") ))
    fi
    validate=$(( $(inclusive "$work/cg.out.2" "CompiledStrategy>::validate_input ") + $(inclusive "$work/cg.out.2" "CompiledStrategy>::validate_input_entries ") ))
    awk -v bin="$bin" -v n="$requests" -v floor="$floor" -v all="$all" -v sha="${sha:-0}" \
      -v engine="${engine:-0}" -v record="${record:-0}" -v parse="${parse:-0}" -v validate="${validate:-0}" 'BEGIN {
        printf "| %s | %.1fk | %.1fk | %.1fk | **%.1fk** | %.1fk | %.1fk | %.1fk |\n", bin, floor / n / 1000,
          all / n / 1000, sha / n / 1000, (all - sha) / n / 1000, engine / n / 1000, record / n / 1000,
          (parse + validate) / n / 1000
      }'
    # CREDENCE_CALLGRIND_DIR=DIR keeps each phase's dump there, for callgrind_annotate.
    if [ -n "${CREDENCE_CALLGRIND_DIR:-}" ]; then
      mkdir -p "$CREDENCE_CALLGRIND_DIR"
      kept="$CREDENCE_CALLGRIND_DIR/$(basename "$bin")-$RANDOM"
      cp "$work/cg.out.1" "$kept-healthz.callgrind"
      cp "$work/cg.out.2" "$kept-decision.callgrind"
    fi
    rm -f "$work"/cg.out*
  done
done
