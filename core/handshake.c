/* handshake.c - the client side of NBD option haggling.
 *
 * Order: greeting (oldstyle, newstyle or fixed newstyle), client flags,
 * NBD_OPT_STARTTLS and the TLS handshake when TLS is wanted (every later
 * option then travels inside TLS), NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT, NBD_OPT_GO with
 * NAME/DESCRIPTION/BLOCK_SIZE info requests, falling back to
 * NBD_OPT_EXPORT_NAME.  Every server message is checked against the rules
 * of design.md section 6; a violation fails with "[rule]" in the message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "handshake.h"
#include "nbdaio.h"
#include "proto.h"

#define OPT_REPLY_MAX (64 * 1024)    /* no option reply we ask for is longer */

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
  case NBD_OPT_STRUCTURED_REPLY: return type == NBD_REP_ACK;
  case NBD_OPT_SET_META_CONTEXT:
    return type == NBD_REP_ACK || type == NBD_REP_META_CONTEXT;
  case NBD_OPT_GO:               return type == NBD_REP_ACK || type == NBD_REP_INFO;
  default:                       return false;
  }
}

static int
read_option_reply (struct hs *hs, uint32_t opt, struct opt_reply *r)
{
  uint8_t hdr[NBD_OPT_REPLY_HDR_LEN];
  uint64_t magic;
  uint32_t echo;

  r->data = NULL;
  if (hs_read (hs, hdr, sizeof hdr) == -1) {
    error_prefix (proto_option_name (opt));
    return -1;
  }
  magic = wire_get64 (hdr);
  echo = wire_get32 (hdr + 8);
  r->type = wire_get32 (hdr + 12);
  r->len = wire_get32 (hdr + 16);
  if (magic != NBD_MAGIC_OPT_REPLY)
    return set_violation ("opt-reply-magic", "option reply magic is 0x%016llx, "
                          "expected 0x%016llx", (unsigned long long) magic,
                          (unsigned long long) NBD_MAGIC_OPT_REPLY);
  if (echo != opt)
    return set_violation ("opt-reply-echo", "reply to %s names option %u (%s)",
                          proto_option_name (opt), echo,
                          proto_option_name (echo));
  if (!reply_type_legal (opt, r->type))
    return set_violation ("opt-reply-type", "%s answered with reply type "
                          "0x%x (%s), not legal for this option",
                          proto_option_name (opt), r->type,
                          proto_reply_name (r->type));
  if (r->len > OPT_REPLY_MAX)
    return set_violation ("opt-reply-length", "%s reply of %u bytes (more "
                          "than %d)", proto_option_name (opt), r->len,
                          OPT_REPLY_MAX);
  if (r->type == NBD_REP_ACK && r->len != 0)
    return set_violation ("opt-reply-length", "NBD_REP_ACK to %s carries %u "
                          "bytes (must be 0)", proto_option_name (opt), r->len);
  if (r->len) {
    if (!(r->data = malloc (r->len + 1)))
      return set_error (ENOMEM, "out of memory");
    if (hs_read (hs, r->data, r->len) == -1) {
      free (r->data);
      r->data = NULL;
      error_prefix (proto_option_name (opt));
      return -1;
    }
    r->data[r->len] = '\0';
  }
  debug (hs->o->debug, "received %s for %s (%u bytes)",
         proto_reply_name (r->type), proto_option_name (opt), r->len);
  return 0;
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

/* Turn an error reply into the last error, and tell the server we are
 * leaving (NBD_OPT_ABORT, best effort: its reply is not awaited). */
static int
option_refused (struct hs *hs, const char *what, uint32_t opt,
                const struct opt_reply *r)
{
  int err = r->type == NBD_REP_ERR_TLS_REQD ? ENOTSUP :
            r->type == NBD_REP_ERR_UNKNOWN ? ENOENT :
            r->type == NBD_REP_ERR_POLICY ? EPERM :
            r->type == NBD_REP_ERR_SHUTDOWN ? ESHUTDOWN : EINVAL;
  const char *hint = r->type == NBD_REP_ERR_TLS_REQD ?
    " (connect with TLS: an nbds:// URI or tls=require)" : "";

  send_abort (hs);
  return set_error (err, "server refused %s%s: %s%s%s%s", proto_option_name (opt),
                    what, proto_reply_name (r->type), hint,
                    r->len ? ": " : "", r->len ? (char *) r->data : "");
}

/* NBD_OPT_STARTTLS, then the TLS handshake.  With tls=allow a refusal
 * leaves the connection in plaintext; with tls=require it ends it. */
static int
opt_starttls (struct hs *hs)
{
  const struct handshake_opts *o = hs->o;
  struct tls_session *ts = tls_prepare (o->tls, o->host);
  struct opt_reply r;

  if (!ts)
    return -1;
  if (send_option (hs, NBD_OPT_STARTTLS, NULL, 0) == -1 ||
      read_option_reply (hs, NBD_OPT_STARTTLS, &r) == -1) {
    tls_session_free (ts);
    return -1;
  }
  if (r.type != NBD_REP_ACK) {
    tls_session_free (ts);
    int ret = 0;
    if (o->tls->mode == NBDAIO_TLS_REQUIRE) {
      send_abort (hs);
      ret = set_error (ENOTSUP, "TLS required, but the server does not offer "
                       "TLS: it answered NBD_OPT_STARTTLS with %s%s%s",
                       proto_reply_name (r.type), r.len ? ": " : "",
                       r.len ? (char *) r.data : "");
    }
    else
      debug (o->debug, "server refused TLS (%s), continuing in plaintext",
             proto_reply_name (r.type));
    free (r.data);
    return ret;
  }
  if (tls_start (hs->t, ts, o->deadline, o->debug) == -1)
    return -1;
  hs->info->tls = true;
  return 0;
}

static int
opt_structured_reply (struct hs *hs)
{
  struct opt_reply r;

  if (send_option (hs, NBD_OPT_STRUCTURED_REPLY, NULL, 0) == -1 ||
      read_option_reply (hs, NBD_OPT_STRUCTURED_REPLY, &r) == -1)
    return -1;
  if (r.type == NBD_REP_ACK)
    hs->info->structured = true;
  else if (r.type == NBD_REP_ERR_TLS_REQD) {
    int ret = option_refused (hs, "", NBD_OPT_STRUCTURED_REPLY, &r);
    free (r.data);
    return ret;
  }
  else
    debug (hs->o->debug, "structured replies refused, using simple replies");
  free (r.data);
  return 0;
}

/* Store a 32-bit length and the bytes of s at p; returns bytes written. */
static uint32_t
put_string (uint8_t *p, const char *s, uint32_t len)
{
  wire_put32 (p, len);
  memcpy (p + 4, s, len);
  return 4 + len;
}

static int
opt_set_meta_context (struct hs *hs)
{
  const char *exp = hs->o->export_name, *ctx = hs->o->meta_context;
  uint8_t buf[3 * 4 + 2 * NBD_MAX_STRING];
  uint32_t clen = strlen (ctx), len;
  struct opt_reply r;
  int ret;

  len = put_string (buf, exp, strlen (exp));
  wire_put32 (buf + len, 1);                 /* one query */
  len += 4;
  len += put_string (buf + len, ctx, clen);
  if (send_option (hs, NBD_OPT_SET_META_CONTEXT, buf, len) == -1)
    return -1;

  for (;;) {
    if (read_option_reply (hs, NBD_OPT_SET_META_CONTEXT, &r) == -1)
      return -1;
    if (r.type == NBD_REP_ACK)
      return 0;
    if (r.type & NBD_REP_FLAG_ERROR) {
      ret = 0;
      if (r.type == NBD_REP_ERR_TLS_REQD)
        ret = option_refused (hs, "", NBD_OPT_SET_META_CONTEXT, &r);
      else
        debug (hs->o->debug, "meta context refused: %s",
               proto_reply_name (r.type));
      free (r.data);
      free (hs->info->meta_context);
      hs->info->meta_context = NULL;
      return ret;
    }
    /* NBD_REP_META_CONTEXT: id (4) + name */
    if (r.len < 5 || r.len - 4 != clen || memcmp (r.data + 4, ctx, clen) != 0) {
      ret = set_violation ("meta-context-name", "NBD_REP_META_CONTEXT names "
                           "'%.*s', but only '%s' was asked for",
                           r.len > 4 ? (int) (r.len - 4) : 0,
                           r.len > 4 ? (char *) r.data + 4 : "", ctx);
      free (r.data);
      return ret;
    }
    hs->info->meta_context_id = wire_get32 (r.data);
    free (hs->info->meta_context);
    hs->info->meta_context = strdup (ctx);
    free (r.data);
    if (!hs->info->meta_context)
      return set_error (ENOMEM, "out of memory");
  }
}

static int
set_string (char **dst, const uint8_t *src, size_t len)
{
  free (*dst);
  *dst = strndup ((const char *) src, len);
  return *dst ? 0 : set_error (ENOMEM, "out of memory");
}

/* One NBD_REP_INFO payload. */
static int
go_info (struct hs *hs, const struct opt_reply *r, bool *have_export)
{
  struct export_info *info = hs->info;
  uint16_t type;

  if (r->len < 2)
    return set_violation ("info-length", "NBD_REP_INFO of %u bytes (at "
                          "least 2)", r->len);
  type = wire_get16 (r->data);
  switch (type) {
  case NBD_INFO_EXPORT:
    if (r->len != NBD_INFO_EXPORT_LEN)
      return set_violation ("info-length", "NBD_INFO_EXPORT of %u bytes "
                            "(must be %d)", r->len, NBD_INFO_EXPORT_LEN);
    info->size = wire_get64 (r->data + 2);
    info->tflags = wire_get16 (r->data + 10);
    *have_export = true;
    return 0;
  case NBD_INFO_NAME:
    return set_string (&info->name, r->data + 2, r->len - 2);
  case NBD_INFO_DESCRIPTION:
    return set_string (&info->description, r->data + 2, r->len - 2);
  case NBD_INFO_BLOCK_SIZE:
    if (r->len != NBD_INFO_BLOCK_SIZE_LEN)
      return set_violation ("info-length", "NBD_INFO_BLOCK_SIZE of %u bytes "
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

/* Returns 1 when the server does not know NBD_OPT_GO (fall back), 0 when
 * done, -1 on error. */
static int
opt_go (struct hs *hs)
{
  static const uint16_t wanted[] = {
    NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE
  };
  const char *exp = hs->o->export_name;
  uint32_t n = sizeof wanted / sizeof wanted[0];
  uint8_t buf[4 + NBD_MAX_STRING + 2 + sizeof wanted];
  bool have_export = false;
  struct opt_reply r;
  uint32_t len;
  int ret;

  len = put_string (buf, exp, strlen (exp));
  wire_put16 (buf + len, n);
  len += 2;
  for (uint32_t i = 0; i < n; i++, len += 2)
    wire_put16 (buf + len, wanted[i]);
  if (send_option (hs, NBD_OPT_GO, buf, len) == -1)
    return -1;

  for (;;) {
    if (read_option_reply (hs, NBD_OPT_GO, &r) == -1)
      return -1;
    if (r.type == NBD_REP_ACK) {
      if (!have_export)
        return set_violation ("info-missing-export", "NBD_REP_ACK to "
                              "NBD_OPT_GO before any NBD_INFO_EXPORT");
      return 0;
    }
    if (r.type & NBD_REP_FLAG_ERROR) {
      char what[NBD_MAX_STRING + 32];
      if (r.type == NBD_REP_ERR_UNSUP) {
        free (r.data);
        debug (hs->o->debug, "NBD_OPT_GO unsupported, falling back to "
               "NBD_OPT_EXPORT_NAME");
        return 1;
      }
      snprintf (what, sizeof what, " for export '%s'", exp);
      ret = option_refused (hs, what, NBD_OPT_GO, &r);
      free (r.data);
      return ret;
    }
    ret = go_info (hs, &r, &have_export);
    free (r.data);
    if (ret == -1)
      return -1;
  }
}

static int
opt_export_name (struct hs *hs, bool no_zeroes)
{
  uint8_t buf[NBD_EXPORT_NAME_REPLY_LEN + NBD_ZEROES_LEN];
  const char *exp = hs->o->export_name;
  size_t want = NBD_EXPORT_NAME_REPLY_LEN + (no_zeroes ? 0 : NBD_ZEROES_LEN);

  if (send_option (hs, NBD_OPT_EXPORT_NAME, exp, strlen (exp)) == -1)
    return -1;
  if (hs_read (hs, buf, want) == -1) {
    if (errno == ENOTCONN)
      return set_error (ENOENT, "server closed the connection after "
                        "NBD_OPT_EXPORT_NAME: export '%s' is probably "
                        "unknown to it", exp);
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
    return set_violation ("tflags-has-flags", "transmission flags 0x%04x lack "
                          "NBD_FLAG_HAS_FLAGS (bit 0)", f);
  if ((f & NBD_FLAG_SEND_DF) && !info->structured)
    return set_violation ("tflags-df", "NBD_FLAG_SEND_DF advertised without "
                          "structured replies");
  if ((f & NBD_FLAG_SEND_FAST_ZERO) && !(f & NBD_FLAG_SEND_WRITE_ZEROES))
    return set_violation ("tflags-fast-zero", "NBD_FLAG_SEND_FAST_ZERO "
                          "advertised without NBD_FLAG_SEND_WRITE_ZEROES");
  if (info->size > INT64_MAX)
    return set_violation ("info-size", "export size %llu exceeds 2^63-1",
                          (unsigned long long) info->size);
  if (!info->bs_given)
    return 0;
  if (!is_pow2 (info->bs_min) || info->bs_min > NBD_MAX_BLOCK_SIZE_MINIMUM)
    return set_violation ("block-size", "minimum block size %u is not a "
                          "power of two <= 64 KiB", info->bs_min);
  floor = info->bs_min > 512 ? info->bs_min : 512;
  if (!is_pow2 (info->bs_pref) || info->bs_pref < floor)
    return set_violation ("block-size", "preferred block size %u is not a "
                          "power of two >= %u", info->bs_pref, floor);
  if (info->bs_max < info->bs_pref)
    return set_violation ("block-size", "maximum block size %u is below the "
                          "preferred %u", info->bs_max, info->bs_pref);
  if (info->bs_max != UINT32_MAX && info->bs_max % info->bs_min)
    return set_violation ("block-size", "maximum block size %u is not a "
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

static int
newstyle (struct hs *hs)
{
  const struct handshake_opts *o = hs->o;
  struct export_info *info = hs->info;
  uint8_t buf[4];
  uint16_t hflags;
  uint32_t cflags;
  int r;

  if (hs_read (hs, buf, 2) == -1)
    return -1;
  hflags = wire_get16 (buf);
  if (hflags & ~NBD_HANDSHAKE_FLAGS_KNOWN)
    return set_violation ("hs-flags", "handshake flags 0x%04x set bits other "
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
  if (info->protocol == PROTO_NEWSTYLE_FIXED) {
    if (o->structured && opt_structured_reply (hs) == -1)
      return -1;
    if (info->structured && o->meta_context && opt_set_meta_context (hs) == -1)
      return -1;
    r = opt_go (hs);
    if (r <= 0)
      return r;
  }
  return opt_export_name (hs, cflags & NBD_FLAG_NO_ZEROES);
}

int
handshake_run (struct transport *t, const struct handshake_opts *o,
               struct export_info *info)
{
  struct hs hs = { .t = t, .o = o, .info = info };
  uint8_t buf[16];
  uint64_t magic;
  int r;

  memset (info, 0, sizeof *info);
  if (hs_read (&hs, buf, 16) == -1)
    return -1;
  magic = wire_get64 (buf);
  if (magic != NBD_MAGIC_INIT)
    return set_violation ("hs-magic", "greeting starts with 0x%016llx, not "
                          "NBDMAGIC (is this an NBD server?)",
                          (unsigned long long) magic);
  magic = wire_get64 (buf + 8);
  if (magic == NBD_MAGIC_OLDSTYLE)
    r = oldstyle (&hs);
  else if (magic == NBD_MAGIC_OPT) {
    /* the first two bytes of newstyle follow the magic */
    r = newstyle (&hs);
  }
  else
    return set_violation ("hs-magic", "second greeting magic is 0x%016llx, "
                          "neither IHAVEOPT nor the oldstyle magic",
                          (unsigned long long) magic);
  if (r == -1)
    return -1;
  if (!info->name && !(info->name = strdup (o->export_name)))
    return set_error (ENOMEM, "out of memory");
  debug (o->debug, "handshake done: size %llu, transmission flags 0x%04x, "
         "structured replies %s, meta context %s",
         (unsigned long long) info->size, info->tflags,
         info->structured ? "on" : "off",
         info->meta_context ? info->meta_context : "none");
  return check_export (info);
}

void
export_info_free (struct export_info *info)
{
  free (info->name);
  free (info->description);
  free (info->meta_context);
  memset (info, 0, sizeof *info);
}
