#!/bin/bash
# tests/fio/test-verify.sh - data integrity through nbdaio.so: fio writes
# with verify=crc32c and reads everything back, with 2 jobs (each on its own
# range through offset_increment) of 4 connections each, mixed block sizes
# and a deep queue.  Then a verify-only pass from fresh connections must
# find the same data, and the same pass against an empty export must FAIL
# (so a passing verify really means the data was checked).
#
# usage: test-verify.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

VERIFY_JOB=(--rw=randwrite --bsrange=4k-128k --size=12m --offset_increment=12m
            --numjobs=2 --iodepth=32 --conns=4 --verify=crc32c
            --verify_fatal=1 --randrepeat=1)

verify_nbdkit () {
  start_nbdkit mem memory 32M
  fio_nbd verify "${VERIFY_JOB[@]}"
  expect_ok verify
  fio_json verify "
assert len(jobs) == 2, '%d jobs, want 2' % len(jobs)
for j in jobs:
    assert j['write']['io_bytes'] == 12 << 20, 'wrote %d' % j['write']['io_bytes']
    # the verify phase reads back what was written
    assert j['read']['io_bytes'] == 12 << 20, 'verified %d' % j['read']['io_bytes']"

  # the data is still there for other connections (same seeds, same layout)
  fio_nbd reverify "${VERIFY_JOB[@]}" --verify_only=1
  expect_ok reverify
  fio_json reverify "
for j in jobs:
    assert j['read']['io_bytes'] == 12 << 20, 'verified %d' % j['read']['io_bytes']"

  # negative control: an export of zeroes must not pass verification
  start_nbdkit empty memory 32M
  fio_nbd badverify "${VERIFY_JOB[@]}" --verify_only=1
  [ "$FIO_RC" -ne 0 ] || fail "verify of an empty export passed"
  grep -qiE 'verify|bad magic|crc32c' "$T/badverify.err" ||
    fail "no verify failure message: $(head -3 "$T/badverify.err")"
}

verify_qemu_nbd () {
  command -v qemu-nbd >/dev/null || fail "qemu-nbd missing"
  start_qemu_nbd qemu 32M
  # qemu-nbd has no multi-conn without -e, so one connection per job
  fio_nbd verify-qemu --rw=randwrite --bsrange=4k-64k --size=8m \
    --offset_increment=8m --numjobs=2 --iodepth=16 --verify=crc32c \
    --verify_fatal=1
  expect_ok verify-qemu
  fio_json verify-qemu "
for j in jobs:
    assert j['read']['io_bytes'] == 8 << 20, 'verified %d' % j['read']['io_bytes']"
}

verify_qemu_nbd_conns () {
  command -v qemu-nbd >/dev/null || fail "qemu-nbd missing"
  # -e 4: four clients at once, and qemu-nbd advertises multi-conn
  start_qemu_nbd qemu4 32M -e 4
  fio_nbd verify-qemu4 --rw=randwrite --bsrange=4k-64k --size=16m \
    --iodepth=32 --conns=4 --fsync=64 --verify=crc32c --verify_fatal=1
  expect_ok verify-qemu4
  fio_json verify-qemu4 "assert job_total('read') == 16 << 20, \
'verified %d' % job_total('read')"
}

busy_poll () {
  start_nbdkit bp memory 32M
  # QD1 and conns=2 QD8 with busy polling: same data, same checks
  fio_nbd bp-qd1 --rw=randwrite --bs=4k --size=4m --iodepth=1 \
    --busy_poll=200 --verify=crc32c --do_verify=1
  expect_ok bp-qd1
  fio_json bp-qd1 "assert job_total('read') == 4 << 20"
  fio_nbd bp-conns --rw=randwrite --bs=4k --size=8m --iodepth=8 --conns=2 \
    --busy_poll=50 --verify=crc32c --do_verify=1
  expect_ok bp-conns
  fio_json bp-conns "assert job_total('read') == 8 << 20"
}

run_case "crc32c verify, conns=4 numjobs=2 (nbdkit)" verify_nbdkit
run_case "crc32c verify, numjobs=2 (qemu-nbd)" verify_qemu_nbd
run_case "crc32c verify, conns=4 with flushes (qemu-nbd -e 4)" verify_qemu_nbd_conns
run_case "crc32c verify with busy_poll (QD1, conns=2)" busy_poll
finish
