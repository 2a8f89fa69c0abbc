/* test_handshake.c - unit tests of the handshake (option negotiation)
 * against the scripted server: every greeting style and option path, the
 * getters filled in from what the server advertised, option errors turned
 * into clear messages, and each handshake protocol rule a strict client
 * enforces (the error names the rule as "[tag]"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_common.h"

/* ---------------------------------------------------------------------- */
/* scripts */

static int
script_oldstyle_serve (struct fs *s)
{
  if (fs_send_oldstyle (s, s->hs.size, s->hs.tflags) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

/* Every capability getter: each says on (1) or off (0) as one, and
 * is_read_only says the opposite of can_write. */
static void
check_capabilities (struct nbdaio_handle *h, int on)
{
  static int (*const getters[]) (struct nbdaio_handle *) = {
    nbdaio_can_write, nbdaio_can_flush, nbdaio_can_fua, nbdaio_can_trim,
    nbdaio_can_zero, nbdaio_can_fast_zero, nbdaio_can_cache, nbdaio_can_df,
    nbdaio_can_multi_conn, nbdaio_is_rotational, nbdaio_can_block_status,
  };
  assert_int_equal (nbdaio_is_read_only (h), !on);
  for (size_t i = 0; i < sizeof getters / sizeof getters[0]; i++)
    assert_int_equal (getters[i] (h), on);
}

/* One read checked against the server's pattern: proves the client's view
 * of the byte stream after the handshake is right. */
static void
check_one_read (struct nbdaio_handle *h, uint64_t offset)
{
  uint8_t buf[512], want[512];
  memset (buf, 0, sizeof buf);
  int r = nbdaio_pread (h, buf, sizeof buf, offset, 0);
  if (r != 0)
    fprintf (stderr, "  pread: %s (connection: %s)\n", nbdaio_get_error (),
             nbdaio_get_connection_error (h)
             ? nbdaio_get_connection_error (h) : "alive");
  assert_int_equal (r, 0);
  fs_pattern (want, sizeof want, offset);
  assert_memory_equal (buf, want, sizeof buf);
}

/* ---------------------------------------------------------------------- */
/* successful paths */

static void
test_fixed_newstyle_no_zeroes (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_int_equal (nbdaio_is_connected (h), 1);
  assert_string_equal (nbdaio_get_protocol (h), "newstyle-fixed");
  assert_int_equal (nbdaio_get_handshake_flags (h),
                    NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  assert_int_equal (nbdaio_get_transmission_flags (h), c->s->hs.tflags);
  assert_int_equal (nbdaio_get_size (h), 1024 * 1024);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (h), 1);
  assert_non_null (nbdaio_get_meta_context (h));
  assert_string_equal (nbdaio_get_meta_context (h), "base:allocation");
  assert_int_equal (nbdaio_can_block_status (h), 1);
  assert_null (nbdaio_get_export_description (h));
  assert_non_null (nbdaio_get_export_name (h));
  assert_string_equal (nbdaio_get_export_name (h), "");
  assert_true (nbdaio_get_fd (h) >= 0);
  check_one_read (h, 4096);
  ctx_finish (c);

  struct fs *s = c->s;
  assert_int_equal (s->client_flags,
                    NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  assert_true (saw_option (s, NBD_OPT_STRUCTURED_REPLY));
  assert_true (saw_option (s, NBD_OPT_SET_META_CONTEXT));
  assert_true (saw_option (s, NBD_OPT_GO));
  assert_false (saw_option (s, NBD_OPT_EXPORT_NAME));
  assert_string_equal (s->meta_query, "base:allocation");
  assert_string_equal (s->export_name, "");
}

static void
test_fixed_newstyle_with_zeroes (void **state)
{
  struct ctx *c = *state;
  c->s->hs.hflags = NBD_FLAG_FIXED_NEWSTYLE;

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_string_equal (nbdaio_get_protocol (c->h), "newstyle-fixed");
  assert_int_equal (nbdaio_get_handshake_flags (c->h),
                    NBD_FLAG_FIXED_NEWSTYLE);
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  check_one_read (c->h, 0);
  ctx_finish (c);
  /* the client must not claim NO_ZEROES when the server did not offer it */
  assert_int_equal (c->s->client_flags, NBD_FLAG_FIXED_NEWSTYLE);
}

/* GO refused as unsupported: NBD_OPT_EXPORT_NAME, whose reply carries the
 * 124 zeroes unless NO_ZEROES was agreed. */
static void
go_unsup_case (struct ctx *c, uint16_t hflags)
{
  c->s->hs.hflags = hflags;
  c->s->hs.go_unsup = 1;
  c->s->hs.size = 3 * 1024 * 1024;
  c->s->hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH;
  assert_int_equal (nbdaio_set_export_name (c->h, "disk1"), 0);

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_string_equal (nbdaio_get_protocol (c->h), "newstyle-fixed");
  assert_int_equal (nbdaio_get_size (c->h), 3 * 1024 * 1024);
  assert_int_equal (nbdaio_get_transmission_flags (c->h),
                    NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
  assert_int_equal (nbdaio_can_flush (c->h), 1);
  assert_int_equal (nbdaio_can_fua (c->h), 0);
  assert_string_equal (nbdaio_get_export_name (c->h), "disk1");
  check_one_read (c->h, 2 * 1024 * 1024 + 512);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  ctx_finish (c);

  struct fs *s = c->s;
  assert_true (saw_option (s, NBD_OPT_GO));
  assert_true (saw_option (s, NBD_OPT_EXPORT_NAME));
  assert_string_equal (s->export_name, "disk1");
}

static void
test_go_unsup_fallback_no_zeroes (void **state)
{
  go_unsup_case (*state, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

static void
test_go_unsup_fallback_zeroes (void **state)
{
  go_unsup_case (*state, NBD_FLAG_FIXED_NEWSTYLE);
}

static void
test_structured_reply_unsup (void **state)
{
  struct ctx *c = *state;
  c->s->hs.sr = 0;
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;  /* DF needs structured replies */

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  assert_null (nbdaio_get_meta_context (c->h));
  assert_int_equal (nbdaio_can_block_status (c->h), 0);
  assert_int_equal (nbdaio_can_df (c->h), 0);
  /* reads now come back as simple replies */
  check_one_read (c->h, 8192);
  ctx_finish (c);
  assert_true (saw_option (c->s, NBD_OPT_STRUCTURED_REPLY));
  assert_int_equal (c->s->sr_negotiated, 0);
}

static void
test_structured_reply_not_requested (void **state)
{
  struct ctx *c = *state;
  assert_int_equal (nbdaio_set_request_structured_replies (c->h, 0), 0);
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  assert_int_equal (nbdaio_can_block_status (c->h), 0);
  check_one_read (c->h, 0);
  ctx_finish (c);
  assert_false (saw_option (c->s, NBD_OPT_STRUCTURED_REPLY));
  assert_false (saw_option (c->s, NBD_OPT_SET_META_CONTEXT));
}

static void
test_go_infos (void **state)
{
  struct ctx *c = *state;
  struct fs_hs *hs = &c->s->hs;
  hs->name = "served-name";
  hs->desc = "a test export";
  hs->bs_min = 512;
  hs->bs_pref = 4096;
  hs->bs_max = 1024 * 1024;
  hs->size = 64 * 1024 * 1024;
  assert_int_equal (nbdaio_set_export_name (c->h, "wanted"), 0);

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_string_equal (nbdaio_get_export_name (c->h), "served-name");
  assert_non_null (nbdaio_get_export_description (c->h));
  assert_string_equal (nbdaio_get_export_description (c->h),
                       "a test export");
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MINIMUM), 512);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_PREFERRED),
                    4096);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MAXIMUM),
                    1024 * 1024);
  assert_int_equal (nbdaio_get_max_payload (c->h), 1024 * 1024);
  assert_int_equal (nbdaio_get_size (c->h), 64 * 1024 * 1024);
  check_one_read (c->h, 512);
  ctx_finish (c);
  assert_string_equal (c->s->export_name, "wanted");
}

