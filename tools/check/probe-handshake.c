/* tools/check/probe-handshake.c - nbdaio-check: the handshake
 * (handshake.*).  What the first connection found: fixed newstyle,
 * NO_ZEROES, structured replies, extended headers, base:allocation, block
 * size constraints.
 * Then, on connections in option negotiation mode (nbdaio_set_opt_mode):
 * an unknown option, NBD_OPT_LIST, NBD_OPT_INFO against NBD_OPT_GO,
 * NBD_OPT_LIST_META_CONTEXT (no query, "base:", an unknown namespace) and
 * NBD_OPT_SET_META_CONTEXT of an unknown context.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli-common.h"

#define OPT_UNKNOWN        0x4e424441u     /* "NBDA": no such option */

#define R_FIXED "Compatibility and interoperability / Baseline: The " \
  "following MUST be implemented by all implementations: ... The fixed " \
  "newstyle handshake"
#define R_NO_ZEROES "Handshake flags: bit 1, NBD_FLAG_NO_ZEROES (optional)"
#define R_SR "NBD_OPT_STRUCTURED_REPLY (optional; Compatibility / Future " \
  "considerations)"
#define R_XHDR "NBD_OPT_EXTENDED_HEADERS (optional): NBD_REP_ACK means the " \
  "server MUST use the 32-byte extended reply header (every reply of the " \
  "probes that follow is checked against it: [ext-*] rules)"
#define R_META_SET "base:allocation metadata context (optional): the server " \
  "MUST reply with a number of NBD_REP_META_CONTEXT replies, one for each " \
  "selected metadata context"
#define R_BLOCK_SIZE "Size constraints: [minimum] MUST be a power of 2, " \
  "MUST NOT be larger than 2^16; [preferred] MUST be a power of 2 at " \
  "least as large as the maximum of the minimum block size and 2^9; " \
  "[maximum] MUST be at least as large as the preferred block size, and " \
  "SHOULD be at least 2^20 if the export is that large; the export size " \
  "SHOULD be an integer multiple of [the minimum] block size"
#define R_UNKNOWN_OPT "Compatibility and interoperability / Baseline: " \
  "Servers that receive messages which they do not implement MUST reply " \
  "to them with NBD_REP_ERR_UNSUP, and MUST NOT fail to parse the next " \
  "message received"
#define R_LIST "Compatibility and interoperability / Baseline: [MUST " \
  "implement] the NBD_OPT_LIST message and its response"
#define R_INFO_GO "NBD_OPT_INFO and NBD_OPT_GO: If there are no intervening " \
  "option requests between a successful NBD_OPT_INFO ... and an " \
  "NBD_OPT_GO with the same parameters ... then the server MUST reply " \
  "with the same set of information, such as transmission flags in the " \
  "NBD_INFO_EXPORT reply"
/* NBD_FLAG_BLOCK_STATUS_PAYLOAD: the spec lets
 * INFO and GO differ on it without meta contexts ("SHOULD NOT advertise
 * this bit in response to NBD_OPT_GO if the client does not negotiate
 * metacontexts"), which qemu-nbd 10 does: info-go leaves it out of the
 * comparison. */
#define R_META_LIST "NBD_OPT_LIST_META_CONTEXT: If zero queries are sent, " \
  "then the server MUST return all the metadata contexts that are " \
  "available ... each namespace returned MUST begin with the relevant " \
  "namespace, followed by a colon"
#define R_META_LIST_BASE "The base: metadata namespace: base: - the server " \
  "... MUST support this as a wildcard during NBD_OPT_LIST_META_CONTEXT"
#define R_META_LIST_UNKNOWN "NBD_OPT_LIST_META_CONTEXT: the server MUST " \
  "ignore query strings belonging to an unknown namespace.  If none of " \
  "the query strings find any metadata contexts, the server MUST send a " \
  "single reply of type NBD_REP_ACK"
