/* error.h - the thread-local "last error" of libnbdaio (message + errno).
 * Internal. */
#ifndef NBDAIO_ERROR_H
#define NBDAIO_ERROR_H

/* Text a server sent goes into a message only through ESCAPED (s, len). */
#include "escape.h"
#include "rules.h"

/* Record errnum and a printf-style message as this thread's last error.
 * Always returns -1 so callers can write `return set_error (...)`. */
int set_error (int errnum, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Prefix the current message with "what: " (keeps the errno). */
void error_prefix (const char *what);

/* Record a protocol violation by the server as the last error (EPROTO):
 * "protocol violation [tag]: detail", tag being rule's tag in the table of
 * rules.c; nbdaio_get_violation then returns that tag.  Returns -1. */
int set_violation (enum rule_id rule, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
/* The rule of this thread's last error if it is a violation, else
 * RULE_NONE. */
enum rule_id error_rule (void);
/* Make the last error errnum, msg and rule (RULE_NONE: not a violation),
 * as when an error kept aside is raised again.  Returns -1. */
int error_raise (int errnum, enum rule_id rule, const char *msg);
/* The last error, kept aside while code that may overwrite it runs (free
 * functions, retiring a command). */
#define ERROR_MAX 1024
struct saved_error {
  int errnum;
  enum rule_id rule;
  char msg[ERROR_MAX];
};
void error_save (struct saved_error *s);
/* Make *s the last error again; returns -1. */
int error_restore (const struct saved_error *s);
#endif
