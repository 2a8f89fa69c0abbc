#!/usr/bin/env bash
# tests/run-all.sh - the whole test suite, from a fresh Debian bookworm
# machine (as root): installs what it needs, builds with -Werror, runs every
# test (unit, integration against real servers, symbol checks), then builds
# again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite
# once more (without the fio plugin: fio is not an ASan program).  Prints
# "N passed, N failed, N skipped" last (tests/count-results.py: a skip is
# never a pass); exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash provision/deps.sh

pass=0 fail=0 skip=0
run_suite() {               # run_suite BUILDDIR [meson setup args...]
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dwerror=true "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null
  local rc=0
  meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
  local counts
  counts=$(python3 tests/count-results.py "$dir/meson-logs/testlog.json")
  read -r p f s <<< "$counts"
  pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
  [ "$rc" -eq 0 ] || echo "run-all: failures in $dir" >&2
}

run_suite build -Dfio_plugin=enabled
# the bounded fuzzing run: 60 s per libFuzzer target (the suite itself
# runs only 5 s per target)
if bash tests/fuzz/run-fuzz.sh 60 > build/fuzz-60.log 2>&1; then
  pass=$((pass + 1))
else
  fail=$((fail + 1))
  echo "run-all: fuzzing found a problem, see build/fuzz-60.log" >&2
  tail -20 build/fuzz-60.log >&2
fi
# the benchmark pipeline in its smoke mode (about a minute; no speed
# asserted: the numbers come from bash tests/bench/bench.sh)
if bash tests/bench/bench.sh --smoke --plugin="$PWD/build/fio-plugin/nbdaio.so" \
     --out="$PWD/build/bench-smoke" > build/bench-smoke.log 2>&1; then
  pass=$((pass + 1))
else
  fail=$((fail + 1))
  echo "run-all: bench smoke failed, see build/bench-smoke.log" >&2
  tail -20 build/bench-smoke.log >&2
fi
# fio itself is not built with ASan, so the plugin is left out of this pass.
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debug -Dfio_plugin=disabled

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
