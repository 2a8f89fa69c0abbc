/* fio-plugin/fio-version.c - refuse to run under another fio than the
 * one nbdaio.so was built against (see fio-version.h).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <string.h>

#include "fio.h"

#include "fio-version.h"

#ifndef NBDAIO_FIO_BUILT_FOR
#error "meson passes NBDAIO_FIO_BUILT_FOR (the fio source tree's version)"
#endif

/* Weak: a fio that stopped exporting it is refused with a message, not
 * a failed dlopen with an undefined symbol. */
#pragma weak fio_version_string

const char plugin_fio_built_for[] = NBDAIO_FIO_BUILT_FOR;

/* How to rebuild: the README's "Building" commands. */
#define REBUILD_HINT "fetch and configure the source of the fio you run " \
  "(provision/get-fio-source.sh .fio-src for Debian's package, or " \
  "meson setup -Dfio_source=/path/to/configured/fio), then rebuild: " \
  "meson setup build -Dfio_plugin=enabled --reconfigure && ninja -C build"

int
plugin_check_fio_version (void)
{
  const char *running = fio_version_string;

  if (running && strcmp (running, plugin_fio_built_for) == 0)
    return 0;
  log_err ("nbdaio: this nbdaio.so was built for %s but is running under "
           "%s: fio's engine interface changes between versions without "
           "FIO_IOOPS_VERSION showing it, so nbdaio refuses to run.  "
           "Rebuild the plugin against %s: " REBUILD_HINT "\n",
           plugin_fio_built_for,
           running ? running : "a fio that exports no fio_version_string",
           running ? running : "the running fio");
  return -1;
}
