/* tests/integration/group-probe.c - one behaviour of connection groups
 * (nbdaio_group_*) per run, against the server at URI (the test script
 * starts it: nbdkit -U - ... --run):
 *   spread N      conns=N: 512 writes of 4 KiB issued through
 *                 nbdaio_group_pick and submitted with nbdaio_group_submit
 *                 reach every connection; read back (through other
 *                 connections than wrote them) they match
 *   refused N     conns=N: nbdaio_group_create fails (prints errno name and
 *                 message), the handle is still the caller's
 *   forced N      conns=N with force-multi-conn: a group flush is sent on
 *                 every connection (their stats say so)
 *   flush-order   conns=2, writes slowed by the server: a group flush
 *                 issued after them completes after every one of them
 *                 (a server's flush covers only completed writes), and a
 *                 write issued after the flush does not hold it back
 *   flush-later   auto-submit off, writes slowed: W1, flush F1, W2, flush
 *                 F2, then W3 issued but never submitted: F1 and F2 still
 *                 complete (a flush never waits for a later write)
 *   wait          auto-submit off: nbdaio_group_wait with nothing in
 *                 flight or nothing submitted returns 0 at once; after
 *                 nbdaio_group_submit, want=k returns once k completed
 * Prints what it saw; exits 0 if the behaviour held, 1 if not, 2 on bad
 * usage.
 *
 * usage: group-probe MODE [N] URI
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define BLOCK 4096
#define NWRITES 512

static int failed;

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      printf ("FAIL: " __VA_ARGS__);                                    \
      printf ("\n");                                                    \
      failed = 1;                                                       \
    }                                                                   \
  } while (0)

/* A connected handle with conns=n (and force-multi-conn if force;
 * auto-submit off with auto_submit 0). */
static int auto_submit = 1;

static struct nbdaio_handle *
open_handle (const char *uri, unsigned n, int force)
{
  struct nbdaio_handle *h = nbdaio_create ();
  char v[16];

  snprintf (v, sizeof v, "%u", n);
  if (!h || nbdaio_set_option (h, "conns", v) == -1 ||
      nbdaio_set_force_multi_conn (h, force) == -1 ||
      nbdaio_set_max_in_flight (h, 64) == -1 ||
      nbdaio_set_auto_submit (h, auto_submit) == -1 ||
      nbdaio_connect_uri (h, uri) == -1) {
    printf ("FAIL: connect: %s\n", nbdaio_get_error ());
    exit (1);
  }
  return h;
}

static struct nbdaio_group *
open_group (const char *uri, unsigned n, int force)
{
  struct nbdaio_handle *h = open_handle (uri, n, force);
  struct nbdaio_group *g = nbdaio_group_create (h);

  if (!g) {
    printf ("FAIL: nbdaio_group_create: %s\n", nbdaio_get_error ());
    exit (1);
  }
  return g;
}

/* Completion order: each callback takes the next number. */
static unsigned seq;
struct done { unsigned at; int err; int fired; };

static int
on_done (void *user_data, int *error)
{
  struct done *d = user_data;

  d->at = ++seq;
  d->err = *error;
  d->fired = 1;
  return 1;
}

static void
wait_all (struct nbdaio_group *g, const struct done *d, size_t n)
{
  for (;;) {
    size_t left = 0;
    for (size_t i = 0; i < n; i++)
      left += !d[i].fired;
    if (!left)
      return;
    nbdaio_group_submit (g);
    if (nbdaio_group_wait (g, 1, 10000) <= 0) {
      printf ("FAIL: %zu commands never completed: %s\n", left,
              nbdaio_get_error () ? nbdaio_get_error () : "");
      exit (1);
    }
  }
}

static void
fill (uint8_t *b, unsigned n)
{
  for (unsigned i = 0; i < BLOCK; i++)
    b[i] = (uint8_t) (n * 31 + i / 7);
}

static void
issue_stats (struct nbdaio_handle *h, struct nbdaio_stats *st)
{
  nbdaio_get_stats (h, st, sizeof *st);
}

