/* tools/check/probe-commands.c - nbdaio-check: each command the server
 * advertises, with each flag it advertises (cmd.*): READ (and DF), WRITE
 * (and FUA), FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO, FUA), CACHE,
 * BLOCK_STATUS (and REQ_ONE).  Commands not advertised are SKIPs here;
 * probe-refuse.c sends them anyway.  Data effects are checked in
 * probe-data.c.
 *
 * Scratch slots used: 0 write, 1 write+FUA, 2 trim, 3 trim+FUA, 4 zero,
 * 5 zero+NO_HOLE, 6 fast zero, 7 zero+FUA, 20-21 the DF read.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

#define R_READ "Baseline: the NBD_CMD_READ message (and its response) MUST " \
  "be implemented; NBD_CMD_READ: the server MUST reply with either a " \
  "simple reply or a structured reply"
#define R_DF "NBD_CMD_READ: if NBD_CMD_FLAG_DF is set, the server MUST send " \
  "at most one content chunk ... the server MUST support unfragmented " \
  "reads in which the client's request length does not exceed 65,536 bytes"
#define R_WRITE "NBD_CMD_WRITE: The server MUST write the data to disk, and " \
  "then send the reply message"
#define R_FUA "Command flags / NBD_CMD_FLAG_FUA: provided NBD_FLAG_SEND_FUA " \
  "has been negotiated, the server MUST accept all commands with this bit " \
  "set"
#define R_FLUSH "NBD_CMD_FLUSH: the server MUST NOT send a successful reply " \
  "header for this request before all write requests for which a reply " \
  "has already been sent to the client have reached permanent storage"
#define R_TRIM "NBD_CMD_TRIM: A server MAY discard length bytes starting at " \
  "offset, but is not required to (NBD_FLAG_SEND_TRIM exposes it)"
#define R_ZERO "NBD_CMD_WRITE_ZEROES: The server MUST zero out the data on " \
  "disk, and then send the reply message"
#define R_NO_HOLE "Command flags / NBD_CMD_FLAG_NO_HOLE: The server MUST " \
  "support the use of this flag if it advertises NBD_FLAG_SEND_WRITE_ZEROES"
#define R_FAST_ZERO "NBD_CMD_WRITE_ZEROES: if NBD_CMD_FLAG_FAST_ZERO is " \
  "set, the server ... MUST fail quickly with NBD_ENOTSUP unless the " \
  "request can be serviced in less time than a corresponding NBD_CMD_WRITE"
#define R_FAST_ZERO_KEEP "NBD_CMD_WRITE_ZEROES: [with FAST_ZERO the " \
  "server] SHOULD NOT alter the contents of the export when returning an " \
  "NBD_ENOTSUP failure"
#define R_CACHE "NBD_CMD_CACHE: A server MAY advertise NBD_FLAG_SEND_CACHE " \
  "even if the command has no effect or always fails with NBD_EINVAL"
#define R_BS "NBD_CMD_BLOCK_STATUS: For a successful return, the server " \
  "MUST use a structured reply, containing exactly one chunk of type " \
  "NBD_REPLY_TYPE_BLOCK_STATUS per selected context id ... the server MUST " \
  "return at least one status descriptor"
#define R_REQ_ONE "NBD_CMD_BLOCK_STATUS: If the client used the " \
  "NBD_CMD_FLAG_REQ_ONE flag, each chunk contains exactly one descriptor " \
  "where the length of the descriptor MUST NOT be greater than the length " \
  "of the request"

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The verdict on a command that must succeed. */
static void
must_succeed (const char *id, const char *rule, int r,
              const struct outcome *o, const char *what)
{
  if (r == 0)
    report (id, V_PASS, rule, NULL, "%s succeeded", what);
  else if (!report_broken (id, rule, o))
    report (id, V_FAIL, rule, NULL, "%s %s", what, outcome_text (o));
}

static void
probe_read (struct ctx *c)
{
  const char *id = "cmd.read";
  uint64_t n = ctx_unit (c);
  struct nbdaio_handle *h = ctx_conn (c, id);
  struct chunks ch;
  struct outcome o;
  int r;
  void *buf;

  if (!h)
    return;
  if (n > (uint64_t) c->size - c->scratch_offset)
    n = (uint64_t) c->size - c->scratch_offset;
  buf = calloc (1, n);
  if (c->sr) {
    r = c_pread_chunks (c->cfg, h, buf, n, c->scratch_offset, 0, &ch, &o);
    if (r == 0)
      report (id, V_PASS, R_READ, NULL, "read of %" PRIu64 " bytes at %"
              PRIu64 " succeeded (structured: %d data, %d hole chunks)", n,
              c->scratch_offset, ch.data, ch.hole);
    else
      must_succeed (id, R_READ, r, &o, "read");
  }
  else {
    r = c_pread (c->cfg, h, buf, n, c->scratch_offset, 0, &o);
    must_succeed (id, R_READ, r, &o, "read (simple reply)");
  }
  free (buf);
}

