#!/usr/bin/env bash
# The package test: installs pgfailover_<version>_amd64.deb with dpkg on the
# clean Debian 12 root of the fixture (an overlay of it, in a private mount and
# PID namespace: everything started here dies with the test), and checks from
# the installed files only:
#   pgfailover --version; pgfailover demo up / demo down (as root, the demo
#   runs everything as postgres); the SQL files where the binary looks; the
#   systemd units (systemd-analyze verify, and equal to show systemd); the man
#   page names every command; bash completion completes; the maintainer
#   scripts; dpkg -r.
#   package_test.sh FIXDIR SOURCE_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
fix=$1
src=$2
if [ -z "${PGF_PKG_PRIVATE_MOUNTS:-}" ]; then
  export PGF_PKG_PRIVATE_MOUNTS=1
  # A PID namespace too: the demo's processes cannot outlive the test.
  exec unshare --mount --propagation private --pid --fork -- bash "$0" "$@"
fi

start=$SECONDS
deb=$(ls "$fix"/pgfailover_*_amd64.deb)
version=$(dpkg-deb -f "$deb" Version)
# The prefix the package installs into: /usr (a build directory configured
# with another CMAKE_INSTALL_PREFIX makes a package for that prefix).
bin=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep '/bin/pgfailover$' | sed 's|^\.||')
prefix=${bin%/bin/pgfailover}
[ -n "$prefix" ] || die "the package has no bin/pgfailover"
[ "$prefix" = /usr ] || say "note: the package installs into $prefix, not /usr (CMAKE_INSTALL_PREFIX of the build)"
tmp=$(mktemp -d /tmp/pgf-package-test.XXXXXX)
trap 'remove_tree "$tmp"' EXIT
root="$tmp/root"
overlay "$fix/base" "$tmp/upper" "$root"
chroot_mounts "$root"
in_root() { chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

say "package $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
case "$(basename "$deb")" in pgfailover_${version}_amd64.deb) ;; *) die "unexpected file name $(basename "$deb")" ;; esac
dpkg-deb -f "$deb" Depends | grep -q 'postgresql-15' || die "Depends lacks postgresql-15"
dpkg-deb -f "$deb" Depends | grep -q 'libpq5' || die "Depends lacks libpq5"
in_root test ! -e "$bin" || die "the root is not clean"

cp "$deb" "$root/tmp/"
t=$SECONDS
in_root dpkg -i "/tmp/$(basename "$deb")" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; die "dpkg -i failed"; }
say "dpkg -i: $((SECONDS - t)) s"

got=$(in_root pgfailover --version)
[ "$got" = "pgfailover $version" ] || die "pgfailover --version said '$got', expected 'pgfailover $version'"
say "pgfailover --version: $got"

