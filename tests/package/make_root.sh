#!/usr/bin/env bash
# CTest fixture of the package tests: builds the .deb with `cpack -G DEB` and a
# clean Debian 12 root for it, in one debootstrap step:
#   debootstrap --variant=minbase --include=<the .deb's Depends>,<systemd for the runbook hosts>
# Everything goes into FIXDIR (under the build tree); package_root_cleanup
# removes it. Nothing is cached anywhere else.
#   make_root.sh BUILD_DIR FIXDIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
build=$1
fix=$2

start=$SECONDS
rm -rf "$fix"
mkdir -p "$fix"
chmod 0755 "$fix"

say "cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$fix/cpack") > "$fix/cpack.log" 2>&1 || { cat "$fix/cpack.log"; die "cpack failed"; }
deb=$(ls "$fix"/cpack/pgfailover_*_amd64.deb)
[ -f "$deb" ] || die "cpack made no pgfailover_<version>_amd64.deb"
cp "$deb" "$fix/"
say "built $(basename "$deb") ($(du -k "$deb" | cut -f1) kB) in $((SECONDS - start)) s"

# The .deb's dependencies (so `dpkg -i` proves they are declared: minbase has
# none of them), what the runbook's emulated hosts need to boot systemd, and
# man (systemd-analyze verify checks Documentation=man:pgfailover(1)).
packages=$(deb_depends "$deb" | tr '\n' ',')
packages="${packages}systemd,systemd-sysv,dbus,sudo,man-db"
mirror=$(debian_mirror)
say "debootstrap --variant=minbase --include=$packages bookworm $mirror"
t=$SECONDS
if ! debootstrap --variant=minbase --include="$packages" bookworm "$fix/base" "$mirror" > "$fix/debootstrap.log" 2>&1; then
  tail -n 30 "$fix/debootstrap.log"
  die "debootstrap failed (see $fix/debootstrap.log)"
fi
say "debootstrap took $((SECONDS - t)) s"

# The downloaded packages as a local apt repository: the runbook hosts have no
# network (they live in namespaces of their own), and this stands in for the
# Debian mirror when the runbook runs apt-get update/upgrade.
mkdir -p "$fix/apt"
mv "$fix"/base/var/cache/apt/archives/*.deb "$fix/apt/"
(cd "$fix/apt" && dpkg-scanpackages --multiversion . > Packages 2> /dev/null)
say "fixture ready in $((SECONDS - start)) s"
