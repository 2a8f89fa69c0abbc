#!/usr/bin/env bash
# tests/integration/test-local-input.sh - bad local input to nbdaio-check
# and nbdaio-info, against a real nbdkit: each is refused at once with a
# message saying what is wrong.
#  - numbers that would wrap: strtoull reads "-1" as 2^64 - 1, and an
#    offset near 2^64 rounded up to the block size became 0, so
#    `--write --scratch-offset 18446744073709551615` wrote at offset 0;
#  - profile and PSK files that are not regular files or never end
#    (/dev/zero, a FIFO, a directory), which hung outside every timeout;
#  - a NUL byte in a profile line, which cut the line short unseen.
# usage: test-local-input.sh NBDAIO-INFO NBDAIO-CHECK
source "$(cd "$(dirname "$0")" && pwd)/../lib/servers.sh"
set -e

INFO=$(realpath "$1")
CHECK=$(realpath "$2")
requires nbdkit nbdcopy
test_init

# must_fail STATUS WANT CMD...: CMD ends within 20 s with exit status
# STATUS, and its output (stdout and stderr) has WANT (a fixed string).
must_fail () {
  local want_rc=$1 want=$2 rc=0
  shift 2
  echo "+ $* (must exit $want_rc: $want)"
  timeout 20 "$@" > "$T/out" 2>&1 || rc=$?
  cat "$T/out"
  [ "$rc" -eq "$want_rc" ] || fail "exit status $rc, expected $want_rc"
  grep -qF -- "$want" "$T/out" || fail "the output lacks '$want'"
}

# nbdkit memory 1M on $T/nbd.sock (zeros until something writes)
start_nbdkit nbd memory 1M

# the export still reads as zeros: nothing was written
untouched () {
  timeout 20 nbdcopy "$URI" "$T/disk.img"
  cmp -n 1048576 "$T/disk.img" /dev/zero || fail "the export was written"
}

echo "== nbdaio-check: sizes and offsets that would wrap"
must_fail 2 "--scratch-offset: '18446744073709551615' is too large (at most 9223372036854775807 bytes" \
  "$CHECK" --write --scratch-offset 18446744073709551615 "$URI"
untouched
for v in -1 " -1" "+1" "0x10"; do
  must_fail 2 "--scratch-offset: '$v' is not a size" \
    "$CHECK" --write --scratch-offset "$v" "$URI"
done
for v in 9223372036854775808 8388608T 99999999999999999999; do
  must_fail 2 "--scratch-offset: '$v' is too large" \
    "$CHECK" --write --scratch-offset "$v" "$URI"
done
must_fail 2 "--scratch-size: '-1' is not a size" \
  "$CHECK" --write --scratch-size -1 "$URI"
must_fail 2 "--scratch-size: '17179869184G' is too large" \
  "$CHECK" --write --scratch-size 17179869184G "$URI"
# the largest offset is taken, and is past the end of this export
must_fail 2 "--scratch-offset 9223372036854775807 is not inside the export" \
  "$CHECK" --write --scratch-offset 9223372036854775807 "$URI"
untouched

echo "== profile files: regular files only"
mkfifo "$T/fifo.ini"
for tool in "$INFO" "$CHECK"; do
  rc=1; [ "$tool" = "$CHECK" ] && rc=2
  must_fail $rc "profile file /dev/zero is a character device, not a regular file" \
    "$tool" --profile a --config /dev/zero
  must_fail $rc "profile file $T/fifo.ini is a FIFO (named pipe), not a regular file" \
    "$tool" --profile a --config "$T/fifo.ini"
  must_fail $rc "profile file $T is a directory, not a file" \
    "$tool" --profile a --config "$T"
done
NBDAIO_CONFIG=/dev/zero must_fail 1 \
  "profile file /dev/zero (from \$NBDAIO_CONFIG) is a character device" \
  "$INFO" --profile a
printf '[a]\nsocket = %s\nexport = ab\0cd\n' "$T/nbd.sock" > "$T/nul.ini"
must_fail 1 "$T/nul.ini:3: NUL byte at column 12: a profile file is text" \
  "$INFO" --profile a --config "$T/nul.ini"
# the same file without the NUL byte connects
printf '[a]\nsocket = %s\n' "$T/nbd.sock" > "$T/good.ini"
timeout 20 "$INFO" --profile a --config "$T/good.ini" | grep -q '^size: *1048576$'

echo "== PSK files: regular files only (read before anything is sent)"
psk="nbds+unix://alice@/?socket=$T/nbd.sock&tls-psk-file"
must_fail 1 "TLS PSK file /dev/zero is a character device, not a regular file" \
  "$INFO" "$psk=/dev/zero"
must_fail 1 "TLS PSK file $T is a directory, not a file" "$INFO" "$psk=$T"
must_fail 1 "TLS PSK file /dev/zero is a character device" \
  "$CHECK" "$psk=/dev/zero"

echo "test-local-input.sh: all passed"
