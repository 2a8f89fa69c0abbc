#!/usr/bin/env bash
# tests/integration/test-reconnect.sh - the library's reconnect-delay
# through the synchronous calls (reconnect-probe, see there) against a
# file-backed qemu-nbd killed with SIGKILL mid-run:
#  - restarted on the same socket 0.5 s later: every block written before,
#    during and after the outage reads back right, one reconnect counted;
#  - never restarted: the call in progress fails with ENOTCONN when
#    reconnect-delay (1 s) has run out after the kill, not before, not
#    much later, and the handle is then dead;
#  - restarted read-only: the reconnect succeeds, and the write that waited
#    fails with EPERM (the export no longer allows it), not a hang;
#  - a server that accepts every connection but never answers a read
#    (nbdkit, reads delayed 10 s; request-timeout 300 ms): each reconnect
#    succeeds and times out again, and the read fails with ETIMEDOUT once
#    reconnect-delay (1 s) has passed since the first loss, not never.
# One case each (`--list` names them, TEST_CASE=NAME runs one).
# usage: test-reconnect.sh RECONNECT-PROBE
source "$(cd "$(dirname "$0")" && pwd)/../lib/servers.sh"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 1 ] || { echo "usage: $0 RECONNECT-PROBE" >&2; exit 2; }
  PROBE=$(realpath "$1")
  requires qemu-nbd
  test_init
fi

# serve [QEMU-NBD-ARGS...]: qemu-nbd on $T/disk.img (16 MiB, kept across
# restarts), the old socket removed; sets URI and QEMU_PID.
serve () { start_qemu_nbd disk 16M "$@"; }

# check NAME PYTHON-CONDITION: judge the probe's JSON ($T/out, as d);
# a sanitizer report on its stderr fails too.
check () {
  if ! grep -qE "Sanitizer|runtime error" "$T/err" &&
     python3 -c "import json,sys; d=json.load(open('$T/out')); sys.exit(0 if ($2) else 1)"; then
    echo "ok   $1: $(cat "$T/out")"
  else
    fail "$1: $(cat "$T/out") $(cat "$T/err")"
  fi
}

# outage DELAY DURATION RESTART-ARGS...: the probe in the background,
# the server killed after 0.7 s and (unless RESTART-ARGS is "never")
# restarted 0.5 s later; waits for the probe.
outage () {
  local delay=$1 dur=$2
  shift 2
  serve
  timeout 20 "$PROBE" "$delay" "$dur" 8388608 "$URI" > "$T/out" 2> "$T/err" &
  local probe=$!
  sleep 0.7
  KILLED_AT=$(now_ms)            # (kill_hard polls for the death)
  kill_hard "$QEMU_PID"
  if [ "$1" != never ]; then
    sleep 0.5
    serve "$@"
  fi
  wait "$probe" || true          # (its JSON is judged)
  ENDED_MS=$(( $(now_ms) - KILLED_AT ))
  stop_servers
}

failover () {
  outage 5 2500 --
  check "failover" "d['errno'] == '' and d['written'] > 20 and d['verified'] == d['written'] and d['reconnects'] == 1 and d['downtime_ms'] >= 400"
}

too_late () {
  outage 1 4000 never
  check "too late ($ENDED_MS ms after the kill)" "d['errno'] == 'ENOTCONN' and 'reconnect-delay' in d['message'] and d['connected'] == 0 and d['reconnects'] == 0 and 900 <= $ENDED_MS <= 2500"
}

read_only () {
  outage 5 2500 -r
  check "read-only after the restart" "d['errno'] == 'EPERM' and d['reconnects'] == 1"
}

stalling () {
  requires nbdkit               # (a skip of this case alone)
  start_nbdkit stall --filter=delay memory 16M delay-read=10
  timeout 20 "$PROBE" 1 4000 8388608 "$URI" request-timeout=300ms \
    > "$T/out" 2> "$T/err" || true
  check "stalling server" "d['errno'] == 'ETIMEDOUT' and d['reconnects'] >= 1 and 'reconnect-delay' in d['message'] and 1000 <= d['error_ms'] <= 2500"
}

run_case "restarted: every block reads back, one reconnect" failover
run_case "never restarted: ENOTCONN when reconnect-delay runs out" too_late
run_case "restarted read-only: the waiting write fails with EPERM" read_only
run_case "a server that never answers: ETIMEDOUT after reconnect-delay" stalling
finish
