#!/usr/bin/env bash
# examples/run-demo.sh - build nbdaio and run the example programs against a
# throwaway nbdkit memory export (1 GiB, unix socket): nbdaio-info, then
# nbdaio-aio-demo, then the README's "Using the library" sample.
#
#   bash examples/run-demo.sh            install missing Debian packages
#                                        (as root), build in build/, run
#   bash examples/run-demo.sh BUILDDIR   run the programs of an already
#                                        built tree (what `meson test
#                                        run-demo` does)
set -euo pipefail

cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  bash provision/deps.sh
  [ -f build/build.ninja ] || meson setup build
  ninja -C build
  build=$PWD/build
else
  build=$(cd "$1" && pwd)
fi

info="$build/tools/nbdaio-info"
demo="$build/examples/nbdaio-aio-demo"
sample="$build/examples/readme-sample"
for p in "$info" "$demo" "$sample"; do
  [ -x "$p" ] || { echo "run-demo.sh: $p was not built" >&2; exit 1; }
done

# nbdkit picks a socket, sets $uri for the --run command and stops when the
# command ends; its exit status is the command's.
echo "== nbdkit memory 1G: nbdaio-info, nbdaio-aio-demo, readme-sample"
timeout 120 nbdkit -U - memory 1G \
  --run "'$info' \"\$uri\" && '$demo' \"\$uri\" && '$sample' \"\$uri\""
echo "run-demo.sh: OK"
