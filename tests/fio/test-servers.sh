#!/bin/bash
# tests/fio/test-servers.sh - nbdaio.so runs randread, randwrite and randrw
# jobs against the three real servers: nbdkit (memory plugin, unix socket),
# qemu-nbd (raw file, unix socket) and nbd-server (file export over TCP,
# simple replies only).  Each job must end with error 0, and move bytes in
# exactly the directions it asked for.
#
# usage: test-servers.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

# three_patterns LABEL: the three random patterns on $URI.
three_patterns () {
  local label=$1 rw
  for rw in randread randwrite randrw; do
    fio_nbd "$label-$rw" --rw="$rw" --bs=4k --size=32m --iodepth=32 \
      --time_based --runtime=1
    expect_ok "$label-$rw"
    fio_json "$label-$rw" "
j = jobs[0]
rd, wr = j['read']['io_bytes'], j['write']['io_bytes']
want_rd = '$rw' in ('randread', 'randrw')
want_wr = '$rw' in ('randwrite', 'randrw')
assert (rd > 0) == want_rd, 'read io_bytes %d for $rw' % rd
assert (wr > 0) == want_wr, 'write io_bytes %d for $rw' % wr
assert j['read']['total_ios'] + j['write']['total_ios'] > 100, 'too few ios'"
  done
}

nbdkit_memory () {
  start_nbdkit mem memory 64M
  three_patterns nbdkit
}

qemu_nbd_file () {
  command -v qemu-nbd >/dev/null || { echo "qemu-nbd missing" >&2; return 1; }
  start_qemu_nbd qemu 64M
  three_patterns qemu-nbd
}

nbd_server_tcp () {
  command -v nbd-server >/dev/null || { echo "nbd-server missing" >&2; return 1; }
  start_nbd_server_export disk 64M
  three_patterns nbd-server
  # the mixed job also ran with structured replies refused by the client
  fio_nbd nbd-server-simple --rw=randrw --bs=4k --size=8m --iodepth=8 \
    --structured=0 --time_based --runtime=1
  expect_ok nbd-server-simple
}

run_case "randread/randwrite/randrw on nbdkit memory" nbdkit_memory
run_case "randread/randwrite/randrw on qemu-nbd" qemu_nbd_file
run_case "randread/randwrite/randrw on nbd-server (TCP)" nbd_server_tcp
finish