# Files where they belong.
for f in $(cd "$src/sql" && ls ./*.sql); do
  cmp -s "$src/sql/$f" "$root$prefix/share/pgfailover/sql/$f" || die "$prefix/share/pgfailover/sql/$f differs from sql/$f"
done
in_root stat -c '%U:%G %a' /var/lib/pgfailover | grep -qx 'postgres:postgres 700' || die "/var/lib/pgfailover is not postgres's, 0700"
units=$prefix/lib/systemd/system
for f in $units/pgfailover@.service $units/pgfailover-monitor.service \
         $prefix/share/man/man1/pgfailover.1.gz $prefix/share/bash-completion/completions/pgfailover \
         $prefix/share/doc/pgfailover/operations.md $prefix/share/doc/pgfailover/copyright; do
  in_root test -f "$f" || die "$f is not installed"
done

# The man page documents every command the binary has.
man="$tmp/pgfailover.1"
gzip -dc "$root$prefix/share/man/man1/pgfailover.1.gz" > "$man"
walk() {
  local path=$1 s
  grep -qF ".SS \"$(printf 'pgfailover%s' "${path:+ $path}" | sed 's/-/\\-/g')\"" "$man" ||
    die "the man page has no section for 'pgfailover $path'"
  # shellcheck disable=SC2086
  for s in $(in_root pgfailover $path --help | awk '/^Subcommands:/ {s = 1; next} s && /^$/ {exit} s && /^  [a-z]/ {print $1}'); do
    walk "${path:+$path }$s"
  done
}
walk ""
grep -qF '.SS "pgfailover show systemd"' "$man" || die "the man page lacks show systemd"
in_root man -w pgfailover > /dev/null || die "man does not find pgfailover(1)"
warnings=$(in_root env MANWIDTH=80 man --warnings -l $prefix/share/man/man1/pgfailover.1.gz 2>&1 > /dev/null)
[ -z "$warnings" ] || die "man pgfailover: $warnings"

# bash completion, from the installed file.
complete_words() {
  in_root bash -c 'source "$0"/share/bash-completion/completions/pgfailover
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pgfailover; echo "${COMPREPLY[*]}"' "$prefix" "$@"
}
[ "$(complete_words pgfailover sh)" = "show" ] || die "completion of 'pgfailover sh': '$(complete_words pgfailover sh)'"
[ "$(complete_words pgfailover show sy)" = "systemd" ] || die "completion of 'show sy': '$(complete_words pgfailover show sy)'"
[ "$(complete_words pgfailover show uri --format j)" = "jdbc" ] || die "completion of '--format j'"
complete_words pgfailover create postgres --pg | grep -qw -- --pgdata || die "completion of 'create postgres --pg'"

# The packaged units are what `show systemd --template` prints, and verify.
for kind in keeper:pgfailover@.service monitor:pgfailover-monitor.service; do
  in_root pgfailover show systemd --template "${kind%%:*}" --binary "$bin" | cmp -s - "$root$units/${kind#*:}" ||
    die "$units/${kind#*:} differs from pgfailover show systemd --template ${kind%%:*}"
done
verify() {  # verify UNIT_FILE_IN_ROOT
  if ! in_root systemd-analyze verify "$1" > "$tmp/verify.log" 2>&1 || grep -q . "$tmp/verify.log"; then
    cat "$tmp/verify.log"
    die "systemd-analyze verify $1"
  fi
}
mkdir -p "$root/tmp/units"
cp "$root$units/pgfailover@.service" "$root/tmp/units/pgfailover@var-lib-postgresql-15-main.service"
verify /tmp/units/pgfailover@var-lib-postgresql-15-main.service
verify $units/pgfailover-monitor.service
say "units verified"

# The demo, from the installed files (it runs every process as postgres).
t=$SECONDS
in_root pgfailover demo up --dir /tmp/demo > "$tmp/demo-up.log" 2>&1 || { cat "$tmp/demo-up.log"; die "demo up failed"; }
say "demo up: $((SECONDS - t)) s"
grep -q 'primary' "$tmp/demo-up.log" || { cat "$tmp/demo-up.log"; die "demo up printed no primary"; }

# show systemd for real data directories: a keeper and the monitor.
node_unit=$(in_root pgfailover show systemd --pgdata /tmp/demo/node1)
echo "$node_unit" | grep -qx "ExecStart=$bin run --pgdata /tmp/demo/node1" || { echo "$node_unit"; die "show systemd: ExecStart"; }
echo "$node_unit" | grep -qx 'User=postgres' || die "show systemd: User"
name=$(in_root systemd-escape --path /tmp/demo/node1)
echo "$node_unit" | head -n 1 | grep -qF "pgfailover@$name.service" || die "show systemd names the instance pgfailover@$name.service"
# The template, instantiated by systemd for that directory, is the same unit.
diff <(echo "$node_unit" | grep -v '^#') \
     <(grep -v '^#' "$root$units/pgfailover@.service" | sed 's|%f|/tmp/demo/node1|g') ||
  die "show systemd --pgdata differs from the packaged template"
echo "$node_unit" > "$root/tmp/units/pgfailover@$name.service"
verify "/tmp/units/pgfailover@$name.service"
mon_unit=$(in_root pgfailover show systemd --pgdata /tmp/demo/monitor)
echo "$mon_unit" | grep -q '^Description=pgfailover monitor of /tmp/demo/monitor$' || { echo "$mon_unit"; die "show systemd of the monitor"; }
echo "$mon_unit" > "$root/tmp/units/pgfailover-monitor.service"
verify /tmp/units/pgfailover-monitor.service
err=$(in_root pgfailover show systemd --pgdata /tmp/nothing-here 2>&1) && die "show systemd of an unmanaged directory succeeded"
[ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q '^pgfailover: /tmp/nothing-here is not managed by pgfailover' ||
  die "show systemd of an unmanaged directory: '$err'"

t=$SECONDS
in_root pgfailover demo down --dir /tmp/demo > "$tmp/demo-down.log" 2>&1 || { cat "$tmp/demo-down.log"; die "demo down failed"; }
say "demo down: $((SECONDS - t)) s"
in_root test ! -e /tmp/demo || die "demo down left /tmp/demo"

# Removal keeps the data directory of the monitor.
in_root dpkg -r pgfailover > "$tmp/dpkg-r.log" 2>&1 || { cat "$tmp/dpkg-r.log"; die "dpkg -r failed"; }
in_root test ! -e "$bin" || die "dpkg -r left the binary"
in_root test -d /var/lib/pgfailover || die "dpkg -r removed /var/lib/pgfailover"
say "package test passed in $((SECONDS - start)) s"