static void
test_no_block_size (void **state)
{
  struct ctx *c = *state;
  c->s->hs.size = 64 * 1024 * 1024;

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MINIMUM), 0);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_PREFERRED), 0);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MAXIMUM), 0);
  /* no advertised maximum: 32 MiB */
  assert_int_equal (nbdaio_get_max_payload (c->h), 32 * 1024 * 1024);
  ctx_finish (c);
}

static void
test_max_payload_not_export_size (void **state)
{
  struct ctx *c = *state;
  c->s->hs.size = 1024 * 1024;

  /* the payload limit is the protocol's, not the export's: requests past
   * the end are refused by the bounds check instead */
  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_max_payload (c->h), 32 * 1024 * 1024);
  ctx_finish (c);
}

static void
test_oldstyle (void **state)
{
  struct ctx *c = *state;
  c->s->hs.size = 2 * 1024 * 1024;
  c->s->hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH
    | NBD_FLAG_SEND_TRIM;

  assert_int_equal (ctx_start_connect (c, script_oldstyle_serve), 0);
  assert_string_equal (nbdaio_get_protocol (c->h), "oldstyle");
  assert_int_equal (nbdaio_get_size (c->h), 2 * 1024 * 1024);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  assert_null (nbdaio_get_meta_context (c->h));
  assert_int_equal (nbdaio_can_flush (c->h), 1);
  assert_int_equal (nbdaio_can_trim (c->h), 1);
  assert_int_equal (nbdaio_can_zero (c->h), 0);
  check_one_read (c->h, 1024 * 1024);
  ctx_finish (c);
}

