#!/usr/bin/env bash
# Server CPU per request, the number to drive (issue 28): against one `credence serve`, a
# `/healthz` floor and then the example `application` decision, each at a fixed rate below
# saturation (open loop, credence-loadgen), on the embedded store and on PostgreSQL, in
# alternation. Not a test: its numbers go in docs/benchmarks.md.
#
#   tools/load/cpu_per_decision.sh [RATE] [DURATION_S] [ROUNDS] [STORES]
#
# RATE requests a second (default 5000), DURATION_S measured seconds after a 3 s warm-up
# (default 15), ROUNDS alternations (default 3), STORES `embedded postgres` (default both).
# Server CPU per request is the server process's utime + stime over the whole run (warm-up
# included) ÷ the requests sent in it: everything the node spends — HTTP, the decision, the
# record, the log writer's commits, metrics. On PostgreSQL the database's own CPU (its
# backends' utime + stime, read from /proc) is printed beside it, and the server's context
# switches per request (its threads' /proc counters) too. After each decision run the server's
# stage timing is read from /metrics (`credence_decision_stage_seconds`, one decision in 64
# timed at each stage: fingerprint, parse, route, validate, decide, record, commit, after) with
# the records per log commit, and the server's CPU is split by thread group (the HTTP threads,
# the runtime's workers, the log writer, …), user and kernel time apart, from /proc/PID/task.
# CREDENCE_PERF=1 adds a `perf` profile of one decision run per store: the share of each
# function.
set -euo pipefail
cd "$(dirname "$0")/../.."
rate="${1:-5000}"
duration="${2:-15}"
rounds="${3:-3}"
stores="${4:-embedded postgres}"
warmup=3

[ -n "${CREDENCE_BIN:-}" ] || cargo build --release --quiet
cargo build --release --quiet -p credence-loadgen
bin="${CREDENCE_BIN:-target/release/credence}"
work="$(mktemp -d)"
server_pid=""
pg_dir=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ -z "$pg_dir" ] || { tools/postgres/stop.sh "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir"; }
  rm -rf "$work"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)

# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# switches PID: voluntary + involuntary context switches of the process's threads.
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null \
    | awk '/^(non)?voluntary_ctxt_switches/ {n += $2} END {print n + 0}'
}

# thread_ticks PID: utime and stime per group of the process's threads, one
# `name utime stime` line each; a group is a thread name less its number (credence-http-0 and
# -1 are credence-http).
thread_ticks() {
  local task
  for task in /proc/"$1"/task/*; do
    [ -r "$task/stat" ] || continue
    echo "$(sed 's/-[0-9]*$//; s/ /_/g' "$task/comm") $(awk '{print $14, $15}' "$task/stat")"
  done | awk '{u[$1] += $2; s[$1] += $3} END {for (k in u) print k, u[k], s[k]}' | sort
}

# postgres_pids: the PostgreSQL server's processes (postmaster and backends).
postgres_pids() {
  [ -n "$pg_dir" ] || return 0
  local main
  main=$(head -1 "$pg_dir/data/postmaster.pid")
  echo "$main" $(pgrep -P "$main" || true)
}

start_server() {
  local store="$1" data="$work/data-$1-$RANDOM"
  local place=(--data-dir "$data")
  if [ "$store" = postgres ]; then
    if [ -z "$pg_dir" ]; then
      # Where the `postgres` user can reach it (mktemp's directory is its creator's only).
      pg_dir="$(mktemp -d /tmp/credence-cpu-pg.XXXXXX)"
      local port
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      pg_url=$(tools/postgres/start.sh "$pg_dir" "$port")
    fi
    local db="cpu$RANDOM"
    psql "$pg_url" -qc "CREATE DATABASE $db" >/dev/null
    place=(--database-url "${pg_url%/*}/$db")
  fi
  "$bin" serve --addr 127.0.0.1:0 "${place[@]}" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 1 200); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    sleep 0.1
  done
  url="$(grep -m1 "listening on" "$work/server.out" | awk '{print $4}')"
  key="$("$bin" keys create "${place[@]}" --role decide --user load | tail -1)"
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# measure LABEL ARGS...: one open-loop run; prints rate, CPU µs per request, latency.
measure() {
  local label="$1"
  shift
  local before pg_before after pg_after sent out switched
  switched=$(switches "$server_pid")
  thread_ticks "$server_pid" >"$work/threads-before"
  before=$(cpu_ticks "$server_pid")
  pg_before=$(cpu_ticks $(postgres_pids))
  out=$(target/release/credence-loadgen --rate "$rate" --duration-s "$duration" --warmup-s "$warmup" \
    --max-connections 64 "$@")
  after=$(cpu_ticks "$server_pid")
  pg_after=$(cpu_ticks $(postgres_pids))
  switched=$(($(switches "$server_pid") - switched))
  sent=$((rate * (duration + warmup)))
  # Where the server's CPU went, by thread group, as user + kernel (threads that ended meanwhile
  # are not counted).
  thread_ticks "$server_pid" | join -a2 -e 0 -o 0,1.2,1.3,2.2,2.3 "$work/threads-before" - \
    | awk -v label="$label" -v store="$store" -v ticks="$ticks" -v sent="$sent" '
      { user = $4 - $2; kernel = $5 - $3; scale = 1e6 / ticks / sent
        if (user + kernel > 0) line = line sprintf(" %s %.1f+%.1f", $1, user * scale, kernel * scale) }
      END { print store ", " label ": CPU µs per request by thread (user+kernel):" line }' >>"$work/threads.txt"
  local answered latency
  answered=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9]*\) answered,.*/\1/p' | head -1)
  latency=$(printf '%s\n' "$out" | sed -n 's/^latency from the scheduled time: //p' | head -1)
  awk -v label="$label" -v cpu="$((after - before))" -v pg="$((pg_after - pg_before))" \
    -v ticks="$ticks" -v sent="$sent" -v store="$store" -v answered="$answered" \
    -v latency="$latency" -v switched="$switched" 'BEGIN {
      line = sprintf("| %s | %s | %s | %.1f | %.2f |", store, label, answered, cpu * 1e6 / ticks / sent, switched / sent);
      if (store == "postgres") line = line sprintf(" %.1f |", pg * 1e6 / ticks / sent); else line = line " — |";
      print line " " latency " |";
    }'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); date: $(date -u +%Y-%m-%d)"
