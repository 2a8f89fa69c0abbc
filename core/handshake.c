/* handshake.c - the client side of NBD option haggling.
 *
 * Order: greeting (oldstyle, newstyle or fixed newstyle), client flags,
 * NBD_OPT_STARTTLS and the TLS handshake when TLS is wanted (every later
 * option then travels inside TLS), NBD_OPT_EXTENDED_HEADERS and, if it is
 * refused, NBD_OPT_STRUCTURED_REPLY (that much is handshake_start), then
 * NBD_OPT_SET_META_CONTEXT and NBD_OPT_GO with NAME/DESCRIPTION/BLOCK_SIZE
 * info requests, falling back to NBD_OPT_EXPORT_NAME (handshake_finish).
 * In between, opt mode runs single option exchanges (LIST, INFO,
 * LIST_META_CONTEXT, any option raw, ABORT).
 *
 * Every server message is checked against the NBD spec's rules for the
 * handshake (the rule table in rules.c names each); a violation fails with
 * "[rule]" in the message.  A function that holds a reply's payload frees
 * it at its one exit. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "handshake.h"
#include "nbdaio.h"
#include "proto.h"

#define OPT_REPLY_MAX (64 * 1024)    /* no option reply we ask for is longer */
#define RAW_REPLIES_MAX 64           /* replies read for one raw option */
#define LIST_BYTES_MAX (16 * 1024 * 1024) /* memory one listing may take */
#define ABORT_WAIT_MS 1000           /* for the reply to NBD_OPT_ABORT */

/* One run of the handshake or one option exchange: where it talks, what
 * it was asked to do, and the facts it fills in. */
struct hs {
  struct transport *t;
  const struct handshake_opts *o;
  struct export_info *info;
};

/* An option reply: header fields and a malloc'd payload. */
struct opt_reply {
  uint32_t type;
  uint32_t len;
  uint8_t *data;
};

static int
hs_read (struct hs *hs, void *buf, size_t len)
{
  return transport_read_full (hs->t, buf, len, hs->o->deadline);
}

static void
put_option_header (uint8_t *hdr, uint32_t opt, uint32_t len)
{
  wire_put64 (hdr, NBD_MAGIC_OPT);
  wire_put32 (hdr + 8, opt);
  wire_put32 (hdr + 12, len);
}

static int
send_option (struct hs *hs, uint32_t opt, const void *data, uint32_t len)
{
  uint8_t hdr[NBD_OPT_HDR_LEN];

  debug (hs->o->debug, "sending %s (%u bytes)", proto_option_name (opt), len);
  put_option_header (hdr, opt, len);
  if (transport_write_full (hs->t, hdr, sizeof hdr, hs->o->deadline) == -1 ||
      transport_write_full (hs->t, data, len, hs->o->deadline) == -1) {
    error_prefix (proto_option_name (opt));
    return -1;
  }
  return 0;
}

/* Is reply type legal as an answer to opt? */
static bool
reply_type_legal (uint32_t opt, uint32_t type)
{
  if (type & NBD_REP_FLAG_ERROR)
    return true;
  switch (opt) {
  case NBD_OPT_STARTTLS:
  case NBD_OPT_EXTENDED_HEADERS:
  case NBD_OPT_STRUCTURED_REPLY: return type == NBD_REP_ACK;
  case NBD_OPT_SET_META_CONTEXT:
  case NBD_OPT_LIST_META_CONTEXT:
    return type == NBD_REP_ACK || type == NBD_REP_META_CONTEXT;
  case NBD_OPT_LIST:             return type == NBD_REP_ACK || type == NBD_REP_SERVER;
  case NBD_OPT_INFO:
  case NBD_OPT_GO:               return type == NBD_REP_ACK || type == NBD_REP_INFO;
  default:                       return false;
  }
}

static bool
is_final (uint32_t type)
{
  return type == NBD_REP_ACK || (type & NBD_REP_FLAG_ERROR);
}

/* The checks on a reply header to opt (raw: not the type). */
static int
check_reply_header (uint32_t opt, uint64_t magic, uint32_t echo,
                    const struct opt_reply *r, bool raw)
{
  if (magic != NBD_MAGIC_OPT_REPLY)
    return set_violation (RULE_OPT_REPLY_MAGIC,
                          "option reply magic is 0x%016llx, "
                          "expected 0x%016llx", (unsigned long long) magic,
                          (unsigned long long) NBD_MAGIC_OPT_REPLY);
  if (echo != opt)
    return set_violation (RULE_OPT_REPLY_ECHO,
                          "reply to %s names option %u (%s)",
                          proto_option_name (opt), echo,
                          proto_option_name (echo));
  if (!raw && !reply_type_legal (opt, r->type))
    return set_violation (RULE_OPT_REPLY_TYPE, "%s answered with reply type "
                          "0x%x (%s), not legal for this option",
                          proto_option_name (opt), r->type,
                          proto_reply_name (r->type));
  if (r->len > OPT_REPLY_MAX)
    return set_violation (RULE_OPT_REPLY_LENGTH, "%s reply of %u bytes (more "
                          "than %d)", proto_option_name (opt), r->len,
                          OPT_REPLY_MAX);
  if (!raw && r->type == NBD_REP_ACK && r->len != 0)
    return set_violation (RULE_OPT_REPLY_LENGTH, "NBD_REP_ACK to %s carries %u "
                          "bytes (must be 0)", proto_option_name (opt), r->len);
  return 0;
}

/* Read one reply to opt.  raw: check only the magic, the echo and the
 * length limit (nbdaio_opt_raw), not the type.  Returns 0 with r->data
 * the caller's to free (NULL without payload), or -1 with r->data NULL. */
