#!/usr/bin/env bash
# Proves sql/ against a throwaway PostgreSQL 15 cluster:
#   1. applies sql/NNN_*.sql in order the way the monitor's runner does (each
#      file in one transaction together with its schema_migration row);
#   2. applies every file a second time, raw, as an interrupted runner might;
#   3. runs api_test.sql, notify_test.sql and concurrency_test.sql;
#   4. with --bench, measures node_active with pgbench for 300 nodes.
# The cluster lives in a temporary directory, listens on a Unix socket only,
# and is stopped and removed on exit. Run as root (Postgres then runs as the
# postgres user) or as the postgres user.
#   bash sql/test/run.sh [--bench] [--port N]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
sql="$(dirname "$here")"
bin=/usr/lib/postgresql/15/bin
bench=0
port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) bench=1 ;;
    --port) port="$2"; shift ;;
    *) echo "usage: $0 [--bench] [--port N]" >&2; exit 2 ;;
  esac
  shift
done

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -z "$port" ]; then
  for p in $(seq 55000 56000); do
    if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && [ ! -e "/tmp/.s.PGSQL.$p" ]; then port=$p; break; fi
  done
fi

dir="$(mktemp -d /tmp/pgfailover-sqltest.XXXXXX)"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
  -o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE pgfailover"

# What the monitor's runner does: each file not yet recorded, in one
# transaction with its schema_migration row.
apply_as_runner() {
  for f in "$sql"/[0-9][0-9][0-9]_*.sql; do
    name="$(basename "$f")"
    version=$((10#${name:0:3}))
    applied="$(psql -d pgfailover -At -c "SELECT EXISTS (SELECT 1 FROM pgfailover.schema_migration WHERE version = $version)" 2>/dev/null || echo f)"
    if [ "$applied" = t ]; then echo "   $name already applied"; continue; fi
    psql -d pgfailover --single-transaction -f "$f" \
      -c "INSERT INTO pgfailover.schema_migration (version, name) VALUES ($version, '$name')"
    echo "   $name"
  done
}
echo "== migrations, as the runner applies them"
apply_as_runner
echo "== migrations, as the runner applies them at the next start"
apply_as_runner

echo "== migrations again, raw (must not fail)"
for f in "$sql"/[0-9][0-9][0-9]_*.sql; do
  psql -d pgfailover --single-transaction -f "$f" 2>&1 | grep -v 'already exists, skipping' || true
  echo "   $(basename "$f")"
done
psql -d pgfailover -At -c "SELECT 'schema_migration: ' || string_agg(version || ' ' || name, ', ' ORDER BY version) FROM pgfailover.schema_migration"

echo "== tests"
psql -d pgfailover -f "$here/api_test.sql"
psql -d pgfailover -f "$here/notify_test.sql"
psql -d pgfailover -f "$here/concurrency_test.sql"

if [ "$bench" = 1 ]; then
  echo "== node_active benchmark (300 nodes in groups of 3)"
  psql -d pgfailover -c "SELECT pgfailover.create_formation('bench', 'postgres', 1)" \
    -c "SELECT count(*) FROM generate_series(0, 299) i,
          LATERAL pgfailover.register_node('bench', 'b' || i, 'b' || i || '.bench', 5432, NULL, 50, true, i / 3)" >/dev/null
  range="$(psql -d pgfailover -At -F' ' -c "SELECT min(id), max(id) FROM pgfailover.node WHERE formation = 'bench'")"
  set -- $range
  for clients in 1 8 32; do
    printf '   %2s clients: ' "$clients"
    (cd "$dir" && as_pg "$bin/pgbench" -h "$dir" -p "$port" -U pgfailover_node -n -M prepared -c "$clients" -j 2 -T 10 \
      -D lo="$1" -D hi="$2" -f "$here/node_active.pgbench" pgfailover 2>&1 | grep -E '^tps' || echo "pgbench failed")
  done
fi
echo "== all passed"
