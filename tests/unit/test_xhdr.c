/* test_xhdr.c - extended headers (NBD_OPT_EXTENDED_HEADERS) against the
 * scripted server: negotiation (asked first, ACK implies structured
 * replies, a refusal falls back to NBD_OPT_STRUCTURED_REPLY, the setting
 * turns it off, NBD_REP_ERR_EXT_HEADER_REQD explained), 32-byte requests
 * for every command (the server checks magic and NBD_CMD_FLAG_PAYLOAD_LEN),
 * NBD_REPLY_TYPE_BLOCK_STATUS_EXT, and each rule the extension sets on
 * replies broken once: the connection ends naming the rule's tag and the
 * command completes once with EPROTO. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

/* Start the script with arg (ctx_start passes none) and connect. */
static int
start_with (struct ctx *c, fs_script_fn fn, const void *arg)
{
  assert_true (fs_start (c->s, fn, (void *) arg) >= 0);
  return test_connect (c->h, c->s);
}

/* ---------------------------------------------------------------------- */
/* negotiation and a whole exchange */

/* Every command once on an extended connection, checked by reading back
 * and by the wire byte count: 32 bytes a request. */
static void
test_roundtrip (void **state)
{
  struct ctx *c = *state;
  static uint8_t wbuf[64 * 1024], rbuf[64 * 1024];
  struct extent_rec ex = { 0 };
  struct nbdaio_stats st;

  c->s->hs.ext = 1;
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 1);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_true (saw_option (c->s, NBD_OPT_EXTENDED_HEADERS));
  assert_false (saw_option (c->s, NBD_OPT_STRUCTURED_REPLY));
  assert_int_equal (c->s->options[0], NBD_OPT_EXTENDED_HEADERS);

  fs_pattern (wbuf, sizeof wbuf, 12345);
  assert_int_equal (nbdaio_pwrite (c->h, wbuf, sizeof wbuf, 4096, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, rbuf, sizeof rbuf, 4096, 0), 0);
  assert_memory_equal (rbuf, wbuf, sizeof wbuf);
  assert_int_equal (nbdaio_zero (c->h, 4096, 8192, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, rbuf, 4096, 8192, 0), 0);
  for (size_t i = 0; i < 4096; i++)
    assert_int_equal (rbuf[i], 0);
  assert_int_equal (nbdaio_trim (c->h, 4096, 0, 0), 0);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  assert_int_equal (nbdaio_cache (c->h, 4096, 0, 0), 0);
  assert_int_equal (nbdaio_block_status (c->h, 65536, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.calls, 1);
  assert_string_equal (ex.ctx, "base:allocation");
  assert_int_equal (ex.nr_entries, 2);
  assert_int_equal (ex.entries[0], 65536);
  assert_int_equal (ex.entries[1], 0);

  memset (&st, 0, sizeof st);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  /* 8 requests of 32 bytes and one 64 KiB payload */
  assert_int_equal (st.bytes_sent, 8 * NBD_EXT_REQUEST_LEN + sizeof wbuf);
  assert_int_equal (st.simple_replies, 0);
  ctx_finish (c);               /* the server read NBD_CMD_DISC (32 bytes) */
}

/* A server without extended headers: NBD_OPT_STRUCTURED_REPLY follows the
 * refusal and the requests are the compact 28 bytes. */
static void
test_refused_fallback (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[4096];
  struct nbdaio_stats st;

  ctx_start (c, script_serve);  /* hs.ext 0: ERR_UNSUP */
  assert_int_equal (c->s->options[0], NBD_OPT_EXTENDED_HEADERS);
  assert_int_equal (c->s->options[1], NBD_OPT_STRUCTURED_REPLY);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 0);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 1);
  assert_int_equal (nbdaio_pwrite (c->h, buf, sizeof buf, 0, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 0, 0), 0);
  memset (&st, 0, sizeof st);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  assert_int_equal (st.bytes_sent, 2 * NBD_REQUEST_LEN + sizeof buf);
  ctx_finish (c);
}

/* extended-headers off (by name): never asked, even of a server that
 * offers them; the getter says -1 before a connection. */
static void
test_setting_off (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[512];

  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), -1);
  assert_int_equal (nbdaio_set_option (c->h, "extended-headers", "off"), 0);
  assert_int_equal (nbdaio_set_option (c->h, "extended-headers", "maybe"),
                    -1);
  c->s->hs.ext = 1;
  ctx_start (c, script_serve);
  assert_false (saw_option (c->s, NBD_OPT_EXTENDED_HEADERS));
  assert_int_equal (c->s->options[0], NBD_OPT_STRUCTURED_REPLY);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 0);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 0, 0), 0);
  assert_int_equal (nbdaio_set_request_extended_headers (c->h, 1), -1);
  ctx_finish (c);
}

