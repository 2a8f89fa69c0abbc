/* test_reply.c - unit tests of the transmission phase: how the client reads
 * simple and structured replies from the scripted server.  Each protocol
 * rule on the server's replies is broken once: the connection must end with
 * an error naming the rule ("[tag]") and every in-flight command must
 * complete exactly once with EPROTO.  Then the non-fatal cases: unknown
 * error chunks, odd error values, ESHUTDOWN, EOF, byte-at-a-time delivery,
 * holes, block status and out-of-order replies; the memory a large block
 * status chunk takes, a read in 256K scrambled one-byte chunks, and
 * callbacks that try to re-enter the reply reader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"
/* the reply buffer and parser state, for the memory test (internal) */
#include "../../engine/internal.h"

/* ---------------------------------------------------------------------- */
/* commands the client issues */

enum { K_NONE, K_READ, K_READ_SR, K_WRITE, K_FLUSH, K_BS };

struct cmdspec {
  int kind;
  uint64_t offset;
  uint32_t count;
  uint32_t flags;
  int expect_ok;                /* completes successfully before the
                                 * violation */
};

struct slot {
  struct cbc cb;
  struct chunk_rec ch;
  struct extent_rec ex;
  uint8_t *buf;
  int64_t cookie;
};

static int64_t
issue (struct nbdaio_handle *h, const struct cmdspec *c, struct slot *sl)
{
  memset (&sl->cb, 0, sizeof sl->cb);
  memset (&sl->ch, 0, sizeof sl->ch);
  memset (&sl->ex, 0, sizeof sl->ex);
  sl->buf = calloc (1, 64 * KiB);
  assert_non_null (sl->buf);
  sl->ch.base = sl->buf;
  sl->ch.base_offset = c->offset;

  switch (c->kind) {
  case K_READ:
    return nbdaio_aio_pread (h, sl->buf, c->count, c->offset,
                             cbc_completion (&sl->cb), c->flags);
  case K_READ_SR:
    return nbdaio_aio_pread_structured (h, sl->buf, c->count, c->offset,
                                        chunk_rec_callback (&sl->ch),
                                        cbc_completion (&sl->cb), c->flags);
  case K_WRITE:
    fs_pattern (sl->buf, c->count, c->offset);
    return nbdaio_aio_pwrite (h, sl->buf, c->count, c->offset,
                              cbc_completion (&sl->cb), c->flags);
  case K_FLUSH:
    return nbdaio_aio_flush (h, cbc_completion (&sl->cb), c->flags);
  case K_BS:
    return nbdaio_aio_block_status (h, c->count, c->offset,
                                    extent_rec_callback (&sl->ex),
                                    cbc_completion (&sl->cb), c->flags);
  }
  return -1;
}

/* The cookie the server saw for the first request of this type. */
static uint64_t
cookie_of (struct fs *s, uint16_t type)
{
  for (int i = 0; i < s->nr_reqs && i < FS_MAX_REQS; i++)
    if (s->reqs[i].type == type)
      return s->reqs[i].cookie;
  return 0;
}

static const struct fs_req *
req_of (struct fs *s, uint16_t type)
{
  for (int i = 0; i < s->nr_reqs && i < FS_MAX_REQS; i++)
    if (s->reqs[i].type == type)
      return &s->reqs[i];
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* violation cases */

/* the server's handshake in a violation case */
enum { HS_DEFAULT, HS_NO_SR /* refuses structured replies */ };

struct vcase {
  const char *name;
  const char *tag;
  int hs;                       /* HS_* */
  struct cmdspec cmds[4];
  int (*reply) (struct fs *s);  /* runs after all requests were read */
};

static int
ncmds (const struct vcase *v)
{
  int n = 0;
  while (n < 4 && v->cmds[n].kind != K_NONE)
    n++;
  return n;
}

static int
script_vcase (struct fs *s)
{
  const struct vcase *v = s->arg;
  if (fs_default_handshake (s) != 0)
    return -1;
  if (fs_read_requests (s, ncmds (v)) == -1)
    return -1;
  v->reply (s);                 /* the client may hang up mid-way */
  return 0;
}

static void
run_vcase (const struct vcase *v)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct slot sl[4];
  int n = ncmds (v);
  int64_t cookies[4];
  char msg[1024] = "";
  const char *violation = NULL, *poll_violation = NULL, *late_violation = "";
  int rc, died = 0, again = 0, is_conn = -1, late_rc = 0, late_err = 0;
  struct cbc late = { 0 };
  int retire_rc[4] = { 0 }, retire_err[4] = { 0 };

  fprintf (stderr, "  case %s\n", v->name);
  assert_non_null (s);
  assert_non_null (h);
  /* every violation here ends the connection (test_violation_policy.c:
   * the in-sync ones under the default policy) */
  assert_int_equal (nbdaio_set_reply_violations (h, NBDAIO_VIOLATIONS_CLOSE),
                    0);
  if (v->hs == HS_NO_SR) {
    s->hs.sr = 0;
    s->hs.tflags &= ~NBD_FLAG_SEND_DF;  /* DF needs structured replies */
  }
  assert_true (fs_start (s, script_vcase, (void *) v) >= 0);
  rc = test_connect (h, s);
  if (rc == 0) {
    for (int i = 0; i < n; i++)
      cookies[i] = issue (h, &v->cmds[i], &sl[i]);
    died = drive_until_dead (h, 4000);
    poll_violation = nbdaio_get_violation ();   /* the failed poll's */
    snprintf (msg, sizeof msg, "%s",
              nbdaio_get_connection_error (h)
              ? nbdaio_get_connection_error (h) : "(null)");
    violation = nbdaio_get_connection_violation (h);
    again = nbdaio_poll (h, 0);
    is_conn = nbdaio_is_connected (h);
    late_rc = (int) nbdaio_aio_flush (h, cbc_completion (&late), 0);
    late_err = nbdaio_get_errno ();
    late_violation = nbdaio_get_violation ();   /* ENOTCONN: none */
    /* the callbacks returned 0: each command waits to be retired */
    for (int i = 0; i < n; i++) {
      retire_rc[i] = nbdaio_aio_command_completed (h, cookies[i]);
      retire_err[i] = nbdaio_get_errno ();
    }
  }
  /* callbacks ran before close; record, then let close run the frees */
  int calls[4] = { 0 }, errs[4] = { 0 };
  for (int i = 0; i < n && rc == 0; i++) {
    calls[i] = sl[i].cb.calls;
    errs[i] = sl[i].cb.error;
  }
  nbdaio_close (h);             /* completes everything: buffers are free */
  fs_free (s);
  for (int i = 0; i < n && rc == 0; i++)
    free (sl[i].buf);

  assert_int_equal (rc, 0);
  if (!died || !strstr (msg, v->tag))
    fprintf (stderr, "  expected [%s] violation: died=%d error=\"%s\"\n",
             v->tag, died, msg);
  assert_true (died);
  char want[64];
  snprintf (want, sizeof want, "[%s]", v->tag);
  assert_non_null (strstr (msg, want));
  assert_string_equal (violation ? violation : "(null)", v->tag);
  assert_string_equal (poll_violation ? poll_violation : "(null)", v->tag);
  assert_null (late_violation);
  assert_int_equal (again, -1);
  assert_int_equal (is_conn, 0);
  assert_int_equal (late_rc, -1);
  assert_int_equal (late_err, ENOTCONN);
  assert_int_equal (late.calls, 0);
  assert_int_equal (late.frees, 1);
  for (int i = 0; i < n; i++) {
    assert_true (cookies[i] >= 1);
    if (calls[i] != 1 || errs[i] != (v->cmds[i].expect_ok ? 0 : EPROTO))
      fprintf (stderr, "  command %d: %d calls, error %d\n", i, calls[i],
               errs[i]);
    assert_int_equal (calls[i], 1);
    assert_int_equal (errs[i], v->cmds[i].expect_ok ? 0 : EPROTO);
    if (v->cmds[i].expect_ok)
      assert_int_equal (retire_rc[i], 1);
    else {
      assert_int_equal (retire_rc[i], -1);
      assert_int_equal (retire_err[i], EPROTO);
    }
    assert_int_equal (sl[i].cb.calls, 1);   /* close did not call again */
    assert_int_equal (sl[i].cb.frees, 1);
    if (v->cmds[i].kind == K_READ_SR)
      assert_int_equal (sl[i].ch.frees, 1);
    if (v->cmds[i].kind == K_BS)
      assert_int_equal (sl[i].ex.frees, 1);
  }
}

/* the reply scripts */

static const struct cmdspec READ512 = { K_READ, 0, 512, 0, 0 };
static const struct cmdspec READ512_4K = { K_READ, 4096, 512, 0, 0 };
static const struct cmdspec READ1K = { K_READ_SR, 0, 1024, 0, 0 };
static const struct cmdspec FLUSH = { K_FLUSH, 0, 0, 0, 0 };
static const struct cmdspec WRITE512 = { K_WRITE, 0, 512, 0, 0 };
static const struct cmdspec BS64K = { K_BS, 0, 64 * KiB, 0, 0 };
static const struct cmdspec BS64K_ONE = { K_BS, 0, 64 * KiB,
                                          NBDAIO_CMD_FLAG_REQ_ONE, 0 };