static void
probe_read_df (struct ctx *c)
{
  const char *id = "cmd.read-df";
  uint64_t n = 2 * ctx_unit (c), off = ctx_slot (c, 20);
  struct nbdaio_handle *h;
  struct chunks ch;
  struct outcome o;
  unsigned char *buf;
  int r;

  if (!c->sr) {
    report (id, V_SKIP, R_DF, NULL, "structured replies not negotiated");
    return;
  }
  if (!c->can_df) {
    report (id, V_SKIP, R_DF, NULL, "NBD_FLAG_SEND_DF not advertised");
    return;
  }
  if (n > 65536)
    n = 65536;
  if (off + n > (uint64_t) c->size)
    n = ((uint64_t) c->size - off) / ctx_align (c) * ctx_align (c);
  if (!(h = ctx_conn (c, id)))
    return;
  buf = malloc (n);
  /* With --write make the area half data, half zero, so that a server
   * that would split data and holes has to send it as one chunk. */
  if (c->cfg->write && !c->read_only && n >= 2 * ctx_align (c)) {
    uint64_t half = n / 2 / ctx_align (c) * ctx_align (c);
    fill_pattern (buf, half, off, c->seed, 20);
    if (c_pwrite (c->cfg, h, buf, half, off, 0, &o) == -1 ||
        (c->can_zero &&
         c_zero (c->cfg, h, n - half, off + half, 0, &o) == -1) ||
        (!c->can_zero && c->can_trim &&
         c_trim (c->cfg, h, n - half, off + half, 0, &o) == -1)) {
      if (!report_broken (id, R_DF, &o))
        report (id, V_FAIL, R_WRITE, NULL, "preparing the area: %s",
                outcome_text (&o));
      free (buf);
      return;
    }
  }
  r = c_pread_chunks (c->cfg, h, buf, n, off, NBDAIO_CMD_FLAG_DF, &ch, &o);
  if (r == 0 && ch.data + ch.hole > 1)
    report (id, V_FAIL, R_DF, NULL, "a %" PRIu64 "-byte DF read came back "
            "in %d content chunks (%d data, %d hole)", n, ch.data + ch.hole,
            ch.data, ch.hole);
  else if (r == 0)
    report (id, V_PASS, R_DF, NULL, "a %" PRIu64 "-byte DF read came back "
            "as one %s chunk", n, ch.data ? "data" : "hole");
  else if (!report_broken (id, R_DF, &o))
    report (id, V_FAIL, R_DF, NULL, "a %" PRIu64 "-byte DF read %s", n,
            outcome_text (&o));
  free (buf);
}

static void
probe_write (struct ctx *c, const char *id, unsigned slot, uint32_t flags)
{
  const char *rule = flags ? R_FUA : R_WRITE;
  uint64_t n = ctx_unit (c);
  struct nbdaio_handle *h;
  struct outcome o;
  void *buf;

  if (flags && !c->can_fua) {
    report (id, V_SKIP, R_FUA, NULL, "NBD_FLAG_SEND_FUA not advertised");
    return;
  }
  if (need_write (c, id, rule) || !(h = ctx_conn (c, id)))
    return;
  buf = malloc (n);
  fill_pattern (buf, n, ctx_slot (c, slot), c->seed, slot);
  must_succeed (id, rule,
                c_pwrite (c->cfg, h, buf, n, ctx_slot (c, slot), flags, &o),
                &o, flags ? "write with FUA" : "write");
  free (buf);
}

static void
probe_flush (struct ctx *c)
{
  const char *id = "cmd.flush";
  struct nbdaio_handle *h;
  struct outcome o;

  if (!c->can_flush) {
    report (id, V_SKIP, R_FLUSH, NULL, "NBD_FLAG_SEND_FLUSH not advertised");
    return;
  }
  if (!(h = ctx_conn (c, id)))
    return;
  must_succeed (id, R_FLUSH, c_flush (c->cfg, h, 0, &o), &o, "flush");
}