/* With structured replies off, extended headers are not asked either. */
static void
test_structured_off (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (nbdaio_set_request_structured_replies (c->h, 0), 0);
  c->s->hs.ext = 1;
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;
  ctx_start (c, script_handshake_only);
  assert_false (saw_option (c->s, NBD_OPT_EXTENDED_HEADERS));
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 0);
  ctx_finish (c);
}

/* GO answered with `type` (after the extended headers option as the
 * server's configuration says). */
static int
go_refuse_hook (struct fs *s, uint32_t opt, const uint8_t *data, uint32_t len)
{
  (void) data;
  (void) len;
  if (opt != NBD_OPT_GO)
    return 0;
  if (fs_send_opt_reply (s, opt, (uint32_t) (uintptr_t) s->arg, NULL, 0) == -1)
    return -1;
  return 2;
}

static int
script_go_refuse (struct fs *s)
{
  return fs_handshake_hook (s, go_refuse_hook) == 1 ? 0 : -1;
}

/* A server that requires extended headers, the setting off: the refusal
 * names the reply and the settings to turn on. */
static void
test_ext_header_reqd (void **state)
{
  struct ctx *c = *state;
  const char *msg;

  assert_int_equal (nbdaio_set_request_extended_headers (c->h, 0), 0);
  assert_int_equal (start_with (c, script_go_refuse, (void *) (uintptr_t)
                                NBD_REP_ERR_EXT_HEADER_REQD), -1);
  msg = nbdaio_get_error ();
  fprintf (stderr, "  %s\n", msg);
  assert_true (contains (msg, "NBD_REP_ERR_EXT_HEADER_REQD"));
  assert_true (contains (msg, "extended-headers"));
  assert_int_equal (fs_join (c->s), 0);
}

/* Extended headers acknowledged, then GO refused as if they were not
 * (ERR_EXT_HEADER_REQD) or GO unknown (ERR_UNSUP: the server MUST support
 * it, and NBD_OPT_EXPORT_NAME is not allowed any more): [ext-go]. */
static void
test_ext_go (void **state)
{
  static const uint32_t types[] = {
    NBD_REP_ERR_EXT_HEADER_REQD, NBD_REP_ERR_UNSUP
  };
  (void) state;

  for (size_t i = 0; i < 2; i++) {
    struct fs *s = fs_new ();
    struct nbdaio_handle *h = test_handle ();
    assert_non_null (s);
    assert_non_null (h);
    s->hs.ext = 1;
    assert_true (fs_start (s, script_go_refuse,
                           (void *) (uintptr_t) types[i]) >= 0);
    assert_int_equal (test_connect (h, s), -1);
    fprintf (stderr, "  %s\n", nbdaio_get_error ());
    assert_true (contains (nbdaio_get_error (), "[ext-go]"));
    assert_int_equal (nbdaio_get_errno (), EPROTO);
    nbdaio_close (h);
    fs_free (s);
  }
}

/* ---------------------------------------------------------------------- */
/* block status with 64-bit extents */

struct bs_case {
  uint64_t extents[4];          /* (length, status) pairs */
  size_t n;
};

static int
script_bs_ext (struct fs *s)
{
  const struct bs_case *b = s->arg;
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  if (r.type != NBD_CMD_BLOCK_STATUS || r.length != 65536)
    return fs_fail (s, "expected a block status of 65536 bytes");
  return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie,
                               s->hs.meta_id, b->extents, b->n,
                               (uint32_t) b->n);
}

/* An extent longer than 4 GiB (the last one may pass the request's end)
 * reaches the 32-bit callback cut to UINT32_MAX. */
