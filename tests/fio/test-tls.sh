#!/bin/bash
# tests/fio/test-tls.sh - nbdaio.so over TLS: fio verify=crc32c jobs
# through x509 (nbdkit, with a client certificate, conns=2 and numjobs=2)
# and PSK (qemu-nbd), given by URI and by the tls* options, and the TLS
# refusals a job must end with (its message, non-zero exit, no I/O).
#
# usage: test-tls.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

C=$T/creds
bash "$SRC_ROOT/tests/tls/make-creds.sh" "$C"

verify_job () {
  fio_nbd "$1" --rw=randwrite --bs=4k --iodepth=16 --size=16m \
    --verify=crc32c --do_verify=1 "${@:2}"
  expect_ok "$1"
  fio_json "$1" "assert job_total('read') == job_total('write') > 0, \
'verified %d of %d bytes' % (job_total('read'), job_total('write'))"
}

x509_nbdkit () {
  start_nbdkit x --tls=require --tls-certificates="$C/pki" --tls-verify-peer \
    memory 64M
  URI="nbds+unix:///?socket=$T/x.sock&tls-certificates=$C/client"
  verify_job x509-uri --conns=2 --numjobs=2 --offset_increment=16m
  # the same through the tls options on a plain URI
  URI="nbd+unix:///?socket=$T/x.sock"
  verify_job x509-options --tls=require --tls_certificates="$C/client"
}

psk_qemu () {
  truncate -s 64M "$T/q.img"
  timeout 300 qemu-nbd -t -f raw -k "$T/q.sock" \
    --object "tls-creds-psk,id=tls0,dir=$C/psk,endpoint=server" \
    --tls-creds tls0 "$T/q.img" 2> "$T/q.err" &
  track $!
  wait_for 20 test -S "$T/q.sock"
  URI="nbd+unix:///?socket=$T/q.sock"
  verify_job psk --tls=require --tls_psk_file="$C/psk/keys.psk" \
    --tls_username=alice
}

refusals () {
  start_nbdkit good --tls=require --tls-certificates="$C/pki" memory 64M
  fio_nbd plain --rw=read --size=1m
  expect_refusal plain "requires TLS"
  fio_nbd untrusted --rw=read --size=1m --tls=require \
    --tls_certificates="$C/other-ca"
  expect_refusal untrusted "server certificate is not trusted"
  fio_nbd badmode --rw=read --size=1m --tls=maybe
  expect_refusal badmode "tls: bad value 'maybe' \(expected off, allow or require\)"
  fio_nbd wrongpsk --rw=read --size=1m --tls=require \
    --tls_psk_file="$C/nonexistent.psk"
  expect_refusal wrongpsk "cannot read TLS PSK file $C/nonexistent.psk"
  start_nbdkit plain memory 64M
  fio_nbd notls --rw=read --size=1m --tls=require
  expect_refusal notls "does not offer TLS"
}

case_ "x509 verify job against nbdkit (URI and options)" x509_nbdkit
case_ "PSK verify job against qemu-nbd" psk_qemu
case_ "TLS refusals" refusals
fio_test_done
