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
#    nbdaio.h: see summary in gen-man.py);
#  - a call's NAME line says what the call does, not what it is: no noun
#    phrase ("the size of ...", "whether ...": gen-man.py writes "return
#    the size of ..." for a getter; a setter's comment opens with "Set");
#  - every page of a call says what it returns and how it fails in its own
#    sections: no RETURN VALUE "As DESCRIPTION says", no ERRORS "The
#    description names" (gen-man.py's fallbacks when the comment gives no
#    "Returns" sentence or only names an errno), and a RETURN VALUE naming
#    an errno value comes with an ERRORS section explaining it;
#  - with --options FILE (fio-plugin/options.c) before MAP: every option
#    name of FILE's job_options table appears in the nbdaio-fio.7 page;
#  - with --help-of PROGRAM PAGE (any number, before MAP): every option
#    PROGRAM --help lists ("  --name", "  -x, --name") is on PAGE, in a
#    font macro line (.B, .BI, .BR: where man pages name options).
set -euo pipefail
shopt -s nullglob
options= helpof=()
while [ $# -ge 3 ]; do
  case $1 in
    --options) options=$2; shift 2 ;;
    --help-of) helpof+=("$2" "$3"); shift 3 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || {
  echo "usage: $0 [--options OPTIONS.C] [--help-of PROGRAM PAGE]..." \
    "MAP MANDIR [PAGE...]" >&2; exit 2; }
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

# a call's NAME line starts with a verb (see the list above)
check_name_verb () {
  local what
  what=$(sed -n '/^\.SH NAME/{n;p;q}' "$1" | sed -n 's/^.* \\- //p')
  if grep -qiE '^(the|a|an|whether|how|number|which|what)\b' <<<"$what"; then
    fail "$(basename "$1"): NAME line '$what' is a noun phrase: say what" \
      "the call does (\"return the ...\", \"set whether ...\")"
  fi
}

# RETURN VALUE and ERRORS of a call's page (see the list above)
check_return_errors () {
  local name rv errs
  name=$(basename "$1")
  if grep -q 'As DESCRIPTION says' "$1"; then
    fail "$name: RETURN VALUE says only 'As DESCRIPTION says' (give the" \
      "call's comment in nbdaio.h a \"Returns\" sentence)"
  fi
  if grep -q 'The description names' "$1"; then
    fail "$name: ERRORS only names errno values, without their reasons"
  fi
  rv=$(sed -n '/^\.SH RETURN VALUE/,/^\.SH/p' "$1" | grep -v '^\.SH')
  errs=$(grep -ow 'E[A-Z0-9]*[A-Z]' <<<"$rv" | sort -u |
    grep -xF -f <(printf '%s\n' $errnos) | tr '\n' ' ' || true)
  if [ -n "$errs" ] && ! grep -q '^\.SH ERRORS' "$1"; then
    fail "$name: RETURN VALUE names $errs but the page has no ERRORS" \
      "section (give the comment an \"Errors: EXXX (why)\" sentence)"
  fi
}

# the errno names (EINVAL, ...) there are, as gen-man.py knows them
errnos=$(python3 -c 'import errno; print(*errno.errorcode.values())')

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
  case $p in */man3/nbdaio_*.3) check_name_verb "$p"
                                check_return_errors "$p" ;; esac
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

# the fio engine's options: each name of options.c's job_options table
# (".name = \"x\"" entries and SETTING_OPTION (..., "x", ...)) is on the page
nopt=0
if [ -n "$options" ]; then
  fiopage=
  for p in "${pages[@]}"; do
    case $p in */nbdaio-fio.7) fiopage=$p ;; esac
  done
  names=$(sed -n '/job_options\[\]/,/\.name = NULL/p' "$options" |
    sed -n -e 's/.*\.name = "\([a-z_]*\)".*/\1/p' \
      -e 's/.*SETTING_OPTION ([A-Za-z_]*, *"\([a-z_]*\)".*/\1/p')
  if [ -z "$fiopage" ] || [ -z "$names" ]; then
    fail "no nbdaio-fio.7 among the pages, or no options read from $options"
  fi
  for n in $names; do
    nopt=$((nopt + 1))
    grep -q "^\.BI $n= " "$fiopage" ||
      fail "option $n ($options) is not on $(basename "$fiopage")"
  done
fi

# the programs' options, as their --help lists them, on their man1 pages
nhelp=0
for ((i = 0; i < ${#helpof[@]}; i += 2)); do
  prog=${helpof[i]} page=${helpof[i + 1]}
  listed=$("$prog" --help 2>&1 | sed -n \
    's/^  \(-[a-z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p' | sort -u || true)
  [ -n "$listed" ] || fail "$prog --help lists no option"
  for o in $listed; do
    nhelp=$((nhelp + 1))
    grep '^\.[BI]' "$page" | grep -qF -- "${o//-/\\-}" ||
      fail "$(basename "$page"): no $o, which $(basename "$prog") --help" \
        "lists"
  done
done

if [ "$fails" -gt 0 ]; then
  echo "$fails problem(s) in the manual pages" >&2
  exit 1
fi
echo "$nsym exported symbols each have a page; $nrender pages render" \
  "cleanly, $nlink .so links resolve; $nopt fio options on nbdaio-fio.7," \
  "$nhelp --help options on the man1 pages"
