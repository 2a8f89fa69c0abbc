/* tools/check/probe-data.c - nbdaio-check: data semantics (data.*,
 * only with --write, in the scratch area): read-after-write, write zeroes
 * (with and without NO_HOLE) reading back as zeros, trim leaving the data
 * around it intact, and block status agreeing with what was written and
 * zeroed.
 *
 * Scratch slots used: 10-11 written data, 12-13 zeroed, 14-15 zeroed with
 * NO_HOLE, 16-18 the trim probe.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define R_RAW "NBD_CMD_WRITE: The server MUST write the data to disk, and " \
  "then send the reply message (NBD_CMD_READ: length and offset define " \
  "the data to be read)"
#define R_ZERO_READS "NBD_CMD_WRITE_ZEROES: the server MAY use trimming to " \
  "zero out the area ... but it MUST ensure that the data reads back as " \
  "zero"
#define R_NO_HOLE "NBD_CMD_WRITE_ZEROES: the client MAY set the command " \
  "flag NBD_CMD_FLAG_NO_HOLE to inform the server that the area MUST be " \
  "fully provisioned (and it MUST still read back as zero)"
#define R_TRIM "NBD_CMD_TRIM: A server MAY discard length bytes starting at " \
  "offset ... After issuing this command, a client MUST NOT make any " \
  "assumptions about the contents of the export affected by this command " \
  "(data outside the range is not affected)"
#define R_BS_ZERO "base:allocation: NBD_STATE_ZERO (bit 1): if set, the " \
  "block contents read as all zeroes; NBD_STATE_HOLE: the server MAY " \
  "report a hole even where NBD_CMD_TRIM has not been requested"

/* Report a failed step of a data probe; always returns -1. */
static int
step_failed (const char *id, const char *rule, const char *step,
             const struct outcome *o)
{
  if (!report_broken (id, rule, o))
    report (id, V_FAIL, rule, NULL, "%s %s", step, outcome_text (o));
  return -1;
}

/* The first offset where a and b differ. */
static size_t
first_diff (const unsigned char *a, const unsigned char *b, size_t n)
{
  size_t i = 0;
  while (i < n && a[i] == b[i])
    i++;
  return i;
}

static size_t
first_nonzero (const unsigned char *a, size_t n)
{
  size_t i = 0;
  while (i < n && !a[i])
    i++;
  return i;
}

static void
read_after_write (struct ctx *c)
{
  const char *id = "data.read-after-write";
  uint64_t n = 2 * ctx_unit (c), off = ctx_slot (c, 10);
  unsigned char *w = malloc (n), *r = calloc (1, n);
  struct nbdaio_handle *h;
  struct outcome o;

  if (!(h = ctx_conn (c, id)))
    goto out;
  fill_pattern (w, n, off, c->seed, 10);
  if (c_pwrite (c->cfg, h, w, n, off, 0, &o) == -1) {
    step_failed (id, R_RAW, "write", &o);
    goto out;
  }
  if (c_pread (c->cfg, h, r, n, off, 0, &o) == -1) {
    step_failed (id, R_RAW, "read back", &o);
    goto out;
  }
  size_t d = first_diff (w, r, n);
  if (d < n)
    report (id, V_FAIL, R_RAW, NULL, "%" PRIu64 " bytes written at %" PRIu64
            " read back different, first at offset %" PRIu64, n, off,
            off + d);
  else
    report (id, V_PASS, R_RAW, NULL, "%" PRIu64 " bytes written at %" PRIu64
            " read back identical", n, off);
 out:
  free (w);
  free (r);
}

static void
zero_reads_zero (struct ctx *c, const char *id, unsigned slot,
                 uint32_t flags)
{
  const char *rule = flags ? R_NO_HOLE : R_ZERO_READS;
  uint64_t n = 2 * ctx_unit (c), off = ctx_slot (c, slot);
  unsigned char *w = malloc (n), *r = malloc (n);
  struct nbdaio_handle *h;
  struct outcome o;

  if (!c->can_zero) {
    report (id, V_SKIP, rule, NULL,
            "NBD_FLAG_SEND_WRITE_ZEROES not advertised");
    goto out;
  }
  if (!(h = ctx_conn (c, id)))
    goto out;
  fill_pattern (w, n, off, c->seed, slot);
  memset (r, 0xa5, n);
  if (c_pwrite (c->cfg, h, w, n, off, 0, &o) == -1) {
    step_failed (id, rule, "writing data first:", &o);
    goto out;
  }
  if (c_zero (c->cfg, h, n, off, flags, &o) == -1) {
    step_failed (id, rule, "write zeroes", &o);
    goto out;
  }
  if (c_pread (c->cfg, h, r, n, off, 0, &o) == -1) {
    step_failed (id, rule, "read back", &o);
    goto out;
  }
  size_t d = first_nonzero (r, n);
  if (d < n)
    report (id, V_FAIL, rule, NULL, "after write zeroes%s of [%" PRIu64
            ", +%" PRIu64 "), offset %" PRIu64 " reads back non-zero",
            flags ? " with NO_HOLE" : "", off, n, off + d);
  else
    report (id, V_PASS, rule, NULL, "data zeroed%s at %" PRIu64 " reads "
            "back as %" PRIu64 " zero bytes", flags ? " with NO_HOLE" : "",
            off, n);
 out:
  free (w);
  free (r);
}

