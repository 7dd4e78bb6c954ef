#!/usr/bin/env bash
# One build of `credence serve` on each store, under the same load, in alternation: one node on
# the embedded store (SQLite), one node on PostgreSQL, two nodes on PostgreSQL. Prints
# decisions/s, p50/p99 (wrk's, per run; for two nodes the slower node's), server CPU µs per
# decision (the nodes' utime + stime from /proc over the measured run), PostgreSQL's CPU µs per
# decision (every process of the cluster), WAL flushes per decision (pg_stat_wal.wal_sync: what
# group commit divides), decisions per log commit (the nodes' credence_log_batch_size), and the
# bytes a decision takes on PostgreSQL (its partition with indexes, its idempotency key). Not a
# test: its numbers go in docs/benchmarks.md and docs/deployment.md.
#
# The load is the example application decision with no data provider reachable, as in
# compare.sh: each decision's data sources miss the node's cache, and on PostgreSQL each miss
# also asks the answers the nodes share (one indexed read per source) — what a new customer
# costs.
#
#   tools/load/stores.sh BIN [ROUNDS] [DURATION_S] [CONNECTIONS]
#
# PostgreSQL runs durable (fsync and synchronous_commit on, the defaults), started with
# tools/postgres/start.sh on a private port and stopped at the end. Everything shares this
# machine's cores: the load generator, the nodes and the database.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$1"; rounds="${2:-3}"; duration="${3:-15}"; connections="${4:-16}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
ticks=$(getconf CLK_TCK)
sample=examples/consumer-loan/samples/application-approve.json
pg_dir=$(mktemp -d /tmp/credence-bench-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin_url=$(tools/postgres/start.sh "$pg_dir" "$pg_port")
trap 'tools/postgres/stop.sh "$pg_dir"' EXIT
base_url="${admin_url%/postgres}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Every process of the PostgreSQL cluster: the postmaster and its children.
pg_ticks() {
  local postmaster; postmaster=$(head -1 "$pg_dir/data/postmaster.pid")
  awk -v pm="$postmaster" '{ if ($1 == pm || $4 == pm) t += $14 + $15 } END {print t + 0}' /proc/[0-9]*/stat 2>/dev/null
}
psql_one() { psql -qAt "$1" -c "$2"; }

start_node() { # DIR ARGS... → prints "PID URL"
  local dir="$1"; shift
  mkdir -p "$dir"
  "$bin" serve --addr 127.0.0.1:0 --data-dir "$dir/data" "$@" >"$dir/out" 2>"$dir/err" &
  local pid=$!
  for _ in $(seq 1 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.05; done
  echo "$pid $(head -1 "$dir/out" | awk '{print $4}')"
}

wrk_run() { # URL KEY CONNECTIONS SECONDS OUT
  CREDENCE_KEY="$2" CREDENCE_BODY_FILE="$sample" \
    wrk -t1 -c"$3" -d"${4}s" --latency -s tools/load/decide.lua "$1/v1/decisions/application" >"$5"
}

run_one() { # LABEL NODES STORE(sqlite|pg)
  local label="$1" nodes="$2" store="$3" work db_url="" pids=() urls=()
  work="$(mktemp -d)"
  local place=()
  if [ "$store" = pg ]; then
    local name="bench_$RANDOM$RANDOM"
    psql_one "$admin_url" "CREATE DATABASE $name" >/dev/null
    db_url="$base_url/$name"
    place=(--database-url "$db_url")
  fi
  for n in $(seq 1 "$nodes"); do
    local args=()
    [ "$store" = pg ] && args=(--database-url "$db_url" --node-id "node-$n")
    read -r pid url < <(start_node "$work/n$n" "${args[@]}")
    pids+=("$pid"); urls+=("$url")
  done
  local key
  if [ "$store" = pg ]; then
    key="$("$bin" keys create "${place[@]}" --role decide --user load | tail -1)"
  else
    key="$("$bin" keys create --data-dir "$work/n1/data" --role decide --user load | tail -1)"
  fi
  local per_node=$((connections / nodes))
  for u in "${urls[@]}"; do wrk_run "$u" "$key" "$per_node" 3 /dev/null & done; wait
  local before=0 after=0 pg_before=0 pg_after=0 syncs_before=0 syncs_after=0
  for p in "${pids[@]}"; do before=$((before + $(cpu_ticks "$p"))); done
  if [ "$store" = pg ]; then
    pg_before=$(pg_ticks)
    syncs_before=$(psql_one "$db_url" "SELECT wal_sync FROM pg_stat_wal")
  fi
  local i=0
  for u in "${urls[@]}"; do i=$((i + 1)); wrk_run "$u" "$key" "$per_node" "$duration" "$work/wrk$i" & done; wait
  for p in "${pids[@]}"; do after=$((after + $(cpu_ticks "$p"))); done
  local pg_cpu="" syncs="" bytes="" batch_sum=0 batch_count=0
  for u in "${urls[@]}"; do
    read -r s c < <(curl -s "$u/metrics" | awk '/^credence_log_batch_size_sum/ {s=$2} /^credence_log_batch_size_count/ {c=$2} END {print s+0, c+0}')
    batch_sum=$(awk -v a="$batch_sum" -v b="$s" 'BEGIN {print a + b}'); batch_count=$(awk -v a="$batch_count" -v b="$c" 'BEGIN {print a + b}')
  done
  if [ "$store" = pg ]; then
    pg_after=$(pg_ticks)
    syncs_after=$(psql_one "$db_url" "SELECT wal_sync FROM pg_stat_wal")
    bytes=$(psql_one "$db_url" "SELECT (((SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'decisions') + pg_total_relation_size('decision_keys')) / GREATEST((SELECT COUNT(*) FROM decisions), 1))::bigint")
    pg_cpu=$((pg_after - pg_before)); syncs=$((syncs_after - syncs_before))
  fi
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  cat "$work"/wrk* | awk -v label="$label" -v cpu=$((after - before)) -v ticks="$ticks" \
      -v pgcpu="$pg_cpu" -v syncs="$syncs" -v bytes="$bytes" -v bsum="$batch_sum" -v bcount="$batch_count" '
    /Requests\/sec/ {rps += $2}
    / 99%/ {v=$2; ms = (v ~ /ms$/) ? v+0 : (v ~ /us$/) ? v/1000 : v*1000; if (ms > p99) {p99 = ms}}
    / 50%/ {v=$2; ms = (v ~ /ms$/) ? v+0 : (v ~ /us$/) ? v/1000 : v*1000; if (ms > p50) {p50 = ms}}
    /requests in/ {n += $1}
    /Non-2xx/ {bad += $NF}
    END {
      printf "%-16s %7.0f decisions/s  p50 %6.2f ms  p99 %6.2f ms  nodes CPU %6.1f µs/decision  %5.1f decisions/commit",
             label, rps, p50, p99, cpu / ticks * 1e6 / n, (bcount ? bsum / bcount : 0)
      if (pgcpu != "") printf "  PostgreSQL CPU %6.1f µs/decision  %6.4f WAL flushes/decision  %s bytes/decision", pgcpu / ticks * 1e6 / n, syncs / n, bytes
      if (bad) printf "  NON-2XX %d", bad
      printf "\n"
    }'
  rm -rf "$work"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "build: $bin"; echo "wrk: $connections connections in all, ${duration}s per run; PostgreSQL $(psql -qAt "$admin_url" -c 'SHOW server_version')"
configurations=("sqlite-1-node 1 sqlite" "postgres-1-node 1 pg" "postgres-2-nodes 2 pg")
for round in $(seq 1 "$rounds"); do
  for k in 0 1 2; do
    c=${configurations[$(((k + round - 1) % 3))]}
    # shellcheck disable=SC2086
    run_one $c
  done
done