static int
read_reply (struct hs *hs, uint32_t opt, struct opt_reply *r, bool raw)
{
  uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];

  r->data = NULL;
  if (hs_read (hs, hdr, sizeof hdr) == -1)
    goto err_read;
  r->type = wire_get32 (hdr + 12);
  r->len = wire_get32 (hdr + 16);
  if (check_reply_header (opt, wire_get64 (hdr), wire_get32 (hdr + 8), r,
                          raw) == -1)
    return -1;
  if (r->len) {
    if (!(r->data = malloc (r->len + 1)))
      return set_error (ENOMEM, "out of memory");
    if (hs_read (hs, r->data, r->len) == -1)
      goto err_read;
    r->data[r->len] = '\0';
  }
  debug (hs->o->debug, "received %s for %s (%u bytes)",
         proto_reply_name (r->type), proto_option_name (opt), r->len);
  if (is_final (r->type) && hs->o->reply_type)
    *hs->o->reply_type = r->type;
  return 0;

 err_read:
  free (r->data);
  r->data = NULL;
  error_prefix (proto_option_name (opt));
  return -1;
}

static int
read_option_reply (struct hs *hs, uint32_t opt, struct opt_reply *r)
{
  return read_reply (hs, opt, r, false);
}

/* What an exchange does with each reply before the final one (an
 * NBD_REP_SERVER, META_CONTEXT or INFO): 0, or -1 to give up. */
typedef int reply_handler (struct hs *hs, void *ctx,
                           const struct opt_reply *r);

/* Read the replies to opt up to the final one (NBD_REP_ACK or an error
 * reply), passing each one before it to handle.  Returns 0 with the final
 * reply in *r (r->data the caller's to free), or -1 (r->data NULL). */
static int
read_replies (struct hs *hs, uint32_t opt, struct opt_reply *r,
              reply_handler *handle, void *ctx)
{
  int ret;

  for (;;) {
    if (read_option_reply (hs, opt, r) == -1)
      return -1;
    if (is_final (r->type))
      return 0;
    ret = handle (hs, ctx, r);
    free (r->data);
    r->data = NULL;
    if (ret == -1)
      return -1;
  }
}

/* Tell the server we are leaving (best effort: no reply is awaited). */
static void
send_abort (struct hs *hs)
{
  uint8_t hdr[NBD_OPT_HDR_LEN];

  put_option_header (hdr, NBD_OPT_ABORT, 0);
  (void) transport_write_full (hs->t, hdr, sizeof hdr,
                               transport_now_ms () + 100);
}

/* The errno of an error reply (the mapping nbdaio.h documents). */
static int
refusal_errno (uint32_t type)
{
  switch (type) {
  case NBD_REP_ERR_UNSUP:
  case NBD_REP_ERR_TLS_REQD:
  case NBD_REP_ERR_PLATFORM: return ENOTSUP;
  case NBD_REP_ERR_POLICY:   return EPERM;
  case NBD_REP_ERR_UNKNOWN:  return ENOENT;
  case NBD_REP_ERR_SHUTDOWN: return ESHUTDOWN;
  case NBD_REP_ERR_TOO_BIG:  return ERANGE;
  default:                   return EINVAL;
  }
}

/* Turn an error reply into the last error.  Connecting, tell the server we
 * are leaving (NBD_OPT_ABORT, best effort: its reply is not awaited) and
 * return HS_FAILED; in opt mode (o->keep_negotiating) the connection stays
 * negotiating: HS_REFUSED. */
static enum hs_result
option_refused (struct hs *hs, const char *what, uint32_t opt,
                const struct opt_reply *r)
{
  const char *hint = r->type == NBD_REP_ERR_TLS_REQD ?
    " (connect with TLS: an nbds:// URI or tls=require)" :
    r->type == NBD_REP_ERR_EXT_HEADER_REQD ?
    " (turn the extended-headers and structured settings on)" : "";

  if (!hs->o->keep_negotiating)
    send_abort (hs);
  set_error (refusal_errno (r->type), "server refused %s%s: %s%s%s%s",
             proto_option_name (opt), what, proto_reply_name (r->type), hint,
             r->len ? ": " : "", r->len ? ESCAPED (r->data, r->len) : "");
  return hs->o->keep_negotiating ? HS_REFUSED : HS_FAILED;
}

/* An error reply to NBD_OPT_STARTTLS: with tls=require the end (HS_FAILED),
 * with tls=allow the connection goes on in plaintext (HS_OK). */
static enum hs_result
starttls_refused (struct hs *hs, const struct opt_reply *r)
{
  if (hs->o->tls->mode != NBDAIO_TLS_REQUIRE) {
    debug (hs->o->debug, "server refused TLS (%s), continuing in plaintext",
           proto_reply_name (r->type));
    return HS_OK;
  }
  send_abort (hs);
  return set_error (ENOTSUP, "TLS required, but the server does not offer "
                    "TLS: it answered NBD_OPT_STARTTLS with %s%s%s",
                    proto_reply_name (r->type), r->len ? ": " : "",
                    r->len ? ESCAPED (r->data, r->len) : "");
}

/* NBD_OPT_STARTTLS, then the TLS handshake.  With tls=allow a refusal
 * leaves the connection in plaintext; with tls=require it ends it. */
