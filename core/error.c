/* error.c - the thread-local last error behind nbdaio_get_error and
 * nbdaio_get_errno. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nbdaio.h"
#include "error.h"

static __thread char last_msg[ERROR_MAX];
static __thread int last_errno;
static __thread int have_error;

int
set_error (int errnum, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (last_msg, sizeof last_msg, fmt, ap);
  va_end (ap);
  last_errno = errnum;
  have_error = 1;
  errno = errnum;
  return -1;
}

void
error_prefix (const char *what)
{
  size_t n = strlen (what), len = have_error ? strlen (last_msg) : 0;

  if (n + 2 >= ERROR_MAX)
    return;
  if (len > ERROR_MAX - 1 - n - 2)
    len = ERROR_MAX - 1 - n - 2;
  memmove (last_msg + n + 2, last_msg, len);
  memcpy (last_msg, what, n);
  memcpy (last_msg + n, ": ", 2);
  last_msg[n + 2 + len] = '\0';
  have_error = 1;
}

const char *
nbdaio_get_error (void)
{
  return have_error ? last_msg : NULL;
}

int
nbdaio_get_errno (void)
{
  return have_error ? last_errno : 0;
}

void
error_save (struct saved_error *s)
{
  s->errnum = nbdaio_get_errno ();
  snprintf (s->msg, sizeof s->msg, "%s", have_error ? last_msg : "");
}

int
error_restore (const struct saved_error *s)
{
  return set_error (s->errnum, "%s", s->msg);
}

int
set_violation (const char *rule, const char *fmt, ...)
{
  char detail[ERROR_MAX - 64];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (detail, sizeof detail, fmt, ap);
  va_end (ap);
  return set_error (EPROTO, "protocol violation [%s]: %s", rule, detail);
}
