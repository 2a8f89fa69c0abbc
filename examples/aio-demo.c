/* examples/aio-demo.c - nbdaio-aio-demo: a small tour of the asynchronous
 * API.  It keeps up to DEPTH writes in flight with completion callbacks,
 * then reads everything back the same way and checks it, flushes and prints
 * a summary.  WARNING: it overwrites the start of the export (at most
 * 64 MiB).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <inttypes.h>
#include <time.h>

#include "nbdaio.h"

#define DEPTH     32                 /* commands kept in flight */
#define IO_SIZE   4096               /* bytes per command (at least) */
#define MAX_TOTAL (64 * 1024 * 1024) /* never touch more than this */

/* One buffer per slot: a slot is busy from issue until its completion. */
struct slot {
  int busy;
  unsigned char *buf;
};

struct demo {
  struct nbdaio_handle *h;
  struct slot slots[DEPTH];
  size_t io_size;
  uint64_t commands, bytes, errors, mismatches, frees;
};

/* What each command carries to its callback (allocated per command,
 * released by the free function). */
struct cmd {
  struct demo *d;
  int slot;
  int is_read;
  uint64_t offset;
};

/* The byte we store at a given export offset. */
static unsigned char
pattern (uint64_t off)
{
  return (unsigned char) ((off >> 12) * 31 + (off & 0xfff) * 7 + 1);
}

static int
command_done (void *user_data, int *error)
{
  struct cmd *c = user_data;
  struct demo *d = c->d;
  struct slot *s = &d->slots[c->slot];

  if (*error != 0) {
    fprintf (stderr, "nbdaio-aio-demo: %s at offset %" PRIu64 " failed: %s\n",
             c->is_read ? "read" : "write", c->offset, strerror (*error));
    d->errors++;
  }
  else {
    if (c->is_read)
      for (size_t i = 0; i < d->io_size; i++)
        if (s->buf[i] != pattern (c->offset + i)) {
          fprintf (stderr, "nbdaio-aio-demo: data mismatch at offset %"
                   PRIu64 "\n", c->offset + i);
          d->mismatches++;
          break;
        }
    d->bytes += d->io_size;
  }
  d->commands++;
  s->busy = 0;
  return 1;            /* retire the command now: we never ask for it again */
}

static void
command_free (void *user_data)
{
  struct cmd *c = user_data;
  c->d->frees++;
  free (c);
}

static int
free_slot (struct demo *d)
{
  for (int i = 0; i < DEPTH; i++)
    if (!d->slots[i].busy)
      return i;
  return -1;
}

/* Issue one command per offset (writes or reads), at most DEPTH at a time,
 * and drive the handle with nbdaio_poll until all have completed. */
