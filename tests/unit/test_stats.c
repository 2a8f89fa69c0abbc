/* test_stats.c - nbdaio_get_stats against scripted exchanges whose every
 * byte is known: requests and replies by command type, wire and payload
 * bytes both ways, simple replies and structured chunks, a protocol
 * violation counted, and the size-versioned copy. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

/* The counters of h (asserting the call works). */
static struct nbdaio_stats
stats (struct nbdaio_handle *h)
{
  struct nbdaio_stats st;

  memset (&st, 0xa5, sizeof st);
  assert_int_equal (nbdaio_get_stats (h, &st, sizeof st), sizeof st);
  return st;
}

static void
assert_cmd (const struct nbdaio_cmd_stats *k, uint64_t issued,
            uint64_t completed, uint64_t failed)
{
  assert_int_equal (k->issued, issued);
  assert_int_equal (k->completed, completed);
  assert_int_equal (k->failed, failed);
}

/* ---------------------------------------------------------------------- */

/* A 4096-byte read answered by a 2048-byte data chunk and a hole chunk,
 * a 1024-byte write by a simple reply, a flush by NONE, a trim by an
 * ERROR chunk (EIO, "boom"); then NBD_CMD_DISC. */
static int
script_mixed (struct fs *s)
{
  static uint8_t data[2048];
  struct fs_req *r = s->reqs, disc;

  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 4) == -1)
    return -1;
  fs_pattern (data, sizeof data, 0);
  if (fs_send_chunk_data (s, 0, r[0].cookie, 0, data, sizeof data) == -1 ||
      fs_send_chunk_hole (s, NBD_REPLY_FLAG_DONE, r[0].cookie, 2048,
                          2048) == -1 ||
      fs_send_simple (s, 0, r[1].cookie, NULL, 0) == -1 ||
      fs_send_chunk_none (s, r[2].cookie) == -1 ||
      fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                           r[3].cookie, NBD_EIO, "boom") == -1 ||
      fs_read_request (s, &disc) == -1)
    return -1;
  if (disc.type != NBD_CMD_DISC)
    return fs_fail (s, "expected NBD_CMD_DISC, got type %u", disc.type);
  return 0;
}

static void
test_mixed_exchange (void **state)
{
  struct ctx *c = *state;
  static uint8_t rbuf[4096], wbuf[1024];
  struct cbc cb[4] = { { .ret = 1 }, { .ret = 1 }, { .ret = 1 }, { .ret = 1 } };
  struct cbc *cs[4] = { &cb[0], &cb[1], &cb[2], &cb[3] };
  struct nbdaio_stats st;

  ctx_start (c, script_mixed);
  st = stats (c->h);            /* the handshake is not counted */
  assert_int_equal (st.bytes_sent + st.bytes_received, 0);
  assert_true (nbdaio_aio_pread (c->h, rbuf, 4096, 0, cbc_completion (&cb[0]),
                                 0) >= 1);
  assert_true (nbdaio_aio_pwrite (c->h, wbuf, 1024, 8192,
                                  cbc_completion (&cb[1]), 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[2]), 0) >= 1);
  assert_true (nbdaio_aio_trim (c->h, 512, 0, cbc_completion (&cb[3]), 0)
               >= 1);
  st = stats (c->h);            /* issued, nothing sent yet */
  assert_cmd (&st.read, 1, 0, 0);
  assert_int_equal (st.bytes_sent, 0);
  assert_true (drive (c->h, cs, 4, 4000) >= 0);
  assert_int_equal (cb[3].error, EIO);

  st = stats (c->h);
  assert_cmd (&st.read, 1, 1, 0);
  assert_cmd (&st.write, 1, 1, 0);
  assert_cmd (&st.flush, 1, 1, 0);
  assert_cmd (&st.trim, 1, 1, 1);
  assert_cmd (&st.zero, 0, 0, 0);
  assert_cmd (&st.cache, 0, 0, 0);
  assert_cmd (&st.block_status, 0, 0, 0);
  assert_int_equal (st.bytes_sent, 4 * 28 + 1024);
  assert_int_equal (st.payload_sent, 1024);
  /* data chunk 20 + 8 + 2048, hole 20 + 12, simple reply 16, NONE 20,
   * ERROR 20 + 6 + 4 */
  assert_int_equal (st.bytes_received, 2076 + 32 + 16 + 20 + 30);
  assert_int_equal (st.payload_received, 2048);
  assert_int_equal (st.simple_replies, 1);
  assert_int_equal (st.structured_chunks, 4);
  assert_int_equal (st.timeouts, 0);
  assert_int_equal (st.violations, 0);

  assert_int_equal (nbdaio_shutdown (c->h), 0);
  st = stats (c->h);            /* NBD_CMD_DISC is a request too; the
                                 * counters outlive the connection */
  assert_int_equal (st.bytes_sent, 5 * 28 + 1024);
  assert_cmd (&st.trim, 1, 1, 1);
  ctx_finish (c);
}

