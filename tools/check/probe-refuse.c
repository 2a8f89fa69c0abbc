/* tools/check/probe-refuse.c - nbdaio-check: what a server must (or
 * should) refuse (refuse.*), sent on a connection whose local checks are
 * off: requests past the end, unaligned requests when a minimum block
 * size was advertised, commands and flags not advertised, an unknown
 * flag, writes to a read-only export, a zero-length read.
 *
 * Verdicts follow the specification's words: the expected error is a
 * SHOULD (another error is a WARN, so is success where only a SHOULD asks
 * for an error), a hard disconnect is allowed when the client broke a
 * MUST ("Either side MAY initiate a hard disconnect if it detects a
 * violation by the other party of a mandatory condition") and a FAIL
 * otherwise; success is a FAIL only where a MUST asks for an error.
 *
 * Scratch slots used: 0 (read-only write: the same data written back),
 * 8 (unadvertised trim / zero, fast zero without the flag), 9 (unaligned
 * write).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define R_PAST_END "Size constraints: the client MUST NOT use a length " \
  "which, when added to offset, would exceed the export size.  The server " \
  "SHOULD report an NBD_EINVAL error if the client's request ... would " \
  "exceed the export size"
#define R_PAST_END_WRITE "Error values: The server SHOULD return NBD_ENOSPC " \
  "if it receives a write request including one or more sectors beyond " \
  "the size of the device (Size constraints: or NBD_EINVAL)"
#define R_PAST_END_ZERO "NBD_CMD_WRITE_ZEROES: The server SHOULD return " \
  "NBD_ENOSPC if it receives a write zeroes request including one or more " \
  "sectors beyond the size of the device"
#define R_PAST_END_TRIM "Error values: It SHOULD return NBD_EINVAL if it " \
  "receives a read or trim request including one or more sectors beyond " \
  "the size of the device"
#define R_PAST_END_BS "NBD_CMD_BLOCK_STATUS: The server SHOULD return " \
  "NBD_EINVAL if it receives a NBD_CMD_BLOCK_STATUS request including one " \
  "or more sectors beyond the size of the device"
#define R_UNALIGNED "Size constraints: the client MUST ensure that offset " \
  "and length are integer multiples of any advertised minimum block size; " \
  "Error values: [the server] SHOULD return NBD_EINVAL if ... a read or " \
  "write request is not aligned to advertised minimum block sizes"
#define R_READ_ONLY "Transmission flags / NBD_FLAG_READ_ONLY: If this flag " \
  "is set, the server MUST error subsequent write operations to the " \
  "export; Error values: it SHOULD return NBD_EPERM if it receives a write " \
  "or trim request on a read-only export"
#define R_UNADVERTISED "Transmission flags: The client MUST NOT use a " \
  "feature documented as 'exposed' by a flag unless that flag was set " \
  "(the server may refuse it, or disconnect)"
#define R_BS_NO_CONTEXT "Metadata querying: Servers SHOULD reply with " \
  "NBD_EINVAL to clients sending NBD_CMD_BLOCK_STATUS without selecting at " \
  "least one metadata context"
#define R_FLAG_UNADVERTISED "Error values: It also SHOULD return NBD_EINVAL " \
  "if it receives a request with a flag not explicitly documented as " \
  "applicable to the given request (the client MUST NOT set a flag the " \
  "server did not advertise)"
#define R_FAST_ZERO_UNADV "NBD_CMD_WRITE_ZEROES: If the server did not " \
  "advertise NBD_FLAG_SEND_FAST_ZERO, then it SHOULD NOT fail with " \
  "NBD_ENOTSUP ... and SHOULD fail with NBD_EINVAL if the " \
  "NBD_CMD_FLAG_FAST_ZERO flag was set"
#define R_UNKNOWN_FLAG "Error values: The server SHOULD return NBD_EINVAL " \
  "if it receives an unknown command flag (Command flags: Clients MUST NOT " \
  "set a command flag bit that is not documented)"
#define R_ZERO_LENGTH "NBD_CMD_READ: The client SHOULD NOT request a read " \
  "length of 0; the behavior of a server on such a request is unspecified " \
  "although the server SHOULD NOT disconnect"

/* What a refusal probe expects. */
struct expect {
  int want;            /* the errno the spec asks for (SHOULD) */
  int also;            /* another errno the spec also names, or 0 */
  int disconnect_ok;   /* the client broke a MUST: a hard disconnect is ok */
  enum verdict on_success;   /* V_WARN (a SHOULD) or V_FAIL (a MUST) */
  enum verdict on_other;     /* another error */
  enum verdict on_disconnect;/* when !disconnect_ok */
};

