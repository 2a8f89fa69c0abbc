/* tools/check/conn.c - nbdaio-check: opening connections with the
 * user's settings, running commands with a deadline (a stalling server
 * makes a command fail with a timeout, never a hang), and turning what
 * happened into a struct outcome: the command's errno, a lost connection,
 * or a protocol violation with the library's rule tag.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli-common.h"

/* The first rule tag the library reported (nbdaio_get_violation,
 * nbdaio_get_connection_violation) is the outcome's violation. */
static void
note_violation (struct outcome *o, const char *tag)
{
  if (tag && !o->violation[0])
    snprintf (o->violation, sizeof o->violation, "%s", tag);
}

static void
set_message (struct outcome *o, const char *msg)
{
  snprintf (o->message, sizeof o->message, "%s", msg ? msg : "");
}

void
outcome_from_error (struct nbdaio_handle *h, struct outcome *o)
{
  const char *conn = h ? nbdaio_get_connection_error (h) : NULL;
  const char *msg = nbdaio_get_error ();

  o->err = nbdaio_get_errno ();
  if (o->err == ETIMEDOUT)
    o->timed_out = 1;
  /* the connection's own error says best why it ended */
  set_message (o, conn ? conn : msg ? msg : "unknown error");
  note_violation (o, h ? nbdaio_get_connection_violation (h) : NULL);
  note_violation (o, nbdaio_get_violation ());
}

/* A fresh handle with the profile's and the command line's settings
 * applied and the connect timeout set; strict local checks as given.
 * NULL on failure, with the reason in *o. */
static struct nbdaio_handle *
check_handle (const struct config *cfg, unsigned strict, struct outcome *o)
{
  struct nbdaio_handle *h = nbdaio_create ();

  memset (o, 0, sizeof *o);
  if (!h) {
    outcome_from_error (NULL, o);
    return NULL;
  }
  if (nbdaio_set_connect_timeout (h, cfg->timeout_ms) == -1 ||
      (cfg->profile && nbdaio_profile_apply (cfg->profile, h) == -1) ||
      cli_settings_apply (&cfg->settings, h) == -1)
    goto fail;
  /* each probe's request must reach the server as it is: never split
   * (whatever --split or the profile says), checked as strict says; every
   * violation ends the connection, so that a probe sees it (FAIL) */
  if (nbdaio_set_split (h, 0) == -1 || nbdaio_set_strict (h, strict) == -1 ||
      nbdaio_set_reply_violations (h, NBDAIO_VIOLATIONS_CLOSE) == -1)
    goto fail;
  return h;

 fail:
  outcome_from_error (NULL, o);
  nbdaio_close (h);
  return NULL;
}

/* Connect h (made by check_handle) to the server.  0, or -1 with the
 * reason in *o. */
static int
check_connect (const struct config *cfg, struct nbdaio_handle *h,
               struct outcome *o)
{
  int r;

  memset (o, 0, sizeof *o);
  if (cfg->uri)
    r = nbdaio_connect_uri (h, cfg->uri);
  else
    r = nbdaio_profile_connect (cfg->profile, h);
  if (r == -1) {
    outcome_from_error (NULL, o);
    o->dead = 1;
  }
  return r;
}

struct nbdaio_handle *
check_open_with (const struct config *cfg, unsigned strict,
                 check_setup_fn setup, const void *arg, struct outcome *o)
{
  struct nbdaio_handle *h = check_handle (cfg, strict, o);

  if (h && setup && setup (h, arg) == -1) {
    outcome_from_error (h, o);
    nbdaio_close (h);
    return NULL;
  }
  if (h && check_connect (cfg, h, o) == -1) {
    nbdaio_close (h);
    return NULL;
  }
  return h;
}

struct nbdaio_handle *
check_open (const struct config *cfg, unsigned strict, struct outcome *o)
{
  return check_open_with (cfg, strict, NULL, NULL, o);
}

void
check_close (const struct config *cfg, struct nbdaio_handle *h)
{
  (void) cfg;
  /* nbdaio_close sends NBD_CMD_DISC when the connection is idle and
   * never waits for the server. */
  nbdaio_close (h);
}

/* ---- commands with a deadline ---------------------------------------- */

static int
done_fn (void *user_data, int *error)
{
  struct done *d = user_data;
  d->finished = 1;
  d->err = *error;
  return 1;
}

