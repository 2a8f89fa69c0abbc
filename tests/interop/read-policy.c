/* tests/interop/read-policy.c - the reply-violations policy against a real
 * server that answers some reads with a simple reply although structured
 * replies were negotiated (nbd-server 3.26: a DF read, a read that fails).
 * Runs, on one handle with reply-violations=POLICY and no local checks, a
 * 4 KiB DF read at 0, a read at 0, a read past the end of the export, a
 * read at 0, and prints one line per read (its errno name or "ok", and the
 * rule its completion callback saw), then whether the handle is connected
 * and its counters command_violations and violations.
 *
 * usage: read-policy URI command|close
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbdaio.h"

struct seen {
  int calls, error;
  const char *violation;
};

static int
on_complete (void *user_data, int *error)
{
  struct seen *s = user_data;

  s->calls++;
  s->error = *error;
  s->violation = *error ? nbdaio_get_violation () : NULL;
  return 1;
}

static const char *
errno_name (int err)
{
  const char *s = err ? strerrorname_np (err) : "ok";

  return s ? s : "E?";
}

/* One read: issue, poll until its callback ran, print the outcome. */
static void
step (struct nbdaio_handle *h, const char *name, uint64_t offset,
      uint32_t flags)
{
  static char buf[4096];
  struct seen s = { 0 };
  nbdaio_completion_callback cb = { .callback = on_complete, .user_data = &s };

  if (nbdaio_aio_pread (h, buf, sizeof buf, offset, cb, flags) == -1)
    s.error = nbdaio_get_errno ();
  else
    while (!s.calls && nbdaio_poll (h, 10000) >= 0)
      ;
  if (!s.calls && !s.error)
    s.error = nbdaio_get_errno ();
  printf ("%s %s %s\n", name, errno_name (s.error),
          s.violation ? s.violation : "-");
}

int
main (int argc, char **argv)
{
  struct nbdaio_handle *h;
  struct nbdaio_stats st;
  int64_t size;

  if (argc != 3) {
    fprintf (stderr, "usage: read-policy URI command|close\n");
    return 2;
  }
  h = nbdaio_create ();
  if (!h || nbdaio_set_option (h, "reply-violations", argv[2]) == -1 ||
      nbdaio_set_strict (h, 0) == -1 || nbdaio_connect_uri (h, argv[1]) == -1) {
    fprintf (stderr, "read-policy: %s\n", nbdaio_get_error ());
    return 1;
  }
  size = nbdaio_get_size (h);
  if (size < 4096 || nbdaio_can_df (h) != 1) {
    fprintf (stderr, "read-policy: the export is too small or has no DF\n");
    return 1;
  }
  step (h, "df-read", 0, NBDAIO_CMD_FLAG_DF);
  step (h, "read", 0, 0);
  step (h, "past-end-read", (uint64_t) size, 0);
  step (h, "read", 0, 0);
  if (nbdaio_get_stats (h, &st, sizeof st) == -1) {
    fprintf (stderr, "read-policy: %s\n", nbdaio_get_error ());
    return 1;
  }
  printf ("connected %d command_violations %llu violations %llu\n",
          nbdaio_is_connected (h), (unsigned long long) st.command_violations,
          (unsigned long long) st.violations);
  nbdaio_close (h);
  return 0;
}
