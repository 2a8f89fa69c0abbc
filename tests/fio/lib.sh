# tests/fio/lib.sh - shared helpers for the fio integration scripts
# (sourced, not run).
#
# A script does:   fio_test_init "$@"
#                  case_ NAME FUNCTION      (as often as needed)
#                  fio_test_done
#
# Each case function runs in its own subshell with `set -e` and an ERR trap
# that prints the failing line; whatever servers it started (start_nbdkit,
# start_qemu_nbd, start_nbd_server, fio --server) are stopped when the case
# ends, and everything left is stopped and the temp dir removed on exit.

set -euo pipefail

FIO_TIMEOUT=${FIO_TIMEOUT:-60}      # hard limit for one fio run (seconds)
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ROOT=$(cd "$LIB_DIR/../.." && pwd)

fio_test_init () {
  if [ $# -ne 1 ]; then
    echo "usage: $0 PATH/TO/nbdaio.so" >&2
    exit 2
  fi
  SO=$(realpath "$1")
  [ -f "$SO" ] || { echo "$0: $SO: no such plugin" >&2; exit 2; }
  for prog in fio nbdkit python3 timeout; do
    command -v "$prog" >/dev/null || { echo "$0: $prog is not installed" >&2; exit 77; }
  done
  T=$(mktemp -d /tmp/nbdaio-fio.XXXXXX)
  : > "$T/servers"
  N_PASS=0
  FAILED_CASES=()
  trap 'stop_servers; rm -rf "$T"' EXIT
  trap 'echo "$0: interrupted" >&2; exit 130' INT TERM HUP
}

# ---------------------------------------------------------------- servers

# Remember a server pid; it is killed at the end of the current case.
track () { echo "$1" >> "$T/servers"; }

is_running () {
  [ -e "/proc/$1" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

stop_servers () {
  local pid pids
  pids=$(cat "$T/servers" 2>/dev/null) || return 0
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    for _ in $(seq 30); do is_running "$pid" || break; sleep 0.1; done
    if is_running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  : > "$T/servers"
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for () {
  local limit=$(( $1 * 10 )) i
  shift
  for (( i = 0; i < limit; i++ )); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for: $*" >&2
  return 1
}

free_port () {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_nbdkit NAME NBDKIT-ARGS...: nbdkit in the foreground (-f) on the
# unix socket $T/NAME.sock; sets URI, and NBDKIT_PID.  Its stderr goes to
# $T/NAME.nbdkit.err.
start_nbdkit () {
  local name=$1
  shift
  rm -f "$T/$name.sock" "$T/$name.pid"
  timeout 300 nbdkit -f -U "$T/$name.sock" -P "$T/$name.pid" "$@" \
    2> "$T/$name.nbdkit.err" &
  disown $!                   # no job notices when a test kills it
  wait_for 20 test -s "$T/$name.pid" || { cat "$T/$name.nbdkit.err" >&2; return 1; }
  wait_for 20 test -S "$T/$name.sock"
  NBDKIT_PID=$(cat "$T/$name.pid")
  track "$NBDKIT_PID"
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# start_qemu_nbd NAME SIZE [QEMU-NBD-ARGS...]: qemu-nbd serving a raw file
# of SIZE, persistent (-t) so that fio's setup connection and the job's
# connections all get in.
start_qemu_nbd () {
  local name=$1 size=$2
  shift 2
  truncate -s "$size" "$T/$name.img"
  rm -f "$T/$name.sock"
  timeout 300 qemu-nbd -t -f raw -k "$T/$name.sock" "$@" "$T/$name.img" \
    2> "$T/$name.qemu.err" &
  track $!
  wait_for 20 test -S "$T/$name.sock"
  URI="nbd+unix:///?socket=$T/$name.sock"
}

# start_nbd_server NAME SIZE [EXTRA-EXPORT-LINES]: nbd-server on a free TCP
# port of 127.0.0.1 with one export NAME on a file of SIZE; it daemonizes and
# leaves its pid in the -p file.
start_nbd_server () {
  local name=$1 size=$2 extra=${3:-} port
  port=$(free_port)
  truncate -s "$size" "$T/$name.img"
  cat > "$T/$name.conf" <<EOF
[generic]
listenaddr = 127.0.0.1
port = $port
allowlist = false
[$name]
exportname = $T/$name.img
flush = true
trim = true
$extra
EOF
  rm -f "$T/$name.nbd.pid"
  timeout 20 nbd-server -C "$T/$name.conf" -p "$T/$name.nbd.pid"
  wait_for 20 test -s "$T/$name.nbd.pid"
  track "$(cat "$T/$name.nbd.pid")"
  wait_for 20 port_open "$port"
  URI="nbd://127.0.0.1:$port/$name"
}

# ---------------------------------------------------------------- fio

# run_fio OUT FIO-ARGS...: fio with JSON output into OUT.json, stderr into
# OUT.err, run in $T; sets FIO_RC and FIO_MS (wall time).  Never fails by
# itself.
run_fio () {
  local out=$1 start
  shift
  start=$(date +%s%N)
  FIO_RC=0
  # in $T: fio leaves files such as *-verify.state in its working directory
  (cd "$T" && exec timeout "$FIO_TIMEOUT" fio --output-format=json "$@") \
    > "$T/$out.json" 2> "$T/$out.err" || FIO_RC=$?
  FIO_MS=$(( ($(date +%s%N) - start) / 1000000 ))
  if [ "$FIO_RC" -eq 124 ]; then
    echo "fio ($out) hit the ${FIO_TIMEOUT}s timeout" >&2
  fi
}

# fio_nbd OUT JOB-ARGS...: run_fio on one job named OUT that uses the
# plugin on $URI (engine options must follow --ioengine, so they go in
# JOB-ARGS).
fio_nbd () {
  local out=$1
  shift
  run_fio "$out" --name="$out" --ioengine="external:$SO" --uri="$URI" "$@"
}

# fio_json OUT PYTHON: run PYTHON with `d` (the parsed JSON of OUT), `jobs`
# (its per-job list, or client_stats for fio --client) and `out` (the
# name); assertion failures print the message and fail.  fio may print
# plain lines before the JSON document, which are skipped.
fio_json () {
  local out=$1 code=$2
  python3 - "$T/$out.json" "$out" <<EOF
import json, sys
text = open(sys.argv[1]).read()
start = 0 if text.startswith('{') else text.find('\n{') + 1
if start == 0 and not text.startswith('{'):
    sys.exit("%s: no JSON document in fio's output" % sys.argv[2])
d = json.JSONDecoder().raw_decode(text[start:])[0]
jobs = d.get('jobs') or d.get('client_stats') or []
out = sys.argv[2]
def job_total(ddir, key='io_bytes'):
    return sum(j[ddir][key] for j in jobs)
try:
$(printf '%s\n' "$code" | sed 's/^/    /')
except AssertionError as e:
    sys.exit("%s: assertion failed: %s" % (out, e))
EOF
}

# expect_ok OUT: fio exited 0 and every job reports error 0.
expect_ok () {
  local out=$1
  if [ "$FIO_RC" -ne 0 ]; then
    echo "fio ($out) exited with $FIO_RC; stderr:" >&2
    head -20 "$T/$out.err" >&2
    return 1
  fi
  fio_json "$out" "assert jobs, 'no jobs in the output'
for j in jobs:
    assert j['error'] == 0, 'job %s: error %d' % (j['jobname'], j['error'])"
}

# expect_refusal OUT REGEX: fio exited non-zero and its stderr (or, for
# fio --client, where the server's messages arrive, stdout) matches REGEX
# (extended, case-insensitive).
expect_refusal () {
  local out=$1 re=$2
  if [ "$FIO_RC" -eq 0 ]; then
    echo "fio ($out) succeeded, a refusal was expected" >&2
    return 1
  fi
  if ! grep -qiE -- "$re" "$T/$out.err" "$T/$out.json"; then
    echo "fio ($out) failed (rc $FIO_RC) but stderr does not match /$re/:" >&2
    head -20 "$T/$out.err" >&2
    return 1
  fi
}

# count_log FILE REGEX: number of lines matching (0 if none).
count_log () { grep -cE -- "$2" "$1" || true; }

fail () { echo "FAILED: $*" >&2; exit 1; }

# ---------------------------------------------------------------- cases

# ERR trap of a case: the failing command's first line and where it was.
report_err () {
  local i where=""
  for (( i = 1; i < ${#FUNCNAME[@]} - 1; i++ )); do
    where+=" ${FUNCNAME[i]}:${BASH_LINENO[i-1]}"
  done
  echo "  failed: ${2%%$'\n'*} (line $1;$where)" >&2
}

case_ () {
  local name=$1 func=$2 rc=0 start
  start=$(date +%s)
  echo "--- $name"
  set +e
  (
    set -eE
    trap 'report_err "$LINENO" "$BASH_COMMAND"' ERR
    "$func"
  )
  rc=$?
  set -e
  stop_servers
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name ($(( $(date +%s) - start ))s)"
    N_PASS=$(( N_PASS + 1 ))
  else
    echo "FAIL $name"
    FAILED_CASES+=("$name")
  fi
}

fio_test_done () {
  echo "$(basename "$0"): ${N_PASS} passed, ${#FAILED_CASES[@]} failed"
  if [ "${#FAILED_CASES[@]}" -gt 0 ]; then
    printf '  failed: %s\n' "${FAILED_CASES[@]}"
    exit 1
  fi
}