static const struct cmdspec READ1K_DF = { K_READ_SR, 0, 1024,
                                          NBDAIO_CMD_FLAG_DF, 0 };

static uint8_t zero_buf[64 * KiB];

/* A chunk with the DONE flag and a hand-made payload, answering the first
 * request of type cmd. */
static int
done_chunk (struct fs *s, uint16_t type, uint16_t cmd, const void *payload,
            uint32_t len)
{
  return fs_send_chunk (s, NBD_REPLY_FLAG_DONE, type, cookie_of (s, cmd),
                        payload, len);
}

/* An error chunk payload: error, a claimed message length, the message. */
static void
put_error_payload (uint8_t *b, uint32_t err, uint16_t msglen,
                   const char *msg)
{
  wire_put32 (b, err);
  wire_put16 (b + 4, msglen);
  memcpy (b + 6, msg, strlen (msg));
}

/* A BLOCK_STATUS chunk of len (8 or 16) bytes: the context id, then
 * extents of 4096 bytes with flags 0, cut off at len. */
static int
bs_raw (struct fs *s, uint32_t len)
{
  uint8_t b[16] = { 0 };
  wire_put32 (b, s->hs.meta_id);
  for (uint32_t o = 4; o + 4 <= len; o += 8)
    wire_put32 (b + o, 4096);
  return done_chunk (s, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_CMD_BLOCK_STATUS, b,
                     len);
}

static int
r_bad_magic (struct fs *s)
{
  return fs_send_simple_magic (s, 0xdeadbeef, 0, cookie_of (s, NBD_CMD_READ),
                               NULL, 0);
}

static int
r_structured_without_sr (struct fs *s)
{
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE,
                             cookie_of (s, NBD_CMD_READ), 0, zero_buf, 512);
}

static int
r_bad_cookie (struct fs *s)
{
  uint64_t max = 0;
  for (int i = 0; i < s->nr_reqs; i++)
    if (s->reqs[i].cookie > max)
      max = s->reqs[i].cookie;
  return fs_send_simple (s, 0, max + 1000, NULL, 0);
}

static int
r_after_done (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, c, 0, zero_buf, 512) == -1)
    return -1;
  return fs_send_chunk_none (s, c);
}

static int
r_simple_to_read (struct fs *s)
{
  return fs_send_simple (s, 0, cookie_of (s, NBD_CMD_READ), zero_buf, 512);
}

static int
r_data_past_end (struct fs *s)
{
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE,
                             cookie_of (s, NBD_CMD_READ), 4096 + 256,
                             zero_buf, 512);
}

static int
r_hole_before_start (struct fs *s)
{
  return fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE,
                             cookie_of (s, NBD_CMD_READ), 4096 - 256, 512);
}

static int
r_data_overlap (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  if (fs_send_chunk_data (s, 0, c, 0, zero_buf, 512) == -1)
    return -1;
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, c, 256, zero_buf, 512);
}

static int
r_hole_overlap (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  if (fs_send_chunk_data (s, 0, c, 0, zero_buf, 1024) == -1)
    return -1;
  return fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE, c, 512, 512);
}

static int
r_coverage_none (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  if (fs_send_chunk_data (s, 0, c, 0, zero_buf, 512) == -1)
    return -1;
  return fs_send_chunk_none (s, c);
}

static int
r_coverage_done (struct fs *s)
{
  return fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE,
                             cookie_of (s, NBD_CMD_READ), 512, 512);
}

static int
r_data_to_write (struct fs *s)
{
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE,
                             cookie_of (s, NBD_CMD_WRITE), 0, zero_buf, 512);
}

static int
r_bs_to_read (struct fs *s)
{
  uint32_t ext[2] = { 512, 0 };
  return fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE,
                           cookie_of (s, NBD_CMD_READ), s->hs.meta_id, ext,
                           1);
}

static int
r_none_with_length (struct fs *s)
{
  uint8_t b[4] = { 0 };
  return done_chunk (s, NBD_REPLY_TYPE_NONE, NBD_CMD_FLUSH, b, sizeof b);
}

static int
r_none_without_done (struct fs *s)
{
  return fs_send_chunk (s, 0, NBD_REPLY_TYPE_NONE,
                        cookie_of (s, NBD_CMD_FLUSH), NULL, 0);
}

static int
r_error_zero (struct fs *s)
{
  return fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                              cookie_of (s, NBD_CMD_READ), 0, "");
}

static int
r_error_msg_too_long (struct fs *s)
{
  uint8_t b[6 + 10];
  put_error_payload (b, NBD_EIO, 100, "0123456789");
  return done_chunk (s, NBD_REPLY_TYPE_ERROR, NBD_CMD_READ, b, sizeof b);
}

static int
r_error_offset_short (struct fs *s)
{
  /* ERROR_OFFSET: error, msglen, message, then an 8 byte offset; here the
   * message eats the offset's room */
  uint8_t b[6 + 4 + 8];
  put_error_payload (b, NBD_EIO, 8, "abcdefgh");
  wire_put32 (b + 14, 0);
  return done_chunk (s, NBD_REPLY_TYPE_ERROR_OFFSET, NBD_CMD_READ, b,
                     sizeof b);
}

static int
r_unknown_type (struct fs *s)
{
  return done_chunk (s, 77, NBD_CMD_FLUSH, NULL, 0);
}

static int
r_hole_len16 (struct fs *s)
{
  uint8_t b[16] = { 0 };
  wire_put64 (b, 0);
  wire_put32 (b + 8, 512);
  return done_chunk (s, NBD_REPLY_TYPE_OFFSET_HOLE, NBD_CMD_READ, b,
                     sizeof b);
}

static int
r_data_len8 (struct fs *s)
{
  uint8_t b[8] = { 0 };
  return done_chunk (s, NBD_REPLY_TYPE_OFFSET_DATA, NBD_CMD_READ, b,
                     sizeof b);
}

static int
r_bs_len8 (struct fs *s)
{
  return bs_raw (s, 8);
}

static int
r_bs_len16 (struct fs *s)
{
  return bs_raw (s, 16);
}

static int
r_bs_bad_context (struct fs *s)
{
  uint32_t ext[2] = { 64 * KiB, 0 };
  return fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE,
                           cookie_of (s, NBD_CMD_BLOCK_STATUS), 99, ext, 1);
}

static int
r_bs_zero_extent (struct fs *s)
{
  uint32_t ext[4] = { 4096, 0, 0, NBDAIO_STATE_HOLE };
  return fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE,
                           cookie_of (s, NBD_CMD_BLOCK_STATUS),
                           s->hs.meta_id, ext, 2);
}

static int
r_bs_two_extents_req_one (struct fs *s)
{
  const struct fs_req *r = req_of (s, NBD_CMD_BLOCK_STATUS);
  if (!r || !(r->flags & NBDAIO_CMD_FLAG_REQ_ONE))
    return fs_fail (s, "REQ_ONE flag not on the wire");
  uint32_t ext[4] = { 4096, 0, 4096, NBDAIO_STATE_HOLE };
  return fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, r->cookie, s->hs.meta_id,
                           ext, 2);
}

/* Many scattered chunks, then one repeating the first: an overlap even
 * when the client tracks more than a few separate runs.  The rest of the
 * chunks add up to the request size while leaving the last 512 bytes
 * unsent, so a client that misses the overlap reports a read with a hole
 * of stale memory as successful. */
static int
r_overlap_after_many_runs (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  for (int i = 0; i < 10; i += 2)
    if (fs_send_chunk_data (s, 0, c, i * 512, zero_buf, 512) == -1)
      return -1;
  if (fs_send_chunk_data (s, 0, c, 0, zero_buf, 512) == -1)
    return -1;
  static const int rest[] = { 1, 3, 5, 7, 9, 10, 11, 12, 13, 14 };
  for (int k = 0; k < 10; k++)
    if (fs_send_chunk_data (s, k == 9 ? NBD_REPLY_FLAG_DONE : 0, c,
                            rest[k] * 512, zero_buf, 512) == -1)
      return -1;
  return 0;
}

/* A block status chunk of n extents of len bytes (state 0), whole. */
static int
bs_many (struct fs *s, uint32_t n, uint32_t len)
{
  size_t size = 4 + 8 * (size_t) n;
  uint8_t *b = calloc (1, size);
  if (!b)
    return fs_fail (s, "out of memory");
  wire_put32 (b, s->hs.meta_id);
  for (uint32_t i = 0; i < n; i++)
    wire_put32 (b + 4 + 8 * i, len);
  int r = done_chunk (s, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_CMD_BLOCK_STATUS, b,
                      (uint32_t) size);
  free (b);
  return r;
}

/* 65537 extents of one byte for a 64 KiB request: more than its bytes. */
static int
r_bs_more_extents_than_bytes (struct fs *s)
{
  return bs_many (s, 64 * KiB + 1, 1);
}

/* An NBD_REPLY_TYPE_ERROR whose message (5000 bytes, length consistent)
 * is longer than the spec's 4096-byte string limit. */
