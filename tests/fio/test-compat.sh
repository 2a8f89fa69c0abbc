#!/bin/bash
# tests/fio/test-compat.sh - nbdaio.so where fio users meet it:
#  - fio's own examples/nbd.fio (written for ioengine=nbd) with only the
#    ioengine line changed (and runtime shortened) runs its 4 jobs, err=0;
#  - fio client/server on loopback: fio --server --daemonize, then
#    fio --client with a job file naming the plugin and the URI; a bad job
#    must come back as a failure;
#  - the ready job files in examples/jobs/ run (briefly) as documented.
#
# usage: test-compat.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

FIO_SRC=${FIO_SRC:-$SRC_ROOT/.fio-src/fio-$(fio --version | sed 's/^fio-//')}
JOBS_DIR=$SRC_ROOT/examples/jobs

# connections LOG: how many connections did transactions (nbdkit log).
busy_connections () {
  grep -E 'Disconnect transactions=[1-9]' "$1" | wc -l
}

fio_nbd_example () {
  local orig=$FIO_SRC/examples/nbd.fio copy=$T/nbd.fio log=$T/nbdfio.log
  [ -f "$orig" ] || fail "$orig not found (set FIO_SRC to fio's source tree)"
  sed -e "s|^ioengine=nbd\$|ioengine=external:$SO|" -e 's/^runtime=60$/runtime=2/' \
    "$orig" > "$copy"
  # exactly those two lines differ
  [ "$(diff "$orig" "$copy" | grep -c '^>')" -eq 2 ] ||
    fail "unexpected edit of nbd.fio: $(diff "$orig" "$copy")"
  start_nbdkit nbdfio --filter=log memory 256M logfile="$log"
  # the file takes the socket from $unixsocket (its comment: export it)
  unixsocket=$T/nbdfio.sock run_fio nbdfio "$copy"
  expect_ok nbdfio
  # group_reporting folds the 4 jobs into one entry: 4 x 2 s of job time
  fio_json nbdfio "
j = jobs[0]
assert j['read']['io_bytes'] > 0 and j['write']['io_bytes'] > 0, 'no randrw io'
assert j['job_runtime'] >= 4 * 2000 * 0.9, 'job_runtime %d: not 4 jobs' % j['job_runtime']"
  # and the server saw 4 busy connections (the setup probes do nothing)
  [ "$(busy_connections "$log")" -eq 4 ] ||
    fail "$(busy_connections "$log") connections did I/O, want 4"
}

client_server () {
  local port pidfile=$T/fio-server.pid
  start_nbdkit cs memory 64M
  port=$(free_port)
  timeout 20 fio --server="ip:127.0.0.1,$port" --daemonize="$pidfile"
  wait_until 20 test -s "$pidfile"
  track "$(cat "$pidfile")"
  wait_until 20 tcp_open "$port"

  cat > "$T/cs.fio" <<EOF
[cs]
ioengine=external:$SO
uri=$URI
rw=randrw
bs=4k
size=32m
iodepth=16
time_based
runtime=1
EOF
  run_fio cs --client="ip:127.0.0.1,$port" "$T/cs.fio"
  expect_ok cs
  fio_json cs "
assert d.get('client_stats'), 'no client_stats: not a client run?'
j = jobs[0]
assert j['jobname'] == 'cs'
assert j['read']['io_bytes'] > 0 and j['write']['io_bytes'] > 0, 'no io'"

  # a job the engine refuses fails on the client side too
  sed 's/^rw=randrw$/rw=randrw\ntrim_op=bogus/' "$T/cs.fio" > "$T/cs-bad.fio"
  run_fio cs-bad --client="ip:127.0.0.1,$port" "$T/cs-bad.fio"
  expect_refusal cs-bad 'trim_op=bogus'
}

# shorten JOB [SIZE]: a copy of examples/jobs/JOB in $T with runtime=1,
# no ramp time and, if given, size= and offset_increment= set to SIZE.
shorten () {
  local job=$1 size=${2:-}
  [ -f "$JOBS_DIR/$job" ] || fail "$JOBS_DIR/$job missing"
  sed -e 's/^runtime=.*/runtime=1/' -e 's/^ramp_time=.*/ramp_time=0/' \
      ${size:+-e "s/^size=.*/size=$size/" -e "s/^offset_increment=.*/offset_increment=$size/"} \
      "$JOBS_DIR/$job" > "$T/$job"
  # the usage comment is there
  grep -q '^# Usage:' "$T/$job" || fail "$job has no usage comment"
}

example_jobs () {
  # no usage line passes an option after the job file: fio reads its
  # command line before the job loads the engine, so it knows no engine
  # option there ("fio: unrecognized option '--uri=...'")
  local bad
  bad=$(grep -HE '^#.*fio [^ ]*\.fio +--' "$JOBS_DIR"/*.fio || true)
  [ -z "$bad" ] || fail "usage lines fio cannot run: $bad"
  start_nbdkit jobs memory 1G
  export NBDAIO_SO=$SO NBD_URI=$URI
  local j
  for j in randrw qd1-latency multi-conn; do
    shorten "$j.fio"
    run_fio "job-$j" "$T/$j.fio"
    expect_ok "job-$j"
    fio_json "job-$j" "
assert job_total('read') > 0, 'no reads'
want_writes = '$j' == 'randrw'
assert (job_total('write') > 0) == want_writes, 'writes: %d' % job_total('write')
assert all(j['job_runtime'] < 3000 for j in jobs), 'runtime override did not apply'"
  done
  grep -q '^conns=4$' "$JOBS_DIR/multi-conn.fio" || fail "multi-conn.fio without conns=4"
  grep -q '^iodepth=1$' "$JOBS_DIR/qd1-latency.fio" || fail "qd1-latency.fio not at QD1"

  shorten verify.fio 8m
  run_fio job-verify "$T/verify.fio"
  expect_ok job-verify
  fio_json job-verify "
assert len(jobs) == 2, '%d jobs' % len(jobs)
for j in jobs:
    assert j['write']['io_bytes'] == 8 << 20 and j['read']['io_bytes'] == 8 << 20, \
        'write %d verify %d' % (j['write']['io_bytes'], j['read']['io_bytes'])"
}

run_case "fio's examples/nbd.fio with ioengine changed" fio_nbd_example
run_case "fio client/server on loopback" client_server
run_case "examples/jobs/*.fio" example_jobs
finish
