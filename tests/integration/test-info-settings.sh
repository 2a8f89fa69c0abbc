#!/usr/bin/env bash
# tests/integration/test-info-settings.sh - library settings given to
# nbdaio-info on its command line (--NAME VALUE, --NAME=VALUE; the parsing
# nbdaio-check shares, tools/cli-common.h), against a real nbdkit: x509
# and PSK credentials reach the TLS handshake, a setting overrides a
# profile's, and an unknown setting or a bad value is a usage error (exit
# 2) naming it.  One case per behaviour (`--list` names them).
# usage: test-info-settings.sh NBDAIO-INFO
source "$(cd "$(dirname "$0")" && pwd)/../lib/servers.sh"

if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 1 ] || { echo "usage: $0 NBDAIO-INFO" >&2; exit 2; }
  INFO=$(realpath "$1")
fi
requires nbdkit python3
test_init

M=16777216

# creds: the TLS test credentials in $T/creds (make-creds.sh, from
# $NBDAIO_CREDS_CACHE when set).
creds () {
  C=$T/creds
  bash "$(dirname "$0")/../tls/make-creds.sh" "$C"
}

# info_json OUT ARGS...: nbdaio-info --json ARGS into OUT (valid JSON).
info_json () {
  local out=$1; shift
  echo "  + nbdaio-info --json $*"
  timeout 60 "$INFO" --json "$@" > "$out"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out"
}

# json_is FILE KEY VALUE: FILE's KEY is VALUE (as JSON text).
json_is () {
  python3 - "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
key, want = sys.argv[2], json.loads(sys.argv[3])
if d.get(key) != want:
    sys.exit(f"{key} = {d.get(key)!r}, expected {want!r}")
EOF
}

# usage_error WANT ARGS...: nbdaio-info ARGS exits 2 at once, without
# connecting, and its stderr has WANT (a fixed string).
usage_error () {
  local want=$1 rc=0; shift
  echo "  + nbdaio-info $* (must exit 2: $want)"
  timeout 20 "$INFO" "$@" > "$T/out" 2> "$T/err" || rc=$?
  cat "$T/err"
  [ "$rc" -eq 2 ] || fail "exit status $rc, expected 2"
  [ ! -s "$T/out" ] || fail "printed something on stdout"
  grep -qF -- "$want" "$T/err" || fail "the message lacks '$want'"
}

# x509: --tls-certificates DIR, with nothing about TLS in the URI but
# nbds (an x509 server: without the client's directory the handshake fails).
case_tls_certificates () {
  creds
  start_nbdkit x509 --tls=require --tls-certificates="$C/pki" \
    --tls-verify-peer memory $M
  info_json "$T/i.json" --tls-certificates "$C/client" \
    "nbds+unix:///?socket=$T/x509.sock"
  json_is "$T/i.json" tls true
  json_is "$T/i.json" size $M
  timeout 60 "$INFO" --tls-certificates "$C/client" \
    "nbds+unix:///?socket=$T/x509.sock" | grep -Eq '^tls: +yes$'
}

# PSK: --tls-username and --tls-psk-file=FILE (the = form) on a plain
# nbd+unix URI, TLS asked with --tls require.
case_tls_psk () {
  creds
  start_nbdkit psk --tls=require --tls-psk="$C/psk/keys.psk" memory $M
  info_json "$T/i.json" --tls require --tls-username alice \
    --tls-psk-file="$C/psk/keys.psk" "nbd+unix:///?socket=$T/psk.sock"
  json_is "$T/i.json" tls true
}

# A command-line setting applies after the profile's: the profile refuses
# structured replies, --structured yes asks for them again.
case_profile_override () {
  start_nbdkit mem memory $M
  printf '[p]\nsocket = %s\nstructured = no\n' "$T/mem.sock" > "$T/p.ini"
  info_json "$T/plain.json" --profile p --config "$T/p.ini"
  json_is "$T/plain.json" structured_replies false
  info_json "$T/over.json" --profile p --config "$T/p.ini" --structured yes
  json_is "$T/over.json" structured_replies true
}

# An unknown setting: exit 2, the library's message naming it.
case_unknown_setting () {
  start_nbdkit mem memory $M
  usage_error "unknown option '--frobnicate': unknown setting 'frobnicate'" \
    --frobnicate 1 "$URI"
  usage_error "unknown setting 'tls-certificate'" \
    --tls-certificate=/nonexistent "$URI"
}

# A bad value of a known setting: exit 2, the library's message naming the
# setting and the value.
case_bad_value () {
  start_nbdkit mem memory $M
  usage_error "--request-timeout: bad value 'soon'" \
    --request-timeout soon "$URI"
  usage_error "--tls: bad value 'sometimes'" --tls=sometimes "$URI"
}

# --help lists every library setting (nbdaio_setting_name/_help), one a
# line with its values: here two of them.
case_help_lists_settings () {
  "$INFO" --help > "$T/help"
  grep -qE '^    --request-timeout +duration' "$T/help" ||
    fail "--help does not list request-timeout with its values"
  grep -qE '^    --tls-certificates +directory' "$T/help" ||
    fail "--help does not list tls-certificates with its values"
}

run_case "--tls-certificates DIR against x509 nbdkit" case_tls_certificates
run_case "--help lists the settings with their values" case_help_lists_settings
run_case "--tls-username, --tls-psk-file=FILE against PSK nbdkit" case_tls_psk
run_case "--structured overrides a profile's setting" case_profile_override
run_case "unknown setting: exit 2 naming it" case_unknown_setting
run_case "bad value: exit 2 naming the setting" case_bad_value
finish