static int
r_error_msg_over_limit (struct fs *s)
{
  static uint8_t b[6 + 5000];
  memset (b, 'x', sizeof b);
  wire_put32 (b, NBD_EIO);
  wire_put16 (b + 4, 5000);
  return done_chunk (s, NBD_REPLY_TYPE_ERROR, NBD_CMD_READ, b, sizeof b);
}

/* A DF read answered in two data chunks. */
static int
r_df_two_data (struct fs *s)
{
  const struct fs_req *r = req_of (s, NBD_CMD_READ);
  if (!r || !(r->flags & NBDAIO_CMD_FLAG_DF))
    return fs_fail (s, "DF flag not on the wire");
  if (fs_send_chunk_data (s, 0, r->cookie, 0, zero_buf, 512) == -1)
    return -1;
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie, 512,
                             zero_buf, 512);
}

/* A DF read answered with data, then a hole for the rest. */
static int
r_df_data_hole (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  if (fs_send_chunk_data (s, 0, c, 0, zero_buf, 512) == -1)
    return -1;
  return fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE, c, 512, 512);
}

/* Six separate one-byte chunks (more runs than the client keeps inline),
 * then chunks that fit between them, then [62, 66): across the 64-byte
 * boundary, its only byte received already is 65, just past it. */
static int
r_overlap_in_bitmap (struct fs *s)
{
  uint64_t c = cookie_of (s, NBD_CMD_READ);
  static const uint32_t at[][2] = {
    { 0, 1 }, { 2, 1 }, { 4, 1 }, { 6, 1 }, { 8, 1 }, { 65, 1 },
    { 1, 1 }, { 9, 53 }, { 62, 4 },
  };
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
    if (fs_send_chunk_data (s, 0, c, at[i][0], zero_buf, at[i][1]) == -1)
      return -1;
  return fs_send_chunk_none (s, c);
}

#define CMDS(...) { __VA_ARGS__ }

static const struct vcase vcases[] = {
  { "bad reply magic", "reply-magic", 0, CMDS (READ512, FLUSH), r_bad_magic },
  { "structured reply without SR", "reply-magic", 1, CMDS (READ512, FLUSH),
    r_structured_without_sr },
  { "unknown cookie", "reply-cookie", 0, CMDS (FLUSH, READ512),
    r_bad_cookie },
  { "chunk after DONE", "reply-after-done", 0,
    CMDS ({ K_READ, 0, 512, 0, 1 }, FLUSH), r_after_done },
  { "simple reply to READ", "simple-reply-read", 0, CMDS (READ512, FLUSH),
    r_simple_to_read },
  { "data past the end", "chunk-bounds", 0, CMDS (READ512_4K, FLUSH),
    r_data_past_end },
  { "hole before the start", "chunk-bounds", 0, CMDS (READ512_4K, FLUSH),
    r_hole_before_start },
  { "overlapping data", "chunk-overlap", 0, CMDS (READ1K, FLUSH),
    r_data_overlap },
  { "hole over data", "chunk-overlap", 0, CMDS (READ1K, FLUSH),
    r_hole_overlap },
  { "overlap after many runs", "chunk-overlap", 0,
    CMDS ({ K_READ_SR, 0, 8192, 0, 0 }, FLUSH), r_overlap_after_many_runs },
  { "NONE before coverage", "chunk-coverage", 0, CMDS (READ1K, FLUSH),
    r_coverage_none },
  { "DONE before coverage", "chunk-coverage", 0, CMDS (READ1K, FLUSH),
    r_coverage_done },
  { "data chunk to WRITE", "chunk-command", 0, CMDS (WRITE512, FLUSH),
    r_data_to_write },
  { "block status chunk to READ", "chunk-command", 0, CMDS (READ512, FLUSH),
    r_bs_to_read },
  { "NONE with payload", "chunk-none", 0, CMDS (FLUSH, READ512),
    r_none_with_length },
  { "NONE without DONE", "chunk-none", 0, CMDS (FLUSH, READ512),
    r_none_without_done },
  { "error chunk with error 0", "chunk-error-zero", 0, CMDS (READ512, FLUSH),
    r_error_zero },
  { "error message too long", "chunk-error-length", 0,
    CMDS (READ512, FLUSH), r_error_msg_too_long },
  { "error offset without room", "chunk-error-length", 0,
    CMDS (READ512, FLUSH), r_error_offset_short },
  { "unknown chunk type", "chunk-unknown", 0, CMDS (FLUSH, READ512),
    r_unknown_type },
  { "OFFSET_HOLE length 16", "chunk-length", 0, CMDS (READ512, FLUSH),
    r_hole_len16 },
  { "OFFSET_DATA length 8", "chunk-length", 0, CMDS (READ512, FLUSH),
    r_data_len8 },
  { "BLOCK_STATUS length 8", "chunk-length", 0, CMDS (BS64K, FLUSH),
    r_bs_len8 },
  { "BLOCK_STATUS length 16", "chunk-length", 0, CMDS (BS64K, FLUSH),
    r_bs_len16 },
  { "unknown context id", "bs-context", 0, CMDS (BS64K, FLUSH),
    r_bs_bad_context },
  { "zero length extent", "bs-extent", 0, CMDS (BS64K, FLUSH),
    r_bs_zero_extent },
  { "two extents with REQ_ONE", "bs-extent", 0, CMDS (BS64K_ONE, FLUSH),
    r_bs_two_extents_req_one },
  { "BLOCK_STATUS with more extents than bytes requested", "chunk-length", 0,
    CMDS (BS64K, FLUSH), r_bs_more_extents_than_bytes },
  { "error message over 4096 bytes", "chunk-error-length", 0,
    CMDS (READ512, FLUSH), r_error_msg_over_limit },
  { "DF read in two data chunks", "chunk-df", 0, CMDS (READ1K_DF, FLUSH),
    r_df_two_data },
  { "DF read in a data and a hole chunk", "chunk-df", 0,
    CMDS (READ1K_DF, FLUSH), r_df_data_hole },
  { "overlap in the bitmap, across a word", "chunk-overlap", 0,
    CMDS ({ K_READ_SR, 0, 128, 0, 0 }, FLUSH), r_overlap_in_bitmap },
};

static void
run_tag (const char *tag)
{
  int found = 0;
  for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++)
    if (strcmp (vcases[i].tag, tag) == 0) {
      run_vcase (&vcases[i]);
      found++;
    }
  assert_true (found > 0);
}

#define VTEST(fn, tag) \
  static void fn (void **state) { (void) state; run_tag (tag); }
VTEST (test_reply_magic, "reply-magic")
VTEST (test_reply_cookie, "reply-cookie")
VTEST (test_reply_after_done, "reply-after-done")
VTEST (test_simple_reply_read, "simple-reply-read")
VTEST (test_chunk_bounds, "chunk-bounds")
VTEST (test_chunk_overlap, "chunk-overlap")
VTEST (test_chunk_coverage, "chunk-coverage")
VTEST (test_chunk_command, "chunk-command")
VTEST (test_chunk_none, "chunk-none")
VTEST (test_chunk_error_zero, "chunk-error-zero")
VTEST (test_chunk_error_length, "chunk-error-length")
VTEST (test_chunk_unknown, "chunk-unknown")
VTEST (test_chunk_length, "chunk-length")
VTEST (test_bs_context, "bs-context")
VTEST (test_bs_extent, "bs-extent")
VTEST (test_chunk_df, "chunk-df")

/* ---------------------------------------------------------------------- */
/* non-fatal cases, with a fixture */

/* Answer the first request with a simple reply carrying err, then serve
 * (allow_eof as for fs_serve_memory). */
static int
simple_error_then_serve (struct fs *s, uint32_t err, int allow_eof)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  if (fs_send_simple (s, err, r.cookie, NULL, 0) == -1)
    return -1;
  return fs_serve_memory (s, allow_eof);
}

/* An unknown error-type chunk fails that command only. */
static int
script_unknown_error_chunk (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  uint8_t b[6 + 3];
  put_error_payload (b, NBD_EIO, 3, "odd");
  if (fs_send_chunk (s, NBD_REPLY_FLAG_DONE,
                     NBD_REPLY_TYPE_ERROR_BIT | 0x33, r.cookie, b,
                     sizeof b) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_unknown_error_chunk (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  uint8_t buf[512];

  ctx_start (c, script_unknown_error_chunk);
  int64_t ck = nbdaio_aio_pread (c->h, buf, sizeof buf, 0,
                                 cbc_completion (&cb), 0);
  assert_true (ck >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_true (cb.error != 0);
  fprintf (stderr, "  unknown error chunk -> error %d\n", cb.error);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_null (nbdaio_get_connection_error (c->h));
  /* still usable */
  uint8_t want[512];
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 512, 0), 0);
  fs_pattern (want, sizeof want, 512);
  assert_memory_equal (buf, want, sizeof buf);
  ctx_finish (c);
  assert_int_equal (cb.frees, 1);
}

/* Error values: the spec's set maps to errno, anything else to EINVAL. */
static int
script_error_values (struct fs *s)
{
  struct fs_req r;
  if (fs_default_handshake (s) != 0)
    return -1;
  /* FLUSH -> simple 99; READ at 0 -> ERROR chunk 99; WRITE -> simple
   * ENOSPC; READ at 512 -> ERROR chunk EIO with message; TRIM -> simple
   * EPERM */
  for (int i = 0; i < 5; i++) {
    if (fs_read_request (s, &r) == -1)
      return -1;
    free (r.data);
    int rc;
    uint32_t err;
    switch (r.type) {
    case NBD_CMD_FLUSH: err = 99; break;
    case NBD_CMD_READ: err = r.offset == 0 ? 99 : NBD_EIO; break;
    case NBD_CMD_WRITE: err = NBD_ENOSPC; break;
    case NBD_CMD_TRIM: err = NBD_EPERM; break;
    default: return fs_fail (s, "unexpected command %u", r.type);
    }
    if (r.type == NBD_CMD_READ)
      rc = fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                                r.cookie, err, "disk on fire");
    else
      rc = fs_send_simple (s, err, r.cookie, NULL, 0);
    if (rc == -1)
      return -1;
  }
  return fs_serve_memory (s, 1);
}

