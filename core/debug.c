/* debug.c - protocol tracing to stderr, enabled by NBDAIO_DEBUG=1 or
 * nbdaio_set_debug. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

bool
debug_from_env (void)
{
  const char *v = getenv ("NBDAIO_DEBUG");

  return v && *v && strcmp (v, "0") != 0;
}

void
debug_print (const char *fmt, ...)
{
  char line[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  fprintf (stderr, "nbdaio: %s\n", line);
}
