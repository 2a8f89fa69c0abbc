#!/bin/bash
# tests/fio/test-commands.sh - the NBD commands nbdaio.so sends, as seen by
# the server (nbdkit's log filter records every request and its flags):
#  - fsync=8 on randwrite: NBD_CMD_FLUSH, one per 8 writes at iodepth=1, and
#    exactly as many as fio counts as syncs at a deeper queue;
#  - every trim_op (trim, zero, zero_nohole, fast_zero, cache) with
#    rw=randtrim / trim, with and without fua=1: the right command and flags;
#  - fua=1 / fua=0 writes carry / do not carry the FUA flag.
#
# nbdkit log lines look like
#   ... connection=2 Zero id=7 offset=0x0 count=0x10000 trim=1 fua=0 fast=1 ...
#   ... connection=2 ...Zero id=7 return=0
# (request lines have "NAME id=", replies "...NAME id=").
#
# usage: test-commands.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

# requests LOG NAME: the request lines for command NAME.
requests () { grep -E " $2 id=[0-9]+ " "$1" || true; }

# fsync_job NAME FIO-ARGS...: a fresh nbdkit logging every request
# ($T/NAME.log, in LOG) under a randwrite of 512 4k blocks with fsync=8
# (and FIO-ARGS) that must succeed; sets WRITES and FLUSHES, the requests
# the server saw, and fio's own count of syncs must equal FLUSHES.
fsync_job () {
  local name=$1; shift
  stop_servers
  LOG=$T/$name.log
  start_nbdkit "$name" --filter=log memory 64M logfile="$LOG"
  fio_nbd "$name" --rw=randwrite --bs=4k --size=2m --fsync=8 "$@"
  expect_ok "$name"
  WRITES=$(requests "$LOG" Write | wc -l)
  FLUSHES=$(requests "$LOG" Flush | wc -l)
  echo "  $name: $WRITES writes, $FLUSHES flushes"
  fio_json "$name" "
n = jobs[0]['sync']['total_ios']
assert n == $FLUSHES, 'fio counted %d syncs, server saw $FLUSHES flushes' % n"
}

flush_per_fsync () {
  # iodepth=1: fio issues a sync after every 8th write
  fsync_job fsync-qd1 --iodepth=1
  [ "$WRITES" -eq 512 ] || fail "server saw $WRITES writes, want 512"
  # 512/8 = 64; fio skips the sync after the final write
  [ "$FLUSHES" -ge 63 ] && [ "$FLUSHES" -le 64 ] ||
    fail "server saw $FLUSHES flushes for 512 writes with fsync=8"

  # deeper queue: fio may issue a sync again while the previous one is in
  # flight (same with its built-in nbd engine), so compare with fio's count
  # (a fresh server and log: nbdkit does not append, so no truncating)
  fsync_job fsync-qd16 --iodepth=16
  [ "$WRITES" -eq 512 ] || fail "server saw $WRITES writes, want 512"
  [ "$FLUSHES" -ge 63 ] || fail "only $FLUSHES flushes for 512 writes"
  # every flush succeeded
  [ "$(grep -cE '\.\.\.Flush id=[0-9]+ return=0' "$LOG")" -eq "$FLUSHES" ] ||
    fail "not every flush returned 0"

  # conns=2 on a multi-conn server: one NBD_CMD_FLUSH per fio sync (the
  # group's flush covers both connections), after the writes before it
  fsync_job fsync-conns --iodepth=16 --conns=2
  [ "$(grep -cE 'connection=[0-9]+ Write id=' "$LOG")" -eq 512 ] ||
    fail "server saw $(grep -cE ' Write id=' "$LOG") writes, want 512"
  [ "$(grep -oE 'connection=[0-9]+ Write id=' "$LOG" | sort -u | wc -l)" -eq 2 ] ||
    fail "the writes did not use both connections"
}