nbdaio_completion_callback
done_cb (struct done *d)
{
  d->finished = 0;
  d->err = 0;
  return (nbdaio_completion_callback) { .callback = done_fn, .user_data = d };
}

static void
dead_outcome (struct nbdaio_handle *h, struct outcome *o)
{
  const char *conn = nbdaio_get_connection_error (h);
  o->dead = 1;
  set_message (o, conn ? conn : "the connection ended");
  note_violation (o, nbdaio_get_connection_violation (h));
}

int
conn_wait (const struct config *cfg, struct nbdaio_handle *h,
           struct done *d, size_t n, struct outcome *o)
{
  int64_t deadline = cli_now_ms () + cfg->timeout_ms;
  size_t i;

  memset (o, 0, sizeof *o);
  for (;;) {
    for (i = 0; i < n && d[i].finished; i++)
      ;
    if (i == n)
      break;
    int64_t left = deadline - cli_now_ms ();
    if (left <= 0) {
      char reason[128];
      snprintf (reason, sizeof reason, "no reply within %.3g s (the "
                "--timeout): the checker ended the connection",
                cfg->timeout_ms / 1000.0);
      o->timed_out = 1;
      nbdaio_abort (h, ETIMEDOUT, reason);
      break;
    }
    if (nbdaio_poll (h, left > 1000 ? 1000 : (int) left) == -1 &&
        nbdaio_is_connected (h)) {
      /* a failure that left the connection up: give up on it */
      char reason[600];
      snprintf (reason, sizeof reason, "nbdaio_poll failed: %s",
                nbdaio_get_error () ? nbdaio_get_error () : "?");
      nbdaio_abort (h, EIO, reason);
    }
    if (!nbdaio_is_connected (h))
      break;
  }
  for (i = 0; i < n; i++)
    if (d[i].finished && d[i].err && !o->err)
      o->err = d[i].err;
  if (!nbdaio_is_connected (h))
    dead_outcome (h, o);
  for (i = 0; i < n && d[i].finished; i++)
    ;
  return i == n && !o->timed_out && !o->dead ? 0 : -1;
}

int
conn_run (const struct config *cfg, struct nbdaio_handle *h, int64_t cookie,
          struct done *d, struct outcome *o)
{
  if (cookie == -1) {
    memset (o, 0, sizeof *o);
    outcome_from_error (h, o);
    if (o->err == ESHUTDOWN && nbdaio_is_connected (h))
      /* soft disconnect under way: end it so the next probe reconnects */
      nbdaio_abort (h, ESHUTDOWN, "the server asked to shut down "
                    "(NBD_ESHUTDOWN)");
    if (o->err == ENOTCONN || o->err == ESHUTDOWN || !nbdaio_is_connected (h))
      o->dead = 1;
    if (!o->dead) {
      /* refused locally: keep the library's own message */
      const char *msg = nbdaio_get_error ();
      snprintf (o->message, sizeof o->message, "%s", msg ? msg : "");
    }
    return -1;
  }
  if (conn_wait (cfg, h, d, 1, o) == -1)
    return -1;
  return o->err ? -1 : 0;
}

int
c_pread (const struct config *cfg, struct nbdaio_handle *h, void *buf,
         size_t count, uint64_t offset, uint32_t flags, struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_pread (h, buf, count, offset,
                                             done_cb (&d), flags), &d, o);
}

int
c_pwrite (const struct config *cfg, struct nbdaio_handle *h,
          const void *buf, size_t count, uint64_t offset, uint32_t flags,
          struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_pwrite (h, buf, count, offset,
                                              done_cb (&d), flags), &d, o);
}

int
c_trim (const struct config *cfg, struct nbdaio_handle *h, uint64_t count,
        uint64_t offset, uint32_t flags, struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_trim (h, count, offset, done_cb (&d),
                                            flags), &d, o);
}

int
c_zero (const struct config *cfg, struct nbdaio_handle *h, uint64_t count,
        uint64_t offset, uint32_t flags, struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_zero (h, count, offset, done_cb (&d),
                                            flags), &d, o);
}

int
c_cache (const struct config *cfg, struct nbdaio_handle *h, uint64_t count,
         uint64_t offset, uint32_t flags, struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_cache (h, count, offset, done_cb (&d),
                                             flags), &d, o);
}