static int
run_pass (struct demo *d, int is_read, uint64_t total)
{
  uint64_t next = 0;

  while (next < total || nbdaio_aio_in_flight (d->h) > 0) {
    int i;
    while (next < total && (i = free_slot (d)) >= 0) {
      struct cmd *c = malloc (sizeof *c);
      if (!c) {
        perror ("malloc");
        return -1;
      }
      *c = (struct cmd) { d, i, is_read, next };
      nbdaio_completion_callback cb = {
        .callback = command_done, .user_data = c, .free = command_free,
      };
      struct slot *s = &d->slots[i];
      int64_t cookie;
      if (is_read)
        cookie = nbdaio_aio_pread (d->h, s->buf, d->io_size, next, cb, 0);
      else {
        for (size_t j = 0; j < d->io_size; j++)
          s->buf[j] = pattern (next + j);
        cookie = nbdaio_aio_pwrite (d->h, s->buf, d->io_size, next, cb, 0);
      }
      /* On failure the library has already run command_free (c is gone). */
      if (cookie == -1) {
        fprintf (stderr, "nbdaio-aio-demo: issuing %s: %s\n",
                 is_read ? "read" : "write", nbdaio_get_error ());
        return -1;
      }
      s->busy = 1;
      next += d->io_size;
    }
    if (nbdaio_poll (d->h, 30000) <= 0) {
      fprintf (stderr, "nbdaio-aio-demo: poll: %s\n",
               nbdaio_get_error () ? nbdaio_get_error () : "timed out");
      return -1;
    }
  }
  return 0;
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main (int argc, char *argv[])
{
  if (argc != 2 || argv[1][0] == '-') {
    fprintf (argc == 2 && strcmp (argv[1], "--help") == 0 ? stdout : stderr,
             "usage: nbdaio-aio-demo URI\n"
             "Writes a pattern over the start of the export (up to 64 MiB)\n"
             "with %d commands in flight, reads it back and checks it.\n",
             DEPTH);
    return argc == 2 && strcmp (argv[1], "--help") == 0 ? 0 : 1;
  }

  struct demo d = { .h = nbdaio_create () };
  if (!d.h || nbdaio_connect_uri (d.h, argv[1]) == -1) {
    fprintf (stderr, "nbdaio-aio-demo: cannot connect to %s: %s\n", argv[1],
             nbdaio_get_error ());
    nbdaio_close (d.h);
    return 1;
  }
  if (nbdaio_is_read_only (d.h) == 1) {
    fprintf (stderr, "nbdaio-aio-demo: %s is read-only\n", argv[1]);
    nbdaio_close (d.h);
    return 1;
  }

  /* Pick a request size the server accepts and a total that fits. */
  int64_t size = nbdaio_get_size (d.h);
  int64_t min_block = nbdaio_get_block_size (d.h, NBDAIO_SIZE_MINIMUM);
  int64_t max_payload = nbdaio_get_max_payload (d.h);
  d.io_size = IO_SIZE;
  if (min_block > (int64_t) d.io_size)
    d.io_size = min_block;
  if ((int64_t) d.io_size > size)
    d.io_size = size;
  if (d.io_size == 0 || (int64_t) d.io_size > max_payload ||
      (min_block > 0 && d.io_size % min_block != 0)) {
    fprintf (stderr, "nbdaio-aio-demo: export too small (%" PRId64
             " bytes) for a request\n", size);
    nbdaio_close (d.h);
    return 1;
  }
  uint64_t total = size < MAX_TOTAL ? (uint64_t) size : MAX_TOTAL;
  total -= total % d.io_size;

  for (int i = 0; i < DEPTH; i++)
    if (!(d.slots[i].buf = malloc (d.io_size))) {
      perror ("malloc");
      return 1;
    }

  printf ("nbdaio-aio-demo: %s: %" PRId64 " bytes, %s; %" PRIu64
          " bytes in %zu-byte requests, %d in flight\n",
          argv[1], size, nbdaio_get_protocol (d.h), total, d.io_size, DEPTH);

  double start = now ();
  int ok = run_pass (&d, 0, total) == 0;
  if (ok && nbdaio_can_flush (d.h) == 1 && nbdaio_flush (d.h, 0) == -1) {
    fprintf (stderr, "nbdaio-aio-demo: flush: %s\n", nbdaio_get_error ());
    ok = 0;
  }
  ok = ok && run_pass (&d, 1, total) == 0;
  double elapsed = now () - start;

  if (nbdaio_shutdown (d.h) == -1) {
    fprintf (stderr, "nbdaio-aio-demo: disconnect: %s\n", nbdaio_get_error ());
    ok = 0;
  }
  nbdaio_close (d.h);

  printf ("nbdaio-aio-demo: %" PRIu64 " commands, %" PRIu64 " bytes in %.3f s"
          " (%.0f IOPS, %.1f MiB/s); %" PRIu64 " errors, %" PRIu64
          " mismatches\n",
          d.commands, d.bytes, elapsed,
          elapsed > 0 ? d.commands / elapsed : 0.0,
          elapsed > 0 ? d.bytes / elapsed / 1048576 : 0.0,
          d.errors, d.mismatches);
  if (d.frees != d.commands) {
    fprintf (stderr, "nbdaio-aio-demo: %" PRIu64 " free calls for %" PRIu64
             " commands\n", d.frees, d.commands);
    ok = 0;
  }
  for (int i = 0; i < DEPTH; i++)
    free (d.slots[i].buf);
  return ok && d.errors == 0 && d.mismatches == 0 ? 0 : 1;
}