static void
judge (const char *id, const char *rule, const char *what, int r,
       const struct outcome *o, const struct expect *e)
{
  if (r == 0) {
    report (id, e->on_success, rule, NULL, "%s succeeded%s%s", what,
            e->want ? "; expected " : "", e->want ? errno_name (e->want) : "");
    return;
  }
  if (o->violation[0] || o->timed_out) {
    report_broken (id, rule, o);
    return;
  }
  if (o->dead) {
    if (e->disconnect_ok)
      report (id, V_PASS, rule, NULL, "%s: the server hard-disconnected "
              "(allowed: the client broke a MUST)", what);
    else
      report (id, e->on_disconnect, rule, NULL, "%s: the server ended the "
              "connection (%s)", what, o->message);
    return;
  }
  if (o->err == e->want || (e->also && o->err == e->also) || !e->want)
    report (id, V_PASS, rule, NULL, "%s refused with %s", what,
            errno_name (o->err));
  else
    report (id, e->on_other, rule, NULL, "%s refused with %s; the spec "
            "asks for %s%s%s", what, errno_name (o->err),
            errno_name (e->want), e->also ? " or " : "",
            e->also ? errno_name (e->also) : "");
}

/* The expectations used most: a SHOULD-error the server may answer with
 * a disconnect since the client broke a MUST. */
static const struct expect should_einval = {
  EINVAL, 0, 1, V_WARN, V_WARN, V_FAIL
};

static void
past_end (struct ctx *c)
{
  uint64_t a = ctx_align (c), size = (uint64_t) c->size;
  /* straddling the end: the last aligned block, and one beyond it */
  uint64_t off = size >= a ? (size - 1) / a * a : 0;
  uint64_t n = 2 * a;
  struct nbdaio_handle *h;
  struct outcome o;
  void *buf = calloc (1, 2 * a);
  int r;

  if ((h = ctx_loose (c, "refuse.past-end-read"))) {
    r = c_pread (c->cfg, h, buf, n, off, 0, &o);
    judge ("refuse.past-end-read", R_PAST_END, "a read straddling the end",
           r, &o, &should_einval);
  }
  ctx_check_alive (c);

  if (c->can_bs) {
    struct extents e;
    if ((h = ctx_loose (c, "refuse.past-end-block-status"))) {
      r = c_block_status (c->cfg, h, n, off, 0, &e, &o);
      judge ("refuse.past-end-block-status", R_PAST_END_BS,
             "a block status straddling the end", r, &o, &should_einval);
    }
  }
  else
    report ("refuse.past-end-block-status", V_SKIP, R_PAST_END_BS, NULL,
            "block status not negotiated");
  ctx_check_alive (c);

  /* the modifying ones start at the end, so that a server obeying them
   * changes nothing inside the export */
  if (!need_write (c, "refuse.past-end-write", R_PAST_END_WRITE) &&
      (h = ctx_loose (c, "refuse.past-end-write"))) {
    static const struct expect e = { ENOSPC, EINVAL, 1, V_WARN, V_WARN,
                                     V_FAIL };
    fill_pattern (buf, a, size, c->seed, 99);
    r = c_pwrite (c->cfg, h, buf, a, size, 0, &o);
    judge ("refuse.past-end-write", R_PAST_END_WRITE,
           "a write past the end", r, &o, &e);
  }
  ctx_check_alive (c);

  if (!c->can_trim)
    report ("refuse.past-end-trim", V_SKIP, R_PAST_END_TRIM, NULL,
            "NBD_FLAG_SEND_TRIM not advertised");
  else if (!need_write (c, "refuse.past-end-trim", R_PAST_END_TRIM) &&
           (h = ctx_loose (c, "refuse.past-end-trim"))) {
    r = c_trim (c->cfg, h, a, size, 0, &o);
    judge ("refuse.past-end-trim", R_PAST_END_TRIM, "a trim past the end",
           r, &o, &should_einval);
  }
  ctx_check_alive (c);

  if (!c->can_zero)
    report ("refuse.past-end-zero", V_SKIP, R_PAST_END_ZERO, NULL,
            "NBD_FLAG_SEND_WRITE_ZEROES not advertised");
  else if (!need_write (c, "refuse.past-end-zero", R_PAST_END_ZERO) &&
           (h = ctx_loose (c, "refuse.past-end-zero"))) {
    static const struct expect e = { ENOSPC, EINVAL, 1, V_WARN, V_WARN,
                                     V_FAIL };
    r = c_zero (c->cfg, h, a, size, 0, &o);
    judge ("refuse.past-end-zero", R_PAST_END_ZERO,
           "a write zeroes past the end", r, &o, &e);
  }
  ctx_check_alive (c);
  free (buf);
}

