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
#   nbd_server_rw_conf PORT SOCK IMG: an nbd-server configuration with one
#                read-write export [rw] on IMG (flush, FUA, trim), listening
#                on 127.0.0.1:PORT and the unix socket SOCK
R=${NBDAIO_TRIXIE_ROOT:-/var/cache/nbdaio/trixie}
IN_ROOT=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
         chroot "$R")
TRIXIE_MAKE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/make-root.sh

need_root () {
  bash "$TRIXIE_MAKE_ROOT" "$R"
  case $? in
    0) ;;
    77) echo "SKIP: no trixie root (see above)"; exit 77 ;;
    *) echo "make-root.sh failed" >&2; exit 1 ;;
  esac
}

nbd_server_rw_conf () {
  cat <<CONF
[generic]
port = $1
listenaddr = 127.0.0.1
unixsock = $2
duallisten = true
[rw]
exportname = $3
flush = true
fua = true
trim = true
CONF
}
