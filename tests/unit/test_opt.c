/* test_opt.c - unit tests of option negotiation mode (nbdaio_set_opt_mode
 * and the nbdaio_opt_* calls) against the scripted server: each call's
 * success path, error replies (errno, message, the handle still
 * negotiating, no NBD_OPT_ABORT sent), every rule the opt calls enforce
 * ("[tag]" and a dead handle), raw options, abort, go after info, the
 * settings allowed while negotiating and calls made in the wrong state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_common.h"

#ifdef __SANITIZE_ADDRESS__
size_t __sanitizer_get_current_allocated_bytes (void);
#else
#include <malloc.h>
#endif

/* ---------------------------------------------------------------------- */
/* the server side */

/* What a test adds to the standard opt-mode server: first sees each
 * option before the standard answers (same return values as fs_opt_hook);
 * calls counts how often it ran. */
struct cfg {
  fs_opt_hook first;
  int calls;
  int n;                        /* for the hook's own use */
};

/* What the server saw of LIST_META_CONTEXT (read by the test after the
 * call returned: the server parsed it before answering). */
static char lmc_export[256];
static int lmc_nqueries;
static char lmc_queries[4][64];

static int
send_server (struct fs *s, const char *name, const char *desc)
{
  uint8_t b[512];
  uint32_t n = strlen (name), d = strlen (desc);

  wire_put32 (b, n);
  memcpy (b + 4, name, n);
  memcpy (b + 4 + n, desc, d);
  return fs_send_opt_reply (s, NBD_OPT_LIST, NBD_REP_SERVER, b, 4 + n + d);
}

/* Parse LIST_META_CONTEXT into lmc_*; answer with the contexts of this
 * server (base:allocation id 1, qemu:dirty-bitmap:a id 2) that match a
 * query exactly, or all of them for no query. */
static int
answer_list_meta (struct fs *s, const uint8_t *d, uint32_t l)
{
  static const char *const ctxs[] = { "base:allocation", "qemu:dirty-bitmap:a" };
  uint32_t pos, nq;

  if (fs_opt_export_name (d, l, lmc_export, sizeof lmc_export) == -1)
    return fs_fail (s, "malformed LIST_META_CONTEXT");
  pos = 4 + strlen (lmc_export);
  if (l - pos < 4)
    return fs_fail (s, "LIST_META_CONTEXT without a query count");
  nq = wire_get32 (d + pos);
  pos += 4;
  lmc_nqueries = (int) nq;
  for (uint32_t i = 0; i < nq; i++) {
    uint32_t ql;
    if (l - pos < 4 || (ql = wire_get32 (d + pos)) > l - pos - 4 || ql >= 64)
      return fs_fail (s, "malformed LIST_META_CONTEXT query");
    if (i < 4) {
      memcpy (lmc_queries[i], d + pos + 4, ql);
      lmc_queries[i][ql] = 0;
    }
    pos += 4 + ql;
  }
  for (uint32_t c = 0; c < 2; c++) {
    int match = nq == 0;
    for (uint32_t i = 0; i < nq && i < 4; i++)
      if (strcmp (lmc_queries[i], ctxs[c]) == 0)
        match = 1;
    if (match && fs_send_meta_context (s, NBD_OPT_LIST_META_CONTEXT, c + 1,
                                       ctxs[c]) == -1)
      return -1;
  }
  return fs_send_ack (s, NBD_OPT_LIST_META_CONTEXT);
}

static int
opt_hook (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  struct cfg *cfg = s->arg;

  if (cfg && cfg->first) {
    int r = cfg->first (s, opt, d, l);
    if (r != 0) {
      cfg->calls++;
      return r;
    }
  }
  switch (opt) {
  case NBD_OPT_LIST:
    if (send_server (s, "disk1", "the first disk") == -1
        || send_server (s, "", "") == -1
        || fs_send_ack (s, opt) == -1)
      return -1;
    return 1;
  case NBD_OPT_LIST_META_CONTEXT:
    return answer_list_meta (s, d, l) == 0 ? 1 : -1;
  case NBD_OPT_ABORT:
    return fs_send_ack (s, opt) == 0 ? 2 : -1;
  default:
    return 0;
  }
}

/* The opt-mode server: options until GO (then serve s->disk), ABORT or a
 * hook ending it. */