static void
unaligned (struct ctx *c)
{
  uint64_t m = (uint64_t) c->min_block;
  struct nbdaio_handle *h;
  struct outcome o;
  void *buf;
  int r;

  if (m <= 1) {
    report ("refuse.unaligned-read", V_SKIP, R_UNALIGNED, NULL,
            "no minimum block size above 1 advertised");
    report ("refuse.unaligned-write", V_SKIP, R_UNALIGNED, NULL,
            "no minimum block size above 1 advertised");
    return;
  }
  buf = calloc (1, m);
  if ((h = ctx_loose (c, "refuse.unaligned-read"))) {
    r = c_pread (c->cfg, h, buf, m, c->scratch_offset + m / 2, 0, &o);
    judge ("refuse.unaligned-read", R_UNALIGNED, "a read at minimum block "
           "size / 2", r, &o, &should_einval);
  }
  ctx_check_alive (c);
  if (!need_write (c, "refuse.unaligned-write", R_UNALIGNED) &&
      (h = ctx_loose (c, "refuse.unaligned-write"))) {
    fill_pattern (buf, m, ctx_slot (c, 9), c->seed, 9);
    r = c_pwrite (c->cfg, h, buf, m, ctx_slot (c, 9) + m / 2, 0, &o);
    judge ("refuse.unaligned-write", R_UNALIGNED, "a write at minimum block "
           "size / 2", r, &o, &should_einval);
  }
  ctx_check_alive (c);
  free (buf);
}

static void
read_only (struct ctx *c)
{
  const char *id = "refuse.read-only-write";
  static const struct expect e = { EPERM, 0, 0, V_FAIL, V_WARN, V_FAIL };
  uint64_t n = ctx_align (c), off = ctx_slot (c, 0);
  struct nbdaio_handle *h;
  struct outcome o;
  void *buf;
  int r;

  if (!c->read_only) {
    report (id, V_SKIP, R_READ_ONLY, NULL, "the export is writable");
    return;
  }
  if (!(h = ctx_loose (c, id)))
    return;
  buf = calloc (1, n);
  /* write back what is there: nothing changes even if it is accepted */
  if (c_pread (c->cfg, h, buf, n, off, 0, &o) == -1) {
    if (!report_broken (id, R_READ_ONLY, &o))
      report (id, V_FAIL, R_READ_ONLY, NULL, "reading the block to write "
              "back: %s", outcome_text (&o));
  }
  else {
    r = c_pwrite (c->cfg, h, buf, n, off, 0, &o);
    judge (id, R_READ_ONLY, "a write (of the data already there) to the "
           "read-only export", r, &o, &e);
  }
  ctx_check_alive (c);
  free (buf);
}

/* The requests a server did not advertise or no server can accept, one
 * row each: sent on a loose connection and judged like the others. */
enum loose_cmd { LOOSE_FLUSH, LOOSE_TRIM, LOOSE_ZERO, LOOSE_BLOCK_STATUS,
                 LOOSE_READ };

#define CTX_FLAG(field) ((int) offsetof (struct ctx, field))
#define NO_FLAG (-1)

struct loose_probe {
  const char *id;
  const char *rule;
  int needs;              /* CTX_FLAG the request needs, or NO_FLAG */
  const char *needs_why;  /* ...the skip reason when it is unset */
  int advertised;         /* CTX_FLAG that allows the request: skip if set */
  const char *advertised_why;
  int writes;             /* needs --write (it writes slot 8) */
  enum loose_cmd cmd;
  uint32_t flags;         /* command flags */
  int zero_length;        /* length 0 instead of the alignment */
  const char *what;
  const struct expect *expect;
};

static const struct expect any_error = { 0, 0, 1, V_WARN, V_PASS, V_FAIL };
static const struct expect unspecified = { 0, 0, 0, V_PASS, V_PASS, V_WARN };

