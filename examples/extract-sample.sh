#!/usr/bin/env bash
# examples/extract-sample.sh README OUT - write to OUT the C program README
# shows in "Using the library": the ```c block right after the line
# "<!-- examples/readme-sample.c -->".  The README is the one copy of the
# sample; meson compiles OUT (-Werror) and run-demo.sh runs it against
# nbdkit, so the README's code cannot drift from code that works.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 README OUT" >&2; exit 2; }
awk '
  /^<!-- examples\/readme-sample\.c -->$/ { marker = NR; next }
  marker && NR == marker + 1 { if ($0 != "```c") exit 3; inblock = 1; next }
  inblock && /^```$/ { done = 1; exit }
  inblock { print }
  END { if (!done) exit 3 }
' "$1" > "$2.tmp" || {
  echo "$0: no \`\`\`c block after <!-- examples/readme-sample.c --> in $1" >&2
  rm -f "$2.tmp"; exit 1; }
mv "$2.tmp" "$2"
