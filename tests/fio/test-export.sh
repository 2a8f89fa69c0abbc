#!/usr/bin/env bash
# tests/fio/test-export.sh - a fio job whose profile names the export runs
# on that export, also when the job's uri names none; a job uri naming
# another export is refused naming both.  The captive nbdkit serves only
# "backup-disk" (exportname filter, strict): a job that silently asked for
# the URI's empty export cannot pass.
# usage: test-export.sh NBDAIO.SO
set -euo pipefail

if [ "${1:-}" != --cases ]; then
  SO=$(realpath "$1")
  T=$(mktemp -d)
  trap 'rm -rf "$T"' EXIT
  export SO T
  nbdkit -U - --filter=exportname memory 16M exportname=backup-disk \
      exportname-strict=true --run "bash '$0' --cases \"\$unixsocket\""
  exit
fi

sock=$2
fail () { echo "FAILED: $*" >&2; exit 1; }
cat > "$T/p.ini" <<INI
[backup]
uri = nbd+unix:///?socket=$sock
export = backup-disk
INI

# job NAME OPTIONS...: a verified write job through nbdaio.so
job () {
  local name=$1; shift
  timeout 120 fio --name="$name" --ioengine=external:"$SO" "$@" \
    --config="$T/p.ini" --rw=write --bs=64k --size=4m --verify=crc32c \
    --do_verify=1 --output-format=json --output="$T/$name.json"
}

echo "== profile with a uri without an export + export key"
job by-profile --nbd_profile=backup || fail "job by profile failed"
echo "== job uri without an export + profile export"
job by-uri --nbd_profile=backup --uri="nbd+unix:///?socket=$sock" ||
  fail "job with an export-less uri failed"
python3 - "$T" <<'PY'
import json, sys
for name in ("by-profile", "by-uri"):
    j = json.load(open(f"{sys.argv[1]}/{name}.json"))["jobs"][0]
    assert j["error"] == 0, (name, j["error"])
    assert j["write"]["io_bytes"] == 4 << 20, (name, j["write"]["io_bytes"])
PY
echo "== job uri naming another export"
if job clash --nbd_profile=backup --uri="nbd+unix:///other-disk?socket=$sock" \
    2> "$T/err"; then
  fail "a job naming two exports ran"
fi
grep -qF "the URI names export 'other-disk' but export 'backup-disk'" "$T/err" ||
  { cat "$T/err" >&2; fail "refusal does not name both exports"; }
echo "fio-export: all cases passed"
