#!/usr/bin/env bash
# Sets up and runs the demo on a fresh Debian 12 machine: installs dependencies,
# builds, then starts a monitor and two data nodes on 127.0.0.1 (as the postgres
# user) and prints their state and connection URIs.
#   sudo bash scripts/demo.sh          # demo up
#   sudo bash scripts/demo.sh failover # kill the primary, watch the failover
#   sudo bash scripts/demo.sh down     # stop everything, remove the directory
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"
# The demo runs the product as the postgres user: when it cannot read this
# tree, run from a copy it can read (the same copy for up, failover and down).
. "$root/scripts/readable_tree.sh"
run_from_readable_tree refresh "${PGFAILOVER_DEMO_COPY:-/var/tmp/pgfailover-demo-src}" demo.sh "$@"
bash "$root/scripts/build.sh" >/dev/null
bin="${BUILD_DIR:-$root/build}/cli/pgfailover"
if "$bin" demo --help >/dev/null 2>&1; then
  exec "$bin" demo "${1:-up}" --dir "${PGFAILOVER_DEMO_DIR:-/tmp/pgfailover-demo}"
fi
exec "$bin" --help
