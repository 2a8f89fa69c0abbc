#!/bin/bash
# tests/fio/test-refusals.sh - jobs nbdaio.so must refuse before any I/O,
# with a message naming the problem and a non-zero exit:
#  bs=128m with split=0 (over the 32 MiB maximum payload; split on, the
#  default, sends it as pieces: test-split.sh), a write job on a read-only
#  export, size= beyond the end of the export, conns=2 without multi-conn
#  (and force_multi_conn=1 overriding that), fua=1 without server FUA,
#  trim_op needing a command the server lacks, trim_op=bogus, no uri;
#  ranges past the end however fio computes them (offset / offset%,
#  offset_increment x subjob, filesize) and nrfiles=2 / filename=a:b;
#  requests that would break the server's minimum block size (bs, bsrange,
#  blockalign, bs_unaligned, offset, offset_increment, rw=...:N), with no
#  request reaching the server; fsync / fdatasync / sync_file_range /
#  end_fsync / fsync_on_close on a server without flush.
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

# no_io LOG: the server logged no request.
no_io () {
  ! grep -qE ' (Read|Write|Trim|Zero|Flush) id=' "$1" ||
    fail "a refused job sent requests: $(grep -m1 -E ' (Read|Write|Trim|Zero|Flush) id=' "$1")"
}