echo "open loop at ${rate}/s for ${duration} s after ${warmup} s of warm-up; CPU counts the whole run"
echo
echo "| store | request | answered (measured) | server CPU µs/request | context switches/request | database CPU µs/request | latency from the scheduled time |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
body="$work/body.json"
sed -e 's/"C-100011"/"C-cpu-{n}"/' examples/consumer-loan/samples/application-approve.json >"$body"
for round in $(seq 1 "$rounds"); do
  for store in $stores; do
    start_server "$store"
    measure "/healthz" --get "$url/healthz"
    measure "application decision" --body-file "$body" --header "Authorization: Bearer $key" \
      "$url/v1/decisions/application"
    # The sampled stage timing (one decision in 64) of this server's decisions so far.
    curl -fsS "$url/metrics" | awk -v store="$store" -v round="$round" '
      /^credence_decision_stage_seconds_sum/ { split($1, a, "\""); sum[a[2]] = $2 }
      /^credence_decision_stage_seconds_count/ { split($1, a, "\""); count[a[2]] = $2 }
      /^credence_log_batch_size_sum/ { records = $2 }
      /^credence_log_batch_size_count/ { batches = $2 }
      END {
        line = sprintf("%s, round %s: records per log commit %.1f; mean µs per stage:", store, round,
          batches ? records / batches : 0);
        n = split("fingerprint idempotency parse route validate decide record commit after", order, " ");
        for (i = 1; i <= n; i++) if (count[order[i]]) line = line sprintf(" %s %.1f", order[i], sum[order[i]] / count[order[i]] * 1e6);
        print line;
      }' >>"$work/stages.txt"
    if [ "${CREDENCE_PERF:-}" = 1 ] && [ "$round" = 1 ] && command -v perf >/dev/null; then
      perf record -q -g -o "$work/perf-$store.data" -p "$server_pid" -- sleep "$((duration + warmup))" &
      perf_pid=$!
      measure "application decision (under perf)" --body-file "$body" \
        --header "Authorization: Bearer $key" "$url/v1/decisions/application" >/dev/null
      wait "$perf_pid" || true
      perf report -q -i "$work/perf-$store.data" --no-children --sort symbol -g none 2>/dev/null \
        | grep -v '^$' | head -40 >"$work/perf-$store.txt" || true
    fi
    stop_server
  done
done
echo
echo "Server CPU µs per request by thread group, user+kernel (HTTP threads, the runtime's workers, the log writer, …):"
cat "$work/threads.txt"
echo
echo "Stages of a served decision (wall time of one decision in 64; commit is the wait for the log):"
cat "$work/stages.txt"
for store in $stores; do
  if [ -s "$work/perf-$store.txt" ]; then
    echo
    echo "perf, $store, the top symbols of one decision run:"
    cut -c1-120 "$work/perf-$store.txt"
  fi
done
