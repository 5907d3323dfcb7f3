# Sourced by test.sh and demo.sh, with $root set to the tree. Postgres and
# pgfailover's keepers and monitor run as the postgres user, which must be able
# to read the tree (the monitor reads sql/ at run time) and run the built
# binary. A clone under a private directory (/root, or a home directory: 0700
# on Debian 12) is neither.
#
# run_from_readable_tree fresh|refresh COPY SCRIPT ARGS... returns when the
# postgres user can read $root; otherwise it re-runs scripts/SCRIPT ARGS from
# a copy of the tree in COPY: a new copy (fresh), or the tree copied over the
# last one (refresh: tar keeps the files' times, so only what changed is
# rebuilt, and a running demo keeps its binary's directory).
run_from_readable_tree() {
  local how=$1 copy=$2 script=$3
  shift 3
  [ "$(id -u)" -eq 0 ] || return 0
  runuser -u postgres -- test -r "$root/sql/001_schema.sql" 2>/dev/null && return 0
  echo "$script: the postgres user cannot read $root; running from a copy in $copy"
  [ "$how" = refresh ] || rm -rf "$copy"
  mkdir -p "$copy"
  tar -C "$root" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$copy" -xf -
  chmod -R a+rX "$copy"
  exec bash "$copy/scripts/$script" "$@"
}
