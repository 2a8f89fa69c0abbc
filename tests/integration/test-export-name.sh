#!/usr/bin/env bash
# tests/integration/test-export-name.sh - an export named explicitly (a
# profile's export key, nbdaio-check --export) is the one the client asks
# for when the URI names none, and a URI naming another export is refused
# with a message naming both.  The captive nbdkit serves only "backup-disk"
# (exportname filter, strict), so asking for the default export '' fails: a
# client that silently took the URI's empty export cannot pass.
# usage: test-export-name.sh NBDAIO-INFO NBDAIO-CHECK
set -euo pipefail

if [ "${1:-}" != --cases ]; then
  INFO=$(realpath "$1") CHECK=$(realpath "$2")
  T=$(mktemp -d)
  trap 'rm -rf "$T"' EXIT
  export INFO CHECK T
  nbdkit -U - --filter=exportname memory 16M exportname=backup-disk \
      exportname-strict=true --run "bash '$0' --cases \"\$unixsocket\""
  exit
fi

plain="nbd+unix:///?socket=$2"
other="nbd+unix:///other-disk?socket=$2"
fail () { echo "FAILED: $*" >&2; exit 1; }

# must_fail WANT CMD...: CMD fails and says WANT (a fixed string; nbdaio-check
# reports on stdout, as the FAIL of session.connect)
must_fail () {
  local want=$1; shift
  echo "+ $* (must fail: $want)"
  if "$@" > "$T/out" 2> "$T/err"; then fail "$* succeeded"; fi
  cat "$T/out" "$T/err" | grep -qF -- "$want" ||
    { cat "$T/out" "$T/err" >&2; fail "no '$want'"; }
}

# json_has FILE PYTHON-EXPR: the expression holds of the JSON in FILE (d)
json_has () {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert eval(sys.argv[2]), sys.argv[2]' "$1" "$2"
}

echo "== control: this server refuses the default export"
must_fail "refused NBD_OPT_GO for export ''" "$INFO" "$plain"

echo "== profile: a uri without an export takes the export key"
cat > "$T/p.ini" <<INI
[backup]
uri = $plain
export = backup-disk
[clash]
uri = $other
export = backup-disk
INI
"$INFO" --json --profile backup --config "$T/p.ini" > "$T/info.json"
json_has "$T/info.json" 'd["export_name"] == "backup-disk"'
must_fail "the URI names export 'other-disk' but export 'backup-disk' was set explicitly" \
  "$INFO" --profile clash --config "$T/p.ini"

echo "== nbdaio-check --write --export NAME URI"
if ! "$CHECK" --json --write --timeout 10 --export backup-disk "$plain" \
     > "$T/check.json"; then
  grep -o '"id": *"[^"]*", *"verdict": *"FAIL"' "$T/check.json" >&2 || true
  fail "nbdaio-check --export backup-disk found failures"
fi
json_has "$T/check.json" \
  '[r["verdict"] for r in d["results"] if r["id"] == "session.connect"] == ["PASS"]'
json_has "$T/check.json" \
  'any(r["id"].startswith("data.") and r["verdict"] == "PASS" for r in d["results"])'
must_fail "the URI names export 'other-disk' but export 'backup-disk'" \
  "$CHECK" --timeout 10 --export backup-disk "$other"
echo "export-name: all cases passed"