static void
test_nonfixed_newstyle (void **state)
{
  struct ctx *c = *state;
  c->s->hs.hflags = 0;
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;
  assert_int_equal (nbdaio_set_export_name (c->h, "plain"), 0);

  assert_int_equal (ctx_start_connect (c, script_serve), 0);
  assert_string_equal (nbdaio_get_protocol (c->h), "newstyle");
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  check_one_read (c->h, 0);
  ctx_finish (c);
  /* only NBD_OPT_EXPORT_NAME may be sent to such a server */
  assert_int_equal (c->s->nr_options, 1);
  assert_int_equal (c->s->options[0], NBD_OPT_EXPORT_NAME);
  assert_int_equal (c->s->client_flags, 0);
  assert_string_equal (c->s->export_name, "plain");
}

static void
test_meta_context_none_requested (void **state)
{
  struct ctx *c = *state;
  assert_int_equal (nbdaio_set_meta_context (c->h, NULL), 0);

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_null (nbdaio_get_meta_context (c->h));
  assert_int_equal (nbdaio_can_block_status (c->h), 0);
  ctx_finish (c);
  assert_false (saw_option (c->s, NBD_OPT_SET_META_CONTEXT));
}

static void
test_meta_context_refused (void **state)
{
  struct ctx *c = *state;
  c->s->hs.meta = NULL;         /* bare ACK: no context selected */

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_null (nbdaio_get_meta_context (c->h));
  assert_int_equal (nbdaio_can_block_status (c->h), 0);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* getters */

static void
test_getters_all_flags (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;
  uint16_t all = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA
    | NBD_FLAG_ROTATIONAL | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES
    | NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE
    | NBD_FLAG_SEND_FAST_ZERO;
  c->s->hs.tflags = all;
  c->s->hs.size = UINT64_C (5) * 1024 * 1024 * 1024;

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_transmission_flags (h), all);
  assert_true (nbdaio_get_size (h) == INT64_C (5) * 1024 * 1024 * 1024);
  check_capabilities (h, 1);
  ctx_finish (c);
}