int
c_flush (const struct config *cfg, struct nbdaio_handle *h, uint32_t flags,
         struct outcome *o)
{
  struct done d;
  return conn_run (cfg, h, nbdaio_aio_flush (h, done_cb (&d), flags), &d, o);
}

static int
extent_fn (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct extents *e = user_data;
  (void) metacontext;
  (void) error;
  if (e->chunks++ == 0) {
    e->offset = offset;
    for (size_t i = 0; i + 1 < nr_entries; i += 2) {
      if (e->n < 64) {
        e->len[e->n] = entries[i];
        e->flags[e->n] = entries[i + 1];
        e->n++;
      }
    }
  }
  e->total += nr_entries / 2;
  return 0;
}

int
c_block_status (const struct config *cfg, struct nbdaio_handle *h,
                uint64_t count, uint64_t offset, uint32_t flags,
                struct extents *e, struct outcome *o)
{
  struct done d;
  memset (e, 0, sizeof *e);
  nbdaio_extent_callback cb = { .callback = extent_fn, .user_data = e };
  return conn_run (cfg, h, nbdaio_aio_block_status (h, count, offset, cb,
                                                    done_cb (&d), flags),
                   &d, o);
}

static int
extent64_fn (void *user_data, const char *metacontext, uint64_t offset,
             nbdaio_extent64 *entries, size_t nr_entries, int *error)
{
  struct extents64 *e = user_data;
  int i;
  (void) offset;
  (void) error;
  for (i = 0; i < e->ncontexts; i++)
    if (strcmp (e->name[i], metacontext) == 0)
      break;
  if (i == e->ncontexts && i < BS64_MAX_CONTEXTS)
    e->name[e->ncontexts++] = metacontext;
  if (i < e->ncontexts)
    e->chunks[i]++;
  else
    e->other++;
  e->extents += nr_entries;
  for (size_t k = 0; k < nr_entries; k++)
    e->bytes += entries[k].length;
  return 0;
}

int
c_block_status_64 (const struct config *cfg, struct nbdaio_handle *h,
                   uint64_t count, uint64_t offset, uint32_t flags,
                   const char *const *contexts, struct extents64 *e,
                   struct outcome *o)
{
  struct done d;
  memset (e, 0, sizeof *e);
  nbdaio_extent64_callback cb = { .callback = extent64_fn, .user_data = e };
  return conn_run (cfg, h, contexts ?
                   nbdaio_aio_block_status_filter (h, count, offset, contexts,
                                                   cb, done_cb (&d), flags) :
                   nbdaio_aio_block_status_64 (h, count, offset, cb,
                                               done_cb (&d), flags),
                   &d, o);
}

static int
chunk_fn (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct chunks *ch = user_data;
  (void) subbuf;
  (void) count;
  (void) offset;
  (void) error;
  switch (status) {
  case NBDAIO_READ_DATA:  ch->data++; break;
  case NBDAIO_READ_HOLE:  ch->hole++; break;
  default:                ch->error++; break;
  }
  return 0;
}

int
c_pread_chunks (const struct config *cfg, struct nbdaio_handle *h,
                void *buf, size_t count, uint64_t offset, uint32_t flags,
                struct chunks *ch, struct outcome *o)
{
  struct done d;
  memset (ch, 0, sizeof *ch);
  nbdaio_chunk_callback cb = { .callback = chunk_fn, .user_data = ch };
  return conn_run (cfg, h, nbdaio_aio_pread_structured (h, buf, count, offset,
                                                        cb, done_cb (&d),
                                                        flags), &d, o);
}

/* ---- describing outcomes ---------------------------------------------- */

const char *
errno_name (int e)
{
  static __thread char buf[16];
  switch (e) {
  case EPERM:     return "EPERM";
  case EIO:       return "EIO";
  case ENOMEM:    return "ENOMEM";
  case EINVAL:    return "EINVAL";
  case ENOSPC:    return "ENOSPC";
  case EOVERFLOW: return "EOVERFLOW";
  case ENOTSUP:   return "ENOTSUP";
  case ESHUTDOWN: return "ESHUTDOWN";
  case ENOTCONN:  return "ENOTCONN";
  case EPROTO:    return "EPROTO";
  case ETIMEDOUT: return "ETIMEDOUT";
  case ERANGE:    return "ERANGE";
  case ENOENT:    return "ENOENT";
  default:
    snprintf (buf, sizeof buf, "errno %d", e);
    return buf;
  }
}