static int
spread (const char *uri, unsigned n)
{
  struct nbdaio_group *g = open_group (uri, n, 0);
  static uint8_t buf[NWRITES][BLOCK], back[NWRITES][BLOCK];
  static struct done d[NWRITES];
  unsigned idx, wrote_on[NWRITES];

  CHECK (nbdaio_group_get_size (g) == n, "size %u, want %u",
         nbdaio_group_get_size (g), n);
  for (unsigned i = 0; i < NWRITES; i++) {
    struct nbdaio_handle *h = nbdaio_group_pick (g, &idx);
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &d[i] };
    fill (buf[i], i);
    wrote_on[i] = idx;
    if (nbdaio_aio_pwrite (h, buf[i], BLOCK, (uint64_t) i * BLOCK, cb, 0) < 1) {
      /* max-in-flight on that one: reap and retry */
      nbdaio_group_submit (g);
      nbdaio_group_wait (g, 1, 10000);
      i--;
    }
  }
  wait_all (g, d, NWRITES);
  for (unsigned c = 0; c < n; c++) {
    struct nbdaio_stats st;
    issue_stats (nbdaio_group_get_handle (g, c), &st);
    printf ("connection %u: %llu writes\n", c,
            (unsigned long long) st.write.issued);
    CHECK (st.write.issued > 0, "connection %u got no write", c);
  }
  {
    struct nbdaio_stats all;
    CHECK (nbdaio_group_get_stats (g, &all, sizeof all) == (int) sizeof all,
           "group stats: %s", nbdaio_get_error ());
    CHECK (all.write.issued == NWRITES && all.write.completed == NWRITES,
           "group stats: %llu writes issued, %llu completed, want %u",
           (unsigned long long) all.write.issued,
           (unsigned long long) all.write.completed, NWRITES);
    CHECK (all.payload_sent == (uint64_t) NWRITES * BLOCK,
           "group stats: %llu payload bytes sent",
           (unsigned long long) all.payload_sent);
  }
  memset (d, 0, sizeof d);
  for (unsigned i = 0; i < NWRITES; i++) {
    struct nbdaio_handle *h = nbdaio_group_get_handle (g, (wrote_on[i] + 1) % n);
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &d[i] };
    if (nbdaio_aio_pread (h, back[i], BLOCK, (uint64_t) i * BLOCK, cb, 0) < 1) {
      nbdaio_group_submit (g);
      nbdaio_group_wait (g, 1, 10000);
      i--;
    }
  }
  wait_all (g, d, NWRITES);
  for (unsigned i = 0; i < NWRITES; i++) {
    CHECK (d[i].err == 0, "read %u failed: %d", i, d[i].err);
    CHECK (memcmp (buf[i], back[i], BLOCK) == 0,
           "block %u (written on connection %u) reads back wrong", i,
           wrote_on[i]);
  }
  nbdaio_group_close (g);
  return failed;
}

static int
refused (const char *uri, unsigned n)
{
  struct nbdaio_handle *h = open_handle (uri, n, 0);
  struct nbdaio_group *g = nbdaio_group_create (h);
  uint8_t b[512];

  CHECK (!g, "nbdaio_group_create succeeded without multi-conn");
  printf ("errno %s: %s\n", nbdaio_get_errno () == ENOTSUP ? "ENOTSUP" :
          "other", nbdaio_get_error ());
  CHECK (nbdaio_get_errno () == ENOTSUP, "errno %d", nbdaio_get_errno ());
  /* h is untouched and still works */
  CHECK (nbdaio_pread (h, b, sizeof b, 0, 0) == 0, "h no longer reads: %s",
         nbdaio_get_error ());
  nbdaio_group_close (g);
  nbdaio_close (h);
  return failed;
}

static int
forced (const char *uri, unsigned n)
{
  struct nbdaio_group *g = open_group (uri, n, 1);
  struct done d = { 0 };
  nbdaio_completion_callback cb = { .callback = on_done, .user_data = &d };

  CHECK (nbdaio_group_aio_flush (g, cb, 0) >= 1, "flush: %s",
         nbdaio_get_error ());
  wait_all (g, &d, 1);
  CHECK (d.err == 0, "flush failed: %d", d.err);
  for (unsigned c = 0; c < n; c++) {
    struct nbdaio_stats st;
    issue_stats (nbdaio_group_get_handle (g, c), &st);
    printf ("connection %u: %llu flushes\n", c,
            (unsigned long long) st.flush.issued);
    CHECK (st.flush.issued == 1, "connection %u: %llu flushes, want 1", c,
           (unsigned long long) st.flush.issued);
  }
  nbdaio_group_close (g);
  return failed;
}

static int
flush_order (const char *uri)
{
  struct nbdaio_group *g = open_group (uri, 2, 0);
  static uint8_t buf[BLOCK];
  struct done w[4] = { { 0 } }, f = { 0 }, late = { 0 };
  int64_t t0 = cli_now_ms ();

  /* two writes on each connection (the server delays writes), then the
   * flush, then one more write */
  for (unsigned i = 0; i < 4; i++) {
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &w[i] };
    CHECK (nbdaio_aio_pwrite (nbdaio_group_get_handle (g, i % 2), buf, BLOCK,
                              (uint64_t) i * BLOCK, cb, 0) >= 1, "write: %s",
           nbdaio_get_error ());
  }
  nbdaio_group_submit (g);
  {
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &f };
    CHECK (nbdaio_group_aio_flush (g, cb, 0) >= 1, "flush: %s",
           nbdaio_get_error ());
  }
  {
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &late };
    CHECK (nbdaio_aio_pwrite (nbdaio_group_get_handle (g, 0), buf, BLOCK,
                              8 * BLOCK, cb, 0) >= 1, "write: %s",
           nbdaio_get_error ());
  }
  nbdaio_group_submit (g);
  wait_all (g, &f, 1);
  printf ("flush completed as #%u after %lld ms; writes as #%u #%u #%u "
          "#%u\n", f.at, (long long) (cli_now_ms () - t0), w[0].at, w[1].at,
          w[2].at, w[3].at);
  for (unsigned i = 0; i < 4; i++)
    CHECK (w[i].fired && w[i].at < f.at, "write %u (#%u) completed after "
           "the flush (#%u)", i, w[i].at, f.at);
  CHECK (f.err == 0, "flush failed: %d", f.err);
  wait_all (g, &late, 1);
  nbdaio_group_close (g);
  return failed;
}

