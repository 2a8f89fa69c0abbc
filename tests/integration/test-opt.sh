#!/usr/bin/env bash
# tests/integration/test-opt.sh - option negotiation mode against the real
# servers: opt-probe lists exports, asks NBD_OPT_INFO, lists meta contexts
# (all, and for a query), sends an option nobody knows, then goes (or
# aborts), and the answers each server really gives are asserted:
#   nbdkit (exportname filter): its two exports with their description,
#     base:allocation only, an unknown export refused (exportname-strict);
#   qemu-nbd -A -B b0 on qcow2: its export and description, block sizes
#     1/4096/32M, base:allocation, qemu:allocation-depth and
#     qemu:dirty-bitmap:b0 (only the qemu: ones for the query "qemu:");
#   nbd-server: both exports, NBD_OPT_INFO reporting size 0 (GO then says
#     16 MiB), simple replies only and NBD_OPT_LIST_META_CONTEXT refused
#     with NBD_REP_ERR_UNSUP.
# Every server answers the unknown option with NBD_REP_ERR_UNSUP.
# usage: test-opt.sh OPT-PROBE ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO
#        test-opt.sh --list   (the cases: one per server)
source "$(dirname "$0")/lib.sh"
if [ "$LIST_CASES" = 0 ]; then
  PROBE=$(realpath "${1:-}")
  shift
fi
init "$@"

ACK=1
ERR_UNSUP=2147483649          # NBD_REP_ERR_UNSUP
ERR_UNKNOWN=2147483654        # NBD_REP_ERR_UNKNOWN

# probe OUT ARGS...: run opt-probe (must succeed) into OUT (valid JSON)
probe () {
  local out=$1; shift
  echo "  + opt-probe $*"
  timeout 60 "$PROBE" "$@" > "$out"
  cat "$out"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out"
}

# check OUT PYTHON-EXPRESSION...: each must hold for d = the JSON of OUT
check () {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for expr in sys.argv[2:]:
    try:
        ok = eval(expr, {"d": d})
    except Exception as e:
        ok, expr = False, f"{expr} ({e!r})"
    if not ok:
        print(f"opt-probe: expected {expr}", file=sys.stderr)
        bad = 1
sys.exit(bad)
PY
}

names () { echo "[c['name'] for c in d['$1']['${2:-contexts}']]"; }

case_nbdkit () {
  start_nbdkit k memory 1M --filter=exportname exportname=foo \
    exportname=bar exportname-list=explicit exportname-strict=true \
    exportdesc=fixed:"a memory disk"
  probe "$T/p.json" --query base:allocation "nbd+unix:///foo?socket=$T/k.sock"
  check "$T/p.json" "d['negotiating'] == 1" "d['structured'] == 1" \
    "d['protocol'] == 'newstyle-fixed'" \
    "d['list']['rc'] == 2 and d['list']['reply'] == $ACK" \
    "d['list']['exports'] == [{'name': 'foo', 'description': 'a memory disk'}, {'name': 'bar', 'description': 'a memory disk'}]" \
    "d['info']['rc'] == 0 and d['info']['negotiating'] == 1" \
    "d['info']['size'] == 1048576 and d['info']['name'] == 'foo'" \
    "d['info']['description'] == 'a memory disk'" \
    "d['info']['read_only'] == 0" \
    "$(names contexts) == ['base:allocation']" \
    "$(names contexts_query) == ['base:allocation']" \
    "d['raw']['rc'] == $ERR_UNSUP and d['raw']['negotiating'] == 1" \
    "d['go']['rc'] == 0 and d['go']['connected'] == 1" \
    "d['go']['meta_context'] == 'base:allocation' and d['go']['read'] == 0" \
    "d['failures'] == 0"
  # an unknown export: INFO and GO refused, the handle goes on negotiating
  probe "$T/u.json" --export nosuch "nbd+unix:///foo?socket=$T/k.sock"
  check "$T/u.json" "d['info']['rc'] == -1" \
    "d['info']['errno'] == 'ENOENT' and d['info']['reply'] == $ERR_UNKNOWN" \
    "d['list']['rc'] == 2 and d['raw']['rc'] == $ERR_UNSUP" \
    "d['go']['rc'] == -1 and d['go']['errno'] == 'ENOENT'"
  # abort instead of go
  probe "$T/a.json" --abort "nbd+unix:///bar?socket=$T/k.sock"
  check "$T/a.json" "d['info']['name'] == 'bar'" \
    "d['abort'] == {'rc': 0, 'negotiating': 0, 'connected': 0, 'connection_error': None}"
}

