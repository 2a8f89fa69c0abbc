/* tools/check/probe-xhdr.c - nbdaio-check: extended headers (xhdr.*)
 * and several meta contexts at once (meta.*).
 *
 * Negotiation, on connections in option negotiation mode that negotiated
 * nothing yet: NBD_OPT_EXTENDED_HEADERS alone, with data, before and
 * after NBD_OPT_STRUCTURED_REPLY, and a client that never asks for them
 * (NBD_REP_ERR_EXT_HEADER_REQD).  Transmission, on the main connection
 * (extended when the server offers them): the extended reply magic on
 * every kind of reply, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, requests above
 * 4 GiB, NBD_FLAG_BLOCK_STATUS_PAYLOAD.  The reply checks themselves are
 * the library's (its [ext-*] rule tags); these probes make the server
 * send each kind of reply and say what was seen.
 *
 * The rules quote the NBD specification's "Extended headers" extension
 * (doc/proto.md of the extension-ext-header branch).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli-common.h"

#define R_OPT "NBD_OPT_EXTENDED_HEADERS: The server replies with ... " \
  "NBD_REP_ACK: Extended headers have been negotiated ... For backwards " \
  "compatibility, clients SHOULD be prepared to also handle " \
  "NBD_REP_ERR_UNSUP; in this case, only the compact transmission headers " \
  "will be used"
#define R_OPT_DATA "NBD_OPT_EXTENDED_HEADERS: The client MUST NOT send any " \
  "additional data with the option, and the server SHOULD reject a " \
  "request that includes data with NBD_REP_ERR_INVALID"
#define R_SR_AFTER "NBD_OPT_STRUCTURED_REPLY: NBD_REP_ERR_EXT_HEADER_REQD: " \
  "The client has already successfully negotiated extended headers, which " \
  "takes precedence over this option; NBD_OPT_EXTENDED_HEADERS: the " \
  "server MUST use the 32-byte extended reply header"
#define R_SR_BEFORE "NBD_OPT_EXTENDED_HEADERS: When successful, this " \
  "option takes precedence over structured replies ... A client MAY " \
  "request structured replies first; the server MUST use the 32-byte " \
  "extended reply header"
#define R_REQD "NBD_OPT_GO: NBD_REP_ERR_EXT_HEADER_REQD: The server requires " \
  "the client to utilize extended headers [a server MAY]; " \
  "NBD_OPT_LIST_META_CONTEXT: a server MUST NOT use this failure mode when " \
  "the response is limited to the \"base:\" namespace"
#define R_MAGIC "Extended reply chunk message: If extended headers are " \
  "negotiated, all server replies MUST use an extended reply; the server " \
  "MUST NOT use simple replies even when there is no payload ... offset " \
  "MUST match the offset of the client's request"
#define R_BS_EXT "NBD_REPLY_TYPE_BLOCK_STATUS_EXT (6): [the server] MUST " \
  "use [it] ... if extended headers were negotiated (descriptors of a " \
  "64-bit length and a 64-bit status; base: statuses fit in 32 bits)"
#define R_LEN64 "Request message: only when length is used as an effect " \
  "length will it utilize a full 64-bit value; Size constraints: For " \
  "commands that do not require a payload ... the client MAY request an " \
  "effect length larger than the maximum payload size; the server SHOULD " \
  "NOT disconnect, but MAY reply with an NBD_EOVERFLOW or NBD_EINVAL error"
#define R_PAYLOAD_COMPACT "Transmission flags: bit 12, " \
  "NBD_FLAG_BLOCK_STATUS_PAYLOAD ... Servers MUST NOT advertise this bit " \
  "unless the client successfully negotiates extended headers"
#define R_PAYLOAD "NBD_CMD_BLOCK_STATUS: If extended headers were " \
  "negotiated, a server MAY optionally advertise, via the transmission " \
  "flag NBD_FLAG_BLOCK_STATUS_PAYLOAD, that it supports an alternative " \
  "request form where the client sets NBD_CMD_FLAG_PAYLOAD_LEN in order " \
  "to pass a payload that informs the server to limit its replies to the " \
  "metacontext id(s) in the client's request payload"
#define R_META_SEVERAL "NBD_OPT_SET_META_CONTEXT: the server MUST reply with " \
  "a number of NBD_REP_META_CONTEXT replies, one for each selected " \
  "metadata context; NBD_CMD_BLOCK_STATUS: The server MUST return exactly " \
  "one [block status chunk] for each metadata context"

#define GIB4 ((uint64_t) 1 << 32)

/* ---- negotiation --------------------------------------------------------- */