limits () {
  # (fio itself wants size >= bs, hence the 256 MiB export)
  start_nbdkit mem --filter=log memory 256M logfile="$T/mem.log"
  refused bs128m "bs=134217728 exceeds the server's maximum request size of 33554432 bytes, and split=0" \
    --rw=randread --bs=128m --size=128m --split=0
  refused bigwrite "exceeds the server's maximum request size" \
    --rw=write --bs=64m --size=128m --split=0
  refused beyond-end "beyond the end of the export \(268435456 bytes\)" \
    --rw=randread --bs=4k --size=257m
  refused beyond-end-offset "offset=134217728 \+ size=134221824 is beyond the end" \
    --rw=randread --bs=4k --offset=128m --size=134221824
  refused bogus-trim-op "trim_op=bogus is not one of" \
    --rw=randtrim --bs=4k --size=1m --trim_op=bogus
  # the refusals above sent no I/O at all
  no_io "$T/mem.log"
  # exactly at the limits: accepted
  fio_nbd at-limits --rw=read --bs=32m --size=64m --iodepth=2
  expect_ok at-limits
  # above them, split (the default): accepted, sent as 32 MiB requests
  start_nbdkit split --filter=log memory 256M logfile="$T/split.log"
  fio_nbd split128m --rw=randread --bs=128m --size=128m
  expect_ok split128m
  [ "$(count_log "$T/split.log" ' Read id=[0-9]+ offset=0x[0-9a-f]+ count=0x2000000 ')" -eq 4 ] ||
    fail "bs=128m was not read as 4 requests of 32 MiB: $(grep ' Read ' "$T/split.log")"

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
  start_nbd_server_export nofua 16M
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

ranges () {
  start_nbdkit r16 --filter=log memory 16M logfile="$T/r16.log"
  refused at-end "offset=16777216 is at or beyond the end of the export \(16777216 bytes\)" \
    --rw=write --bs=64k --offset=16m
  refused at-end-pct "offset=100% \(byte 16777216\) is at or beyond the end" \
    --rw=read --bs=64k --offset=100%
  refused pct-plus-size "offset=50% \(byte 8388608\) \+ size=9437184 is beyond the end" \
    --rw=write --bs=64k --offset=50% --size=9m
  refused filesize "filesize=33554432 is beyond the end of the export \(16777216 bytes\)" \
    --rw=write --bs=64k --filesize=32m
  refused nrfiles "nrfiles=2 \(or several filename= names\): an NBD export is one file" \
    --rw=write --bs=64k --size=8m --nrfiles=2
  refused filenames "nrfiles=2 .*one file" --rw=write --bs=64k --size=8m --filename=a:b
  no_io "$T/r16.log"
  # subjob 2 would start at 12m: refused; fio runs subjobs 0 and 1, which
  # stay in [0, 12m)
  refused increment "offset=0 \+ offset_increment=6291456 x job 2 \(byte 12582912\) \+ size=6291456 is beyond the end" \
    --rw=write --bs=64k --size=6m --numjobs=3 --offset_increment=6m
  fio_json increment "
done = sorted(j['write']['io_bytes'] for j in jobs)
assert done == [0, 6 << 20, 6 << 20], 'bytes written by the subjobs: %s' % done"
  ! grep -qE ' Write id=[0-9]+ offset=0x(c|d|e|f)[0-9a-f]{5} ' "$T/r16.log" ||
    fail "a write at or past 12m: $(grep -m1 -E ' Write id=[0-9]+ offset=0x(c|d|e|f)[0-9a-f]{5} ' "$T/r16.log")"
}

alignment () {
  local mb="is not a multiple of the server's minimum block size \(4096 bytes\)"
  start_nbdkit min4k --filter=log --filter=blocksize-policy memory 16M \
    logfile="$T/min4k.log" blocksize-minimum=4096 blocksize-error-policy=error
  refused bs512 "bs=512 $mb" --rw=read --bs=512 --size=1m
  refused bsrange "bsrange=10240 $mb" --rw=read --bsrange=4k-10k --size=1m
  refused trim-bs "bs=1024 $mb" --rw=randtrim --bs=4k,4k,1k --size=1m
  refused blockalign "blockalign=512 $mb" --rw=randread --bs=4k --blockalign=512 --size=1m
  refused bs-unaligned "bs_unaligned=1 makes requests of any length, but the server's minimum block size is 4096 bytes" \
    --rw=randread --bsrange=4k-16k --bs_unaligned=1 --size=1m
  refused offset "offset=512 $mb" --rw=read --bs=4k --offset=512 --size=1m
  refused seq-gap "rw=...:512 $mb" --rw=read:512 --bs=4k --size=1m
  refused increment-align "offset=0 \+ offset_increment=1000 x job 1 \(byte 1000\) $mb" \
    --rw=read --bs=4k --size=1m --numjobs=2 --offset_increment=1000
  # no unaligned request reached the server (subjob 0 above ran, aligned)
  ! grep -q 'error=EINVAL' "$T/min4k.log" || fail "the server refused a request"
  ! grep -qE ' (Write|Trim) id=' "$T/min4k.log" || fail "a refused job wrote"
  # aligned jobs run: random 8k at 4k alignment from 12k, and gaps of 8k
  fio_nbd aligned --rw=randrw --bs=8k --blockalign=4k --offset=12k --size=1m
  expect_ok aligned
  fio_nbd aligned-gap --rw=write:8k --bs=4k --size=1m
  expect_ok aligned-gap
}

no_flush () {
  # the eval plugin without a flush method: no NBD_FLAG_SEND_FLUSH
  start_nbdkit noflush eval get_size='echo 16M' \
    pread='dd if=/dev/zero count=$3 iflag=count_bytes status=none' \
    pwrite='cat >/dev/null'
  local why="but the server does not support flush \(no NBD_FLAG_SEND_FLUSH\)"
  refused fsync "fsync=4, $why" --rw=write --bs=4k --size=1m --fsync=4
  refused fdatasync "fdatasync=4, $why" --rw=randwrite --bs=4k --size=1m --fdatasync=4
  refused sync-file-range "sync_file_range=4, $why" --rw=write --bs=4k --size=1m \
    --sync_file_range=write:4
  refused end-fsync "end_fsync=1, $why" --rw=randrw --bs=4k --size=1m --end_fsync=1
  refused fsync-on-close "fsync_on_close=1, $why" --rw=write --bs=4k --size=1m \
    --fsync_on_close=1
  # fio syncs only jobs that write: a read job with end_fsync=1 runs
  fio_nbd read-end-fsync --rw=read --bs=4k --size=64k --end_fsync=1
  expect_ok read-end-fsync
}

run_case "size limits, bad options" limits
run_case "ranges past the end, several files" ranges
run_case "minimum block size: bs, blockalign, offsets" alignment
run_case "flush options on a server without flush" no_flush
run_case "writes to a read-only export" read_only
run_case "conns=2 without multi-conn" no_multi_conn
run_case "fua / trim_op the server lacks" missing_features
finish
