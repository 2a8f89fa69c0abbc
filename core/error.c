/* error.c - the thread-local last error behind nbdaio_get_error,
 * nbdaio_get_errno and nbdaio_get_violation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nbdaio.h"
#include "error.h"

static __thread char last_msg[ERROR_MAX];
static __thread int last_errno;
static __thread int have_error;
static __thread enum rule_id last_rule = RULE_NONE;

int
set_error (int errnum, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (last_msg, sizeof last_msg, fmt, ap);
  va_end (ap);
  last_errno = errnum;
  last_rule = RULE_NONE;
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

const char *
nbdaio_get_violation (void)
{
  const struct rule *r = have_error ? rule_get (last_rule) : NULL;

  return r ? r->tag : NULL;
}

enum rule_id
error_rule (void)
{
  return have_error ? last_rule : RULE_NONE;
}

int
error_raise (int errnum, enum rule_id rule, const char *msg)
{
  set_error (errnum, "%s", msg);
  last_rule = rule_get (rule) ? rule : RULE_NONE;
  return -1;
}

void
error_save (struct saved_error *s)
{
  s->errnum = nbdaio_get_errno ();
  s->rule = error_rule ();
  snprintf (s->msg, sizeof s->msg, "%s", have_error ? last_msg : "");
}

int
error_restore (const struct saved_error *s)
{
  return error_raise (s->errnum, s->rule, s->msg);
}

int
set_violation (enum rule_id rule, const char *fmt, ...)
{
  const struct rule *r = rule_get (rule);
  char detail[ERROR_MAX - 64];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (detail, sizeof detail, fmt, ap);
  va_end (ap);
  set_error (EPROTO, "protocol violation [%s]: %s", r ? r->tag : "?",
             detail);
  last_rule = r ? rule : RULE_NONE;
  return -1;
}
