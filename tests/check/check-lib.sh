# tests/check/check-lib.sh - what the scripts that run nbdaio-check
# against real servers share (test-servers.sh, test-xhdr.sh); sourced
# after tests/lib/servers.sh.  They set CHECK (the nbdaio-check program)
# and URI (the server's) before calling it.
# shellcheck shell=bash

VERDICTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/verdicts.py"

# check_json NAME SECONDS [nbdaio-check args...] -- [verdicts.py args...]:
# nbdaio-check --json --timeout 10 ARGS $URI, killed after SECONDS, its
# report in $T/NAME.json (stderr in $T/NAME.err, shown when the verdicts
# are not the expected ones); verdicts.py asserts them.
check_json () {
  local name=$1 secs=$2 args=() rc; shift 2
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  echo "  + nbdaio-check --json ${args[*]} $URI"
  rc=0
  timeout "$secs" "$CHECK" --json --timeout 10 "${args[@]}" "$URI" \
    > "$T/$name.json" 2> "$T/$name.err" || rc=$?
  python3 "$VERDICTS" "$T/$name.json" "$rc" "$@" || {
    sed 's/^/  | /' "$T/$name.err" | head -20 >&2; return 1; }
}
