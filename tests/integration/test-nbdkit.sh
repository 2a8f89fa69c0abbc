#!/usr/bin/env bash
# tests/integration/test-nbdkit.sh - libnbdaio against nbdkit: memory export
# over unix, TCP (by name) and ::1; oldstyle; plain newstyle; no NO_ZEROES;
# no structured replies (server or client side); read-only; block-size
# minimum and maximum; nozero; injected EIO and ESHUTDOWN; a small odd size;
# a quoted description; command flags as nbdkit's log filter saw them; the
# server killed with reads in flight; nbdaio-info's error paths.  Data
# written through libnbdaio is checked with nbdcopy (libnbd) and data
# written by nbdcopy is checked through libnbdaio.
# usage: test-nbdkit.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
source "$(dirname "$0")/lib.sh"
init "$@"

M=16777216      # 16 MiB exports

case_memory () {
  start_nbdkit mem memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"newstyle-fixed"' export_name='""' \
    size=$M read_only=false can_write=true can_flush=true can_fua=true \
    can_trim=true can_zero=true can_fast_zero=true can_cache=true \
    can_df=true can_multi_conn=true is_rotational=false \
    can_block_status=true structured_replies=true \
    meta_context='"base:allocation"' handshake_flags=3 \
    block_size_minimum=0 block_size_preferred=0 block_size_maximum=0
  # transmission flags: HAS_FLAGS (bit 0) set, READ_ONLY (bit 1) clear
  python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))["transmission_flags"]; sys.exit(0 if f & 1 and not f & 2 else 1)' "$T/info.json"

  rt --expect-writable --expect-sr=1 --expect-min-block=0 --expect-size=$M \
     --expect-protocol=newstyle-fixed --server-bounds-error \
     --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"

  # the other direction: nbdcopy writes, libnbdaio reads and compares
  random_file "$T/rand.bin" $M
  timeout 60 nbdcopy "$T/rand.bin" "$URI"
  rt --no-write --compare-file "$T/rand.bin" "$URI"

  # a second run on the same export with another pattern and shape
  rt --seed=7 --chunk=4096 --depth=128 --length=4194304 \
     --write-pattern "$T/written2.bin" "$URI"
  nbdcopy_check "$URI" "$T/written2.bin"

  demo "$URI"

  # no maximum advertised: the protocol's 32 MiB (nbdaio.h)
  expect_json "$T/info.json" max_payload=33554432
}

