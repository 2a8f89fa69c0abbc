#!/usr/bin/env bash
# tests/integration/test-profiles.sh - connection profiles against nbdkit,
# through nbdaio-info --profile: unix socket, TCP and URI profiles added to
# a copy of examples/profiles.ini (so the sample file is checked whole as
# well), the lookup through $NBDAIO_CONFIG and $HOME, profile settings that
# reach the connection (export name, structured replies, PSK and x509 TLS
# against a server that requires it), and bad files reported as FILE:LINE.
# usage: test-profiles.sh ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
source "$(dirname "$0")/lib.sh"
init "$@"

HERE=$(cd "$(dirname "$0")" && pwd)
SAMPLE=$HERE/../../examples/profiles.ini
M=67108864      # 64 MiB exports

# config FILE: examples/profiles.ini followed by the profiles on stdin.
config () {
  { cat "$SAMPLE"; echo; cat; } > "$1"
}

# pinfo OUT ARGS...: nbdaio-info --json ARGS into OUT (valid JSON).
pinfo () {
  local out=$1; shift
  echo "  + nbdaio-info --json $*"
  timeout 60 "$INFO" --json "$@" > "$out"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out"
}

# refused WANT ARGS...: nbdaio-info ARGS fails, and its message has WANT
# (a fixed string).
refused () {
  local want=$1; shift
  echo "  + nbdaio-info $* (must fail: $want)"
  if timeout 60 "$INFO" "$@" > /dev/null 2> "$T/err"; then
    echo "nbdaio-info $* succeeded" >&2; return 1
  fi
  cat "$T/err"
  grep -qF -- "$want" "$T/err" ||
    { echo "message lacks '$want'" >&2; return 1; }
}

case_unix () {
  start_nbdkit mem memory $M
  config "$T/p.ini" <<EOF
[test]
socket = $T/mem.sock
timeout = 10s
EOF
  pinfo "$T/info.json" --profile test --config "$T/p.ini"
  expect_json "$T/info.json" size=$M profile='"test"' \
    profile_file="\"$T/p.ini\"" structured_replies=true can_write=true
  # the human form too
  timeout 60 "$INFO" --profile test --config "$T/p.ini" | grep -Eq "^size: +$M\$"
}

case_tcp_and_uri () {
  start_nbdkit_tcp tcp memory $M
  local port=${URI##*:}; port=${port%/}
  config "$T/p.ini" <<EOF
[tcp]
host = localhost
port = $port
structured = no
[by-uri]
uri = nbd://127.0.0.1:$port/
EOF
  pinfo "$T/tcp.json" --profile tcp --config "$T/p.ini"
  expect_json "$T/tcp.json" size=$M structured_replies=false
  pinfo "$T/uri.json" --profile by-uri --config "$T/p.ini"
  expect_json "$T/uri.json" size=$M structured_replies=true
}

case_lookup () {
  start_nbdkit mem memory $M
  mkdir -p "$T/home/.config/nbdaio"
  config "$T/home/.config/nbdaio/profiles.ini" <<EOF
[mine]
socket = $T/mem.sock
EOF
  printf '[env]\nsocket = %s\n' "$T/mem.sock" > "$T/env.ini"
  # $HOME/.config when nothing else is set
  HOME=$T/home NBDAIO_CONFIG= XDG_CONFIG_HOME= \
    pinfo "$T/home.json" --profile mine
  expect_json "$T/home.json" size=$M \
    profile_file="\"$T/home/.config/nbdaio/profiles.ini\""
  # $NBDAIO_CONFIG comes first, and is used alone
  HOME=$T/home NBDAIO_CONFIG=$T/env.ini pinfo "$T/env.json" --profile env
  expect_json "$T/env.json" profile_file="\"$T/env.ini\""
  HOME=$T/home NBDAIO_CONFIG=$T/env.ini \
    refused "$T/env.ini: no profile [mine] (profiles in it: env)" \
    --profile mine
  # --config comes before $NBDAIO_CONFIG
  HOME=$T/home NBDAIO_CONFIG=$T/env.ini \
    pinfo "$T/cfg.json" --profile mine \
    --config "$T/home/.config/nbdaio/profiles.ini"
  HOME=$T/home NBDAIO_CONFIG=$T/missing.ini \
    refused "profile file $T/missing.ini (from \$NBDAIO_CONFIG) does not exist" \
    --profile mine
}

# The export and TLS settings of a profile reach the server: nbdkit
# requires TLS and serves one named export.
case_tls () {
  local C=$T/creds
  bash "$HERE/../tls/make-creds.sh" "$C"
  start_nbdkit psk --tls=require --tls-psk="$C/psk/keys.psk" \
    --filter=exportname memory $M exportname-strict=true exportname=vol1
  start_nbdkit x509 --tls=require --tls-certificates="$C/pki" memory 1M
  local psk="tls = require
tls-psk-file = $C/psk/keys.psk
tls-username = alice"
  config "$T/p.ini" <<EOF
[t-psk]
socket = $T/psk.sock
export = vol1
$psk
[plain]
socket = $T/psk.sock
export = vol1
[wrong-export]
socket = $T/psk.sock
export = vol2
$psk
[t-x509]
uri = nbds+unix:///?socket=$T/x509.sock
tls-certificates = $C/client
EOF
  pinfo "$T/psk.json" --profile t-psk --config "$T/p.ini"
  expect_json "$T/psk.json" tls=true size=$M export_name='"vol1"'
  refused "$T/p.ini: [plain]: " --profile plain --config "$T/p.ini"
  grep -q TLS "$T/err"
  refused "$T/p.ini: [wrong-export]: " --profile wrong-export \
    --config "$T/p.ini"
  grep -q vol2 "$T/err"
  pinfo "$T/x509.json" --profile t-x509 --config "$T/p.ini"
  expect_json "$T/x509.json" tls=true size=1048576
}

case_bad_files () {
  printf '[a]\nsocket = /s\nretries = 3\n' > "$T/bad.ini"
  refused "$T/bad.ini:3: unknown key 'retries' in [a]" \
    --profile a --config "$T/bad.ini"
  printf '[a]\nsocket = /s\n[b]\ntls = sometimes\nsocket = /t\n' > "$T/bad.ini"
  refused "$T/bad.ini:4: tls: bad value 'sometimes'" \
    --profile a --config "$T/bad.ini"
  printf '[a]\nuri = nbd://h/\nhost = h\n' > "$T/bad.ini"
  refused "$T/bad.ini:3: [a]: 'host' cannot be combined with 'uri' (line 2)" \
    --profile a --config "$T/bad.ini"
  refused "profile file $T/none.ini does not exist" \
    --profile a --config "$T/none.ini"
  refused "give either a URI or --profile" --profile a nbd://localhost/
  refused "--config goes with --profile" --config "$T/bad.ini" nbd://h/
}

run_case "unix socket profile" case_unix
run_case "TCP and URI profiles" case_tcp_and_uri
run_case "profile file lookup" case_lookup
run_case "TLS and export from a profile" case_tls
run_case "bad profile files" case_bad_files
finish
