#!/usr/bin/env bash
# tests/integration/test-nbd-server.sh - libnbdaio against nbd-server (simple
# replies only, no meta contexts, size only in GO): writable and read-only
# exports over TCP and a unix socket.  Written data is compared with the
# backing file and with nbdcopy.
# usage: test-nbd-server.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
source "$(dirname "$0")/lib.sh"
init "$@"

M=16777216

case_tcp () {
  start_nbd_server
  URI="nbd://127.0.0.1:$PORT/rw"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"newstyle-fixed"' export_name='"rw"' \
    size=$M read_only=false can_flush=true can_fua=true can_trim=true \
    is_rotational=true can_cache=false can_df=false can_fast_zero=false \
    structured_replies=false meta_context=null can_block_status=false \
    block_size_minimum=0
  rt --expect-sr=0 --expect-size=$M --server-bounds-error \
     --write-pattern "$T/written.bin" "$URI"
  same_data "$T/written.bin" "$T/rw.img"
  nbdcopy_check "$URI" "$T/written.bin"

  random_file "$T/rand.bin" 8388608
  timeout 60 nbdcopy "$T/rand.bin" "$URI"
  rt --no-write --compare-file "$T/rand.bin" "$URI"
  demo "$URI"
}

case_unix_and_readonly () {
  start_nbd_server
  URI="nbd+unix:///rw?socket=$T/nbd.sock"
  rt --expect-sr=0 --expect-size=$M --seed=3 --write-pattern "$T/written.bin" "$URI"
  same_data "$T/written.bin" "$T/rw.img"

  URI="nbd://127.0.0.1:$PORT/ro"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" read_only=true can_write=false size=4194304
  rt --expect-readonly --expect-sr=0 --compare-file "$T/ro.img" "$URI"
}

run_case "nbd-server tcp" case_tcp
run_case "nbd-server unix socket and read-only export" case_unix_and_readonly
finish
