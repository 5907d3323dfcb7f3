#!/usr/bin/env bash
# The one test command: installs dependencies, builds, and runs every test.
#   sudo bash scripts/test.sh              # everything
#   sudo bash scripts/test.sh -L unit      # a subset, by CTest label (unit, integration, scenario, ...)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"

# Tests run Postgres and pgfailover as the postgres user, which must be able to
# read the tree (the monitor reads sql/ at run time). A clone under a private
# directory such as /root is not readable by it: test a readable copy instead.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -r "$root/sql/001_schema.sql" 2>/dev/null; then
  copy="${PGFAILOVER_TEST_COPY:-/var/tmp/pgfailover-test}"
  echo "test.sh: the postgres user cannot read $root; testing a copy in $copy"
  rm -rf "$copy"
  mkdir -p "$copy"
  tar -C "$root" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$copy" -xf -
  chmod -R a+rX "$copy"
  exec bash "$copy/scripts/test.sh" "$@"
fi

bash "$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 1500 "$@"
