# Shared by run.sh and providers.sh (sourced, not run): sending the load and reading the
# server's own view of it from /metrics.

# send_load URL KEY DURATION_S CONNECTIONS RATE LUA SAMPLE [SED_ARGS...]
#   With RATE: credence-loadgen sends RATE decisions a second (an open loop), the SAMPLE
#   input edited by SED_ARGS and made a new customer per request.
#   Without: wrk keeps CONNECTIONS requests in flight with the LUA script (which reads SAMPLE),
#   after a 3 s warm-up.
send_load() {
  local url="$1" key="$2" duration="$3" connections="$4" rate="$5" lua="$6" sample="$7"
  shift 7
  if [ -n "$rate" ]; then
    local body
    body="$(mktemp)"
    sed "$@" -e "s/\"C-100011\"/\"C-rate-$RANDOM-{n}\"/" "$sample" >"$body"
    target/release/credence-loadgen "$url/v1/decisions/application" --rate "$rate" \
      --duration-s "$duration" --warmup-s 3 --max-connections "$connections" \
      --body-file "$body" --header "Authorization: Bearer $key"
    rm -f "$body"
  else
    CREDENCE_KEY="$key" CREDENCE_BODY_FILE="$sample" \
      wrk -t1 -c"$connections" -d3s -s "$lua" "$url/v1/decisions/application" >/dev/null
    CREDENCE_KEY="$key" CREDENCE_BODY_FILE="$sample" \
      wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$lua" "$url/v1/decisions/application"
  fi
}

# print_share_within URL SECONDS: the share of decisions the server's own histogram put within
# SECONDS (a bucket it has), warm-up included — from a request reaching its route (body read,
# key checked) to its answer being ready, commit included; without the load generator, the
# network or the wait for a core before the request is read.
print_share_within() {
  curl -s "$1/metrics" | awk -v le="$2" '
    index($0, "credence_http_request_seconds_bucket{route=\"/v1/decisions/{flow_or_id}\",le=\"" le "\"}") == 1 {ok=$2}
    index($0, "credence_http_request_seconds_count{route=\"/v1/decisions/{flow_or_id}\"}") == 1 {all=$2}
    END {if (all && ok != "") printf "decisions answered within %g ms, server side: %d of %d (%.2f%%)\n", le * 1000, ok, all, 100*ok/all}'
}

# print_slow_commits URL: log commits slower than 5 ms — on this VM, disk flushes stalled by
# the host (tools/load/disk_probe.py) or the log writer waiting for a core
# (docs/benchmarks.md, issue 4).
print_slow_commits() {
  curl -s "$1/metrics" | awk -F'[ ]' '/^credence_log_commit_seconds_bucket\{le="0.005"\}/ {fast=$2}
    /^credence_log_commit_seconds_count/ {all=$2}
    END {if (all) printf "log commits over 5 ms: %d of %d (%.2f%%)\n", all-fast, all, 100*(all-fast)/all}'
}