static void
test_error_values (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[5] = { { 0 } };
  uint8_t rbuf[2][512], wbuf[512] = { 0 };
  struct cbc *cs[5];
  int64_t ck[5];

  ctx_start (c, script_error_values);
  ck[0] = nbdaio_aio_flush (c->h, cbc_completion (&cb[0]), 0);
  ck[1] = nbdaio_aio_pread (c->h, rbuf[0], 512, 0, cbc_completion (&cb[1]),
                            0);
  ck[2] = nbdaio_aio_pwrite (c->h, wbuf, 512, 0, cbc_completion (&cb[2]), 0);
  ck[3] = nbdaio_aio_pread (c->h, rbuf[1], 512, 512,
                            cbc_completion (&cb[3]), 0);
  ck[4] = nbdaio_aio_trim (c->h, 512, 0, cbc_completion (&cb[4]), 0);
  for (int i = 0; i < 5; i++) {
    assert_true (ck[i] >= 1);
    cs[i] = &cb[i];
  }
  assert_true (drive (c->h, cs, 5, 4000) >= 0);
  assert_int_equal (cb[0].error, EINVAL);
  assert_int_equal (cb[1].error, EINVAL);
  assert_int_equal (cb[2].error, ENOSPC);
  assert_int_equal (cb[3].error, EIO);
  assert_int_equal (cb[4].error, EPERM);
  for (int i = 0; i < 5; i++)
    assert_int_equal (cb[i].calls, 1);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  ctx_finish (c);
  for (int i = 0; i < 5; i++)
    assert_int_equal (cb[i].frees, 1);
}

/* Without structured replies: simple replies, data and errors. */
static int
script_simple_only (struct fs *s)
{
  return simple_error_then_serve (s, NBD_EIO, 1);
}

static void
test_simple_replies (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  uint8_t buf[4096], want[4096];
  c->s->hs.sr = 0;
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;

  ctx_start (c, script_simple_only);
  assert_int_equal (nbdaio_get_structured_replies_negotiated (c->h), 0);
  /* a failed READ is a bare header: no data follows it */
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&cb), 0)
               >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, EIO);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 8192, 0), 0);
  fs_pattern (want, sizeof want, 8192);
  assert_memory_equal (buf, want, sizeof buf);
  ctx_finish (c);
}

/* ESHUTDOWN: the command fails with it, no new command is accepted, and
 * the client disconnects once the rest has drained. */
static int
script_eshutdown (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 2) == -1)
    return -1;
  const struct fs_req *flush = &s->reqs[0], *rd = &s->reqs[1];
  if (flush->type != NBD_CMD_FLUSH || rd->type != NBD_CMD_READ)
    return fs_fail (s, "expected FLUSH then READ");
  if (fs_send_simple (s, NBD_ESHUTDOWN, flush->cookie, NULL, 0) == -1)
    return -1;
  /* keep the READ in flight until the test tried a new command */
  if (fs_wait_signal (s) == -1)
    return -1;
  uint8_t data[512];
  fs_pattern (data, sizeof data, rd->offset);
  if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, rd->cookie, rd->offset,
                          data, sizeof data) == -1)
    return -1;
  return fs_serve_memory (s, 0);        /* must end with NBD_CMD_DISC */
}

static void
test_eshutdown (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 }, rd = { 0 }, late = { 0 };
  uint8_t buf[512], late_buf[512], want[512];

  ctx_start (c, script_eshutdown);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb), 0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, buf, sizeof buf, 4096,
                                 cbc_completion (&rd), 0) >= 1);
  drive_one (c->h, &cb, 4000);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ESHUTDOWN);
  int64_t r = nbdaio_aio_pread (c->h, late_buf, sizeof late_buf, 0,
                                cbc_completion (&late), 0);
  int err = nbdaio_get_errno ();
  fs_signal (c->s);
  assert_int_equal (r, -1);
  assert_int_equal (err, ESHUTDOWN);
  assert_int_equal (late.calls, 0);
  assert_int_equal (late.frees, 1);
  /* the READ still completes normally */
  assert_true (drive_one (c->h, &rd, 4000) >= 0);
  assert_int_equal (rd.error, 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (buf, want, sizeof want);
  /* then the client disconnects by itself */
  for (int i = 0; i < 20 && nbdaio_is_connected (c->h); i++)
    if (nbdaio_poll (c->h, 50) == -1)
      break;
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  late = (struct cbc) { 0 };
  assert_int_equal (nbdaio_aio_flush (c->h, cbc_completion (&late), 0), -1);
  assert_int_equal (late.frees, 1);
  ctx_finish (c);
  assert_int_equal (c->s->disc_seen, 1);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (rd.frees, 1);
}

/* ESHUTDOWN to the only command in flight: later commands fail too. */
static int
script_eshutdown_idle (struct fs *s)
{
  return simple_error_then_serve (s, NBD_ESHUTDOWN, 0);
}

static void
test_eshutdown_idle (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 }, late = { 0 };
  uint8_t buf[512];

  ctx_start (c, script_eshutdown_idle);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb), 0) >= 1);
  drive_one (c->h, &cb, 4000);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ESHUTDOWN);
  int64_t r = nbdaio_aio_pread (c->h, buf, sizeof buf, 0,
                                cbc_completion (&late), 0);
  int err = nbdaio_get_errno ();
  if (err != ESHUTDOWN)
    fprintf (stderr, "  new command after ESHUTDOWN: errno %d (%s)\n", err,
             nbdaio_get_error ());
  assert_int_equal (r, -1);
  assert_true (err == ESHUTDOWN || err == ENOTCONN);
  assert_int_equal (late.calls, 0);
  assert_int_equal (late.frees, 1);
  ctx_finish (c);
  assert_int_equal (c->s->disc_seen, 1);
  assert_int_equal (cb.frees, 1);
}

/* EOF: every in-flight command completes with ENOTCONN, exactly once. */
static int
script_eof (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 3) == -1)
    return -1;
  return 0;                     /* the wrapper half-closes: EOF */
}

static void
test_eof (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { 0 } };
  uint8_t rbuf[512], wbuf[512] = { 0 };

  ctx_start (c, script_eof);
  assert_true (nbdaio_aio_pread (c->h, rbuf, 512, 0, cbc_completion (&cb[0]),
                                 0) >= 1);
  assert_true (nbdaio_aio_pwrite (c->h, wbuf, 512, 0,
                                  cbc_completion (&cb[1]), 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[2]), 0) >= 1);
  assert_true (drive_until_dead (c->h, 4000));
  assert_non_null (nbdaio_get_connection_error (c->h));
  fprintf (stderr, "  EOF -> \"%s\"\n", nbdaio_get_connection_error (c->h));
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, ENOTCONN);
  }
  assert_int_equal (nbdaio_poll (c->h, 0), -1);
  ctx_finish (c);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].frees, 1);
  }
}

/* EOF in the middle of a reply: no command is lost either. */
static int
script_eof_mid_reply (struct fs *s)
{
  struct fs_req r;
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 2) == -1)
    return -1;
  r = s->reqs[0];
  uint8_t h[10];
  wire_put32 (h, NBD_MAGIC_STRUCTURED_REPLY);
  wire_put16 (h + 4, NBD_REPLY_FLAG_DONE);
  wire_put16 (h + 6, NBD_REPLY_TYPE_OFFSET_DATA);
  wire_put16 (h + 8, (uint16_t) (r.cookie >> 48));
  return fs_write (s, h, sizeof h);
}

static void
test_eof_mid_reply (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[2] = { { 0 } };
  uint8_t rbuf[512];

  ctx_start (c, script_eof_mid_reply);
  assert_true (nbdaio_aio_pread (c->h, rbuf, 512, 0, cbc_completion (&cb[0]),
                                 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[1]), 0) >= 1);
  assert_true (drive_until_dead (c->h, 4000));
  for (int i = 0; i < 2; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_true (cb[i].error == ENOTCONN || cb[i].error == EPROTO);
  }
  ctx_finish (c);
  for (int i = 0; i < 2; i++)
    assert_int_equal (cb[i].frees, 1);
}