static enum hs_result
opt_starttls (struct hs *hs)
{
  const struct handshake_opts *o = hs->o;
  struct tls_session *ts = tls_prepare (o->tls, o->host);
  struct opt_reply r = { .data = NULL };
  enum hs_result ret = HS_FAILED;

  if (!ts ||
      send_option (hs, NBD_OPT_STARTTLS, NULL, 0) == -1 ||
      read_option_reply (hs, NBD_OPT_STARTTLS, &r) == -1)
    goto out;
  if (r.type != NBD_REP_ACK) {
    ret = starttls_refused (hs, &r);
    goto out;
  }
  ret = tls_start (hs->t, ts, o->deadline, o->debug) == -1 ? HS_FAILED : HS_OK;
  ts = NULL;                    /* tls_start consumed it */
  hs->info->tls = ret == HS_OK;

 out:
  tls_session_free (ts);
  free (r.data);
  return ret;
}

/* NBD_OPT_EXTENDED_HEADERS: HS_OK when the server acknowledged (extended
 * headers, which imply structured replies), HS_UNSUPPORTED when it refused
 * (the caller falls back to NBD_OPT_STRUCTURED_REPLY), else HS_FAILED. */
static enum hs_result
opt_extended_headers (struct hs *hs)
{
  struct opt_reply r;
  enum hs_result ret = HS_UNSUPPORTED;

  if (send_option (hs, NBD_OPT_EXTENDED_HEADERS, NULL, 0) == -1 ||
      read_option_reply (hs, NBD_OPT_EXTENDED_HEADERS, &r) == -1)
    return HS_FAILED;
  if (r.type == NBD_REP_ACK) {
    hs->info->extended = hs->info->structured_replies = true;
    ret = HS_OK;
  }
  else if (r.type == NBD_REP_ERR_TLS_REQD)
    ret = option_refused (hs, "", NBD_OPT_EXTENDED_HEADERS, &r);
  else
    debug (hs->o->debug, "extended headers refused (%s), asking for "
           "structured replies", proto_reply_name (r.type));
  free (r.data);
  return ret;
}

static enum hs_result
opt_structured_reply (struct hs *hs)
{
  struct opt_reply r;
  enum hs_result ret = HS_OK;

  if (send_option (hs, NBD_OPT_STRUCTURED_REPLY, NULL, 0) == -1 ||
      read_option_reply (hs, NBD_OPT_STRUCTURED_REPLY, &r) == -1)
    return HS_FAILED;
  if (r.type == NBD_REP_ACK)
    hs->info->structured_replies = true;
  else if (r.type == NBD_REP_ERR_TLS_REQD)
    ret = option_refused (hs, "", NBD_OPT_STRUCTURED_REPLY, &r);
  else
    debug (hs->o->debug, "structured replies refused, using simple replies");
  free (r.data);
  return ret;
}

/* Store a 32-bit length and the bytes of s at p; returns bytes written. */
static uint32_t
put_string (uint8_t *p, const char *s, uint32_t len)
{
  wire_put32 (p, len);
  memcpy (p + 4, s, len);
  return 4 + len;
}

/* NBD_OPT_SET_META_CONTEXT or NBD_OPT_LIST_META_CONTEXT for the export
 * name with queries (NULL-terminated; NULL: none).  The caller checked the
 * queries' lengths (each <= NBD_MAX_STRING, all together far below 4 GiB). */
static int
send_meta_option (struct hs *hs, uint32_t opt, const char *const *queries)
{
  const char *exp = hs->o->export_name;
  size_t nq = 0, len = 4 + strlen (exp) + 4;
  uint8_t *buf;
  uint32_t pos;
  int r;

  for (; queries && queries[nq]; nq++)
    len += 4 + strlen (queries[nq]);
  if (!(buf = malloc (len)))
    return set_error (ENOMEM, "out of memory");
  pos = put_string (buf, exp, strlen (exp));
  wire_put32 (buf + pos, (uint32_t) nq);
  pos += 4;
  for (size_t i = 0; i < nq; i++)
    pos += put_string (buf + pos, queries[i], strlen (queries[i]));
  r = send_option (hs, opt, buf, pos);
  free (buf);
  return r;
}

/* Forget the contexts selected so far (a refusal selects none). */
static void
metas_clear (struct export_info *info)
{
  for (uint32_t i = 0; i < info->nmetas; i++)
    free (info->metas[i].name);
  info->nmetas = 0;
  info->meta_context = NULL;
  info->meta_context_id = 0;
}

/* The contexts NBD_OPT_SET_META_CONTEXT asked for. */
struct meta_query {
  const char *names[NBDAIO_MAX_META_CONTEXTS + 1];  /* NULL-terminated */
  size_t n;
};

/* An NBD_REP_META_CONTEXT (id, name) to SET_META_CONTEXT: the name must
 * be one of the queries; a context named twice counts once. */
static int
meta_selected (struct hs *hs, void *ctx, const struct opt_reply *r)
{
  const struct meta_query *q = ctx;
  struct export_info *info = hs->info;
  size_t i = 0;

  while (i < q->n && (r->len < 5 || r->len - 4 != strlen (q->names[i]) ||
                      memcmp (r->data + 4, q->names[i], r->len - 4) != 0))
    i++;
  if (i == q->n)
    return set_violation (RULE_META_CONTEXT_NAME, "NBD_REP_META_CONTEXT names "
                          "'%s', but only '%s'%s was asked for",
                          r->len > 4 ? ESCAPED (r->data + 4, r->len - 4) : "",
                          ESCAPED (q->names[0], strlen (q->names[0])),
                          q->n > 1 ? " and others" : "");
  for (uint32_t k = 0; k < info->nmetas; k++)
    if (strcmp (info->metas[k].name, q->names[i]) == 0)
      return 0;
  if (!(info->metas[info->nmetas].name = strdup (q->names[i])))
    return set_error (ENOMEM, "out of memory");
  info->metas[info->nmetas++].id = wire_get32 (r->data);
  info->meta_context = info->metas[0].name;
  info->meta_context_id = info->metas[0].id;
  return 0;
}

