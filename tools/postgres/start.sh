#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for tests and benchmarks: `tools/postgres/start.sh DIR PORT [setting=value ...]`.
# Installs PostgreSQL from Debian's packages when it is missing, makes a cluster in DIR with
# initdb (as the `postgres` user when run as root), starts it with pg_ctl on 127.0.0.1:PORT
# (trust authentication: for loopback tests only) and prints its superuser URL. Stop it with
# tools/postgres/stop.sh DIR. Extra arguments are server settings (e.g. fsync=off for tests;
# benchmarks keep the durable defaults).
set -euo pipefail
dir=${1:?usage: start.sh DIR PORT [setting=value ...]}
port=${2:?usage: start.sh DIR PORT [setting=value ...]}
shift 2

bin=${CREDENCE_POSTGRES_BIN:-}
if [ -z "$bin" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postgresql >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

as_owner=()
if [ "$(id -u)" = 0 ]; then
  as_owner=(runuser -u postgres --)
fi
rm -rf "$dir"
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300"
for setting in "$@"; do options="$options -c $setting"; done
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -o "$options" -l "$dir/server.log" -w start >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres"
