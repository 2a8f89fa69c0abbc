#!/bin/bash
# tests/fio/test-reconnect.sh - reconnect_delay (the library's
# reconnect-delay) under fio:
#  - failover: a file-backed qemu-nbd killed with SIGKILL about 1 s into a
#    write + verify=crc32c job and restarted on the same socket 0.5 s later:
#    fio exits 0, every byte written is verified, and the job reports the
#    outage ("N reconnect, N commands resent, N ms down");
#  - the same against a file-backed nbdkit whose writes are delayed (so
#    that commands are in flight at the kill and must be resent), in
#    plaintext and over TLS (PSK);
#  - a server that never comes back: the job fails with ENOTCONN about
#    reconnect_delay after the kill (bounded time), naming reconnect-delay;
#  - a protocol violation never reconnects: hostile-server.py in a
#    violation mode (which misbehaves once per run, so a reconnect would
#    pass) ends the job with the violation, and only one connection per
#    fio process reached it; an EOF mode (also once per run) is survived by
#    a reconnect (the contrast: the accept count goes up).
#
# usage: test-reconnect.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

HOSTILE=$SRC_ROOT/tests/hostile/hostile-server.py

# qemu_file NAME [ARGS...]: start_qemu_nbd on the 64 MiB raw file
# $T/NAME.img (its data kept across restarts); sets QEMU_PID and URI.
qemu_file () { start_qemu_nbd "$1" 64M "${@:2}"; }

# nbdkit_file NAME [ARGS...]: nbdkit's file plugin on $T/NAME.img (made
# once), every write delayed 20 ms (so that writes are in flight whenever
# it is killed), the stale socket of a killed one removed first; sets
# NBDKIT_PID.
nbdkit_file () {
  local name=$1
  shift
  [ -f "$T/$name.img" ] || truncate -s 64M "$T/$name.img"
  start_nbdkit "$name" --filter=delay "$@" file "$T/$name.img" \
    delay-write=20ms
}

# bg_fio OUT JOB-ARGS...: fio_nbd in the background; sets FIO_BG.
# bg_wait OUT: wait for it; sets FIO_RC.
bg_fio () {
  local out=$1
  ( fio_nbd "$@"; echo "$FIO_RC" > "$T/$out.rc" ) &
  FIO_BG=$!
}
bg_wait () {
  wait "$FIO_BG" || true
  FIO_RC=$(cat "$T/$1.rc")
}

# verify_job OUT ARGS...: a write + crc32c verify job in the background,
# slowed down (rate) so that the server can be killed while it writes;
# sets FIO_BG.
verify_job () {
  local out=$1
  shift
  bg_fio "$out" --rw=randwrite --bsrange=4k-64k --iodepth=16 --size=32m \
    --rate=12m --verify=crc32c --do_verify=1 --reconnect_delay=10 "$@"
}

# expect_verified OUT [MIN-RESENT]: fio exited 0, read back all it wrote,
# no verify errors, and printed the outage (with at least MIN-RESENT
# commands resent).
expect_verified () {
  local out=$1 min=${2:-0} line
  expect_ok "$out"
  fio_json "$out" "assert job_total('read') == job_total('write') > 0, \
'verified %d of %d bytes' % (job_total('read'), job_total('write'))"
  ! grep -qi "verify" "$T/$out.err" || fail "verify errors: $(head -3 "$T/$out.err")"
  line=$(grep -hE "nbdaio: $out: [0-9]+ reconnects?, [0-9]+ commands resent, [0-9]+ ms down" \
         "$T/$out.json" "$T/$out.err" | head -1)
  [ -n "$line" ] || fail "no outage line in fio's output"
  echo "  $line"
  [ "$(sed -E 's/.* ([0-9]+) commands resent.*/\1/' <<< "$line")" -ge "$min" ] ||
    fail "fewer than $min commands resent"
}