/* NBD_OPT_SET_META_CONTEXT for o->meta_context and o->meta_more.  A
 * refusal selects no context and is no error, unless it asks for TLS. */
static enum hs_result
opt_set_meta_context (struct hs *hs)
{
  struct meta_query q = { .names = { hs->o->meta_context }, .n = 1 };
  struct opt_reply r;
  enum hs_result ret = HS_OK;

  for (; hs->o->meta_more && hs->o->meta_more[q.n - 1] &&
         q.n < NBDAIO_MAX_META_CONTEXTS; q.n++)
    q.names[q.n] = hs->o->meta_more[q.n - 1];
  if (send_meta_option (hs, NBD_OPT_SET_META_CONTEXT, q.names) == -1 ||
      read_replies (hs, NBD_OPT_SET_META_CONTEXT, &r, meta_selected, &q) == -1)
    return HS_FAILED;
  if (r.type != NBD_REP_ACK) {
    if (r.type == NBD_REP_ERR_TLS_REQD)
      ret = option_refused (hs, "", NBD_OPT_SET_META_CONTEXT, &r);
    else
      debug (hs->o->debug, "meta context refused: %s",
             proto_reply_name (r.type));
    metas_clear (hs->info);
  }
  free (r.data);
  return ret;
}

/* The rules for a string the server sends (NBD spec, "Conventions"): no
 * NUL, at most NBD_MAX_STRING bytes.  what names it in the message. */
static int
check_string (const uint8_t *p, size_t len, const char *what)
{
  if (len > NBD_MAX_STRING)
    return set_violation (RULE_STRING_LENGTH, "%s of %zu bytes (at most %d)",
                          what, len, NBD_MAX_STRING);
  if (memchr (p, '\0', len))
    return set_violation (RULE_STRING_NUL, "%s contains a NUL byte", what);
  return 0;
}

static int
set_string (char **dst, const uint8_t *src, size_t len, const char *what)
{
  if (check_string (src, len, what) == -1)
    return -1;
  free (*dst);
  *dst = strndup ((const char *) src, len);
  return *dst ? 0 : set_error (ENOMEM, "out of memory");
}

/* One NBD_REP_INFO payload; ctx: the bool set once NBD_INFO_EXPORT came. */
static int
go_info (struct hs *hs, void *ctx, const struct opt_reply *r)
{
  struct export_info *info = hs->info;
  bool *have_export = ctx;
  uint16_t type;

  if (r->len < 2)
    return set_violation (RULE_INFO_LENGTH, "NBD_REP_INFO of %u bytes (at "
                          "least 2)", r->len);
  type = wire_get16 (r->data);
  switch (type) {
  case NBD_INFO_EXPORT:
    if (r->len != NBD_INFO_EXPORT_LEN)
      return set_violation (RULE_INFO_LENGTH, "NBD_INFO_EXPORT of %u bytes "
                            "(must be %d)", r->len, NBD_INFO_EXPORT_LEN);
    info->size = wire_get64 (r->data + 2);
    info->tflags = wire_get16 (r->data + 10);
    *have_export = true;
    return 0;
  case NBD_INFO_NAME:
    return set_string (&info->name, r->data + 2, r->len - 2,
                       "NBD_INFO_NAME");
  case NBD_INFO_DESCRIPTION:
    return set_string (&info->description, r->data + 2, r->len - 2,
                       "NBD_INFO_DESCRIPTION");
  case NBD_INFO_BLOCK_SIZE:
    if (r->len != NBD_INFO_BLOCK_SIZE_LEN)
      return set_violation (RULE_INFO_LENGTH, "NBD_INFO_BLOCK_SIZE of %u bytes "
                            "(must be %d)", r->len, NBD_INFO_BLOCK_SIZE_LEN);
    info->bs_given = true;
    info->bs_min = wire_get32 (r->data + 2);
    info->bs_pref = wire_get32 (r->data + 6);
    info->bs_max = wire_get32 (r->data + 10);
    return 0;
  default:
    debug (hs->o->debug, "ignoring unknown NBD_REP_INFO type %u", type);
    return 0;
  }
}

/* An error reply to NBD_OPT_GO or NBD_OPT_INFO: HS_UNSUPPORTED when GO is
 * unknown (fall back to NBD_OPT_EXPORT_NAME), else as option_refused; with
 * extended headers negotiated either is a violation. */
static enum hs_result
go_refused (struct hs *hs, uint32_t opt, const struct opt_reply *r)
{
  const char *exp = hs->o->export_name;
  char what[ESCAPE_MSG_MAX + 32];

  if (hs->info->extended && (r->type == NBD_REP_ERR_EXT_HEADER_REQD ||
                             (r->type == NBD_REP_ERR_UNSUP &&
                              opt == NBD_OPT_GO)))
    return set_violation (RULE_EXT_GO, "%s answered %s after extended "
                          "headers were negotiated (a server that "
                          "acknowledges them MUST support NBD_OPT_GO "
                          "and needs nothing more)",
                          proto_option_name (opt),
                          proto_reply_name (r->type));
  if (r->type == NBD_REP_ERR_UNSUP && opt == NBD_OPT_GO) {
    debug (hs->o->debug, "NBD_OPT_GO unsupported, falling back to "
           "NBD_OPT_EXPORT_NAME");
    return HS_UNSUPPORTED;
  }
  snprintf (what, sizeof what, " for export '%s'",
            ESCAPED (exp, strlen (exp)));
  return option_refused (hs, what, opt, r);
}

