#!/usr/bin/env bash
# tests/test-count-results.sh - run-all's counting: a skipped test counts
# as skipped (not passed), a failure, timeout or unexpected pass as failed.
# usage: test-count-results.sh COUNT-RESULTS.PY
set -euo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in OK OK SKIP FAIL TIMEOUT UNEXPECTEDPASS EXPECTEDFAIL SKIP; do
  printf '{"name": "t-%s", "result": "%s"}\n' "$r" "$r"
done > "$log"
got=$(python3 "$1" "$log" 2> "$log.err")
[ "$got" = "3 3 2" ] || { echo "counted '$got', want '3 3 2'" >&2; exit 1; }
[ "$(grep -c 'skipped: t-SKIP' "$log.err")" = 2 ] ||
  { echo "skipped tests not named" >&2; cat "$log.err" >&2; exit 1; }
rm -f "$log.err"
echo "count-results: ok"
