#!/bin/bash
# tests/fio/test-refusals.sh - jobs nbdaio.so must refuse before any I/O,
# with a message naming the problem and a non-zero exit:
#  bs=128m (over the 32 MiB maximum payload), a write job on a read-only
#  export, size= beyond the end of the export, conns=2 without multi-conn
#  (and force_multi_conn=1 overriding that), fua=1 without server FUA,
#  trim_op needing a command the server lacks, trim_op=bogus, no uri.
#
# usage: test-refusals.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

# refused OUT REGEX JOB-ARGS...: the job on $URI fails fast with REGEX.
refused () {
  local out=$1 re=$2
  shift 2
  fio_nbd "$out" "$@"
  expect_refusal "$out" "$re"
  [ "$FIO_MS" -lt 5000 ] || fail "$out: refusal took ${FIO_MS} ms"
  echo "  $out: $(grep -m1 -iE -- "$re" "$T/$out.err")"
}

limits () {
  # (fio itself wants size >= bs, hence the 256 MiB export)
  start_nbdkit mem --filter=log memory 256M logfile="$T/mem.log"
  refused bs128m "bs=134217728 exceeds the server's maximum request size of 33554432" \
    --rw=randread --bs=128m --size=128m
  refused bigwrite "exceeds the server's maximum request size" \
    --rw=write --bs=64m --size=128m
  refused beyond-end "beyond the end of the export \(268435456 bytes\)" \
    --rw=randread --bs=4k --size=257m
  refused beyond-end-offset "offset=134217728 \+ size=134221824 is beyond the end" \
    --rw=randread --bs=4k --offset=128m --size=134221824
  refused bogus-trim-op "trim_op=bogus is not one of" \
    --rw=randtrim --bs=4k --size=1m --trim_op=bogus
  # the refusals above sent no I/O at all
  ! grep -qE ' (Read|Write|Trim|Zero) id=' "$T/mem.log" ||
    fail "a refused job sent requests: $(grep -m1 -E ' (Read|Write) id=' "$T/mem.log")"
  # exactly at the limits: accepted
  fio_nbd at-limits --rw=read --bs=32m --size=64m --iodepth=2
  expect_ok at-limits

  # no uri at all
  run_fio no-uri --name=no-uri --ioengine="external:$SO" --rw=read --size=1m
  expect_refusal no-uri "the uri option .* or nbd_profile is required"
}

read_only () {
  start_nbdkit ro -r memory 64M
  refused ro-write "writes, but export .* is read-only" --rw=randwrite --bs=4k --size=1m
  refused ro-rw "read-only" --rw=randrw --bs=4k --size=1m
  refused ro-trim "read-only" --rw=randtrim --bs=4k --size=1m
  # reading a read-only export is fine
  fio_nbd ro-read --rw=randread --bs=4k --size=1m
  expect_ok ro-read
}

no_multi_conn () {
  start_nbdkit single --filter=multi-conn memory 64M multi-conn-mode=disable
  refused conns2 "conns=2, but the server does not advertise multi-conn" \
    --rw=randread --bs=4k --size=1m --conns=2
  fio_nbd forced --rw=randread --bs=4k --size=1m --conns=2 --force_multi_conn=1
  expect_ok forced
}

missing_features () {
  command -v nbd-server >/dev/null || fail "nbd-server missing"
  # nbd-server advertises FUA only with fua = true, and has no fast zero
  # (nbdkit 1.32's fua filter rejects its own documented fuamode=none)
  start_nbd_server nofua 16M
  refused fua "fua=1, but the server does not support FUA" \
    --rw=randwrite --bs=4k --size=1m --fua=1
  refused fast-zero "trim_op=fast_zero, but the server does not support fast zero" \
    --rw=randtrim --bs=4k --size=1m --trim_op=fast_zero
  refused cache "trim_op=cache, but the server does not support cache" \
    --rw=randtrim --bs=4k --size=1m --trim_op=cache
  stop_servers
  start_nbdkit nozero --filter=nozero memory 64M
  refused zero "trim_op=zero, but the server does not support write zeroes" \
    --rw=randtrim --bs=4k --size=1m --trim_op=zero
}

case_ "size limits, bad options" limits
case_ "writes to a read-only export" read_only
case_ "conns=2 without multi-conn" no_multi_conn
case_ "fua / trim_op the server lacks" missing_features
fio_test_done
