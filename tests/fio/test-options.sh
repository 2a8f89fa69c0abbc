#!/bin/bash
# tests/fio/test-options.sh - the engine's numeric options with a value
# out of range: fio must refuse the job, naming the option and its range,
# before any request (as fio numbers, "-1" was read as a range with an
# empty first value and kept the default 0, and a value above 32 bits was
# stored truncated: such jobs ran silently with another setting):
#  cmd_timeout=-1, cmd_timeout=99999999999 (over the library's unsigned
#  milliseconds), busy_poll=-5, busy_poll=1e3 (no suffixes or exponents);
#  cmd_timeout at its maximum still runs.
#
# usage: test-options.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

# bad_value OPTION VALUE: a read job with --OPTION=VALUE is refused fast
# with a message naming the option.
bad_value () {
  local opt=$1 val=$2 out=${1}_bad
  start_nbdkit mem memory 16M
  fio_nbd "$out" --rw=randread --size=1m --runtime=1 "--$opt=$val"
  expect_refusal "$out" "nbdaio: $opt=$val is not a whole number from 0 to [0-9]+"
  [ "$FIO_MS" -lt 5000 ] || fail "$out: refusal took ${FIO_MS} ms"
  echo "  $out: $(grep -m1 -iE -- "$opt" "$T/$out.err")"
}

cmd_timeout_negative () { bad_value cmd_timeout -1; }
cmd_timeout_huge () { bad_value cmd_timeout 99999999999; }
busy_poll_negative () { bad_value busy_poll -5; }
busy_poll_not_decimal () { bad_value busy_poll 1e3; }

# the largest cmd_timeout is accepted and the job runs
cmd_timeout_max () {
  start_nbdkit mem memory 16M
  fio_nbd maxto --rw=randread --size=1m --runtime=1 --cmd_timeout=4294967295
  expect_ok maxto
  fio_json maxto "assert job_total('read') > 0, 'no reads'"
}

run_case "cmd_timeout=-1 refused" cmd_timeout_negative
run_case "cmd_timeout above 32 bits refused" cmd_timeout_huge
run_case "busy_poll=-5 refused" busy_poll_negative
run_case "busy_poll=1e3 refused" busy_poll_not_decimal
run_case "cmd_timeout=4294967295 runs" cmd_timeout_max
finish