/* NBD_OPT_GO or NBD_OPT_INFO for the export name, asking for NAME,
 * DESCRIPTION and BLOCK_SIZE; what the server says goes into hs->info.
 * Returns HS_OK on NBD_REP_ACK, HS_UNSUPPORTED when the server does not
 * know NBD_OPT_GO (fall back to NBD_OPT_EXPORT_NAME), else HS_FAILED or
 * HS_REFUSED. */
static enum hs_result
opt_go_or_info (struct hs *hs, uint32_t opt)
{
  static const uint16_t wanted[] = {
    NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE
  };
  const char *exp = hs->o->export_name;
  uint32_t n = sizeof wanted / sizeof wanted[0];
  uint8_t buf[4 + NBD_MAX_STRING + 2 + sizeof wanted];
  bool have_export = false;
  struct opt_reply r;
  enum hs_result ret = HS_OK;
  uint32_t len;

  len = put_string (buf, exp, strlen (exp));
  wire_put16 (buf + len, n);
  len += 2;
  for (uint32_t i = 0; i < n; i++, len += 2)
    wire_put16 (buf + len, wanted[i]);
  if (send_option (hs, opt, buf, len) == -1 ||
      read_replies (hs, opt, &r, go_info, &have_export) == -1)
    return HS_FAILED;
  if (r.type != NBD_REP_ACK)
    ret = go_refused (hs, opt, &r);
  else if (!have_export)
    ret = set_violation (RULE_INFO_MISSING_EXPORT, "NBD_REP_ACK to %s before "
                         "any NBD_INFO_EXPORT", proto_option_name (opt));
  free (r.data);
  return ret;
}

static enum hs_result
opt_export_name (struct hs *hs)
{
  uint8_t buf[NBD_EXPORT_NAME_REPLY_LEN + NBD_ZEROES_LEN];
  const char *exp = hs->o->export_name;
  /* the client flags echo the server's NO_ZEROES (see newstyle_start) */
  bool no_zeroes = hs->info->hflags & NBD_FLAG_NO_ZEROES;
  size_t want = NBD_EXPORT_NAME_REPLY_LEN + (no_zeroes ? 0 : NBD_ZEROES_LEN);

  if (send_option (hs, NBD_OPT_EXPORT_NAME, exp, strlen (exp)) == -1)
    return -1;
  if (hs_read (hs, buf, want) == -1) {
    if (errno == ENOTCONN)
      return set_error (ENOENT, "server closed the connection after "
                        "NBD_OPT_EXPORT_NAME: export '%s' is probably "
                        "unknown to it", ESCAPED (exp, strlen (exp)));
    return -1;
  }
  hs->info->size = wire_get64 (buf);
  hs->info->tflags = wire_get16 (buf + 8);
  return 0;
}

static bool
is_pow2 (uint32_t v)
{
  return v && !(v & (v - 1));
}

/* Rules on transmission flags and block sizes. */
static int
check_export (const struct export_info *info)
{
  uint16_t f = info->tflags;
  uint32_t floor;

  if (!(f & NBD_FLAG_HAS_FLAGS))
    return set_violation (RULE_TFLAGS_HAS_FLAGS,
                          "transmission flags 0x%04x lack "
                          "NBD_FLAG_HAS_FLAGS (bit 0)", f);
  if ((f & NBD_FLAG_SEND_DF) && !info->structured_replies)
    return set_violation (RULE_TFLAGS_DF, "NBD_FLAG_SEND_DF advertised without "
                          "structured replies");
  if ((f & NBD_FLAG_SEND_FAST_ZERO) && !(f & NBD_FLAG_SEND_WRITE_ZEROES))
    return set_violation (RULE_TFLAGS_FAST_ZERO, "NBD_FLAG_SEND_FAST_ZERO "
                          "advertised without NBD_FLAG_SEND_WRITE_ZEROES");
  if (info->size > INT64_MAX)
    return set_violation (RULE_INFO_SIZE, "export size %llu exceeds 2^63-1",
                          (unsigned long long) info->size);
  if (!info->bs_given)
    return 0;
  if (!is_pow2 (info->bs_min) || info->bs_min > NBD_MAX_BLOCK_SIZE_MINIMUM)
    return set_violation (RULE_BLOCK_SIZE, "minimum block size %u is not a "
                          "power of two <= 64 KiB", info->bs_min);
  floor = info->bs_min > 512 ? info->bs_min : 512;
  if (!is_pow2 (info->bs_pref) || info->bs_pref < floor)
    return set_violation (RULE_BLOCK_SIZE, "preferred block size %u is not a "
                          "power of two >= %u", info->bs_pref, floor);
  if (info->bs_max < info->bs_pref)
    return set_violation (RULE_BLOCK_SIZE, "maximum block size %u is below the "
                          "preferred %u", info->bs_max, info->bs_pref);
  if (info->bs_max != UINT32_MAX && info->bs_max % info->bs_min)
    return set_violation (RULE_BLOCK_SIZE, "maximum block size %u is not a "
                          "multiple of the minimum %u", info->bs_max,
                          info->bs_min);
  return 0;
}

static int
oldstyle (struct hs *hs)
{
  uint8_t buf[NBD_OLDSTYLE_REST_LEN];

  if (hs->o->tls->mode == NBDAIO_TLS_REQUIRE)
    return set_error (ENOTSUP, "TLS required, but the server speaks the "
                      "oldstyle protocol, which has no TLS");
  if (hs_read (hs, buf, sizeof buf) == -1)
    return -1;
  hs->info->protocol = PROTO_OLDSTYLE;
  hs->info->size = wire_get64 (buf);
  hs->info->tflags = wire_get32 (buf + 8) & 0xffff;
  return 0;
}

/* Handshake flags, client flags, then (fixed newstyle only) STARTTLS and
 * STRUCTURED_REPLY as the options ask. */
