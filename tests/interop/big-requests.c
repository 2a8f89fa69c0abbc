/* big-requests.c - 64-bit effect lengths and filtered block status
 * through libnbdaio, for the interop suite.  Connects to URI asking for
 * base:allocation and qemu:allocation-depth, then over [0, LENGTH):
 * NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES, NBD_CMD_CACHE (each where the
 * server advertises it), one nbdaio_aio_block_status_64 and, where the
 * server accepts filtering, one nbdaio_aio_block_status_filter naming
 * qemu:allocation-depth only.  Prints what it saw, one fact a line:
 *   extended_headers 0|1
 *   block_status_payload 0|1
 *   trim|zero|cache ok|failed ERRNO|not advertised
 *   bs CONTEXT EXTENTS TOTAL_LENGTH     (one line per chunk, sorted)
 *   filter CONTEXT EXTENTS TOTAL_LENGTH (the same for the filtered one)
 *   issued trim=N zero=N cache=N block_status=N
 * (issued: the NBD requests the library sent, from nbdaio_get_stats: one
 * per call when nothing was split).  Exit 0, or 1 with the reason.
 *
 * usage: big-requests URI LENGTH
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define DEPTH "qemu:allocation-depth"

struct chunks {
  char line[4][128];
  int n;
  const char *prefix;
};

static int
on_extents (void *ud, const char *metacontext, uint64_t offset,
            nbdaio_extent64 *e, size_t n, int *error)
{
  struct chunks *c = ud;
  uint64_t total = 0;
  (void) offset;
  (void) error;

  for (size_t k = 0; k < n; k++)
    total += e[k].length;
  if (c->n < 4)
    snprintf (c->line[c->n++], sizeof c->line[0], "%s %s %zu %" PRIu64,
              c->prefix, metacontext, n, total);
  return 0;
}

static int
by_name (const void *a, const void *b)
{
  return strcmp (a, b);
}

/* Run cookie's command to completion; print the chunks sorted. */
static void
finish (struct nbdaio_handle *h, int64_t cookie, struct chunks *c,
        const char *what)
{
  int r;

  if (cookie == -1)
    cli_die_lib (what);
  while ((r = nbdaio_aio_command_completed (h, cookie)) == 0)
    if (nbdaio_poll (h, 30000) == -1)
      cli_die_lib (what);
  if (r == -1)
    cli_die_lib (what);
  qsort (c->line, (size_t) c->n, sizeof c->line[0], by_name);
  for (int i = 0; i < c->n; i++)
    printf ("%s\n", c->line[i]);
}

static void
effect (struct nbdaio_handle *h, const char *name, int can,
        int (*call) (struct nbdaio_handle *, uint64_t, uint64_t, uint32_t),
        uint64_t length)
{
  if (can != 1)
    printf ("%s not advertised\n", name);
  else if (call (h, length, 0, 0) == 0)
    printf ("%s ok\n", name);
  else
    printf ("%s failed %s\n", name, strerror (nbdaio_get_errno ()));
}

int
main (int argc, char **argv)
{
  static const char *const only_depth[] = { DEPTH, NULL };
  struct chunks all = { .prefix = "bs" }, some = { .prefix = "filter" };
  struct nbdaio_handle *h;
  struct nbdaio_stats st;
  uint64_t length;

  if (argc != 3) {
    fprintf (stderr, "usage: big-requests URI LENGTH\n");
    return 2;
  }
  length = strtoull (argv[2], NULL, 0);
  if (!(h = nbdaio_create ()) ||
      nbdaio_set_meta_context (h, "base:allocation") == -1 ||
      nbdaio_add_meta_context (h, DEPTH) == -1 ||
      nbdaio_connect_uri (h, argv[1]) == -1)
    cli_die_lib ("connect");
  printf ("extended_headers %d\n", nbdaio_get_extended_headers_negotiated (h));
  printf ("block_status_payload %d\n", nbdaio_can_block_status_payload (h));
  effect (h, "trim", nbdaio_can_trim (h), nbdaio_trim, length);
  effect (h, "zero", nbdaio_can_zero (h), nbdaio_zero, length);
  effect (h, "cache", nbdaio_can_cache (h), nbdaio_cache, length);
  finish (h, nbdaio_aio_block_status_64 (
            h, length, 0, (nbdaio_extent64_callback) { on_extents, &all, NULL },
            NBDAIO_NULL_COMPLETION, 0), &all, "block status");
  if (nbdaio_can_block_status_payload (h) == 1)
    finish (h, nbdaio_aio_block_status_filter (
              h, length, 0, only_depth,
              (nbdaio_extent64_callback) { on_extents, &some, NULL },
              NBDAIO_NULL_COMPLETION, 0), &some, "filtered block status");
  memset (&st, 0, sizeof st);
  if (nbdaio_get_stats (h, &st, sizeof st) == -1)
    cli_die_lib ("stats");
  printf ("issued trim=%" PRIu64 " zero=%" PRIu64 " cache=%" PRIu64
          " block_status=%" PRIu64 "\n", st.trim.issued, st.zero.issued,
          st.cache.issued, st.block_status.issued);
  nbdaio_shutdown (h);
  nbdaio_close (h);
  return 0;
}
