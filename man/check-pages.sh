#!/usr/bin/env bash
# man/check-pages.sh MAP MANDIR PAGE... - the manual pages are complete and
# clean:
#  - every symbol MAP (core/libnbdaio.map) exports has a man3 page in
#    MANDIR, its own or a ".so" link to the page of its group;
#  - a ".so" link points to a page of MANDIR that is not itself a link;
#  - every page (MANDIR's *.3 and *.7, and each PAGE given) renders with
#    groff -ww -man without a warning or an error, for groff's default
#    device and for a terminal (-Tutf8, as man shows it);
#  - every "name(N)" a page refers to (.BR name (N), .RB ( name (N)) that
#    names one of ours (nbdaio*) is a page of MANDIR or one of the PAGEs;
#  - every page's NAME line says in a few words what it describes: after
#    "\-", 2 words or more, at most 65 characters, parentheses balanced (the
#    man3 pages take it from the first sentence of the call's comment in
#    nbdaio.h: see summary in gen-man.py).
set -euo pipefail
shopt -s nullglob
[ $# -ge 2 ] || { echo "usage: $0 MAP MANDIR [PAGE...]" >&2; exit 2; }
map=$1 mandir=$2
shift 2
fails=0
fail () { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# the symbols the map lists, one a line (the symbols test checks that
# they are exactly nbdaio.h's calls and the library's exports)
symbols=$(sed -n 's/^[[:space:]]*\(nbdaio_[a-z0-9_]*\);.*/\1/p' "$map" |
  sort -u)
[ -n "$symbols" ] || { echo "FAIL: no symbols in $map" >&2; exit 1; }

pages=("$mandir"/*.3 "$mandir"/*.7 "$@")
declare -A have
for p in "${pages[@]}"; do have[$(basename "$p")]=1; done

# the NAME line: "name[, name...] \- what it is"
check_name_line () {
  local what
  what=$(sed -n '/^\.SH NAME/{n;p;q}' "$1" | sed -n 's/^.* \\- //p')
  local opened=${what//[^(]/} closed=${what//[^)]/}
  if [ -z "$what" ] || [ "$(wc -w <<<"$what")" -lt 2 ] ||
     [ ${#what} -gt 65 ] || [ ${#opened} -ne ${#closed} ]; then
    fail "$(basename "$1"): NAME line '$what' is not a short description" \
      "(2 words or more, at most 65 characters, parentheses balanced)"
  fi
}

nsym=0
for s in $symbols; do
  nsym=$((nsym + 1))
  [ -f "$mandir/$s.3" ] || fail "$s (exported by $map) has no page $s.3"
done

nrender=0 nlink=0
for p in "${pages[@]}"; do
  [ -f "$p" ] || { fail "$p does not exist"; continue; }
  target=$(sed -n '1s/^\.so man[0-9]\/\(.*\)$/\1/p' "$p")
  if [ -n "$target" ]; then
    nlink=$((nlink + 1))
    if [ ! -f "$mandir/$target" ]; then
      fail "$(basename "$p") links to $target, which does not exist"
    elif head -n 1 "$mandir/$target" | grep -q '^\.so '; then
      fail "$(basename "$p") links to $target, itself a link"
    fi
    continue
  fi
  nrender=$((nrender + 1))
  check_name_line "$p"
  # -z: groff's default (typesetter) device; -Tutf8: what man(1) shows
  for dev in '' -Tutf8; do
    if ! out=$(groff -ww -man $dev -z "$p" 2>&1) || [ -n "$out" ]; then
      fail "$(basename "$p") does not render cleanly (groff -ww -man $dev -z):"
      printf '%s\n' "$out" | sed 's/^/    /' >&2
    fi
  done
  # ".BR name (N)" and ".RB ( name (N)", as name.N
  refs=$(sed -e 's/\\-/-/g' "$p" | sed -n 's/^\.R\{0,1\}BR\{0,1\} \(( \)\{0,1\}'\
'\(nbdaio[A-Za-z0-9_.-]*\) (\([0-9]\)).*/\2.\3/p' | sort -u)
  for ref in $refs; do
    [ -n "${have[$ref]:-}" ] ||
      fail "$(basename "$p") refers to ${ref%.*}(${ref##*.}), which has" \
        "no page"
  done
done

if [ "$fails" -gt 0 ]; then
  echo "$fails problem(s) in the manual pages" >&2
  exit 1
fi
echo "$nsym exported symbols each have a page; $nrender pages render" \
  "cleanly, $nlink .so links resolve"
