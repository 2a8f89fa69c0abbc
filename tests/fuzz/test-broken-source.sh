#!/usr/bin/env bash
# tests/fuzz/test-broken-source.sh - run-fuzz.sh --build fails, naming the
# file, when a library source does not compile (no source is left out of
# the fuzz build in silence; engine/profile.c once was).  The library root
# (FUZZ_LIB_ROOT) is a scratch tree: the headers of core/ and engine/,
# core/error.c, and an engine/profile.c that does not compile.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
T=$(mktemp -d /tmp/nbdaio-fuzz-broken.XXXXXX)
trap 'rm -rf "$T"' EXIT

mkdir -p "$T/lib/core" "$T/lib/engine"
cp "$root"/core/*.h "$root"/core/error.c "$T/lib/core/"
cp "$root"/engine/*.h "$T/lib/engine/"
printf '#error this source does not compile\n' > "$T/lib/engine/profile.c"

rc=0
FUZZ_LIB_ROOT=$T/lib FUZZ_BUILD_DIR=$T/build FUZZ_SKIP_MISSING=1 \
  bash "$here/run-fuzz.sh" --build > "$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" -ne 77 ] || exit 77             # no libFuzzer: skip
[ "$rc" -ne 0 ] || { echo "FAIL: run-fuzz.sh --build succeeded" >&2; exit 1; }
grep -q "^run-fuzz: $T/lib/engine/profile.c does not compile:\$" "$T/out" || {
  echo "FAIL: run-fuzz.sh did not stop at engine/profile.c (exit $rc)" >&2
  exit 1; }
grep -q 'this source does not compile' "$T/out" || {
  echo "FAIL: the compiler's error was not printed" >&2; exit 1; }
echo "test-broken-source: run-fuzz.sh --build refused a broken engine/profile.c"
