# Shared by the package tests (sourced; bash). Everything they make lives in
# the fixture directory or their own temporary directory; every mount is made
# in a private mount namespace (the scripts re-execute themselves under
# `unshare --mount`), so it disappears with the test, whatever happens.

say() { printf '%(%H:%M:%S)T %s\n' -1 "$*"; }
die() { say "FAIL: $*" >&2; exit 1; }

# Re-executes the calling script in a private mount namespace (once).
private_mounts() {
  if [ -z "${PGF_PKG_PRIVATE_MOUNTS:-}" ]; then
    export PGF_PKG_PRIVATE_MOUNTS=1
    exec unshare --mount --propagation private -- bash "$0" "$@"
  fi
}

# The Debian mirror apt is configured with (the bookworm main suite), so the
# test downloads from where this machine's packages come from.
debian_mirror() {
  local uri
  uri=$(awk '
    /^URIs:/ { u = $2 } /^Suites:/ { s = $0 } /^Components:/ { c = $0 }
    /^$/ { if (u != "" && s ~ /[ \t]bookworm([ \t]|$)/ && c ~ /main/) { print u; exit } u = ""; s = ""; c = "" }
    END { if (u != "" && s ~ /[ \t]bookworm([ \t]|$)/ && c ~ /main/) print u }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $3 == "bookworm" && / main/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The package names a .deb depends on (first alternative, no versions).
deb_depends() {
  dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u
}

# Mounts an overlay of LOWER (colon-separated layers, top first) at MERGED,
# with its writable layer in UPPER. redirect_dir=on: a directory of the lower
# layer can be renamed (the keeper moves a data directory aside), which
# overlayfs otherwise refuses with EXDEV.
overlay() {
  local lower=$1 upper=$2 merged=$3
  mkdir -p "$upper/data" "$upper/work" "$merged"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper/data,workdir=$upper/work,redirect_dir=on" "$merged"
}

# /proc, /dev (with /dev/shm and /dev/pts) and /run for a chroot.
chroot_mounts() {
  local root=$1
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  mkdir -p "$root/run/lock"
}

# Waits until COMMAND... succeeds, at most SECONDS.
wait_until() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Removes DIR, after unmounting everything mounted below it (deepest first).
# Never deletes through a mount: if one is left, DIR stays and this fails.
remove_tree() {
  local dir
  dir=$(realpath "$1")
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true
  done
  if awk -v d="$dir/" 'index($5, d) == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
    say "mounts remain under $dir: not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}