failover () {
  qemu_file fo
  verify_job failover
  sleep 1
  kill -9 "$QEMU_PID"
  sleep 0.5
  qemu_file fo
  bg_wait failover
  expect_verified failover
}

# nbdkit's file plugin with every write delayed: 16 writes are always in
# flight when it is killed, and must be resent.
failover_inflight () {
  nbdkit_file fi
  verify_job inflight --rate=0
  sleep 1
  kill -9 "$NBDKIT_PID"
  sleep 0.5
  nbdkit_file fi
  bg_wait inflight
  expect_verified inflight 1
}

failover_tls () {
  local C=$T/creds args
  bash "$SRC_ROOT/tests/tls/make-creds.sh" "$C"
  args=(--tls=require --tls-psk="$C/psk/keys.psk")
  nbdkit_file tls "${args[@]}"
  verify_job tls --rate=0 --tls=require --tls_psk_file="$C/psk/keys.psk" \
    --tls_username=alice
  sleep 1
  kill -9 "$NBDKIT_PID"
  sleep 0.5
  nbdkit_file tls "${args[@]}"
  bg_wait tls
  expect_verified tls 1
}

too_late () {
  local start ms
  qemu_file late
  bg_fio late --rw=randread --bs=4k --iodepth=16 --time_based \
    --runtime=20 --reconnect_delay=1.5
  sleep 1
  kill -9 "$QEMU_PID"
  start=$(now_ms)
  bg_wait late
  ms=$(( $(now_ms) - start ))
  echo "  fio ended $ms ms after the kill (reconnect_delay 1.5 s)"
  [ "$ms" -ge 1400 ] || fail "fio ended before reconnect_delay ran out"
  [ "$ms" -lt 5000 ] || fail "fio took $ms ms to end"
  expect_refusal late "reconnect-delay.*(1500 ms|Transport endpoint)|not re-established"
  fio_json late "assert any(j['error'] == 107 for j in jobs), \
'errors %s' % [j['error'] for j in jobs]"
}

# hostile MODE: serve MODE (misbehaving once per run) logging accepts;
# sets URI and HOSTILE_PID.
hostile () {
  : > "$T/accepts"
  rm -f "$T/h.sock"
  HOSTILE_ACCEPT_LOG=$T/accepts python3 "$HOSTILE" --mode "$1" "$T/h.sock" \
    2> "$T/h.err" &
  HOSTILE_PID=$!
  track "$HOSTILE_PID"
  wait_until 20 test -S "$T/h.sock"
  URI="nbd+unix:///?socket=$T/h.sock"
}

# fio connects twice without reconnecting: the setup (size) and the job.
violation () {
  hostile reply-cookie
  fio_nbd violation --rw=randread --bs=4k --size=1m --iodepth=4 \
    --reconnect_delay=10
  expect_refusal violation "reply-cookie"
  [ "$(wc -l < "$T/accepts")" -eq 2 ] || \
    fail "$(wc -l < "$T/accepts") connections: a violation reconnected"
  ! grep -q "reconnect," "$T/violation.json" || fail "a reconnect was reported"
}

eof_survived () {
  hostile trunc-data
  fio_nbd eof --rw=randread --bs=4k --size=1m --iodepth=4 \
    --reconnect_delay=10
  expect_ok eof
  [ "$(wc -l < "$T/accepts")" -eq 3 ] || \
    fail "$(wc -l < "$T/accepts") connections (expected setup, job, reconnect)"
  grep -q "1 reconnect, " "$T/eof.json" || fail "the reconnect was not reported"
}

run_case "failover: qemu-nbd killed and restarted during a verify job" failover
run_case "failover with writes in flight (nbdkit file, delayed writes)" failover_inflight
run_case "failover over TLS (PSK, nbdkit file, delayed writes)" failover_tls
run_case "server back too late: ENOTCONN after reconnect_delay" too_late
run_case "a protocol violation never reconnects" violation
run_case "an EOF mid-reply reconnects" eof_survived
finish
