#!/usr/bin/env bash
# tests/hostile/test-escape.sh - text a server sends never reaches a
# terminal raw.  Serves the escape-text mode of hostile-server.py (terminal
# escape sequences, C1 controls and an invalid byte in the export name and
# description, a LIST entry, the refusal of NBD_OPT_INFO and an error
# chunk's message) and runs, one case each, nbdaio-info (text and --json,
# NBDAIO_DEBUG=1), nbdaio-check (text and --json) and hostile-client
# (NBDAIO_DEBUG=1) against it.  Everything each writes (stdout and stderr)
# must be valid UTF-8 with no control character but newline, must show the
# text escaped as nbdaio_escape_string does, and the JSON must parse.
# usage: test-escape.sh SERVER.py NBDAIO-INFO NBDAIO-CHECK HOSTILE-CLIENT
#        test-escape.sh --list SERVER.py   (the cases)
source "$(dirname "$0")/../lib/servers.sh"
[ "$LIST_CASES" = 1 ] && shift
usage () {
  echo "usage: $0 SERVER.py NBDAIO-INFO NBDAIO-CHECK HOSTILE-CLIENT" >&2
  exit 2
}
[ $# -ge 1 ] || usage
hostile_init "$1"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 4 ] || usage
  INFO=$(realpath "$2")
  CHECK=$(realpath "$3")
  CLIENT=$(realpath "$4")
  test_init
fi

# hostile-server.py's EVIL, escaped
ESCAPED='evil\x1b]0;pwned\x07\x1b[2J\x9b\xc2\x9b\xff\\end'

# verify NAME FILE KIND: FILE is clean UTF-8 and shows ESCAPED (KIND text:
# literally; json: escaped or exact (controls \u-escaped) as a string value,
# or inside one; clean: need not).
verify () {
  "$PYTHON" - "$1" "$2" "$3" "$ESCAPED" <<'EOF'
import json
import sys
import unicodedata

name, path, kind, want = sys.argv[1:]
EVIL = b"evil\x1b]0;pwned\x07\x1b[2J\x9b\xc2\x9b\xff\\end"  # the server's
try:
    text = open(path, "rb").read().decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit(f"{name}: not UTF-8: {e}")
raw = sorted({c for c in text if unicodedata.category(c) == "Cc"} - {"\n"})
if raw:
    sys.exit(f"{name}: raw control characters {raw!r}")
if kind == "json":
    def strings(v):
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            for x in v.values():
                yield from strings(x)
        elif isinstance(v, list):
            for x in v:
                yield from strings(x)
    try:
        # JSON holds server text exactly (controls \u-escaped, bytes that
        # are not UTF-8 as U+FFFD) or, in library messages, escaped
        exact = EVIL.decode("utf-8", "replace")
        found = any(want in s or exact in s for s in strings(json.loads(text)))
    except ValueError as e:
        sys.exit(f"{name}: invalid JSON: {e}")
else:
    found = kind == "clean" or want in text
if not found:
    sys.exit(f"{name}: the escaped server text is not shown")
EOF
}

# escaped NAME RC OUT ERR CMD...: run CMD with the server up; it must exit
# with RC (a sanitizer report changes it); verify its stdout as OUT and
# its stderr as ERR (verify's KIND).
escaped () {
  local name=$1 want=$2 out=$3 err=$4 rc=0
  shift 4
  start_hostile escape-text
  timeout 60 "$@" > "$T/out" 2> "$T/err" || rc=$?
  echo "$name: exit status $rc"
  stop_hostile
  [ "$rc" -eq "$want" ] ||
    fail "$name: exit status $rc, expected $want: $(tail -n 3 "$T/err" |
                                                   cat -v)"
  verify "$name (stdout)" "$T/out" "$out"
  verify "$name (stderr)" "$T/err" "$err"
}

URI="nbd+unix:///?socket=${T:-}/sock"
run_case_as info nbdaio-info \
  escaped nbdaio-info 0 text clean env NBDAIO_DEBUG=1 "${INFO:-}" "$URI"
run_case_as info-json "nbdaio-info --json" \
  escaped "nbdaio-info --json" 0 json clean "${INFO:-}" --json "$URI"
# nbdaio-check: FAILs for the refused NBD_OPT_INFO and the EIO read
run_case_as check nbdaio-check \
  escaped nbdaio-check 1 text clean "${CHECK:-}" --timeout 5 "$URI"
run_case_as check-json "nbdaio-check --json" \
  escaped "nbdaio-check --json" 1 json clean "${CHECK:-}" --json --timeout 5 \
  "$URI"
# the debug line of the error chunk quotes its message
run_case_as client-debug "hostile-client (debug)" \
  escaped "hostile-client (debug)" 0 clean text env NBDAIO_DEBUG=1 \
  "${CLIENT:-}" --cmd read --expect errno:EIO --timeout 5000 "${T:-}/sock"
finish
