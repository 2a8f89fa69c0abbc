#!/usr/bin/env bash
# tests/tls/test-tls.sh - libnbdaio over TLS against real servers, with
# credentials generated here (make-creds.sh): x509 and PSK against nbdkit
# and qemu-nbd, x509 against nbd-server, each with a data round trip checked
# against the backing file; tls=allow both ways; and every refusal, each
# with its own message and without one NBD option sent in plaintext after
# the refusal (nbdkit's debug log is the witness).
# usage: test-tls.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
#        test-tls.sh --list   (the cases)
source "$(dirname "$0")/../integration/lib.sh"
init "$@"

M=16777216
C=${T:-}/creds
if [ "$LIST_CASES" = 0 ]; then
  bash "$(dirname "$0")/make-creds.sh" "$C" || exit 1
  sed 's/^alice:/bob:/' "$C/psk/keys.psk" > "$C/bob.psk"
  chmod 600 "$C/bob.psk"        # key files must be private to be read
fi

# nbdkit_logged NAME ARGS...: start_nbdkit with its debug log (-v) in
# $T/NAME.nbdkit.err; sets SOCK.
nbdkit_logged () { start_nbdkit "$1" -v "${@:2}"; SOCK=$T/$1.sock; }

# refused MESSAGE-REGEX URI [roundtrip args...]: the connection must fail
# with that message.
refused () {
  local want=$1 uri=$2; shift 2
  echo "  + expect refusal /$want/: $uri $*"
  if timeout 60 "$ROUNDTRIP" "$@" "$uri" > "$T/refused.out" 2>&1; then
    echo "connected, but expected a refusal ($want)" >&2; return 1
  fi
  cat "$T/refused.out"
  grep -aEq "$want" "$T/refused.out" || {
    echo "the error does not say /$want/" >&2; return 1; }
}

# no_plaintext_options LOG: the server answered STARTTLS (and perhaps
# ABORT), and no option that carries an export name or asks for an export.
no_plaintext_options () {
  if grep -aE 'NBD_OPT_(GO|INFO|EXPORT_NAME|STRUCTURED_REPLY|SET_META|LIST)' "$1"; then
    echo "$1: the client sent options after a TLS refusal" >&2; return 1
  fi
}

case_nbdkit_x509_unix () {
  truncate -s $M "$T/disk.img"
  nbdkit_logged x --tls=require --tls-certificates="$C/pki" --tls-verify-peer \
    file "$T/disk.img"
  local uri="nbds+unix:///?socket=$SOCK&tls-certificates=$C/client"
  info "$uri" "$T/info.json"
  expect_json "$T/info.json" tls=true size=$M
  rt --expect-tls=1 --write-pattern "$T/written.bin" "$uri"
  same_data "$T/written.bin" "$T/disk.img"
  # the server wants a client certificate: without one it refuses
  refused "require a client certificate" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client-nocert"
}