#define R_META_SET_UNKNOWN "NBD_OPT_SET_META_CONTEXT: The server MAY " \
  "ignore queries that do not select a single metadata context; " \
  "namespaces MUST be base, nbd-server, x-*, or registered (x-nbdaio is a " \
  "local experiment no server should know)"

/* The library's name of the reply type, else its number. */
const char *
rep_name (int64_t t)
{
  static __thread char buf[32];
  const char *name = t >= 0 && t <= UINT32_MAX ?
    nbdaio_option_reply_name ((uint32_t) t) : NULL;

  if (name)
    return name;
  snprintf (buf, sizeof buf, "reply type 0x%" PRIx64, t);
  return buf;
}

static int
is_pow2 (int64_t v)
{
  return v > 0 && (v & (v - 1)) == 0;
}

/* ---- what the first connection found ---------------------------------- */

static void
from_first_connection (struct ctx *c)
{
  if (strcmp (c->protocol, "newstyle-fixed") == 0)
    report ("handshake.fixed-newstyle", V_PASS, R_FIXED, NULL,
            "the server speaks fixed newstyle (NBD_FLAG_FIXED_NEWSTYLE)");
  else
    report ("handshake.fixed-newstyle", V_FAIL, R_FIXED, NULL,
            "the server speaks %s, not fixed newstyle", c->protocol);

  if (strcmp (c->protocol, "oldstyle") == 0)
    report ("handshake.no-zeroes", V_SKIP, R_NO_ZEROES, NULL,
            "oldstyle handshake: no handshake flags");
  else if (c->hflags & NBDAIO_HANDSHAKE_FLAG_NO_ZEROES)
    report ("handshake.no-zeroes", V_PASS, R_NO_ZEROES, NULL,
            "NBD_FLAG_NO_ZEROES offered");
  else
    report ("handshake.no-zeroes", V_SKIP, R_NO_ZEROES, NULL,
            "NBD_FLAG_NO_ZEROES not offered (optional)");

  if (c->sr)
    report ("handshake.structured-replies", V_PASS, R_SR, NULL,
            "structured replies negotiated");
  else
    report ("handshake.structured-replies", V_SKIP, R_SR, NULL,
            "structured replies not offered (optional)");

  if (c->xhdr)
    report ("handshake.extended-headers", V_PASS, R_XHDR, NULL,
            "extended headers negotiated: 32-byte requests and replies, "
            "64-bit lengths");
  else
    report ("handshake.extended-headers", V_SKIP, R_XHDR, NULL,
            "extended headers not offered (optional)");

  if (!c->sr)
    report ("handshake.meta-set", V_SKIP, R_META_SET, NULL,
            "no structured replies, so no meta contexts");
  else if (c->can_bs)
    report ("handshake.meta-set", V_PASS, R_META_SET, NULL,
            "base:allocation negotiated with NBD_OPT_SET_META_CONTEXT");
  else
    report ("handshake.meta-set", V_SKIP, R_META_SET, NULL,
            "base:allocation not offered (optional)");

  /* block sizes: the library refuses broken MUSTs at connect time, so
   * this mostly checks the SHOULDs */
  const char *id = "handshake.block-size";
  int64_t mn = c->min_block, pr = c->pref_block, mx = c->max_block;
  if (mn == 0 && pr == 0 && mx == 0)
    report (id, V_PASS, R_BLOCK_SIZE, NULL, "no NBD_INFO_BLOCK_SIZE: the "
            "defaults apply (minimum 1, preferred 4096, maximum 32 MiB)");
  else if (!is_pow2 (mn) || mn > 65536 || !is_pow2 (pr) ||
           pr < (mn > 512 ? mn : 512) || mx < pr)
    report (id, V_FAIL, R_BLOCK_SIZE, NULL, "minimum %" PRId64 ", preferred "
            "%" PRId64 ", maximum %" PRId64 " break the constraints", mn, pr,
            mx);
  else if (c->size % mn != 0)
    report (id, V_WARN, R_BLOCK_SIZE, NULL, "export size %" PRId64 " is not "
            "a multiple of the minimum block size %" PRId64, c->size, mn);
  else if (mx < (c->size < (1 << 20) ? c->size : (1 << 20)))
    report (id, V_WARN, R_BLOCK_SIZE, NULL, "maximum payload %" PRId64
            " is below 2^20 on a %" PRId64 "-byte export", mx, c->size);
  else
    report (id, V_PASS, R_BLOCK_SIZE, NULL, "minimum %" PRId64 ", preferred "
            "%" PRId64 ", maximum %" PRId64, mn, pr, mx);
}

