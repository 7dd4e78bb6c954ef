#!/usr/bin/env bash
# The standing fuzzing campaign: schemathesis against a live `credence serve`, every check on.
#
#   tools/schemathesis/run.sh [BINARY] [MAX_EXAMPLES]
#
# Starts the server on a free port with a fresh data directory, issues a key with every role,
# and runs schemathesis over /openapi.json (all phases: examples, coverage, fuzzing, stateful).
# Fails when any operation was not exercised, or on any failure but the two that business
# rules beyond a schema cause (ST201 "schema-violating request accepted", ST202 "schema-valid
# request rejected": a drawdown above the line, an event in the future, a decide without a
# verdict — see docs/service.md, "Fuzzing"). Server errors (ST101, ST102), response schema
# violations (ST108), undocumented statuses or media types and every other check fail it.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=$(realpath "${1:-target/debug/credence}")
max_examples=${2:-25}
work=$(mktemp -d)
report="$work/schemathesis.txt"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$binary" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
url=""
for _ in $(seq 200); do
  url=$(sed -n 's/^credence listening on //p' "$work/stdout" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the server did not start"; cat "$work/stderr"; exit 1; }
key=$("$binary" keys create --data-dir "$work/data" --role admin,decide,analyst,approver,review --user fuzz | tail -1)

set +e
# Run from the scratch directory: schemathesis keeps caches in its working directory.
# Through the interpreter pip installed it for, whether or not its script is on PATH.
(cd "$work" && python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; sys.exit(schemathesis())' \
  run "$url/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $key" \
  --max-examples "$max_examples" \
  --generation-deterministic \
  --request-timeout 30 \
  --no-color >"$report" 2>&1)
set -e
sed -n '/^=* SUMMARY =*$/,$p' "$report"

selected=$(sed -n 's/^ *Selected: \([0-9]*\)\/\([0-9]*\).*/\2/p' "$report")
tested=$(sed -n 's/^ *Tested: \([0-9]*\).*/\1/p' "$report")
failures=$(grep -oE '(❌|🚫) ST[0-9]{3}' "$report" | grep -oE 'ST[0-9]{3}' | sort -u | grep -vE '^ST20[12]$' || true)
errors=$(sed -n '/^Errors:/,/^$/p' "$report" | grep -E '🚫' || true)
status=0
if [ -z "$selected" ] || [ "$tested" != "$selected" ]; then
  echo "schemathesis: only ${tested:-0} of ${selected:-?} operations were exercised"; status=1
fi
if [ -n "$failures" ]; then
  echo "schemathesis: failing checks:" $failures; grep -B3 -A25 -E "$(echo $failures | tr ' ' '|')" "$report" | head -200; status=1
fi
if [ -n "$errors" ]; then
  echo "schemathesis: errors:"; echo "$errors"; status=1
fi
if grep -q "panicked" "$work/stderr"; then
  echo "schemathesis: the server panicked"; grep -A5 panicked "$work/stderr" | head -40; status=1
fi
[ "$status" = 0 ] && echo "schemathesis: $tested operations, no server error, no schema violation"
exit "$status"
