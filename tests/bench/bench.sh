#!/usr/bin/env bash
# tests/bench/bench.sh - issue 5's benchmark: fio's built-in nbd engine
# against nbdaio.so on a throwaway nbdkit memory export (1 GiB, unix
# socket), server pinned to one CPU and fio to the other.  Not part of the
# timed test suite; CI runs `--smoke` only, to keep the pipeline working.
#
#   bash tests/bench/bench.sh                  # full run (3 reps x 5 s per case)
#   bash tests/bench/bench.sh --smoke          # every step once, tiny, < 2 min
#   bash tests/bench/bench.sh --unpinned --cases randread-4k-qd32,randwrite-4k-qd32
#   bash tests/bench/bench.sh --heap-check     # valgrind allocation check only
#   bash tests/bench/bench.sh --variant poll50:busy_poll=50 --cases randread-4k-qd1
#   bash tests/bench/bench.sh --help           # every option
#
# This wrapper installs what is missing (as root; otherwise it says what to
# install), builds the plugin in build-bench/ (release) unless --plugin is
# given, then hands over to bench.py, which does the work.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

plugin="" build=1
for a in "$@"; do
  case $a in
    --plugin=*) plugin=${a#--plugin=} ;;
    --no-build) build=0 ;;
    -h|--help) exec python3 "$here/bench.py" --help ;;
  esac
done
prev=""
for a in "$@"; do                       # also accept "--plugin PATH"
  [ "$prev" = "--plugin" ] && plugin=$a
  prev=$a
done

# command -> Debian package
declare -A need=(
  [fio]=fio [nbdkit]=nbdkit [python3]=python3 [taskset]=util-linux
  [strace]=strace [valgrind]=valgrind [gnuplot]=gnuplot-nox
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 && continue
  pkg=${need[$cmd]}
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' &&
    continue
  missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: missing packages: ${missing[*]}" >&2
    echo "bench.sh: run as root, or: apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "bench.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ -z "$plugin" ]; then
  bdir="$root/build-bench"
  plugin="$bdir/fio-plugin/nbdaio.so"
  if [ "$build" = 1 ] || [ ! -f "$plugin" ]; then
    if [ ! -d "$root/.fio-src" ]; then
      bash "$root/fio-plugin/get-fio-source.sh" "$root/.fio-src"
    fi
    if [ ! -f "$bdir/build.ninja" ]; then
      meson setup "$bdir" "$root" -Dfio_plugin=enabled -Dbuildtype=release >/dev/null
    fi
    ninja -C "$bdir" fio-plugin/nbdaio.so >/dev/null
  fi
  set -- "$@" --plugin="$plugin"
fi

exec python3 "$here/bench.py" "$@"
