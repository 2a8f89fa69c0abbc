#!/usr/bin/env bash
# tests/interop/test-trixie.sh - nbdaio against today's servers and clients,
# run from a Debian trixie root (tests/interop/make-root.sh builds it once,
# in $NBDAIO_TRIXIE_ROOT or /var/cache/nbdaio/trixie): nbdkit 1.42,
# qemu-nbd 10 and nbd-server 3.26 serve, libnbd 1.22's nbdcopy reads back
# what nbdaio wrote, nbdaio-check judges each server and fio (the host's
# 3.33) runs verify jobs through nbdaio.so.  Exit 77 (skipped, never
# passed) when the root cannot be built here.
# usage: test-trixie.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO NBDAIO-CHECK
#                        BS-CONTEXTS BIG-REQUESTS READ-POLICY [NBDAIO.SO]
#        test-trixie.sh --list   (the cases: one per server setup)
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/root.sh"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -ge 7 ] || {
    echo "usage: $0 ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO NBDAIO-CHECK BS-CONTEXTS BIG-REQUESTS READ-POLICY [NBDAIO.SO]" >&2
    exit 2; }
  CHECK=$(realpath "$4")
  BS_CONTEXTS=$(realpath "$5")
  BIG_REQUESTS=$(realpath "$6")
  READ_POLICY=$(realpath "$7")
  SO=${8:+$(realpath "$8")}
  init "$1" "$2" "$3"
  need_root
  # this run's files inside the root: /tmp/nbdaio-interop.XXX there is
  # $R/tmp/... here
  IN=$(mktemp -d "$R/tmp/nbdaio-interop.XXXXXX")
  J=/tmp/${IN##*/}              # the same directory, seen from inside
  trap 'stop_servers; rm -rf "$T" "$IN"' EXIT
fi

# start_in_root NAME CMD...: a server in the root, in the background
start_in_root () {
  local name=$1; shift
  rm -f "$IN/$name.sock"
  "${IN_ROOT[@]}" "$@" > "$T/$name.log" 2>&1 &
  track $!
  wait_started $! test -S "$IN/$name.sock" || { cat "$T/$name.log" >&2; return 1; }
  URI="nbd+unix:///?socket=$IN/$name.sock"
}

# nbdcopy_back URI PATTERN: libnbd 1.22's nbdcopy reads the export back;
# it must start with PATTERN's bytes
nbdcopy_back () {
  local inner=${1/socket=$IN/socket=$J}
  echo "  + (trixie) nbdcopy $inner | cmp $2"
  rm -f "$IN/copy.bin"
  timeout 60 "${IN_ROOT[@]}" nbdcopy "$inner" "$J/copy.bin"
  same_data "$2" "$IN/copy.bin"
}

# check_clean URI [--write]: nbdaio-check finds no FAIL
check_clean () {
  echo "  + nbdaio-check $*"
  timeout 300 "$CHECK" --timeout 10 "$@" > "$T/check.txt" ||
    { grep -E '^(FAIL|WARN)' "$T/check.txt" >&2; return 1; }
  grep -E '^(WARN|summary)' "$T/check.txt"
}

# fio_verify URI BS SIZE: a verified write job through nbdaio.so
fio_verify () {
  [ -n "$SO" ] || { echo "  (no nbdaio.so: fio part left out)"; return 0; }
  echo "  + fio verify bs=$2 size=$3 on $1"
  timeout 300 fio --name=v --ioengine=external:"$SO" --uri="$1" \
    --rw=write --bs="$2" --size="$3" --iodepth=4 --verify=crc32c --verify_state_save=0 \
    --do_verify=1 --output-format=json --output="$T/fio.json" ||
    { cat "$T/fio.json" >&2; return 1; }
  python3 - "$T/fio.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
assert j["error"] == 0, j["error"]
assert j["read"]["io_bytes"] == j["write"]["io_bytes"] > 0, (j["read"]["io_bytes"], j["write"]["io_bytes"])
PY
}

# fio through read errors on nbd-server's export $IN/rw.img (URI $1): the
# file shrinks to 32 MiB under the running job, and nbd-server (which
# sized the export at connect) fails each read past 32 MiB with an error
# chunk whose message length is in the wrong byte order (chunk-error-length,
# the stream in sync).  By default each such read fails alone: every read
# below 32 MiB succeeds (with reply_violations=close the first error ends
# the connection and the reads after it fail with ENOTCONN)
fio_read_errors () {
  local shrink
  [ -n "$SO" ] || { echo "  (no nbdaio.so: fio part left out)"; return 0; }
  echo "  + fio randread on $1, the export shrinking to 32 MiB under it"
  ( sleep 1.2; truncate -s 32M "$IN/rw.img" ) &
  shrink=$!
  timeout 120 fio --name=e --ioengine=external:"$SO" --uri="$1" \
    --rw=randread --bs=1m --size=64m --iodepth=8 --rate_iops=12 \
    --continue_on_error=all --ignore_error=71:71:71 \
    --output-format=json --output="$T/fio-err.json" || true
  wait "$shrink"
  python3 - "$T/fio-err.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
ok, err = j["read"]["io_bytes"] >> 20, j["total_err"]
print("    reads: %d MiB succeeded, %d failed" % (ok, err))
assert err >= 1 and ok >= 32 and ok + err == 64, (ok, err)
PY
}

case_nbdkit () {
  start_in_root kit nbdkit -f --exit-with-parent -U "$J/kit.sock" memory 64M
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" size=67108864 structured_replies=true
  rt --write-pattern "$T/pattern.bin" "$URI"
  nbdcopy_back "$URI" "$T/pattern.bin"
  check_clean --write "$URI"
  fio_verify "$URI" 4k 16m
  fio_verify "$URI" 32m 64m
}

case_qemu_nbd () {
  "${IN_ROOT[@]}" qemu-img create -q -f qcow2 "$J/q.qcow2" 64M
  start_in_root q qemu-nbd -t -k "$J/q.sock" -f qcow2 "$J/q.qcow2"
  # qemu-nbd 10 negotiates extended headers: every request and reply
  # below is 32 bytes, block status comes as BLOCK_STATUS_EXT
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" size=67108864 structured_replies=true \
    extended_headers=true
  grep -Eq '^extended_headers: +(true|yes)' "$T/info.json.txt" || {
    echo "nbdaio-info does not show extended headers:" >&2
    cat "$T/info.json.txt" >&2; return 1; }
  rt --write-pattern "$T/pattern.bin" "$URI"
  nbdcopy_back "$URI" "$T/pattern.bin"
  check_clean --write "$URI"
  fio_verify "$URI" 4k 16m
  fio_verify "$URI" 32m 64m
  # 64 MiB blocks: above qemu's 32 MiB maximum payload, split in the
  # library, each piece an extended request
  fio_verify "$URI" 64m 64m
}

# several meta contexts at once over extended headers: a qcow2 with a
# persistent dirty bitmap made before 1 MiB at 1 MiB was written (so the
# bitmap, the allocation and the allocation depth all mark exactly that
# range), exported by qemu-nbd 10 with -B and -A; one block status request
# through nbdaio_aio_block_status_64 gets one chunk per context
case_qemu_contexts () {
  "${IN_ROOT[@]}" qemu-img create -q -f qcow2 "$J/b.qcow2" 64M
  "${IN_ROOT[@]}" qemu-img bitmap --add "$J/b.qcow2" b0
  "${IN_ROOT[@]}" qemu-io -f qcow2 -c 'write -P 7 1M 1M' "$J/b.qcow2" > /dev/null
  start_in_root b qemu-nbd -t -k "$J/b.sock" -f qcow2 -A -B b0 "$J/b.qcow2"
  echo "  + bs-contexts $URI 4194304 base:allocation qemu:dirty-bitmap:b0 qemu:allocation-depth"
  timeout 60 "$BS_CONTEXTS" "$URI" 4194304 --ext \
    base:allocation qemu:dirty-bitmap:b0 qemu:allocation-depth > "$T/bs.txt"
  cat "$T/bs.txt"
  cat > "$T/bs.want" <<'WANT'
extended_headers 1
base:allocation 0:1048576:3 1048576:1048576:0 2097152:2097152:3
qemu:dirty-bitmap:b0 0:1048576:0 1048576:1048576:1 2097152:2097152:0
qemu:allocation-depth 0:1048576:0 1048576:1048576:1 2097152:2097152:0
WANT
  diff -u "$T/bs.want" "$T/bs.txt"
}

# 64-bit effect lengths and block status filtering over extended headers:
# a 6 GiB qcow2 (sparse) exported by qemu-nbd 10; a trim, a write zeroes
# and a block status of 5 GiB each leave as ONE request (the library's
# issued counts), a cache in pieces of qemu's 32 MiB maximum payload (it
# refuses a larger one with EINVAL); qemu advertises
# NBD_FLAG_BLOCK_STATUS_PAYLOAD, and a block status filtered to
# qemu:allocation-depth gets that context's chunk only
case_qemu_big () {
  "${IN_ROOT[@]}" qemu-img create -q -f qcow2 "$J/big.qcow2" 6G
  start_in_root big qemu-nbd -t -k "$J/big.sock" -f qcow2 -A "$J/big.qcow2"
  echo "  + big-requests $URI $((5 << 30))"
  timeout 120 "$BIG_REQUESTS" "$URI" $((5 << 30)) > "$T/big.txt"
  cat "$T/big.txt"
  cat > "$T/big.want" <<'WANT'
extended_headers 1
block_status_payload 1
trim ok
zero ok
cache ok
bs base:allocation 1 5368709120
bs qemu:allocation-depth 1 5368709120
filter qemu:allocation-depth 1 5368709120
issued trim=1 zero=1 cache=160 block_status=2
WANT
  diff -u "$T/big.want" "$T/big.txt"
}

case_nbd_server () {
  start_nbd_server_rw "$IN" "$J" 64M "${IN_ROOT[@]}"
  info "$URI" "$T/info.json"
  expect_json "$T/info.json" size=67108864 structured_replies=true
  # 3.26 negotiates structured replies but answers a failing or DF read
  # with a simple reply (a MUST NOT): the data path runs with simple
  # replies, and nbdaio-check must name exactly those faults
  rt --request-sr=0 --write-pattern "$T/pattern.bin" "$URI"
  nbdcopy_back "$URI" "$T/pattern.bin"
  fio_verify "$URI" 4k 16m
  echo "  + nbdaio-check --json --write $URI (known faults only)"
  timeout 300 "$CHECK" --json --timeout 10 --write "$URI" > "$T/check.json" || true
  python3 - "$T/check.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
fails = {r["id"]: r["violation"] for r in d["results"] if r["verdict"] == "FAIL"}
known = {"handshake.info-go": None, "cmd.read-df": "simple-reply-read",
         "refuse.past-end-read": "simple-reply-read",
         "refuse.unknown-flag": "simple-reply-read",
         "replies.valid": "simple-reply-read"}
assert fails == known, fails
PY
  # a DF read and a read past the end (simple replies): by default each
  # fails alone and the next read on the handle succeeds; with close the
  # first ends the connection
  echo "  + read-policy $URI command, then close"
  timeout 60 "$READ_POLICY" "$URI" command > "$T/policy.txt"
  timeout 60 "$READ_POLICY" "$URI" close >> "$T/policy.txt"
  cat > "$T/policy.want" <<'WANT'
df-read EPROTO simple-reply-read
read ok -
past-end-read EPROTO simple-reply-read
read ok -
connected 1 command_violations 2 violations 0
df-read EPROTO simple-reply-read
read ENOTCONN -
past-end-read ENOTCONN -
read ENOTCONN -
connected 0 command_violations 0 violations 1
WANT
  diff -u "$T/policy.want" "$T/policy.txt"
  fio_read_errors "$URI"
}

run_case "nbdkit 1.42 (trixie): write, nbdcopy 1.22 reads back, check, fio" case_nbdkit
run_case "qemu-nbd 10 (trixie): write, nbdcopy 1.22 reads back, check, fio" case_qemu_nbd
run_case "qemu-nbd 10 (trixie): base:allocation, a dirty bitmap and allocation depth at once" case_qemu_contexts
run_case "qemu-nbd 10 (trixie): 5 GiB trim/zero/block status as one request, filtered block status" case_qemu_big
run_case "nbd-server 3.26 (trixie): write, nbdcopy 1.22 reads back, fio, its faults named, a failing read fails alone" case_nbd_server
finish
