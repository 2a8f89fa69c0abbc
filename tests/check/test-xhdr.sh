#!/usr/bin/env bash
# tests/check/test-xhdr.sh - nbdaio-check's extended-header probes
# (xhdr.*), several contexts at once (meta.several-contexts) and --junit,
# against the real servers of one Debian release; the verdicts each server
# earns are pinned per probe id (verdicts.py), and every run's JUnit file
# is validated against its human report (junit-check.py).
#   bookworm: the host's nbdkit 1.32, qemu-nbd 7.2, nbd-server 3.24, and
#             the modes of tests/hostile/hostile-server.py that break the
#             extension's rules no library check catches (FAIL and WARN)
#   trixie:   nbdkit 1.42, qemu-nbd 10, nbd-server 3.26 from the trixie
#             root (tests/interop/make-root.sh); exit 77 (skipped, never
#             passed) when the root cannot be built here
# usage: test-xhdr.sh bookworm|trixie NBDAIO-CHECK [HOSTILE-SERVER.py]
#        test-xhdr.sh --list bookworm|trixie [HOSTILE-SERVER.py]  (the cases)
source "$(cd "$(dirname "$0")" && pwd)/../lib/servers.sh"
if [ "$LIST_CASES" = 1 ]; then shift; set -- "${1:-}" "" "${@:2}"; fi

[ $# -eq 2 ] || [ $# -eq 3 ] || {
  echo "usage: $0 bookworm|trixie NBDAIO-CHECK [HOSTILE-SERVER.py]" >&2; exit 2; }
DIST=$1
CHECK=${2:+$(realpath "$2")}      # empty for --list
HOSTILE=${3:+$(realpath "$3")}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../interop/root.sh"   # R, IN_ROOT, need_root, nbd-server
source "$HERE/check-lib.sh"         # check_json
JUNIT="$HERE/junit-check.py"

[ "$LIST_CASES" = 1 ] || case $DIST in
  bookworm)
    RUN=()
    test_init
    J=$T ;;
  trixie)
    need_root
    RUN=("${IN_ROOT[@]}")
    test_init "$R/tmp"
    J=/tmp/${T##*/} ;;             # the same directory, seen from inside
  *) echo "$0: bookworm or trixie, not '$DIST'" >&2; exit 2 ;;
esac

