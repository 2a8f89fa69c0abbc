#!/bin/bash
# tests/fio/test-sizes.sh - fio's ways of saying how much of the export a
# job covers, against a 16 MiB nbdkit memory export behind the log filter:
# each job must write exactly the byte range fio promises (checked request
# by request in the server's log), never past the end of the export:
#  - fill_device=1 (fio's size "everything", -1), sequential and random:
#    the whole export, each byte once, and nothing more;
#  - size=100%, size=50% with offset=25%, offset_increment=25% with
#    numjobs=3, filesize=8m, io_size (more I/O than range: the range again
#    and again), number_ios with an offset.
# The refusals (ranges past the end, nrfiles) are in test-refusals.sh.
#
# usage: test-sizes.sh PATH/TO/nbdaio.so
source "$(dirname "$0")/lib.sh"
fio_test_init "$@"

EXPORT=$(( 16 << 20 ))

# written OUT LO HI TOTAL COUNT FULL [FIO-ARGS...]: run a write job OUT on
# $URI and check the writes the server logged for it: all inside [LO, HI),
# TOTAL bytes in COUNT requests (COUNT - : any), and with FULL=1 together
# covering [LO, HI) without a gap.
written () {
  local out=$1 lo=$2 hi=$3 total=$4 count=$5 full=$6 mark
  shift 6
  mark=$(wc -l < "$LOG")
  fio_nbd "$out" "$@"
  expect_ok "$out"
  python3 - "$LOG" "$mark" "$out" "$lo" "$hi" "$total" "$count" "$full" <<'EOF'
import re, sys
log, mark, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lo, hi, total = (int(v) for v in sys.argv[4:7])
count, full = sys.argv[7], sys.argv[8] == '1'
w = []
for line in open(log).readlines()[mark:]:
    m = re.search(r' Write id=\d+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)', line)
    if m:
        w.append((int(m.group(1), 16), int(m.group(2), 16)))
def fail(msg):
    sys.exit('%s: %s' % (out, msg))
if not w:
    fail('the server saw no writes')
first, end = min(o for o, _ in w), max(o + n for o, n in w)
if first < lo or end > hi:
    fail('writes cover [%d, %d), outside [%d, %d)' % (first, end, lo, hi))
if sum(n for _, n in w) != total:
    fail('%d bytes written, want %d' % (sum(n for _, n in w), total))
if count != '-' and len(w) != int(count):
    fail('%d writes, want %s' % (len(w), count))
if full:
    at = lo
    for o, n in sorted(w):
        if o > at:
            fail('nothing written in [%d, %d)' % (at, o))
        at = max(at, o + n)
    if at != hi:
        fail('writes end at %d, want %d' % (at, hi))
print('  %s: %d writes, %d bytes in [%d, %d)' % (out, len(w), sum(n for _, n in w), first, end))
EOF
}

fill_device () {
  LOG=$T/fill.log
  start_nbdkit fill --filter=log memory 16M logfile="$LOG"
  # sequential: one pass to the end, each byte once
  written fill-seq 0 $EXPORT $EXPORT 256 1 \
    --rw=write --bs=64k --iodepth=8 --fill_device=1
  # random: fio's random map hits every block once
  written fill-rand 0 $EXPORT $EXPORT 256 1 \
    --rw=randwrite --bs=64k --iodepth=16 --fill_device=1
  fio_json fill-rand "
assert jobs[0]['write']['io_bytes'] == $EXPORT, 'fio wrote %d bytes' % jobs[0]['write']['io_bytes']"
  # a later offset: from there to the end
  written fill-offset $(( 4 << 20 )) $EXPORT $(( 12 << 20 )) 192 1 \
    --rw=write --bs=64k --offset=4m --fill_device=1
}

size_forms () {
  local m=$(( 1 << 20 ))
  LOG=$T/sizes.log
  start_nbdkit sizes --filter=log memory 16M logfile="$LOG"
  written size-100pct 0 $EXPORT $EXPORT 256 1 --rw=write --bs=64k --size=100%
  written size-50pct-offset-25pct $(( 4 * m )) $(( 12 * m )) $(( 8 * m )) 128 1 \
    --rw=write --bs=64k --size=50% --offset=25%
  # three subjobs at 0, 4m and 8m, 4m each
  written offset-increment 0 $(( 12 * m )) $(( 12 * m )) 192 1 \
    --rw=write --bs=64k --size=4m --numjobs=3 --offset_increment=25%
  written filesize 0 $(( 8 * m )) $(( 8 * m )) 128 1 \
    --rw=write --bs=64k --filesize=8m
  # io_size: 40m of I/O over the 8m range, five passes
  written io-size 0 $(( 8 * m )) $(( 40 * m )) 640 1 \
    --rw=write --bs=64k --size=8m --io_size=40m
  written number-ios $(( 8 * m )) $EXPORT $(( 100 * 65536 )) 100 0 \
    --rw=randwrite --bs=64k --offset=8m --number_ios=100
}

run_case "fill_device=1 writes the whole export, nothing more" fill_device
run_case "size%, offset%, offset_increment, filesize, io_size, number_ios" size_forms
finish
