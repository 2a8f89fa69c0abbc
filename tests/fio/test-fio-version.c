/* tests/fio/test-fio-version.c - plugin_check_fio_version (fio-plugin/
 * fio-version.c) under a fio of another version, of the same version,
 * and one exporting no version string: the fio symbols it uses
 * (fio_version_string, log_err) are defined here as fio defines them.
 * Built three times (meson: fio-version-other, -same, -none), with
 * FAKE_FIO_VERSION the running fio's version string or undefined for
 * none.  Exit 0 when the verdict and the message are right.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "fio-version.h"

#ifdef FAKE_FIO_VERSION
const char fio_version_string[] = FAKE_FIO_VERSION;
#endif

static char logged[4096];
static int nlogged;

ssize_t log_err (const char *format, ...);

ssize_t
log_err (const char *format, ...)
{
  va_list ap;
  int n;

  va_start (ap, format);
  n = vsnprintf (logged, sizeof logged, format, ap);
  va_end (ap);
  nlogged++;
  return n;
}

static int failures;

static void
expect (int cond, const char *what)
{
  if (!cond) {
    fprintf (stderr, "FAIL: %s\n", what);
    failures++;
  }
}

int
main (void)
{
  int r = plugin_check_fio_version ();

  printf ("built for %s; running %s: returned %d\n", plugin_fio_built_for,
#ifdef FAKE_FIO_VERSION
          FAKE_FIO_VERSION,
#else
          "(no fio_version_string)",
#endif
          r);
  if (nlogged)
    printf ("log_err: %s", logged);
  expect (strncmp (plugin_fio_built_for, "fio-", 4) == 0,
          "the built-for version looks like fio's (fio-X.Y)");
#if defined FAKE_FIO_VERSION
  if (strcmp (FAKE_FIO_VERSION, plugin_fio_built_for) == 0) {
    expect (r == 0, "the same version is accepted");
    expect (nlogged == 0, "nothing is logged for the same version");
    return failures ? 1 : 0;
  }
#endif
  expect (r == -1, "a mismatch is refused (-1)");
  expect (nlogged == 1, "one message is logged");
  expect (strstr (logged, plugin_fio_built_for) != NULL,
          "the message names the fio the plugin was built for");
#ifdef FAKE_FIO_VERSION
  expect (strstr (logged, "running under " FAKE_FIO_VERSION) != NULL,
          "the message names the running fio");
#else
  expect (strstr (logged, "no fio_version_string") != NULL,
          "the message says fio exports no version");
#endif
  expect (strstr (logged, "get-fio-source.sh") != NULL &&
          strstr (logged, "ninja -C build") != NULL,
          "the message says how to rebuild");
  return failures ? 1 : 0;
}
