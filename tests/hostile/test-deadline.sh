#!/usr/bin/env bash
# tests/hostile/test-deadline.sh - the library's request timeout bounds the
# synchronous calls and nbdaio_shutdown: sync-timeout (see there) against
# hostile-server.py's stall modes, one fresh server per case (a mode
# misbehaves once per run).  Each case must end with ETIMEDOUT about the
# timeout after the call; a call that waits for ever is stopped after 20 s
# and fails the case.
# usage: test-deadline.sh SERVER.py SYNC-TIMEOUT
set -uo pipefail

[ $# -eq 2 ] || { echo "usage: $0 SERVER.py SYNC-TIMEOUT" >&2; exit 2; }
SERVER=$(realpath "$1")
PROG=$(realpath "$2")
T=$(mktemp -d /tmp/nbdaio-deadline.XXXXXX)
. "$(cd "$(dirname "$0")" && pwd)/server-lib.sh"

TIMEOUT_MS=500
FAILED=()
PASSED=0
# CALL MODE: the call under test and the mode that stalls on its request
for c in "pread stall" "flush stall-any" "shutdown stall"; do
  read -r call mode <<< "$c"
  if ! start_server "$mode"; then
    FAILED+=("$call")
    continue
  fi
  timeout 20 "$PROG" --call "$call" --timeout "$TIMEOUT_MS" "$T/sock" \
    > "$T/out" 2> "$T/err"
  rc=$?
  stop_server
  if [ "$rc" -eq 0 ]; then
    PASSED=$((PASSED + 1))
    echo "ok   $call ($mode): $(cat "$T/out")"
  else
    FAILED+=("$call")
    echo "FAIL $call ($mode): exit $rc" >&2
    sed 's/^/  | /' "$T/out" "$T/err" "$T/server.err" 2>/dev/null >&2
  fi
done

echo "$(basename "$0"): $PASSED passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