/* After the raw negotiation of a probe: NBD_OPT_GO, then a READ (and a
 * FLUSH when advertised) whose replies the library checks against the
 * extended form.  0 with a description in what, or -1 (FAIL recorded). */
static int
go_and_read (struct ctx *c, struct nbdaio_handle *h, const char *id,
             const char *rule, char *what, size_t size)
{
  struct outcome o;
  char buf[512];
  uint64_t n = c->size < (int64_t) sizeof buf ? (uint64_t) c->size :
    sizeof buf;

  if (nbdaio_opt_go (h) == -1) {
    if (!opt_dead (h, id, rule))
      report (id, V_FAIL, rule, NULL, "NBD_OPT_GO failed: %s",
              nbdaio_get_error ());
    return -1;
  }
  if (nbdaio_get_extended_headers_negotiated (h) != 1) {
    report (id, V_FAIL, rule, NULL, "the connection is not in extended "
            "mode after NBD_OPT_GO");
    return -1;
  }
  if (n && c_pread (c->cfg, h, buf, n, 0, 0, &o) == -1 &&
      report_broken (id, rule, &o))
    return -1;
  if (nbdaio_can_flush (h) == 1 && c_flush (c->cfg, h, 0, &o) == -1 &&
      report_broken (id, rule, &o))
    return -1;
  snprintf (what, size, "then NBD_OPT_GO, a READ%s: every reply in the "
            "extended form", nbdaio_can_flush (h) == 1 ? " and a FLUSH" : "");
  return 0;
}

/* NBD_OPT_EXTENDED_HEADERS alone, then NBD_OPT_STRUCTURED_REPLY after it
 * and a READ in the mode the server then uses. */
static void
xhdr_alone_then_sr (struct ctx *c)
{
  static const char *const ids[] = {
    "xhdr.opt-reply", "xhdr.sr-after", NULL
  };
  static const char *const rules[] = { R_OPT, R_SR_AFTER, NULL };
  struct nbdaio_handle *h = opt_open (c, ids, rules, OPT_START_NOTHING);
  int64_t t, t2;
  enum verdict v;
  char what[160];

  if (!h)
    return;
  t = nbdaio_opt_raw (h, NBDAIO_OPT_EXTENDED_HEADERS, NULL, 0);
  if (t == -1) {
    if (!opt_dead (h, ids[0], R_OPT))
      report (ids[0], V_FAIL, R_OPT, NULL, "%s", nbdaio_get_error ());
    report (ids[1], V_SKIP, R_SR_AFTER, NULL, "not run: %s failed", ids[0]);
    goto out;
  }
  c->xhdr_reply = t;
  if (t == NBDAIO_REP_ACK)
    report (ids[0], V_PASS, R_OPT, NULL, "NBD_OPT_EXTENDED_HEADERS "
            "(before any other option) answered with NBD_REP_ACK");
  else if (t == NBDAIO_REP_ERR_UNSUP)
    report (ids[0], V_PASS, R_OPT, NULL, "NBD_OPT_EXTENDED_HEADERS "
            "answered with NBD_REP_ERR_UNSUP: the server does not offer "
            "extended headers (optional)");
  else
    report (ids[0], V_FAIL, R_OPT, NULL, "NBD_OPT_EXTENDED_HEADERS answered "
            "with %s (NBD_REP_ACK or NBD_REP_ERR_UNSUP expected)",
            rep_name (t));
  if (t != NBDAIO_REP_ACK) {
    report (ids[1], V_SKIP, R_SR_AFTER, NULL, "extended headers not "
            "negotiated (%s)", rep_name (t));
    goto out;
  }
  t2 = nbdaio_opt_raw (h, NBDAIO_OPT_STRUCTURED_REPLY, NULL, 0);
  if (t2 == -1) {
    if (!opt_dead (h, ids[1], R_SR_AFTER))
      report (ids[1], V_FAIL, R_SR_AFTER, NULL, "%s", nbdaio_get_error ());
    goto out;
  }
  /* whatever it answered, the connection must stay extended */
  if (go_and_read (c, h, ids[1], R_SR_AFTER, what, sizeof what) == -1)
    goto out;
  v = t2 == NBDAIO_REP_ERR_EXT_HEADER_REQD ? V_PASS : V_WARN;
  report (ids[1], v, R_SR_AFTER, NULL, "NBD_OPT_STRUCTURED_REPLY after "
          "extended headers answered with %s%s; %s", rep_name (t2),
          v == V_WARN ? " (the spec names NBD_REP_ERR_EXT_HEADER_REQD for "
          "this case)" : "", what);
 out:
  opt_close (c, h);
}