static enum hs_result
newstyle_start (struct hs *hs)
{
  const struct handshake_opts *o = hs->o;
  struct export_info *info = hs->info;
  uint8_t buf[4];
  uint16_t hflags;
  uint32_t cflags;

  if (hs_read (hs, buf, 2) == -1)
    return -1;
  hflags = wire_get16 (buf);
  if (hflags & ~NBD_HANDSHAKE_FLAGS_KNOWN)
    return set_violation (RULE_HS_FLAGS,
                          "handshake flags 0x%04x set bits other "
                          "than 0-1", hflags);
  info->hflags = hflags;
  info->protocol = (hflags & NBD_FLAG_FIXED_NEWSTYLE) ?
    PROTO_NEWSTYLE_FIXED : PROTO_NEWSTYLE;
  cflags = hflags & NBD_HANDSHAKE_FLAGS_KNOWN;
  wire_put32 (buf, cflags);
  if (transport_write_full (hs->t, buf, 4, o->deadline) == -1)
    return -1;

  if (o->tls->mode != NBDAIO_TLS_DISABLE) {
    if (info->protocol != PROTO_NEWSTYLE_FIXED) {
      if (o->tls->mode == NBDAIO_TLS_REQUIRE)
        return set_error (ENOTSUP, "TLS required, but the server does not "
                          "speak fixed newstyle, so it cannot start TLS");
    }
    else if (opt_starttls (hs) == -1)
      return -1;
  }
  if (info->protocol != PROTO_NEWSTYLE_FIXED || !o->ask_structured_replies)
    return HS_OK;
  if (o->ask_extended_headers) {
    enum hs_result r = opt_extended_headers (hs);
    if (r != HS_UNSUPPORTED)
      return r;
  }
  return opt_structured_reply (hs);
}

enum hs_result
handshake_start (struct transport *t, const struct handshake_opts *o,
                 struct export_info *info)
{
  struct hs hs = { .t = t, .o = o, .info = info };
  uint8_t buf[16];
  uint64_t magic;

  memset (info, 0, sizeof *info);
  if (hs_read (&hs, buf, 16) == -1)
    return -1;
  magic = wire_get64 (buf);
  if (magic != NBD_MAGIC_INIT)
    return set_violation (RULE_HS_MAGIC, "greeting starts with 0x%016llx, not "
                          "NBDMAGIC (is this an NBD server?)",
                          (unsigned long long) magic);
  magic = wire_get64 (buf + 8);
  if (magic == NBD_MAGIC_OLDSTYLE)
    return oldstyle (&hs);
  if (magic == NBD_MAGIC_OPT)     /* the handshake flags follow */
    return newstyle_start (&hs);
  return set_violation (RULE_HS_MAGIC, "second greeting magic is 0x%016llx, "
                        "neither IHAVEOPT nor the oldstyle magic",
                        (unsigned long long) magic);
}

bool
handshake_can_negotiate (const struct export_info *info)
{
  return info->protocol == PROTO_NEWSTYLE_FIXED;
}

/* A fresh export_info for one option exchange: what the connection
 * negotiated so far (protocol, flags, structured replies, TLS), no export
 * facts yet. */
static void
info_for_exchange (struct export_info *tmp, const struct export_info *info)
{
  memset (tmp, 0, sizeof *tmp);
  tmp->protocol = info->protocol;
  tmp->hflags = info->hflags;
  tmp->structured_replies = info->structured_replies;
  tmp->extended = info->extended;
  tmp->tls = info->tls;
}

/* What handshake_finish asks for the export, by protocol. */
static enum hs_result
negotiate_export (struct hs *hs, const struct export_info *info)
{
  struct export_info *tmp = hs->info;
  enum hs_result r = HS_OK;

  switch (tmp->protocol) {
  case PROTO_OLDSTYLE:          /* the greeting said it all */
    tmp->size = info->size;
    tmp->tflags = info->tflags;
    return HS_OK;
  case PROTO_NEWSTYLE:          /* only NBD_OPT_EXPORT_NAME is allowed */
    return opt_export_name (hs);
  case PROTO_NEWSTYLE_FIXED:
    if (tmp->structured_replies && hs->o->meta_context)
      r = opt_set_meta_context (hs);
    if (r == HS_OK)
      r = opt_go_or_info (hs, NBD_OPT_GO);
    if (r == HS_UNSUPPORTED)
      r = opt_export_name (hs);
    return r;
  }
  return HS_FAILED;
}

/* The export's name, when the server did not say: the one asked for. */
static int
name_as_asked (struct export_info *tmp, const struct handshake_opts *o)
{
  if (!tmp->name && !(tmp->name = strdup (o->export_name)))
    return set_error (ENOMEM, "out of memory");
  return 0;
}

enum hs_result
handshake_finish (struct transport *t, const struct handshake_opts *o,
                  struct export_info *info)
{
  struct export_info tmp;
  struct hs hs = { .t = t, .o = o, .info = &tmp };
  enum hs_result r;

  info_for_exchange (&tmp, info);
  r = negotiate_export (&hs, info);
  if (r != HS_OK)
    goto err;
  r = HS_FAILED;
  if (name_as_asked (&tmp, o) == -1)
    goto err;
  debug (o->debug, "handshake done: size %llu, transmission flags 0x%04x, "
         "structured replies %s, meta context %s",
         (unsigned long long) tmp.size, tmp.tflags,
         tmp.extended ? "on (extended headers)" :
         tmp.structured_replies ? "on" : "off",
         tmp.meta_context ? tmp.meta_context : "none");
  if (check_export (&tmp) == -1)
    goto err;
  export_info_free (info);
  *info = tmp;
  return HS_OK;

