#!/usr/bin/env bash
# run-fuzz.sh - build and run the libFuzzer targets (fuzz_handshake,
# fuzz_reply) with clang, AddressSanitizer (leak checks on) and
# UndefinedBehaviorSanitizer.
#
#   bash tests/fuzz/run-fuzz.sh [SECONDS]    each target SECONDS (default 60)
#   bash tests/fuzz/run-fuzz.sh --smoke      each target 5 seconds
#   bash tests/fuzz/run-fuzz.sh --replay TARGET FILE...
#                                            run inputs once (crashers)
#   bash tests/fuzz/run-fuzz.sh --build      only build
#
# Each run starts from a copy of tests/fuzz/corpus/TARGET in a temporary
# directory (the repository's corpus does not grow).  Exits non-zero if a
# target crashed, leaked, broke a promise (the harness aborts), timed out
# (-timeout=5) or went over -rss_limit_mb=2048; the reproducer's path is
# printed and the temporary directory kept.  Environment: FUZZ_BUILD_DIR
# (default build-fuzz in the repository root), FUZZ_CC (default clang),
# FUZZ_MAX_LEN (default 8192), FUZZ_KEEP=1 keeps the temporary directory,
# FUZZ_LIB_ROOT (default the repository) takes core/ and engine/ from
# another tree, e.g. to fuzz a candidate fix before it is committed,
# FUZZ_SKIP_MISSING=1 exits 77 (skip) when clang has no libFuzzer,
# FUZZ_VERSION_INC (default build/core) the directory of a meson build's
# generated nbdaio-version.h.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
lib=${FUZZ_LIB_ROOT:-$root}
cc=${FUZZ_CC:-clang}
max_len=${FUZZ_MAX_LEN:-8192}
targets=(handshake reply)

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

mode=run seconds=60
case ${1:-} in
  --smoke) seconds=5 ;;
  --replay) mode=replay ;;
  --build) mode=build ;;
  -h|--help) usage ;;
  '') ;;
  *) [[ $1 =~ ^[1-9][0-9]*$ ]] || usage; seconds=$1 ;;
esac

# clang with libFuzzer (Debian: clang, libclang-rt-dev); without it exit 1,
# or 77 (a skip for meson) with FUZZ_SKIP_MISSING=1
if ! echo 'int LLVMFuzzerTestOneInput (const char *d, long n) { return 0; }' |
     "$cc" -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
  echo "run-fuzz: $cc cannot build libFuzzer targets (-fsanitize=fuzzer)" >&2
  [ "${FUZZ_SKIP_MISSING:-0}" = 1 ] && exit 77
  exit 1
fi

san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
# nbdaio.h includes nbdaio-version.h, which meson generates in a build's
# core/ (from core/nbdaio-version.h.in and the project version)
version_inc=${FUZZ_VERSION_INC:-$root/build/core}
if [ ! -f "$version_inc/nbdaio-version.h" ]; then
  echo "run-fuzz: no nbdaio-version.h in $version_inc: set FUZZ_VERSION_INC" \
       "to a configured build's core/ (meson setup build)" >&2
  exit 1
fi
cflags=(-g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Wall
        -I"$lib/core" -I"$lib/engine" -I"$version_inc")
read -r -a pkg_cflags <<<"$(pkg-config --cflags gnutls inih)"
read -r -a pkg_libs <<<"$(pkg-config --libs gnutls inih)"

# The library, with coverage instrumentation, as an archive: every source
# of core/ and engine/ must compile (a failure ends the build, its errors
# printed).
build_lib() {
  local obj="$build/obj" src o objs=()
  mkdir -p "$obj"
  for src in "$lib"/core/*.c "$lib"/engine/*.c; do
    o="$obj/$(basename "$(dirname "$src")")-$(basename "${src%.c}").o"
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ] ||
       [ -n "$(find "$lib/core" "$lib/engine" -name '*.h' -newer "$o")" ]; then
      if ! "$cc" "${cflags[@]}" "${pkg_cflags[@]}" "${san[@]}" \
           -fsanitize=fuzzer-no-link -c "$src" -o "$o" 2>"$o.log"; then
        rm -f "$o"
        echo "run-fuzz: $src does not compile:" >&2
        cat "$o.log" >&2
        exit 1
      fi
    fi
    objs+=("$o")
  done
  rm -f "$build/libnbdaio-fuzz.a"
  ar rcs "$build/libnbdaio-fuzz.a" "${objs[@]}"
}

build_targets() {
  local t
  for t in "${targets[@]}"; do
    "$cc" "${cflags[@]}" "${pkg_cflags[@]}" "${san[@]}" -fsanitize=fuzzer \
      -Werror -Wextra -o "$build/fuzz_$t" "$here/fuzz_$t.c" \
      "$here/fuzz_common.c" "$build/libnbdaio-fuzz.a" "${pkg_libs[@]}" \
      -lpthread
  done
}

mkdir -p "$build"
build_lib
build_targets
echo "run-fuzz: built $build/fuzz_${targets[0]} $build/fuzz_${targets[1]}"
[ "$mode" = build ] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
unset NBDAIO_DEBUG

if [ "$mode" = replay ]; then
  shift
  [ $# -ge 2 ] || usage
  t=$1; shift
  exec "$build/fuzz_$t" -timeout=5 -rss_limit_mb=2048 -error_exitcode=1 "$@"
fi

tmp=$(mktemp -d /tmp/nbdaio-fuzz.XXXXXX)
failed=0
for t in "${targets[@]}"; do
  corpus="$tmp/corpus-$t" art="$tmp/artifacts-$t/" log="$tmp/$t.log"
  mkdir -p "$corpus" "$art"
  cp "$here/corpus/$t"/* "$corpus/" 2>/dev/null || true
  echo "run-fuzz: fuzz_$t for ${seconds}s ($(ls "$corpus" | wc -l) seeds)"
  rc=0
  "$build/fuzz_$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -error_exitcode=1 -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="$art" \
    "$corpus" >"$log" 2>&1 || rc=$?
  # the last status line: executions, coverage, features, speed
  grep -E '^#[0-9]+' "$log" | tail -1 | sed "s/^/run-fuzz: fuzz_$t: /" || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" |
    sed "s/^/run-fuzz: fuzz_$t: /" || true
  if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$art")" ]; then
    failed=1
    echo "run-fuzz: fuzz_$t FAILED (exit $rc); log: $log" >&2
    grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|broken promise' \
      "$log" | head -40 >&2 || true
    for f in "$art"*; do
      [ -e "$f" ] && echo "run-fuzz: reproducer: $f" \
        "(bash $0 --replay $t $f)" >&2
    done
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "run-fuzz: FAILED; inputs and logs kept in $tmp" >&2
  exit 1
fi
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
  echo "run-fuzz: kept $tmp"
else
  rm -rf "$tmp"
fi
echo "run-fuzz: all targets ran ${seconds}s without a failure"
