#!/bin/sh
# Runs one libFuzzer target for a bounded time, as a CTest test:
#   run_fuzzer.sh BINARY SEEDS_DIR KNOWN_BAD_DIR WORK_DIR SECONDS
# The corpus grows in WORK_DIR (seeded from SEEDS_DIR and the known-bad
# inputs); a crash, a sanitizer report or an exception other than pgf::Error
# fails the test, and the input that did it is left in WORK_DIR/artifacts.
set -eu
binary=$1 seeds=$2 known_bad=$3 work=$4 seconds=$5
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$seeds"/* "$work/corpus/" 2>/dev/null || true
[ -d "$known_bad" ] || known_bad=""
exec "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" $known_bad