/* ---- option negotiation mode --------------------------------------------- */

/* Option mode, and what start says to negotiate before the probe. */
static int
opt_setup (struct nbdaio_handle *h, const void *arg)
{
  enum opt_start start = *(const enum opt_start *) arg;

  if (nbdaio_set_opt_mode (h, 1) == -1 ||
      (start != OPT_START_DEFAULT &&
       nbdaio_set_request_extended_headers (h, 0) == -1) ||
      (start == OPT_START_NOTHING &&
       nbdaio_set_request_structured_replies (h, 0) == -1))
    return -1;
  return 0;
}

struct nbdaio_handle *
opt_open (struct ctx *c, const char *const *ids, const char *const *rules,
          enum opt_start start)
{
  struct outcome o;
  struct nbdaio_handle *h = check_open_with (c->cfg, NBDAIO_STRICT_ALL,
                                             opt_setup, &start, &o);

  if (h && !nbdaio_is_negotiating (h)) {
    for (size_t i = 0; ids[i]; i++)
      report (ids[i], V_SKIP, rules[i], NULL, "the server cannot negotiate "
              "options (%s handshake)", nbdaio_get_protocol (h));
    check_close (c->cfg, h);
    return NULL;
  }
  if (!h)
    for (size_t i = 0; ids[i]; i++)
      if (!report_broken (ids[i], rules[i], &o))
        report (ids[i], V_FAIL, rules[i], NULL,
                "cannot connect in option negotiation mode: %s", o.message);
  return h;
}

struct nbdaio_handle *
opt_open_one (struct ctx *c, const char *id, const char *rule,
              enum opt_start start)
{
  const char *const ids[] = { id, NULL };
  const char *const rules[] = { rule, NULL };

  return opt_open (c, ids, rules, start);
}

int
opt_dead (struct nbdaio_handle *h, const char *id, const char *rule)
{
  struct outcome o;

  if (nbdaio_is_negotiating (h))
    return 0;
  memset (&o, 0, sizeof o);
  outcome_from_error (h, &o);
  o.dead = 1;
  if (!report_broken (id, rule, &o))
    report (id, V_FAIL, rule, NULL, "%s", o.message);
  return 1;
}

void
opt_close (struct ctx *c, struct nbdaio_handle *h)
{
  if (nbdaio_is_negotiating (h))
    nbdaio_opt_abort (h);
  check_close (c->cfg, h);
}

