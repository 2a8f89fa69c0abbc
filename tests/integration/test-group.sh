#!/usr/bin/env bash
# tests/integration/test-group.sh - connection groups (nbdaio_group_*)
# against nbdkit, one case per behaviour, each against its own captive
# server (nbdkit -U - ... --run): spreading and reading back across 4
# connections; refusal without multi-conn; force-multi-conn flushing every
# connection; a group flush completing only after the writes issued before
# it (writes delayed by the server) and never waiting for a write issued
# after it (held back unsubmitted); nbdaio_group_wait's want and timeout.
# See group-probe.c.
# usage: test-group.sh GROUP-PROBE
#        test-group.sh --list   (the cases: group-probe's subcommands)
source "$(dirname "$0")/../lib/servers.sh"
if [ "$LIST_CASES" = 0 ]; then
  [ $# -eq 1 ] || { echo "usage: $0 GROUP-PROBE" >&2; exit 2; }
  PROBE=$(realpath "$1")
  requires nbdkit
  test_init
fi

# captive NBDKIT-ARGS... -- PROBE-ARGS...: the probe against a captive
# nbdkit (its URI last).
captive () {
  local srv=() args=()
  while [ "$1" != "--" ]; do srv+=("$1"); shift; done
  shift
  args=("$@")
  nbdkit -U - "${srv[@]}" --run "$PROBE ${args[*]} \"\$uri\""
}

run_case_as spread "spread over 4 connections, read back across them" \
  captive memory 64M -- spread 4
run_case_as refused "conns=2 refused without multi-conn" \
  captive --filter=multi-conn memory 64M multi-conn-mode=disable -- refused 2
run_case_as forced "force-multi-conn: a group flush on every connection" \
  captive --filter=multi-conn memory 64M multi-conn-mode=disable -- forced 3
run_case_as flush-order "a group flush waits for the writes issued before it" \
  captive --filter=delay memory 64M delay-write=300ms -- flush-order
run_case_as flush-later "a group flush never waits for a later write" \
  captive --filter=delay memory 64M delay-write=200ms -- flush-later
run_case_as wait "nbdaio_group_wait: want and timeout" \
  captive memory 64M -- wait
finish
