# tests/interop/root.sh - sourced by the scripts that run Debian trixie's
# servers and clients (test-trixie.sh, tests/check/test-xhdr.sh,
# tests/bench/bench.sh): the one definition of where the root is and how
# its programs run.
#   R            the root: $NBDAIO_TRIXIE_ROOT, or /var/cache/nbdaio/trixie
#   IN_ROOT      "${IN_ROOT[@]}" CMD...: run a program of the root with a
#                clean environment (chroot execs it: $! of a background one
#                is the program's own pid)
#   need_root    build the root when it is missing (make-root.sh), or exit
#                77 (skipped, never passed) when it cannot be built here
#   start_nbd_server_rw DIR INSIDE SIZE [RUNNER...]: nbd-server, run by
#                RUNNER (IN_ROOT, or nothing for the host's), exporting
#                [rw] (flush, FUA, trim) on DIR/rw.img of SIZE, with its
#                socket, config and pid file in DIR, which the server sees
#                as INSIDE; tracked for stop_servers; sets URI
R=${NBDAIO_TRIXIE_ROOT:-/var/cache/nbdaio/trixie}
IN_ROOT=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
         chroot "$R")
TRIXIE_MAKE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/make-root.sh

need_root () {
  bash "$TRIXIE_MAKE_ROOT" "$R"
  case $? in
    0) ;;
    77) skip "no trixie root (see above)" ;;
    *) echo "make-root.sh failed" >&2; exit 1 ;;
  esac
}

start_nbd_server_rw () {
  local dir=$1 in=$2 size=$3
  shift 3
  truncate -s "$size" "$dir/rw.img"
  # nbd-server daemonizes; port 0 would mean inetd mode, so a real port
  cat > "$dir/nbd.conf" <<CONF
[generic]
port = $(free_port)
listenaddr = 127.0.0.1
unixsock = $in/nbd.sock
duallisten = true
[rw]
exportname = $in/rw.img
flush = true
fua = true
trim = true
CONF
  rm -f "$dir/nbd.pid" "$dir/nbd.sock"
  timeout 20 "$@" nbd-server -C "$in/nbd.conf" -p "$in/nbd.pid"
  wait_until 20 test -s "$dir/nbd.pid"
  track "$(cat "$dir/nbd.pid")"
  wait_until 20 test -S "$dir/nbd.sock"
  URI="nbd+unix:///rw?socket=$dir/nbd.sock"
}
