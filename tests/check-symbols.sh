#!/usr/bin/env bash
# tests/check-symbols.sh LIB - the shared library exports nbdaio_* and
# nothing else (fio has libnbd loaded: an exported nbd_* would bind to it).
set -euo pipefail
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
[ -n "$syms" ] || { echo "no exported symbols in $lib" >&2; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^nbdaio_' | grep -v '^NBDAIO_' || true)
if [ -n "$bad" ]; then
  echo "$lib exports symbols outside nbdaio_*:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
echo "$lib: $(printf '%s\n' "$syms" | grep -c '^nbdaio_') nbdaio_* symbols, nothing else"