static void
probe_trim (struct ctx *c, const char *id, unsigned slot, uint32_t flags)
{
  const char *rule = flags ? R_FUA : R_TRIM;
  struct nbdaio_handle *h;
  struct outcome o;

  if (!c->can_trim) {
    report (id, V_SKIP, rule, NULL, "NBD_FLAG_SEND_TRIM not advertised");
    return;
  }
  if (flags && !c->can_fua) {
    report (id, V_SKIP, R_FUA, NULL, "NBD_FLAG_SEND_FUA not advertised");
    return;
  }
  if (need_write (c, id, rule) || !(h = ctx_conn (c, id)))
    return;
  must_succeed (id, rule, c_trim (c->cfg, h, ctx_unit (c), ctx_slot (c, slot),
                                  flags, &o),
                &o, flags ? "trim with FUA" : "trim");
}

static void
probe_zero (struct ctx *c, const char *id, unsigned slot, uint32_t flags)
{
  const char *rule = flags & NBDAIO_CMD_FLAG_FUA ? R_FUA :
    flags & NBDAIO_CMD_FLAG_NO_HOLE ? R_NO_HOLE : R_ZERO;
  struct nbdaio_handle *h;
  struct outcome o;

  if (!c->can_zero) {
    report (id, V_SKIP, rule, NULL,
            "NBD_FLAG_SEND_WRITE_ZEROES not advertised");
    return;
  }
  if ((flags & NBDAIO_CMD_FLAG_FUA) && !c->can_fua) {
    report (id, V_SKIP, R_FUA, NULL, "NBD_FLAG_SEND_FUA not advertised");
    return;
  }
  if (need_write (c, id, rule) || !(h = ctx_conn (c, id)))
    return;
  must_succeed (id, rule, c_zero (c->cfg, h, ctx_unit (c), ctx_slot (c, slot),
                                  flags, &o),
                &o, flags & NBDAIO_CMD_FLAG_FUA ? "write zeroes with FUA" :
                flags ? "write zeroes with NO_HOLE" : "write zeroes");
}

static void
probe_fast_zero (struct ctx *c)
{
  const char *id = "cmd.zero-fast";
  uint64_t n = ctx_unit (c), off = ctx_slot (c, 6);
  struct nbdaio_handle *h;
  struct outcome o;
  unsigned char *buf, *back;
  double t0, ms;
  int r;

  if (!c->can_fast_zero) {
    report (id, V_SKIP, R_FAST_ZERO, NULL,
            "NBD_FLAG_SEND_FAST_ZERO not advertised");
    return;
  }
  if (need_write (c, id, R_FAST_ZERO) || !(h = ctx_conn (c, id)))
    return;
  buf = malloc (n);
  back = malloc (n);
  fill_pattern (buf, n, off, c->seed, 6);
  if (c_pwrite (c->cfg, h, buf, n, off, 0, &o) == -1) {
    if (!report_broken (id, R_WRITE, &o))
      report (id, V_FAIL, R_WRITE, NULL, "preparing the area: write %s",
              outcome_text (&o));
    goto out;
  }
  t0 = now_s ();
  r = c_zero (c->cfg, h, n, off, NBDAIO_CMD_FLAG_FAST_ZERO, &o);
  ms = (now_s () - t0) * 1000;
  if (r == 0)
    report (id, V_PASS, R_FAST_ZERO, NULL,
            "fast zero succeeded in %.1f ms", ms);
  else if (report_broken (id, R_FAST_ZERO, &o))
    ;
  else if (o.err != ENOTSUP)
    report (id, V_FAIL, R_FAST_ZERO, NULL, "fast zero failed with %s: the "
            "only failure allowed for a fast zero is NBD_ENOTSUP",
            errno_name (o.err));
  else if (c_pread (c->cfg, h, back, n, off, 0, &o) == -1) {
    if (!report_broken (id, R_READ, &o))
      report (id, V_FAIL, R_READ, NULL, "reading back after the ENOTSUP "
              "failure: %s", outcome_text (&o));
  }
  else if (memcmp (buf, back, n) != 0)
    report (id, V_WARN, R_FAST_ZERO_KEEP, NULL, "fast zero failed with "
            "ENOTSUP (%.1f ms) but changed the data", ms);
  else
    report (id, V_PASS, R_FAST_ZERO, NULL, "fast zero failed quickly with "
            "ENOTSUP (%.1f ms), data unchanged", ms);
 out:
  free (buf);
  free (back);
}