static void
test_bs_ext_long_extent (void **state)
{
  struct ctx *c = *state;
  static const struct bs_case b = {
    { 4096, 0, (UINT64_C (1) << 33), 3 }, 2
  };
  struct extent_rec ex = { 0 };

  c->s->hs.ext = 1;
  assert_int_equal (start_with (c, script_bs_ext, &b), 0);
  assert_int_equal (nbdaio_block_status (c->h, 65536, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.nr_entries, 4);
  assert_int_equal (ex.entries[0], 4096);
  assert_int_equal (ex.entries[1], 0);
  assert_int_equal (ex.entries[2], UINT32_MAX);
  assert_int_equal (ex.entries[3], 3);
  ctx_finish (c);
}

/* A status above 32 bits in a context other than base: is legal but does
 * not fit the 32-bit callback: the command fails with EOVERFLOW, the
 * connection lives on. */
static void
test_bs_ext_status_overflow (void **state)
{
  struct ctx *c = *state;
  static const struct bs_case b = { { 65536, UINT64_C (1) << 40 }, 1 };
  struct extent_rec ex = { 0 };

  c->s->hs.ext = 1;
  c->s->hs.meta = "qemu:dirty-bitmap:b";
  assert_int_equal (nbdaio_set_meta_context (c->h, "qemu:dirty-bitmap:b"), 0);
  assert_int_equal (start_with (c, script_bs_ext, &b), 0);
  assert_int_equal (nbdaio_block_status (c->h, 65536, 0,
                                         extent_rec_callback (&ex), 0), -1);
  assert_int_equal (nbdaio_get_errno (), EOVERFLOW);
  assert_int_equal (ex.calls, 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* several meta contexts, 64-bit extents */

#define BITMAP "qemu:dirty-bitmap:b"
#define BITMAP_ID 9

/* one block status request: a chunk per context (the bitmap's first, then
 * base:allocation with DONE); with extended headers 64-bit extents, the
 * bitmap's status above 32 bits and its extent above 4 GiB */
static int
script_two_contexts (struct fs *s)
{
  struct fs_req r;
  uint64_t bm[4] = { 4096, UINT64_C (1) << 40, UINT64_C (1) << 33, 0 };
  uint64_t al[2] = { 65536, 3 };
  uint32_t al32[2] = { 65536, 3 }, bm32[4] = { 4096, 1, 61440, 0 };

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  if (s->ext_negotiated)
    return fs_send_chunk_bs_ext (s, 0, r.cookie, BITMAP_ID, bm, 2, 2) ||
      fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                            al, 1, 1);
  return fs_send_chunk_bs (s, 0, r.cookie, BITMAP_ID, bm32, 2) ||
    fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                      al32, 1);
}

struct ext64_rec {
  int calls, frees;
  char ctx[2][64];
  size_t n[2];
  nbdaio_extent64 e[2][4];
};

static int
ext64_cb (void *ud, const char *ctx, uint64_t offset, nbdaio_extent64 *e,
          size_t n, int *error)
{
  struct ext64_rec *r = ud;
  (void) error;
  if (r->calls < 2 && offset == 0 && n <= 4) {
    snprintf (r->ctx[r->calls], sizeof r->ctx[0], "%s", ctx);
    r->n[r->calls] = n;
    memcpy (r->e[r->calls], e, n * sizeof *e);
  }
  r->calls++;
  return 0;
}

static void
ext64_free (void *ud)
{
  ((struct ext64_rec *) ud)->frees++;
}

/* two contexts asked and selected, extended headers: the 64-bit callback
 * gets each chunk as sent, named by its context */
static void
test_two_contexts_64 (void **state)
{
  struct ctx *c = *state;
  struct ext64_rec rec = { 0 };
  struct cbc cb = { .ret = 1 };

  c->s->hs.ext = 1;
  c->s->hs.meta2 = BITMAP;
  c->s->hs.meta2_id = BITMAP_ID;
  assert_int_equal (nbdaio_add_meta_context (c->h, BITMAP), 0);
  assert_int_equal (start_with (c, script_two_contexts, NULL), 0);
  assert_int_equal (nbdaio_get_nr_meta_contexts (c->h), 2);
  assert_int_equal (nbdaio_can_meta_context (c->h, BITMAP), 1);
  assert_int_equal (nbdaio_can_meta_context (c->h, "base:allocation"), 1);
  assert_int_equal (nbdaio_can_meta_context (c->h, "qemu:allocation-depth"),
                    0);
  assert_string_equal (nbdaio_get_meta_context (c->h), "base:allocation");
  assert_true (nbdaio_aio_block_status_64 (
                 c->h, 65536, 0,
                 (nbdaio_extent64_callback) { ext64_cb, &rec, ext64_free },
                 cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (rec.calls, 2);
  assert_int_equal (rec.frees, 1);
  assert_string_equal (rec.ctx[0], BITMAP);
  assert_int_equal (rec.n[0], 2);
  assert_true (rec.e[0][0].length == 4096 &&
               rec.e[0][0].flags == UINT64_C (1) << 40);
  assert_true (rec.e[0][1].length == UINT64_C (1) << 33);
  assert_string_equal (rec.ctx[1], "base:allocation");
  assert_int_equal (rec.n[1], 1);
  assert_true (rec.e[1][0].length == 65536 && rec.e[1][0].flags == 3);
  ctx_finish (c);
}

/* the same with compact headers and the 32-bit callback: both contexts,
 * each under its own name */
static void
test_two_contexts_compact (void **state)
{
  struct ctx *c = *state;
  struct extent_rec ex = { 0 };

  c->s->hs.meta2 = BITMAP;
  c->s->hs.meta2_id = BITMAP_ID;
  assert_int_equal (nbdaio_set_meta_context (c->h, BITMAP), 0);
  assert_int_equal (nbdaio_add_meta_context (c->h, "base:allocation"), 0);
  assert_int_equal (start_with (c, script_two_contexts, NULL), 0);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 0);
  assert_int_equal (nbdaio_get_nr_meta_contexts (c->h), 2);
  assert_int_equal (nbdaio_block_status (c->h, 65536, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.calls, 2);
  /* the recorder keeps the last chunk: base:allocation's */
  assert_string_equal (ex.ctx, "base:allocation");
  assert_int_equal (ex.nr_entries, 2);
  assert_int_equal (ex.entries[0], 65536);
  ctx_finish (c);
}

/* one chunk where two contexts were selected: [bs-extent] naming the
 * context without one */
static int
script_one_of_two (struct fs *s)
{
  struct fs_req r;
  uint64_t al[2] = { 65536, 0 };

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                        al, 1, 1);
  return 0;
}

static void
test_context_missing (void **state)
{
  struct ctx *c = *state;
  struct extent_rec ex = { 0 };
  const char *msg;

  c->s->hs.ext = 1;
  c->s->hs.meta2 = BITMAP;
  c->s->hs.meta2_id = BITMAP_ID;
  assert_int_equal (nbdaio_add_meta_context (c->h, BITMAP), 0);
  assert_int_equal (start_with (c, script_one_of_two, NULL), 0);
  assert_int_equal (nbdaio_block_status (c->h, 65536, 0,
                                         extent_rec_callback (&ex), 0), -1);
  msg = nbdaio_get_connection_error (c->h);
  fprintf (stderr, "  %s\n", msg ? msg : "(null)");
  assert_true (contains (msg, "[bs-extent]"));
  assert_true (contains (msg, BITMAP));
}

/* the list's rules: no duplicates, at most NBDAIO_MAX_META_CONTEXTS, a
 * NULL or empty name refused; set replaces the list */
static void
test_add_meta_context_rules (void **state)
{
  struct ctx *c = *state;
  char name[32];

  assert_int_equal (nbdaio_add_meta_context (c->h, "base:allocation"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_add_meta_context (c->h, NULL), -1);
  assert_int_equal (nbdaio_add_meta_context (c->h, ""), -1);
  for (int i = 1; i < NBDAIO_MAX_META_CONTEXTS; i++) {
    snprintf (name, sizeof name, "qemu:dirty-bitmap:%d", i);
    assert_int_equal (nbdaio_add_meta_context (c->h, name), 0);
  }
  assert_int_equal (nbdaio_add_meta_context (c->h, "qemu:one-too-many"), -1);
  assert_int_equal (nbdaio_get_errno (), E2BIG);
  assert_int_equal (nbdaio_add_meta_context (c->h, "qemu:dirty-bitmap:3"),
                    -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* set replaces the list: one context again, room for more */
  assert_int_equal (nbdaio_set_meta_context (c->h, "base:allocation"), 0);
  assert_int_equal (nbdaio_add_meta_context (c->h, "qemu:one-too-many"), 0);
  assert_int_equal (nbdaio_set_meta_context (c->h, NULL), 0);
  assert_int_equal (nbdaio_add_meta_context (c->h, "base:allocation"), 0);
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_get_nr_meta_contexts (c->h), 1);
  assert_int_equal (nbdaio_add_meta_context (c->h, "x:y"), -1);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* 64-bit effect lengths: with extended headers a trim, zero, cache or
 * block status above 4 GiB is one request */

#define BIG (UINT64_C (5) << 30)        /* 5 GiB */

/* Requests of BIG bytes at 0, each as one request: trim and zero
 * answered with NONE, block status with one 64-bit extent of BIG (then,
 * in a second block status, an extent above 4 GiB between two short
 * ones); the cache between them in pieces of the maximum payload (1 GiB
 * here: servers read for a cache). */
static const uint16_t big_want[] = {
  NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES, NBD_CMD_CACHE, NBD_CMD_CACHE,
  NBD_CMD_CACHE, NBD_CMD_CACHE, NBD_CMD_CACHE, NBD_CMD_BLOCK_STATUS,
  NBD_CMD_BLOCK_STATUS
};

static int
script_big (struct fs *s)
{
  uint64_t one[2] = { BIG, 0 }, three[6] = { 4096, 0, BIG, 3, 4096, 0 };
  uint64_t cache_at = 0;
  struct fs_req r;

  if (fs_default_handshake (s) != 0)
    return -1;
  for (size_t i = 0; i < sizeof big_want / sizeof big_want[0]; i++) {
    int cache = big_want[i] == NBD_CMD_CACHE;
    if (fs_read_request (s, &r) == -1)
      return -1;
    free (r.data);
    if (r.type != big_want[i] || r.length != (cache ? 1 << 30 : BIG) ||
        r.offset != (cache ? cache_at : 0))
      return fs_fail (s, "request %zu: %s of %llu bytes at %llu", i,
                      proto_cmd_name (r.type), (unsigned long long) r.length,
                      (unsigned long long) r.offset);
    cache_at += cache ? r.length : 0;
    if (r.type != NBD_CMD_BLOCK_STATUS ? fs_send_ok (s, r.cookie) :
        fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie,
                              s->hs.meta_id, i == 7 ? one : three,
                              i == 7 ? 1 : 3, i == 7 ? 1 : 3))
      return -1;
  }
  return 0;
}

static void
test_big_effect_lengths (void **state)
{
  struct ctx *c = *state;
  struct ext64_rec rec = { 0 };
  struct extent_rec ex = { 0 };
  struct nbdaio_stats st;
  struct cbc cb = { .ret = 1 };
  uint32_t cut = UINT32_MAX - 4095;     /* below 2^32, minimum-aligned */

  c->s->hs.ext = 1;
  c->s->hs.size = UINT64_C (6) << 30;
  c->s->hs.bs_min = 4096;
  c->s->hs.bs_pref = 65536;
  c->s->hs.bs_max = 1u << 30;
  ctx_start (c, script_big);
  assert_int_equal (nbdaio_trim (c->h, BIG, 0, 0), 0);
  assert_int_equal (nbdaio_zero (c->h, BIG, 0, 0), 0);
  assert_int_equal (nbdaio_cache (c->h, BIG, 0, 0), 0);
  assert_true (nbdaio_aio_block_status_64 (
                 c->h, BIG, 0,
                 (nbdaio_extent64_callback) { ext64_cb, &rec, NULL },
                 cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, 0);
  assert_int_equal (rec.calls, 1);
  assert_int_equal (rec.n[0], 1);
  assert_true (rec.e[0][0].length == BIG);
  /* the 32-bit callback: the extent above 4 GiB is cut and ends the list
   * (the one after it would be placed wrong) */
  assert_int_equal (nbdaio_block_status (c->h, BIG, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.nr_entries, 4);
  assert_int_equal (ex.entries[0], 4096);
  assert_int_equal (ex.entries[2], cut);
  assert_int_equal (ex.entries[3], 3);
  memset (&st, 0, sizeof st);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  assert_int_equal (st.trim.issued, 1);
  assert_int_equal (st.zero.issued, 1);
  assert_int_equal (st.cache.issued, 5);
  assert_int_equal (st.block_status.issued, 2);
  ctx_finish (c);
}

/* Without extended headers the same block status is refused (ERANGE)
 * and reads stay 32-bit whatever the headers (split off: ERANGE). */
static void
test_big_compact_refused (void **state)
{
  struct ctx *c = *state;
  struct extent_rec ex = { 0 };

  c->s->hs.size = UINT64_C (6) << 30;
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (c->h), 0);
  assert_int_equal (nbdaio_aio_block_status (c->h, BIG, 0,
                                             extent_rec_callback (&ex),
                                             NBDAIO_NULL_COMPLETION, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ERANGE);
  fprintf (stderr, "  %s\n", nbdaio_get_error ());
  assert_true (contains (nbdaio_get_error (), "extended headers"));
  assert_int_equal (ex.frees, 1);
  ctx_finish (c);
}

static void
test_big_read_stays_32bit (void **state)
{
  struct ctx *c = *state;
  static uint8_t b[1];

  c->s->hs.ext = 1;
  c->s->hs.size = UINT64_C (6) << 30;
  assert_int_equal (nbdaio_set_split (c->h, 0), 0);
  assert_int_equal (nbdaio_set_strict (c->h, 0), 0);
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_aio_pread (c->h, b, BIG, 0,
                                      NBDAIO_NULL_COMPLETION, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ERANGE);
  fprintf (stderr, "  %s\n", nbdaio_get_error ());
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* block status filtered to some contexts (NBD_CMD_FLAG_PAYLOAD_LEN) */

/* One filtered block status: the request must carry the bitmap's id
 * only, with the effect length 65536; arg says how to answer: 0 right
 * (the bitmap's chunk), 1 a chunk for base:allocation too, 2 the
 * base:allocation chunk instead, 3 NONE. */
static int
script_filter (struct fs *s)
{
  int how = (int) (uintptr_t) s->arg;
  uint64_t e[2] = { 65536, 1 };
  struct fs_req r;
  int bad;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  bad = !(r.flags & NBD_CMD_FLAG_PAYLOAD_LEN) || r.length != 12 ||
    !r.data || wire_get64 (r.data) != 65536 ||
    wire_get32 (r.data + 8) != BITMAP_ID;
  free (r.data);
  if (bad)
    return fs_fail (s, "filtered block status: flags 0x%x length %llu",
                    r.flags, (unsigned long long) r.length);
  switch (how) {
  case 0:
    return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie,
                                 BITMAP_ID, e, 1, 1);
  case 1:
    fs_send_chunk_bs_ext (s, 0, r.cookie, BITMAP_ID, e, 1, 1);
    fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                          e, 1, 1);
    return 0;
  case 2:
    fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                          e, 1, 1);
    return 0;
  default:
    fs_send_chunk_none (s, r.cookie);
    return 0;
  }
}

static void
filter_server (struct fs *s)
{
  s->hs.ext = 1;
  s->hs.tflags |= NBD_FLAG_BLOCK_STATUS_PAYLOAD;
  s->hs.meta2 = BITMAP;
  s->hs.meta2_id = BITMAP_ID;
}

static const char *const only_bitmap[] = { BITMAP, NULL };

static void
test_filter (void **state)
{
  struct ctx *c = *state;
  struct ext64_rec rec = { 0 };
  struct cbc cb = { .ret = 1 };

  filter_server (c->s);
  assert_int_equal (nbdaio_add_meta_context (c->h, BITMAP), 0);
  assert_int_equal (start_with (c, script_filter, (void *) 0), 0);
  assert_int_equal (nbdaio_can_block_status_payload (c->h), 1);
  assert_true (nbdaio_aio_block_status_filter (
                 c->h, 65536, 0, only_bitmap,
                 (nbdaio_extent64_callback) { ext64_cb, &rec, ext64_free },
                 cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (rec.calls, 1);
  assert_int_equal (rec.frees, 1);
  assert_string_equal (rec.ctx[0], BITMAP);
  assert_true (rec.e[0][0].length == 65536 && rec.e[0][0].flags == 1);
  ctx_finish (c);
}

/* Refused locally, every free function run once: ENOTSUP without the
 * server's flag (and so without extended headers), EINVAL for an empty
 * filter, a context not negotiated, one named twice. */
static void
filter_refused (struct nbdaio_handle *h, const char *const *names, int err)
{
  struct ext64_rec rec = { 0 };
  struct cbc cb = { 0 };

  assert_int_equal (nbdaio_aio_block_status_filter (
                      h, 65536, 0, names,
                      (nbdaio_extent64_callback) { ext64_cb, &rec,
                                                   ext64_free },
                      cbc_completion (&cb), 0), -1);
  fprintf (stderr, "  %s\n", nbdaio_get_error ());
  assert_int_equal (nbdaio_get_errno (), err);
  assert_int_equal (rec.frees, 1);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (cb.calls, 0);
}

static void
test_filter_refused (void **state)
{
  static const char *const none[] = { NULL };
  static const char *const unknown[] = { "qemu:allocation-depth", NULL };
  static const char *const twice[] = { BITMAP, BITMAP, NULL };
  struct ctx *c = *state;
  struct fs *s;
  struct nbdaio_handle *h;

  filter_refused (c->h, only_bitmap, ENOTCONN);       /* not connected */
  /* extended headers, two contexts, no NBD_FLAG_BLOCK_STATUS_PAYLOAD */
  c->s->hs.ext = 1;
  c->s->hs.meta2 = BITMAP;
  c->s->hs.meta2_id = BITMAP_ID;
  assert_int_equal (nbdaio_add_meta_context (c->h, BITMAP), 0);
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_can_block_status_payload (c->h), 0);
  filter_refused (c->h, only_bitmap, ENOTSUP);
  assert_true (contains (nbdaio_get_error (),
                         "NBD_FLAG_BLOCK_STATUS_PAYLOAD"));
  ctx_finish (c);

  /* the flag without extended headers (a server may not do that): still
   * refused, the filter cannot be sent */
  s = fs_new ();
  h = test_handle ();
  assert_non_null (s);
  assert_non_null (h);
  filter_server (s);
  s->hs.ext = 0;
  assert_int_equal (nbdaio_add_meta_context (h, BITMAP), 0);
  assert_true (fs_start (s, script_handshake_only, NULL) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_int_equal (nbdaio_can_block_status_payload (h), 0);
  filter_refused (h, only_bitmap, ENOTSUP);
  assert_true (contains (nbdaio_get_error (), "extended headers"));
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);

  /* the flag and extended headers: bad lists */
  s = fs_new ();
  h = test_handle ();
  assert_non_null (s);
  assert_non_null (h);
  filter_server (s);
  assert_int_equal (nbdaio_add_meta_context (h, BITMAP), 0);
  assert_true (fs_start (s, script_handshake_only, NULL) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_int_equal (nbdaio_can_block_status_payload (h), 1);
  filter_refused (h, NULL, EINVAL);
  filter_refused (h, none, EINVAL);
  filter_refused (h, unknown, EINVAL);
  filter_refused (h, twice, EINVAL);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);
}

/* The reply must answer exactly the filter's contexts: a chunk for
 * another negotiated context, or a missing one, is [bs-filter]; the
 * command completes once with EPROTO. */
static void
test_filter_violations (void **state)
{
  (void) state;
  for (uintptr_t how = 1; how <= 3; how++) {
    struct fs *s = fs_new ();
    struct nbdaio_handle *h = test_handle ();
    struct ext64_rec rec = { 0 };
    struct cbc cb = { 0 };
    const char *msg;

    assert_non_null (s);
    assert_non_null (h);
    filter_server (s);
    assert_int_equal (nbdaio_add_meta_context (h, BITMAP), 0);
    assert_true (fs_start (s, script_filter, (void *) how) >= 0);
    assert_int_equal (test_connect (h, s), 0);
    assert_true (nbdaio_aio_block_status_filter (
                   h, 65536, 0, only_bitmap,
                   (nbdaio_extent64_callback) { ext64_cb, &rec, ext64_free },
                   cbc_completion (&cb), 0) >= 1);
    assert_int_equal (drive_until_dead (h, 4000), 1);
    msg = nbdaio_get_connection_error (h);
    fprintf (stderr, "  case %d: %s\n", (int) how, msg ? msg : "(null)");
    assert_true (contains (msg, "[bs-filter]"));
    assert_int_equal (cb.calls, 1);
    assert_int_equal (cb.error, EPROTO);
    nbdaio_close (h);
    assert_int_equal (rec.frees, 1);
    assert_int_equal (fs_join (s), 0);
    fs_free (s);
  }
}

/* ---------------------------------------------------------------------- */
/* violations */

enum { X_READ, X_WRITE, X_BS };

struct xcase {
  const char *name;
  const char *tag;
  int ext;                      /* the server accepts extended headers */
  int kind;                     /* X_* */
  uint64_t offset;
  int (*reply) (struct fs *s, const struct fs_req *r);
};

/* a compact structured data chunk on an extended connection */
static int
reply_compact_chunk (struct fs *s, const struct fs_req *r)
{
  static uint8_t data[4096];

  s->ext_negotiated = 0;
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie, r->offset,
                             data, r->count);
}

static int
reply_simple (struct fs *s, const struct fs_req *r)
{
  return fs_send_simple (s, 0, r->cookie, NULL, 0);
}

/* an extended header on a compact connection */
static int
reply_ext_unasked (struct fs *s, const struct fs_req *r)
{
  return fs_send_ext_chunk (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
                            r->cookie, r->offset, 0, NULL, 0);
}

static int
reply_wrong_offset (struct fs *s, const struct fs_req *r)
{
  uint8_t b[8 + 4096] = { 0 };

  wire_put64 (b, r->offset);
  return fs_send_ext_chunk (s, NBD_REPLY_FLAG_DONE,
                            NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
                            r->offset + 512, 8 + r->count, b, 8 + r->count);
}

static int
reply_huge_length (struct fs *s, const struct fs_req *r)
{
  return fs_send_ext_chunk (s, NBD_REPLY_FLAG_DONE,
                            NBD_REPLY_TYPE_OFFSET_DATA, r->cookie, r->offset,
                            (UINT64_C (1) << 32) + 8, NULL, 0);
}

static int
reply_bs_compact_type (struct fs *s, const struct fs_req *r)
{
  uint32_t e[2] = { r->count, 0 };
  return fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, r->cookie, s->hs.meta_id,
                           e, 1);
}

static int
reply_bs_ext_type (struct fs *s, const struct fs_req *r)
{
  uint64_t e[2] = { r->count, 0 };
  return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r->cookie,
                               s->hs.meta_id, e, 1, 1);
}

static int
reply_bs_count (struct fs *s, const struct fs_req *r)
{
  uint64_t e[2] = { r->count, 0 };
  return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r->cookie,
                               s->hs.meta_id, e, 1, 2);
}

