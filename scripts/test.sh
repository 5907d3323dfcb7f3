#!/usr/bin/env bash
# The one test command: installs dependencies, builds, and runs every test.
#   sudo bash scripts/test.sh              # everything
#   sudo bash scripts/test.sh -L unit      # a subset, by CTest label (unit, integration, scenario)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 1500 "$@"