static void
probe_cache (struct ctx *c)
{
  const char *id = "cmd.cache";
  struct nbdaio_handle *h;
  struct outcome o;
  int r;

  if (!c->can_cache) {
    report (id, V_SKIP, R_CACHE, NULL, "NBD_FLAG_SEND_CACHE not advertised");
    return;
  }
  if (!(h = ctx_conn (c, id)))
    return;
  r = c_cache (c->cfg, h, ctx_unit (c), c->scratch_offset, 0, &o);
  if (r == 0)
    report (id, V_PASS, R_CACHE, NULL, "cache succeeded");
  else if (report_broken (id, R_CACHE, &o))
    ;
  else if (o.err == EINVAL)
    report (id, V_PASS, R_CACHE, NULL, "cache failed with EINVAL (allowed)");
  else
    report (id, V_WARN, R_CACHE, NULL, "cache failed with %s: an advertised "
            "cache may only be a no-op or fail with NBD_EINVAL",
            errno_name (o.err));
}

static void
describe_extents (const struct extents *e, char *buf, size_t size)
{
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < e->n && i < 8 && len + 40 < size; i++)
    len += (size_t) snprintf (buf + len, size - len, "%s%" PRIu32 "/%s%s",
                              i ? " " : "", e->len[i],
                              e->flags[i] & NBDAIO_STATE_HOLE ? "hole" :
                              "data",
                              e->flags[i] & NBDAIO_STATE_ZERO ? "+zero" : "");
  if (e->n > 8 && len + 8 < size)
    snprintf (buf + len, size - len, " ...");
}

static void
probe_block_status (struct ctx *c, const char *id, uint32_t flags)
{
  const char *rule = flags ? R_REQ_ONE : R_BS;
  uint64_t n = 4 * ctx_unit (c);
  struct nbdaio_handle *h;
  struct extents e;
  struct outcome o;
  char desc[400];
  int r;

  if (!c->sr) {
    report (id, V_SKIP, rule, NULL, "structured replies not negotiated");
    return;
  }
  if (!c->can_bs) {
    report (id, V_SKIP, rule, NULL, "no meta context (base:allocation) "
            "negotiated");
    return;
  }
  if (n > (uint64_t) c->size - c->scratch_offset)
    n = (uint64_t) c->size - c->scratch_offset;
  if (!(h = ctx_conn (c, id)))
    return;
  r = c_block_status (c->cfg, h, n, c->scratch_offset, flags, &e, &o);
  if (r == -1) {
    if (!report_broken (id, rule, &o))
      report (id, V_FAIL, rule, NULL, "block status %s", outcome_text (&o));
    return;
  }
  describe_extents (&e, desc, sizeof desc);
  if (e.chunks != 1 || e.total == 0)
    report (id, V_FAIL, rule, NULL, "%d block status chunks, %zu extents "
            "for one context", e.chunks, e.total);
  else if (flags && e.total != 1)
    report (id, V_FAIL, rule, NULL, "REQ_ONE answered with %zu extents",
            e.total);
  else if (flags && e.len[0] > n)
    report (id, V_FAIL, rule, NULL, "REQ_ONE extent of %" PRIu32 " bytes "
            "for a request of %" PRIu64, e.len[0], n);
  else
    report (id, V_PASS, rule, NULL, "%zu extent(s) for [%" PRIu64 ", +%"
            PRIu64 "): %s", e.total, c->scratch_offset, n, desc);
}

void
probe_commands (struct ctx *c)
{
  probe_read (c);
  probe_read_df (c);
  probe_write (c, "cmd.write", 0, 0);
  probe_write (c, "cmd.write-fua", 1, NBDAIO_CMD_FLAG_FUA);
  probe_flush (c);
  probe_trim (c, "cmd.trim", 2, 0);
  probe_trim (c, "cmd.trim-fua", 3, NBDAIO_CMD_FLAG_FUA);
  probe_zero (c, "cmd.zero", 4, 0);
  probe_zero (c, "cmd.zero-no-hole", 5, NBDAIO_CMD_FLAG_NO_HOLE);
  probe_fast_zero (c);
  probe_zero (c, "cmd.zero-fua", 7, NBDAIO_CMD_FLAG_FUA);
  probe_cache (c);
  probe_block_status (c, "cmd.block-status", 0);
  probe_block_status (c, "cmd.block-status-req-one",
                      NBDAIO_CMD_FLAG_REQ_ONE);
  ctx_check_alive (c);
}
