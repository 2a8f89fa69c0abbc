/* tools/check/probe-concurrency.c - nbdaio-check: many commands in
 * flight at once, every one verified (concurrency.in-flight); whether the
 * server replied out of order (concurrency.out-of-order, information);
 * multi-conn consistency where advertised: a write on one connection, a
 * flush on a second, a read on a third (multi-conn.flush-visible), and a
 * FUA write seen by another connection (multi-conn.fua-visible).
 *
 * Scratch slots used: 22 and 23 (multi-conn), 24-87 (the 64 pieces).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define NCMD 64

#define R_INFLIGHT "Transmission phase: Replies need not be sent in the " \
  "same order as requests ... the server MUST use the same value for " \
  "cookie as was sent by the client in the corresponding request"
#define R_ORDER "Ordering of messages and writes: The server MAY process " \
  "commands out of order, and MAY reply out of order"
#define R_MC_FLUSH "Transmission flags / NBD_FLAG_CAN_MULTI_CONN: the " \
  "effects of NBD_CMD_FLUSH and NBD_CMD_FLAG_FUA MUST be visible across " \
  "all connections when the server sends its reply to that command"

struct piece {
  struct done *d;       /* what conn_wait watches */
  int *counter;
  int order;            /* completion rank */
};

static int
piece_fn (void *user_data, int *error)
{
  struct piece *p = user_data;
  p->d->finished = 1;
  p->d->err = *error;
  p->order = (*p->counter)++;
  return 1;
}

static nbdaio_completion_callback
piece_cb (struct piece *p, struct done *d, int *counter)
{
  d->finished = 0;
  d->err = 0;
  p->d = d;
  p->counter = counter;
  p->order = -1;
  return (nbdaio_completion_callback) { .callback = piece_fn,
                                        .user_data = p };
}

/* 64 commands in flight; returns the number of completions that came
 * out of issue order, or -1 when the probe failed (reported). */
static int
in_flight (struct ctx *c)
{
  const char *id = "concurrency.in-flight";
  int writes = c->cfg->write && !c->read_only;
  uint64_t u = ctx_unit (c), base = ctx_slot (c, 24);
  unsigned char *expect = malloc (NCMD * u), *got = calloc (NCMD, u);
  struct piece p[NCMD];
  struct done dd[NCMD];
  struct nbdaio_handle *h;
  struct outcome o;
  int counter = 0, peak, late = -1, i;

  if (!(h = ctx_conn (c, id)))
    goto out;
  /* Reference contents: with --write, pieces 32-63 get known data and
   * 0-31 are overwritten concurrently; without, all 64 are read first
   * one by one. */
  if (writes) {
    fill_pattern (expect, NCMD * u, base, c->seed, 24);
    for (i = NCMD / 2; i < NCMD; i++)
      if (c_pwrite (c->cfg, h, expect + i * u, u, base + i * u, 0, &o) == -1)
        goto step_failed;
  }
  else
    for (i = 0; i < NCMD; i++)
      if (c_pread (c->cfg, h, expect + i * u, u, base + i * u, 0, &o) == -1)
        goto step_failed;

  /* all 64 at once: write piece k and read piece 32+k alternately */
  for (i = 0; i < NCMD; i++) {
    int k = writes ? (i % 2 ? NCMD / 2 + i / 2 : i / 2) : i;
    int64_t cookie;
    if (writes && i % 2 == 0)
      cookie = nbdaio_aio_pwrite (h, expect + k * u, u, base + k * u,
                                  piece_cb (&p[i], &dd[i], &counter), 0);
    else
      cookie = nbdaio_aio_pread (h, got + k * u, u, base + k * u,
                                 piece_cb (&p[i], &dd[i], &counter), 0);
    if (cookie == -1) {
      struct outcome ignored;
      conn_run (c->cfg, h, -1, &dd[i], &o);
      /* what was issued must still complete before we leave */
      if (i)
        conn_wait (c->cfg, h, dd, (size_t) i, &ignored);
      goto step_failed;
    }
  }
  peak = nbdaio_aio_in_flight (h);
  if (conn_wait (c->cfg, h, dd, NCMD, &o) == -1)
    goto step_failed;
  if (o.err) {
    report (id, V_FAIL, R_INFLIGHT, NULL, "with %d commands in flight, "
            "some failed (first error %s)", NCMD, errno_name (o.err));
    goto out;
  }
  /* with writes, read back what was written concurrently */
  if (writes)
    for (i = 0; i < NCMD / 2; i++)
      if (c_pread (c->cfg, h, got + i * u, u, base + i * u, 0, &o) == -1)
        goto step_failed;
  for (i = 0; i < NCMD; i++)
    if (memcmp (expect + i * u, got + i * u, u) != 0) {
      report (id, V_FAIL, R_INFLIGHT, NULL, "with %d commands in flight, "
              "piece %d (offset %" PRIu64 ") %s", NCMD, i, base + i * u,
              writes && i < NCMD / 2 ? "read back different from what was "
              "written" : "was read different from one command at a time");
      goto out;
    }
  late = 0;
  for (i = 1; i < NCMD; i++)
    if (p[i].order < p[i - 1].order)
      late++;
  report (id, V_PASS, R_INFLIGHT, NULL, "%d commands (%s) in flight at once "
          "(%d queued or sent together), all verified", NCMD,
          writes ? "32 writes, 32 reads" : "reads", peak);
  goto out;

 step_failed:
  if (!report_broken (id, R_INFLIGHT, &o))
    report (id, V_FAIL, R_INFLIGHT, NULL, "%s", outcome_text (&o));
 out:
  ctx_check_alive (c);
  free (expect);
  free (got);
  return late;
}