/* Simple replies only: a read's data comes in the simple reply. */
static int
script_simple_read (struct fs *s)
{
  static uint8_t data[4096];
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  fs_pattern (data, sizeof data, r.offset);
  if (fs_send_simple (s, 0, r.cookie, data, sizeof data) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_simple_read (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[4096];
  struct nbdaio_stats st;

  c->s->hs.sr = 0;
  c->s->hs.tflags &= ~NBD_FLAG_SEND_DF;         /* DF needs structured */
  ctx_start (c, script_simple_read);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 4096, 0), 0);
  st = stats (c->h);
  assert_cmd (&st.read, 1, 1, 0);
  assert_int_equal (st.bytes_sent, 28);
  assert_int_equal (st.payload_sent, 0);
  assert_int_equal (st.bytes_received, 16 + 4096);
  assert_int_equal (st.payload_received, 4096);
  assert_int_equal (st.simple_replies, 1);
  assert_int_equal (st.structured_chunks, 0);
  ctx_finish (c);
}

/* A reply for a cookie never sent: the violation is counted once, the
 * read fails with EPROTO. */
static int
script_bad_cookie (struct fs *s)
{
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1 ||
      fs_send_chunk_none (s, r.cookie ^ 0x100000) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_violation (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[512];
  struct cbc a = { .ret = 1 };
  struct nbdaio_stats st;

  ctx_start (c, script_bad_cookie);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&a), 0)
               >= 1);
  assert_int_equal (drive_until_dead (c->h, 4000), 1);
  assert_int_equal (a.error, EPROTO);
  st = stats (c->h);
  assert_int_equal (st.violations, 1);
  assert_int_equal (st.timeouts, 0);
  assert_cmd (&st.read, 1, 1, 1);
  assert_int_equal (st.structured_chunks, 0);   /* its cookie was unknown */
  assert_int_equal (st.bytes_received, 20);
  ctx_finish (c);
}

/* The copy is versioned by size: a shorter struct gets its first bytes,
 * a longer one the rest zeroed. */
static void
test_sizes (void **state)
{
  struct ctx *c = *state;
  struct { struct nbdaio_stats st; uint64_t more[4]; } big;
  struct nbdaio_stats st;
  size_t part = offsetof (struct nbdaio_stats, write);
  uint8_t ff[sizeof st];

  assert_int_equal (nbdaio_get_stats (NULL, &st, sizeof st), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_get_stats (c->h, NULL, sizeof st), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);

  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  memset (&st, 0xff, sizeof st);
  memset (ff, 0xff, sizeof ff);
  assert_int_equal (nbdaio_get_stats (c->h, &st, part), part);
  assert_cmd (&st.read, 0, 0, 0);
  assert_memory_equal ((uint8_t *) &st + part, ff, sizeof st - part);

  memset (&big, 0xff, sizeof big);
  assert_int_equal (nbdaio_get_stats (c->h, &big.st, sizeof big),
                    sizeof big.st);
  assert_cmd (&big.st.flush, 1, 1, 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal (big.more[i], 0);
  assert_int_equal (nbdaio_get_stats (c->h, &st, 0), 0);
  ctx_finish (c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_mixed_exchange),
    CTX_TEST (test_simple_read),
    CTX_TEST (test_violation),
    CTX_TEST (test_sizes),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
