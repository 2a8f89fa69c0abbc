#!/usr/bin/env bash
# tests/hostile/test-deadline.sh - the library's request timeout bounds the
# synchronous calls and nbdaio_shutdown: sync-timeout (see there) against
# hostile-server.py's stall modes, one case (and one fresh server: a mode
# misbehaves once per run) per call.  Each case must end with ETIMEDOUT
# about the timeout after the call; a call that waits for ever is stopped
# after 20 s and fails the case.
# usage: test-deadline.sh SERVER.py SYNC-TIMEOUT
#        test-deadline.sh --list SERVER.py   (the cases: the calls)
source "$(dirname "$0")/../lib/servers.sh"
[ "$LIST_CASES" = 1 ] && shift
[ $# -ge 1 ] || { echo "usage: $0 SERVER.py SYNC-TIMEOUT" >&2; exit 2; }
hostile_init "$1"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 2 ] || { echo "usage: $0 SERVER.py SYNC-TIMEOUT" >&2; exit 2; }
  PROG=$(realpath "$2")
  test_init
fi

TIMEOUT_MS=500

# deadline CALL MODE: CALL against MODE, which stalls on its request
deadline () {
  local rc=0
  start_hostile "$2"
  timeout 20 "$PROG" --call "$1" --timeout "$TIMEOUT_MS" "$T/sock" \
    > "$T/out" 2> "$T/err" || rc=$?
  stop_hostile
  cat "$T/out"
  [ "$rc" -eq 0 ] || {
    sed 's/^/  | /' "$T/err" "$T/server.err" 2>/dev/null >&2
    fail "$1 ($2): exit $rc"
  }
}

for c in "pread stall" "flush stall-any" "shutdown stall"; do
  read -r call mode <<< "$c"
  run_case_as "$call" "$call ($mode)" deadline "$call" "$mode"
done
finish