case_tcp () {
  start_nbdkit_tcp tcp memory $M
  URI=${URI/127.0.0.1/localhost}        # through name resolution
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" size=$M structured_replies=true
  rt --expect-size=$M --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_tcp6 () {
  if ! free_port6 >/dev/null 2>&1; then
    echo "  (no IPv6 loopback here: skipped)"
    return 0
  fi
  start_nbdkit_tcp6 tcp6 memory $M
  rt --expect-size=$M --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_no_sr () {
  start_nbdkit nosr --no-sr memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" structured_replies=false meta_context=null \
    can_block_status=false can_df=false can_trim=true can_zero=true
  rt --expect-sr=0 --server-bounds-error --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_client_no_sr () {
  start_nbdkit csr memory $M
  rt --request-sr=0 --expect-sr=0 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
  # structured replies but no meta context: no block status
  rt --meta-context=none --expect-sr=1 "$URI"
}

case_oldstyle () {
  start_nbdkit old -o memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"oldstyle"' size=$M \
    structured_replies=false meta_context=null can_block_status=false
  # nbdkit 1.32.5 in oldstyle mode advertises FLUSH, FUA, TRIM,
  # WRITE_ZEROES and CACHE but refuses each with EINVAL ("operation not
  # supported"; qemu-io sees the same): only plain reads and writes here.
  rt --expect-protocol=oldstyle --expect-sr=0 --data-only \
     --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_newstyle_unfixed () {
  start_nbdkit unfixed --mask-handshake=0 memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"newstyle"' handshake_flags=0 \
    size=$M structured_replies=false
  rt --expect-protocol=newstyle --expect-sr=0 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_no_zeroes_flag () {
  start_nbdkit mask1 --mask-handshake=1 memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" protocol='"newstyle-fixed"' handshake_flags=1 \
    size=$M structured_replies=true
  rt --expect-sr=1 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_readonly () {
  random_file "$T/ro.bin" 4194304
  start_nbdkit ro -r file "$T/ro.bin"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" read_only=true can_write=false can_trim=false \
    can_zero=false can_fua=false size=4194304
  python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))["transmission_flags"]; sys.exit(0 if f & 2 else 1)' "$T/info.json"
  rt --expect-readonly --expect-size=4194304 --compare-file "$T/ro.bin" "$URI"
  cmp "$T/ro.bin" <(timeout 60 nbdcopy "$URI" -)
}

case_blocksize_policy () {
  start_nbdkit bsp --filter=blocksize-policy memory $M \
    blocksize-minimum=4096 blocksize-error-policy=error
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" block_size_minimum=4096 block_size_preferred=4096
  rt --expect-min-block=4096 --server-align-error --chunk=65536 \
     --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
  demo "$URI"
}

case_blocksize_maximum () {
  # a 256 KiB maximum, which the server enforces: 1 MiB requests are split
  # by the library into requests that fit (split on, the default); with
  # split off, larger requests are refused locally (ERANGE) and lengths
  # past 32 bits are never truncated
  start_nbdkit bsmax --filter=blocksize-policy memory $M \
    blocksize-maximum=262144 blocksize-error-policy=error
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" block_size_maximum=262144 max_payload=262144
  rt --chunk=1048576 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
  rt --set split=0 --chunk=1048576 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_nozero () {
  start_nbdkit nozero --filter=nozero memory $M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" can_zero=false can_fast_zero=false can_trim=true
  rt --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
}

case_error_injection () {
  start_nbdkit err --filter=error memory $M \
    error=EIO error-pread-rate=100% error-pread-file="$T/inject"
  rt --error-file "$T/inject" --write-pattern "$T/written.bin" "$URI"
  [ ! -e "$T/inject" ]
  nbdcopy_check "$URI" "$T/written.bin"
}

case_small_export () {
  start_nbdkit small memory 100000
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" size=100000
  rt --expect-size=100000 --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
  demo "$URI"
  # the payload limit is the protocol's, not the export size
  expect_json "$T/info.json" max_payload=33554432
}

case_description () {
  start_nbdkit desc --filter=exportname memory 1M \
    'exportdesc=fixed:disk "one"\ tab	end'
  info "$URI" "$T/info.json"
  # quotes, a backslash and a tab must survive into the JSON intact
  python3 - "$T/info.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = 'disk "one"\\ tab\tend'
if d["description"] != want:
    sys.exit(f"description {d['description']!r}, expected {want!r}")
EOF
}

case_wire_flags () {
  # nbdkit's log filter records each request with its flags as received
  start_nbdkit log --filter=log memory $M logfile="$T/requests.log"
  rt --write-pattern "$T/written.bin" "$URI"
  nbdcopy_check "$URI" "$T/written.bin"
  local want
  for want in ' Write .* fua=1 ' ' Write .* fua=0 ' ' Zero .* trim=0 ' \
              ' Zero .* fast=1 ' ' Trim ' ' Cache ' ' Flush ' \
              ' Extents .* req_one=1 ' ' Extents .* req_one=0 '; do
    grep -Eq -- "$want" "$T/requests.log" ||
      { echo "no request matching '$want' in nbdkit's log" >&2; return 1; }
  done
}

case_server_dies () {
  # reads are held 10 s by the server, which roundtrip kills meanwhile
  start_nbdkit dies --filter=delay memory $M delay-read=10
  rt --kill-server="$(cat "$T/dies.pid")" -v "$URI"
}

case_eshutdown () {
  # reads answer ESHUTDOWN while the trigger file exists (simple replies too)
  start_nbdkit shut --filter=error memory $M \
    error=ESHUTDOWN error-pread-rate=100% error-pread-file="$T/shut"
  rt --eshutdown-file="$T/shut" -v "$URI"
  rt --request-sr=0 --eshutdown-file="$T/shut" -v "$URI"
}

case_bad_uri () {
  # connect failures: exit status 1 and a message naming the cause
  local out
  if out=$(timeout 30 "$INFO" "nbd+unix:///?socket=$T/nonexistent.sock" 2>&1); then
    echo "nbdaio-info succeeded on a missing socket" >&2; return 1
  fi
  echo "  nbdaio-info said: $out"
  [ -n "$out" ]
  # a TLS parameter on a plaintext URI is a mistake, not something to ignore
  if timeout 30 "$INFO" "nbd+unix:///?socket=$T/x.sock&tls-psk-file=/k" \
       2>"$T/err"; then
    echo "nbdaio-info accepted tls-psk-file on an nbd:// URI" >&2; return 1
  fi
  grep -q "need an nbds://" "$T/err"
  if timeout 30 "$INFO" "not-a-uri" 2>/dev/null; then
    echo "nbdaio-info accepted a bad URI" >&2; return 1
  fi
  if timeout 30 "$INFO" 2>/dev/null; then
    echo "nbdaio-info ran without a URI" >&2; return 1
  fi
  timeout 30 "$INFO" --help | grep -q usage
}

run_case "nbdkit memory (unix)" case_memory
run_case "nbdkit memory (tcp)" case_tcp
run_case "nbdkit memory (tcp, ::1)" case_tcp6
run_case "nbdkit --no-sr" case_no_sr
run_case "client refuses structured replies" case_client_no_sr
run_case "nbdkit -o (oldstyle)" case_oldstyle
run_case "nbdkit --mask-handshake=0 (newstyle, not fixed)" case_newstyle_unfixed
run_case "nbdkit --mask-handshake=1 (no NO_ZEROES)" case_no_zeroes_flag
run_case "nbdkit -r (read-only)" case_readonly
run_case "nbdkit blocksize-policy minimum 4096" case_blocksize_policy
run_case "nbdkit blocksize-policy maximum 256 KiB" case_blocksize_maximum
run_case "nbdkit nozero filter" case_nozero
run_case "nbdkit error filter (EIO on reads)" case_error_injection
run_case "nbdkit small odd-sized export" case_small_export
run_case "nbdkit export description" case_description
run_case "nbdkit log filter: command flags on the wire" case_wire_flags
run_case "server killed with reads in flight" case_server_dies
run_case "server answers ESHUTDOWN" case_eshutdown
run_case "nbdaio-info error paths" case_bad_uri
finish