static int
flush_later (const char *uri)
{
  struct nbdaio_group *g = (auto_submit = 0, open_group (uri, 2, 0));
  static uint8_t buf[BLOCK];
  struct done w[3] = { { 0 } }, f[2] = { { 0 } };
  int64_t t0 = cli_now_ms ();

  for (unsigned i = 0; i < 3; i++) {
    nbdaio_completion_callback wc = { .callback = on_done, .user_data = &w[i] };
    nbdaio_completion_callback fc = { .callback = on_done,
                                      .user_data = &f[i < 2 ? i : 0] };
    CHECK (nbdaio_aio_pwrite (nbdaio_group_get_handle (g, i % 2), buf, BLOCK,
                              (uint64_t) i * BLOCK, wc, 0) >= 1, "write: %s",
           nbdaio_get_error ());
    if (i == 2)
      break;                    /* W3: never submitted */
    nbdaio_group_submit (g);
    CHECK (nbdaio_group_aio_flush (g, fc, 0) >= 1, "flush: %s",
           nbdaio_get_error ());
  }
  while ((!f[0].fired || !f[1].fired) && cli_now_ms () - t0 < 5000)
    nbdaio_group_wait (g, 1, 500);
  printf ("flushes completed as #%u #%u after %lld ms; W3 %s\n", f[0].at,
          f[1].at, (long long) (cli_now_ms () - t0),
          w[2].fired ? "completed" : "never sent");
  CHECK (f[0].fired && f[1].fired, "a flush waited for a later write");
  CHECK (w[0].at < f[0].at && w[1].at < f[1].at, "a flush completed before "
         "the write issued before it");
  CHECK (!w[2].fired, "W3 was sent without a submit");
  nbdaio_group_close (g);
  return failed;
}

static int
wait_calls (const char *uri)
{
  struct nbdaio_group *g = (auto_submit = 0, open_group (uri, 2, 0));
  static uint8_t buf[8][BLOCK];
  struct done d[8] = { { 0 } };
  int64_t t0;
  int r;

  /* nothing in flight: returns 0 at once, whatever the timeout */
  t0 = cli_now_ms ();
  r = nbdaio_group_wait (g, 1, 5000);
  CHECK (r == 0 && cli_now_ms () - t0 < 1000, "idle wait: %d after %lld ms", r,
         (long long) (cli_now_ms () - t0));
  for (unsigned i = 0; i < 8; i++) {
    nbdaio_completion_callback cb = { .callback = on_done, .user_data = &d[i] };
    nbdaio_aio_pread (nbdaio_group_pick (g, NULL), buf[i], BLOCK,
                      (uint64_t) i * BLOCK, cb, 0);
  }
  /* not submitted: nothing to wait for */
  CHECK (nbdaio_group_wait (g, 8, 5000) == 0, "waited for unsubmitted "
         "commands");
  CHECK (nbdaio_group_submit (g) == 8, "submit did not send 8");
  r = nbdaio_group_wait (g, 8, 10000);
  CHECK (r == 8, "wait for 8 returned %d", r);
  for (unsigned i = 0; i < 8; i++)
    CHECK (d[i].fired && d[i].err == 0, "read %u: %d", i, d[i].err);
  nbdaio_group_close (g);
  return failed;
}

int
main (int argc, char **argv)
{
  unsigned n = argc == 4 ? (unsigned) atoi (argv[2]) : 0;
  const char *uri = argv[argc - 1];

  if (argc == 4 && strcmp (argv[1], "spread") == 0)
    return spread (uri, n);
  if (argc == 4 && strcmp (argv[1], "refused") == 0)
    return refused (uri, n);
  if (argc == 4 && strcmp (argv[1], "forced") == 0)
    return forced (uri, n);
  if (argc == 3 && strcmp (argv[1], "flush-order") == 0)
    return flush_order (uri);
  if (argc == 3 && strcmp (argv[1], "flush-later") == 0)
    return flush_later (uri);
  if (argc == 3 && strcmp (argv[1], "wait") == 0)
    return wait_calls (uri);
  fprintf (stderr, "usage: group-probe spread|refused|forced N URI | "
           "flush-order URI | flush-later URI | wait URI\n");
  return 2;
}