/* Structured read: data then a hole; the hole is zeroed in the buffer and
 * the chunk callback sees both. */
static int
script_hole (struct fs *s)
{
  struct fs_req r;
  uint8_t data[512];
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  if (r.type != NBD_CMD_READ || r.offset != 4096 || r.count != 1024)
    return fs_fail (s, "unexpected request");
  fs_pattern (data, sizeof data, 4096);
  if (fs_send_chunk_data (s, 0, r.cookie, 4096, data, 512) == -1
      || fs_send_chunk_hole (s, 0, r.cookie, 4608, 512) == -1
      || fs_send_chunk_none (s, r.cookie) == -1)
    return -1;
  /* a plain pread answered with a hole only */
  if (fs_read_request (s, &r) == -1)
    return -1;
  if (fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE, r.cookie, r.offset,
                          r.count) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_structured_hole (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 }, cb2 = { 0 };
  struct chunk_rec ch = { 0 };
  uint8_t buf[1024], want[512], zero[512] = { 0 };

  memset (buf, 0xaa, sizeof buf);
  ch.base = buf;
  ctx_start (c, script_hole);
  int64_t ck = nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 4096,
                                            chunk_rec_callback (&ch),
                                            cbc_completion (&cb), 0);
  assert_true (ck >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (buf, want, 512);
  assert_memory_equal (buf + 512, zero, 512);
  assert_int_equal (ch.nr, 2);
  assert_int_equal (ch.ch[0].status, NBDAIO_READ_DATA);
  assert_int_equal (ch.ch[0].offset, 4096);
  assert_int_equal (ch.ch[0].count, 512);
  assert_int_equal (ch.ch[0].buf_pos, 0);
  assert_int_equal (ch.ch[1].status, NBDAIO_READ_HOLE);
  assert_int_equal (ch.ch[1].offset, 4608);
  assert_int_equal (ch.ch[1].count, 512);
  assert_int_equal (ch.ch[1].buf_pos, 512);

  memset (buf, 0xaa, sizeof buf);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 8192,
                                 cbc_completion (&cb2), 0) >= 1);
  assert_true (drive_one (c->h, &cb2, 4000) >= 0);
  assert_int_equal (cb2.error, 0);
  assert_memory_equal (buf, zero, 512);
  assert_int_equal (buf[512], 0xaa);   /* nothing past the request */
  ctx_finish (c);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (cb.frees, 1);
}

/* Block status: the extent callback gets the context and the pairs. */
static int
script_block_status (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  if (r.type != NBD_CMD_BLOCK_STATUS)
    return fs_fail (s, "expected BLOCK_STATUS, got %u", r.type);
  uint32_t ext[4] = { 4096, NBDAIO_STATE_HOLE | NBDAIO_STATE_ZERO,
                      61440, 0 };
  if (fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, r.cookie, s->hs.meta_id,
                        ext, 2) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_block_status (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  struct extent_rec ex = { 0 };

  ctx_start (c, script_block_status);
  assert_true (nbdaio_aio_block_status (c->h, 64 * KiB, 0,
                                        extent_rec_callback (&ex),
                                        cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, 0);
  assert_int_equal (ex.calls, 1);
  assert_string_equal (ex.ctx, "base:allocation");
  assert_int_equal (ex.offset, 0);
  assert_int_equal (ex.nr_entries, 4);
  assert_int_equal (ex.entries[0], 4096);
  assert_int_equal (ex.entries[1], NBDAIO_STATE_HOLE | NBDAIO_STATE_ZERO);
  assert_int_equal (ex.entries[2], 61440);
  assert_int_equal (ex.entries[3], 0);
  ctx_finish (c);
  assert_int_equal (ex.frees, 1);
  assert_int_equal (cb.frees, 1);
}

/* Byte-at-a-time delivery of valid replies. */
static int
script_trickle (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 4) == -1)
    return -1;
  s->trickle = 1;
  uint8_t data[1024];
  for (int i = 0; i < 4; i++) {
    const struct fs_req *r = &s->reqs[i];
    int rc = 0;
    switch (r->type) {
    case NBD_CMD_READ:
      fs_pattern (data, r->count, r->offset);
      if (r->count > 512) {
        rc = fs_send_chunk_data (s, 0, r->cookie, r->offset, data, 512);
        if (rc == 0)
          rc = fs_send_chunk_hole (s, 0, r->cookie, r->offset + 512,
                                   r->count - 512);
        if (rc == 0)
          rc = fs_send_chunk_none (s, r->cookie);
      }
      else
        rc = fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie,
                                 r->offset, data, r->count);
      break;
    case NBD_CMD_FLUSH:
      rc = fs_send_simple (s, 0, r->cookie, NULL, 0);
      break;
    case NBD_CMD_BLOCK_STATUS: {
      uint32_t ext[2] = { r->count, NBDAIO_STATE_HOLE };
      rc = fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, r->cookie,
                             s->hs.meta_id, ext, 1);
      break;
    }
    default:
      rc = fs_fail (s, "unexpected command %u", r->type);
    }
    if (rc == -1)
      return -1;
  }
  s->trickle = 0;
  return fs_serve_memory (s, 1);
}

static void
test_byte_at_a_time (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[4] = { { 0 } };
  struct extent_rec ex = { 0 };
  uint8_t a[1024], b[300], want[1024], zero[512] = { 0 };

  memset (a, 0xaa, sizeof a);
  memset (b, 0xaa, sizeof b);
  ctx_start (c, script_trickle);
  assert_true (nbdaio_aio_pread (c->h, a, sizeof a, 4096,
                                 cbc_completion (&cb[0]), 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[1]), 0) >= 1);
  assert_true (nbdaio_aio_block_status (c->h, 8192, 0,
                                        extent_rec_callback (&ex),
                                        cbc_completion (&cb[2]), 0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, b, sizeof b, 777,
                                 cbc_completion (&cb[3]), 0) >= 1);
  struct cbc *cs[] = { &cb[0], &cb[1], &cb[2], &cb[3] };
  assert_true (drive (c->h, cs, 4, 8000) >= 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, 0);
  }
  fs_pattern (want, 512, 4096);
  assert_memory_equal (a, want, 512);
  assert_memory_equal (a + 512, zero, 512);
  fs_pattern (want, sizeof b, 777);
  assert_memory_equal (b, want, sizeof b);
  assert_int_equal (ex.calls, 1);
  assert_int_equal (ex.nr_entries, 2);
  assert_int_equal (ex.entries[0], 8192);
  assert_int_equal (ex.entries[1], NBDAIO_STATE_HOLE);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  ctx_finish (c);
}

/* Replies out of order, chunks of different commands interleaved. */
static int
script_out_of_order (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 5) == -1)
    return -1;
  struct fs_req rd[4];
  int nrd = 0;
  uint64_t flush = 0;
  for (int i = 0; i < 5; i++) {
    if (s->reqs[i].type == NBD_CMD_READ && nrd < 4)
      rd[nrd++] = s->reqs[i];
    else if (s->reqs[i].type == NBD_CMD_FLUSH)
      flush = s->reqs[i].cookie;
  }
  if (nrd != 4 || !flush)
    return fs_fail (s, "expected 4 reads and a flush");
  uint8_t d[2048];
  /* flush first, then read 0's first half, read 3, read 2, read 0's second
   * half, read 1 */
  if (fs_send_simple (s, 0, flush, NULL, 0) == -1)
    return -1;
  fs_pattern (d, rd[0].count, rd[0].offset);
  if (fs_send_chunk_data (s, 0, rd[0].cookie, rd[0].offset, d,
                          rd[0].count / 2) == -1)
    return -1;
  for (int k = 3; k >= 2; k--) {
    fs_pattern (d, rd[k].count, rd[k].offset);
    if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, rd[k].cookie,
                            rd[k].offset, d, rd[k].count) == -1)
      return -1;
  }
  fs_pattern (d, rd[0].count, rd[0].offset);
  if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, rd[0].cookie,
                          rd[0].offset + rd[0].count / 2,
                          d + rd[0].count / 2,
                          rd[0].count - rd[0].count / 2) == -1)
    return -1;
  fs_pattern (d, rd[1].count, rd[1].offset);
  if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, rd[1].cookie, rd[1].offset,
                          d, rd[1].count) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_out_of_order (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[5] = { { 0 } };
  static uint8_t bufs[4][2048];
  static const uint64_t offs[4] = { 0, 10 * 512, 20 * 512 + 3, 300 * 512 };
  static const uint32_t lens[4] = { 2048, 512, 1000, 1536 };
  int64_t ck[5];

  ctx_start (c, script_out_of_order);
  for (int i = 0; i < 4; i++)
    ck[i] = nbdaio_aio_pread (c->h, bufs[i], lens[i], offs[i],
                              cbc_completion (&cb[i]), 0);
  ck[4] = nbdaio_aio_flush (c->h, cbc_completion (&cb[4]), 0);
  struct cbc *cs[5];
  for (int i = 0; i < 5; i++) {
    assert_true (ck[i] >= 1);
    cs[i] = &cb[i];
  }
  assert_true (drive (c->h, cs, 5, 4000) >= 0);
  for (int i = 0; i < 5; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, 0);
  }
  for (int i = 0; i < 4; i++) {
    uint8_t want[2048];
    fs_pattern (want, lens[i], offs[i]);
    assert_memory_equal (bufs[i], want, lens[i]);
  }
  ctx_finish (c);
}


