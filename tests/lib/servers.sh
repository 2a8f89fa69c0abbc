# tests/lib/servers.sh - the one bash harness of the test scripts
# (sourced, not run): a private temp dir, real NBD servers (nbdkit,
# qemu-nbd, nbd-server) and the scripted tests/hostile/hostile-server.py
# started, waited for and stopped, and cases that each run in their own
# subshell and stop their servers whatever happened.
#
# A script does:
#   source "$(dirname "$0")/../lib/servers.sh"
#   test_init                       (after checking its own arguments)
#   requires PROGRAM...             (exit 77, a skip, when one is missing)
#   run_case NAME FUNCTION [ARGS...] (as often as needed)
#   finish
#
# A case is selected by its FUNCTION name: `SCRIPT --list` prints the names
# (meson.build registers one test per case with them) and TEST_CASE=FUNCTION
# runs only the cases calling that function (run_case_as gives a case its
# own name instead, for one function run on the rows of a table).  Each case runs in a subshell
# with `set -e`: the first failing command ends it and is reported with the
# line it was called from.
#
# Where a server can live only as long as one command, prefer nbdkit's
# captive form instead (nbdkit -U - ... --run 'CMD "$uri"', as
# tests/integration/test-group.sh does): nothing to start, wait or stop.
# shellcheck shell=bash disable=SC2034

set -uo pipefail

# --list as the script's first argument: print the case names, run nothing.
LIST_CASES=0
[ "${1:-}" = --list ] && LIST_CASES=1

# test_init [PARENT-DIR]: the private temp dir $T (under PARENT-DIR,
# default /tmp), removed on exit after every server is stopped.
test_init () {
  [ "$LIST_CASES" = 1 ] && return 0
  T=$(mktemp -d "${1:-/tmp}/nbdaio-test.XXXXXX")
  : > "$T/pids"
  FAILED=()
  PASSED=0
  trap 'stop_servers; rm -rf "$T"' EXIT
  trap 'echo "$0: interrupted" >&2; exit 130' INT TERM HUP
}

# requires PROGRAM...: skip the whole script (exit 77) without one of them;
# inside a case, skip that case.
requires () {
  local p
  [ "$LIST_CASES" = 1 ] && return 0
  for p in "$@"; do
    command -v "$p" > /dev/null || skip "$0: $p is not installed"
  done
}

# skip MESSAGE: skip the script, or inside a case that case (exit 77 with
# a mark: a case's exit 77 without one, say from a program it ran, is a
# failure, never a skip).
skip () {
  echo "$*: skipped" >&2
  [ -z "${T:-}" ] || : > "$T/.case-skipped"
  exit 77
}

# ---------------------------------------------------------------- processes

# track PID: stop this server when the current case ends (and on exit).
track () { echo "$1" >> "$T/pids"; }

