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
#   bash tests/bench/bench.sh --transports=unix,tcp --cases=randread-4k-qd32
#
# This wrapper installs what is missing (as root; otherwise it says what to
# install), builds the plugin in build-bench/ (release) unless --plugin is
# given, finds the Debian trixie root of tests/interop/make-root.sh (fio
# 3.39 + libnbd 1.22, qemu-img 10: building it once unless --smoke; without
# it those clients are skipped, and the output says so), then hands over to
# bench.py, which does the work.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

plugin="" build=1 smoke=0
for a in "$@"; do
  case $a in
    --smoke) smoke=1 ;;
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
  [certtool]=gnutls-bin [psktool]=gnutls-bin
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
      bash "$root/provision/get-fio-source.sh" "$root/.fio-src"
    fi
    if [ ! -f "$bdir/build.ninja" ]; then
      meson setup "$bdir" "$root" -Dfio_plugin=enabled -Dbuildtype=release >/dev/null
    fi
    ninja -C "$bdir" fio-plugin/nbdaio.so >/dev/null
  fi
  set -- "$@" --plugin="$plugin"
fi

# The trixie root and its runner (tests/interop/root.sh: R, IN_ROOT);
# --smoke does not build the root, it only uses one that is there.
interop=$root/tests/interop
source "$interop/root.sh"
why=""
if [ "$smoke" = 1 ] && ! { [ -x "$R/usr/bin/fio" ] && [ -x "$R/usr/bin/qemu-img" ]; }; then
  why="no trixie root in $R (--smoke does not build it; bash $interop/make-root.sh $R does)"
elif ! out=$(bash "$interop/make-root.sh" "$R" 2>&1); then
  why="no trixie root in $R: ${out##*make-root.sh: }"
fi
if [ -n "$why" ]; then
  echo "bench.sh: SKIPPING fio 3.39/libnbd 1.22 and qemu-img bench: $why" >&2
  set -- "$@" --trixie-skip="$why"
else
  set -- "$@" --trixie-root="$R" --in-root="$(printf '%q ' "${IN_ROOT[@]}")"
fi

exec python3 "$here/bench.py" "$@"