/* NBD_OPT_EXTENDED_HEADERS with 4 bytes of data. */
static void
xhdr_with_data (struct ctx *c)
{
  const char *id = "xhdr.opt-data";
  struct nbdaio_handle *h;
  int64_t t;

  if (c->xhdr_reply != NBDAIO_REP_ACK) {
    report (id, V_SKIP, R_OPT_DATA, NULL, "extended headers not offered");
    return;
  }
  if (!(h = opt_open_one (c, id, R_OPT_DATA, OPT_START_NOTHING)))
    return;
  t = nbdaio_opt_raw (h, NBDAIO_OPT_EXTENDED_HEADERS, "abcd", 4);
  if (t == -1) {
    if (!opt_dead (h, id, R_OPT_DATA))
      report (id, V_FAIL, R_OPT_DATA, NULL, "%s", nbdaio_get_error ());
  }
  else if (t == NBDAIO_REP_ERR_INVALID)
    report (id, V_PASS, R_OPT_DATA, NULL, "NBD_OPT_EXTENDED_HEADERS with "
            "4 bytes of data answered with NBD_REP_ERR_INVALID");
  else
    report (id, V_WARN, R_OPT_DATA, NULL, "NBD_OPT_EXTENDED_HEADERS with "
            "4 bytes of data answered with %s", rep_name (t));
  opt_close (c, h);
}

/* NBD_OPT_STRUCTURED_REPLY first, then NBD_OPT_EXTENDED_HEADERS. */
static void
sr_then_xhdr (struct ctx *c)
{
  const char *id = "xhdr.sr-before";
  struct nbdaio_handle *h;
  int64_t t;
  char what[160];

  if (c->xhdr_reply != NBDAIO_REP_ACK) {
    report (id, V_SKIP, R_SR_BEFORE, NULL, "extended headers not offered");
    return;
  }
  if (!(h = opt_open_one (c, id, R_SR_BEFORE, OPT_START_NOTHING)))
    return;
  t = nbdaio_opt_raw (h, NBDAIO_OPT_STRUCTURED_REPLY, NULL, 0);
  if (t != NBDAIO_REP_ACK) {
    if (t != -1 || !opt_dead (h, id, R_SR_BEFORE))
      report (id, V_SKIP, R_SR_BEFORE, NULL, "NBD_OPT_STRUCTURED_REPLY "
              "answered with %s", t == -1 ? nbdaio_get_error () :
              rep_name (t));
    goto out;
  }
  t = nbdaio_opt_raw (h, NBDAIO_OPT_EXTENDED_HEADERS, NULL, 0);
  if (t == -1) {
    if (!opt_dead (h, id, R_SR_BEFORE))
      report (id, V_FAIL, R_SR_BEFORE, NULL, "%s", nbdaio_get_error ());
  }
  else if (t != NBDAIO_REP_ACK)
    report (id, V_WARN, R_SR_BEFORE, NULL, "NBD_OPT_EXTENDED_HEADERS after "
            "structured replies answered with %s (alone it was "
            "acknowledged)", rep_name (t));
  else if (go_and_read (c, h, id, R_SR_BEFORE, what, sizeof what) == 0)
    report (id, V_PASS, R_SR_BEFORE, NULL, "NBD_OPT_STRUCTURED_REPLY, then "
            "NBD_OPT_EXTENDED_HEADERS: both acknowledged; %s", what);
 out:
  opt_close (c, h);
}