/* A chunk callback that fails the command: later chunks are still read,
 * the command fails with the callback's error, the connection lives. */
static int
script_two_chunks (struct fs *s)
{
  struct fs_req r;
  uint8_t d[1024];
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  fs_pattern (d, sizeof d, r.offset);
  if (fs_send_chunk_data (s, 0, r.cookie, r.offset, d, 512) == -1
      || fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r.cookie, r.offset + 512,
                             d + 512, 512) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static int
failing_chunk_cb (void *ud, const void *subbuf, size_t count,
                  uint64_t offset, unsigned status, int *error)
{
  int *n = ud;
  (void) subbuf; (void) count; (void) offset; (void) status;
  (*n)++;
  *error = EBADMSG;
  return -1;
}

static void
test_chunk_callback_error (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  int n = 0;
  uint8_t buf[1024];

  ctx_start (c, script_two_chunks);
  nbdaio_chunk_callback chunk = { .callback = failing_chunk_cb,
                                  .user_data = &n };
  assert_true (nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 0, chunk,
                                            cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, EBADMSG);
  assert_true (n >= 1);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_pread (c->h, buf, 512, 0, 0), 0);
  ctx_finish (c);
}

/* ERROR_OFFSET inside a read: the chunk callback sees NBDAIO_READ_ERROR at
 * that offset and the command fails with the error; an ERROR chunk to a
 * FLUSH fails the flush. */
static int
script_error_offset (struct fs *s)
{
  struct fs_req r;
  uint8_t d[512];
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  fs_pattern (d, sizeof d, r.offset);
  uint8_t e[6 + 3 + 8];
  wire_put32 (e, NBD_EIO);
  wire_put16 (e + 4, 3);
  memcpy (e + 6, "bad", 3);
  wire_put64 (e + 9, r.offset + 512);
  if (fs_send_chunk_data (s, 0, r.cookie, r.offset, d, sizeof d) == -1
      || fs_send_chunk (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR_OFFSET,
                        r.cookie, e, sizeof e) == -1)
    return -1;
  if (fs_read_request (s, &r) == -1)
    return -1;
  if (fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                           r.cookie, NBD_ENOSPC, "full") == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_error_offset_chunk (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 }, fl = { 0 };
  struct chunk_rec ch = { 0 };
  uint8_t buf[1024];

  ch.base = buf;
  ctx_start (c, script_error_offset);
  assert_true (nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 8192,
                                            chunk_rec_callback (&ch),
                                            cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, EIO);
  assert_int_equal (ch.nr, 2);
  assert_int_equal (ch.ch[0].status, NBDAIO_READ_DATA);
  assert_int_equal (ch.ch[1].status, NBDAIO_READ_ERROR);
  assert_int_equal (ch.ch[1].offset, 8192 + 512);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&fl), 0) >= 1);
  assert_true (drive_one (c->h, &fl, 4000) >= 0);
  assert_int_equal (fl.error, ENOSPC);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  ctx_finish (c);
  assert_int_equal (ch.frees, 1);
}

/* Block status in several chunks: one extent callback per chunk. */
static int
script_bs_chunks (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  uint32_t e1[2] = { 4096, NBDAIO_STATE_HOLE };
  if (fs_send_chunk_bs (s, 0, r.cookie, s->hs.meta_id, e1, 1) == -1
      || fs_send_chunk_none (s, r.cookie) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_block_status_chunks (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  struct extent_rec ex = { 0 };

  ctx_start (c, script_bs_chunks);
  assert_true (nbdaio_aio_block_status (c->h, 8192, 0,
                                        extent_rec_callback (&ex),
                                        cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, 0);
  assert_int_equal (ex.calls, 1);
  assert_int_equal (ex.nr_entries, 2);
  assert_int_equal (ex.entries[0], 4096);
  ctx_finish (c);
}

/* Many commands in flight, answered in a scrambled order. */
#define NMANY 200
static int
script_many (struct fs *s)
{
  static struct fs_req r[NMANY];
  static uint8_t d[4096];
  if (fs_default_handshake (s) != 0)
    return -1;
  for (int i = 0; i < NMANY; i++)
    if (fs_read_request (s, &r[i]) == -1)
      return -1;
  /* a fixed permutation: stride 77 is coprime with 200 */
  for (int k = 0; k < NMANY; k++) {
    const struct fs_req *q = &r[(k * 77) % NMANY];
    if (q->count > sizeof d)
      return fs_fail (s, "request too big");
    fs_pattern (d, q->count, q->offset);
    if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, q->cookie, q->offset, d,
                            q->count) == -1)
      return -1;
  }
  return fs_serve_memory (s, 1);
}

static void
test_many_in_flight (void **state)
{
  struct ctx *c = *state;
  static uint8_t bufs[NMANY][4096];
  static struct cbc cb[NMANY];
  struct cbc *cs[NMANY];

  memset (cb, 0, sizeof cb);
  ctx_start (c, script_many);
  for (int i = 0; i < NMANY; i++) {
    cs[i] = &cb[i];
    cb[i].ret = 1;
    uint32_t len = 512 + (i % 8) * 448;
    assert_true (nbdaio_aio_pread (c->h, bufs[i], len, (uint64_t) i * 4096,
                                   cbc_completion (&cb[i]), 0) >= 1);
  }
  assert_int_equal (nbdaio_aio_in_flight (c->h), NMANY);
  assert_true (drive (c->h, cs, NMANY, 8000) >= 0);
  for (int i = 0; i < NMANY; i++) {
    uint8_t want[4096];
    uint32_t len = 512 + (i % 8) * 448;
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, 0);
    assert_int_equal (cb[i].frees, 1);
    fs_pattern (want, len, (uint64_t) i * 4096);
    assert_memory_equal (bufs[i], want, len);
  }
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  ctx_finish (c);
}

/* nbdaio_poll on an idle connection times out with 0. */
static void
test_poll_idle (void **state)
{
  struct ctx *c = *state;
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_poll (c->h, 20), 0);
  assert_int_equal (nbdaio_aio_notify_read (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  ctx_finish (c);
}


/* The server vanishes (closes with unread data) while a big write is still
 * being sent: no SIGPIPE, every command fails with ENOTCONN exactly once. */
static int
script_abort (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  fs_abort (s);
  return 0;
}

static void
test_server_vanishes (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { 0 } };
  const size_t big = 8 * 1024 * 1024;
  uint8_t *w = calloc (1, big);
  uint8_t rbuf[512];

  assert_non_null (w);
  c->s->hs.size = 64 * 1024 * 1024;
  ctx_start (c, script_abort);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[0]), 0) >= 1);
  assert_true (nbdaio_aio_pwrite (c->h, w, big, 0, cbc_completion (&cb[1]),
                                  0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, rbuf, sizeof rbuf, 0,
                                 cbc_completion (&cb[2]), 0) >= 1);
  assert_true (drive_until_dead (c->h, 4000));
  assert_non_null (nbdaio_get_connection_error (c->h));
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, ENOTCONN);
  }
  ctx_finish (c);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].frees, 1);
  }
  free (w);
}

/* A completion callback that runs because the connection died tries to
 * issue a new command: that must fail cleanly (free once, no callback). */
struct reissue {
  struct nbdaio_handle *h;
  struct cbc inner;
  int64_t rc;
  int err;
  uint8_t buf[512];
};

static int
reissue_cb (void *ud, int *error)
{
  struct reissue *r = ud;
  (void) error;
  r->rc = nbdaio_aio_pread (r->h, r->buf, sizeof r->buf, 0,
                            cbc_completion (&r->inner), 0);
  r->err = nbdaio_get_errno ();
  return 1;
}

static void
test_issue_during_death (void **state)
{
  struct ctx *c = *state;
  struct reissue r = { .h = c->h };
  struct cbc other = { 0 };

  ctx_start (c, script_eof);
  nbdaio_completion_callback cb = { .callback = reissue_cb, .user_data = &r };
  assert_true (nbdaio_aio_flush (c->h, cb, 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&other), 0) >= 1);
  uint8_t buf[512];
  struct cbc third = { 0 };
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&third),
                                 0) >= 1);
  assert_true (drive_until_dead (c->h, 4000));
  assert_int_equal (r.rc, -1);
  assert_int_equal (r.err, ENOTCONN);
  assert_int_equal (r.inner.calls, 0);
  assert_int_equal (r.inner.frees, 1);
  assert_int_equal (other.calls, 1);
  assert_int_equal (third.calls, 1);
  ctx_finish (c);
  assert_int_equal (r.inner.calls, 0);
  assert_int_equal (r.inner.frees, 1);
}

/* ---------------------------------------------------------------------- */
/* memory: a large block status chunk */

/* Block status of BIG_N one-byte extents for a 1 MiB request, sent in
 * stages: the header and one payload byte, then up to STAGE2 payload
 * bytes, then the rest; between stages the server waits for the test. */
