#!/usr/bin/env bash
# provision/deps.sh - install the Debian packages the build, the examples and the
# test suite need (idempotent; quiet when everything is present).  Run as
# root on Debian bookworm.
set -euo pipefail

pkgs=(
  build-essential meson ninja-build pkg-config
  libgnutls28-dev libinih-dev libcmocka-dev
  libunistring-dev              # gnutls' static link (test pkgconfig-static)
  nbdkit qemu-utils nbd-server libnbd-bin gnutls-bin
  fio python3 valgrind strace
  groff-base
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps.sh: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages and not root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The fio plugin is built against the source of exactly the installed fio.
bash "$(dirname "$0")/get-fio-source.sh" "$(dirname "$0")/../.fio-src"
