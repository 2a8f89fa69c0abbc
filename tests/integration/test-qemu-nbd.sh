#!/usr/bin/env bash
# tests/integration/test-qemu-nbd.sh - libnbdaio against qemu-nbd on raw
# files: sparse export (OFFSET_HOLE replies), its advertised block sizes,
# read-only, named export with a description over TCP, an unknown export,
# the qemu:allocation-depth meta context, multi-conn.  What libnbdaio wrote
# is compared with the backing file itself and with qemu-img / nbdcopy.
# usage: test-qemu-nbd.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
source "$(dirname "$0")/lib.sh"
init "$@"

M=16777216

case_sparse_raw () {
  truncate -s $M "$T/disk.raw"
  serve_qemu_nbd q -f raw "$T/disk.raw"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"newstyle-fixed"' size=$M \
    read_only=false can_flush=true can_fua=true can_trim=true can_zero=true \
    can_cache=true can_df=true can_multi_conn=false structured_replies=true \
    meta_context='"base:allocation"' can_block_status=true \
    block_size_minimum=1 block_size_preferred=4096 \
    block_size_maximum=33554432 max_payload=33554432
  rt --expect-hole --expect-sr=1 --expect-min-block=1 --expect-size=$M \
     --server-bounds-error \
     --write-pattern "$T/written.bin" "$URI"
  # independent checks: the file itself, then qemu-img over NBD
  same_data "$T/written.bin" "$T/disk.raw"
  echo "  + qemu-img compare"
  timeout 60 qemu-img compare -f raw -F raw "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"

  # qemu-img writes, libnbdaio reads
  random_file "$T/rand.bin" 8388608
  timeout 60 nbdcopy "$T/rand.bin" "$URI"
  rt --no-write --compare-file "$T/rand.bin" "$URI"
  demo "$URI"
}

case_readonly () {
  random_file "$T/ro.raw" 4194304
  serve_qemu_nbd ro -r -f raw "$T/ro.raw"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" read_only=true can_write=false can_trim=false \
    can_zero=false size=4194304
  rt --expect-readonly --compare-file "$T/ro.raw" "$URI"
}

case_named_tcp () {
  local port
  truncate -s 4M "$T/named.raw"
  port=$(free_port)
  rm -f "$T/named.pid"
  qemu-nbd -t -b 127.0.0.1 -p "$port" -f raw -x disk1 \
    -D 'qemu "disk" \ one' --pid-file="$T/named.pid" "$T/named.raw" &
  track $!
  wait_started $! test -s "$T/named.pid"
  wait_started $! tcp_open "$port"
  URI="nbd://127.0.0.1:$port/disk1"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" export_name='"disk1"' size=4194304
  python3 - "$T/info.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = 'qemu "disk" \\ one'
if d["description"] != want:
    sys.exit(f"description {d['description']!r}, expected {want!r}")
PY
  rt --expect-size=4194304 --write-pattern "$T/written.bin" "$URI"
  same_data "$T/written.bin" "$T/named.raw"
  # a name the server does not have must fail to connect
  if timeout 30 "$INFO" "nbd://127.0.0.1:$port/nosuch" 2>"$T/err"; then
    echo "connected to an unknown export" >&2; return 1
  fi
  cat "$T/err"
}

case_allocation_depth () {
  # qemu-nbd -A offers qemu:allocation-depth: negotiate it instead of
  # base:allocation and query block status through it
  truncate -s $M "$T/ad.raw"
  serve_qemu_nbd ad -A -f raw "$T/ad.raw"
  rt --meta-context=qemu:allocation-depth --expect-sr=1 \
     --write-pattern "$T/written.bin" "$URI"
  same_data "$T/written.bin" "$T/ad.raw"
}

case_multi_conn () {
  truncate -s $M "$T/mc.raw"
  serve_qemu_nbd mc -e 2 -f raw "$T/mc.raw"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" can_multi_conn=true
  rt --write-pattern "$T/written.bin" "$URI"
  same_data "$T/written.bin" "$T/mc.raw"
}

run_case "qemu-nbd sparse raw file" case_sparse_raw
run_case "qemu-nbd -r (read-only)" case_readonly
run_case "qemu-nbd named export, description, tcp" case_named_tcp
run_case "qemu-nbd -A: qemu:allocation-depth context" case_allocation_depth
run_case "qemu-nbd -e 2 (multi-conn)" case_multi_conn
finish
