#!/usr/bin/env bash
# provision/get-fio-source.sh DEST - fetch Debian's source package of the
# fio version installed on this machine into DEST/fio-<version> and run its
# ./configure (fio's headers need the generated config-host.h).  The plugin
# must be built against exactly the installed fio: fio checks only
# FIO_IOOPS_VERSION, not struct layouts.  Idempotent.  Needs root the first
# time (adds a deb-src entry derived from the machine's own Debian sources).
set -euo pipefail
dest=${1:?usage: get-fio-source.sh DEST}

pkgver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) ||
  { echo "get-fio-source: fio is not installed (apt-get install fio)" >&2; exit 1; }
upver=${pkgver#*:}
upver=${upver%-*}
tree=$dest/fio-$upver
if [ -f "$tree/config-host.h" ]; then
  exit 0
fi

if ! apt-get source --print-uris fio="$pkgver" >/dev/null 2>&1; then
  # No deb-src entry yet: mirror the machine's deb entries as deb-src.
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ]; then
    sed 's/^Types: deb$/Types: deb-src/' "$src" \
      > /etc/apt/sources.list.d/nbdaio-deb-src.sources
  elif [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list \
      > /etc/apt/sources.list.d/nbdaio-deb-src.list
  else
    echo "get-fio-source: no apt sources found to derive deb-src from" >&2
    exit 1
  fi
  apt-get update -q >/dev/null
fi
command -v dpkg-source >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpkg-dev >/dev/null

mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -q fio="$pkgver" >/dev/null 2>&1) ||
  { echo "get-fio-source: apt-get source fio=$pkgver failed" >&2; exit 1; }
rm -rf "$tree"
mv "$work/fio-$upver" "$tree"
(cd "$tree" && ./configure --disable-native >/dev/null) ||
  { echo "get-fio-source: ./configure failed in $tree" >&2; exit 1; }
echo "get-fio-source: fio $pkgver source ready in $tree"
