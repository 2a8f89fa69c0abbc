#!/bin/bash
# tests/fio/test-failures.sh - nbdaio.so when the server misbehaves:
#  - injected EIO replies (nbdkit error filter, continue_on_error=all):
#    fio's total_err equals the number of error replies the server logged,
#    for reads and for writes;
#  - nbdkit killed with SIGKILL during a 30 s time_based job at
#    iodepth=128: fio stops within a few seconds, exits non-zero and names
#    the connection error;
#  - cmd_timeout=500 against a server that takes 5 s per read: fio fails
#    with ETIMEDOUT well before the first reply could come;
#  - a server paused mid-run (nbdkit pause filter) with cmd_timeout: the
#    job ends with ETIMEDOUT about cmd_timeout after the pause; also with
#    io_submit_mode=offload (fio's submit threads reap with their own
#    connections: the library's request timeout ends them);
#  - 20% EIO on reads and 20% ENOSPC on writes: fio counts exactly the
#    errors the server injected;
#  - ESHUTDOWN from the server: the job ends with ESHUTDOWN, a soft
#    disconnect, not a protocol error;
#  - nothing lost: behind nbdkit's writeback cache, what fio wrote and
#    flushed survives kill -9 of the server (read back by nbdcopy after a
#    restart on the same file), and without the flush it does not (so the
#    check can fail).
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
  ( sleep 2; now_ms > "$T/killed.at"; kill -9 "$NBDKIT_PID" ) &
  local killer=$! ended after
  fio_nbd killed --rw=randrw --bs=4k --size=128m --iodepth=128 \
    --time_based --runtime=30
  ended=$(now_ms)
  wait "$killer"
  after=$(( ended - $(cat "$T/killed.at") ))
  echo "  fio exited with $FIO_RC, ${after} ms after the kill"
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded although the server died"
  [ "$FIO_RC" -ne 124 ] || fail "fio hung after the server died"
  # every in-flight command failed at once; fio's own teardown is the rest
  [ "$after" -lt 1500 ] || fail "fio took ${after} ms after the kill to end"
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

# paused_run NAME FIO-ARGS...: a 20 s job with cmd_timeout=500 against
# nbdkit paused (pause filter) after 1 s must end with ETIMEDOUT within
# 2.5 s of the pause.
paused_run () {
  local name=$1 pauser ended after
  shift
  start_nbdkit "$name" --filter=pause memory 64M \
    pause-control="$T/$name.ctl"
  # the time is taken once the filter confirms the pause ('P')
  ( sleep "${PAUSE_AFTER:-1}"
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"p")
s.settimeout(10); assert s.recv(1) == b"P"' "$T/$name.ctl"
    now_ms > "$T/$name.at" ) &
  pauser=$!
  fio_nbd "$name" --rw=randread --bs=4k --size=64m --iodepth=32 \
    --time_based --runtime=20 --cmd_timeout=500 "$@"
  ended=$(now_ms)
  wait "$pauser"
  after=$(( ended - $(cat "$T/$name.at") ))
  echo "  fio exited with $FIO_RC, ${after} ms after the pause"
  [ "$FIO_RC" -ne 124 ] || fail "fio hung against a paused server"
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded against a paused server"
  [ "$after" -lt 2500 ] || fail "fio took ${after} ms (cmd_timeout=500)"
  grep -q 'cmd_timeout' "$T/$name.err" || fail "no cmd_timeout message"
  grep -q 'request-timeout' "$T/$name.err" ||
    fail "the library's request timeout did not end the connection"
  fio_json "$name" "
assert jobs[0]['error'] == 110, 'job error %d, want ETIMEDOUT' % jobs[0]['error']
assert jobs[0]['read']['total_ios'] > 1000, 'no I/O before the pause'"
}

paused_server () { paused_run paused; }
# offload: fio starts one submit worker per queue slot, each connecting,
# before any I/O; a pause that lands while some are still starting can
# leave fio itself waiting for them (seen on a loaded machine, also with
# the old plugin), so fewer workers and a later pause
paused_offload () {
  PAUSE_AFTER=3 paused_run offload --io_submit_mode=offload --iodepth=4
}