static void
unknown_option (struct ctx *c)
{
  const char *id = "handshake.unknown-option";
  struct nbdaio_handle *h = opt_open_one (c, id, R_UNKNOWN_OPT,
                                          OPT_START_DEFAULT);
  int64_t t1, t2;

  if (!h)
    return;
  t1 = nbdaio_opt_raw (h, OPT_UNKNOWN, NULL, 0);
  if (t1 == -1) {
    if (!opt_dead (h, id, R_UNKNOWN_OPT))
      report (id, V_FAIL, R_UNKNOWN_OPT, NULL, "option 0x%x: %s",
              OPT_UNKNOWN, nbdaio_get_error ());
    goto out;
  }
  if (t1 != NBDAIO_REP_ERR_UNSUP) {
    report (id, V_FAIL, R_UNKNOWN_OPT, NULL, "unknown option 0x%x answered "
            "with %s", OPT_UNKNOWN, rep_name (t1));
    goto out;
  }
  /* again with data the server has to skip, then it must still parse */
  t2 = nbdaio_opt_raw (h, OPT_UNKNOWN, "abcd", 4);
  if (t2 == -1) {
    if (!opt_dead (h, id, R_UNKNOWN_OPT))
      report (id, V_FAIL, R_UNKNOWN_OPT, NULL, "option 0x%x with 4 bytes "
              "of data: %s", OPT_UNKNOWN, nbdaio_get_error ());
  }
  else if (t2 != NBDAIO_REP_ERR_UNSUP)
    report (id, V_FAIL, R_UNKNOWN_OPT, NULL, "unknown option 0x%x with 4 "
            "bytes of data answered with %s", OPT_UNKNOWN, rep_name (t2));
  else
    report (id, V_PASS, R_UNKNOWN_OPT, NULL, "unknown option 0x%x (with and "
            "without data) answered with NBD_REP_ERR_UNSUP", OPT_UNKNOWN);
 out:
  opt_close (c, h);
}

struct names {
  char text[400];
  size_t len;
  int count;
  int bad_name;           /* a context name without "namespace:" */
  int has_base_allocation;
};

/* Add a name the server listed, escaped (it goes into the report). */
static void
add_name (struct names *n, const char *raw)
{
  char *name = cli_escape (raw);

  n->count++;
  if (name && n->len + strlen (name) + 8 < sizeof n->text)
    n->len += (size_t) snprintf (n->text + n->len, sizeof n->text - n->len,
                                 "%s'%s'", n->len ? ", " : "", name);
  else if (n->len + 5 < sizeof n->text && !strstr (n->text, "..."))
    n->len += (size_t) snprintf (n->text + n->len, sizeof n->text - n->len,
                                 ", ...");
  free (name);
}

static void
list_cb (void *user_data, const char *name, const char *description)
{
  (void) description;
  add_name (user_data, name);
}

static void
context_cb (void *user_data, uint32_t id, const char *name)
{
  struct names *n = user_data;
  const char *colon = strchr (name, ':');
  (void) id;
  if (!colon || colon == name)
    n->bad_name = 1;
  if (strcmp (name, "base:allocation") == 0)
    n->has_base_allocation = 1;
  add_name (n, name);
}

/* One NBD_OPT_LIST_META_CONTEXT; returns the count, -1 on an error reply
 * (*type set), -2 when the connection died (FAIL recorded). */
static int
list_meta (struct nbdaio_handle *h, const char *id, const char *rule,
           const char *query, struct names *n, int64_t *type)
{
  const char *const queries[] = { query, NULL };
  memset (n, 0, sizeof *n);
  int r = nbdaio_opt_list_meta_context (h, query ? queries : NULL,
                                        context_cb, n);
  if (r >= 0)
    return r;
  if (opt_dead (h, id, rule))
    return -2;
  *type = nbdaio_get_opt_reply_type (h);
  return -1;
}