/* A client that never asks for extended headers: "base:" listed, and
 * the export entered (or refused with NBD_REP_ERR_EXT_HEADER_REQD). */
static void
without_xhdr (struct ctx *c)
{
  const char *id = "xhdr.ext-header-reqd";
  const char *const base[] = { "base:", NULL };
  struct nbdaio_handle *h = opt_open_one (c, id, R_REQD, OPT_START_NO_XHDR);
  int64_t t;
  int r;

  if (!h)
    return;
  if (nbdaio_get_structured_replies_negotiated (h) == 1) {
    r = nbdaio_opt_list_meta_context (h, base, NULL, NULL);
    if (r == -1 && opt_dead (h, id, R_REQD))
      goto out;
    if (r == -1 &&
        nbdaio_get_opt_reply_type (h) == NBDAIO_REP_ERR_EXT_HEADER_REQD) {
      report (id, V_FAIL, R_REQD, NULL, "NBD_OPT_LIST_META_CONTEXT of "
              "'base:' without extended headers answered with "
              "NBD_REP_ERR_EXT_HEADER_REQD");
      goto out;
    }
  }
  if (nbdaio_opt_go (h) == 0) {
    c->compact_tflags = nbdaio_get_transmission_flags (h);
    report (id, V_PASS, R_REQD, NULL, "a client without extended headers "
            "(%s) gets the export: NBD_REP_ERR_EXT_HEADER_REQD not used",
            nbdaio_get_structured_replies_negotiated (h) == 1 ?
            "structured replies" : "simple replies");
    goto out;
  }
  if (opt_dead (h, id, R_REQD))
    goto out;
  t = nbdaio_get_opt_reply_type (h);
  if (t == NBDAIO_REP_ERR_EXT_HEADER_REQD && c->xhdr)
    report (id, V_PASS, R_REQD, NULL, "the server requires extended "
            "headers (NBD_REP_ERR_EXT_HEADER_REQD), which it offers");
  else
    report (id, V_FAIL, R_REQD, NULL, "without extended headers the export "
            "is refused: %s", nbdaio_get_error ());
 out:
  opt_close (c, h);
}

/* ---- transmission ---------------------------------------------------------- */

static int
need_xhdr (struct ctx *c, const char *id, const char *rule)
{
  if (c->xhdr)
    return 0;
  report (id, V_SKIP, rule, NULL, "extended headers not negotiated");
  return 1;
}

/* Append ", text" (printf format) to what; " text" when fmt starts with
 * a space. */