static void
test_getters_read_only_minimal (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;
  c->s->hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY;
  c->s->hs.meta = NULL;

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_transmission_flags (h),
                    NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
  check_capabilities (h, 0);
  ctx_finish (c);
}

static void
test_getters_unconnected (void **state)
{
  struct ctx *c = *state;
  struct nbdaio_handle *h = c->h;

  assert_int_equal (nbdaio_is_connected (h), 0);
  assert_int_equal (nbdaio_get_fd (h), -1);
  assert_int_equal (nbdaio_get_size (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_non_null (nbdaio_get_error ());
  assert_int_equal (nbdaio_can_flush (h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_is_read_only (h), -1);
  assert_int_equal (nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM), -1);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (h), -1);
  assert_null (nbdaio_get_connection_error (h));
}

static void
test_settings_after_connect (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_set_export_name (c->h, "late"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_request_structured_replies (c->h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_meta_context (c->h, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* a handle connects once */
  assert_int_equal (nbdaio_connect_socket (c->h, -1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* failures: option errors and rule violations.  Each case runs its own
 * server and handle and cleans up before asserting. */

struct hook_arg {
  fs_opt_hook hook;
  fs_script_fn raw;             /* or a whole script of its own */
};

static int
script_with_hook (struct fs *s)
{
  const struct hook_arg *a = s->arg;
  if (a->raw)
    return a->raw (s);
  int r = fs_handshake_hook (s, a->hook);
  return r < 0 ? -1 : 0;
}

struct outcome {
  int rc;
  int err;
  char msg[1024];
  const char *violation;        /* nbdaio_get_violation after the connect */
  int connected;
};

static void
run_failing (const struct fs_hs *hs, fs_opt_hook hook, fs_script_fn raw,
             const char *export_name, struct outcome *o)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct hook_arg a = { .hook = hook, .raw = raw };

  assert_non_null (s);
  assert_non_null (h);
  if (hs)
    s->hs = *hs;
  if (export_name)
    assert_int_equal (nbdaio_set_export_name (h, export_name), 0);
  assert_true (fs_start (s, script_with_hook, &a) >= 0);
  o->rc = test_connect (h, s);
  o->err = nbdaio_get_errno ();
  snprintf (o->msg, sizeof o->msg, "%s",
            nbdaio_get_error () ? nbdaio_get_error () : "(null)");
  o->violation = nbdaio_get_violation ();
  o->connected = nbdaio_is_connected (h);
  /* the dead handle names the same rule as the failed connect */
  if (o->violation)
    assert_string_equal (nbdaio_get_connection_violation (h), o->violation);
  else
    assert_null (nbdaio_get_connection_violation (h));
  if (o->rc == -1) {
    /* a failed handle refuses commands */
    char buf[512];
    assert_int_equal (nbdaio_aio_pread (h, buf, sizeof buf, 0,
                                        NBDAIO_NULL_COMPLETION, 0), -1);
  }
  nbdaio_close (h);
  fs_free (s);
}

static void
expect_violation (const struct fs_hs *hs, fs_opt_hook hook,
                  fs_script_fn raw, const char *tag)
{
  struct outcome o;
  char want[64];

  run_failing (hs, hook, raw, NULL, &o);
  snprintf (want, sizeof want, "[%s]", tag);
  if (o.rc != -1 || !strstr (o.msg, want))
    fprintf (stderr, "expected a %s violation, got rc=%d error=\"%s\"\n",
             want, o.rc, o.msg);
  assert_int_equal (o.rc, -1);
  assert_int_equal (o.connected, 0);
  assert_true (o.err != 0);
  assert_non_null (strstr (o.msg, want));
  assert_string_equal (o.violation ? o.violation : "(null)", tag);
}

static struct fs_hs
hs_default (void)
{
  struct fs_hs hs;
  fs_hs_default (&hs);
  return hs;
}

/* option errors */

static int
hook_go_unknown (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  fs_send_opt_reply (s, opt, NBD_REP_ERR_UNKNOWN, "nope", 4);
  return 2;
}

static int
hook_go_tls (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  fs_send_opt_reply (s, opt, NBD_REP_ERR_TLS_REQD, NULL, 0);
  return 2;
}

static int
hook_go_policy (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  fs_send_opt_reply (s, opt, NBD_REP_ERR_POLICY, NULL, 0);
  return 2;
}

static void
test_go_err_unknown (void **state)
{
  (void) state;
  struct outcome o;
  run_failing (NULL, hook_go_unknown, NULL, "nosuchexport", &o);
  fprintf (stderr, "  ERR_UNKNOWN -> \"%s\"\n", o.msg);
  assert_int_equal (o.rc, -1);
  assert_true (contains (o.msg, "unknown export")
               || contains (o.msg, "nosuchexport"));
}

static void
test_go_err_tls_reqd (void **state)
{
  (void) state;
  struct outcome o;
  run_failing (NULL, hook_go_tls, NULL, NULL, &o);
  fprintf (stderr, "  ERR_TLS_REQD -> \"%s\"\n", o.msg);
  assert_int_equal (o.rc, -1);
  assert_non_null (strstr (o.msg, "TLS"));
}

static void
test_go_err_policy (void **state)
{
  (void) state;
  struct outcome o;
  run_failing (NULL, hook_go_policy, NULL, NULL, &o);
  fprintf (stderr, "  ERR_POLICY -> \"%s\"\n", o.msg);
  assert_int_equal (o.rc, -1);
  assert_true (contains (o.msg, "polic") || contains (o.msg, "denied")
               || contains (o.msg, "refused") || contains (o.msg, "permi")
               || contains (o.msg, "forbid"));
}

static int
script_silent (struct fs *s)
{
  /* never greet; just wait (bounded) for the client to give up */
  fs_wait_eof (s);
  return 0;
}

static void
test_connect_timeout (void **state)
{
  (void) state;
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct timespec t0, t1;

  assert_int_equal (nbdaio_set_connect_timeout (h, 300), 0);
  assert_true (fs_start (s, script_silent, NULL) >= 0);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  int rc = test_connect (h, s);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  int err = nbdaio_get_errno ();
  nbdaio_close (h);
  fs_free (s);
  double dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_int_equal (rc, -1);
  assert_true (err != 0);
  assert_true (dt >= 0.25 && dt < 3.0);
}

/* greeting violations */

static int
raw_bad_magic1 (struct fs *s)
{
  return fs_send_greeting_magic (s, UINT64_C (0x4e42444d41474958), /* NBDMAGIX */
                                 NBD_MAGIC_OPT, NBD_FLAG_FIXED_NEWSTYLE);
}

static int
raw_bad_magic2 (struct fs *s)
{
  return fs_send_greeting_magic (s, NBD_MAGIC_INIT,
                                 UINT64_C (0x4948415645505054),
                                 NBD_FLAG_FIXED_NEWSTYLE);
}

static void
test_hs_magic (void **state)
{
  (void) state;
  expect_violation (NULL, NULL, raw_bad_magic1, "hs-magic");
  expect_violation (NULL, NULL, raw_bad_magic2, "hs-magic");
}

static void
test_hs_flags (void **state)
{
  (void) state;
  struct fs_hs hs = hs_default ();
  hs.hflags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES | (1u << 5);
  expect_violation (&hs, NULL, NULL, "hs-flags");
}

/* option reply violations */

static int
hook_bad_reply_magic (struct fs *s, uint32_t opt, const uint8_t *d,
                      uint32_t l)
{
  (void) d; (void) l;
  fs_send_opt_reply_magic (s, UINT64_C (0x0003e889045565aa), opt,
                           NBD_REP_ACK, NULL, 0);
  return 2;
}

static int
hook_bad_echo (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  uint32_t other = opt == NBD_OPT_LIST ? NBD_OPT_INFO : NBD_OPT_LIST;
  fs_send_opt_reply (s, other, NBD_REP_ACK, NULL, 0);
  return 2;
}

static int
hook_info_to_sr (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_STRUCTURED_REPLY)
    return 0;
  fs_send_info_export (s, opt, 1024 * 1024, NBD_FLAG_HAS_FLAGS);
  return 2;
}

static int
hook_meta_to_go (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  fs_send_meta_context (s, opt, 1, "base:allocation");
  return 2;
}

static int
hook_server_to_sr (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_STRUCTURED_REPLY)
    return 0;
  uint8_t b[8] = { 0, 0, 0, 4, 'n', 'a', 'm', 'e' };
  fs_send_opt_reply (s, opt, NBD_REP_SERVER, b, sizeof b);
  return 2;
}

static void
test_opt_reply_magic (void **state)
{
  (void) state;
  expect_violation (NULL, hook_bad_reply_magic, NULL, "opt-reply-magic");
}

static void
test_opt_reply_echo (void **state)
{
  (void) state;
  expect_violation (NULL, hook_bad_echo, NULL, "opt-reply-echo");
}

static void
test_opt_reply_type (void **state)
{
  (void) state;
  expect_violation (NULL, hook_info_to_sr, NULL, "opt-reply-type");
  expect_violation (NULL, hook_meta_to_go, NULL, "opt-reply-type");
  expect_violation (NULL, hook_server_to_sr, NULL, "opt-reply-type");
}

/* info violations */

static int
hook_export_13 (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  uint8_t b[13] = { 0 };
  wire_put16 (b, NBD_INFO_EXPORT);
  wire_put64 (b + 2, 1024 * 1024);
  wire_put16 (b + 10, NBD_FLAG_HAS_FLAGS);
  fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
  return 2;
}

static int
hook_export_11 (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  uint8_t b[11] = { 0 };
  wire_put16 (b, NBD_INFO_EXPORT);
  wire_put64 (b + 2, 1024 * 1024);
  fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
  return 2;
}

static int
hook_block_size_15 (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  uint8_t b[15] = { 0 };
  wire_put16 (b, NBD_INFO_BLOCK_SIZE);
  wire_put32 (b + 2, 512);
  wire_put32 (b + 6, 4096);
  wire_put32 (b + 10, 65536);
  fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
  return 2;
}

static int
hook_info_1 (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  uint8_t b[1] = { 0 };
  fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
  return 2;
}

static int
hook_ack_without_export (struct fs *s, uint32_t opt, const uint8_t *d,
                         uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  fs_send_info_name (s, opt, "x");
  fs_send_ack (s, opt);
  return 2;
}

static void
test_info_length (void **state)
{
  (void) state;
  expect_violation (NULL, hook_export_13, NULL, "info-length");
  expect_violation (NULL, hook_export_11, NULL, "info-length");
  expect_violation (NULL, hook_block_size_15, NULL, "info-length");
  expect_violation (NULL, hook_info_1, NULL, "info-length");
}

static void
test_info_missing_export (void **state)
{
  (void) state;
  expect_violation (NULL, hook_ack_without_export, NULL,
                    "info-missing-export");
}

/* transmission flag violations */

static void
test_tflags_has_flags (void **state)
{
  (void) state;
  struct fs_hs hs = hs_default ();
  hs.tflags = NBD_FLAG_SEND_FLUSH;
  expect_violation (&hs, NULL, NULL, "tflags-has-flags");
  /* the same through NBD_OPT_EXPORT_NAME */
  hs.go_unsup = 1;
  expect_violation (&hs, NULL, NULL, "tflags-has-flags");
}

static void
test_tflags_df (void **state)
{
  (void) state;
  struct fs_hs hs = hs_default ();
  hs.sr = 0;
  hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_DF;
  expect_violation (&hs, NULL, NULL, "tflags-df");
}

static void
test_tflags_fast_zero (void **state)
{
  (void) state;
  struct fs_hs hs = hs_default ();
  hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FAST_ZERO;
  expect_violation (&hs, NULL, NULL, "tflags-fast-zero");
}

static void
block_size_case (uint32_t min, uint32_t pref, uint32_t max)
{
  struct fs_hs hs = hs_default ();
  hs.size = 64 * 1024 * 1024;
  hs.bs_min = min;
  hs.bs_pref = pref;
  hs.bs_max = max;
  fprintf (stderr, "  block sizes %u/%u/%u\n", min, pref, max);
  expect_violation (&hs, NULL, NULL, "block-size");
}

static void
test_block_size (void **state)
{
  (void) state;
  block_size_case (3, 4096, 1024 * 1024);           /* min not 2^n */
  block_size_case (128 * 1024, 128 * 1024, 1024 * 1024); /* min > 64K */
  block_size_case (1, 3000, 1024 * 1024);           /* pref not 2^n */
  block_size_case (1, 256, 1024 * 1024);            /* pref < 512 */
  block_size_case (4096, 2048, 1024 * 1024);        /* pref < min */
  block_size_case (512, 4096, 2048);                /* max < pref */
}

static void
test_block_size_valid_edges (void **state)
{
  struct ctx *c = *state;
  /* the smallest legal set, maximum not a power of two */
  c->s->hs.bs_min = 1;
  c->s->hs.bs_pref = 512;
  c->s->hs.bs_max = 512 * 3;
  assert_int_equal (ctx_start_connect (c, script_handshake_only), 0);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MINIMUM), 1);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MAXIMUM), 1536);
  ctx_finish (c);
}