static int
script_opt (struct fs *s)
{
  int r = fs_handshake_hook (s, opt_hook);
  if (r == 0)
    return fs_serve_memory (s, 1);
  return r == 1 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* client helpers */

/* Start the server with cfg (may be NULL) and connect in opt mode. */
static void
opt_start (struct ctx *c, struct cfg *cfg)
{
  assert_int_equal (nbdaio_set_opt_mode (c->h, 1), 0);
  assert_true (fs_start (c->s, script_opt, cfg) >= 0);
  assert_int_equal (test_connect (c->h, c->s), 0);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
}

/* A command on a negotiating or dead handle: -1 ENOTCONN, free runs. */
static void
check_no_commands (struct nbdaio_handle *h)
{
  struct cbc cb = { 0 };
  char buf[512];

  assert_int_equal (nbdaio_aio_pread (h, buf, sizeof buf, 0,
                                      cbc_completion (&cb), 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (cb.calls, 0);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (nbdaio_pread (h, buf, sizeof buf, 0, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_aio_flush (h, NBDAIO_NULL_COMPLETION, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_get_fd (h), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_poll (h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_aio_get_direction (h), 0);
}

static void
check_one_read (struct nbdaio_handle *h)
{
  uint8_t buf[512], want[512];
  assert_int_equal (nbdaio_pread (h, buf, sizeof buf, 4096, 0), 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (buf, want, sizeof buf);
}

struct listing {
  int n;
  char names[8][64], descs[8][64];
  uint32_t ids[8];
};

static void
list_cb (void *user_data, const char *name, const char *description)
{
  struct listing *l = user_data;
  if (l->n < 8) {
    snprintf (l->names[l->n], 64, "%s", name);
    snprintf (l->descs[l->n], 64, "%s", description);
  }
  l->n++;
}

static void
context_cb (void *user_data, uint32_t id, const char *name)
{
  struct listing *l = user_data;
  if (l->n < 8) {
    snprintf (l->names[l->n], 64, "%s", name);
    l->ids[l->n] = id;
  }
  l->n++;
}

/* ---------------------------------------------------------------------- */
/* success paths */

static void
test_negotiating_state (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;

  opt_start (c, NULL);
  /* the connection facts are known, the export's are not */
  assert_string_equal (nbdaio_get_protocol (h), "newstyle-fixed");
  assert_int_equal (nbdaio_get_structured_replies_negotiated (h), 1);
  assert_int_equal (nbdaio_get_tls_negotiated (h), 0);
  assert_int_equal (nbdaio_get_handshake_flags (h),
                    NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  assert_int_equal (nbdaio_get_size (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_true (contains (nbdaio_get_error (), "negotiating"));
  assert_null (nbdaio_get_export_name (h));
  assert_int_equal (nbdaio_can_flush (h), -1);
  assert_int_equal (nbdaio_get_opt_reply_type (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_null (nbdaio_get_connection_error (h));
  check_no_commands (h);
  assert_true (contains (nbdaio_get_error (), "nbdaio_opt_go first"));
  assert_int_equal (nbdaio_is_negotiating (h), 1);

  /* abort: the server sees NBD_OPT_ABORT; the handle is closed cleanly */
  assert_int_equal (nbdaio_opt_abort (h), 0);
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_int_equal (nbdaio_is_connected (h), 0);
  assert_null (nbdaio_get_connection_error (h));
  check_no_commands (h);
  assert_int_equal (nbdaio_opt_abort (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_list (h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  assert_int_equal (c->s->nr_options, 3);
  assert_int_equal (c->s->options[0], NBD_OPT_EXTENDED_HEADERS);
  assert_int_equal (c->s->options[1], NBD_OPT_STRUCTURED_REPLY);
  assert_int_equal (c->s->options[2], NBD_OPT_ABORT);
}

static void
test_list_then_go (void **state)
{
  struct ctx *c = *state;
  struct listing l = { 0 };

  opt_start (c, NULL);
  assert_int_equal (nbdaio_opt_list (c->h, list_cb, &l), 2);
  assert_int_equal (l.n, 2);
  assert_string_equal (l.names[0], "disk1");
  assert_string_equal (l.descs[0], "the first disk");
  assert_string_equal (l.names[1], "");
  assert_string_equal (l.descs[1], "");
  assert_int_equal (nbdaio_get_opt_reply_type (c->h), NBD_REP_ACK);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  /* no callback: only the count */
  assert_int_equal (nbdaio_opt_list (c->h, NULL, NULL), 2);

  assert_int_equal (nbdaio_opt_go (c->h), 0);
  assert_int_equal (nbdaio_is_negotiating (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  assert_string_equal (nbdaio_get_meta_context (c->h), "base:allocation");
  assert_int_equal (nbdaio_get_max_payload (c->h), 32 * 1024 * 1024);
  check_one_read (c->h);
  /* not negotiating any more */
  assert_int_equal (nbdaio_opt_list (c->h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_go (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_abort (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_export_name (c->h, "x"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  assert_true (saw_option (c->s, NBD_OPT_SET_META_CONTEXT));
  assert_false (saw_option (c->s, NBD_OPT_ABORT));
}

static int
hook_list_empty (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_LIST)
    return 0;
  return fs_send_ack (s, opt) == 0 ? 1 : -1;
}

static void
test_list_empty (void **state)
{
  struct ctx *c = *state;
  struct cfg cfg = { .first = hook_list_empty };
  struct listing l = { 0 };

  opt_start (c, &cfg);
  assert_int_equal (nbdaio_opt_list (c->h, list_cb, &l), 0);
  assert_int_equal (l.n, 0);
  assert_int_equal (nbdaio_opt_abort (c->h), 0);
  ctx_finish (c);
}

/* INFO answered with other facts than GO will give. */
static int
hook_info_other (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) l;
  if (opt != NBD_OPT_INFO)
    return 0;
  fs_opt_export_name (d, l, s->export_name, sizeof s->export_name);
  if (fs_send_info_name (s, opt, "info-name") == -1
      || fs_send_info_desc (s, opt, "from INFO") == -1
      || fs_send_info_block_size (s, opt, 512, 4096, 65536) == -1
      || fs_send_info_export (s, opt, 2 * 1024 * 1024,
                              NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY) == -1
      || fs_send_ack (s, opt) == -1)
    return -1;
  return 1;
}

static void
test_info_then_go (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;
  struct cfg cfg = { .first = hook_info_other };

  c->s->hs.name = "go-name";
  opt_start (c, &cfg);
  assert_int_equal (nbdaio_set_export_name (h, "wanted"), 0);
  assert_int_equal (nbdaio_opt_info (h), 0);
  assert_int_equal (nbdaio_is_negotiating (h), 1);
  assert_int_equal (nbdaio_get_opt_reply_type (h), NBD_REP_ACK);
  assert_string_equal (c->s->export_name, "wanted");
  assert_int_equal (nbdaio_get_size (h), 2 * 1024 * 1024);
  assert_string_equal (nbdaio_get_export_name (h), "info-name");
  assert_string_equal (nbdaio_get_export_description (h), "from INFO");
  assert_int_equal (nbdaio_is_read_only (h), 1);
  assert_int_equal (nbdaio_can_write (h), 0);
  assert_int_equal (nbdaio_can_flush (h), 0);
  assert_int_equal (nbdaio_get_transmission_flags (h),
                    NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
  assert_int_equal (nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM), 512);
  assert_int_equal (nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED), 4096);
  assert_int_equal (nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM), 65536);
  assert_int_equal (nbdaio_get_max_payload (h), 65536);
  assert_null (nbdaio_get_meta_context (h));
  assert_int_equal (nbdaio_can_block_status (h), 0);
  check_no_commands (h);

  /* GO replaces all of it */
  assert_int_equal (nbdaio_opt_go (h), 0);
  assert_int_equal (nbdaio_is_connected (h), 1);
  assert_int_equal (nbdaio_get_size (h), 1024 * 1024);
  assert_string_equal (nbdaio_get_export_name (h), "go-name");
  assert_null (nbdaio_get_export_description (h));
  assert_int_equal (nbdaio_is_read_only (h), 0);
  assert_int_equal (nbdaio_can_flush (h), 1);
  assert_int_equal (nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM), 0);
  assert_int_equal (nbdaio_get_max_payload (h), 32 * 1024 * 1024);
  assert_string_equal (nbdaio_get_meta_context (h), "base:allocation");
  check_one_read (h);
  ctx_finish (c);
  assert_string_equal (c->s->export_name, "wanted");
  assert_true (saw_option (c->s, NBD_OPT_INFO));
}

static void
test_info_default_name (void **state)
{
  struct ctx *c = *state;

  opt_start (c, NULL);
  assert_int_equal (nbdaio_opt_info (c->h), 0);
  /* no NBD_INFO_NAME: the name asked for */
  assert_string_equal (nbdaio_get_export_name (c->h), "");
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  assert_int_equal (nbdaio_opt_abort (c->h), 0);
  /* the facts stay readable after the end */
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  ctx_finish (c);
}

static void
test_list_meta_context (void **state)
{
  struct ctx *c = *state;
  struct listing l = { 0 };
  const char *const one[] = { "base:allocation", NULL };
  const char *const none[] = { NULL };
  const char *const other[] = { "qemu:nothing", "x:y", NULL };

  opt_start (c, NULL);
  assert_int_equal (nbdaio_set_export_name (c->h, "disk1"), 0);
  assert_int_equal (nbdaio_opt_list_meta_context (c->h, NULL, context_cb, &l),
                    2);
  assert_int_equal (lmc_nqueries, 0);
  assert_string_equal (lmc_export, "disk1");
  assert_int_equal (l.n, 2);
  assert_string_equal (l.names[0], "base:allocation");
  assert_int_equal (l.ids[0], 1);
  assert_string_equal (l.names[1], "qemu:dirty-bitmap:a");
  assert_int_equal (l.ids[1], 2);
  assert_int_equal (nbdaio_get_opt_reply_type (c->h), NBD_REP_ACK);

  memset (&l, 0, sizeof l);
  assert_int_equal (nbdaio_opt_list_meta_context (c->h, one, context_cb, &l),
                    1);
  assert_int_equal (lmc_nqueries, 1);
  assert_string_equal (lmc_queries[0], "base:allocation");
  assert_string_equal (l.names[0], "base:allocation");

  assert_int_equal (nbdaio_opt_list_meta_context (c->h, none, NULL, NULL), 2);
  assert_int_equal (lmc_nqueries, 0);
  assert_int_equal (nbdaio_opt_list_meta_context (c->h, other, NULL, NULL), 0);
  assert_int_equal (lmc_nqueries, 2);
  assert_string_equal (lmc_queries[1], "x:y");

  /* a query longer than a string may be: refused, nothing sent */
  char *big = malloc (NBD_MAX_STRING + 2);
  assert_non_null (big);
  memset (big, 'a', NBD_MAX_STRING + 1);
  big[NBD_MAX_STRING + 1] = 0;
  const char *const toolong[] = { big, NULL };
  int before = c->s->nr_options;
  assert_int_equal (nbdaio_opt_list_meta_context (c->h, toolong, NULL, NULL),
                    -1);
  free (big);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (c->s->nr_options, before);

  assert_int_equal (nbdaio_opt_go (c->h), 0);
  ctx_finish (c);
}

/* Option 100: two replies of an unknown type, then ACK; 101: ERR_POLICY. */
static int
hook_raw (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  if (opt == 100) {
    if (l != 3 || memcmp (d, "abc", 3) != 0)
      return fs_fail (s, "option 100 with the wrong data");
    if (fs_send_opt_reply (s, opt, 77, "hello", 5) == -1
        || fs_send_opt_reply (s, opt, NBD_REP_SERVER, "\0\0", 2) == -1
        || fs_send_ack (s, opt) == -1)
      return -1;
    return 1;
  }
  if (opt == 101)
    return fs_send_opt_reply (s, opt, NBD_REP_ERR_POLICY, "no", 2) == 0 ? 1 : -1;
  return 0;
}

static void
test_raw (void **state)
{
  struct ctx *c = *state;
  struct cfg cfg = { .first = hook_raw };

  opt_start (c, &cfg);
  /* an option the server does not know */
  assert_int_equal (nbdaio_opt_raw (c->h, 99, "xyz", 3), NBD_REP_ERR_UNSUP);
  assert_int_equal (nbdaio_get_opt_reply_type (c->h), NBD_REP_ERR_UNSUP);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_opt_raw (c->h, 100, "abc", 3), NBD_REP_ACK);
  assert_int_equal (nbdaio_opt_raw (c->h, 101, NULL, 0), NBD_REP_ERR_POLICY);
  /* a raw LIST is read as raw: no callbacks, the final type */
  assert_int_equal (nbdaio_opt_raw (c->h, NBD_OPT_LIST, NULL, 0),
                    NBD_REP_ACK);

  /* options that would change the state are refused, nothing is sent */
  int before = c->s->nr_options;
  static const uint32_t refused[] = {
    NBD_OPT_STARTTLS, NBD_OPT_GO, NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT
  };
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal (nbdaio_opt_raw (c->h, refused[i], NULL, 0), -1);
    assert_int_equal (nbdaio_get_errno (), EINVAL);
  }
  assert_int_equal (nbdaio_opt_raw (c->h, 99, NULL, 4), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (c->s->nr_options, before);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_opt_go (c->h), 0);
  check_one_read (c->h);
  ctx_finish (c);
}

/* Structured replies not asked for at connect, then sent raw: the client
 * must read structured replies after GO. */
static void
test_raw_structured_reply (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (nbdaio_set_request_structured_replies (c->h, 0), 0);
  opt_start (c, NULL);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  assert_int_equal (nbdaio_opt_raw (c->h, NBD_OPT_STRUCTURED_REPLY, NULL, 0),
                    NBD_REP_ACK);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_int_equal (nbdaio_opt_go (c->h), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_string_equal (nbdaio_get_meta_context (c->h), "base:allocation");
  check_one_read (c->h);
  ctx_finish (c);
  assert_int_equal (c->s->sr_negotiated, 1);
}

/* ---------------------------------------------------------------------- */
/* error replies: the call fails, the handle goes on negotiating */

static const struct {
  uint32_t type;
  int err;
} errors[] = {
  { NBD_REP_ERR_UNSUP, ENOTSUP }, { NBD_REP_ERR_POLICY, EPERM },
  { NBD_REP_ERR_INVALID, EINVAL }, { NBD_REP_ERR_PLATFORM, ENOTSUP },
  { NBD_REP_ERR_TLS_REQD, ENOTSUP }, { NBD_REP_ERR_UNKNOWN, ENOENT },
  { NBD_REP_ERR_SHUTDOWN, ESHUTDOWN },
  { NBD_REP_ERR_BLOCK_SIZE_REQD, EINVAL }, { NBD_REP_ERR_TOO_BIG, ERANGE },
  { NBD_REP_FLAG_ERROR | 99, EINVAL },
};
#define NR_ERRORS (sizeof errors / sizeof errors[0])

/* Answer the n-th LIST with errors[n] (after one NBD_REP_SERVER, which
 * the client must disregard). */
static int
hook_list_errors (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  struct cfg *cfg = s->arg;
  char msg[32];
  (void) d; (void) l;
  if (opt != NBD_OPT_LIST || cfg->n >= (int) NR_ERRORS)
    return 0;
  snprintf (msg, sizeof msg, "srv says %d", cfg->n);
  if (send_server (s, "early", "") == -1
      || fs_send_opt_reply (s, opt, errors[cfg->n].type, msg,
                            strlen (msg)) == -1)
    return -1;
  cfg->n++;
  return 1;
}

static void
test_error_replies_list (void **state)
{
  struct ctx *c = *state;
  struct cfg cfg = { .first = hook_list_errors };
  struct listing l = { 0 };
  char want[32];

  opt_start (c, &cfg);
  for (size_t i = 0; i < NR_ERRORS; i++) {
    assert_int_equal (nbdaio_opt_list (c->h, list_cb, &l), -1);
    fprintf (stderr, "  0x%x -> %s\n", errors[i].type, nbdaio_get_error ());
    assert_int_equal (nbdaio_get_errno (), errors[i].err);
    assert_true (contains (nbdaio_get_error (), "NBD_OPT_LIST"));
    assert_true (contains (nbdaio_get_error (), "NBD_REP_ERR_")
                 || contains (nbdaio_get_error (), "unknown error reply"));
    snprintf (want, sizeof want, "srv says %zu", i);
    assert_true (contains (nbdaio_get_error (), want));
    assert_int_equal (nbdaio_get_opt_reply_type (c->h), errors[i].type);
    assert_int_equal (nbdaio_is_negotiating (c->h), 1);
    assert_null (nbdaio_get_connection_error (c->h));
  }
  /* the entries before an error reply were disregarded */
  assert_int_equal (l.n, 0);
  /* the server is still there */
  assert_int_equal (nbdaio_opt_list (c->h, list_cb, &l), 2);
  assert_int_equal (nbdaio_opt_go (c->h), 0);
  check_one_read (c->h);
  ctx_finish (c);
  assert_false (saw_option (c->s, NBD_OPT_ABORT));
}

/* INFO: ERR_UNKNOWN; LIST_META_CONTEXT: ERR_INVALID; the first GO:
 * ERR_UNKNOWN, then GO is answered normally. */
static int
hook_other_errors (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  struct cfg *cfg = s->arg;
  (void) d; (void) l;
  switch (opt) {
  case NBD_OPT_INFO:
    return fs_send_opt_reply (s, opt, NBD_REP_ERR_UNKNOWN, "who", 3) ? -1 : 1;
  case NBD_OPT_LIST_META_CONTEXT:
    if (fs_send_meta_context (s, opt, 1, "base:allocation") == -1)
      return -1;
    return fs_send_opt_reply (s, opt, NBD_REP_ERR_INVALID, NULL, 0) ? -1 : 1;
  case NBD_OPT_GO:
    if (cfg->n++ > 0)
      return 0;
    if (fs_send_info_name (s, opt, "half") == -1)
      return -1;
    return fs_send_opt_reply (s, opt, NBD_REP_ERR_UNKNOWN, NULL, 0) ? -1 : 1;
  default:
    return 0;
  }
}

static void
test_error_replies_other (void **state)
{
  struct ctx *c = *state;
  struct cfg cfg = { .first = hook_other_errors };
  struct listing l = { 0 };

  opt_start (c, &cfg);
  assert_int_equal (nbdaio_set_export_name (c->h, "nosuch"), 0);
  assert_int_equal (nbdaio_opt_info (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), ENOENT);
  assert_true (contains (nbdaio_get_error (), "NBD_OPT_INFO"));
  assert_true (contains (nbdaio_get_error (), "nosuch"));
  assert_true (contains (nbdaio_get_error (), "who"));
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_get_size (c->h), -1);

  assert_int_equal (nbdaio_opt_list_meta_context (c->h, NULL, context_cb, &l),
                    -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (l.n, 0);
  assert_int_equal (nbdaio_get_opt_reply_type (c->h), NBD_REP_ERR_INVALID);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);

  assert_int_equal (nbdaio_opt_go (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), ENOENT);
  assert_true (contains (nbdaio_get_error (), "NBD_OPT_GO"));
  assert_int_equal (nbdaio_get_opt_reply_type (c->h), NBD_REP_ERR_UNKNOWN);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  /* what the refused GO said is not taken */
  assert_null (nbdaio_get_export_name (c->h));
  check_no_commands (c->h);

  assert_int_equal (nbdaio_set_export_name (c->h, ""), 0);
  assert_int_equal (nbdaio_opt_go (c->h), 0);
  assert_string_equal (nbdaio_get_export_name (c->h), "");
  check_one_read (c->h);
  ctx_finish (c);
  assert_false (saw_option (c->s, NBD_OPT_ABORT));
}

/* ---------------------------------------------------------------------- */
/* violations: "[tag]", the handle dead */

typedef int (*opt_call) (struct nbdaio_handle *h);

static int call_list (struct nbdaio_handle *h)
{ return nbdaio_opt_list (h, NULL, NULL); }
static int call_info (struct nbdaio_handle *h)
{ return nbdaio_opt_info (h); }
static int call_lmc (struct nbdaio_handle *h)
{ return nbdaio_opt_list_meta_context (h, NULL, NULL, NULL); }
static int call_raw (struct nbdaio_handle *h)
{ return (int) nbdaio_opt_raw (h, 99, NULL, 0); }
static int call_go (struct nbdaio_handle *h)
{ return nbdaio_opt_go (h); }

static void
expect_opt_failure (fs_opt_hook hook, opt_call call, const char *tag,
                    int err)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct cfg cfg = { .first = hook };
  char want[64], msg[1024];
  const char *violation;
  int rc, e;

  assert_non_null (s);
  assert_non_null (h);
  assert_int_equal (nbdaio_set_opt_mode (h, 1), 0);
  assert_true (fs_start (s, script_opt, &cfg) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  rc = call (h);
  e = nbdaio_get_errno ();
  violation = nbdaio_get_violation ();
  snprintf (msg, sizeof msg, "%s", nbdaio_get_error () ? nbdaio_get_error ()
            : "(null)");
  snprintf (want, sizeof want, "[%s]", tag);
  fprintf (stderr, "  %s -> rc=%d \"%s\"\n", tag, rc, msg);
  assert_int_equal (rc, -1);
  assert_int_equal (e, err);
  if (err == EPROTO) {
    assert_non_null (strstr (msg, want));
    assert_non_null (nbdaio_get_connection_error (h));
    assert_non_null (strstr (nbdaio_get_connection_error (h), want));
    assert_string_equal (violation ? violation : "(null)", tag);
    assert_string_equal (nbdaio_get_connection_violation (h), tag);
  }
  else
    assert_null (violation);
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_int_equal (nbdaio_is_connected (h), 0);
  check_no_commands (h);
  assert_int_equal (nbdaio_opt_list (h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_go (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  assert_int_equal (cfg.calls, 1);
  fs_free (s);
}

static void
expect_opt_violation (fs_opt_hook hook, opt_call call, const char *tag)
{
  expect_opt_failure (hook, call, tag, EPROTO);
}

/* Hooks answering one option wrongly (then ending the script). */
#define BAD_REPLY(fn, option, body)                                     \
  static int                                                            \
  fn (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)         \
  {                                                                     \
    (void) d; (void) l;                                                 \
    if (opt != (option))                                                \
      return 0;                                                         \
    body;                                                               \
    return 2;                                                           \
  }

BAD_REPLY (list_short, NBD_OPT_LIST,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER, "\0\0\0", 3))
BAD_REPLY (list_name_long, NBD_OPT_LIST,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER,
                              "\0\0\0\x0a" "abcdef", 10))
BAD_REPLY (list_name_nul, NBD_OPT_LIST,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER,
                              "\0\0\0\x03" "a\0b", 7))
BAD_REPLY (list_desc_nul, NBD_OPT_LIST,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER,
                              "\0\0\0\x01" "adesc\0", 10))
BAD_REPLY (list_info, NBD_OPT_LIST,
           fs_send_info_export (s, opt, 1024, NBD_FLAG_HAS_FLAGS))
BAD_REPLY (list_ack_len, NBD_OPT_LIST,
           fs_send_opt_reply (s, opt, NBD_REP_ACK, "xx", 2))
BAD_REPLY (lmc_short, NBD_OPT_LIST_META_CONTEXT,
           fs_send_opt_reply (s, opt, NBD_REP_META_CONTEXT, "\0\0\0\1", 4))
BAD_REPLY (lmc_nul, NBD_OPT_LIST_META_CONTEXT,
           fs_send_opt_reply (s, opt, NBD_REP_META_CONTEXT,
                              "\0\0\0\1" "base:\0x", 11))
BAD_REPLY (lmc_server, NBD_OPT_LIST_META_CONTEXT,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER, "\0\0\0\0", 4))
BAD_REPLY (info_server, NBD_OPT_INFO,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER, "\0\0\0\0", 4))
BAD_REPLY (info_no_export, NBD_OPT_INFO,
           (fs_send_info_name (s, opt, "x"), fs_send_ack (s, opt)))
BAD_REPLY (info_short_export, NBD_OPT_INFO,
           fs_send_opt_reply (s, opt, NBD_REP_INFO, "\0\0\0\0\0", 5))
BAD_REPLY (info_no_has_flags, NBD_OPT_INFO,
           (fs_send_info_export (s, opt, 1024, NBD_FLAG_SEND_FLUSH),
            fs_send_ack (s, opt)))
BAD_REPLY (info_bad_block_size, NBD_OPT_INFO,
           (fs_send_info_block_size (s, opt, 3, 4096, 65536),
            fs_send_info_export (s, opt, 1024, NBD_FLAG_HAS_FLAGS),
            fs_send_ack (s, opt)))
BAD_REPLY (raw_echo, 99, fs_send_opt_reply (s, 98, NBD_REP_ACK, NULL, 0))
BAD_REPLY (raw_magic, 99,
           fs_send_opt_reply_magic (s, UINT64_C (0x1234), opt, NBD_REP_ACK,
                                    NULL, 0))
BAD_REPLY (go_server, NBD_OPT_GO,
           fs_send_opt_reply (s, opt, NBD_REP_SERVER, "\0\0\0\0", 4))

static int
list_name_4097 (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  uint8_t b[4 + 4097];
  (void) d; (void) l;
  if (opt != NBD_OPT_LIST)
    return 0;
  wire_put32 (b, 4097);
  memset (b + 4, 'n', 4097);
  fs_send_opt_reply (s, opt, NBD_REP_SERVER, b, sizeof b);
  return 2;
}

static int
raw_huge (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  uint8_t b[NBD_OPT_REPLY_HDR_LEN];
  (void) d; (void) l;
  if (opt != 99)
    return 0;
  wire_put64 (b, NBD_MAGIC_OPT_REPLY);
  wire_put32 (b + 8, opt);
  wire_put32 (b + 12, NBD_REP_ACK);
  wire_put32 (b + 16, 1u << 20);          /* announced, never sent */
  fs_write (s, b, sizeof b);
  return 2;
}

/* 65 replies of type 5 in one write: the client gives up after 64 and
 * closes, so they must all be in its socket before it can (one send per
 * reply raced with that close: EPIPE on a loaded machine). */
static int
raw_endless (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  enum { ONE = NBD_OPT_REPLY_HDR_LEN + 1, N = 65 };
  uint8_t b[N * ONE];
  (void) d; (void) l;
  if (opt != 99)
    return 0;
  for (int i = 0; i < N; i++) {
    uint8_t *r = b + i * ONE;
    wire_put64 (r, NBD_MAGIC_OPT_REPLY);
    wire_put32 (r + 8, opt);
    wire_put32 (r + 12, 5);
    wire_put32 (r + 16, 1);
    r[20] = 'x';
  }
  return fs_write (s, b, sizeof b) == -1 ? -1 : 2;
}

static int
list_stall (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_LIST)
    return 0;
  fs_wait_eof (s);
  return 2;
}

static void
test_violations (void **state)
{
  (void) state;
  expect_opt_violation (list_short, call_list, "rep-server-length");
  expect_opt_violation (list_name_long, call_list, "rep-server-length");
  expect_opt_violation (list_name_nul, call_list, "string-nul");
  expect_opt_violation (list_desc_nul, call_list, "string-nul");
  expect_opt_violation (list_name_4097, call_list, "string-length");
  expect_opt_violation (list_info, call_list, "opt-reply-type");
  expect_opt_violation (list_ack_len, call_list, "opt-reply-length");
  expect_opt_violation (lmc_short, call_lmc, "meta-context-length");
  expect_opt_violation (lmc_nul, call_lmc, "string-nul");
  expect_opt_violation (lmc_server, call_lmc, "opt-reply-type");
  expect_opt_violation (info_server, call_info, "opt-reply-type");
  expect_opt_violation (info_no_export, call_info, "info-missing-export");
  expect_opt_violation (info_short_export, call_info, "info-length");
  expect_opt_violation (info_no_has_flags, call_info, "tflags-has-flags");
  expect_opt_violation (info_bad_block_size, call_info, "block-size");
  expect_opt_violation (raw_echo, call_raw, "opt-reply-echo");
  expect_opt_violation (raw_magic, call_raw, "opt-reply-magic");
  expect_opt_violation (raw_huge, call_raw, "opt-reply-length");
  expect_opt_violation (go_server, call_go, "opt-reply-type");
  /* not violations, but the connection cannot go on either */
  expect_opt_failure (raw_endless, call_raw, "", EOVERFLOW);
}

static void
test_timeout_per_call (void **state)
{
  (void) state;
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct cfg cfg = { .first = list_stall };
  struct timespec t0, t1;

  assert_int_equal (nbdaio_set_connect_timeout (h, 400), 0);
  assert_int_equal (nbdaio_set_opt_mode (h, 1), 0);
  assert_true (fs_start (s, script_opt, &cfg) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  /* more than the timeout since connecting: each call has its own */
  usleep (500 * 1000);
  assert_int_equal (nbdaio_opt_info (h), 0);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  assert_int_equal (nbdaio_opt_list (h, NULL, NULL), -1);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
  double dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_true (dt >= 0.3 && dt < 3.0);
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_non_null (nbdaio_get_connection_error (h));
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);
}

/* ---------------------------------------------------------------------- */
/* the memory a listing takes */

#define LIST_CAP (16 * MiB)        /* nbdaio.h: the cap of one listing */
#define LIST_SLACK (2 * MiB)       /* the rest of the process meanwhile */

/* Bytes allocated on the heap now, by every thread. */
static size_t
heap_in_use (void)
{
#ifdef __SANITIZE_ADDRESS__
  return __sanitizer_get_current_allocated_bytes ();
#else
  struct mallinfo2 m = mallinfo2 ();
  return m.uordblks + m.hblkhd;
#endif
}

/* What the server lists: entries NBD_REP_SERVER replies with empty names
 * and descriptions (24 bytes each on the wire: the smallest entry, where
 * the bookkeeping per entry weighs most), then NBD_REP_ACK; sent counts
 * the entries written before the client hung up; peak is the most heap in
 * use seen after each batch. */
static struct {
  size_t entries, sent, peak;
} big;

#define BATCH 4096

static void
note_peak (void)
{
  size_t now = heap_in_use ();
  if (now > big.peak)
    big.peak = now;
}

static int
hook_big_list (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  enum { REPLY = NBD_OPT_REPLY_HDR_LEN + 4 };
  uint8_t *b;
  (void) d; (void) l;

  if (opt != NBD_OPT_LIST)
    return 0;
  if (!(b = calloc (BATCH, REPLY)))
    return fs_fail (s, "out of memory");
  for (size_t i = 0; i < BATCH; i++) {
    wire_put64 (b + i * REPLY, NBD_MAGIC_OPT_REPLY);
    wire_put32 (b + i * REPLY + 8, opt);
    wire_put32 (b + i * REPLY + 12, NBD_REP_SERVER);
    wire_put32 (b + i * REPLY + 16, 4);
  }
  for (big.sent = 0; big.sent < big.entries; big.sent += BATCH) {
    size_t n = big.entries - big.sent < BATCH ? big.entries - big.sent : BATCH;
    if (fs_write (s, b, n * REPLY) == -1)
      break;                     /* the client gave up */
    note_peak ();
  }
  free (b);
  if (big.sent < big.entries)
    return 2;
  return fs_send_ack (s, opt) == 0 ? 1 : -1;
}

struct held {
  size_t calls, heap;
};

/* The heap in use while the callbacks run: every entry is held then. */
static void
count_held (void *user_data, const char *name, const char *description)
{
  struct held *h = user_data;
  if (h->calls++ == 0)
    h->heap = heap_in_use ();
  assert_string_equal (name, "");
  assert_string_equal (description, "");
}

/* 400,000 empty entries: 9.6 MB on the wire, well inside the cap once
 * the bookkeeping is counted honestly; what the library holds for them
 * must stay inside the cap too. */
static void
test_list_memory (void **state)
{
  struct ctx *c = *state;
  /* static: the server thread may outlive a failing assertion here */
  static struct cfg cfg = { .first = hook_big_list };
  struct held held = { 0 };
  size_t base;

  memset (&big, 0, sizeof big);
  big.entries = 400000;
  opt_start (c, &cfg);
  base = heap_in_use ();
  assert_int_equal (nbdaio_opt_list (c->h, count_held, &held), 400000);
  assert_int_equal (held.calls, 400000);
  fprintf (stderr, "  400000 entries held in %zu KiB (cap %u KiB)\n",
           (held.heap - base) / 1024, LIST_CAP / 1024);
  assert_true (held.heap - base <= LIST_CAP);
  /* all given back */
  assert_true (heap_in_use () <= base + LIST_SLACK);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_opt_abort (c->h), 0);
  ctx_finish (c);
}

/* 2,000,000 empty entries do not fit: the call fails with EOVERFLOW
 * naming the cap and the count it reached, which honest accounting puts
 * between cap / 64 (64 bytes per entry) and cap / 2 (the two NULs of the
 * strings alone); the heap stayed near the cap; the connection ended. */
static void
test_list_over_cap (void **state)
{
  struct ctx *c = *state;
  static struct cfg cfg = { .first = hook_big_list };
  struct held held = { 0 };
  const char *msg, *at;
  size_t base, n;

  memset (&big, 0, sizeof big);
  big.entries = 2000000;
  opt_start (c, &cfg);
  base = big.peak = heap_in_use ();
  assert_int_equal (nbdaio_opt_list (c->h, count_held, &held), -1);
  assert_int_equal (nbdaio_get_errno (), EOVERFLOW);
  msg = nbdaio_get_error ();
  fprintf (stderr, "  %s (sent %zu, peak +%zu KiB)\n", msg, big.sent,
           (big.peak - base) / 1024);
  assert_true (contains (msg, "NBD_OPT_LIST"));
  assert_true (contains (msg, "16 MiB"));
  assert_non_null (at = strstr (msg, "listed "));
  assert_int_equal (sscanf (at, "listed %zu entries", &n), 1);
  assert_true (n >= LIST_CAP / 64 && n <= LIST_CAP / 2);
  assert_int_equal (held.calls, 0);
  /* held: at most the cap; growing a buffer by realloc holds the old and
   * the new one for a moment (half the cap at most on top) */
  assert_true (big.peak - base <= LIST_CAP + LIST_CAP / 2 + LIST_SLACK);
  assert_true (heap_in_use () <= base + LIST_SLACK);
  assert_int_equal (nbdaio_is_negotiating (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  assert_true (contains (nbdaio_get_connection_error (c->h), "16 MiB"));
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* settings and states */

static void
test_settings_while_negotiating (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;

  opt_start (c, NULL);
  assert_int_equal (nbdaio_set_export_name (h, "late"), 0);
  assert_int_equal (nbdaio_set_option (h, "export", "later"), 0);
  assert_int_equal (nbdaio_set_meta_context (h, NULL), 0);
  assert_int_equal (nbdaio_set_meta_context (h, ""), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_export_name (h, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* the other settings: before connecting only */
  assert_int_equal (nbdaio_set_request_structured_replies (h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_tls (h, NBDAIO_TLS_ALLOW), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_connect_timeout (h, 100), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_max_in_flight (h, 4), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_opt_mode (h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_option (h, "structured", "0"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* a handle connects once */
  assert_int_equal (nbdaio_connect_socket (h, -1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_is_negotiating (h), 1);

  assert_int_equal (nbdaio_opt_go (h), 0);
  assert_null (nbdaio_get_meta_context (h));
  assert_int_equal (nbdaio_can_block_status (h), 0);
  assert_string_equal (nbdaio_get_export_name (h), "later");
  ctx_finish (c);
  assert_string_equal (c->s->export_name, "later");
  assert_false (saw_option (c->s, NBD_OPT_SET_META_CONTEXT));
}

static void
test_wrong_states (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;

  /* NULL */
  assert_int_equal (nbdaio_is_negotiating (NULL), 0);
  assert_int_equal (nbdaio_set_opt_mode (NULL, 1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_list (NULL, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_raw (NULL, 99, NULL, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_get_opt_reply_type (NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* not connected yet */
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_int_equal (nbdaio_opt_list (h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_info (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_list_meta_context (h, NULL, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_go (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_abort (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_get_opt_reply_type (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  char buf[512];
  assert_int_equal (nbdaio_aio_pread (h, buf, sizeof buf, 0,
                                      NBDAIO_NULL_COMPLETION, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);

  /* opt mode off: a connect goes all the way */
  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_int_equal (nbdaio_is_connected (h), 1);
  assert_int_equal (nbdaio_opt_list (h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_opt_abort (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_opt_mode (h, 1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* no option was exchanged while negotiating */
  assert_int_equal (nbdaio_get_opt_reply_type (h), -1);
  ctx_finish (c);
}

/* The refusal a call in the wrong state gets: -1, err and exactly msg. */
#define REFUSED(call, err, msg) do {                                    \
    assert_int_equal ((call), -1);                                      \
    assert_int_equal (nbdaio_get_errno (), (err));                      \
    assert_string_equal (nbdaio_get_error (), (msg));                   \
  } while (0)

#define NOT_NEGOTIATING "handle is not negotiating (connect with opt mode " \
  "on: nbdaio_set_opt_mode)"
#define TOO_LATE "this setting must be made before connecting"

/* The marker a getter that answers leaves as the last error. */
#define MARK "handle is NULL"
#define NO_EXPORT_YET "handle is negotiating and knows no export yet (call " \
  "nbdaio_opt_info or nbdaio_opt_go)"
#define NOT_CONNECTED_YET "handle has not connected yet"
#define GROUP_NEEDS_CONNECTED "a group is made from a connected handle"

/* An int getter: with msg, refused (-1, EINVAL, exactly msg); without,
 * answered (not -1, no new error after the marker). */
#define INT_FACT(call, msg) do {                                        \
    nbdaio_get_size (NULL);                                             \
    if (msg)                                                            \
      REFUSED ((call), EINVAL, (msg));                                  \
    else {                                                              \
      assert_true ((call) != -1);                                       \
      assert_string_equal (nbdaio_get_error (), MARK);                  \
    }                                                                   \
  } while (0)

/* A string getter (NULL may be an answer): the same, by the error. */
#define STR_FACT(call, msg) do {                                        \
    nbdaio_get_size (NULL);                                             \
    if (msg) {                                                          \
      assert_null ((call));                                             \
      assert_int_equal (nbdaio_get_errno (), EINVAL);                   \
      assert_string_equal (nbdaio_get_error (), (msg));                 \
    }                                                                   \
    else {                                                              \
      (void) (call);                                                    \
      assert_string_equal (nbdaio_get_error (), MARK);                  \
    }                                                                   \
  } while (0)

/* The info getters (info.c): the export's facts all refused with msg or,
 * msg NULL, all answered; the connection's (known from the greeting on)
 * likewise with conn_msg. */
static void
pin_facts (struct nbdaio_handle *h, const char *msg, const char *conn_msg)
{
  INT_FACT (nbdaio_get_size (h), msg);
  STR_FACT (nbdaio_get_export_name (h), msg);
  STR_FACT (nbdaio_get_export_description (h), msg);
  INT_FACT (nbdaio_is_read_only (h), msg);
  INT_FACT (nbdaio_can_write (h), msg);
  INT_FACT (nbdaio_can_flush (h), msg);
  INT_FACT (nbdaio_can_fua (h), msg);
  INT_FACT (nbdaio_can_trim (h), msg);
  INT_FACT (nbdaio_can_zero (h), msg);
  INT_FACT (nbdaio_can_fast_zero (h), msg);
  INT_FACT (nbdaio_can_cache (h), msg);
  INT_FACT (nbdaio_can_df (h), msg);
  INT_FACT (nbdaio_can_multi_conn (h), msg);
  INT_FACT (nbdaio_is_rotational (h), msg);
  INT_FACT (nbdaio_can_block_status (h), msg);
  INT_FACT (nbdaio_can_block_status_payload (h), msg);
  INT_FACT (nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM), msg);
  INT_FACT (nbdaio_get_max_payload (h), msg);
  STR_FACT (nbdaio_get_meta_context (h), msg);
  INT_FACT (nbdaio_get_nr_meta_contexts (h), msg);
  INT_FACT (nbdaio_can_meta_context (h, "base:allocation"), msg);
  INT_FACT (nbdaio_get_transmission_flags (h), msg);
  STR_FACT (nbdaio_get_protocol (h), conn_msg);
  INT_FACT (nbdaio_get_structured_replies_negotiated (h), conn_msg);
  INT_FACT (nbdaio_get_extended_headers_negotiated (h), conn_msg);
  INT_FACT (nbdaio_get_tls_negotiated (h), conn_msg);
  INT_FACT (nbdaio_get_handshake_flags (h), conn_msg);
}

/* nbdaio_group_create refused with err and exactly msg. */
static void
pin_group_refused (struct nbdaio_handle *h, int err, const char *msg)
{
  assert_null (nbdaio_group_create (h));
  assert_int_equal (nbdaio_get_errno (), err);
  assert_string_equal (nbdaio_get_error (), msg);
}

/* Each set of states a call may declare, refused in each other state of
 * the handle's life, with the message callers see (new, negotiating
 * before and after nbdaio_opt_info, connected, closed); the info getters
 * and nbdaio_group_create pinned in each. */
static void
test_refusal_by_state (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;
  char buf[512];

  REFUSED (nbdaio_opt_info (NULL), EINVAL, "handle is NULL");
  REFUSED (nbdaio_opt_list (h, NULL, NULL), EINVAL, NOT_NEGOTIATING);
  REFUSED (nbdaio_aio_flush (h, NBDAIO_NULL_COMPLETION, 0), ENOTCONN,
           "handle is not connected (connect first)");
  REFUSED (nbdaio_get_fd (h), ENOTCONN,
           "handle is not connected (connect first)");
  pin_facts (NULL, MARK, MARK);
  pin_group_refused (NULL, EINVAL, "handle is NULL");
  pin_facts (h, NOT_CONNECTED_YET, NOT_CONNECTED_YET);
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);

  opt_start (c, NULL);
  pin_facts (h, NO_EXPORT_YET, NULL);
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);
  REFUSED (nbdaio_set_max_in_flight (h, 4), EINVAL, TOO_LATE);
  REFUSED (nbdaio_connect_socket (h, -1), EINVAL, TOO_LATE);
  REFUSED (nbdaio_poll (h, 0), ENOTCONN, "handle is still negotiating (opt "
           "mode): call nbdaio_opt_go first");
  REFUSED (nbdaio_aio_pread (h, buf, sizeof buf, 0, NBDAIO_NULL_COMPLETION,
                             0), ENOTCONN, "handle is still negotiating "
           "(opt mode): call nbdaio_opt_go first");
  assert_int_equal (nbdaio_aio_in_flight (h), 0);
  assert_int_equal (nbdaio_opt_info (h), 0);
  pin_facts (h, NULL, NULL);
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);

  assert_int_equal (nbdaio_opt_go (h), 0);
  pin_facts (h, NULL, NULL);
  pin_group_refused (h, EINVAL, "a handle connected with "
                     "nbdaio_connect_socket cannot open more connections "
                     "(the library does not know its target)");
  REFUSED (nbdaio_set_export_name (h, "x"), EINVAL, TOO_LATE " or while "
           "negotiating");
  REFUSED (nbdaio_set_tls (h, NBDAIO_TLS_ALLOW), EINVAL, TOO_LATE);
  REFUSED (nbdaio_opt_abort (h), EINVAL, NOT_NEGOTIATING);
  assert_int_equal (nbdaio_aio_disconnect (h), 0);
  while (nbdaio_is_connected (h))
    assert_true (nbdaio_poll (h, 1000) >= 0);

  REFUSED (nbdaio_aio_notify_read (h), ENOTCONN, "handle is disconnected");
  REFUSED (nbdaio_opt_go (h), EINVAL, NOT_NEGOTIATING);
  REFUSED (nbdaio_set_export_name (h, "x"), EINVAL, TOO_LATE " or while "
           "negotiating");
  assert_int_equal (nbdaio_aio_in_flight (h), 0);
  pin_facts (h, NULL, NULL);           /* still readable after the end */
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);
  ctx_finish (c);
}

/* The info getters and nbdaio_group_create on handles that died: after a
 * connection error (the facts stay readable), after nbdaio_opt_abort with
 * no export known and after a failed connect (neither knows anything). */
static void
test_refusal_when_dead (void **state)
{
  struct ctx *c = *state;

  ctx_start (c, script_handshake_only);         /* then hangs up */
  assert_int_equal (drive_until_dead (c->h, 5000), 1);
  assert_non_null (nbdaio_get_connection_error (c->h));
  pin_facts (c->h, NULL, NULL);
  pin_group_refused (c->h, EINVAL, GROUP_NEEDS_CONNECTED);
  ctx_finish (c);

  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  assert_int_equal (nbdaio_set_opt_mode (h, 1), 0);
  assert_true (fs_start (s, script_opt, NULL) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_int_equal (nbdaio_opt_abort (h), 0);
  pin_facts (h, NOT_CONNECTED_YET, NOT_CONNECTED_YET);
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);

  h = test_handle ();
  assert_int_equal (nbdaio_connect_unix (h, "/nonexistent/nbdaio.sock"), -1);
  assert_non_null (nbdaio_get_connection_error (h));
  pin_facts (h, NOT_CONNECTED_YET, NOT_CONNECTED_YET);
  pin_group_refused (h, EINVAL, GROUP_NEEDS_CONNECTED);
  nbdaio_close (h);
}

static int
script_oldstyle (struct fs *s)
{
  if (fs_send_oldstyle (s, s->hs.size, s->hs.tflags) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_no_negotiation_possible (void **state)
{
  struct ctx *c = *state;

  /* oldstyle: connected at once */
  assert_int_equal (nbdaio_set_opt_mode (c->h, 1), 0);
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;
  assert_int_equal (ctx_start_connect (c, script_oldstyle), 0);
  assert_int_equal (nbdaio_is_negotiating (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_string_equal (nbdaio_get_protocol (c->h), "oldstyle");
  check_one_read (c->h);
  assert_int_equal (nbdaio_opt_list (c->h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);

  /* newstyle without the fixed flag: NBD_OPT_EXPORT_NAME at once */
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  s->hs.hflags = 0;
  s->hs.tflags &= ~NBD_FLAG_SEND_DF;
  assert_int_equal (nbdaio_set_opt_mode (h, 1), 0);
  assert_true (fs_start (s, script_opt, NULL) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_int_equal (nbdaio_is_negotiating (h), 0);
  assert_string_equal (nbdaio_get_protocol (h), "newstyle");
  check_one_read (h);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  assert_int_equal (s->nr_options, 1);
  assert_int_equal (s->options[0], NBD_OPT_EXPORT_NAME);
  fs_free (s);
}

static void
test_go_export_name_fallback (void **state)
{
  struct ctx *c = *state;

  c->s->hs.go_unsup = 1;
  c->s->hs.hflags = NBD_FLAG_FIXED_NEWSTYLE;      /* with the 124 zeroes */
  opt_start (c, NULL);
  assert_int_equal (nbdaio_set_export_name (c->h, "old"), 0);
  /* INFO is refused as GO is: ENOTSUP, still negotiating */
  assert_int_equal (nbdaio_opt_info (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTSUP);
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_opt_go (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_string_equal (nbdaio_get_export_name (c->h), "old");
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  check_one_read (c->h);
  ctx_finish (c);
  assert_true (saw_option (c->s, NBD_OPT_EXPORT_NAME));
}

static void
test_close_while_negotiating (void **state)
{
  struct ctx *c = *state;

  opt_start (c, NULL);
  assert_int_equal (nbdaio_opt_list (c->h, NULL, NULL), 2);
  ctx_finish (c);               /* nbdaio_close: NBD_OPT_ABORT */
  assert_true (saw_option (c->s, NBD_OPT_ABORT));
}

/* NBD_OPT_ABORT answered by hanging up: fine, and quick. */
static int
hook_abort_hangup (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) s; (void) d; (void) l;
  return opt == NBD_OPT_ABORT ? 2 : 0;
}

static void
test_abort_without_reply (void **state)
{
  struct ctx *c = *state;
  struct cfg cfg = { .first = hook_abort_hangup };
  struct timespec t0, t1;

  opt_start (c, &cfg);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  nbdaio_get_size (c->h);               /* leaves an error behind */
  assert_int_equal (nbdaio_opt_abort (c->h), 0);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  double dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_true (dt < 0.9);
  assert_int_equal (nbdaio_is_negotiating (c->h), 0);
  assert_null (nbdaio_get_connection_error (c->h));
  ctx_finish (c);
}

int
main (void)
{
#define T(f) CTX_TEST (f)
  const struct CMUnitTest tests[] = {
    T (test_negotiating_state),
    T (test_list_then_go),
    T (test_list_empty),
    T (test_info_then_go),
    T (test_info_default_name),
    T (test_list_meta_context),
    T (test_raw),
    T (test_raw_structured_reply),
    T (test_error_replies_list),
    T (test_error_replies_other),
    T (test_settings_while_negotiating),
    T (test_wrong_states),
    T (test_refusal_by_state),
    T (test_refusal_when_dead),
    T (test_no_negotiation_possible),
    T (test_go_export_name_fallback),
    T (test_close_while_negotiating),
    T (test_abort_without_reply),
    T (test_list_memory),
    T (test_list_over_cap),
    cmocka_unit_test (test_violations),
    cmocka_unit_test (test_timeout_per_call),
  };
#undef T
  return cmocka_run_group_tests (tests, NULL, NULL);
}