static const struct loose_probe loose_probes[] = {
  { "refuse.unadvertised-flush", R_UNADVERTISED, NO_FLAG, NULL,
    CTX_FLAG (can_flush), "NBD_FLAG_SEND_FLUSH is advertised", 0,
    LOOSE_FLUSH, 0, 0, "NBD_CMD_FLUSH (not advertised)", &any_error },
  { "refuse.unadvertised-trim", R_UNADVERTISED, NO_FLAG, NULL,
    CTX_FLAG (can_trim), "NBD_FLAG_SEND_TRIM is advertised", 1,
    LOOSE_TRIM, 0, 0, "NBD_CMD_TRIM (not advertised)", &any_error },
  { "refuse.unadvertised-zero", R_UNADVERTISED, NO_FLAG, NULL,
    CTX_FLAG (can_zero), "NBD_FLAG_SEND_WRITE_ZEROES is advertised", 1,
    LOOSE_ZERO, 0, 0, "NBD_CMD_WRITE_ZEROES (not advertised)", &any_error },
  { "refuse.unadvertised-block-status", R_BS_NO_CONTEXT, NO_FLAG, NULL,
    CTX_FLAG (can_bs), "a meta context was negotiated", 0,
    LOOSE_BLOCK_STATUS, 0, 0, "NBD_CMD_BLOCK_STATUS without a meta context",
    &should_einval },
  { "refuse.unadvertised-df", R_FLAG_UNADVERTISED, NO_FLAG, NULL,
    CTX_FLAG (can_df), "NBD_FLAG_SEND_DF is advertised", 0,
    LOOSE_READ, NBDAIO_CMD_FLAG_DF, 0,
    "a read with NBD_CMD_FLAG_DF (not advertised)", &should_einval },
  { "refuse.unadvertised-fua", R_FLAG_UNADVERTISED, NO_FLAG, NULL,
    CTX_FLAG (can_fua), "NBD_FLAG_SEND_FUA is advertised", 0,
    LOOSE_READ, NBDAIO_CMD_FLAG_FUA, 0,
    "a read with NBD_CMD_FLAG_FUA (not advertised)", &should_einval },
  { "refuse.unadvertised-fast-zero", R_FAST_ZERO_UNADV,
    CTX_FLAG (can_zero), "NBD_FLAG_SEND_WRITE_ZEROES not advertised",
    CTX_FLAG (can_fast_zero), "NBD_FLAG_SEND_FAST_ZERO is advertised", 1,
    LOOSE_ZERO, NBDAIO_CMD_FLAG_FAST_ZERO, 0,
    "a write zeroes with NBD_CMD_FLAG_FAST_ZERO (not advertised)",
    &should_einval },
  /* bit 7 is no command flag at all */
  { "refuse.unknown-flag", R_UNKNOWN_FLAG, NO_FLAG, NULL, NO_FLAG, NULL, 0,
    LOOSE_READ, 1u << 7, 0, "a read with command flag bit 7 (undefined)",
    &should_einval },
  { "refuse.zero-length-read", R_ZERO_LENGTH, NO_FLAG, NULL, NO_FLAG, NULL,
    0, LOOSE_READ, 0, 1, "a read of length 0", &unspecified },
};

static int
ctx_flag (const struct ctx *c, int flag)
{
  return *(const int *) ((const char *) c + flag);
}

/* Why the probe is skipped on this server, or NULL. */
static const char *
loose_skip (const struct ctx *c, const struct loose_probe *p)
{
  if (p->needs != NO_FLAG && !ctx_flag (c, p->needs))
    return p->needs_why;
  if (p->advertised != NO_FLAG && ctx_flag (c, p->advertised))
    return p->advertised_why;
  return NULL;
}

static int
loose_send (struct ctx *c, struct nbdaio_handle *h,
            const struct loose_probe *p, void *buf, struct outcome *o)
{
  uint64_t a = ctx_align (c);
  struct extents e;

  switch (p->cmd) {
  case LOOSE_FLUSH:
    return c_flush (c->cfg, h, p->flags, o);
  case LOOSE_TRIM:
    return c_trim (c->cfg, h, a, ctx_slot (c, 8), p->flags, o);
  case LOOSE_ZERO:
    return c_zero (c->cfg, h, a, ctx_slot (c, 8), p->flags, o);
  case LOOSE_BLOCK_STATUS:
    return c_block_status (c->cfg, h, a, c->scratch_offset, p->flags, &e, o);
  case LOOSE_READ:
    break;
  }
  return c_pread (c->cfg, h, buf, p->zero_length ? 0 : a, c->scratch_offset,
                  p->flags, o);
}

static void
loose_probe (struct ctx *c, const struct loose_probe *p, void *buf)
{
  const char *skip = loose_skip (c, p);
  struct nbdaio_handle *h;
  struct outcome o;
  int r;

  if (skip)
    report (p->id, V_SKIP, p->rule, NULL, "%s", skip);
  else if ((!p->writes || !need_write (c, p->id, p->rule)) &&
           (h = ctx_loose (c, p->id))) {
    r = loose_send (c, h, p, buf, &o);
    judge (p->id, p->rule, p->what, r, &o, p->expect);
  }
  ctx_check_alive (c);
}

static void
unadvertised (struct ctx *c)
{
  void *buf = calloc (1, ctx_align (c));
  size_t i;

  for (i = 0; i < sizeof loose_probes / sizeof loose_probes[0]; i++)
    loose_probe (c, &loose_probes[i], buf);
  free (buf);
}

void
probe_refuse (struct ctx *c)
{
  past_end (c);
  unaligned (c);
  read_only (c);
  unadvertised (c);
  ctx_close_all (c);
}
