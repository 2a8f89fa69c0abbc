/* tests/hostile/sync-violation.c - a protocol violation that fails one
 * command alone (reply-violations=command, the default), as the caller
 * reads it once the call has returned.  Against a hostile-server.py mode
 * that answers one read (after some good ones) with a reply that breaks
 * rule TAG but leaves the stream in sync, it reads 4 KiB at a time until
 * a read fails, with
 *   pread  nbdaio_pread;
 *   aio    nbdaio_aio_pread and a completion callback that keeps the
 *          command, then nbdaio_aio_command_completed;
 * and checks that the failing call returned -1 with EPROTO, that
 * nbdaio_get_violation () is TAG and that nbdaio_get_error () reads
 * "protocol violation [TAG]: " with what the server sent (the cookie) and
 * the section of the NBD specification that states TAG (the library's
 * table, core/rules.c); for aio, that the callback saw that same message;
 * that command_violations counted it once and no connection ended by a
 * violation; then, as THEN says the server goes on: serve (the next read
 * succeeds) or eof (it hung up: the next read fails, naming no rule).
 * Prints one line of JSON and exits 1 if any of that did not hold.
 *
 * usage: sync-violation --call pread|aio --rule TAG --then serve|eof SOCKET
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"
#include "rules.h"              /* rule_get: TAG's section */

#define LEN 4096
#define MAX_READS 8             /* the mode acts on one of the first few */

static int failures;

/* Count and say a broken expectation unless ok. */
static void __attribute__ ((format (printf, 2, 3)))
expect (int ok, const char *fmt, ...)
{
  va_list ap;

  if (ok)
    return;
  failures++;
  fputs ("sync-violation: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

/* The section of the specification the library gives tag, or NULL. */
static const char *
section_of (const char *tag)
{
  for (int i = 0; i < RULE_COUNT; i++)
    if (strcmp (rule_get ((enum rule_id) i)->tag, tag) == 0)
      return rule_get ((enum rule_id) i)->section;
  return NULL;
}

/* What the completion callback of the aio read saw. */
struct seen {
  int calls, error;
  char msg[1024];
};

static int
on_done (void *user_data, int *error)
{
  struct seen *s = user_data;

  s->calls++;
  s->error = *error;
  snprintf (s->msg, sizeof s->msg, "%s",
            *error && nbdaio_get_error () ? nbdaio_get_error () : "");
  return 0;                     /* keep it for nbdaio_aio_command_completed */
}

/* One read at offset by call; returns its result, *cookie the aio read's
 * cookie (0 for pread). */
static int
read_once (struct nbdaio_handle *h, const char *call, uint64_t offset,
           struct seen *s, int64_t *cookie)
{
  static unsigned char buf[LEN];
  nbdaio_completion_callback cb = { .callback = on_done, .user_data = s };
  int r;

  *cookie = 0;
  memset (s, 0, sizeof *s);
  if (strcmp (call, "pread") == 0)
    return nbdaio_pread (h, buf, LEN, offset, 0);
  if ((*cookie = nbdaio_aio_pread (h, buf, LEN, offset, cb, 0)) == -1)
    return -1;
  /* a connection that ends completes the command too */
  while ((r = nbdaio_aio_command_completed (h, *cookie)) == 0)
    if (nbdaio_poll (h, -1) == -1 && nbdaio_is_connected (h) == 1)
      return -1;
  return r == 1 ? 0 : -1;
}

int
main (int argc, char **argv)
{
  const char *call, *tag, *then, *section, *violation;
  char prefix[128], cookie_hex[32] = "cookie 0x", *msg = NULL;
  struct seen s = { 0 };
  struct nbdaio_stats st;
  struct nbdaio_handle *h;
  int64_t cookie = 0;
  int i, r = 0, err;

  if (argc != 8 || strcmp (argv[1], "--call") != 0 ||
      strcmp (argv[3], "--rule") != 0 || strcmp (argv[5], "--then") != 0) {
    fprintf (stderr, "usage: sync-violation --call pread|aio --rule TAG "
             "--then serve|eof SOCKET\n");
    return 2;
  }
  call = argv[2], tag = argv[4], then = argv[6];
  if (!(section = section_of (tag))) {
    fprintf (stderr, "sync-violation: the library has no rule [%s]\n", tag);
    return 2;
  }
  if (!(h = nbdaio_create ()) || nbdaio_set_request_timeout (h, 5000) == -1 ||
      nbdaio_connect_unix (h, argv[7]) == -1) {
    fprintf (stderr, "sync-violation: %s\n", nbdaio_get_error ());
    return 1;
  }
  for (i = 0; i < MAX_READS && r == 0; i++)
    r = read_once (h, call, (uint64_t) i * LEN, &s, &cookie);
  err = nbdaio_get_errno ();
  violation = nbdaio_get_violation ();
  msg = strdup (r == -1 && nbdaio_get_error () ? nbdaio_get_error () : "");
  expect (r == -1 && err == EPROTO, "no read of %d failed with EPROTO "
          "(read %d: %d, errno %d)", MAX_READS, i, r, err);
  expect (violation && strcmp (violation, tag) == 0,
          "nbdaio_get_violation () is %s, expected %s",
          violation ? violation : "NULL", tag);
  snprintf (prefix, sizeof prefix, "protocol violation [%s]: ", tag);
  if (cookie > 0)
    snprintf (cookie_hex, sizeof cookie_hex, "cookie 0x%llx",
              (unsigned long long) cookie);
  expect (msg && strncmp (msg, prefix, strlen (prefix)) == 0 &&
          strstr (msg, cookie_hex) && strstr (msg, section),
          "the error does not start with '%s' and name %s and the section "
          "\"%s\"", prefix, cookie_hex, section);
  if (strcmp (call, "aio") == 0)
    expect (s.calls == 1 && s.error == EPROTO && strcmp (s.msg, msg) == 0,
            "the callback saw another error: %s", s.msg);
  expect (nbdaio_get_stats (h, &st, sizeof st) == (int) sizeof st &&
          st.command_violations == 1 && st.violations == 0,
          "stats: %llu command violations, %llu connections ended by one",
          (unsigned long long) st.command_violations,
          (unsigned long long) st.violations);
  r = read_once (h, call, 0, &s, &cookie);
  if (strcmp (then, "serve") == 0)
    expect (r == 0, "the next read failed: %s", nbdaio_get_error ());
  else
    expect (r == -1 && !nbdaio_get_violation () &&
            !nbdaio_get_connection_violation (h),
            "after the server hung up the next read returned %d naming %s",
            r, nbdaio_get_violation () ? nbdaio_get_violation () : "no rule");
  printf ("{\"call\":\"%s\",\"rule\":\"%s\",\"error\":", call, tag);
  cli_json_string (stdout, msg);
  printf (",\"failures\":%d}\n", failures);
  nbdaio_close (h);
  free (msg);
  return failures ? 1 : 0;
}
