/* bs-contexts.c - block status of several meta contexts at once through
 * libnbdaio, for the interop suite: asks for every CONTEXT given, checks
 * that the server selected them all, runs nbdaio_aio_block_status_64 over
 * [0, LENGTH) and prints one line per chunk,
 *   CONTEXT OFFSET:LENGTH:FLAGS ...
 * (extents as the server sent them), after "extended_headers 0|1"; with
 * --ext it fails unless extended headers were negotiated.  Exit 0, or 1
 * with the reason on stderr.
 *
 * usage: bs-contexts URI LENGTH [--ext] CONTEXT...
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define MAX_CTX 8

struct seen {
  const char *ctx[MAX_CTX];
  char *line[MAX_CTX];          /* the chunk of each context, printed */
  int n;
  int done, error;
};

static int
on_extents (void *ud, const char *metacontext, uint64_t offset,
            nbdaio_extent64 *e, size_t n, int *error)
{
  struct seen *s = ud;
  char *buf = NULL;
  size_t len = 0;
  FILE *fp;
  int i;
  (void) error;

  for (i = 0; i < s->n && strcmp (s->ctx[i], metacontext) != 0; i++)
    ;
  if (i == s->n || s->line[i]) {
    fprintf (stderr, "bs-contexts: unexpected chunk for %s\n", metacontext);
    return -1;
  }
  if (!(fp = open_memstream (&buf, &len)))
    return -1;
  fputs (metacontext, fp);
  for (size_t k = 0; k < n; k++) {
    fprintf (fp, " %" PRIu64 ":%" PRIu64 ":%" PRIu64, offset, e[k].length,
             e[k].flags);
    offset += e[k].length;
  }
  fclose (fp);
  s->line[i] = buf;
  return 0;
}

static int
on_done (void *ud, int *error)
{
  struct seen *s = ud;

  s->done = 1;
  s->error = *error;
  return 1;
}

int
main (int argc, char *argv[])
{
  struct seen s = { .n = 0 };
  struct nbdaio_handle *h;
  const char *uri;
  uint64_t length;
  int ext = 0, xhdr;

  if (argc < 4) {
    fprintf (stderr, "usage: bs-contexts URI LENGTH [--ext] CONTEXT...\n");
    return 1;
  }
  uri = argv[1];
  length = strtoull (argv[2], NULL, 10);
  for (int i = 3; i < argc; i++) {
    if (strcmp (argv[i], "--ext") == 0)
      ext = 1;
    else if (s.n < MAX_CTX)
      s.ctx[s.n++] = argv[i];
  }
  if (s.n == 0 || !(h = nbdaio_create ()))
    cli_die_lib ("setup");
  if (nbdaio_set_meta_context (h, s.ctx[0]) == -1)
    cli_die_lib ("set_meta_context");
  for (int i = 1; i < s.n; i++)
    if (nbdaio_add_meta_context (h, s.ctx[i]) == -1)
      cli_die_lib ("add_meta_context");
  if (nbdaio_connect_uri (h, uri) == -1)
    cli_die_lib ("connect");
  xhdr = nbdaio_get_extended_headers_negotiated (h);
  printf ("extended_headers %d\n", xhdr);
  if (ext && xhdr != 1) {
    fprintf (stderr, "bs-contexts: extended headers were not negotiated\n");
    return 1;
  }
  if (nbdaio_get_nr_meta_contexts (h) != s.n) {
    fprintf (stderr, "bs-contexts: %d contexts selected, %d asked\n",
             nbdaio_get_nr_meta_contexts (h), s.n);
    return 1;
  }
  for (int i = 0; i < s.n; i++)
    if (nbdaio_can_meta_context (h, s.ctx[i]) != 1) {
      fprintf (stderr, "bs-contexts: %s not selected\n", s.ctx[i]);
      return 1;
    }
  if (nbdaio_aio_block_status_64 (h, length, 0,
        (nbdaio_extent64_callback) { .callback = on_extents, .user_data = &s },
        (nbdaio_completion_callback) { .callback = on_done, .user_data = &s },
        0) == -1)
    cli_die_lib ("aio_block_status_64");
  while (!s.done)
    if (nbdaio_poll (h, 10000) == -1)
      cli_die_lib ("poll");
  if (s.error) {
    fprintf (stderr, "bs-contexts: block status failed: %s\n",
             strerror (s.error));
    return 1;
  }
  for (int i = 0; i < s.n; i++) {
    if (!s.line[i]) {
      fprintf (stderr, "bs-contexts: no chunk for %s\n", s.ctx[i]);
      return 1;
    }
    printf ("%s\n", s.line[i]);
    free (s.line[i]);
  }
  nbdaio_close (h);
  return 0;
}
