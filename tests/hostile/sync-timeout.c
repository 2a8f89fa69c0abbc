/* tests/hostile/sync-timeout.c - the library's request timeout against a
 * server that stops answering (a stall mode of hostile-server.py, which
 * answers three requests and then nothing): with request-timeout MS set,
 * three synchronous reads succeed, then CALL must return -1 with ETIMEDOUT
 * within MS plus a small margin, naming the command and the timeout, the
 * connection ended and the timeout counted:
 *   pread     nbdaio_pread of the fourth read;
 *   flush     nbdaio_flush (the server must stall on a flush: stall-any);
 *   shutdown  an aio read the server does not answer, then nbdaio_shutdown
 *             (the read's callback must run once, with ETIMEDOUT).
 * Prints one line of JSON and exits 1 if any of that did not hold.
 *
 * usage: sync-timeout --call pread|flush|shutdown --timeout MS SOCKET
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
#include "transport.h"          /* transport_now_ms */

#define MARGIN_MS 300           /* the call may return this much late */
#define LEN 4096

static int nproblems;

/* A promise broken: say so on stderr. */
static void __attribute__ ((format (printf, 1, 2)))
problem (const char *fmt, ...)
{
  va_list ap;

  nproblems++;
  fputs ("sync-timeout: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

struct done {
  int calls, error;
};

static int
on_done (void *user_data, int *error)
{
  struct done *d = user_data;

  d->calls++;
  d->error = *error;
  return 1;
}

/* The call under test; returns its result. */
static int
run_call (struct nbdaio_handle *h, const char *call, unsigned char *buf,
          struct done *d)
{
  nbdaio_completion_callback cb = { .callback = on_done, .user_data = d };

  if (strcmp (call, "pread") == 0)
    return nbdaio_pread (h, buf, LEN, 3 * LEN, 0);
  if (strcmp (call, "flush") == 0)
    return nbdaio_flush (h, 0);
  if (nbdaio_aio_pread (h, buf, LEN, 3 * LEN, cb, 0) == -1) {
    problem ("nbdaio_aio_pread: %s", nbdaio_get_error ());
    return 0;
  }
  return nbdaio_shutdown (h);
}

int
main (int argc, char **argv)
{
  static unsigned char buf[LEN];
  const char *call, *what;
  char *msg = NULL;
  struct done d = { 0 };
  struct nbdaio_stats st;
  struct nbdaio_handle *h;
  int timeout_ms, r, err;
  int64_t t0, ms = -1;

  if (argc != 6 || strcmp (argv[1], "--call") != 0 ||
      strcmp (argv[3], "--timeout") != 0 || (timeout_ms = atoi (argv[4])) < 1) {
    fprintf (stderr, "usage: sync-timeout --call pread|flush|shutdown "
             "--timeout MS SOCKET\n");
    return 2;
  }
  call = argv[2];
  what = strcmp (call, "flush") == 0 ? "NBD_CMD_FLUSH" : "NBD_CMD_READ";
  if (!(h = nbdaio_create ()) ||
      nbdaio_set_request_timeout (h, (unsigned) timeout_ms) == -1 ||
      nbdaio_connect_unix (h, argv[5]) == -1) {
    fprintf (stderr, "sync-timeout: %s\n", nbdaio_get_error ());
    return 1;
  }
  for (int i = 0; i < 3; i++)
    if (nbdaio_pread (h, buf, LEN, (uint64_t) i * LEN, 0) == -1)
      problem ("good read %d: %s", i, nbdaio_get_error ());
  t0 = transport_now_ms ();
  r = run_call (h, call, buf, &d);
  ms = transport_now_ms () - t0;
  err = nbdaio_get_errno ();
  if (r == -1 && nbdaio_get_error ())
    msg = strdup (nbdaio_get_error ());
  if (r != -1 || err != ETIMEDOUT)
    problem ("%s returned %d (errno %d), expected -1 with ETIMEDOUT", call, r,
             err);
  if (ms < timeout_ms - 20 || ms > timeout_ms + MARGIN_MS)
    problem ("%s returned after %lld ms (request-timeout %d ms)", call,
             (long long) ms, timeout_ms);
  if (!msg || !strstr (msg, "request-timeout") || !strstr (msg, what) ||
      !strstr (msg, argv[4]))
    problem ("the error does not name %s, request-timeout and %s ms", what,
             argv[4]);
  if (nbdaio_is_connected (h) != 0 || !nbdaio_get_connection_error (h))
    problem ("the connection was not ended");
  if (strcmp (call, "shutdown") == 0 && (d.calls != 1 || d.error != ETIMEDOUT))
    problem ("the read's callback ran %d times (error %d)", d.calls, d.error);
  if (nbdaio_get_stats (h, &st, sizeof st) != (int) sizeof st ||
      st.timeouts != 1 || st.read.completed != 3 + (strcmp (call, "flush") != 0))
    problem ("stats: %llu timeouts, %llu reads completed",
             (unsigned long long) st.timeouts,
             (unsigned long long) st.read.completed);
  printf ("{\"call\":\"%s\",\"rc\":%d,\"errno\":%d,\"ms\":%lld,\"error\":",
          call, r, err, (long long) ms);
  cli_json_string (stdout, msg ? msg : "");
  printf (",\"problems\":%d}\n", nproblems);
  nbdaio_close (h);
  free (msg);
  return nproblems ? 1 : 0;
}
