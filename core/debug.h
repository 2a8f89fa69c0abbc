/* debug.h - protocol tracing to stderr (NBDAIO_DEBUG=1).  Internal. */
#ifndef NBDAIO_DEBUG_H
#define NBDAIO_DEBUG_H

#include <stdbool.h>

/* true when NBDAIO_DEBUG is set to a value other than "0" or "". */
bool debug_from_env (void);

/* Print "nbdaio: " + message + newline to stderr. */
void debug_print (const char *fmt, ...) __attribute__((format (printf, 1, 2)));

#define debug(enabled, ...) \
  do { if (__builtin_expect (!!(enabled), 0)) debug_print (__VA_ARGS__); } while (0)

#endif