#define BIG_N 100000u
#define BIG_LEN (4 + 8 * BIG_N)
#define STAGE2 300000u

/* A structured reply header at p. */
static void
put_chunk_header (uint8_t *p, uint16_t flags, uint16_t type, uint64_t cookie,
                  uint32_t len)
{
  wire_put32 (p, NBD_MAGIC_STRUCTURED_REPLY);
  wire_put16 (p + 4, flags);
  wire_put16 (p + 6, type);
  wire_put64 (p + 8, cookie);
  wire_put32 (p + 16, len);
}

static int
send_staged (struct fs *s, const uint8_t *b)
{
  static const uint32_t upto[] = { 1, STAGE2, BIG_LEN };
  uint32_t from = 0;
  for (int i = 0; i < 3; i++) {
    if ((i && fs_wait_signal (s) == -1) ||
        fs_write (s, b + from, upto[i] - from) == -1)
      return -1;
    from = upto[i];
  }
  return 0;
}

static int
script_bs_staged (struct fs *s)
{
  struct fs_req r;
  uint8_t hdr[NBD_STRUCTURED_REPLY_LEN];
  uint8_t *b = malloc (BIG_LEN);
  int rc = -1;

  if (!b)
    return fs_fail (s, "out of memory");
  if (fs_handshake_and_read (s, &r) == 0) {
    wire_put32 (b, s->hs.meta_id);
    for (uint32_t i = 0; i < BIG_N; i++) {
      wire_put32 (b + 4 + 8 * i, 1);
      wire_put32 (b + 8 + 8 * i, i & 3);
    }
    put_chunk_header (hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
                      r.cookie, BIG_LEN);
    if (fs_write (s, hdr, sizeof hdr) == 0 && send_staged (s, b) == 0)
      rc = 0;
  }
  free (b);
  return rc == 0 ? fs_serve_memory (s, 1) : -1;
}

struct big_extents {
  size_t nr, bad;
  int calls;
};

static int
big_extent_cb (void *ud, const char *metacontext, uint64_t offset,
               uint32_t *entries, size_t nr_entries, int *error)
{
  struct big_extents *x = ud;
  (void) metacontext; (void) offset; (void) error;
  x->calls++;
  x->nr = nr_entries;
  for (size_t i = 0; i + 1 < nr_entries; i += 2)
    x->bad += entries[i] != 1 || entries[i + 1] != ((i / 2) & 3);
  return 0;
}

/* Poll until the client holds exactly want bytes of the chunk it waits
 * for (bounded), and check that it does; then have it read once more (it
 * makes room before each read: the moment it would grow the buffer). */
static void
wait_buffered (struct nbdaio_handle *h, size_t want)
{
  for (int i = 0; i < 400; i++) {
    if (h->rx.state == RX_PAYLOAD && h->rlen - h->rpos >= want)
      break;
    assert_true (nbdaio_poll (h, 10) >= 0);
  }
  assert_int_equal (nbdaio_aio_notify_read (h), 0);
  assert_int_equal (h->rx.state, RX_PAYLOAD);
  assert_int_equal (h->rlen - h->rpos, want);
}

/* The reply buffer grows only as bytes of a large chunk arrive (an
 * announced, stalled chunk costs nothing), and shrinks back afterwards. */
static void
test_bs_buffer_growth (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  struct big_extents x = { 0 };
  nbdaio_extent_callback ext = { .callback = big_extent_cb, .user_data = &x };
  uint8_t buf[512], want[512];

  ctx_start (c, script_bs_staged);
  assert_true (nbdaio_aio_block_status (c->h, MiB, 0, ext,
                                        cbc_completion (&cb), 0) >= 1);
  wait_buffered (c->h, 1);
  fprintf (stderr, "  after 1 of %u bytes: buffer %zu\n", BIG_LEN,
           c->h->rcap);
  assert_int_equal (c->h->rcap, RBUF_SIZE);
  fs_signal (c->s);
  wait_buffered (c->h, STAGE2);
  fprintf (stderr, "  after %u of %u bytes: buffer %zu\n", STAGE2, BIG_LEN,
           c->h->rcap);
  assert_true (c->h->rcap >= STAGE2 && c->h->rcap <= 2 * STAGE2);
  fs_signal (c->s);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, 0);
  assert_int_equal (x.calls, 1);
  assert_int_equal (x.nr, 2 * BIG_N);
  assert_int_equal (x.bad, 0);
  fprintf (stderr, "  after the chunk: buffer %zu, extents array %zu "
           "entries\n", c->h->rcap, c->h->extents_cap);
  assert_int_equal (c->h->rcap, RBUF_SIZE);
  assert_true (c->h->extents_cap * sizeof (uint32_t) <= RBUF_SIZE);
  /* and the connection goes on */
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 4096, 0), 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (buf, want, sizeof buf);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* a read in 256K one-byte chunks, scrambled */

#define FRAG_N (256u * 1024)
#define FRAG_CHUNK (NBD_STRUCTURED_REPLY_LEN + 12) /* data + 1 byte, hole */

/* Byte i is a hole when i % 7 == 3, else data. */
static int
frag_is_hole (uint32_t i)
{
  return i % 7 == 3;
}

/* One chunk for byte i at p; returns its length. */
static size_t
frag_chunk (uint8_t *p, uint64_t cookie, uint32_t i, int last)
{
  int hole = frag_is_hole (i);
  put_chunk_header (p, last ? NBD_REPLY_FLAG_DONE : 0,
                    hole ? NBD_REPLY_TYPE_OFFSET_HOLE
                         : NBD_REPLY_TYPE_OFFSET_DATA, cookie, hole ? 12 : 9);
  wire_put64 (p + 20, i);
  if (hole)
    wire_put32 (p + 28, 1);
  else
    p[28] = fs_pattern_byte (i);
  return hole ? 32 : 29;
}

