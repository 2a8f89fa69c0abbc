#!/bin/bash
# tests/fio/test-failures.sh - nbdaio.so when the server misbehaves:
#  - injected EIO replies (nbdkit error filter, continue_on_error=all):
#    fio's total_err equals the number of error replies the server logged,
#    for reads and for writes;
#  - nbdkit killed with SIGKILL during a 30 s time_based job at
#    iodepth=128: fio stops within a few seconds, exits non-zero and names
#    the connection error;
#  - cmd_timeout=500 against a server that takes 5 s per read: fio fails
#    with ETIMEDOUT well before the first reply could come.
#
# usage: test-failures.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

# error_replies LOG: replies carrying an error, e.g.
#   ... connection=2 ...Read id=18 return=-1 error=EIO
error_replies () { grep -cE '\.\.\.[A-Za-z]+ id=[0-9]+ return=-1 ' "$1" || true; }

injected_errors () {
  local log=$T/errors.log injected
  # the log filter sits outside the error filter, so it sees the failures
  start_nbdkit errors --filter=log --filter=error memory 64M \
    logfile="$log" error=EIO error-pread-rate=10% error-pwrite-rate=5%
  fio_nbd errors --rw=randrw --bs=4k --size=8m --iodepth=16 --conns=2 \
    --number_ios=3000 --continue_on_error=all
  # with continue_on_error fio still reports the first error in "error"
  [ "$FIO_RC" -ne 124 ] || fail "fio hung"
  injected=$(error_replies "$log")
  echo "  server injected $injected errors"
  [ "$injected" -gt 50 ] || fail "only $injected errors injected: filter not active?"
  fio_json errors "
j = jobs[0]
assert j['total_err'] == $injected, 'fio total_err %d, server sent $injected errors' % j['total_err']
assert j['first_error'] == 5, 'first_error %d, want EIO (5)' % j['first_error']
ios = j['read']['total_ios'] + j['write']['total_ios']
assert ios > 1000, 'only %d ios completed' % ios"
  # the server's failures were reads and writes both
  grep -qE '\.\.\.Read id=[0-9]+ return=-1 error=EIO' "$log" || fail "no read errors"
  grep -qE '\.\.\.Write id=[0-9]+ return=-1 error=EIO' "$log" || fail "no write errors"
}

server_killed () {
  start_nbdkit victim memory 256M
  ( sleep 2; kill -9 "$NBDKIT_PID" ) &
  local killer=$!
  fio_nbd killed --rw=randrw --bs=4k --size=128m --iodepth=128 \
    --time_based --runtime=30
  wait "$killer"
  echo "  fio exited with $FIO_RC after ${FIO_MS} ms (server killed at ~2000 ms)"
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded although the server died"
  [ "$FIO_RC" -ne 124 ] || fail "fio hung after the server died"
  [ "$FIO_MS" -lt 8000 ] || fail "fio took ${FIO_MS} ms to notice"
  grep -qE 'nbdaio: connection [0-9]+: .*(reset|closed|EOF|end of file|broken pipe|not connected)' \
    "$T/killed.err" || fail "no connection error named: $(head -3 "$T/killed.err")"
  grep -q 'Transport endpoint is not connected' "$T/killed.err" ||
    fail "in-flight io_us did not fail with ENOTCONN"
}

command_timeout () {
  start_nbdkit slow --filter=delay memory 64M delay-read=5
  fio_nbd timeout --rw=randread --bs=4k --size=1m --iodepth=4 --conns=2 \
    --cmd_timeout=500
  echo "  fio exited with $FIO_RC after ${FIO_MS} ms"
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded"
  [ "$FIO_MS" -lt 3000 ] || fail "fio took ${FIO_MS} ms (cmd_timeout=500)"
  grep -q 'cmd_timeout' "$T/timeout.err" || fail "no cmd_timeout message"
  grep -q 'Connection timed out' "$T/timeout.err" || fail "io_us not failed with ETIMEDOUT"
  fio_json timeout "
assert jobs[0]['error'] == 110, 'job error %d, want ETIMEDOUT' % jobs[0]['error']"
}

case_ "injected EIO replies are counted exactly" injected_errors
case_ "server killed mid-run" server_killed
case_ "cmd_timeout against a slow server" command_timeout
fio_test_done
