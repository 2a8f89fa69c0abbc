#!/usr/bin/env bash
# tests/check/test-hostile.sh - nbdaio-check (--write, short --timeout)
# against every mode of hostile-server.py, one case per mode, each with a
# fresh server (tests/lib/servers.sh's start_hostile).  A mode whose
# EXPECT is a rule tag must make nbdaio-check exit 1 with a FAIL naming
# that tag (JSON "violation"); eof and timeout modes must earn a FAIL
# saying the connection was lost or the server did not answer; ok, errno:*
# and shutdown modes must earn exactly the FAILs listed in EARNED below
# (errno:NAME: one of them naming NAME).
# usage: test-hostile.sh SERVER.py NBDAIO-CHECK
#        test-hostile.sh --list SERVER.py   (the cases: the modes)
source "$(dirname "$0")/../lib/servers.sh"
[ "$LIST_CASES" = 1 ] && shift
[ $# -ge 1 ] || { echo "usage: $0 SERVER.py NBDAIO-CHECK" >&2; exit 2; }
hostile_init "$1"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 2 ] || { echo "usage: $0 SERVER.py NBDAIO-CHECK" >&2; exit 2; }
  CHECK=$(realpath "$2")
  test_init
fi
VERDICTS="$(cd "$(dirname "$0")" && pwd)/verdicts.py"

# FAILs the non-violation modes truly earn (mode=comma list of probe ids),
# each with its reason; a mode not listed must earn no FAIL at all.  The
# server answers everything else correctly (and misbehaves once per run,
# on the first valid request of its kind after three good ones), so any
# other FAIL, or a missing one, fails the test.
declare -A EARNED=(
  # not fixed newstyle: the spec's baseline asks for it
  [oldstyle]=handshake.fixed-newstyle
  [newstyle-unfixed]=handshake.fixed-newstyle
  # NBD_OPT_INFO (like GO) is answered NBD_REP_ERR_UNSUP
  [export-name-fallback]=handshake.info-go
  # the scripted error lands on the first read after three good requests
  [error-type-unknown]=cmd.read-df
  [error-midway]=cmd.read-df
  [error-value-unknown]=cmd.read-df
  # the scripted error lands on the first write after three good requests
  [error-value-unknown-simple]=cmd.write
  # ESHUTDOWN to that read: the client disconnects, the probe cannot finish
  [eshutdown]=cmd.read-df
  # NBD_OPT_INFO refused (with escape sequences); the read error as above
  [escape-text]=handshake.info-go,cmd.read-df
  # a violation the library fails one read for (reply-violations=command);
  # nbdaio-check, with close, must FAIL naming it (errno:EPROTO below)
  [simple-reply-read-in-sync]=cmd.read-df,replies.valid
  [simple-reply-read-error]=cmd.read-df,replies.valid
  [chunk-error-msglen-le]=cmd.read-df,replies.valid
  # extension rules no library check polices (tests/check/test-xhdr.sh)
  [ext-payload-flag-compact]=xhdr.payload-flag-compact
  [ext-reqd-base-list]=xhdr.ext-header-reqd
)

# The per-command --timeout: short where the mode stalls on purpose (the
# run then costs about one timeout), generous elsewhere, where it only
# matters on a loaded machine (the suite runs beside valgrind tests);
# modes that trickle every byte get the most.
declare -A SLOW=( [byte-at-a-time]=30 )
mode_timeout () {          # mode_timeout NAME EXPECT
  if [ -n "${SLOW[$1]:-}" ]; then echo "${SLOW[$1]}"
  elif [ "$2" = timeout ]; then echo 0.3
  else echo 5
  fi
}

# check_mode NAME EXPECT: nbdaio-check against a fresh server of mode
# NAME, its report judged by verdicts.py
check_mode () {
  local name=$1 expect=$2 rc=0 out args
  start_hostile "$name"
  timeout 120 "$CHECK" --write --json \
    --timeout "$(mode_timeout "$name" "$expect")" \
    "nbd+unix:///?socket=$T/sock" > "$T/out.json" 2> "$T/err" || rc=$?
  stop_hostile
  case $expect in
    errno:EPROTO)
      args=(--fail "${EARNED[$name]:-}" --detail-any-fail \
            "protocol violation \\[") ;;
    errno:*)
      args=(--fail "${EARNED[$name]:-}" --detail-any-fail "${expect#errno:}") ;;
    ok|shutdown)
      args=(--fail "${EARNED[$name]:-}") ;;
    eof)
      args=(--any-fail --detail-any-fail \
            "closed the connection|reset by peer|connection lost|cannot connect") ;;
    timeout)
      args=(--any-fail --detail-any-fail \
            "did not reply|no reply within|timed out") ;;
    *)
      args=(--any-fail --violation "$expect") ;;
  esac
  [ "$rc" -ne 124 ] || fail "nbdaio-check hung"
  out=$("$PYTHON" "$VERDICTS" "$T/out.json" "$rc" "${args[@]}" 2>&1) ||
    fail "$(head -30 <<< "$out")"
  if [ "$expect" != ok ] && [ "${expect%%:*}" != errno ] &&
     [ "$expect" != shutdown ] && [ "$rc" -ne 1 ]; then
    fail "exit status $rc, expected 1"
  fi
}

MODES=$(hostile_modes) || exit 1
mapfile -t rows <<< "$MODES"
for row in "${rows[@]}"; do
  read -r name expect _ <<< "$row"
  run_case_as "$name" "$name ($expect)" check_mode "$name" "$expect"
done
finish
