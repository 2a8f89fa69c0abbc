#!/bin/bash
# tests/fio/test-split.sh - requests above the server's maximum size (32 MiB
# on each server here) are split by the library: fio verify=crc32c jobs
# with bs=128m and bs=1g pass against nbdkit memory, qemu-nbd (a sparse
# file) and nbd-server, every byte written and read back; nbdkit's log
# shows that no request on the wire was larger than 32 MiB, and how many
# there were.
#
# usage: test-split.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

MAXP=$(( 32 << 20 ))

# verify_job OUT BS SIZE [ARGS...]: a sequential write of SIZE in blocks of
# BS with crc32c, read back and checked; fio exits 0 and moved SIZE each
# way.
verify_job () {
  local out=$1 bs=$2 size=$3
  shift 3
  fio_nbd "$out" --rw=write --bs="$bs" --size="$size" --iodepth=2 \
    --verify=crc32c --verify_fatal=1 --do_verify=1 "$@"
  expect_ok "$out"
  fio_json "$out" "
size = $(numfmt --from=iec "${size^^}")
assert job_total('write') == size, 'wrote %d of %d' % (job_total('write'), size)
assert job_total('read') == size, 'verified %d of %d' % (job_total('read'), size)"
  echo "  $out: bs=$bs size=$size verified in ${FIO_MS} ms"
}

# wire_sizes LOG OP: the number of OP requests nbdkit logged, and fail if
# one was larger than MAXP.
wire_sizes () {
  python3 - "$1" "$2" "$MAXP" <<'EOF'
import re, sys
log, op, maxp = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = [int(m.group(1), 16) for m in
          re.finditer(r' %s id=\d+ offset=0x[0-9a-f]+ count=0x([0-9a-f]+)' % op,
                      open(log).read())]
big = [c for c in counts if c > maxp]
if big:
    sys.exit('%d %s requests above %d bytes, e.g. %d' % (len(big), op, maxp, big[0]))
print(len(counts))
EOF
}

split_nbdkit () {
  start_nbdkit mem --filter=log memory 2G logfile="$T/mem.log"
  verify_job nbdkit-128m 128m 256m
  verify_job nbdkit-1g 1g 2g
  # 256 MiB + 2 GiB each way, in pieces of 32 MiB: 72 writes, 72 reads
  n=$(wire_sizes "$T/mem.log" Write)
  [ "$n" -eq 72 ] || fail "nbdkit saw $n writes, want 72 of 32 MiB"
  n=$(wire_sizes "$T/mem.log" Read)
  [ "$n" -eq 72 ] || fail "nbdkit saw $n reads, want 72 of 32 MiB"
}

split_qemu_nbd () {
  command -v qemu-nbd >/dev/null || fail "qemu-nbd missing"
  start_qemu_nbd qemu 2G
  verify_job qemu-128m 128m 256m
  verify_job qemu-1g 1g 2g
}

split_nbd_server () {
  command -v nbd-server >/dev/null || fail "nbd-server missing"
  start_nbd_server_export nbds 2G
  verify_job nbd-server-128m 128m 256m
  verify_job nbd-server-1g 1g 2g
}

# mixed sizes at depth 8: split commands (up to 96 MiB) among small ones,
# their pieces waiting for piece slots (max in flight 8: 8 piece slots)
split_mixed () {
  start_nbdkit mix --filter=log memory 512M logfile="$T/mix.log"
  fio_nbd mixed --rw=randwrite --bsrange=4k-96m --size=512m --iodepth=8 \
    --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=1
  expect_ok mixed
  n=$(wire_sizes "$T/mix.log" Write)
  fio_json mixed "
assert job_total('write') == 512 << 20, 'wrote %d' % job_total('write')
assert job_total('read') == 512 << 20, 'verified %d' % job_total('read')
ios = job_total('write', 'total_ios')
assert $n > ios, '$n writes on the wire for %d of fio: none was split' % ios"
  echo "  mixed: ${FIO_MS} ms, $n writes on the wire"
}

run_case "bs=128m and bs=1g crc32c verify, split (nbdkit memory, 32 MiB maximum)" split_nbdkit
run_case "bs=128m and bs=1g crc32c verify, split (qemu-nbd, sparse file)" split_qemu_nbd
run_case "bs=128m and bs=1g crc32c verify, split (nbd-server)" split_nbd_server
run_case "bsrange=4k-96m crc32c verify at depth 8, split (nbdkit)" split_mixed
finish
