#!/usr/bin/env bash
# tests/bench/before-after.sh - two builds of nbdaio.so against each other
# (a refactoring's "before and after"), with fio's built-in nbd engine as
# the fixed reference, alternating run by run on one nbdkit memory export
# (nbdkit pinned to CPU 1, fio to CPU 0), and the medians side by side.
#
#   bash tests/bench/before-after.sh OLD.so NEW.so [REPS [RUNTIME-S]]
#
# Build each plugin as a release build (meson setup B -Dbuildtype=release
# -Db_ndebug=true -Dfio_plugin=enabled; a git worktree for the old commit).
# Prints, per case, the median IOPS of each engine, new/old and
# new/built-in, and the client CPU per IO (usr+sys, microseconds).
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
old=$(realpath "$1") new=$(realpath "$2") reps=${3:-5} runtime=${4:-4}
for p in "$old" "$new"; do
  [ -f "$p" ] || { echo "before-after.sh: no plugin $p" >&2; exit 2; }
done
for prog in fio nbdkit taskset python3; do
  command -v $prog >/dev/null || {
    echo "before-after.sh: $prog is not installed" >&2; exit 2; }
done

dir=$(mktemp -d /tmp/nbdaio-ab.XXXXXX)
sock=$dir/nbd.sock
taskset -c 1 nbdkit -f -U "$sock" memory 1G &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
uri="nbd+unix:///?socket=$sock"

# one ENGINE RW BS QD: "IOPS CPU-US-PER-IO" of one timed fio run
one () {
  local engine=$1
  case $engine in
    builtin) engine=nbd ;;
    old) engine=external:$old ;;
    new) engine=external:$new ;;
  esac
  taskset -c 0 fio --name=ab --ioengine="$engine" --uri="$uri" --rw="$2" \
    --bs="$3" --iodepth="$4" --size=1G --time_based --runtime="$runtime" \
    --output-format=json 2>/dev/null | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.index("{"):])["jobs"][0]
iops = j["read"]["iops"] + j["write"]["iops"]
print(int(iops), (j["usr_cpu"] + j["sys_cpu"]) * 1e4 / max(iops, 1))'
}

for c in "randread 4k 1" "randread 4k 32" "randwrite 4k 32"; do
  read -r rw bs qd <<< "$c"
  for _ in $(seq "$reps"); do
    for e in builtin old new; do
      echo "$rw-$bs-qd$qd $e $(one $e "$rw" "$bs" "$qd")"
    done
  done
done > "$dir/runs"

python3 - "$dir/runs" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    case, engine, iops, cpu = line.split()
    runs[case, engine].append((int(iops), float(cpu)))
def med(case, engine, k):
    return statistics.median(r[k] for r in runs[case, engine])
print(f"{'case':18} {'built-in':>9} {'old':>9} {'new':>9} {'new/old':>8} "
      f"{'new/built-in':>12} {'CPU/IO old':>10} {'new':>6}")
for case in dict.fromkeys(c for c, _ in runs):
    b, o, n = (med(case, e, 0) for e in ("builtin", "old", "new"))
    print(f"{case:18} {b:9.0f} {o:9.0f} {n:9.0f} {n / o:8.3f} {n / b:12.2f} "
          f"{med(case, 'old', 1):10.2f} {med(case, 'new', 1):6.2f}")
EOF