eio_and_enospc () {
  local log=$T/mixed.log injected
  start_nbdkit mixed --filter=log --filter=error memory 64M logfile="$log" \
    error-pread=EIO error-pread-rate=20% \
    error-pwrite=ENOSPC error-pwrite-rate=20%
  # fio treats only EIO and EILSEQ as non-fatal unless told otherwise
  fio_nbd mixed --rw=randrw --bs=4k --size=8m --iodepth=32 \
    --number_ios=4000 --continue_on_error=all --ignore_error=EIO,ENOSPC
  [ "$FIO_RC" -ne 124 ] || fail "fio hung"
  injected=$(error_replies "$log")
  echo "  server injected $injected errors" \
    "($(count_log "$log" 'return=-1 error=EIO') EIO," \
    "$(count_log "$log" 'return=-1 error=ENOSPC') ENOSPC)"
  [ "$(count_log "$log" 'Read id=[0-9]+ return=-1 error=EIO')" -gt 100 ] ||
    fail "too few EIO read errors"
  [ "$(count_log "$log" 'Write id=[0-9]+ return=-1 error=ENOSPC')" -gt 100 ] ||
    fail "too few ENOSPC write errors"
  fio_json mixed "
j = jobs[0]
assert j['total_err'] == $injected, 'fio total_err %d, server sent $injected errors' % j['total_err']
assert j['first_error'] in (5, 28), 'first_error %d' % j['first_error']"
}

server_shutdown () {
  start_nbdkit shut --filter=error memory 64M error=ESHUTDOWN \
    error-pread-rate=100% error-pread-file="$T/shutdown"
  ( sleep 1; touch "$T/shutdown" ) &
  local toucher=$!
  fio_nbd shut --rw=randread --bs=4k --size=64m --iodepth=16 \
    --time_based --runtime=20
  wait "$toucher"
  echo "  fio exited with $FIO_RC after ${FIO_MS} ms"
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded"
  [ "$FIO_MS" -lt 5000 ] || fail "fio took ${FIO_MS} ms"
  fio_json shut "
assert jobs[0]['error'] == 108, 'job error %d, want ESHUTDOWN (108)' % jobs[0]['error']"
  ! grep -q 'protocol violation' "$T/shut.err" ||
    fail "a soft disconnect reported as a violation"
}

# write_flush_kill NAME FIO-ARGS...: behind a writeback cache on
# $T/NAME.img, write 16 MiB of a known pattern, kill -9 the server, restart
# it on the same file and read the export back with nbdcopy into
# $T/NAME.back.
write_flush_kill () {
  local name=$1; shift
  truncate -s 16M "$T/$name.img"
  start_nbdkit "$name" --filter=cache file "$T/$name.img" cache=writeback
  fio_nbd "$name" --rw=write --bs=64k --size=16m --iodepth=8 \
    --buffer_pattern=0x5aa5c33c "$@"
  expect_ok "$name"
  kill -9 "$NBDKIT_PID"
  start_nbdkit "$name" file "$T/$name.img"
  timeout 60 nbdcopy "$URI" "$T/$name.back"
}

nothing_lost () {
  python3 -c 'import sys; open(sys.argv[1], "wb").write(bytes.fromhex("5aa5c33c") * (4 << 20))' \
    "$T/expected"
  write_flush_kill flushed --end_fsync=1
  cmp "$T/expected" "$T/flushed.back" || fail "flushed data was lost"
  # control: without a flush the cache held the data, and it is gone
  write_flush_kill unflushed
  ! cmp -s "$T/expected" "$T/unflushed.back" ||
    fail "unflushed data survived: the check cannot tell"
}

run_case "injected EIO replies are counted exactly" injected_errors
run_case "server killed mid-run" server_killed
run_case "cmd_timeout against a slow server" command_timeout
run_case "server paused mid-run, cmd_timeout" paused_server
run_case "server paused mid-run, cmd_timeout, io_submit_mode=offload" \
  paused_offload
run_case "20% EIO reads and 20% ENOSPC writes counted exactly" eio_and_enospc
run_case "ESHUTDOWN: soft disconnect" server_shutdown
run_case "nothing lost: flushed data survives kill -9" nothing_lost
finish
