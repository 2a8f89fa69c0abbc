# tests/integration/lib.sh - helpers shared by the integration scripts
# (sourced, not run): argument parsing, a private temp dir, server
# bookkeeping with cleanup on every exit path, timeouts, JSON assertions
# and independent data checks.
#
# A script calls:  init "$@"; run_case NAME FUNCTION ...; finish
# Each case runs in a subshell with `set -e`; the first failing command ends
# the case, which is reported with the command's line, and the servers the
# case started are stopped whatever happened.

set -uo pipefail

init () {
  if [ $# -ne 3 ]; then
    echo "usage: $0 ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO" >&2
    exit 2
  fi
  ROUNDTRIP=$(realpath "$1")
  INFO=$(realpath "$2")
  DEMO=$(realpath "$3")
  for p in "$ROUNDTRIP" "$INFO" "$DEMO"; do
    [ -x "$p" ] || { echo "$0: $p is not an executable" >&2; exit 2; }
  done
  T=$(mktemp -d /tmp/nbdaio-integ.XXXXXX)
  : > "$T/pids"
  FAILED=()
  PASSED=0
  trap 'stop_servers; rm -rf "$T"' EXIT
  trap 'echo "$0: interrupted" >&2; exit 130' INT TERM HUP
}

# Remember a server process so that it is stopped after its case (and on
# exit, whatever happens).
track () { echo "$1" >> "$T/pids"; }

# A zombie counts as gone (daemons here may be reparented to an init that
# does not reap them).
alive () {
  [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_servers () {
  local pid pids
  pids=$(cat "$T/pids" 2>/dev/null) || return 0
  for pid in $pids; do kill "$pid" 2>/dev/null; done
  for pid in $pids; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
  done
  : > "$T/pids"
  return 0
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s.
wait_until () { wait_poll "$1" "" "${@:2}"; }

# wait_started PID CMD...: like wait_until 20 CMD, but give up at once if
# the server process PID has exited.
wait_started () { wait_poll 20 "$1" "${@:2}"; }

# wait_poll SECONDS PID CMD...: the loop behind both (PID may be empty).
wait_poll () {
  local n=$(( $1 * 10 )) pid=$2; shift 2
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
    sleep 0.1
  done
}

free_port () {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# free_port6: a free port on ::1 (fails when there is no IPv6 loopback)
free_port6 () {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])'
}

# tcp_open PORT [HOST]
tcp_open () {
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1).close()' "$1" "${2:-127.0.0.1}"
}

# start_nbdkit NAME [nbdkit args...]: unix socket $T/NAME.sock; sets URI.
start_nbdkit () {
  local name=$1; shift
  rm -f "$T/$name.pid" "$T/$name.sock"
  nbdkit -f --exit-with-parent -U "$T/$name.sock" -P "$T/$name.pid" "$@" &
  track $!
  wait_started $! test -s "$T/$name.pid"
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# start_nbdkit_tcp NAME [nbdkit args...]: 127.0.0.1 on a free port; sets URI.
# start_nbdkit_tcp6 NAME [nbdkit args...]: the same on ::1.
start_nbdkit_tcp () { start_nbdkit_ip 127.0.0.1 "$(free_port)" 127.0.0.1 "$@"; }
start_nbdkit_tcp6 () { start_nbdkit_ip ::1 "$(free_port6)" '[::1]' "$@"; }

# start_nbdkit_ip ADDR PORT URIHOST NAME [nbdkit args...]
start_nbdkit_ip () {
  local addr=$1 port=$2 urihost=$3 name=$4; shift 4
  rm -f "$T/$name.pid"
  nbdkit -f --exit-with-parent -i "$addr" -p "$port" -P "$T/$name.pid" "$@" &
  track $!
  wait_started $! test -s "$T/$name.pid"
  URI="nbd://$urihost:$port/"
}

# $NBDAIO_VALGRIND=1 runs roundtrip under valgrind memcheck: any memory
# error or leak fails the run (exit status 99).
RT_WRAP=()
if [ "${NBDAIO_VALGRIND:-0}" = 1 ]; then
  RT_WRAP=(valgrind -q --error-exitcode=99 --leak-check=full
           --errors-for-leak-kinds=definite,indirect)
fi

# Run one of our programs with a time limit, showing its command line.
rt () {
  echo "  + ${RT_WRAP[*]:+${RT_WRAP[*]} }roundtrip $*"
  timeout 300 "${RT_WRAP[@]}" "$ROUNDTRIP" "$@"
}

demo () {
  echo "  + nbdaio-aio-demo $*"
  timeout 120 "$DEMO" "$@"
}

# info URI OUT: nbdaio-info --json into OUT (must be valid JSON); the human
# form must work too and show the same size.
info () {
  echo "  + nbdaio-info --json $1"
  timeout 60 "$INFO" --json "$1" > "$2"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$2" || {
    echo "nbdaio-info --json printed invalid JSON:" >&2; cat "$2" >&2; return 1; }
  timeout 60 "$INFO" "$1" > "$2.txt"
  local size
  size=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["size"])' "$2")
  grep -Eq "^size: +$size\$" "$2.txt" || {
    echo "nbdaio-info human output lacks 'size: $size':" >&2; cat "$2.txt" >&2; return 1; }
}

# expect_json FILE KEY=JSONVALUE...: each key must hold exactly that value.
expect_json () {
  local file=$1; shift
  python3 - "$file" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for arg in sys.argv[2:]:
    key, _, want = arg.partition("=")
    want = json.loads(want)
    if key not in d:
        print(f"nbdaio-info --json: missing key {key}", file=sys.stderr)
        bad = 1
    elif d[key] != want or type(d[key]) != type(want):
        print(f"nbdaio-info --json: {key} = {d[key]!r}, expected {want!r}",
              file=sys.stderr)
        bad = 1
sys.exit(bad)
EOF
}

# same_data EXPECTED ACTUAL: ACTUAL starts with EXPECTED's bytes.
same_data () {
  local n
  n=$(stat -c %s "$1")
  [ "$n" -gt 0 ] || { echo "$1 is empty" >&2; return 1; }
  cmp -n "$n" "$1" "$2" || { echo "data differs: $1 vs $2" >&2; return 1; }
}

# nbdcopy_check URI EXPECTED: read the export with libnbd's nbdcopy and
# compare with what we meant to write.
nbdcopy_check () {
  echo "  + nbdcopy $1 | cmp $2"
  rm -f "$T/copy.bin"
  timeout 60 nbdcopy "$1" "$T/copy.bin"
  same_data "$2" "$T/copy.bin"
}

# random_file FILE BYTES
random_file () {
  head -c "$2" /dev/urandom > "$1"
}

# Called by the ERR trap of a case: the failing command (first line) and
# where it was called from, innermost first.
# start_nbd_server: one nbd-server (it daemonizes; -p gives us its pid) on
# 127.0.0.1:$PORT (set here) and on the unix socket $T/nbd.sock, with two
# exports: rw ($T/rw.img, 16 MiB of zeros; flush, fua, trim, rotational)
# and ro ($T/ro.img, 4 MiB of random bytes, read-only).
start_nbd_server () {
  PORT=$(free_port)
  truncate -s 16M "$T/rw.img"
  random_file "$T/ro.img" 4194304
  cat > "$T/nbd.conf" <<CONF
[generic]
port = $PORT
listenaddr = 127.0.0.1
unixsock = $T/nbd.sock
duallisten = true
allowlist = true
[rw]
exportname = $T/rw.img
flush = true
fua = true
trim = true
rotational = true
[ro]
exportname = $T/ro.img
readonly = true
CONF
  rm -f "$T/nbd.pid" "$T/nbd.sock"
  timeout 20 nbd-server -C "$T/nbd.conf" -p "$T/nbd.pid"
  wait_until 20 test -s "$T/nbd.pid"
  track "$(cat "$T/nbd.pid")"
  wait_until 20 tcp_open "$PORT"
  wait_until 20 test -S "$T/nbd.sock"
}

report_failure () {
  local cmd=${1%%$'\n'*} i=0 frame stack=""
  while frame=$(caller $i); do
    set -- $frame
    [ "$2" = run_case ] && break
    stack+="${stack:+ <- }$2 (${3##*/}:$1)"
    i=$((i + 1))
  done
  echo "  FAILED: $cmd" >&2
  echo "    in $stack" >&2
}

run_case () {
  local name=$1 rc; shift
  echo "=== $name"
  # Not inside `if`: there bash would ignore set -e in the subshell.
  ( set -eE
    trap 'report_failure "$BASH_COMMAND"' ERR
    "$@" )
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "--- ok: $name"
    PASSED=$((PASSED + 1))
  else
    echo "--- FAIL: $name (status $rc)" >&2
    FAILED+=("$name")
  fi
  stop_servers
}

finish () {
  echo
  echo "$(basename "$0"): $PASSED passed, ${#FAILED[@]} failed"
  if [ ${#FAILED[@]} -gt 0 ]; then
    printf '  failed: %s\n' "${FAILED[@]}" >&2
    exit 1
  fi
  exit 0
}
