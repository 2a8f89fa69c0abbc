#!/usr/bin/env bash
# tests/check-symbols.sh LIB HEADER MAP - the symbols of libnbdaio:
#  - the shared library LIB exports nbdaio_* and nothing else (fio has
#    libnbd loaded: an exported nbd_* would bind to it);
#  - the version script MAP lists its symbols by name (no glob in a global:
#    section), and they are exactly the calls HEADER declares NBDAIO_API;
#  - LIB exports exactly what MAP lists (a listed call is defined).
# tests/check-symbols.sh --plugin SO - the fio engine SO exports `ioengine`
# and nothing else (no nbd_*, no nbdaio_*: fio has libnbd loaded, and a
# program with libnbdaio loaded may run fio's engines).
set -euo pipefail
T=$(mktemp -d /tmp/nbdaio-symbols.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail () { echo "$*" >&2; exit 1; }

# exports LIB: the symbols LIB defines and exports, without their version
# ("@@NBDAIO_0.1"), sorted, into $T/lib
exports () {
  nm -D --defined-only "$1" |
    awk '$2 ~ /^[TDBRVWiu]$/ { sub(/@.*/, "", $3); print $3 }' |
    sort -u > "$T/lib"
  [ -s "$T/lib" ] || fail "no exported symbols in $1"
}

if [ "${1:-}" = --plugin ] && [ $# -eq 2 ]; then
  exports "$2"
  [ "$(cat "$T/lib")" = ioengine ] ||
    fail "$2 exports more than ioengine:" $(grep -vx ioengine "$T/lib")
  echo "$2: exports ioengine and nothing else"
  exit 0
fi
[ $# -eq 3 ] || { echo "usage: $0 LIB HEADER MAP | --plugin SO" >&2; exit 2; }
lib=$1 header=$2 map=$3

# differ WHAT A B: fail naming what is in one sorted list and not the other
differ () {
  local only_a only_b
  only_a=$(comm -23 "$2" "$3") only_b=$(comm -13 "$2" "$3")
  [ -z "$only_a$only_b" ] && return 0
  echo "$1:" >&2
  [ -z "$only_a" ] || echo "  only in $4:" $only_a >&2
  [ -z "$only_b" ] || echo "  only in $5:" $only_b >&2
  exit 1
}

exports "$lib"
bad=$(grep -v '^nbdaio_' "$T/lib" | grep -v '^NBDAIO_' || true)
[ -z "$bad" ] || fail "$lib exports symbols outside nbdaio_*:" $bad

# the calls of the header: the name before "(" in each NBDAIO_API
# declaration, comments and preprocessor lines left out
perl -0pe 's{/\*.*?\*/}{}gs; s{^\s*#.*$}{}mg' "$header" | tr '\n' ' ' |
  grep -oE 'NBDAIO_API[^;(]*\(' |
  sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/' |
  sort > "$T/header"
[ -s "$T/header" ] || fail "no NBDAIO_API declaration in $header"
dups=$(uniq -d "$T/header")
[ -z "$dups" ] || fail "$header declares twice:" $dups

# the names of the map's global: sections
perl -0pe 's{/\*.*?\*/}{}gs' "$map" |
  awk '/global:/ { g = 1; next } /local:|}/ { g = 0 } g' |
  tr -d ' \t' | tr ';' '\n' | grep -v '^$' | sort > "$T/map.all"
glob=$(grep '[*?[]' "$T/map.all" || true)
[ -z "$glob" ] || fail "$map exports by pattern, not by name:" $glob
dups=$(uniq -d "$T/map.all")
[ -z "$dups" ] || fail "$map lists twice:" $dups
sort -u "$T/map.all" > "$T/map"

differ "$map and the NBDAIO_API calls of $header differ" \
  "$T/map" "$T/header" "$map" "$header"
grep '^nbdaio_' "$T/lib" > "$T/lib.calls" || true
differ "$lib exports other symbols than $map lists" \
  "$T/lib.calls" "$T/map" "$lib" "$map"
echo "$lib: $(wc -l < "$T/lib.calls") nbdaio_* symbols, nothing else;" \
  "$map and $(basename "$header") list the same $(wc -l < "$T/map")"