/* meta context violations */

static int
hook_wrong_context (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_SET_META_CONTEXT)
    return 0;
  fs_send_meta_context (s, opt, 5, "qemu:dirty-bitmap:other");
  fs_send_ack (s, opt);
  return 2;
}

static void
test_meta_context_name (void **state)
{
  (void) state;
  expect_violation (NULL, hook_wrong_context, NULL, "meta-context-name");
}


/* ---------------------------------------------------------------------- */
/* more successful paths */

/* The whole handshake delivered one byte at a time. */
static int
script_trickle_hs (struct fs *s)
{
  s->trickle = 1;
  if (fs_default_handshake (s) != 0)
    return -1;
  s->trickle = 0;
  return fs_serve_memory (s, 1);
}

static void
test_trickled_handshake (void **state)
{
  struct ctx *c = *state;
  c->s->hs.name = "slow";
  c->s->hs.desc = "one byte at a time";
  c->s->hs.bs_min = 512;
  c->s->hs.bs_pref = 4096;
  c->s->hs.bs_max = 65536;

  assert_int_equal (ctx_start_connect (c, script_trickle_hs), 0);
  assert_string_equal (nbdaio_get_export_name (c->h), "slow");
  assert_string_equal (nbdaio_get_export_description (c->h),
                       "one byte at a time");
  assert_string_equal (nbdaio_get_meta_context (c->h), "base:allocation");
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MAXIMUM), 65536);
  check_one_read (c->h, 4096);
  ctx_finish (c);
}

