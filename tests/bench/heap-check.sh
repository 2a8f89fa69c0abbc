#!/usr/bin/env bash
# tests/bench/heap-check.sh - issue 5's "no heap allocation per IO" check on
# its own: nbdaio.so (and, for reference, fio's built-in nbd engine) under
# valgrind memcheck for a 10k-IO and a 100k-IO 4k randread QD32 run against
# a private nbdkit; PASS when the allocation counts differ by fewer than 10
# once fio's own timer-driven ETA buffer is taken out (bench.py explains).
# Extra arguments go to bench.sh, e.g. --heap-ios=10000,100000 --out=DIR.
exec bash "$(dirname "$0")/bench.sh" --heap-check "$@"