static int
reply_bs_status (struct fs *s, const struct fs_req *r)
{
  uint64_t e[2] = { r->count, UINT64_C (1) << 32 };
  return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r->cookie,
                               s->hs.meta_id, e, 1, 1);
}

static int
reply_bs_ext_short (struct fs *s, const struct fs_req *r)
{
  uint8_t b[16] = { 0 };

  wire_put32 (b, s->hs.meta_id);
  wire_put32 (b + 4, 1);
  wire_put64 (b + 8, r->count);
  return fs_send_chunk (s, NBD_REPLY_FLAG_DONE,
                        NBD_REPLY_TYPE_BLOCK_STATUS_EXT, r->cookie, b, 16);
}

static int
reply_bs_zero_extent (struct fs *s, const struct fs_req *r)
{
  uint64_t e[4] = { 0, 0, r->count, 0 };
  return fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, r->cookie,
                               s->hs.meta_id, e, 2, 2);
}

static const struct xcase xcases[] = {
  { "compact chunk, extended", "ext-reply-magic", 1, X_READ, 4096,
    reply_compact_chunk },
  { "simple reply, extended", "ext-reply-magic", 1, X_WRITE, 0,
    reply_simple },
  { "extended header, compact", "ext-reply-magic", 0, X_READ, 0,
    reply_ext_unasked },
  { "offset not the request's", "ext-offset", 1, X_READ, 8192,
    reply_wrong_offset },
  { "length above 32 bits", "ext-length", 1, X_READ, 0, reply_huge_length },
  { "BLOCK_STATUS, extended", "ext-bs-type", 1, X_BS, 0,
    reply_bs_compact_type },
  { "BLOCK_STATUS_EXT, compact", "ext-bs-type", 0, X_BS, 0,
    reply_bs_ext_type },
  { "descriptor count", "ext-bs-count", 1, X_BS, 0, reply_bs_count },
  { "base: status above 32 bits", "ext-bs-status", 1, X_BS, 0,
    reply_bs_status },
  { "BLOCK_STATUS_EXT of 16 bytes", "chunk-length", 1, X_BS, 0,
    reply_bs_ext_short },
  { "extended extent of length 0", "bs-extent", 1, X_BS, 0,
    reply_bs_zero_extent },
};

