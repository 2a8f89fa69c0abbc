#!/usr/bin/env bash
# tests/bench/uring-compare.sh - the io_uring transport beside the socket
# transport (issue 15 item 3): fio with nbdaio.so on a throwaway nbdkit
# memory export (1 GiB), over a unix socket and over TCP loopback; 4k
# randread at QD32 and QD1 and 1M sequential read at QD8.  nbdkit is pinned
# to CPU 1 and fio to CPU 0; the two transports alternate within each rep,
# and the medians of REPS reps are printed with the client CPU per IO
# ((fio usr + sys) x runtime / IOs).  Not part of the test suite.
#
# usage: uring-compare.sh PATH/TO/nbdaio.so [REPS (3)] [SECONDS (4)]
# The prototype it measured (the setting transport=io_uring) was left out
# of the library: see README, "io_uring transport", for the numbers and
# why.  The .so must come from a build that has that setting; with any
# other, fio stops at once on "unknown setting 'transport'".
set -euo pipefail

SO=$(realpath "${1:?usage: $0 PATH/TO/nbdaio.so [REPS] [SECONDS]}")
REPS=${2:-3}
SECS=${3:-4}
PORT=${URING_COMPARE_PORT:-10879}
T=$(mktemp -d /tmp/uring-compare.XXXXXX)
trap 'for p in "$T"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$T"' EXIT

for c in fio nbdkit taskset python3; do
  command -v "$c" >/dev/null || { echo "$0: $c missing" >&2; exit 1; }
done

taskset -c 1 nbdkit -U "$T/nbd.sock" -P "$T/unix.pid" memory 1G
taskset -c 1 nbdkit -i 127.0.0.1 -p "$PORT" -P "$T/tcp.pid" memory 1G
for _ in $(seq 50); do
  [ -S "$T/nbd.sock" ] && [ -s "$T/tcp.pid" ] && break
  sleep 0.1
done

# one profile per network and transport (the plugin's nbd_profile)
for tr in socket io_uring; do
  printf '[unix-%s]\nsocket = %s\ntransport = %s\n' "$tr" "$T/nbd.sock" "$tr"
  printf '[tcp-%s]\nhost = 127.0.0.1\nport = %s\ntransport = %s\n' \
    "$tr" "$PORT" "$tr"
done > "$T/profiles.ini"

declare -A CASES=(
  [4k-qd32]="--rw=randread --bs=4k --iodepth=32"
  [4k-qd1]="--rw=randread --bs=4k --iodepth=1"
  [1m-qd8]="--rw=read --bs=1m --iodepth=8"
)

run () {                        # run NET CASE TRANSPORT REP
  local out="$T/$1-$2-$3-$4.json"
  # shellcheck disable=SC2086
  taskset -c 0 fio --output-format=json --name=b \
    --ioengine="external:$SO" --nbd_profile="$1-$3" \
    --config="$T/profiles.ini" ${CASES[$2]} --size=1g --time_based=1 \
    --runtime="$SECS" --ramp_time=1 > "$out"
}

for net in unix tcp; do
  for case in 4k-qd32 4k-qd1 1m-qd8; do
    for rep in $(seq "$REPS"); do
      for tr in socket io_uring; do
        run "$net" "$case" "$tr" "$rep"
      done
    done
  done
done

python3 - "$T" <<'EOF'
import glob, json, os, statistics, sys
t = sys.argv[1]
res = {}
for f in glob.glob(os.path.join(t, '*.json')):
    parts = os.path.basename(f)[:-5].split('-')   # net-size-qd-transport-rep
    net, case, tr = parts[0], parts[1] + '-' + parts[2], parts[3]
    with open(f) as fh:
        text = fh.read()
    j = json.loads(text[text.index('{'):])['jobs'][0]
    ios = j['read']['total_ios']
    cpu_us = (j['usr_cpu'] + j['sys_cpu']) / 100 * j['job_runtime'] * 1000
    res.setdefault((net, case, tr), []).append((j['read']['iops'], cpu_us / ios))
print('%-5s %-8s %12s %12s %6s %12s %12s %6s' % ('net', 'case', 'IOPS sock',
      'IOPS uring', 'ratio', 'us/IO sock', 'us/IO uring', 'ratio'))
for net in ('unix', 'tcp'):
    for case in ('4k-qd32', '4k-qd1', '1m-qd8'):
        s, u = res[(net, case, 'socket')], res[(net, case, 'io_uring')]
        si = statistics.median(x[0] for x in s); ui = statistics.median(x[0] for x in u)
        sc = statistics.median(x[1] for x in s); uc = statistics.median(x[1] for x in u)
        print('%-5s %-8s %12.0f %12.0f %6.2f %12.2f %12.2f %6.2f' %
              (net, case, si, ui, ui / si, sc, uc, uc / sc))
EOF
