# tests/integration/lib.sh - what the scripts that drive roundtrip and the
# tools add to the test harness (tests/lib/servers.sh, sourced here): their
# arguments, running our programs with time limits, JSON assertions and
# independent data checks (sourced, not run).
#
# A script calls:  init "$@"; run_case NAME FUNCTION ...; finish

source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib/servers.sh"

init () {
  [ "$LIST_CASES" = 1 ] && return 0
  if [ $# -ne 3 ]; then
    echo "usage: $0 ROUNDTRIP NBDAIO-INFO NBDAIO-AIO-DEMO" >&2
    exit 2
  fi
  ROUNDTRIP=$(realpath "$1")
  INFO=$(realpath "$2")
  DEMO=$(realpath "$3")
  for p in "$ROUNDTRIP" "$INFO" "$DEMO"; do
    [ -x "$p" ] || { echo "$0: $p is not an executable" >&2; exit 2; }
  done
  test_init
}

# $NBDAIO_VALGRIND=1 runs roundtrip under valgrind memcheck: any memory
# error or leak fails the run (exit status 99).
RT_WRAP=()
if [ "${NBDAIO_VALGRIND:-0}" = 1 ]; then
  RT_WRAP=(valgrind -q --error-exitcode=99 --leak-check=full
           --errors-for-leak-kinds=definite,indirect)
fi

# Run one of our programs with a time limit, showing its command line.
rt () {
  echo "  + ${RT_WRAP[*]:+${RT_WRAP[*]} }roundtrip $*"
  timeout 300 "${RT_WRAP[@]}" "$ROUNDTRIP" "$@"
}

demo () {
  echo "  + nbdaio-aio-demo $*"
  timeout 120 "$DEMO" "$@"
}

# info URI OUT: nbdaio-info --json into OUT (must be valid JSON); the human
# form must work too and show the same size.
info () {
  echo "  + nbdaio-info --json $1"
  timeout 60 "$INFO" --json "$1" > "$2"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$2" || {
    echo "nbdaio-info --json printed invalid JSON:" >&2; cat "$2" >&2; return 1; }
  timeout 60 "$INFO" "$1" > "$2.txt"
  local size
  size=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["size"])' "$2")
  grep -Eq "^size: +$size\$" "$2.txt" || {
    echo "nbdaio-info human output lacks 'size: $size':" >&2; cat "$2.txt" >&2; return 1; }
}

# expect_json FILE KEY=JSONVALUE...: each key must hold exactly that value.
expect_json () {
  local file=$1; shift
  python3 - "$file" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for arg in sys.argv[2:]:
    key, _, want = arg.partition("=")
    want = json.loads(want)
    if key not in d:
        print(f"nbdaio-info --json: missing key {key}", file=sys.stderr)
        bad = 1
    elif d[key] != want or type(d[key]) != type(want):
        print(f"nbdaio-info --json: {key} = {d[key]!r}, expected {want!r}",
              file=sys.stderr)
        bad = 1
sys.exit(bad)
EOF
}

# same_data EXPECTED ACTUAL: ACTUAL starts with EXPECTED's bytes.
same_data () {
  local n
  n=$(stat -c %s "$1")
  [ "$n" -gt 0 ] || { echo "$1 is empty" >&2; return 1; }
  cmp -n "$n" "$1" "$2" || { echo "data differs: $1 vs $2" >&2; return 1; }
}

# nbdcopy_check URI EXPECTED: read the export with libnbd's nbdcopy and
# compare with what we meant to write.
nbdcopy_check () {
  echo "  + nbdcopy $1 | cmp $2"
  rm -f "$T/copy.bin"
  timeout 60 nbdcopy "$1" "$T/copy.bin"
  same_data "$2" "$T/copy.bin"
}

# random_file FILE BYTES
random_file () {
  head -c "$2" /dev/urandom > "$1"
}