case_nbdkit_x509_tcp () {
  start_nbdkit_tcp t --tls=require --tls-certificates="$C/pki" memory $M
  local port=${URI##*:}; port=${port%/}
  # the certificate names localhost and 127.0.0.1: both verify
  rt --expect-tls=1 --length=4194304 \
    "nbds://localhost:$port/?tls-certificates=$C/client"
  rt --expect-tls=1 --length=4194304 \
    "nbds://127.0.0.1:$port/?tls-certificates=$C/client-nocert"
  refused 'another host name' \
    "nbds://127.0.0.1:$port/?tls-certificates=$C/client&tls-hostname=disk.example"
}

case_nbdkit_psk () {
  truncate -s $M "$T/disk.img"
  nbdkit_logged p --tls=require --tls-psk="$C/psk/keys.psk" file "$T/disk.img"
  local uri="nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/psk/keys.psk"
  info "$uri" "$T/info.json"
  expect_json "$T/info.json" tls=true
  rt --expect-tls=1 --write-pattern "$T/written.bin" "$uri"
  same_data "$T/written.bin" "$T/disk.img"
  # the user name may also come from the settings
  rt --expect-tls=1 --no-write --set tls-username=alice \
    --compare-file "$T/written.bin" \
    "nbds+unix:///?socket=$SOCK&tls-psk-file=$C/psk/keys.psk"
}

start_qemu_tls () {  # start_qemu_tls OBJECT: qemu-nbd with that tls-creds object
  truncate -s $M "$T/disk.raw"
  serve_qemu_nbd q --object "$1" --tls-creds tls0 -f raw "$T/disk.raw"
  SOCK=$T/q.sock
}

case_qemu_nbd_x509 () {
  start_qemu_tls "tls-creds-x509,id=tls0,dir=$C/pki,endpoint=server"
  rt --expect-tls=1 --write-pattern "$T/written.bin" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client"
  same_data "$T/written.bin" "$T/disk.raw"
  refused 'requires TLS' "nbd+unix:///?socket=$SOCK"
}

case_qemu_nbd_psk () {
  start_qemu_tls "tls-creds-psk,id=tls0,dir=$C/psk,endpoint=server"
  rt --expect-tls=1 --write-pattern "$T/written.bin" \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/psk/keys.psk"
  same_data "$T/written.bin" "$T/disk.raw"
  refused 'pre-shared key|PSK handshake failed' \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/psk-wrong/keys.psk"
}

case_nbd_server_x509 () {
  local port
  truncate -s $M "$T/rw.img"
  start_nbd_server_conf "[rw]
exportname = $T/rw.img
flush = true
fua = true
trim = true" "certfile = $C/pki/server-cert.pem
keyfile = $C/pki/server-key.pem
cacertfile = $C/pki/ca-cert.pem
force_tls = true"
  port=$PORT
  rt --expect-tls=1 --expect-sr=0 --write-pattern "$T/written.bin" \
    "nbds://localhost:$port/rw?tls-certificates=$C/client"
  same_data "$T/written.bin" "$T/rw.img"
  refused 'requires TLS' "nbd://localhost:$port/rw"
}

case_allow () {
  nbdkit_logged plain memory $M
  rt --expect-tls=0 --length=1048576 --set tls=allow \
    --set tls-certificates="$C/client" "nbd+unix:///?socket=$SOCK"
  nbdkit_logged tls --tls=on --tls-certificates="$C/pki" memory $M
  rt --expect-tls=1 --length=1048576 --set tls=allow \
    --set tls-certificates="$C/client" "nbd+unix:///?socket=$SOCK"
  # tls=off (the default for nbd://) stays in plaintext with a TLS-optional
  # server
  rt --expect-tls=0 --length=1048576 "nbd+unix:///?socket=$SOCK"
}

case_refusals () {
  nbdkit_logged plain memory $M
  refused 'does not offer TLS' \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client"
  no_plaintext_options "$T/plain.nbdkit.err"

  nbdkit_logged good --tls=require --tls-certificates="$C/pki" memory $M
  refused 'requires TLS' "nbd+unix:///?socket=$SOCK"
  refused 'is not trusted' \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/other-ca"
  refused "another host name \\(checked for host 'wrong.example'\\)" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client&tls-hostname=wrong.example"
  refused "cannot read TLS CA certificate $C/nonexistent/ca-cert.pem" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/nonexistent"
  # a client key that group or others can read is refused, with the fix
  cp -r "$C/client" "$C/loose-client"
  chmod 640 "$C/loose-client/client-key.pem"
  refused "TLS client key $C/loose-client/client-key.pem can be read by group or others \\(mode 0640\\): .*run chmod 600 $C/loose-client/client-key.pem" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/loose-client"
  # plaintext options were answered with TLS_REQD; after the TLS
  # failures nothing but the handshake happened
  grep -aq 'NBD_REP_ERR_TLS_REQD' "$T/good.nbdkit.err"
  if grep -aE 'NBD_OPT_GO: ' "$T/good.nbdkit.err" | grep -av TLS_REQD; then
    echo "an export was served in a refusal case" >&2; return 1
  fi

  nbdkit_logged expired --tls=require --tls-certificates="$C/expired" memory $M
  refused 'has expired' "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client"
  no_plaintext_options "$T/expired.nbdkit.err"

  nbdkit_logged wronghost --tls=require --tls-certificates="$C/wronghost" \
    memory $M
  refused "another host name \\(checked for host 'localhost'\\)" \
    "nbds+unix:///?socket=$SOCK&tls-certificates=$C/client"
  no_plaintext_options "$T/wronghost.nbdkit.err"

  nbdkit_logged psk --tls=require --tls-psk="$C/psk/keys.psk" memory $M
  refused 'pre-shared key|PSK handshake failed' \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/psk-wrong/keys.psk"
  refused "user 'bob'" \
    "nbds+unix://bob@/?socket=$SOCK&tls-psk-file=$C/bob.psk"
  refused "has no key for user 'carol'" \
    "nbds+unix://carol@/?socket=$SOCK&tls-psk-file=$C/psk/keys.psk"
  refused "cannot read TLS PSK file $C/missing.psk" \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/missing.psk"
  # only a private regular file of at most 64 KiB is read as a PSK file
  cp "$C/psk/keys.psk" "$C/loose.psk"
  chmod 644 "$C/loose.psk"
  refused "TLS PSK file $C/loose.psk can be read by group or others \\(mode 0644\\): .*run chmod 600 $C/loose.psk" \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/loose.psk"
  refused "TLS PSK file $C/psk is a directory, not a file" \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$C/psk"
  refused "TLS PSK file /dev/zero is a character device, not a regular file" \
    "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=/dev/zero"
  no_plaintext_options "$T/psk.nbdkit.err"
}

# tls_scripted MODE: tests/tls/tls-server.py (a TLS 1.3 server on
# OpenSSL, one client) on $T/MODE.sock; its verdict goes to
# $T/MODE.result.
tls_scripted () {
  rm -f "$T/$1.sock" "$T/$1.result"
  background "$T/$1.err" python3 "$(dirname "$0")/tls-server.py" \
    "$1" "$T/$1.sock" "$C/pki" "$T/$1.result"
  started "$T/$1.err" test -S "$T/$1.sock"
  URI="nbds+unix:///?socket=$T/$1.sock&tls-certificates=$C/client"
}

# An OpenSSL server sends TLS 1.3 session tickets after the handshake, in
# front of its first reply: the client must read past them (it used to
# poll for the reply gnutls had already buffered, until the handshake
# timed out), and end the session with close_notify before closing.
case_session_tickets_close_notify () {
  tls_scripted close-notify
  demo "$URI"
  wait_until 10 test -s "$T/close-notify.result"
  grep -qx close_notify "$T/close-notify.result" || {
    echo "server saw: $(cat "$T/close-notify.result")" >&2; return 1; }
}

# A record that does not decrypt during transmission: the error carries
# gnutls' reason, not strerror of the errno the transport chose.
case_bad_record () {
  tls_scripted bad-record
  if demo "$URI" > "$T/demo.out" 2>&1; then
    echo "the demo succeeded against a corrupt TLS record" >&2; return 1
  fi
  cat "$T/demo.out"
  grep -q 'reading from server: Decryption has failed' "$T/demo.out"
}

run_case "nbdkit x509, unix socket, client certificate" case_nbdkit_x509_unix
run_case "nbdkit x509, TCP, host name checks" case_nbdkit_x509_tcp
run_case "nbdkit PSK" case_nbdkit_psk
run_case "qemu-nbd x509" case_qemu_nbd_x509
run_case "qemu-nbd PSK" case_qemu_nbd_psk
run_case "nbd-server x509" case_nbd_server_x509
run_case "tls=allow" case_allow
run_case "refusals" case_refusals
run_case "OpenSSL server: session tickets, close_notify" case_session_tickets_close_notify
run_case "corrupt record in transmission" case_bad_record
finish