static int
script_frag (struct fs *s)
{
  struct fs_req r;
  uint32_t *perm = malloc (FRAG_N * sizeof *perm);
  uint8_t *b = malloc ((size_t) FRAG_N * FRAG_CHUNK);
  uint64_t x = 0x9e3779b97f4a7c15u;
  size_t len = 0;
  int rc = -1;

  if (perm && b && fs_handshake_and_read (s, &r) == 0) {
    if (r.type != NBD_CMD_READ || r.offset != 0 || r.count != FRAG_N)
      return fs_fail (s, "unexpected request");
    for (uint32_t i = 0; i < FRAG_N; i++)
      perm[i] = i;
    for (uint32_t i = FRAG_N - 1; i > 0; i--) {   /* Fisher-Yates */
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      uint32_t j = (uint32_t) (x % (i + 1)), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    for (uint32_t k = 0; k < FRAG_N; k++)
      len += frag_chunk (b + len, r.cookie, perm[k], k == FRAG_N - 1);
    rc = fs_write (s, b, len);
  }
  free (perm);
  free (b);
  return rc == 0 ? fs_serve_memory (s, 1) : -1;
}

struct frag_count {
  uint32_t calls, bytes, bad;
};

static int
frag_chunk_cb (void *ud, const void *subbuf, size_t count, uint64_t offset,
               unsigned status, int *error)
{
  struct frag_count *f = ud;
  (void) subbuf; (void) error;
  f->calls++;
  f->bytes += (uint32_t) count;
  f->bad += count != 1 ||
    (status == NBDAIO_READ_HOLE) != frag_is_hole ((uint32_t) offset);
  return 0;
}

/* Tracking what such a reply covered takes a bitmap, not a sorted list:
 * the read completes (quickly; timings are reported, not asserted here)
 * with every byte right. */
static void
test_fragmented_256k (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  struct frag_count f = { 0 };
  nbdaio_chunk_callback chunk = { .callback = frag_chunk_cb, .user_data = &f };
  uint8_t *buf = malloc (FRAG_N);
  uint32_t wrong = 0;

  assert_non_null (buf);
  memset (buf, 0xaa, FRAG_N);
  ctx_start (c, script_frag);
  assert_true (nbdaio_aio_pread_structured (c->h, buf, FRAG_N, 0, chunk,
                                            cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 20000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (f.calls, FRAG_N);
  assert_int_equal (f.bytes, FRAG_N);
  assert_int_equal (f.bad, 0);
  for (uint32_t i = 0; i < FRAG_N; i++)
    wrong += buf[i] != (frag_is_hole (i) ? 0 : fs_pattern_byte (i));
  assert_int_equal (wrong, 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  ctx_finish (c);
  free (buf);
}

/* ---------------------------------------------------------------------- */
/* callbacks may not re-enter the reply reader */

#define RE_PIECES 8

/* A read answered in RE_PIECES chunks of 512 bytes, then serve. */
static int
script_reenter (struct fs *s)
{
  struct fs_req r;
  uint8_t d[512];
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  if (r.type != NBD_CMD_READ || r.count != RE_PIECES * 512)
    return fs_fail (s, "unexpected request");
  for (int i = 0; i < RE_PIECES; i++) {
    fs_pattern (d, sizeof d, r.offset + 512 * i);
    if (fs_send_chunk_data (s, i == RE_PIECES - 1 ? NBD_REPLY_FLAG_DONE : 0,
                            r.cookie, r.offset + 512 * i, d, 512) == -1)
      return -1;
  }
  return fs_serve_memory (s, 1);
}

enum { RE_NOTIFY_READ, RE_POLL, RE_PREAD, RE_SREAD, RE_BS, RE_FLUSH,
       RE_SHUTDOWN, RE_CALLS };
static const char *const re_names[RE_CALLS] = {
  "nbdaio_aio_notify_read", "nbdaio_poll", "nbdaio_pread",
  "nbdaio_pread_structured", "nbdaio_block_status", "nbdaio_flush",
  "nbdaio_shutdown",
};

struct reenter {
  struct nbdaio_handle *h;
  int depth;                    /* > 0 inside one of our callbacks */
  int pieces[RE_PIECES];        /* chunk callbacks per piece */
  int rc[RE_CALLS], err[RE_CALLS], msg_ok[RE_CALLS];
  int frees;                    /* of the callbacks passed to sync calls */
  int write_rc;                 /* nbdaio_aio_notify_write */
  int64_t flush_cookie;         /* an aio flush issued from the callback */
  struct cbc flush;
  uint8_t buf[512];
};

static void
re_free (void *ud)
{
  ((struct reenter *) ud)->frees++;
}

static int
re_nop_chunk (void *ud, const void *subbuf, size_t count, uint64_t offset,
              unsigned status, int *error)
{
  (void) ud; (void) subbuf; (void) count; (void) offset; (void) status;
  (void) error;
  return 0;
}

static int
re_nop_extent (void *ud, const char *metacontext, uint64_t offset,
               uint32_t *entries, size_t nr_entries, int *error)
{
  (void) ud; (void) metacontext; (void) offset; (void) entries;
  (void) nr_entries; (void) error;
  return 0;
}

/* Call each reader entry point from inside a callback; record the
 * outcomes (the first n of them). */
static void
re_try (struct reenter *r, int n)
{
  nbdaio_chunk_callback ch = { .callback = re_nop_chunk, .user_data = r,
                               .free = re_free };
  nbdaio_extent_callback ex = { .callback = re_nop_extent, .user_data = r,
                                .free = re_free };
  for (int i = 0; i < n; i++) {
    switch (i) {
    case RE_NOTIFY_READ: r->rc[i] = nbdaio_aio_notify_read (r->h); break;
    case RE_POLL: r->rc[i] = nbdaio_poll (r->h, 0); break;
    case RE_PREAD:
      r->rc[i] = nbdaio_pread (r->h, r->buf, 512, 0, 0);
      break;
    case RE_SREAD:
      r->rc[i] = nbdaio_pread_structured (r->h, r->buf, 512, 0, ch, 0);
      break;
    case RE_BS: r->rc[i] = nbdaio_block_status (r->h, 512, 0, ex, 0); break;
    case RE_FLUSH: r->rc[i] = nbdaio_flush (r->h, 0); break;
    case RE_SHUTDOWN: r->rc[i] = nbdaio_shutdown (r->h); break;
    }
    r->err[i] = nbdaio_get_errno ();
    r->msg_ok[i] = contains (nbdaio_get_error (), re_names[i]) &&
      contains (nbdaio_get_error (), "from a callback");
  }
}

static int
re_chunk (void *ud, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct reenter *r = ud;
  (void) subbuf; (void) count; (void) status; (void) error;
  if (offset % 512 == 0 && offset / 512 < RE_PIECES)
    r->pieces[offset / 512]++;
  if (r->depth++ == 0 && offset == 512) {
    re_try (r, RE_CALLS);
    /* what a callback may do: issue, send, as before */
    r->flush_cookie = nbdaio_aio_flush (r->h, cbc_completion (&r->flush), 0);
    r->write_rc = nbdaio_aio_notify_write (r->h);
  }
  r->depth--;
  return 0;
}

static int
re_done (void *ud, int *error)
{
  struct reenter *r = ud;
  (void) error;
  if (r->depth++ == 0)
    re_try (r, RE_SHUTDOWN);    /* shutdown need not wait here */
  r->depth--;
  return 0;
}

static int
re_extent (void *ud, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct reenter *r = ud;
  (void) metacontext; (void) offset; (void) entries; (void) nr_entries;
  (void) error;
  if (r->depth++ == 0)
    re_try (r, RE_POLL + 1);
  r->depth--;
  return 0;
}

static void
assert_refused (const struct reenter *r, int n, const char *where)
{
  for (int i = 0; i < n; i++) {
    if (r->rc[i] != -1 || r->err[i] != EBUSY || !r->msg_ok[i])
      fprintf (stderr, "  %s in a %s callback: %d, errno %d\n", re_names[i],
               where, r->rc[i], r->err[i]);
    assert_int_equal (r->rc[i], -1);
    assert_int_equal (r->err[i], EBUSY);
    assert_true (r->msg_ok[i]);
  }
}

/* A chunk callback and a completion callback that call notify_read, poll
 * or a synchronous call get EBUSY: no chunk is delivered twice, the free
 * functions they passed run once, issuing and notify_write still work,
 * and the connection goes on. */
static void
test_reenter_from_callbacks (void **state)
{
  struct ctx *c = *state;
  static struct reenter r, rd, rx;
  struct cbc rdone = { 0 }, bs = { 0 };
  uint8_t buf[RE_PIECES * 512], want[RE_PIECES * 512];

  memset (&r, 0, sizeof r);
  r.h = c->h;
  ctx_start (c, script_reenter);
  nbdaio_chunk_callback chunk = { .callback = re_chunk, .user_data = &r };
  assert_true (nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 0, chunk,
                                            cbc_completion (&rdone), 0) >= 1);
  assert_true (drive_one (c->h, &rdone, 4000) >= 0);
  wait_idle (c->h);             /* the flush issued in the callback */
  for (int i = 0; i < RE_PIECES; i++)
    assert_int_equal (r.pieces[i], 1);
  assert_refused (&r, RE_CALLS, "chunk");
  assert_int_equal (r.frees, 2);
  assert_int_equal (rdone.calls, 1);
  assert_int_equal (rdone.error, 0);
  assert_int_equal (r.flush.calls, 1);
  assert_int_equal (r.flush.error, 0);
  assert_true (r.flush_cookie >= 1);
  assert_int_equal (r.write_rc, 0);
  fs_pattern (want, sizeof want, 0);
  assert_memory_equal (buf, want, sizeof buf);

  /* a completion callback */
  memset (&rd, 0, sizeof rd);
  rd.h = c->h;
  nbdaio_completion_callback done = { .callback = re_done, .user_data = &rd };
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, done, 0) >= 1);
  wait_idle (c->h);
  assert_refused (&rd, RE_SHUTDOWN, "completion");
  assert_int_equal (rd.frees, 2);

  /* an extent callback */
  memset (&rx, 0, sizeof rx);
  rx.h = c->h;
  nbdaio_extent_callback ext = { .callback = re_extent, .user_data = &rx };
  assert_true (nbdaio_aio_block_status (c->h, 4096, 0, ext,
                                        cbc_completion (&bs), 0) >= 1);
  assert_true (drive_one (c->h, &bs, 4000) >= 0);
  assert_int_equal (bs.error, 0);
  assert_refused (&rx, RE_POLL + 1, "extent");

  /* everything issued from the callbacks completed; the handle lives */
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_pread (c->h, buf, 512, 8192, 0), 0);
  fs_pattern (want, 512, 8192);
  assert_memory_equal (buf, want, 512);
  ctx_finish (c);
}

int
main (void)
{
#define T(f) CTX_TEST (f)
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_reply_magic),
    cmocka_unit_test (test_reply_cookie),
    cmocka_unit_test (test_reply_after_done),
    cmocka_unit_test (test_simple_reply_read),
    cmocka_unit_test (test_chunk_bounds),
    cmocka_unit_test (test_chunk_overlap),
    cmocka_unit_test (test_chunk_coverage),
    cmocka_unit_test (test_chunk_command),
    cmocka_unit_test (test_chunk_none),
    cmocka_unit_test (test_chunk_error_zero),
    cmocka_unit_test (test_chunk_error_length),
    cmocka_unit_test (test_chunk_unknown),
    cmocka_unit_test (test_chunk_length),
    cmocka_unit_test (test_bs_context),
    cmocka_unit_test (test_bs_extent),
    cmocka_unit_test (test_chunk_df),
    T (test_unknown_error_chunk),
    T (test_error_values),
    T (test_simple_replies),
    T (test_eshutdown),
    T (test_eshutdown_idle),
    T (test_eof),
    T (test_eof_mid_reply),
    T (test_structured_hole),
    T (test_block_status),
    T (test_byte_at_a_time),
    T (test_out_of_order),
    T (test_chunk_callback_error),
    T (test_error_offset_chunk),
    T (test_block_status_chunks),
    T (test_many_in_flight),
    T (test_poll_idle),
    T (test_server_vanishes),
    T (test_issue_during_death),
    T (test_bs_buffer_growth),
    T (test_fragmented_256k),
    T (test_reenter_from_callbacks),
  };
#undef T
  return cmocka_run_group_tests (tests, NULL, NULL);
}