static void
list_and_meta (struct ctx *c)
{
  static const char *const ids[] = {
    "handshake.list", "handshake.meta-list-all", "handshake.meta-list-base",
    "handshake.meta-list-unknown", NULL
  };
  static const char *const rules[] = {
    R_LIST, R_META_LIST, R_META_LIST_BASE, R_META_LIST_UNKNOWN, NULL
  };
  struct nbdaio_handle *h = opt_open (c, ids, rules, OPT_START_DEFAULT);
  struct names n, all;
  int64_t type = 0;
  int r, i, at = 0;

  if (!h)
    return;
  memset (&n, 0, sizeof n);
  r = nbdaio_opt_list (h, list_cb, &n);
  if (r >= 0)
    report (ids[0], V_PASS, R_LIST, NULL, "%d export(s)%s%s", r,
            r ? ": " : "", n.text);
  else if (opt_dead (h, ids[0], R_LIST))
    goto dead;
  else if ((type = nbdaio_get_opt_reply_type (h)) == NBDAIO_REP_ERR_POLICY)
    report (ids[0], V_PASS, R_LIST, NULL, "refused by policy "
            "(NBD_REP_ERR_POLICY, which the spec names for this case)");
  else
    report (ids[0], V_FAIL, R_LIST, NULL, "NBD_OPT_LIST answered with %s",
            rep_name (type));

  if (!c->sr) {
    for (i = 1; i < 4; i++)
      report (ids[i], V_SKIP, rules[i], NULL,
              "structured replies not negotiated");
    goto out;
  }
  at = 1;
  r = list_meta (h, ids[1], R_META_LIST, NULL, &all, &type);
  if (r == -2)
    goto dead;
  if (r == -1) {
    enum verdict v = type == NBDAIO_REP_ERR_UNSUP ? V_SKIP : V_WARN;
    for (i = 1; i < 4; i++)
      report (ids[i], v, rules[i], NULL, "NBD_OPT_LIST_META_CONTEXT "
              "answered with %s%s", rep_name (type),
              v == V_SKIP ? " (optional)" : "");
    goto out;
  }
  if (all.bad_name)
    report (ids[1], V_FAIL, R_META_LIST, NULL, "a context name without "
            "'namespace:' among %s", all.text);
  else
    report (ids[1], V_PASS, R_META_LIST, NULL, "%d context(s)%s%s", r,
            r ? ": " : "", all.text);

  at = 2;
  r = list_meta (h, ids[2], R_META_LIST_BASE, "base:", &n, &type);
  if (r == -2)
    goto dead;
  if (r == -1)
    report (ids[2], V_FAIL, R_META_LIST_BASE, NULL, "query 'base:' answered "
            "with %s", rep_name (type));
  else if (n.bad_name || (n.count && strstr (n.text, "'base:") == NULL))
    report (ids[2], V_FAIL, R_META_LIST_BASE, NULL, "query 'base:' returned "
            "contexts outside base: %s", n.text);
  else if ((all.has_base_allocation || c->can_bs) && !n.has_base_allocation)
    report (ids[2], V_FAIL, R_META_LIST_BASE, NULL, "the server has "
            "base:allocation but the wildcard 'base:' did not list it (%d "
            "context(s)%s%s)", r, r ? ": " : "", n.text);
  else
    report (ids[2], V_PASS, R_META_LIST_BASE, NULL, "query 'base:' "
            "listed %d context(s)%s%s", r, r ? ": " : "", n.text);

  at = 3;
  r = list_meta (h, ids[3], R_META_LIST_UNKNOWN, "x-nbdaio:", &n, &type);
  if (r == -2)
    goto dead;
  if (r == -1)
    report (ids[3], V_FAIL, R_META_LIST_UNKNOWN, NULL, "query 'x-nbdaio:' "
            "answered with %s instead of a lone NBD_REP_ACK", rep_name (type));
  else if (r > 0)
    report (ids[3], V_FAIL, R_META_LIST_UNKNOWN, NULL, "query 'x-nbdaio:' "
            "(unknown namespace) listed %s", n.text);
  else
    report (ids[3], V_PASS, R_META_LIST_UNKNOWN, NULL, "query 'x-nbdaio:' "
            "(unknown namespace) listed nothing");
 out:
  opt_close (c, h);
  return;

 dead:
  /* the probes after the one that lost the connection did not run */
  for (i = at + 1; ids[i]; i++)
    report (ids[i], V_SKIP, rules[i], NULL, "not run: %s ended the "
            "connection", ids[at]);
  check_close (c->cfg, h);
}

