#!/usr/bin/env bash
# tests/integration/test-group.sh - connection groups (nbdaio_group_*)
# against nbdkit, one behaviour per captive server (nbdkit -U - ... --run):
# spreading and reading back across 4 connections; refusal without
# multi-conn; force-multi-conn flushing every connection; a group flush
# completing only after the writes issued before it (writes delayed by the
# server) and never waiting for a write issued after it (held back
# unsubmitted); nbdaio_group_wait's want and timeout.  See group-probe.c.
# usage: test-group.sh GROUP-PROBE
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 GROUP-PROBE" >&2; exit 2; }
PROBE=$(realpath "$1")
command -v nbdkit >/dev/null || { echo "nbdkit is not installed" >&2; exit 77; }
FAILED=()

# case NAME NBDKIT-ARGS... -- PROBE-ARGS...: the probe against a captive
# nbdkit (its URI last).
case_ () {
  local name=$1 srv=() args=()
  shift
  while [ "$1" != "--" ]; do srv+=("$1"); shift; done
  shift
  args=("$@")
  echo "--- $name"
  if nbdkit -U - "${srv[@]}" --run "$PROBE ${args[*]} \"\$uri\""; then
    echo "ok $name"
  else
    echo "FAIL $name"
    FAILED+=("$name")
  fi
}

case_ "spread over 4 connections, read back across them" \
  memory 64M -- spread 4
case_ "conns=2 refused without multi-conn" \
  --filter=multi-conn memory 64M multi-conn-mode=disable -- refused 2
case_ "force-multi-conn: a group flush on every connection" \
  --filter=multi-conn memory 64M multi-conn-mode=disable -- forced 3
case_ "a group flush waits for the writes issued before it" \
  --filter=delay memory 64M delay-write=300ms -- flush-order
case_ "a group flush never waits for a later write" \
  --filter=delay memory 64M delay-write=200ms -- flush-later
case_ "nbdaio_group_wait: want and timeout" memory 64M -- wait

echo "test-group.sh: $((6 - ${#FAILED[@]})) passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