static int
script_xcase (struct fs *s)
{
  const struct xcase *x = s->arg;
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  free (r.data);
  x->reply (s, &r);             /* the client may hang up mid-way */
  return 0;
}

static void
run_xcase (const struct xcase *x)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  static uint8_t buf[4096];
  struct cbc cb = { 0 };
  struct extent_rec ex = { 0 };
  const char *msg;
  int64_t cookie = -1;

  fprintf (stderr, "  case %s\n", x->name);
  assert_non_null (s);
  assert_non_null (h);
  s->hs.ext = x->ext;
  assert_true (fs_start (s, script_xcase, (void *) x) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_int_equal (nbdaio_get_extended_headers_negotiated (h), x->ext);
  switch (x->kind) {
  case X_READ:
    cookie = nbdaio_aio_pread (h, buf, sizeof buf, x->offset,
                               cbc_completion (&cb), 0);
    break;
  case X_WRITE:
    cookie = nbdaio_aio_pwrite (h, buf, sizeof buf, x->offset,
                                cbc_completion (&cb), 0);
    break;
  case X_BS:
    cookie = nbdaio_aio_block_status (h, sizeof buf, x->offset,
                                      extent_rec_callback (&ex),
                                      cbc_completion (&cb), 0);
    break;
  }
  assert_true (cookie >= 1);
  assert_int_equal (drive_until_dead (h, 4000), 1);
  msg = nbdaio_get_connection_error (h);
  fprintf (stderr, "    %s\n", msg ? msg : "(null)");
  assert_non_null (msg);
  char want[64];
  snprintf (want, sizeof want, "[%s]", x->tag);
  assert_non_null (strstr (msg, want));
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, EPROTO);
  assert_int_equal (ex.calls, 0);
  nbdaio_close (h);
  assert_int_equal (cb.frees, 1);
  fs_free (s);
}

static void
test_violations (void **state)
{
  (void) state;
  for (size_t i = 0; i < sizeof xcases / sizeof xcases[0]; i++)
    run_xcase (&xcases[i]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_roundtrip),
    CTX_TEST (test_refused_fallback),
    CTX_TEST (test_setting_off),
    CTX_TEST (test_structured_off),
    CTX_TEST (test_ext_header_reqd),
    cmocka_unit_test (test_ext_go),
    CTX_TEST (test_bs_ext_long_extent),
    CTX_TEST (test_bs_ext_status_overflow),
    CTX_TEST (test_two_contexts_64),
    CTX_TEST (test_two_contexts_compact),
    CTX_TEST (test_context_missing),
    CTX_TEST (test_add_meta_context_rules),
    CTX_TEST (test_big_effect_lengths),
    CTX_TEST (test_big_compact_refused),
    CTX_TEST (test_big_read_stays_32bit),
    CTX_TEST (test_filter),
    CTX_TEST (test_filter_refused),
    cmocka_unit_test (test_filter_violations),
    cmocka_unit_test (test_violations),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