static void
info_go (struct ctx *c)
{
  const char *id = "handshake.info-go";
  struct nbdaio_handle *h = opt_open_one (c, id, R_INFO_GO,
                                          OPT_START_DEFAULT);
  int64_t isize, imin, ipref, imax;
  int iflags;

  if (!h)
    return;
  /* no meta context: NBD_OPT_GO then follows NBD_OPT_INFO directly, with
   * the same parameters */
  if (nbdaio_set_meta_context (h, NULL) == -1 || nbdaio_opt_info (h) == -1) {
    if (!opt_dead (h, id, R_INFO_GO))
      report (id, V_FAIL, R_INFO_GO, NULL, "NBD_OPT_INFO failed: %s",
              nbdaio_get_error ());
    goto out;
  }
  isize = nbdaio_get_size (h);
  iflags = nbdaio_get_transmission_flags (h);
  imin = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  ipref = nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED);
  imax = nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM);
  if (nbdaio_opt_go (h) == -1) {
    if (!opt_dead (h, id, R_INFO_GO))
      report (id, V_FAIL, R_INFO_GO, NULL, "NBD_OPT_GO after a successful "
              "NBD_OPT_INFO failed: %s", nbdaio_get_error ());
    goto out;
  }
  if (isize != nbdaio_get_size (h) ||
      ((iflags ^ nbdaio_get_transmission_flags (h)) &
       ~NBDAIO_FLAG_BLOCK_STATUS_PAYLOAD) ||
      imin != nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM) ||
      ipref != nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED) ||
      imax != nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM))
    report (id, V_FAIL, R_INFO_GO, NULL, "NBD_OPT_INFO said size %" PRId64
            ", flags 0x%04x, block sizes %" PRId64 "/%" PRId64 "/%" PRId64
            "; NBD_OPT_GO said size %" PRId64 ", flags 0x%04x, block sizes %"
            PRId64 "/%" PRId64 "/%" PRId64, isize, (unsigned) iflags, imin,
            ipref, imax, nbdaio_get_size (h),
            (unsigned) nbdaio_get_transmission_flags (h),
            nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM),
            nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED),
            nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM));
  else
    report (id, V_PASS, R_INFO_GO, NULL, "NBD_OPT_INFO and NBD_OPT_GO agree "
            "(size %" PRId64 ", flags 0x%04x, block sizes %" PRId64 "/%"
            PRId64 "/%" PRId64 ")", isize, (unsigned) iflags, imin, ipref,
            imax);
 out:
  opt_close (c, h);
}

static void
meta_set_unknown (struct ctx *c)
{
  const char *id = "handshake.meta-set-unknown";
  struct nbdaio_handle *h;

  if (!c->sr) {
    report (id, V_SKIP, R_META_SET_UNKNOWN, NULL,
            "structured replies not negotiated");
    return;
  }
  if (!(h = opt_open_one (c, id, R_META_SET_UNKNOWN, OPT_START_DEFAULT)))
    return;
  if (nbdaio_set_meta_context (h, "x-nbdaio:none") == -1 ||
      nbdaio_opt_go (h) == -1) {
    if (!opt_dead (h, id, R_META_SET_UNKNOWN))
      report (id, V_FAIL, R_META_SET_UNKNOWN, NULL, "NBD_OPT_GO after "
              "asking for 'x-nbdaio:none' failed: %s", nbdaio_get_error ());
  }
  else if (nbdaio_get_meta_context (h))
    report (id, V_WARN, R_META_SET_UNKNOWN, NULL, "the server selected "
            "'%s' for the query 'x-nbdaio:none'", nbdaio_get_meta_context (h));
  else
    report (id, V_PASS, R_META_SET_UNKNOWN, NULL, "'x-nbdaio:none' selected "
            "nothing");
  opt_close (c, h);
}

void
probe_handshake (struct ctx *c)
{
  from_first_connection (c);
  ctx_close_all (c);
  unknown_option (c);
  list_and_meta (c);
  info_go (c);
  meta_set_unknown (c);
}
