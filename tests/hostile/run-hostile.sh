#!/usr/bin/env bash
# tests/hostile/run-hostile.sh - runs the modes of hostile-server.py, one
# case per mode (a fresh server each: a mode misbehaves once per run).
#
#   run-hostile.sh client SERVER.py HOSTILE-CLIENT
#     every mode of `SERVER.py --list`, against hostile-client: the client
#     must keep its promises (exit 0: one callback and one free per command,
#     the expected outcome); for a violation the library must report the
#     mode's rule tag (nbdaio_get_violation / _connection_violation, the
#     client's "violation").  The case every-rule-has-a-mode checks that
#     every rule of the library's table (core/rules.c) has a mode.
#   run-hostile.sh fio SERVER.py NBDAIO.SO
#     fio with the plugin against a subset of modes: the good mode must
#     succeed, the others make fio exit non-zero naming the rule.  An empty
#     NBDAIO.SO (plugin not built) skips (exit 77).
#   run-hostile.sh --list client|fio SERVER.py
#     the case names (the modes); TEST_CASE=NAME runs one of them
#     (tests/lib/servers.sh).
#
# PYTHON names the interpreter (default python3).
source "$(dirname "$0")/../lib/servers.sh"
[ "$LIST_CASES" = 1 ] && shift

[ $# -ge 2 ] || { echo "usage: $0 client|fio SERVER.py PROGRAM" >&2; exit 2; }
what=$1
SRC_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIO_MODES="good reply-magic reply-cookie chunk-overlap trunc-data hs-flags
           garbage stall"
[ "$LIST_CASES" = 1 ] || [ $# -eq 3 ] ||
  { echo "usage: $0 client|fio SERVER.py PROGRAM" >&2; exit 2; }
hostile_script "$@"

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

# run_mode client|fio NAME EXPECT COMMANDS: one run against a fresh server
# serving mode NAME, judged by client_verdict or fio_verdict.
run_mode () {
  local how=$1 name=$2 expect=$3 cmds=$4 kind=$3 tmo=5000 rc=0 why
  local fio_tmo=()
  case $expect in
    ok|eof|timeout|shutdown|errno:*) ;;
    *) kind=violation ;;
  esac
  if [ "$expect" = timeout ]; then
    tmo=1000
    fio_tmo=(--cmd_timeout=1000)
  fi
  start_hostile "$name"
  if [ "$how" = client ]; then
    timeout 30 "$PROG" --cmd "$cmds" --expect "$kind" --timeout "$tmo" \
      "$T/sock" > "$T/out" 2> "$T/err" || rc=$?
  else
    timeout 60 fio --name=hostile --ioengine="external:$PROG" \
      --uri="nbd+unix:///?socket=$T/sock" "${fio_tmo[@]}" --rw=randread \
      --bs=4k --size=1m --iodepth=8 --number_ios=256 > "$T/out" 2>&1 ||
      rc=$?
  fi
  stop_hostile
  if [ -s "$T/server.err" ]; then
    why="hostile-server.py failed: $(tail -n 1 "$T/server.err")"
  else
    why=$("${how}_verdict" "$expect" "$rc")
  fi
  [ -z "$why" ] || {
    sed 's/^/  | /' "$T/out" "$T/err" "$T/server.err" 2>/dev/null |
      head -30 >&2
    fail "$name ($expect): $why"
  }
}

# every_rule_has_a_mode: each tag of core/rules.c is the EXPECT of a mode
every_rule_has_a_mode () {
  local tags tag
  tags=$(grep -oE '^ *\[RULE_[A-Z0-9_]+\] = \{ "[a-z0-9-]+"' \
           "$SRC_ROOT/core/rules.c" | sed -E 's/.*"(.*)"/\1/')
  [ "$(wc -w <<< "$tags")" -eq "$(grep -c '^ *\[RULE_' \
                                   "$SRC_ROOT/core/rules.c")" ] ||
    fail "cannot read the tags of core/rules.c"
  for tag in $tags; do
    awk -v t="$tag" '$2 == t { found = 1 } END { exit !found }' \
      <<< "$MODES" || fail "no mode provokes [$tag]"
  done
}

MODES=$(hostile_modes) || exit 1
case $what in
  client)
    mapfile -t rows <<< "$MODES"
    for row in "${rows[@]}"; do
      read -r name expect cmds _ <<< "$row"
      run_case_as "$name" "$name ($expect)" run_mode client "$name" \
        "$expect" "$cmds"
    done
    run_case "every rule has a mode" every_rule_has_a_mode
    ;;
  fio)
    for name in $FIO_MODES; do
      expect=$(awk -v n="$name" '$1 == n { print $2 }' <<< "$MODES")
      run_case_as "$name" "$name (${expect:-no-such-mode})" run_mode fio \
        "$name" "${expect:-no-such-mode}" read
    done
    ;;
  *) echo "$0: unknown part '$what'" >&2; exit 2 ;;
esac
finish
