#!/usr/bin/env bash
# tests/interop/make-root.sh - build (once) a minimal Debian trixie root
# holding today's NBD servers and clients, to run from this bookworm
# machine with chroot: nbdkit 1.42, qemu-nbd/qemu-img 10, nbd-server 3.26,
# libnbd 1.22's nbdinfo/nbdcopy, fio 3.39 with its built-in nbd engine.
# The mirror is the one this machine's apt already uses (no host is named
# here).  Exit 0 when DIR is ready (built now or before), 77 when it
# cannot be built here (no mmdebstrap and not root, no mirror reachable),
# with the reason on stderr; 1 on other errors.
# usage: make-root.sh DIR
set -euo pipefail
dir=${1:?usage: make-root.sh DIR}
stamp=$dir/.nbdaio-root-ready
pkgs=nbdkit,libnbd-bin,qemu-utils,nbd-server,fio,python3

[ -f "$stamp" ] && exit 0
skip () { echo "make-root.sh: cannot build the trixie root: $*" >&2; exit 77; }

if ! command -v mmdebstrap >/dev/null; then
  [ "$(id -u)" -eq 0 ] || skip "mmdebstrap is missing and we are not root"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends mmdebstrap >/dev/null 2>&1 ||
    skip "apt-get install mmdebstrap failed"
fi
[ "$(id -u)" -eq 0 ] || skip "building a root with chroot needs root"

# The first deb mirror of the machine's own apt sources (deb822 or
# one-line format).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
           2>/dev/null | grep -v security | head -1 || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' \
                             /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || skip "no Debian mirror found in the apt sources"

rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
log=$(mktemp)
echo "make-root.sh: building a trixie root in $dir (about a minute)" >&2
if ! timeout 900 mmdebstrap --mode=root --variant=minbase --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-include=/usr/share/man/man1' \
    trixie "$dir" "deb $mirror trixie main" > "$log" 2>&1; then
  tail -5 "$log" >&2
  rm -rf "$dir" "$log"
  skip "mmdebstrap failed (is the trixie suite reachable on $mirror?)"
fi
rm -f "$log"
touch "$stamp"