static void
add (char *what, size_t size, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
static void
add (char *what, size_t size, const char *fmt, ...)
{
  size_t len = strlen (what);
  va_list ap;

  if (len + 3 >= size)
    return;
  if (len && fmt[0] != ' ')     /* " (...)" qualifies what went before */
    len += (size_t) snprintf (what + len, size - len, ", ");
  va_start (ap, fmt);
  vsnprintf (what + len, size - len, fmt, ap);
  va_end (ap);
}

/* One command of reply_magic: 0 went on, -1 when it broke a rule or
 * lost the connection (FAIL recorded). */
static int
judged (int r, const char *id, const struct outcome *o, char *what,
        size_t size, const char *name)
{
  if (r == -1 && report_broken (id, R_MAGIC, o))
    return -1;
  add (what, size, "%s%s%s", name, r == -1 ? " failing with " : "",
       r == -1 ? errno_name (o->err) : "");
  return 0;
}

/* Every kind of reply the probe can make the server send, each checked
 * by the library against the extended form. */
static void
reply_magic (struct ctx *c)
{
  const char *id = "xhdr.reply-magic";
  struct nbdaio_handle *h;
  struct outcome o;
  struct chunks ch;
  struct extents64 e;
  char what[512] = "", buf[4096];
  uint64_t n = c->size < (int64_t) sizeof buf ? (uint64_t) c->size :
    sizeof buf, at = ctx_slot (c, 22), a = ctx_align (c);
  int r;

  if (need_xhdr (c, id, R_MAGIC) || !(h = ctx_conn (c, id)))
    return;
  r = c_pread_chunks (c->cfg, h, buf, n, 0, 0, &ch, &o);
  if (judged (r, id, &o, what, sizeof what, "READ") == -1)
    return;
  add (what, sizeof what, " (%d data, %d hole chunks)", ch.data, ch.hole);
  if (c->can_flush &&
      judged (c_flush (c->cfg, h, 0, &o), id, &o, what, sizeof what,
              "FLUSH (no payload)") == -1)
    return;
  if (c->can_cache && n >= a &&
      judged (c_cache (c->cfg, h, a, 0, 0, &o), id, &o, what, sizeof what,
              "CACHE") == -1)
    return;
  if (c->can_bs) {
    r = c_block_status_64 (c->cfg, h, n, 0, 0, NULL, &e, &o);
    if (judged (r, id, &o, what, sizeof what, "BLOCK_STATUS") == -1)
      return;
    add (what, sizeof what, " (%zu extents)", e.extents);
  }
  if (c->cfg->write && !c->read_only) {
    fill_pattern (buf, a, at, c->seed, 90);
    if (judged (c_pwrite (c->cfg, h, buf, a, at, 0, &o), id, &o, what,
                sizeof what, "WRITE") == -1)
      return;
    if (c->can_zero &&
        judged (c_zero (c->cfg, h, a, at, 0, &o), id, &o, what, sizeof what,
                "WRITE_ZEROES") == -1)
      return;
    if (c->can_trim &&
        judged (c_trim (c->cfg, h, a, at, 0, &o), id, &o, what, sizeof what,
                "TRIM") == -1)
      return;
  }
  /* an error reply: a read past the end, sent without local checks */
  if (!(h = ctx_loose (c, id)))
    return;
  r = c_pread_chunks (c->cfg, h, buf, a, (uint64_t) c->size, 0, &ch, &o);
  if (judged (r, id, &o, what, sizeof what, "READ past the end") == -1)
    return;
  report (id, V_PASS, R_MAGIC, NULL, "%s: every reply extended, its offset "
          "the request's", what);
}

static void
block_status_ext (struct ctx *c)
{
  const char *id = "xhdr.block-status-ext";
  struct nbdaio_handle *h;
  struct outcome o;
  struct extents64 e;
  uint64_t n = (uint64_t) c->size < (1u << 20) ? (uint64_t) c->size :
    (1u << 20);

  if (need_xhdr (c, id, R_BS_EXT))
    return;
  if (!c->can_bs) {
    report (id, V_SKIP, R_BS_EXT, NULL, "no meta context negotiated");
    return;
  }
  if (!(h = ctx_conn (c, id)))
    return;
  if (c_block_status_64 (c->cfg, h, n, 0, 0, NULL, &e, &o) == -1) {
    if (!report_broken (id, R_BS_EXT, &o))
      report (id, V_FAIL, R_BS_EXT, NULL, "BLOCK_STATUS of %" PRIu64
              " bytes %s", n, outcome_text (&o));
    return;
  }
  report (id, V_PASS, R_BS_EXT, NULL, "BLOCK_STATUS of %" PRIu64 " bytes: "
          "%zu extent(s) of 64 bits in NBD_REPLY_TYPE_BLOCK_STATUS_EXT, "
          "%" PRIu64 " bytes described", n, e.extents, e.bytes);
}

/* One request above 4 GiB.  kind: "TRIM", ... */
static void
length64 (struct ctx *c, const char *id, const char *kind, int advertised,
          int writes)
{
  struct nbdaio_handle *h;
  struct outcome o;
  struct extents64 e;
  struct done d;
  uint64_t a = ctx_align (c), len = GIB4 + a, at = writes ?
    c->scratch_offset : 0;
  int64_t cookie;
  int r;

  if (need_xhdr (c, id, R_LEN64))
    return;
  if (!advertised) {
    report (id, V_SKIP, R_LEN64, NULL, "%s not advertised", kind);
    return;
  }
  if ((uint64_t) c->size < len) {
    report (id, V_SKIP, R_LEN64, NULL, "the export (%" PRId64 " bytes) is "
            "too small for a request over 4 GiB", c->size);
    return;
  }
  if (writes && (!c->cfg->write || c->scratch_size < len)) {
    report (id, V_SKIP, R_LEN64, NULL, "needs --write and a scratch area of "
            "%" PRIu64 " bytes (--scratch-size)", len);
    return;
  }
  if (!(h = ctx_conn (c, id)))
    return;
  if (strcmp (kind, "BLOCK_STATUS") == 0)
    r = c_block_status_64 (c->cfg, h, len, at, 0, NULL, &e, &o);
  else {
    cookie = strcmp (kind, "TRIM") == 0 ?
      nbdaio_aio_trim (h, len, at, done_cb (&d), 0) :
      strcmp (kind, "WRITE_ZEROES") == 0 ?
      nbdaio_aio_zero (h, len, at, done_cb (&d), 0) :
      nbdaio_aio_cache (h, len, at, done_cb (&d), 0);
    r = conn_run (c->cfg, h, cookie, &d, &o);
  }
  if (r == -1 && !o.dead && !o.violation[0] && o.err == ERANGE &&
      nbdaio_is_connected (h) == 1 && strstr (o.message, "32-bit")) {
    report (id, V_SKIP, R_LEN64, NULL, "libnbdaio cannot send one request "
            "over 4 GiB (%s)", o.message);
    return;
  }
  if (r == 0)
    report (id, V_PASS, R_LEN64, NULL, "%s of %" PRIu64 " bytes (a 64-bit "
            "effect length) succeeded", kind, len);
  else if (report_broken (id, R_LEN64, &o))
    return;
  else if (o.err == EINVAL || o.err == EOVERFLOW)
    report (id, V_PASS, R_LEN64, NULL, "%s of %" PRIu64 " bytes refused "
            "with %s, which the spec permits (the connection goes on)",
            kind, len, errno_name (o.err));
  else
    report (id, V_FAIL, R_LEN64, NULL, "%s of %" PRIu64 " bytes %s (only "
            "EINVAL or EOVERFLOW are named for an oversize request)", kind,
            len, outcome_text (&o));
}

/* xhdr.payload-filter: one BLOCK_STATUS filtered to the context name of
 * the nsel negotiated on h must be answered for that one only. */
static void
filtered (struct ctx *c, struct nbdaio_handle *h, const char *name, int nsel)
{
  const char *id = "xhdr.payload-filter";
  const char *const only[] = { name, NULL };
  struct outcome o;
  struct extents64 e;
  uint64_t n = (uint64_t) c->size < (1u << 20) ? (uint64_t) c->size :
    (1u << 20);
  char *esc = cli_escape (name);

  c->filter_judged = 1;
  if (c_block_status_64 (c->cfg, h, n, 0, 0, only, &e, &o) == -1) {
    if (!report_broken (id, R_PAYLOAD, &o))
      report (id, V_FAIL, R_PAYLOAD, NULL, "BLOCK_STATUS filtered to '%s' "
              "%s", esc ? esc : "?", outcome_text (&o));
  }
  else if (e.ncontexts == 1 && e.chunks[0] == 1 && !e.other &&
           strcmp (e.name[0], name) == 0)
    report (id, V_PASS, R_PAYLOAD, NULL, "BLOCK_STATUS filtered to '%s' "
            "(NBD_CMD_FLAG_PAYLOAD_LEN, 1 of %d negotiated context(s)): "
            "answered for that context only", esc ? esc : "?", nsel);
  else
    report (id, V_FAIL, R_PAYLOAD, NULL, "BLOCK_STATUS filtered to '%s' got "
            "chunks for %d context(s)", esc ? esc : "?", e.ncontexts +
            e.other);
  free (esc);
}

static void
payload_filter (struct ctx *c)
{
  const char *id = "xhdr.payload-flag-compact";
  struct nbdaio_handle *h;

  if (c->compact_tflags < 0)
    report (id, V_SKIP, R_PAYLOAD_COMPACT, NULL, "no connection without "
            "extended headers was made (see xhdr.ext-header-reqd)");
  else if (c->compact_tflags & NBDAIO_FLAG_BLOCK_STATUS_PAYLOAD)
    report (id, V_FAIL, R_PAYLOAD_COMPACT, NULL, "transmission flags 0x%04x "
            "without extended headers include NBD_FLAG_BLOCK_STATUS_PAYLOAD",
            (unsigned) c->compact_tflags);
  else
    report (id, V_PASS, R_PAYLOAD_COMPACT, NULL, "transmission flags 0x%04x "
            "without extended headers: NBD_FLAG_BLOCK_STATUS_PAYLOAD clear",
            (unsigned) c->compact_tflags);

  id = "xhdr.payload-filter";
  if (c->filter_judged || need_xhdr (c, id, R_PAYLOAD))
    return;
  if (!(c->tflags & NBDAIO_FLAG_BLOCK_STATUS_PAYLOAD) || !c->can_bs)
    report (id, V_SKIP, R_PAYLOAD, NULL, "NBD_FLAG_BLOCK_STATUS_PAYLOAD not "
            "advertised%s (optional)", c->can_bs ? "" : ", no meta context");
  else if ((h = ctx_conn (c, id)))
    filtered (c, h, nbdaio_get_meta_context (h), 1);
}

/* ---- several meta contexts ------------------------------------------------ */

struct listed {
  char *name[BS64_MAX_CONTEXTS];
  int n, more;
};

static void
listed_cb (void *user_data, uint32_t id, const char *name)
{
  struct listed *l = user_data;
  (void) id;
  if (l->n < BS64_MAX_CONTEXTS && (l->name[l->n] = strdup (name)))
    l->n++;
  else
    l->more++;
}

/* The contexts the server lists (every one, no query); -1 when listing
 * failed (a verdict recorded). */
static int
list_contexts (struct ctx *c, const char *id, struct listed *l)
{
  struct nbdaio_handle *h = opt_open_one (c, id, R_META_SEVERAL,
                                          OPT_START_DEFAULT);
  int r = -1;

  if (!h)
    return -1;
  if (nbdaio_get_structured_replies_negotiated (h) != 1)
    report (id, V_SKIP, R_META_SEVERAL, NULL, "structured replies not "
            "negotiated");
  else if ((r = nbdaio_opt_list_meta_context (h, NULL, listed_cb, l)) == -1 &&
           !opt_dead (h, id, R_META_SEVERAL))
    report (id, V_SKIP, R_META_SEVERAL, NULL, "NBD_OPT_LIST_META_CONTEXT "
            "answered with %s", rep_name (nbdaio_get_opt_reply_type (h)));
  opt_close (c, h);
  return r;
}

/* Ask for every context of the struct listed at arg. */
static int
contexts_setup (struct nbdaio_handle *h, const void *arg)
{
  const struct listed *l = arg;

  for (int i = 0; i < l->n; i++)
    if ((i == 0 ? nbdaio_set_meta_context (h, l->name[0]) :
         nbdaio_add_meta_context (h, l->name[i])) == -1)
      return -1;
  return 0;
}

/* A handle asking for every listed context; NULL (FAIL recorded) when
 * it cannot connect. */
static struct nbdaio_handle *
open_contexts (struct ctx *c, const char *id, const struct listed *l)
{
  struct outcome o;
  struct nbdaio_handle *h = check_open_with (c->cfg, NBDAIO_STRICT_ALL,
                                             contexts_setup, l, &o);

  if (!h && !report_broken (id, R_META_SEVERAL, &o))
    report (id, V_FAIL, R_META_SEVERAL, NULL, "cannot connect asking for %d "
            "contexts: %s", l->n, o.message);
  return h;
}

static void
several_contexts (struct ctx *c)
{
  const char *id = "meta.several-contexts";
  struct listed l = { .n = 0 };
  struct nbdaio_handle *h = NULL;
  struct outcome o;
  struct extents64 e;
  char what[400] = "";
  uint64_t n = (uint64_t) c->size < (1u << 20) ? (uint64_t) c->size :
    (1u << 20);
  int r, nsel, i, once = 1;

  ctx_close_all (c);
  r = list_contexts (c, id, &l);
  if (r == -1)
    goto out;
  if (l.n < 2) {
    report (id, V_SKIP, R_META_SEVERAL, NULL, "the server lists %d "
            "context(s): several at once needs two or more", r);
    goto out;
  }
  if (!(h = open_contexts (c, id, &l)))
    goto out;
  nsel = nbdaio_get_nr_meta_contexts (h);
  if (nsel < 2) {
    report (id, V_SKIP, R_META_SEVERAL, NULL, "NBD_OPT_SET_META_CONTEXT of "
            "the %d listed contexts selected %d (a server may ignore "
            "queries): several at once needs two or more", l.n, nsel);
    goto out;
  }
  if (c_block_status_64 (c->cfg, h, n, 0, 0, NULL, &e, &o) == -1) {
    if (!report_broken (id, R_META_SEVERAL, &o))
      report (id, V_FAIL, R_META_SEVERAL, NULL, "BLOCK_STATUS for %d "
              "contexts %s", nsel, outcome_text (&o));
    goto out;
  }
  for (i = 0; i < e.ncontexts; i++) {
    char *name = cli_escape (e.name[i]);
    add (what, sizeof what, "%s: %d chunk(s)", name ? name : "?",
         e.chunks[i]);
    free (name);
    once &= e.chunks[i] == 1;
  }
  if (once && e.ncontexts == nsel && !e.other)
    report (id, V_PASS, R_META_SEVERAL, NULL, "%d contexts selected of %d "
            "listed%s; one BLOCK_STATUS answered each once (%s)", nsel, r,
            l.more ? " (the first 8 asked for)" : "", what);
  else
    report (id, V_FAIL, R_META_SEVERAL, NULL, "one BLOCK_STATUS for %d "
            "selected contexts: %s", nsel, what);
  /* the filter probe, to one context of several, while they are here */
  if (nbdaio_can_block_status_payload (h) == 1 && e.ncontexts == nsel)
    filtered (c, h, e.name[nsel - 1], nsel);
 out:
  if (h)
    check_close (c->cfg, h);
  for (i = 0; i < l.n; i++)
    free (l.name[i]);
}

void
probe_xhdr (struct ctx *c)
{
  c->xhdr_reply = -1;
  c->compact_tflags = -1;
  c->filter_judged = 0;
  /* option-mode probes first: a server may allow one client at a time */
  ctx_close_all (c);
  xhdr_alone_then_sr (c);
  xhdr_with_data (c);
  sr_then_xhdr (c);
  without_xhdr (c);
  reply_magic (c);
  block_status_ext (c);
  length64 (c, "xhdr.length64-block-status", "BLOCK_STATUS", c->can_bs, 0);
  length64 (c, "xhdr.length64-cache", "CACHE", c->can_cache, 0);
  length64 (c, "xhdr.length64-trim", "TRIM", c->can_trim, 1);
  length64 (c, "xhdr.length64-zero", "WRITE_ZEROES", c->can_zero, 1);
  several_contexts (c);
  payload_filter (c);
}