# check_trim_op OP FUA COMMAND FLAG-REGEX: a randtrim job with trim_op=OP
# fua=FUA; every request the server saw is COMMAND with flags matching
# FLAG-REGEX, and their number equals fio's trim count.
check_trim_op () {
  local op=$1 fua=$2 cmd=$3 flags=$4 log=$T/trim-$1-$2.log n bad others
  start_nbdkit "trim-$op-$fua" --filter=log memory 64M logfile="$log"
  fio_nbd "trim-$op-$fua" --rw=randtrim --bs=64k --size=4m --iodepth=8 \
    --trim_op="$op" --fua="$fua"
  expect_ok "trim-$op-$fua"
  n=$(requests "$log" "$cmd" | wc -l)
  bad=$(requests "$log" "$cmd" | grep -cvE -- "$flags" || true)
  others=$(grep -E ' (Read|Write|Trim|Zero|Cache|Flush) id=' "$log" |
           grep -cvE " $cmd id=" || true)
  echo "  trim_op=$op fua=$fua: $n x $cmd"
  [ "$n" -eq 64 ] || fail "trim_op=$op: server saw $n $cmd requests, want 64"
  [ "$bad" -eq 0 ] || fail "trim_op=$op: $bad $cmd requests without /$flags/:
$(requests "$log" "$cmd" | grep -vE -- "$flags" | head -3)"
  [ "$others" -eq 0 ] || fail "trim_op=$op: $others other requests"
  fio_json "trim-$op-$fua" "
assert jobs[0]['trim']['total_ios'] == 64, 'fio trims %d' % jobs[0]['trim']['total_ios']
assert jobs[0]['trim']['io_bytes'] == 4 << 20"
  stop_servers
}

trim_ops () {
  check_trim_op trim        0 Trim  ' fua=0 '
  check_trim_op trim        1 Trim  ' fua=1 '
  check_trim_op zero        0 Zero  ' trim=1 fua=0 fast=0 '
  check_trim_op zero        1 Zero  ' trim=1 fua=1 fast=0 '
  check_trim_op zero_nohole 0 Zero  ' trim=0 fua=0 fast=0 '
  check_trim_op zero_nohole 1 Zero  ' trim=0 fua=1 fast=0 '
  check_trim_op fast_zero   0 Zero  ' trim=1 fua=0 fast=1 '
  check_trim_op fast_zero   1 Zero  ' trim=1 fua=1 fast=1 '
  # NBD_CMD_CACHE takes no FUA flag: fua=1 must not change it
  check_trim_op cache       0 Cache ' count=0x10000 \.\.\.$'
  check_trim_op cache       1 Cache ' count=0x10000 \.\.\.$'
}

# sequential trim (rw=trim) uses the same mapping
trim_sequential () {
  local log=$T/seqtrim.log
  start_nbdkit seqtrim --filter=log memory 64M logfile="$log"
  fio_nbd seqtrim --rw=trim --bs=1m --size=8m --iodepth=4 --trim_op=zero_nohole
  expect_ok seqtrim
  [ "$(requests "$log" Zero | grep -c ' trim=0 ')" -eq 8 ] ||
    fail "want 8 Zero trim=0 requests: $(requests "$log" Zero | head -3)"
}

fua_writes () {
  local log=$T/fua.log n1 n0
  start_nbdkit fua --filter=log memory 64M logfile="$log"
  fio_nbd fua1 --rw=randwrite --bs=4k --size=1m --iodepth=8 --fua=1
  expect_ok fua1
  n1=$(requests "$log" Write | grep -c ' fua=1 ' || true)
  n0=$(requests "$log" Write | grep -c ' fua=0 ' || true)
  [ "$n1" -eq 256 ] && [ "$n0" -eq 0 ] ||
    fail "fua=1 job: $n1 writes with fua=1, $n0 with fua=0 (want 256 / 0)"
  stop_servers
  log=$T/fua0.log
  start_nbdkit fua0 --filter=log memory 64M logfile="$log"
  fio_nbd fua0 --rw=randwrite --bs=4k --size=1m --iodepth=8
  expect_ok fua0
  n1=$(requests "$log" Write | grep -c ' fua=1 ' || true)
  n0=$(requests "$log" Write | grep -c ' fua=0 ' || true)
  [ "$n1" -eq 0 ] && [ "$n0" -eq 256 ] ||
    fail "default job: $n1 writes with fua=1, $n0 with fua=0 (want 0 / 256)"
}

run_case "fsync=8 sends NBD_CMD_FLUSH" flush_per_fsync
run_case "trim_op variants and their flags" trim_ops
run_case "rw=trim with trim_op=zero_nohole" trim_sequential
run_case "fua=1 writes carry FUA" fua_writes
finish
