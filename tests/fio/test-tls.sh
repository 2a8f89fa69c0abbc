#!/bin/bash
# tests/fio/test-tls.sh - nbdaio.so over TLS: fio verify=crc32c jobs
# through x509 (nbdkit, with a client certificate, conns=2 and numjobs=2)
# and PSK (qemu-nbd), given by URI and by the tls* options, and the TLS
# refusals a job must end with (its message, non-zero exit, no I/O); the
# same through a connection profile (nbd_profile=, config=,
# $NBDAIO_CONFIG), and a broken profiles file.
#
# usage: test-tls.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

C=${T:-}/creds
[ "$LIST_CASES" = 1 ] || bash "$SRC_ROOT/tests/tls/make-creds.sh" "$C"

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
  start_qemu_nbd q 64M \
    --object "tls-creds-psk,id=tls0,dir=$C/psk,endpoint=server" \
    --tls-creds tls0
  verify_job psk --tls=require --tls_psk_file="$C/psk/keys.psk" \
    --tls_username=alice
}

profiles () {
  start_nbdkit p --filter=log --tls=require --tls-certificates="$C/pki" \
    memory 64M logfile="$T/p.log"
  cat > "$T/profiles.ini" <<EOF
# fio over TLS by profile
[tls-x509]
socket = $T/p.sock
tls = require
tls-certificates = $C/client
conns = 2
timeout = 20s

[other]
socket = $T/p.sock
EOF
  run_fio prof-config --name=prof-config --ioengine="external:$SO" \
    --nbd_profile=tls-x509 --config="$T/profiles.ini" --rw=randwrite \
    --bs=4k --iodepth=16 --size=16m --verify=crc32c --do_verify=1
  expect_ok prof-config
  fio_json prof-config "assert job_total('read') == 16 << 20, \
'verified %d bytes' % job_total('read')"
  # the profile's conns=2 was in effect: setup's group (which checks that
  # every connection sees one export) + the job's, 2 each, all TLS
  [ "$(count_log "$T/p.log" 'Connect .*tls=1')" -eq 4 ] ||
    fail "expected 4 TLS connections: $(grep -c Connect "$T/p.log")"
  NBDAIO_CONFIG=$T/profiles.ini run_fio prof-env --name=prof-env \
    --ioengine="external:$SO" --nbd_profile=tls-x509 --rw=randread \
    --bs=4k --size=4m
  expect_ok prof-env
  # the example job file, as its usage comment says (smaller)
  sed 's/^size=.*/size=8m/' "$SRC_ROOT/examples/jobs/tls-verify.fio" \
    > "$T/tls-verify.fio"
  NBDAIO_SO=$SO NBD_PROFILE=tls-x509 NBDAIO_CONFIG=$T/profiles.ini \
    run_fio job-tls-verify "$T/tls-verify.fio"
  expect_ok job-tls-verify
  fio_json job-tls-verify "assert job_total('read') == 8 << 20"
  # a job option wins over the profile
  run_fio prof-override --name=prof-override --ioengine="external:$SO" \
    --nbd_profile=tls-x509 --config="$T/profiles.ini" --tls=off \
    --rw=read --size=1m
  expect_refusal prof-override "requires TLS"
  run_fio prof-missing --name=prof-missing --ioengine="external:$SO" \
    --nbd_profile=nope --config="$T/profiles.ini" --rw=read --size=1m
  expect_refusal prof-missing "no profile \[nope\]"
  # the whole file is checked: a typo in another profile is an error
  echo "tls = requir" >> "$T/profiles.ini"
  run_fio prof-bad --name=prof-bad --ioengine="external:$SO" \
    --nbd_profile=tls-x509 --config="$T/profiles.ini" --rw=read --size=1m
  expect_refusal prof-bad "profiles.ini:11: tls: bad value 'requir'"
  run_fio prof-noname --name=prof-noname --ioengine="external:$SO" \
    --config="$T/profiles.ini" --rw=read --size=1m
  expect_refusal prof-noname "config=.* is set but nbd_profile is not"
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

run_case "x509 verify job against nbdkit (URI and options)" x509_nbdkit
run_case "PSK verify job against qemu-nbd" psk_qemu
run_case "verify job over TLS by profile" profiles
run_case "TLS refusals" refusals
finish