static void
trim_outside (struct ctx *c)
{
  const char *id = "data.trim-outside";
  uint64_t u = ctx_unit (c), n = 3 * u, off = ctx_slot (c, 16);
  unsigned char *w = malloc (n), *r = malloc (n);
  struct nbdaio_handle *h;
  struct outcome o;

  if (!c->can_trim) {
    report (id, V_SKIP, R_TRIM, NULL, "NBD_FLAG_SEND_TRIM not advertised");
    goto out;
  }
  if (!(h = ctx_conn (c, id)))
    goto out;
  fill_pattern (w, n, off, c->seed, 16);
  if (c_pwrite (c->cfg, h, w, n, off, 0, &o) == -1) {
    step_failed (id, R_TRIM, "writing data first:", &o);
    goto out;
  }
  if (c_trim (c->cfg, h, u, off + u, 0, &o) == -1) {
    step_failed (id, R_TRIM, "trim", &o);
    goto out;
  }
  if (c_pread (c->cfg, h, r, n, off, 0, &o) == -1) {
    step_failed (id, R_TRIM, "read back", &o);
    goto out;
  }
  size_t before = first_diff (w, r, u);
  size_t after = first_diff (w + 2 * u, r + 2 * u, u);
  const char *middle = is_zero (r + u, u) ? "zeros" :
    memcmp (w + u, r + u, u) == 0 ? "the old data" : "other data";
  if (before < u || after < u)
    report (id, V_FAIL, R_TRIM, NULL, "trim of [%" PRIu64 ", +%" PRIu64
            ") changed data outside it (at offset %" PRIu64 ")", off + u, u,
            before < u ? off + before : off + 2 * u + after);
  else
    report (id, V_PASS, R_TRIM, NULL, "data around a trimmed block intact "
            "(the trimmed block reads back as %s)", middle);
 out:
  free (w);
  free (r);
}

/* Block status over slots 10-13 (written data, then zeroed data): every
 * extent flagged ZERO must read as zeros; written data flagged HOLE is
 * allowed (noted). */
static void
block_status_agrees (struct ctx *c)
{
  const char *id = "data.block-status";
  uint64_t u = ctx_unit (c), start = ctx_slot (c, 10), n = 4 * u;
  unsigned char *r = malloc (n);
  struct nbdaio_handle *h;
  struct outcome o;
  uint64_t pos = start;
  int holes_on_data = 0, zero_extents = 0, queries = 0;

  if (!c->sr || !c->can_bs) {
    report (id, V_SKIP, R_BS_ZERO, NULL, "%s", !c->sr ? "structured replies "
            "not negotiated" : "no meta context (base:allocation) "
            "negotiated");
    goto out;
  }
  if (!c->can_zero) {
    report (id, V_SKIP, R_BS_ZERO, NULL,
            "NBD_FLAG_SEND_WRITE_ZEROES not advertised");
    goto out;
  }
  if (!(h = ctx_conn (c, id)))
    goto out;
  /* slots 10-11 hold data (read-after-write), 12-13 zeros: read both as
   * they are now */
  if (c_pread (c->cfg, h, r, n, start, 0, &o) == -1) {
    step_failed (id, R_BS_ZERO, "reading the area", &o);
    goto out;
  }
  while (pos < start + n && queries++ < 64) {
    struct extents e;
    if (c_block_status (c->cfg, h, start + n - pos, pos, 0, &e, &o) == -1) {
      step_failed (id, R_BS_ZERO, "block status", &o);
      goto out;
    }
    if (e.n == 0)
      break;
    for (size_t i = 0; i < e.n && pos < start + n; i++) {
      uint64_t len = e.len[i];
      if (len > start + n - pos)
        len = start + n - pos;
      const unsigned char *p = r + (pos - start);
      if (e.flags[i] & NBDAIO_STATE_ZERO) {
        zero_extents++;
        size_t d = first_nonzero (p, len);
        if (d < len) {
          report (id, V_FAIL, R_BS_ZERO, NULL, "extent [%" PRIu64 ", +%"
                  PRIu64 ") is flagged NBD_STATE_ZERO but offset %" PRIu64
                  " reads non-zero", pos, len, pos + d);
          goto out;
        }
      }
      if ((e.flags[i] & NBDAIO_STATE_HOLE) && !is_zero (p, len))
        holes_on_data = 1;
      pos += len;
    }
  }
  if (pos < start + n)
    report (id, V_FAIL, R_BS_ZERO, NULL, "block status made no progress "
            "at offset %" PRIu64, pos);
  else
    report (id, V_PASS, R_BS_ZERO, NULL, "extents agree with the data "
            "(%d extent(s) flagged zero, all read as zeros%s)", zero_extents,
            holes_on_data ? "; written data reported as a hole, which the "
            "spec allows" : "");
 out:
  free (r);
}

void
probe_data (struct ctx *c)
{
  static const char *const ids[] = {
    "data.read-after-write", "data.zero-reads-zero",
    "data.zero-no-hole-reads-zero", "data.trim-outside", "data.block-status",
  };
  static const char *const rules[] = {
    R_RAW, R_ZERO_READS, R_NO_HOLE, R_TRIM, R_BS_ZERO,
  };

  if (!c->cfg->write || c->read_only) {
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
      need_write (c, ids[i], rules[i]);
    return;
  }
  read_after_write (c);
  zero_reads_zero (c, "data.zero-reads-zero", 12, 0);
  zero_reads_zero (c, "data.zero-no-hole-reads-zero", 14,
                   NBDAIO_CMD_FLAG_NO_HOLE);
  trim_outside (c);
  block_status_agrees (c);
  ctx_check_alive (c);
}
