#!/usr/bin/env bash
# tests/hostile/test-command-violation.sh - a protocol violation that
# fails one command alone (reply-violations=command, the default) is named
# to the caller: the rule's tag, its section of the NBD specification
# (core/rules.c) and what the server sent.  One case (and one fresh
# hostile-server.py) per row.
#
#   test-command-violation.sh sync SERVER.py SYNC-VIOLATION
#     sync-violation (see there) against the modes that break
#     simple-reply-read, chunk-error-length and chunk-coverage in sync,
#     with nbdaio_pread and with an aio read retired by
#     nbdaio_aio_command_completed.
#   test-command-violation.sh fio SERVER.py NBDAIO.SO
#     fio with the plugin against simple-reply-read-error --every (every
#     read after the first few gets a simple EIO reply): the rule's line is
#     printed once however many reads fail, the job's error is EPROTO and
#     the job's end counts the failed requests; once with fio's default
#     (the job stops at the first error: the reads in flight fail with it)
#     and once going on through the errors (253 of 256 fail).  An empty
#     NBDAIO.SO (plugin not built) skips (exit 77).
#   test-command-violation.sh --list sync|fio SERVER.py
#     the case names; TEST_CASE=NAME runs one of them (tests/lib/servers.sh).
source "$(dirname "$0")/../lib/servers.sh"
[ "$LIST_CASES" = 1 ] && shift

usage () { echo "usage: $0 sync|fio SERVER.py PROGRAM" >&2; exit 2; }
[ $# -ge 2 ] || usage
what=$1
SRC_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$LIST_CASES" = 1 ] || [ $# -eq 3 ] || usage
hostile_script "$@"

# section TAG: the section core/rules.c gives the rule TAG.
section () {
  sed -nE "s/.*\{ \"$1\", \"([^\"]*)\".*/\1/p" "$SRC_ROOT/core/rules.c"
}

# sync_case CALL MODE TAG THEN: sync-violation --call CALL against MODE
sync_case () {
  local out
  start_hostile "$2"
  out=$(timeout 20 "$PROG" --call "$1" --rule "$3" --then "$4" \
          "$T/sock" 2>&1) || fail "$out"
  echo "$out"
}

# fio_case MIN-FAILED [FIO-ARGS...]: fio against a server that breaks
# simple-reply-read on every read after the first few
fio_case () {
  local min=$1 rc=0 sect line n alone total
  shift
  start_hostile simple-reply-read-error --every
  timeout 60 fio --name=hostile --ioengine="external:$PROG" \
    --uri="nbd+unix:///?socket=$T/sock" --rw=randread --bs=4k --size=1m \
    --iodepth=8 --number_ios=256 "$@" > "$T/out" 2>&1 || rc=$?
  grep -v 'io_u error on file' "$T/out" | head -12
  [ "$rc" -ne 124 ] || fail "fio hung"
  sect=$(section simple-reply-read)
  [ -n "$sect" ] || fail "core/rules.c has no rule [simple-reply-read]"
  line="^nbdaio: server broke rule simple-reply-read: .*"
  line+="\(NBD specification, section \"$sect\"\); "
  line+="this request failed alone \(reply-violations=command\)$"
  n=$(grep -cE "$line" "$T/out" || true)
  [ "$n" -eq 1 ] || fail "the rule's line appears $n times (expected once)"
  grep -qE '^hostile: \(groupid=0, jobs=1\): err=71 ' "$T/out" ||
    fail "the job's error is not EPROTO (71)"
  alone=$(sed -nE 's/^nbdaio: hostile: ([0-9]+) requests? failed alone .*/\1/p' \
            "$T/out")
  [ -n "$alone" ] && [ "$alone" -ge "$min" ] ||
    fail "the job's end counts '$alone' failed requests (expected >= $min)"
  total=$(sed -nE 's/.*errors *: total=([0-9]+), first_error=.*/\1/p' \
            "$T/out")
  [ -z "$total" ] || [ "$total" = "$alone" ] ||
    fail "fio counts $total errors, the plugin $alone"
}

case $what in
  sync)
    # CALL MODE TAG THEN (the server goes on serving, or hangs up)
    while read -r call mode tag then; do
      run_case_as "$call-$mode" "$call, $mode ($tag)" sync_case "$call" \
        "$mode" "$tag" "$then"
    done <<'EOF'
pread simple-reply-read-error simple-reply-read serve
aio simple-reply-read-in-sync simple-reply-read serve
pread chunk-error-msglen-le chunk-error-length serve
aio chunk-error-msglen-le chunk-error-length serve
pread chunk-coverage chunk-coverage eof
aio chunk-coverage-none chunk-coverage eof
EOF
    ;;
  fio)
    run_case_as stop-at-first-error "fio stops at the first error" \
      fio_case 2
    run_case_as continue-on-error "fio goes on through the errors" \
      fio_case 100 --continue_on_error=read --ignore_error=71
    ;;
  *) echo "$0: unknown part '$what'" >&2; exit 2 ;;
esac
finish