# alive PID: a zombie counts as gone (daemons here may be reparented to an
# init that does not reap them).
alive () {
  [ -e "/proc/$1" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

stop_servers () {
  local pid pids
  pids=$(cat "$T/pids" 2>/dev/null) || return 0
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  : > "$T/pids"
  return 0
}

# dead PID: gone, or a zombie.
dead () { ! alive "$1"; }

# kill_hard PID: SIGKILL (a server crashing), and wait until it is gone.
kill_hard () { kill -9 "$1" 2>/dev/null || true; wait_until 10 dead "$1"; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s.
wait_until () { wait_poll "$1" "" "${@:2}"; }

# wait_started PID CMD...: like wait_until 20 CMD, but give up at once if
# the server process PID has exited.
wait_started () { wait_poll 20 "$1" "${@:2}"; }

# wait_poll SECONDS PID CMD...: the loop behind both (PID may be empty),
# polling every $WAIT_STEP_MS milliseconds (default 100, below 1000).
wait_poll () {
  local step=${WAIT_STEP_MS:-100} pid=$2 n nap
  n=$(( $1 * 1000 / step )); shift 2
  printf -v nap '0.%03d' "$step"
  while ! "$@" 2>/dev/null; do
    if [ -n "$pid" ] && ! alive "$pid"; then
      echo "server (pid $pid) exited while starting: $*" >&2
      return 1
    fi
    n=$((n - 1))
    if [ "$n" -le 0 ]; then
      echo "timed out waiting for: $*" >&2
      return 1
    fi
    sleep "$nap"
  done
}

# now_ms: the wall clock in milliseconds (for durations).
now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

# ---------------------------------------------------------------- ports

free_port () {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# free_port6: a free port on ::1 (fails when there is no IPv6 loopback)
free_port6 () {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])'
}

# tcp_open PORT [HOST]: something listens there.
tcp_open () {
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1).close()' "$1" "${2:-127.0.0.1}"
}

# ---------------------------------------------------------------- servers

# background ERRFILE CMD...: CMD in the background, its stderr appended
# to ERRFILE, stopped when the case ends; sets BG_PID.
background () {
  local err=$1; shift
  "$@" 2>> "$err" &
  BG_PID=$!
  disown "$BG_PID"            # no job notice when a test kills it
  track "$BG_PID"
}

# started ERRFILE CMD...: wait_started for the BG_PID server; if it does
# not start, show its ERRFILE.
started () {
  local err=$1; shift
  wait_started "$BG_PID" "$@" || { cat "$err" >&2; return 1; }
}

# nbdkit_bg NAME [nbdkit args...]: nbdkit in the foreground of a
# background job, its pid file $T/NAME.pid, its stderr in
# $T/NAME.nbdkit.err; sets NBDKIT_PID once it has started.
nbdkit_bg () {
  local name=$1; shift
  rm -f "$T/$name.pid" "$T/$name.nbdkit.err"
  background "$T/$name.nbdkit.err" \
    nbdkit -f --exit-with-parent -P "$T/$name.pid" "$@"
  NBDKIT_PID=$BG_PID
  started "$T/$name.nbdkit.err" test -s "$T/$name.pid"
}

# start_nbdkit NAME [nbdkit args...]: nbdkit_bg on the unix socket
# $T/NAME.sock; sets URI and NBDKIT_PID.
start_nbdkit () {
  local name=$1; shift
  rm -f "$T/$name.sock"
  nbdkit_bg "$name" -U "$T/$name.sock" "$@"
  wait_until 20 test -S "$T/$name.sock"
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# start_nbdkit_tcp NAME [nbdkit args...]: 127.0.0.1 on a free port; sets URI.
# start_nbdkit_tcp6 NAME [nbdkit args...]: the same on ::1.
start_nbdkit_tcp () { start_nbdkit_ip 127.0.0.1 "$(free_port)" 127.0.0.1 "$@"; }
start_nbdkit_tcp6 () { start_nbdkit_ip ::1 "$(free_port6)" '[::1]' "$@"; }

# start_nbdkit_ip ADDR PORT URIHOST NAME [nbdkit args...]
start_nbdkit_ip () {
  local addr=$1 port=$2 urihost=$3 name=$4; shift 4
  nbdkit_bg "$name" -i "$addr" -p "$port" "$@"
  URI="nbd://$urihost:$port/"
}

# serve_qemu_nbd NAME qemu-nbd-args...: qemu-nbd on the unix socket
# $T/NAME.sock, persistent (-t: every connection of a client gets in), its
# stderr appended to $T/NAME.qemu.err; the arguments name the image.  Sets
# URI and QEMU_PID.
serve_qemu_nbd () {
  local name=$1; shift
  rm -f "$T/$name.sock"
  background "$T/$name.qemu.err" qemu-nbd -t -k "$T/$name.sock" "$@"
  QEMU_PID=$BG_PID
  started "$T/$name.qemu.err" test -S "$T/$name.sock"
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# start_qemu_nbd NAME SIZE [qemu-nbd args...]: serve_qemu_nbd on the raw
# file $T/NAME.img, made SIZE (its data kept when it exists).
start_qemu_nbd () {
  truncate -s "$2" "$T/$1.img"
  serve_qemu_nbd "$1" -f raw "${@:3}" "$T/$1.img"
}

# start_nbd_server_conf EXPORTS [GENERIC]: one nbd-server (it daemonizes;
# -p gives us its pid) on 127.0.0.1:$PORT (set here) and on the unix
# socket $T/nbd.sock, serving the export sections EXPORTS, with the lines
# GENERIC added to its [generic] section (nbd-server's config syntax).
start_nbd_server_conf () {
  PORT=$(free_port)
  cat > "$T/nbd.conf" <<CONF
[generic]
port = $PORT
listenaddr = 127.0.0.1
unixsock = $T/nbd.sock
duallisten = true
allowlist = true
${2:-}
$1
CONF
  rm -f "$T/nbd.pid" "$T/nbd.sock"
  timeout 20 nbd-server -C "$T/nbd.conf" -p "$T/nbd.pid"
  wait_until 20 test -s "$T/nbd.pid"
  track "$(cat "$T/nbd.pid")"
  wait_until 20 tcp_open "$PORT"
  wait_until 20 test -S "$T/nbd.sock"
}

# start_nbd_server: nbd-server with two exports: rw ($T/rw.img, 16 MiB of
# zeros; flush, fua, trim, rotational) and ro ($T/ro.img, 4 MiB of random
# bytes, read-only); see start_nbd_server_conf.
start_nbd_server () {
  truncate -s 16M "$T/rw.img"
  head -c 4M /dev/urandom > "$T/ro.img"
  start_nbd_server_conf "[rw]
exportname = $T/rw.img
flush = true
fua = true
trim = true
rotational = true
[ro]
exportname = $T/ro.img
readonly = true"
}

# start_nbd_server_export NAME SIZE [EXTRA-EXPORT-LINES]: nbd-server with
# one export NAME on the file $T/NAME.img of SIZE (flush and trim, no
# FUA); sets URI to it over TCP.
start_nbd_server_export () {
  truncate -s "$2" "$T/$1.img"
  start_nbd_server_conf "[$1]
exportname = $T/$1.img
flush = true
trim = true
${3:-}"
  URI="nbd://127.0.0.1:$PORT/$1"
}

# ---------------------------------------------------------------- hostile

# hostile_init SERVER.py: the scripted server (tests/hostile/
# hostile-server.py) that start_hostile runs, with $PYTHON: the
# interpreter itself, not a wrapper (a pyenv shim costs 0.2 s a start;
# meson passes it resolved).
hostile_init () {
  HOSTILE_SERVER=$(realpath "$1")
  PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
}

# hostile_script WHAT SERVER.py PROGRAM: the start of a script that runs
# hostile modes against PROGRAM, a C client or (WHAT = fio) the plugin,
# empty when it was not built (a skip); sets PROG.  Nothing but
# hostile_init under --list.
hostile_script () {
  hostile_init "$2"
  [ "$LIST_CASES" = 0 ] || return 0
  [ "$1" != fio ] || [ -n "$3" ] || skip "fio plugin not built"
  PROG=$(realpath "$3")
  [ "$1" != fio ] || requires fio
  test_init
}

# hostile_modes: SERVER.py --list, a mode a line (NAME EXPECT COMMANDS
# DESCRIPTION).
hostile_modes () { "$PYTHON" "$HOSTILE_SERVER" --list; }

# start_hostile MODE [ARGS...]: the server serving MODE (with its options
# ARGS) on the unix socket $T/sock, there once it accepts; its stderr in
# $T/server.err.  Stopped by stop_hostile or when the case ends; a mode
# misbehaves once per server run.
start_hostile () {
  rm -f "$T/sock"
  "$PYTHON" "$HOSTILE_SERVER" --mode "$1" "${@:2}" "$T/sock" \
    2> "$T/server.err" &
  HOSTILE_PID=$!
  track "$HOSTILE_PID"
  WAIT_STEP_MS=10 wait_started "$HOSTILE_PID" test -S "$T/sock" || {
    echo "hostile-server.py --mode $1 did not start:" >&2
    cat "$T/server.err" >&2
    return 1
  }
}

# stop_hostile: stop it now (before reading $T/server.err).
stop_hostile () {
  kill "$HOSTILE_PID" 2>/dev/null || true
  wait "$HOSTILE_PID" 2>/dev/null || true
  sed -i "/^$HOSTILE_PID\$/d" "$T/pids"
  rm -f "$T/sock"
}

# ---------------------------------------------------------------- cases

# ERR trap of a case: the failing command (first line) and where it was
# called from, innermost first.
report_failure () {
  local cmd=${1%%$'\n'*} i=0 frame stack=""
  while frame=$(caller $i); do
    set -- $frame
    [ "$2" = run_case_as ] && break
    stack+="${stack:+ <- }$2 (${3##*/}:$1)"
    i=$((i + 1))
  done
  echo "  FAILED: $cmd" >&2
  echo "    in $stack" >&2
}

# fail MESSAGE: end the case with MESSAGE.
fail () { echo "FAILED: $*" >&2; exit 1; }

# run_case NAME FUNCTION [ARGS...]: FUNCTION ARGS in a subshell with
# set -e, then stop the servers it started.
run_case () { run_case_as "$2" "$@"; }

# run_case_as ID NAME FUNCTION [ARGS...]: run_case, the case named ID
# (for --list and TEST_CASE) instead of by FUNCTION: for a script where
# one function runs many rows of a table (a hostile-server.py mode each).
run_case_as () {
  local id=$1 name=$2 rc errexit=0
  shift 2
  if [ "$LIST_CASES" = 1 ]; then echo "$id"; return 0; fi
  [ -z "${TEST_CASE:-}" ] || [ "$TEST_CASE" = "$id" ] || return 0
  CASES_RUN=$(( ${CASES_RUN:-0} + 1 ))
  echo "=== $name"
  rm -f "$T/.case-skipped"
  [[ $- == *e* ]] && errexit=1
  set +e
  # Not inside `if` or `||`: there bash would ignore set -e in the subshell.
  ( set -eE
    trap 'report_failure "$BASH_COMMAND"' ERR
    "$@" )
  rc=$?
  [ "$errexit" = 0 ] || set -e
  stop_servers
  if [ "$rc" -eq 0 ]; then
    echo "--- ok: $name"
    PASSED=$((PASSED + 1))
  elif [ "$rc" -eq 77 ] && [ -e "$T/.case-skipped" ]; then
    echo "--- skipped: $name"
    SKIPPED=$(( ${SKIPPED:-0} + 1 ))
  else
    echo "--- FAIL: $name (status $rc)" >&2
    FAILED+=("$name")
  fi
}

finish () {
  [ "$LIST_CASES" = 1 ] && exit 0
  if [ -n "${TEST_CASE:-}" ] && [ "${CASES_RUN:-0}" -eq 0 ]; then
    echo "$(basename "$0"): no case runs $TEST_CASE" >&2
    exit 1
  fi
  echo
  echo "$(basename "$0"): $PASSED passed, ${#FAILED[@]} failed," \
    "${SKIPPED:-0} skipped"
  if [ ${#FAILED[@]} -gt 0 ]; then
    printf '  failed: %s\n' "${FAILED[@]}" >&2
    exit 1
  fi
  # skipped stays skipped: 77 when no case ran to the end
  [ "$PASSED" -gt 0 ] || [ "${SKIPPED:-0}" -eq 0 ] || exit 77
  exit 0
}
