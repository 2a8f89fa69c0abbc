#!/usr/bin/env bash
# tests/check-pkgconfig.sh PCDIR STATICLIB HEADER... PROGRAM.c - the
# libnbdaio.pc that `meson install` installs (it is in PCDIR) links a
# program with the static library as a user would:
#   cc PROGRAM.c $(pkg-config --static --cflags --libs libnbdaio)
# with only libnbdaio.a and the headers (nbdaio.h, nbdaio-version.h) laid
# out under a scratch prefix (the .pc's own libdir and includedir), so a
# missing Requires.private (gnutls, inih) or header fails the build.  The
# program then reads from an nbdkit export.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PCDIR STATICLIB HEADER... PROGRAM.c" >&2; exit 2; }
pcdir=$1 lib=$2 headers=("${@:3:$#-3}") prog=${!#}
T=$(mktemp -d /tmp/nbdaio-pkgconfig.XXXXXX)
trap 'rm -rf "$T"' EXIT

# the installed .pc with its prefix moved to $T/prefix (only ours:
# gnutls's and inih's stay where the system has them)
mkdir -p "$T/pc"
sed "s|^prefix=.*|prefix=$T/prefix|" "$pcdir/libnbdaio.pc" > "$T/pc/libnbdaio.pc"
export PKG_CONFIG_PATH=$T/pc
pc () { pkg-config "$@" libnbdaio; }
libdir=$(pc --variable=libdir) includedir=$(pc --variable=includedir)
mkdir -p "$libdir" "$includedir"
cp "$lib" "$libdir/libnbdaio.a"         # no libnbdaio.so: -lnbdaio is the .a
cp "${headers[@]}" "$includedir/"

read -r -a flags <<<"$(pc --static --cflags --libs)"
echo "pkg-config --static --cflags --libs libnbdaio: ${flags[*]}"
# gnutls's own static dependencies need their -dev packages (Debian's
# libgnutls28-dev does not pull libunistring-dev): a skip, not our failure
for f in "${flags[@]}"; do
  case $f in
    -lnbdaio) ;;
    -l*) [ "$(cc -print-file-name="lib${f#-l}.so")" != "lib${f#-l}.so" ] ||
         [ "$(cc -print-file-name="lib${f#-l}.a")" != "lib${f#-l}.a" ] || {
           echo "SKIP: lib${f#-l} is not installed (its -dev package)"; exit 77; } ;;
  esac
done
cc -std=gnu11 -Wall -Wextra -Werror -o "$T/prog" "$prog" "${flags[@]}"
if ldd "$T/prog" | grep -q libnbdaio; then
  echo "$T/prog links a shared libnbdaio, not libnbdaio.a" >&2
  exit 1
fi
timeout 60 nbdkit -U - memory 1M --run "'$T/prog' \"\$uri\""
echo "check-pkgconfig: a static link by libnbdaio.pc works"