 err:
  export_info_free (&tmp);
  return r;
}

enum hs_result
handshake_run (struct transport *t, const struct handshake_opts *o,
               struct export_info *info)
{
  if (handshake_start (t, o, info) == HS_FAILED)
    return HS_FAILED;
  return handshake_finish (t, o, info);
}

/* ---- single option exchanges (opt mode) ------------------------------ */

enum hs_result
handshake_opt_info (struct transport *t, const struct handshake_opts *o,
                    struct export_info *info)
{
  struct export_info tmp;
  struct hs hs = { .t = t, .o = o, .info = &tmp };
  enum hs_result r;

  info_for_exchange (&tmp, info);
  r = opt_go_or_info (&hs, NBD_OPT_INFO);
  if (r != HS_OK)
    goto err;
  r = HS_FAILED;
  if (name_as_asked (&tmp, o) == -1 || check_export (&tmp) == -1)
    goto err;
  /* the export facts are INFO's; what the connection negotiated stays */
  free (info->name);
  free (info->description);
  info->name = tmp.name;
  info->description = tmp.description;
  info->size = tmp.size;
  info->tflags = tmp.tflags;
  info->bs_given = tmp.bs_given;
  info->bs_min = tmp.bs_min;
  info->bs_pref = tmp.bs_pref;
  info->bs_max = tmp.bs_max;
  return HS_OK;

 err:
  export_info_free (&tmp);
  return r;
}

/* The entries a LIST or LIST_META_CONTEXT collected: handed to the
 * caller's callback only once the final NBD_REP_ACK arrived (the spec
 * has the client disregard them after an error reply).  The strings lie
 * one after the other in one buffer, each NUL-terminated, and an entry
 * holds their offsets: the list takes what its two buffers take, both
 * grown by doubling within LIST_BYTES_MAX together, so the cap bounds the
 * memory really used, the bookkeeping of every entry included. */
struct listed {
  uint32_t id;
  uint32_t name, description;  /* offsets into text */
};

struct list {
  uint32_t opt;                /* the option listing, for the message */
  struct listed *v;
  size_t n, cap;               /* entries held, allocated */
  char *text;
  size_t len, size;            /* bytes of text held, allocated */
};

_Static_assert (LIST_BYTES_MAX / sizeof (struct listed) < INT_MAX,
                "the number of entries fits the int the calls return");

static void
list_free (struct list *l)
{
  free (l->v);
  free (l->text);
  memset (l, 0, sizeof *l);
}

/* buf (cap elements of elsize bytes) grown to hold need elements, by
 * doubling, within what the other buffer's other bytes leave of
 * LIST_BYTES_MAX; *cap updated.  NULL when that is not enough (EOVERFLOW,
 * naming the cap) or memory ran out; buf is then still allocated. */
static void *
list_grow (const struct list *l, void *buf, size_t *cap, size_t elsize,
           size_t need, size_t other)
{
  size_t room = (LIST_BYTES_MAX - other) / elsize, c = *cap ? *cap : 64;
  void *p;

  if (need > room) {
    set_error (EOVERFLOW, "%s: the server listed %zu entries, more than fit "
               "in %d MiB of memory (the cap of one listing): giving up",
               proto_option_name (l->opt), l->n + 1, LIST_BYTES_MAX >> 20);
    return NULL;
  }
  while (c < need)
    c *= 2;
  if (c > room)
    c = room;
  if (!(p = realloc (buf, c * elsize))) {
    set_error (ENOMEM, "out of memory");
    return NULL;
  }
  *cap = c;
  return p;
}

/* Append len bytes of s and a NUL to the text (the room is there);
 * returns their offset. */
static uint32_t
put_text (struct list *l, const uint8_t *s, size_t len)
{
  uint32_t at = (uint32_t) l->len;

  memcpy (l->text + at, s, len);
  l->text[at + len] = '\0';
  l->len += len + 1;
  return at;
}

/* Keep one entry: name, and desc unless it is NULL (contexts). */
static int
list_keep_entry (struct list *l, uint32_t id, const uint8_t *name, size_t nlen,
              const uint8_t *desc, size_t dlen)
{
  size_t tlen = nlen + 1 + (desc ? dlen + 1 : 0);
  struct listed *e;
  void *p;

  if (l->n == l->cap) {
    if (!(p = list_grow (l, l->v, &l->cap, sizeof *l->v, l->n + 1, l->size)))
      return -1;
    l->v = p;
  }
  if (l->size - l->len < tlen) {
    if (!(p = list_grow (l, l->text, &l->size, 1, l->len + tlen,
                         l->cap * sizeof *l->v)))
      return -1;
    l->text = p;
  }
  e = &l->v[l->n++];
  e->id = id;
  e->name = put_text (l, name, nlen);
  e->description = desc ? put_text (l, desc, dlen) : e->name;
  return 0;
}

/* One NBD_REP_SERVER (32-bit name length, name, description) kept in the
 * list ctx. */
static int
add_server (struct hs *hs, void *ctx, const struct opt_reply *r)
{
  uint32_t nlen;

  (void) hs;
  if (r->len < 4)
    return set_violation (RULE_REP_SERVER_LENGTH, "NBD_REP_SERVER of %u bytes "
                          "(at least 4)", r->len);
  nlen = wire_get32 (r->data);
  if (nlen > r->len - 4)
    return set_violation (RULE_REP_SERVER_LENGTH, "NBD_REP_SERVER name length "
                          "%u does not fit its %u-byte reply", nlen, r->len);
  if (check_string (r->data + 4, nlen, "NBD_REP_SERVER name") == -1 ||
      check_string (r->data + 4 + nlen, r->len - 4 - nlen,
                    "NBD_REP_SERVER description") == -1)
    return -1;
  return list_keep_entry (ctx, 0, r->data + 4, nlen, r->data + 4 + nlen,
                       r->len - 4 - nlen);
}

