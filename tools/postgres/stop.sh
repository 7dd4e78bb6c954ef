#!/usr/bin/env bash
# Stops a PostgreSQL started by tools/postgres/start.sh DIR and removes DIR.
set -euo pipefail
dir=${1:?usage: stop.sh DIR}
bin=${CREDENCE_POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
if [ -f "$dir/data/postmaster.pid" ]; then
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
fi
rm -rf "$dir"
