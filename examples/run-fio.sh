#!/usr/bin/env bash
# examples/run-fio.sh - the main job: build nbdaio.so and run a fio job
# (4k random read/write, iodepth 32, 10 s) through it against a throwaway
# nbdkit memory export (1 GiB, unix socket) that it starts itself.  Run from
# anywhere; installs missing Debian packages (and the fio source the plugin
# is built against) when run as root.  Extra arguments go to fio, e.g.
# `bash examples/run-fio.sh --runtime=30 --iodepth=64`.
set -euo pipefail

cd "$(dirname "$0")/.."
bash provision/deps.sh
[ -f build/build.ninja ] || meson setup build -Dfio_plugin=enabled >/dev/null
ninja -C build >/dev/null
so="$PWD/build/fio-plugin/nbdaio.so"
[ -f "$so" ] || { echo "run-fio.sh: $so was not built" >&2; exit 1; }

# nbdkit picks a socket, sets $uri for --run and stops when fio ends.
# Extra arguments, each quoted for the --run shell; none at all must add
# nothing (printf with no arguments still prints one empty quoted word,
# which fio would take for a job file named '').
args=""
(($#)) && args=$(printf ' %q' "$@")
exec timeout 300 nbdkit -U - memory 1G --run "
  fio --name=nbdaio-randrw --ioengine=external:$so --uri=\"\$uri\" \
      --rw=randrw --bs=4k --iodepth=32 --size=1g \
      --time_based --runtime=10 --group_reporting $args"
