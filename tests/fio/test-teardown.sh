#!/bin/bash
# tests/fio/test-teardown.sh - fio's teardown with commands in flight, under
# valgrind memcheck (fio and its forked job both; every error fails):
#  - the server killed with SIGKILL mid-job at iodepth=128: the commands
#    fail with ENOTCONN, fio ends, no invalid access;
#  - getevents failing with commands in flight (every reply delayed 50 ms,
#    two connections, then the job's RLIMIT_NOFILE lowered to 1 from
#    outside, so that poll on the two sockets fails with EINVAL): fio gives
#    up on the io_us and frees what it frees (cleanup_io_u: the free list
#    and the buffers) before the engine's cleanup closes the connections,
#    whose callbacks then complete the commands still in flight; no
#    invalid access, and the job's error is poll's errno.
#
# usage: test-teardown.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 77; }
command -v prlimit >/dev/null || { echo "prlimit is not installed" >&2; exit 77; }

# vg_fio OUT FIO-ARGS...: fio_nbd under valgrind in the background, one
# log per process in $T/OUT.vg.PID; sets FIO_PID.
vg_fio () {
  local out=$1
  shift
  ( cd "$T" && exec timeout "$FIO_TIMEOUT" valgrind -q --log-file="$T/$out.vg.%p" \
      fio --output-format=json --name="$out" --ioengine="external:$SO" \
      --uri="$URI" "$@" > "$T/$out.json" 2> "$T/$out.err" ) &
  FIO_PID=$!
}

# vg_wait OUT: wait for vg_fio; sets FIO_RC; fails on any valgrind report.
vg_wait () {
  local out=$1 f
  FIO_RC=0
  wait "$FIO_PID" || FIO_RC=$?
  [ "$FIO_RC" -ne 124 ] || fail "fio ($out) hung"
  for f in "$T/$out".vg.*; do
    [ -s "$f" ] || continue
    head -30 "$f" >&2
    fail "valgrind reported errors ($f)"
  done
  ls "$T/$out".vg.* >/dev/null || fail "no valgrind log"
}

# job_pid: the job process fio $FIO_PID forked (timeout -> fio -> job).
job_pid () {
  local main
  main=$(pgrep -P "$FIO_PID") && pgrep -P "$main"
}

# wait_io LOG N: wait until the server has logged N requests.
logged () { [ "$(count_log "$1" ' (Read|Write) id=')" -ge "$2" ]; }
wait_io () { wait_until 30 logged "$1" "$2"; }

server_killed () {
  start_nbdkit victim --filter=log memory 64M logfile="$T/victim.log"
  vg_fio killed --rw=randrw --bs=4k --size=32m --iodepth=128 \
    --time_based --runtime=30
  wait_io "$T/victim.log" 2000
  kill -9 "$NBDKIT_PID"
  vg_wait killed
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded although the server died"
  grep -q 'Transport endpoint is not connected' "$T/killed.err" ||
    fail "in-flight io_us did not fail with ENOTCONN: $(head -3 "$T/killed.err")"
}

getevents_fails () {
  local job
  # every reply 50 ms late: getevents has to poll
  start_nbdkit slow --filter=log --filter=delay memory 64M \
    logfile="$T/slow.log" delay-read=50ms
  vg_fio failed --rw=randread --bs=4k --size=32m --iodepth=128 --conns=2 \
    --time_based --runtime=30
  wait_io "$T/slow.log" 500
  job=$(job_pid) || fail "no fio job process"
  prlimit --nofile=1 --pid "$job"
  vg_wait failed
  [ "$FIO_RC" -ne 0 ] || fail "fio succeeded"
  grep -q 'nbdaio: poll: Invalid argument' "$T/failed.err" ||
    fail "poll did not fail: $(head -3 "$T/failed.err")"
  fio_json failed "
j = jobs[0]
assert j['error'] == 22, 'job error %d, want EINVAL (22) from poll' % j['error']
issued, done = j['read']['total_ios'], j['read']['io_bytes'] // 4096
assert issued - done >= 64, 'only %d of %d io_us in flight at the end' % (issued - done, issued)
print('  %d io_us issued, %d completed: %d in flight at cleanup' % (issued, done, issued - done))"
}

run_case "server killed mid-job at iodepth=128, under valgrind" server_killed
run_case "getevents fails with commands in flight, under valgrind" getevents_fails
finish
