# tests/hostile/server-lib.sh - serving one mode of hostile-server.py at a
# time, for the scripts that drive a client through the modes
# (run-hostile.sh, tests/check/test-hostile.sh).  Source it after setting
# SERVER (the script), T (a scratch directory, removed on exit) and,
# optionally, PYTHON (the interpreter, default python3).
# shellcheck shell=bash

# the interpreter itself, not a wrapper (a pyenv shim costs 0.2 s a start)
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)') || exit 1
SERVER_PID=

stop_server () {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
  rm -f "$T/sock"
}
trap 'stop_server; rm -rf "$T"' EXIT
trap 'echo "$0: interrupted" >&2; exit 130' INT TERM HUP

# start_server MODE: serve MODE on $T/sock (the socket appears once it
# accepts).
start_server () {
  "$PYTHON" "$SERVER" --mode "$1" "$T/sock" 2> "$T/server.err" &
  SERVER_PID=$!
  for _ in $(seq 500); do
    [ -S "$T/sock" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.01
  done
  echo "hostile-server.py --mode $1 did not start:" >&2
  cat "$T/server.err" >&2
  return 1
}
