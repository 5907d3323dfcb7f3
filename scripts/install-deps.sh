#!/usr/bin/env bash
# Installs every Debian package pgfailover needs to build, test and run its demo.
# Safe to run again; it only asks apt for what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libpq-dev libpqxx-dev libsqlite3-dev libcli11-dev libfmt-dev nlohmann-json3-dev catch2
  postgresql-15 postgresql-client-15
  libssl-dev openssl
  clang libclang-rt-14-dev
  graphviz
  iproute2 nftables procps psmisc util-linux
  default-jre-headless libpostgresql-jdbc-java
  dpkg-dev fakeroot debootstrap systemd systemd-container
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # postgresql-common would create and start a 'main' cluster on port 5432;
  # our tests start their own servers, so tell it not to.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgfailover-no-main.conf
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