/* One NBD_REP_META_CONTEXT (32-bit id, name) kept in the list ctx. */
static int
add_context (struct hs *hs, void *ctx, const struct opt_reply *r)
{
  (void) hs;
  if (r->len < 5)
    return set_violation (RULE_META_CONTEXT_LENGTH, "NBD_REP_META_CONTEXT of "
                          "%u bytes (an id and a name: at least 5)", r->len);
  if (check_string (r->data + 4, r->len - 4, "NBD_REP_META_CONTEXT name")
      == -1)
    return -1;
  return list_keep_entry (ctx, wire_get32 (r->data), r->data + 4, r->len - 4,
                       NULL, 0);
}

/* Read the replies to the listing option l->opt up to the final one,
 * collecting the entries with add.  Returns HS_OK on NBD_REP_ACK, else
 * HS_FAILED or HS_REFUSED with the list emptied. */
static enum hs_result
read_list (struct hs *hs, struct list *l, reply_handler *add)
{
  struct opt_reply r = { .data = NULL };
  enum hs_result ret = HS_FAILED;

  if (read_replies (hs, l->opt, &r, add, l) == -1)
    goto out;
  ret = r.type == NBD_REP_ACK ? HS_OK : option_refused (hs, "", l->opt, &r);

 out:
  free (r.data);
  if (ret != HS_OK)
    list_free (l);
  return ret;
}

enum hs_result
handshake_opt_list (struct transport *t, const struct handshake_opts *o,
                    nbdaio_list_callback cb, void *user_data, int *count)
{
  struct hs hs = { .t = t, .o = o };
  struct list l = { .opt = NBD_OPT_LIST };
  enum hs_result r;

  if (send_option (&hs, NBD_OPT_LIST, NULL, 0) == -1)
    return HS_FAILED;
  r = read_list (&hs, &l, add_server);
  for (size_t i = 0; r == HS_OK && cb && i < l.n; i++)
    cb (user_data, l.text + l.v[i].name, l.text + l.v[i].description);
  *count = (int) l.n;
  list_free (&l);
  return r;
}

enum hs_result
handshake_opt_list_meta_context (struct transport *t,
                                 const struct handshake_opts *o,
                                 const char *const *queries,
                                 nbdaio_context_callback cb, void *user_data,
                                 int *count)
{
  struct hs hs = { .t = t, .o = o };
  struct list l = { .opt = NBD_OPT_LIST_META_CONTEXT };
  enum hs_result r;

  if (send_meta_option (&hs, NBD_OPT_LIST_META_CONTEXT, queries) == -1)
    return HS_FAILED;
  r = read_list (&hs, &l, add_context);
  for (size_t i = 0; r == HS_OK && cb && i < l.n; i++)
    cb (user_data, l.v[i].id, l.text + l.v[i].name);
  *count = (int) l.n;
  list_free (&l);
  return r;
}

/* An acknowledged raw NBD_OPT_STRUCTURED_REPLY or EXTENDED_HEADERS: the
 * server now sends structured (extended) replies, so must we read them. */
static void
raw_acknowledged (struct export_info *info, uint32_t option)
{
  if (option == NBD_OPT_STRUCTURED_REPLY)
    info->structured_replies = true;
  if (option == NBD_OPT_EXTENDED_HEADERS)
    info->extended = info->structured_replies = true;
}

enum hs_result
handshake_opt_raw (struct transport *t, const struct handshake_opts *o,
                   struct export_info *info, uint32_t option,
                   const void *data, uint32_t len, uint32_t *reply_type)
{
  struct hs hs = { .t = t, .o = o, .info = info };
  struct opt_reply r;

  if (send_option (&hs, option, data, len) == -1)
    return HS_FAILED;
  for (int i = 0; i < RAW_REPLIES_MAX; i++) {
    if (read_reply (&hs, option, &r, true) == -1)
      return HS_FAILED;
    free (r.data);
    if (!is_final (r.type))
      continue;
    if (r.type == NBD_REP_ACK)
      raw_acknowledged (info, option);
    *reply_type = r.type;
    return HS_OK;
  }
  return set_error (EOVERFLOW, "more than %d replies to option %u: giving "
                    "up", RAW_REPLIES_MAX, option);
}

void
handshake_opt_abort (struct transport *t, const struct handshake_opts *o)
{
  uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];
  int64_t deadline = transport_now_ms () + ABORT_WAIT_MS;
  struct saved_error e;

  if (o->deadline && o->deadline < deadline)
    deadline = o->deadline;
  error_save (&e);             /* what fails here is no error of the caller */
  put_option_header (hdr, NBD_OPT_ABORT, 0);
  debug (o->debug, "sending NBD_OPT_ABORT");
  /* the acknowledgement is optional: its absence is no error */
  if (transport_write_full (t, hdr, NBD_OPT_HDR_LEN, deadline) == 0 &&
      transport_read_full (t, hdr, sizeof hdr, deadline) == 0)
    debug (o->debug, "NBD_OPT_ABORT answered with reply type 0x%x",
           wire_get32 (hdr + 12));
  if (e.errnum || e.msg[0])
    error_restore (&e);
}

void
export_info_free (struct export_info *info)
{
  free (info->name);
  free (info->description);
  for (uint32_t i = 0; i < info->nmetas; i++)
    free (info->metas[i].name);    /* meta_context is metas[0].name */
  memset (info, 0, sizeof *info);
}