/* Unknown information types are ignored (the spec reserves them). */
static int
hook_unknown_info (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_GO)
    return 0;
  uint8_t b[7] = { 0 };
  wire_put16 (b, 99);
  memcpy (b + 2, "hello", 5);
  if (fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b) == -1)
    return -1;
  if (fs_send_info_export (s, opt, s->hs.size, s->hs.tflags) == -1
      || fs_send_ack (s, opt) == -1)
    return -1;
  return 2;
}

static int
script_unknown_info (struct fs *s)
{
  int r = fs_handshake_hook (s, hook_unknown_info);
  if (r != 1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_unknown_info_ignored (void **state)
{
  struct ctx *c = *state;
  assert_int_equal (ctx_start_connect (c, script_unknown_info), 0);
  assert_int_equal (nbdaio_get_size (c->h), 1024 * 1024);
  check_one_read (c->h, 0);
  ctx_finish (c);
}

/* SET_META_CONTEXT refused: go on without block status. */
static int
hook_meta_unsup (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_SET_META_CONTEXT)
    return 0;
  return fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0) == 0 ? 1 : -1;
}

static int
script_meta_unsup (struct fs *s)
{
  return fs_handshake_hook (s, hook_meta_unsup) == 0 ? 0 : -1;
}

static void
test_meta_context_unsup (void **state)
{
  struct ctx *c = *state;
  assert_int_equal (ctx_start_connect (c, script_meta_unsup), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_null (nbdaio_get_meta_context (c->h));
  assert_int_equal (nbdaio_can_block_status (c->h), 0);
  ctx_finish (c);
}

/* The server hangs up instead of answering NBD_OPT_EXPORT_NAME (how old
 * servers say "unknown export"), or in the middle of the greeting. */
static int
hook_eof_on_export_name (struct fs *s, uint32_t opt, const uint8_t *d,
                         uint32_t l)
{
  (void) s; (void) d; (void) l;
  return opt == NBD_OPT_EXPORT_NAME ? 2 : 0;
}

static int
raw_half_greeting (struct fs *s)
{
  return fs_write (s, "NBDMAGICIHAV", 12);
}

static void
test_eof_during_handshake (void **state)
{
  (void) state;
  struct outcome o;
  struct fs_hs hs = hs_default ();

  hs.go_unsup = 1;
  run_failing (&hs, hook_eof_on_export_name, NULL, "gone", &o);
  fprintf (stderr, "  EOF after EXPORT_NAME -> \"%s\"\n", o.msg);
  assert_int_equal (o.rc, -1);
  assert_true (strlen (o.msg) > 0);
  assert_true (contains (o.msg, "gone") || contains (o.msg, "export")
               || contains (o.msg, "closed") || contains (o.msg, "EOF"));

  run_failing (NULL, NULL, raw_half_greeting, NULL, &o);
  fprintf (stderr, "  EOF in greeting -> \"%s\"\n", o.msg);
  assert_int_equal (o.rc, -1);
  assert_int_equal (o.connected, 0);
}

int
main (void)
{
#define T(f) CTX_TEST (f)
  const struct CMUnitTest tests[] = {
    T (test_fixed_newstyle_no_zeroes),
    T (test_fixed_newstyle_with_zeroes),
    T (test_go_unsup_fallback_no_zeroes),
    T (test_go_unsup_fallback_zeroes),
    T (test_structured_reply_unsup),
    T (test_structured_reply_not_requested),
    T (test_go_infos),
    T (test_no_block_size),
    T (test_max_payload_not_export_size),
    T (test_oldstyle),
    T (test_nonfixed_newstyle),
    T (test_meta_context_none_requested),
    T (test_meta_context_refused),
    T (test_getters_all_flags),
    T (test_getters_read_only_minimal),
    T (test_getters_unconnected),
    T (test_settings_after_connect),
    T (test_block_size_valid_edges),
    T (test_trickled_handshake),
    T (test_unknown_info_ignored),
    T (test_meta_context_unsup),
    cmocka_unit_test (test_eof_during_handshake),
    cmocka_unit_test (test_go_err_unknown),
    cmocka_unit_test (test_go_err_tls_reqd),
    cmocka_unit_test (test_go_err_policy),
    cmocka_unit_test (test_connect_timeout),
    cmocka_unit_test (test_hs_magic),
    cmocka_unit_test (test_hs_flags),
    cmocka_unit_test (test_opt_reply_magic),
    cmocka_unit_test (test_opt_reply_echo),
    cmocka_unit_test (test_opt_reply_type),
    cmocka_unit_test (test_info_length),
    cmocka_unit_test (test_info_missing_export),
    cmocka_unit_test (test_tflags_has_flags),
    cmocka_unit_test (test_tflags_df),
    cmocka_unit_test (test_tflags_fast_zero),
    cmocka_unit_test (test_block_size),
    cmocka_unit_test (test_meta_context_name),
  };
#undef T
  return cmocka_run_group_tests (tests, NULL, NULL);
}
