/* error.h - the thread-local "last error" of libnbdaio (message + errno).
 * Internal. */
#ifndef NBDAIO_ERROR_H
#define NBDAIO_ERROR_H

/* Text a server sent goes into a message only through ESCAPED (s, len). */
#include "escape.h"

/* Record errnum and a printf-style message as this thread's last error.
 * Always returns -1 so callers can write `return set_error (...)`. */
int set_error (int errnum, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Prefix the current message with "what: " (keeps the errno). */
void error_prefix (const char *what);

/* Record a protocol violation by the server as the last error (EPROTO):
 * "protocol violation [rule]: detail".  rule is the short tag of a rule in
 * design.md section 6 (e.g. "reply-cookie").  Returns -1. */
int set_violation (const char *rule, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
/* The last error, kept aside while code that may overwrite it runs (free
 * functions, retiring a command). */
#define ERROR_MAX 1024
struct saved_error {
  int errnum;
  char msg[ERROR_MAX];
};
void error_save (struct saved_error *s);
/* Make *s the last error again; returns -1. */
int error_restore (const struct saved_error *s);
#endif
