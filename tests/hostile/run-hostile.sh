#!/usr/bin/env bash
# tests/hostile/run-hostile.sh - runs the modes of hostile-server.py.
#
#   run-hostile.sh client SERVER.py HOSTILE-CLIENT
#     every mode of `SERVER.py --list`, against hostile-client: the client
#     must keep its promises (exit 0: one callback and one free per command,
#     the expected outcome); for a violation the library must report the
#     mode's rule tag (nbdaio_get_violation / _connection_violation, the
#     client's "violation").  Also checks that every rule of the library's
#     table (core/rules.c) has a mode.
#   run-hostile.sh fio SERVER.py NBDAIO.SO
#     fio with the plugin against a subset of modes: the good mode must
#     succeed, the others make fio exit non-zero naming the rule.  An empty
#     NBDAIO.SO (plugin not built) skips (exit 77).
#
# PYTHON names the interpreter (default python3).
set -uo pipefail

[ $# -eq 3 ] || { echo "usage: $0 client|fio SERVER.py PROGRAM" >&2; exit 2; }
what=$1
SERVER=$(realpath "$2")
PROG=$3
SRC_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIO_MODES="good reply-magic reply-cookie chunk-overlap trunc-data hs-flags
           garbage stall"

if [ "$what" = fio ] && [ -z "$PROG" ]; then
  echo "fio plugin not built: skipping"
  exit 77
fi
[ -n "$PROG" ] && PROG=$(realpath "$PROG")

T=$(mktemp -d /tmp/nbdaio-hostile.XXXXXX)
. "$SRC_ROOT/tests/hostile/server-lib.sh"

# message_pattern EXPECT CONTEXT: an extended regex the error message must
# match, empty when the mode must not fail.
message_pattern () {
  case $1 in
    ok|errno:*|shutdown) echo "" ;;
    eof) echo "closed the connection|reset by peer" ;;
    timeout)
      if [ "$2" = fio ]; then echo "cmd_timeout|timed out"
      else echo "no reply within|timed out"; fi ;;
    *) if [ "$2" = fio ]; then echo "\[$1\]"   # the tag in the message
       else echo "\"violation\":\"$1\""; fi ;;   # the tag the API gives
  esac
}

FAILED=()
PASSED=0

# report NAME EXPECT T0 WHY: the verdict on one run, WHY empty if it went
# as expected.
report () {
  local name=$1 expect=$2 ms=$(( ($(date +%s%N) - $3) / 1000000 )) why=$4
  if [ -z "$why" ]; then
    PASSED=$((PASSED + 1))
    printf 'ok   %-30s %-20s %5d ms\n' "$name" "$expect" "$ms"
    return 0
  fi
  echo "FAIL $name: $why" >&2
  FAILED+=("$name")
  return 1
}

# client_verdict EXPECT RC: why the client run in $T/out, $T/err went
# wrong (nothing if it did not).
client_verdict () {
  local line pat
  line=$(tail -n 1 "$T/out")
  pat=$(message_pattern "$1" client)
  if [ "$2" -ne 0 ]; then
    echo "hostile-client exited with $2"
  elif grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/err"; then
    echo "sanitizer report"
  elif ! [[ $line =~ \"issued\":([0-9]+),\"callbacks\":([0-9]+) ]] ||
       [ "${BASH_REMATCH[1]}" != "${BASH_REMATCH[2]}" ]; then
    echo "callbacks != commands issued"
  elif ! [[ $line =~ \"frees\":([0-9]+),\"frees_expected\":([0-9]+) ]] ||
       [ "${BASH_REMATCH[1]}" != "${BASH_REMATCH[2]}" ]; then
    echo "frees != free functions passed"
  elif [ -n "$pat" ] && ! grep -qE "$pat" <<< "$line"; then
    echo "the error does not match /$pat/"
  fi
}

# fio_verdict EXPECT RC: the same for a fio run (output in $T/out).
fio_verdict () {
  local pat
  pat=$(message_pattern "$1" fio)
  if [ "$2" -eq 124 ]; then
    echo "fio hung"
  elif [ "$1" = ok ] && [ "$2" -ne 0 ]; then
    echo "fio failed (status $2) against a correct server"
  elif [ "$1" != ok ] && [ "$2" -eq 0 ]; then
    echo "fio succeeded"
  elif [ -n "$pat" ] && ! grep -qE "$pat" "$T/out"; then
    echo "fio's output does not match /$pat/"
  fi
}

# run_mode client|fio NAME EXPECT COMMANDS
run_mode () {
  local how=$1 name=$2 expect=$3 cmds=$4 kind=$3 tmo=5000 rc t0 why
  local fio_tmo=()
  case $expect in
    ok|eof|timeout|shutdown|errno:*) ;;
    *) kind=violation ;;
  esac
  if [ "$expect" = timeout ]; then
    tmo=1000
    fio_tmo=(--cmd_timeout=1000)
  fi
  t0=$(date +%s%N)
  if ! start_server "$name"; then
    report "$name" "$expect" "$t0" "no server"
    return
  fi
  if [ "$how" = client ]; then
    timeout 30 "$PROG" --cmd "$cmds" --expect "$kind" --timeout "$tmo" \
      "$T/sock" > "$T/out" 2> "$T/err"
  else
    timeout 60 fio --name=hostile --ioengine="external:$PROG" \
      --uri="nbd+unix:///?socket=$T/sock" "${fio_tmo[@]}" --rw=randread \
      --bs=4k --size=1m --iodepth=8 --number_ios=256 > "$T/out" 2>&1
  fi
  rc=$?
  stop_server
  if [ -s "$T/server.err" ]; then
    why="hostile-server.py failed: $(tail -n 1 "$T/server.err")"
  else
    why=$("${how}_verdict" "$expect" "$rc")
  fi
  report "$name" "$expect" "$t0" "$why" ||
    sed 's/^/  | /' "$T/out" "$T/err" "$T/server.err" 2>/dev/null |
      head -30 >&2
}

"$PYTHON" "$SERVER" --list > "$T/modes" || exit 1
start=$(date +%s%N)
case $what in
  client)
    while read -r name expect cmds _; do
      run_mode client "$name" "$expect" "$cmds"
    done < "$T/modes"
    # every rule the library reports needs a mode that provokes it
    tags=$(grep -oE '^ *\[RULE_[A-Z0-9_]+\] = \{ "[a-z0-9-]+"' \
             "$SRC_ROOT/core/rules.c" | sed -E 's/.*"(.*)"/\1/')
    [ "$(wc -w <<< "$tags")" -eq "$(grep -c '^ *\[RULE_' \
                                     "$SRC_ROOT/core/rules.c")" ] ||
      report coverage rules 0 "cannot read the tags of core/rules.c"
    for tag in $tags; do
      awk -v t="$tag" '$2 == t { found = 1 } END { exit !found }' \
        "$T/modes" || report coverage "[$tag]" 0 "no mode provokes [$tag]"
    done
    ;;
  fio)
    if ! command -v fio > /dev/null; then
      echo "fio is not installed: skipping"
      exit 77
    fi
    for name in $FIO_MODES; do
      expect=$(awk -v n="$name" '$1 == n { print $2 }' "$T/modes")
      run_mode fio "$name" "${expect:-no-such-mode}" read
    done
    ;;
  *) echo "$0: unknown part '$what'" >&2; exit 2 ;;
esac

echo "$(basename "$0") $what: $PASSED passed, ${#FAILED[@]} failed in" \
  "$(( ($(date +%s%N) - start) / 1000000 )) ms"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '  failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
exit 0
