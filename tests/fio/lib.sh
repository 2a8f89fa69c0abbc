# tests/fio/lib.sh - what the fio scripts add to the test harness
# (tests/lib/servers.sh, sourced here): running fio on the plugin and
# judging its JSON output (sourced, not run).
#
# A script does:   fio_test_init "$@"
#                  run_case NAME FUNCTION      (as often as needed)
#                  finish

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$LIB_DIR/../lib/servers.sh"
set -e

FIO_TIMEOUT=${FIO_TIMEOUT:-60}      # hard limit for one fio run (seconds)
SRC_ROOT=$(cd "$LIB_DIR/../.." && pwd)

# fio_test_init "$@": the script's one argument is the plugin.
fio_test_init () {
  [ "$LIST_CASES" = 1 ] && return 0
  if [ $# -ne 1 ]; then
    echo "usage: $0 PATH/TO/nbdaio.so" >&2
    exit 2
  fi
  SO=$(realpath "$1")
  [ -f "$SO" ] || { echo "$0: $SO: no such plugin" >&2; exit 2; }
  requires fio nbdkit python3 timeout
  test_init
}

# ---------------------------------------------------------------- fio

# run_fio OUT FIO-ARGS...: fio with JSON output into OUT.json, stderr into
# OUT.err, run in $T; sets FIO_RC and FIO_MS (wall time).  Never fails by
# itself.
run_fio () {
  local out=$1 start
  shift
  start=$(now_ms)
  FIO_RC=0
  # in $T: fio leaves files such as *-verify.state in its working directory
  (cd "$T" && exec timeout "$FIO_TIMEOUT" fio --output-format=json "$@") \
    > "$T/$out.json" 2> "$T/$out.err" || FIO_RC=$?
  FIO_MS=$(( $(now_ms) - start ))
  if [ "$FIO_RC" -eq 124 ]; then
    echo "fio ($out) hit the ${FIO_TIMEOUT}s timeout" >&2
  fi
}

# fio_nbd OUT JOB-ARGS...: run_fio on one job named OUT that uses the
# plugin on $URI (engine options must follow --ioengine, so they go in
# JOB-ARGS).
fio_nbd () {
  local out=$1
  shift
  run_fio "$out" --name="$out" --ioengine="external:$SO" --uri="$URI" "$@"
}

# fio_json OUT PYTHON: run PYTHON with `d` (the parsed JSON of OUT), `jobs`
# (its per-job list, or client_stats for fio --client) and `out` (the
# name); assertion failures print the message and fail.  fio may print
# plain lines before the JSON document, which are skipped.
fio_json () {
  local out=$1 code=$2
  python3 - "$T/$out.json" "$out" <<EOF
import json, sys
text = open(sys.argv[1]).read()
start = 0 if text.startswith('{') else text.find('\n{') + 1
if start == 0 and not text.startswith('{'):
    sys.exit("%s: no JSON document in fio's output" % sys.argv[2])
d = json.JSONDecoder().raw_decode(text[start:])[0]
jobs = d.get('jobs') or d.get('client_stats') or []
out = sys.argv[2]
def job_total(ddir, key='io_bytes'):
    return sum(j[ddir][key] for j in jobs)
try:
$(printf '%s\n' "$code" | sed 's/^/    /')
except AssertionError as e:
    sys.exit("%s: assertion failed: %s" % (out, e))
EOF
}

# expect_ok OUT: fio exited 0 and every job reports error 0.
expect_ok () {
  local out=$1
  if [ "$FIO_RC" -ne 0 ]; then
    echo "fio ($out) exited with $FIO_RC; stderr:" >&2
    head -20 "$T/$out.err" >&2
    return 1
  fi
  fio_json "$out" "assert jobs, 'no jobs in the output'
for j in jobs:
    assert j['error'] == 0, 'job %s: error %d' % (j['jobname'], j['error'])"
}

# expect_refusal OUT REGEX: fio exited non-zero and its stderr (or, for
# fio --client, where the server's messages arrive, stdout) matches REGEX
# (extended, case-insensitive).
expect_refusal () {
  local out=$1 re=$2
  if [ "$FIO_RC" -eq 0 ]; then
    echo "fio ($out) succeeded, a refusal was expected" >&2
    return 1
  fi
  if ! grep -qiE -- "$re" "$T/$out.err" "$T/$out.json"; then
    echo "fio ($out) failed (rc $FIO_RC) but stderr does not match /$re/:" >&2
    head -20 "$T/$out.err" >&2
    return 1
  fi
}

# count_log FILE REGEX: number of lines matching (0 if none).
count_log () { grep -cE -- "$2" "$1" || true; }