static void
multi_conn (struct ctx *c, const char *id, int fua)
{
  uint64_t u = ctx_unit (c), off = ctx_slot (c, fua ? 23 : 22);
  unsigned char *w = malloc (u), *r = calloc (1, u);
  struct nbdaio_handle *hs[3] = { NULL, NULL, NULL };
  int nconn = fua ? 2 : 3;
  struct outcome o;

  if (!c->can_multi_conn) {
    report (id, V_SKIP, R_MC_FLUSH, NULL,
            "NBD_FLAG_CAN_MULTI_CONN not advertised");
    goto out;
  }
  if (fua ? !c->can_fua : !c->can_flush) {
    report (id, V_SKIP, R_MC_FLUSH, NULL, "%s not advertised",
            fua ? "NBD_FLAG_SEND_FUA" : "NBD_FLAG_SEND_FLUSH");
    goto out;
  }
  if (need_write (c, id, R_MC_FLUSH))
    goto out;
  ctx_close_all (c);
  for (int i = 0; i < nconn; i++)
    if (!(hs[i] = check_open (c->cfg, NBDAIO_STRICT_ALL, &o))) {
      report (id, V_FAIL, R_MC_FLUSH, o.violation[0] ? o.violation : NULL,
              "cannot open connection %d: %s", i + 1, o.message);
      goto out;
    }
  /* each connection reads the area first, so that a per-connection
   * cache would hold the old data */
  for (int i = 0; i < nconn; i++)
    if (c_pread (c->cfg, hs[i], r, u, off, 0, &o) == -1)
      goto failed;
  fill_pattern (w, u, off, c->seed, fua ? 23 : 22);
  if (c_pwrite (c->cfg, hs[0], w, u, off, fua ? NBDAIO_CMD_FLAG_FUA : 0,
                &o) == -1)
    goto failed;
  if (!fua && c_flush (c->cfg, hs[1], 0, &o) == -1)
    goto failed;
  if (c_pread (c->cfg, hs[nconn - 1], r, u, off, 0, &o) == -1)
    goto failed;
  if (memcmp (w, r, u) != 0)
    report (id, V_FAIL, R_MC_FLUSH, NULL, fua ?
            "a FUA write on connection 1 is not seen by a read on "
            "connection 2" : "a write on connection 1, flushed on "
            "connection 2, is not seen by a read on connection 3");
  else
    report (id, V_PASS, R_MC_FLUSH, NULL, fua ?
            "a FUA write on connection 1 is seen on connection 2" :
            "write on connection 1, flush on connection 2: connection 3 "
            "reads the new data");
  goto out;

 failed:
  if (!report_broken (id, R_MC_FLUSH, &o))
    report (id, V_FAIL, R_MC_FLUSH, NULL, "%s", outcome_text (&o));
 out:
  for (int i = 0; i < 3; i++)
    check_close (c->cfg, hs[i]);
  free (w);
  free (r);
}

void
probe_concurrency (struct ctx *c)
{
  int late = in_flight (c);

  if (late < 0)
    report ("concurrency.out-of-order", V_SKIP, R_ORDER, NULL,
            "the in-flight probe did not complete");
  else
    report ("concurrency.out-of-order", V_PASS, R_ORDER, NULL,
            late ? "the server replied out of order (%d of %d replies "
            "before an earlier request's); the client accepted it" :
            "the server replied in order (%d of %d out of order)", late,
            NCMD);
  multi_conn (c, "multi-conn.flush-visible", 0);
  multi_conn (c, "multi-conn.fua-visible", 1);
}