const char *
outcome_text (const struct outcome *o)
{
  static __thread char buf[600];
  if (o->timed_out)
    snprintf (buf, sizeof buf, "timed out: %s", o->message);
  else if (o->dead)
    snprintf (buf, sizeof buf, "connection lost: %s", o->message);
  else if (o->err)
    snprintf (buf, sizeof buf, "failed with %s", errno_name (o->err));
  else
    snprintf (buf, sizeof buf, "succeeded");
  return buf;
}

int
report_broken (const char *id, const char *rule, const struct outcome *o)
{
  if (o->violation[0]) {
    report (id, V_FAIL, rule, o->violation, "protocol violation: %s",
            o->message);
    return 1;
  }
  if (o->timed_out) {
    report (id, V_FAIL, rule, NULL, "the server did not reply: %s",
            o->message);
    return 1;
  }
  if (o->dead) {
    report (id, V_FAIL, "Transmission phase / Terminating the transmission "
            "phase: The client and the server MUST NOT initiate any form of "
            "disconnect other than in one of the above circumstances", NULL,
            "the server ended the connection: %s", o->message);
    return 1;
  }
  return 0;
}

/* ---- shared helpers ----------------------------------------------------- */

void
fill_pattern (void *buf, size_t n, uint64_t offset, uint32_t seed,
              uint32_t tag)
{
  unsigned char *p = buf;
  for (size_t i = 0; i < n; i++) {
    uint64_t o = offset + i;
    uint64_t x = (o >> 3) * 0x9E3779B97F4A7C15ull ^ seed ^
      ((uint64_t) tag << 32);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    unsigned char b = (unsigned char) (x >> ((o & 7) * 8));
    if ((o & 511) == 0 && b == 0)
      b = 0x5a;               /* never an all-zero 512-byte block */
    p[i] = b;
  }
}

int
is_zero (const void *buf, size_t n)
{
  const unsigned char *p = buf;
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

uint64_t
ctx_align (const struct ctx *c)
{
  return c->min_block > 512 ? (uint64_t) c->min_block : 512;
}

uint64_t
ctx_unit (const struct ctx *c)
{
  return ctx_align (c) > 4096 ? ctx_align (c) : 4096;
}

uint64_t
ctx_slot (const struct ctx *c, unsigned k)
{
  return c->scratch_offset + k * ctx_unit (c);
}

int
need_write (struct ctx *c, const char *id, const char *rule)
{
  if (!c->cfg->write) {
    report (id, V_SKIP, rule, NULL, "modifies data: needs --write");
    return 1;
  }
  if (c->read_only) {
    report (id, V_SKIP, rule, NULL, "the export is read-only");
    return 1;
  }
  return 0;
}

void
ctx_close_all (struct ctx *c)
{
  check_close (c->cfg, c->h);
  check_close (c->cfg, c->loose);
  c->h = c->loose = NULL;
}

void
ctx_check_alive (struct ctx *c)
{
  if (c->h && !nbdaio_is_connected (c->h)) {
    nbdaio_close (c->h);
    c->h = NULL;
  }
  if (c->loose && !nbdaio_is_connected (c->loose)) {
    nbdaio_close (c->loose);
    c->loose = NULL;
  }
}

struct nbdaio_handle *
ctx_loose (struct ctx *c, const char *id)
{
  struct outcome o;

  ctx_check_alive (c);
  if (c->loose)
    return c->loose;
  ctx_close_all (c);
  c->loose = check_open (c->cfg, 0, &o);
  if (!c->loose && id)
    report (id, V_FAIL, "Protocol phases: a server accepts connections",
            o.violation[0] ? o.violation : NULL,
            "cannot connect to the server again: %s", o.message);
  return c->loose;
}

struct nbdaio_handle *
ctx_conn (struct ctx *c, const char *id)
{
  struct outcome o;

  ctx_check_alive (c);
  if (c->h)
    return c->h;
  /* one connection at a time: servers may limit their clients */
  ctx_close_all (c);
  c->h = check_open (c->cfg, NBDAIO_STRICT_ALL, &o);
  if (!c->h && id)
    report (id, V_FAIL, "Protocol phases: a server accepts connections",
            o.violation[0] ? o.violation : NULL,
            "cannot connect to the server again: %s", o.message);
  return c->h;
}
