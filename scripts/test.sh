#!/usr/bin/env bash
# The one test command: installs dependencies, builds, and runs every test.
#   sudo bash scripts/test.sh              # everything
#   sudo bash scripts/test.sh -L unit      # a subset, by CTest label (unit, integration, scenario, ...)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"

# The tests run the product as the postgres user: when it cannot read this
# tree, test a fresh copy it can read (CI clones into /root).
. "$root/scripts/readable_tree.sh"
run_from_readable_tree fresh "${PGFAILOVER_TEST_COPY:-/var/tmp/pgfailover-test}" test.sh "$@"

bash "$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 1500 "$@"