case_qemu_nbd () {
  qemu-img create -q -f qcow2 "$T/b.qcow2" 16M
  qemu-img bitmap --add "$T/b.qcow2" b0
  rm -f "$T/q.pid" "$T/q.sock"
  qemu-nbd -t -A -B b0 -x disk1 -D 'qemu disk' -k "$T/q.sock" \
    --pid-file="$T/q.pid" -f qcow2 "$T/b.qcow2" &
  track $!
  wait_started $! test -S "$T/q.sock"
  probe "$T/p.json" --query qemu: "nbd+unix:///disk1?socket=$T/q.sock"
  check "$T/p.json" "d['structured'] == 1" \
    "d['list']['exports'] == [{'name': 'disk1', 'description': 'qemu disk'}]" \
    "d['info']['rc'] == 0 and d['info']['size'] == 16777216" \
    "d['info']['name'] == 'disk1' and d['info']['description'] == 'qemu disk'" \
    "d['info']['block_size'] == [1, 4096, 33554432]" \
    "$(names contexts) == ['base:allocation', 'qemu:allocation-depth', 'qemu:dirty-bitmap:b0']" \
    "$(names contexts_query) == ['qemu:allocation-depth', 'qemu:dirty-bitmap:b0']" \
    "d['raw']['rc'] == $ERR_UNSUP" \
    "d['go']['rc'] == 0 and d['go']['size'] == 16777216" \
    "d['go']['meta_context'] == 'base:allocation' and d['go']['read'] == 0" \
    "d['failures'] == 0"
  probe "$T/u.json" --export nosuch "nbd+unix:///disk1?socket=$T/q.sock"
  check "$T/u.json" "d['info']['errno'] == 'ENOENT'" \
    "d['info']['reply'] == $ERR_UNKNOWN" \
    "d['contexts']['rc'] == -1 and d['contexts']['errno'] == 'ENOENT'" \
    "d['go']['rc'] == -1 and d['go']['errno'] == 'ENOENT'"
}

case_nbd_server () {
  start_nbd_server
  probe "$T/p.json" --query base:allocation "nbd+unix:///rw?socket=$T/nbd.sock"
  check "$T/p.json" "d['structured'] == 0" \
    "d['list']['exports'] == [{'name': 'rw', 'description': ''}, {'name': 'ro', 'description': ''}]" \
    "d['info']['rc'] == 0 and d['info']['size'] == 0" \
    "d['info']['name'] == 'rw' and d['info']['read_only'] == 0" \
    "d['contexts']['rc'] == -1 and d['contexts']['errno'] == 'EOPNOTSUPP'" \
    "d['contexts']['reply'] == $ERR_UNSUP" \
    "d['raw']['rc'] == $ERR_UNSUP and d['raw']['negotiating'] == 1" \
    "d['go']['rc'] == 0 and d['go']['size'] == 16777216" \
    "d['go']['meta_context'] is None and d['go']['read'] == 0" \
    "d['failures'] == 0"
  probe "$T/r.json" --abort "nbd://127.0.0.1:$PORT/ro"
  check "$T/r.json" "d['info']['read_only'] == 1" \
    "d['abort']['rc'] == 0 and d['abort']['connection_error'] is None"
  probe "$T/u.json" --export nosuch "nbd+unix:///rw?socket=$T/nbd.sock"
  check "$T/u.json" "d['info']['errno'] == 'ENOENT'" \
    "d['go']['rc'] == -1 and d['go']['errno'] == 'ENOENT'"
}

run_case "opt mode against nbdkit" case_nbdkit
run_case "opt mode against qemu-nbd" case_qemu_nbd
run_case "opt mode against nbd-server" case_nbd_server
finish
