#!/usr/bin/env bash
# examples/run-demo.sh - build nbdaio and run the example programs against a
# throwaway nbdkit memory export (1 GiB, unix socket).  Run from the
# repository root; installs missing Debian packages when run as root.
set -euo pipefail

cd "$(dirname "$0")/.."
bash provision/deps.sh

if [ ! -f build/build.ninja ]; then
  meson setup build
fi
ninja -C build

info="$PWD/build/examples/nbdaio-info"
demo="$PWD/build/examples/nbdaio-aio-demo"
for p in "$info" "$demo"; do
  [ -x "$p" ] || { echo "run-demo.sh: $p was not built" >&2; exit 1; }
done

# nbdkit picks a socket, sets $uri for the --run command and stops when the
# command ends; its exit status is the command's.
echo "== nbdkit memory 1G: nbdaio-info, then nbdaio-aio-demo"
timeout 120 nbdkit -U - memory 1G \
  --run "'$info' \"\$uri\" && '$demo' \"\$uri\""
echo "run-demo.sh: OK"