# start NAME CMD...: a server of this release in the background on
# $J/NAME.sock ($T/NAME.sock here); sets URI
start () {
  local name=$1; shift
  rm -f "$T/$name.sock"
  "${RUN[@]}" "$@" > "$T/$name.log" 2>&1 &
  track $!
  wait_until 20 test -S "$T/$name.sock" || { cat "$T/$name.log" >&2; return 1; }
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# qemu_image NAME SIZE: a qcow2 with a persistent dirty bitmap b0 and 1 MiB
# written at 1 MiB after it was made (so the contexts differ)
qemu_image () {
  "${RUN[@]}" qemu-img create -q -f qcow2 "$J/$1.qcow2" "$2"
  "${RUN[@]}" qemu-img bitmap --add "$J/$1.qcow2" b0
  "${RUN[@]}" qemu-io -f qcow2 -c 'write -P 7 1M 1M' "$J/$1.qcow2" > /dev/null
}

# nbd_server SIZE: nbd-server exporting [rw] on $T/nbd.sock; sets URI
nbd_server () { start_nbd_server_rw "$T" "$J" "$1" "${RUN[@]}"; }

# check NAME [nbdaio-check args...] -- [verdicts.py args...]: nbdaio-check
# --json --junit (verdicts asserted), then the human report --junit (the
# JUnit file checked against it)
check () {
  local name=$1 args=() rc; shift
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  check_json "$name" 300 --junit "$T/$name.json.xml" "${args[@]}" -- "$@" ||
    return 1
  python3 -c 'import xml.etree.ElementTree as E, sys; E.parse(sys.argv[1])' \
    "$T/$name.json.xml"
  echo "  + nbdaio-check --junit ${args[*]} $URI"
  rc=0
  timeout 300 "$CHECK" --junit "$T/$name.xml" --timeout 10 "${args[@]}" \
    "$URI" > "$T/$name.txt" 2> "$T/$name.err" || rc=$?
  [ "$rc" -le 1 ] || { echo "exit $rc" >&2; return 1; }
  python3 "$JUNIT" "$T/$name.xml" "$T/$name.txt" "${JTEXT[@]}"
}
JTEXT=()

ex () { local e=(); for id in "$@"; do e+=(--expect "$id"); done; echo "${e[@]}"; }

# What a server without extended headers earns: it refuses the option
# correctly (NBD_REP_ERR_UNSUP), serves a client without them, and leaves
# NBD_FLAG_BLOCK_STATUS_PAYLOAD clear; the other xhdr probes are skipped.
NO_XHDR=(xhdr.opt-reply=PASS xhdr.ext-header-reqd=PASS
         xhdr.payload-flag-compact=PASS xhdr.sr-after=SKIP xhdr.opt-data=SKIP
         xhdr.sr-before=SKIP xhdr.reply-magic=SKIP xhdr.block-status-ext=SKIP
         xhdr.length64-block-status=SKIP xhdr.length64-cache=SKIP
         xhdr.length64-trim=SKIP xhdr.length64-zero=SKIP
         xhdr.payload-filter=SKIP)

# nbdkit (1.32 and 1.42): no extended headers, one context; the JUnit
# file carries an export name with markup, a control and a backslash
case_nbdkit () {
  local name='a<b>&"c'$'\x1b]0;x\x07''\'
  start kit nbdkit -f -U "$J/kit.sock" --filter=exportname memory 8G \
    exportname-list=explicit "exportname=$name" default-export=
  JTEXT=(--text 'handshake.list=a<b>&"c\x1b]0;x\x07\\')
  # shellcheck disable=SC2046
  check kit --write -- --fail "" --warn "" $(ex "${NO_XHDR[@]}") \
    --expect meta.several-contexts=SKIP \
    --detail "xhdr.opt-reply=NBD_REP_ERR_UNSUP" \
    --detail "meta.several-contexts=lists 1 context"
  JTEXT=()
}

# nbd-server (3.24 and 3.26): no extended headers, no meta contexts, its
# known faults (README): INFO says size 0; 3.26 also answers failing and
# DF reads with simple replies although structured replies are on
case_nbd_server () {
  local fails=handshake.info-go
  [ "$DIST" = trixie ] &&
    fails=handshake.info-go,cmd.read-df,refuse.past-end-read,refuse.unknown-flag,replies.valid
  nbd_server 64M
  # shellcheck disable=SC2046
  check nbd --write -- --fail "$fails" --warn "" $(ex "${NO_XHDR[@]}") \
    --expect meta.several-contexts=SKIP \
    --detail "xhdr.opt-reply=NBD_REP_ERR_UNSUP"
}

# qemu-nbd with three contexts (base:allocation, a dirty bitmap, the
# allocation depth) on an 8 GiB image; 10 (trixie) negotiates extended
# headers: every xhdr probe runs, requests above 4 GiB included
case_qemu () {
  qemu_image q 8G
  start q qemu-nbd -t -k "$J/q.sock" -f qcow2 -A -B b0 "$J/q.qcow2"
  if [ "$DIST" = bookworm ]; then
    # shellcheck disable=SC2046
    check q --write -- --fail "" --warn "" $(ex "${NO_XHDR[@]}") \
      --expect meta.several-contexts=PASS \
      --detail "meta.several-contexts=3 contexts selected of 3 listed"
    return
  fi
  # shellcheck disable=SC2046
  check q --write --scratch-size 5G -- --fail "" --warn "" \
    $(ex xhdr.opt-reply=PASS xhdr.sr-after=PASS xhdr.opt-data=PASS \
         xhdr.sr-before=PASS xhdr.ext-header-reqd=PASS xhdr.reply-magic=PASS \
         xhdr.block-status-ext=PASS xhdr.length64-block-status=PASS \
         xhdr.length64-cache=PASS xhdr.length64-trim=PASS \
         xhdr.length64-zero=PASS xhdr.payload-flag-compact=PASS \
         xhdr.payload-filter=PASS meta.several-contexts=PASS \
         handshake.extended-headers=PASS replies.valid=PASS) \
    --detail "xhdr.sr-after=NBD_REP_ERR_EXT_HEADER_REQD" \
    --detail "xhdr.opt-data=NBD_REP_ERR_INVALID" \
    --detail "xhdr.reply-magic=READ past the end failing with EINVAL" \
    --detail "xhdr.length64-trim=succeeded" \
    --detail "xhdr.length64-cache=refused with EINVAL" \
    --detail "xhdr.payload-filter=1 of 3 negotiated context(s)): answered for that context only" \
    --detail "meta.several-contexts=3 contexts selected of 3 listed"
}

# the scripted server (bookworm run only): extended headers done right
# (every xhdr probe but the 4 GiB ones on its 1 MiB export passes), and one
# misbehaviour per mode that only these probes see
hostile () {           # hostile MODE [verdicts.py args...]
  local mode=$1; shift
  hostile_init "$HOSTILE"
  start_hostile "$mode"
  URI="nbd+unix:///?socket=$T/sock"
  check "h-$mode" --write -- "$@"
  stop_hostile
}
case_hostile () {
  # shellcheck disable=SC2046
  hostile ext-good --fail "" --warn "" \
    $(ex xhdr.opt-reply=PASS xhdr.sr-after=PASS xhdr.opt-data=PASS \
         xhdr.sr-before=PASS xhdr.ext-header-reqd=PASS xhdr.reply-magic=PASS \
         xhdr.block-status-ext=PASS xhdr.payload-flag-compact=PASS \
         xhdr.length64-trim=SKIP) \
    --detail "xhdr.length64-trim=too small for a request over 4 GiB"
  hostile ext-required --fail "" --warn "" --expect xhdr.ext-header-reqd=PASS \
    --detail "xhdr.ext-header-reqd=requires extended headers" \
    --expect xhdr.reply-magic=PASS
  hostile ext-payload-flag-compact --fail xhdr.payload-flag-compact --warn "" \
    --detail "xhdr.payload-flag-compact=include NBD_FLAG_BLOCK_STATUS_PAYLOAD"
  hostile ext-reqd-base-list --fail xhdr.ext-header-reqd --warn "" \
    --detail "xhdr.ext-header-reqd=of 'base:' without extended headers"
  hostile ext-sr-after-ack --fail "" --warn xhdr.sr-after \
    --detail "xhdr.sr-after=answered with NBD_REP_ACK"
}

run_case "nbdkit ($DIST)" case_nbdkit
run_case "nbd-server ($DIST)" case_nbd_server
run_case "qemu-nbd ($DIST)" case_qemu
if [ "$DIST" = bookworm ] && [ -n "$HOSTILE" ]; then
  run_case "hostile-server.py (extended-header modes)" case_hostile
fi

finish
