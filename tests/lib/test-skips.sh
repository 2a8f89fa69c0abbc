#!/usr/bin/env bash
# tests/lib/test-skips.sh - the harness counts a skip only where a case
# asked for one (skip, requires): a case whose program happens to exit 77
# fails, a script whose every case skipped exits 77, and a skip beside a
# pass exits 0 with the skip counted.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/nbdaio-skips.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# child BODY: a script of the harness with the cases of BODY; prints its
# exit status, then its output
child () {
  printf 'source %q\ntest_init\n%s\nfinish\n' "$here/servers.sh" "$1" \
    > "$tmp/child.sh"
  bash "$tmp/child.sh" > "$tmp/out" 2>&1
  echo "$?"
}
bad=0
expect () {  # WHAT WANT-STATUS WANT-SUMMARY BODY
  local rc
  rc=$(child "$4")
  if [ "$rc" != "$2" ] || ! grep -q "$3" "$tmp/out"; then
    echo "FAIL: $1: exit $rc (want $2), summary:" >&2
    cat "$tmp/out" >&2
    bad=1
  else
    echo "ok: $1"
  fi
}

expect "a program's exit 77 is a failure" 1 "0 passed, 1 failed, 0 skipped" \
  'c () { bash -c "exit 77"; }; run_case "program exits 77" c'
expect "requires in a case skips it" 77 "0 passed, 0 failed, 1 skipped" \
  'c () { requires no-such-program-nbdaio; }; run_case "needs a program" c'
expect "skip beside a pass" 0 "1 passed, 0 failed, 1 skipped" \
  'a () { :; }; b () { skip "not here"; }; run_case "a" a; run_case "b" b'
exit $bad
