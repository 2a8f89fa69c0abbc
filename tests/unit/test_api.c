/* test_api.c - unit tests of the public API's semantics against the
 * scripted server: cookies, the exactly-once rules for callbacks and free
 * functions (success, server error, every local issue error, close with
 * commands in flight), retirement (auto-retire, command_completed,
 * peek_command_completed, in_flight), max in flight, strictness, the
 * synchronous wrappers and graceful disconnect. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

/* ---------------------------------------------------------------------- */

static void
test_cookies_unique (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[16][512];
  struct cbc cb[16] = { { 0 } };
  struct cbc *cs[16];
  int64_t ck[16];

  ctx_start (c, script_serve);
  for (int round = 0; round < 2; round++) {
    for (int i = round * 8; i < round * 8 + 8; i++) {
      cs[i] = &cb[i];
      cb[i].ret = 1;
      switch (i % 4) {
      case 0:
        ck[i] = nbdaio_aio_pread (c->h, buf[i], 512, i * 512,
                                  cbc_completion (&cb[i]), 0);
        break;
      case 1:
        ck[i] = nbdaio_aio_pwrite (c->h, buf[i], 512, i * 512,
                                   cbc_completion (&cb[i]), 0);
        break;
      case 2:
        ck[i] = nbdaio_aio_flush (c->h, cbc_completion (&cb[i]), 0);
        break;
      default:
        ck[i] = nbdaio_aio_zero (c->h, 512, i * 512, cbc_completion (&cb[i]),
                                 0);
      }
      assert_true (ck[i] >= 1);
      for (int j = 0; j < i; j++)
        assert_true (ck[j] != ck[i]);
    }
    assert_true (drive (c->h, cs + round * 8, 8, 4000) >= 0);
  }
  for (int i = 0; i < 16; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, 0);
    assert_int_equal (cb[i].frees, 1);   /* auto-retired: freed already */
  }
  ctx_finish (c);
}

static void
test_unconnected (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  struct chunk_rec ch = { 0 };
  struct extent_rec ex = { 0 };
  uint8_t buf[512];

  assert_int_equal (nbdaio_aio_pread (c->h, buf, 512, 0,
                                      cbc_completion (&cb), 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_non_null (nbdaio_get_error ());
  assert_int_equal (cb.calls, 0);
  assert_int_equal (cb.frees, 1);

  cb = (struct cbc) { 0 };
  assert_int_equal (nbdaio_aio_pread_structured (c->h, buf, 512, 0,
                                                 chunk_rec_callback (&ch),
                                                 cbc_completion (&cb), 0),
                    -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (ch.calls, 0);

  cb = (struct cbc) { 0 };
  assert_int_equal (nbdaio_aio_block_status (c->h, 512, 0,
                                             extent_rec_callback (&ex),
                                             cbc_completion (&cb), 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ex.frees, 1);

  cb = (struct cbc) { 0 };
  assert_int_equal (nbdaio_aio_flush (c->h, cbc_completion (&cb), 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (cb.frees, 1);
  cb = (struct cbc) { 0 };
  assert_int_equal (nbdaio_aio_pwrite (c->h, buf, 512, 0,
                                       cbc_completion (&cb), 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (cb.frees, 1);

  assert_int_equal (nbdaio_pread (c->h, buf, 512, 0, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  assert_int_equal (nbdaio_aio_disconnect (c->h), -1);
}

/* One request answered with EIO, then a memory disk. */
static int
script_eio_first (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  free (r.data);
  if (fs_send_error_reply (s, &r, NBD_EIO) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

static void
test_free_success_and_server_error (void **state)
{
  struct ctx *c = *state;
  struct cbc bad = { 0 }, good = { 0 };

  bad.ret = 1;
  good.ret = 1;
  ctx_start (c, script_eio_first);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&bad), 0) >= 1);
  assert_true (drive_one (c->h, &bad, 4000) >= 0);
  assert_int_equal (bad.calls, 1);
  assert_int_equal (bad.error, EIO);
  assert_int_equal (bad.frees, 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&good), 0) >= 1);
  assert_true (drive_one (c->h, &good, 4000) >= 0);
  assert_int_equal (good.calls, 1);
  assert_int_equal (good.error, 0);
  assert_int_equal (good.frees, 1);
  ctx_finish (c);
  assert_int_equal (bad.calls, 1);
  assert_int_equal (bad.frees, 1);
  assert_int_equal (good.calls, 1);
  assert_int_equal (good.frees, 1);
}

/* A failed issue: -1 with the errno, no callback, the frees run once. */
#define EXPECT_ISSUE_FAIL(call, cbp, want_errno) do {                   \
    *(cbp) = (struct cbc) { 0 };                                        \
    int64_t r_ = (call);                                                \
    int e_ = nbdaio_get_errno ();                                       \
    if (r_ != -1 || e_ != (want_errno))                                 \
      fprintf (stderr, "  %s: got %lld errno %d (%s)\n", #call,         \
               (long long) r_, e_,                                      \
               nbdaio_get_error () ? nbdaio_get_error () : "");         \
    assert_int_equal (r_, -1);                                          \
    assert_int_equal (e_, (want_errno));                                \
    assert_int_equal ((cbp)->calls, 0);                                 \
    assert_int_equal ((cbp)->frees, 1);                                 \
  } while (0)

static void
test_issue_errors (void **state)
{
  struct ctx *c = *state;
  struct fs_hs *hs = &c->s->hs;
  struct cbc cb;
  struct chunk_rec ch;
  static uint8_t buf[256 * KiB];
  const uint64_t size = MiB;

  hs->size = size;
  hs->bs_min = 512;
  hs->bs_pref = 4096;
  hs->bs_max = 64 * KiB;
  hs->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_TRIM
    | NBD_FLAG_SEND_WRITE_ZEROES;
  /* the payload refusals below need split off (test_split.c: on) */
  assert_int_equal (nbdaio_set_split (c->h, 0), 0);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_get_block_size (c->h, NBDAIO_SIZE_MINIMUM), 512);
  assert_int_equal (nbdaio_can_fua (c->h), 0);

  /* bad flags */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 512, 0,
                                       cbc_completion (&cb), 1u << 7),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 512, 0,
                                       cbc_completion (&cb),
                                       NBDAIO_CMD_FLAG_REQ_ONE),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_flush (c->h, cbc_completion (&cb),
                                       NBDAIO_CMD_FLAG_NO_HOLE),
                     &cb, EINVAL);
  /* not advertised: FUA, DF, FAST_ZERO, CACHE */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pwrite (c->h, buf, 512, 0,
                                        cbc_completion (&cb),
                                        NBDAIO_CMD_FLAG_FUA),
                     &cb, EINVAL);
  ch = (struct chunk_rec) { 0 };
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread_structured (c->h, buf, 512, 0,
                                                  chunk_rec_callback (&ch),
                                                  cbc_completion (&cb),
                                                  NBDAIO_CMD_FLAG_DF),
                     &cb, EINVAL);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (ch.calls, 0);
  EXPECT_ISSUE_FAIL (nbdaio_aio_zero (c->h, 512, 0, cbc_completion (&cb),
                                      NBDAIO_CMD_FLAG_FAST_ZERO),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_cache (c->h, 512, 0, cbc_completion (&cb),
                                       0),
                     &cb, EINVAL);
  /* out of bounds */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 512, size,
                                       cbc_completion (&cb), 0),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 1024, size - 512,
                                       cbc_completion (&cb), 0),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_trim (c->h, 4096, UINT64_MAX - 1023,
                                      cbc_completion (&cb), 0),
                     &cb, EINVAL);
  /* unaligned to the 512 byte minimum */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 100, 0,
                                       cbc_completion (&cb), 0),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pwrite (c->h, buf, 512, 100,
                                        cbc_completion (&cb), 0),
                     &cb, EINVAL);
  /* zero length */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 0, 0,
                                       cbc_completion (&cb), 0),
                     &cb, EINVAL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_trim (c->h, 0, 0, cbc_completion (&cb), 0),
                     &cb, EINVAL);
  /* payload above the 64 KiB maximum, split off */
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 128 * KiB, 0,
                                       cbc_completion (&cb), 0),
                     &cb, ERANGE);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pwrite (c->h, buf, 128 * KiB, 0,
                                        cbc_completion (&cb), 0),
                     &cb, ERANGE);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);

  /* the handle is fine afterwards */
  uint8_t want[4096];
  assert_int_equal (nbdaio_pread (c->h, buf, 4096, 4096, 0), 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (buf, want, sizeof want);
  /* exactly the maximum is fine */
  assert_int_equal (nbdaio_pread (c->h, buf, 64 * KiB, 0, 0), 0);
  ctx_finish (c);
}

static void
test_read_only_eperm (void **state)
{
  struct ctx *c = *state;
  struct cbc cb;
  uint8_t buf[512] = { 0 };

  c->s->hs.tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY
    | NBD_FLAG_SEND_FLUSH;
  ctx_start (c, script_serve);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pwrite (c->h, buf, 512, 0,
                                        cbc_completion (&cb), 0),
                     &cb, EPERM);
  assert_int_equal (nbdaio_pwrite (c->h, buf, 512, 0, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EPERM);
  assert_int_equal (nbdaio_pread (c->h, buf, 512, 0, 0), 0);
  ctx_finish (c);
}

static void
test_max_in_flight (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { 0 } }, extra;
  uint8_t buf[3][512];

  assert_int_equal (nbdaio_set_max_in_flight (c->h, 0), -1);
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 2), 0);
  ctx_start (c, script_serve);
  int64_t a = nbdaio_aio_pread (c->h, buf[0], 512, 0, cbc_completion (&cb[0]),
                                0);
  int64_t b = nbdaio_aio_pread (c->h, buf[1], 512, 512,
                                cbc_completion (&cb[1]), 0);
  assert_true (a >= 1 && b >= 1);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf[2], 512, 1024,
                                       cbc_completion (&extra), 0),
                     &extra, EAGAIN);
  /* completed but not retired still counts */
  struct cbc *cs[] = { &cb[0], &cb[1] };
  assert_true (drive (c->h, cs, 2, 4000) >= 0);
  EXPECT_ISSUE_FAIL (nbdaio_aio_flush (c->h, cbc_completion (&extra), 0),
                     &extra, EAGAIN);
  assert_int_equal (nbdaio_aio_command_completed (c->h, a), 1);
  int64_t d = nbdaio_aio_pread (c->h, buf[2], 512, 1024,
                                cbc_completion (&cb[2]), 0);
  assert_true (d >= 1);
  assert_true (drive_one (c->h, &cb[2], 4000) >= 0);
  assert_int_equal (cb[2].error, 0);
  assert_int_equal (nbdaio_aio_command_completed (c->h, b), 1);
  assert_int_equal (nbdaio_aio_command_completed (c->h, d), 1);
  ctx_finish (c);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].frees, 1);
  }
}

/* Server reads three requests and never answers. */
static int
script_read3_hang (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 3) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_close_in_flight (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { 0 } };
  struct chunk_rec ch = { 0 };
  struct extent_rec ex = { 0 };
  uint8_t buf[512];

  ctx_start (c, script_read3_hang);
  assert_true (nbdaio_aio_pread_structured (c->h, buf, 512, 0,
                                            chunk_rec_callback (&ch),
                                            cbc_completion (&cb[0]), 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[1]), 0) >= 1);
  assert_true (nbdaio_aio_block_status (c->h, 4096, 0,
                                        extent_rec_callback (&ex),
                                        cbc_completion (&cb[2]), 0) >= 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 3);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 3);
  assert_true (nbdaio_aio_get_direction (c->h) & NBDAIO_DIRECTION_READ);
  ctx_finish (c);                   /* nbdaio_close with 3 in flight */
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, ENOTCONN);
    assert_int_equal (cb[i].frees, 1);
  }
  assert_int_equal (ch.frees, 1);
  assert_int_equal (ch.calls, 0);
  assert_int_equal (ex.frees, 1);
  assert_int_equal (ex.calls, 0);
  assert_int_equal (c->s->nr_reqs, 3);
  assert_int_equal (c->s->disc_seen, 0);  /* not idle: no disconnect */
}

static void
test_close_queued_not_sent (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 };
  uint8_t buf[512];

  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&cb), 0)
               >= 1);
  nbdaio_close (c->h);          /* never submitted */
  c->h = NULL;
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ENOTCONN);
  assert_int_equal (cb.frees, 1);
}

static void
test_retirement (void **state)
{
  struct ctx *c = *state;
  struct cbc keep = { 0 }, auto_ = { 0 };
  uint8_t buf[3][512];

  keep.ret = 0;
  auto_.ret = 1;
  ctx_start (c, script_serve);

  /* callback returns 1: retired at once, cookie forgotten */
  int64_t a = nbdaio_aio_pread (c->h, buf[0], 512, 0,
                                cbc_completion (&auto_), 0);
  assert_true (a >= 1);
  assert_true (drive_one (c->h, &auto_, 4000) >= 0);
  assert_int_equal (auto_.error, 0);
  assert_int_equal (nbdaio_aio_command_completed (c->h, a), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (auto_.frees, 1);

  /* callback returns 0: kept until command_completed */
  int64_t b = nbdaio_aio_pread (c->h, buf[1], 512, 512,
                                cbc_completion (&keep), 0);
  assert_true (b >= 1);
  assert_int_equal (nbdaio_aio_command_completed (c->h, b), 0);
  assert_true (drive_one (c->h, &keep, 4000) >= 0);
  assert_int_equal (keep.calls, 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), b);
  assert_int_equal (nbdaio_aio_command_completed (c->h, b), 1);
  assert_int_equal (nbdaio_aio_command_completed (c->h, b), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (keep.frees, 1);

  /* no callback at all */
  int64_t d = nbdaio_aio_pread (c->h, buf[2], 512, 1024,
                                NBDAIO_NULL_COMPLETION, 0);
  assert_true (d >= 1);
  int done = 0;
  for (int i = 0; i < 40 && !done; i++) {
    done = nbdaio_aio_command_completed (c->h, d);
    assert_true (done >= 0);
    if (!done)
      assert_true (nbdaio_poll (c->h, 100) >= 0);
  }
  assert_int_equal (done, 1);
  uint8_t want[512];
  fs_pattern (want, 512, 1024);
  assert_memory_equal (buf[2], want, 512);

  /* never issued */
  assert_int_equal (nbdaio_aio_command_completed (c->h, 123456789), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
}

static void
test_failed_command_retirement (void **state)
{
  struct ctx *c = *state;
  struct cbc keep = { 0 };
  uint8_t buf[512];

  ctx_start (c, script_eio_first);
  int64_t a = nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&keep),
                                0);
  assert_true (a >= 1);
  assert_true (drive_one (c->h, &keep, 4000) >= 0);
  assert_int_equal (keep.error, EIO);
  assert_int_equal (nbdaio_aio_command_completed (c->h, a), -1);
  assert_int_equal (nbdaio_get_errno (), EIO);
  assert_int_equal (nbdaio_aio_command_completed (c->h, a), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  assert_int_equal (keep.calls, 1);
  assert_int_equal (keep.frees, 1);
}

static int
error_to_zero_cb (void *ud, int *error)
{
  int *seen = ud;
  *seen = *error;
  *error = 0;
  return 0;
}

static void
test_callback_changes_error (void **state)
{
  struct ctx *c = *state;
  int seen = -1;
  uint8_t buf[512];

  ctx_start (c, script_eio_first);
  nbdaio_completion_callback cb = { .callback = error_to_zero_cb,
                                    .user_data = &seen };
  int64_t a = nbdaio_aio_pread (c->h, buf, 512, 0, cb, 0);
  assert_true (a >= 1);
  wait_idle (c->h);
  assert_int_equal (seen, EIO);
  /* the callback cleared the error: the command counts as successful */
  assert_int_equal (nbdaio_aio_command_completed (c->h, a), 1);
  ctx_finish (c);
}

static void
test_peek_and_in_flight (void **state)
{
  struct ctx *c = *state;
  uint8_t buf[3][512];

  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  assert_int_equal (nbdaio_aio_get_direction (c->h)
                    & NBDAIO_DIRECTION_WRITE, 0);

  int64_t ck[3];
  for (int i = 0; i < 3; i++) {
    ck[i] = nbdaio_aio_pread (c->h, buf[i], 512, i * 4096,
                              NBDAIO_NULL_COMPLETION, 0);
    assert_true (ck[i] >= 1);
  }
  assert_int_equal (nbdaio_aio_in_flight (c->h), 3);
  assert_true (nbdaio_aio_get_direction (c->h) & NBDAIO_DIRECTION_WRITE);
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), 0);
  wait_idle (c->h);

  int seen[3] = { 0 };
  for (int k = 0; k < 3; k++) {
    int64_t p = nbdaio_aio_peek_command_completed (c->h);
    int idx = -1;
    for (int i = 0; i < 3; i++)
      if (p == ck[i])
        idx = i;
    assert_true (idx >= 0);
    assert_int_equal (seen[idx], 0);
    seen[idx] = 1;
    assert_int_equal (nbdaio_aio_command_completed (c->h, p), 1);
  }
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
}

static void
test_strict_off (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { 0 }, cb2;
  uint8_t buf[512];

  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_get_strict (c->h), NBDAIO_STRICT_ALL);
  EXPECT_ISSUE_FAIL (nbdaio_aio_pread (c->h, buf, 512, MiB,
                                       cbc_completion (&cb2), 0),
                     &cb2, EINVAL);
  assert_int_equal (nbdaio_set_strict (c->h, 0), 0);
  assert_int_equal (nbdaio_get_strict (c->h), 0);
  int64_t a = nbdaio_aio_pread (c->h, buf, 512, MiB, cbc_completion (&cb),
                                0);
  assert_true (a >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, EINVAL);          /* the server's refusal */
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_set_strict (c->h, NBDAIO_STRICT_ALL), 0);
  ctx_finish (c);
  struct fs *s = c->s;
  int found = 0;
  for (int i = 0; i < s->nr_reqs && i < FS_MAX_REQS; i++)
    if (s->reqs[i].type == NBD_CMD_READ && s->reqs[i].offset == MiB)
      found = 1;
  assert_true (found);
}

static int
count_chunks (void *ud, const void *subbuf, size_t count, uint64_t offset,
              unsigned status, int *error)
{
  int *n = ud;
  (void) subbuf; (void) count; (void) offset; (void) error;
  if (status == NBDAIO_READ_DATA)
    (*n)++;
  return 0;
}

static void
test_sync_wrappers (void **state)
{
  struct ctx *c = *state;
  static uint8_t w[8192], r[8192], zero[8192];
  struct extent_rec ex = { 0 };
  int nchunks = 0;

  ctx_start (c, script_serve);
  for (size_t i = 0; i < sizeof w; i++)
    w[i] = (uint8_t) (i * 31 + 5);
  assert_int_equal (nbdaio_pwrite (c->h, w, sizeof w, 65536, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, r, sizeof r, 65536, 0), 0);
  assert_memory_equal (r, w, sizeof w);
  assert_int_equal (nbdaio_pwrite (c->h, w, 512, 0, NBDAIO_CMD_FLAG_FUA), 0);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  assert_int_equal (nbdaio_zero (c->h, 4096, 65536, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, r, 4096, 65536, 0), 0);
  assert_memory_equal (r, zero, 4096);
  assert_int_equal (nbdaio_trim (c->h, 4096, 0, 0), 0);
  assert_int_equal (nbdaio_cache (c->h, 4096, 0, 0), 0);
  assert_int_equal (nbdaio_block_status (c->h, 8192, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.calls, 1);
  assert_int_equal (ex.frees, 1);
  assert_int_equal (ex.nr_entries, 2);
  assert_int_equal (ex.entries[0], 8192);
  nbdaio_chunk_callback chunk = { .callback = count_chunks,
                                  .user_data = &nchunks };
  assert_int_equal (nbdaio_pread_structured (c->h, r, 4096, 69632, chunk, 0),
                    0);
  assert_int_equal (nchunks, 1);
  assert_memory_equal (r, w + 4096, 4096);
  /* a local error and a server error */
  assert_int_equal (nbdaio_pread (c->h, r, 512, MiB, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_strict (c->h, 0), 0);
  assert_int_equal (nbdaio_pwrite (c->h, w, 512, MiB, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  ctx_finish (c);
  assert_memory_equal (c->s->disk + 65536 + 4096, w + 4096, 4096);
  assert_memory_equal (c->s->disk, w, 512);
}

/* Graceful disconnect: NBD_CMD_DISC only after the replies drained. */
static void
test_aio_disconnect (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[2] = { { 0 } }, late;
  uint8_t buf[2][512];

  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread (c->h, buf[0], 512, 0,
                                 cbc_completion (&cb[0]), 0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, buf[1], 512, 512,
                                 cbc_completion (&cb[1]), 0) >= 1);
  assert_int_equal (nbdaio_aio_disconnect (c->h), 0);
  late = (struct cbc) { 0 };
  int64_t r = nbdaio_aio_flush (c->h, cbc_completion (&late), 0);
  assert_int_equal (r, -1);
  assert_int_equal (late.calls, 0);
  assert_int_equal (late.frees, 1);
  struct cbc *cs[] = { &cb[0], &cb[1] };
  assert_true (drive (c->h, cs, 2, 4000) >= 0);
  assert_int_equal (cb[0].error, 0);
  assert_int_equal (cb[1].error, 0);
  /* let the disconnect leave and the server hang up */
  for (int i = 0; i < 10; i++)
    if (nbdaio_poll (c->h, 50) == -1)
      break;
  assert_null (nbdaio_get_connection_error (c->h));
  ctx_finish (c);
  struct fs *s = c->s;
  assert_int_equal (s->disc_seen, 1);
  assert_int_equal (s->nr_reqs, 3);
  assert_int_equal (s->reqs[0].type, NBD_CMD_READ);
  assert_int_equal (s->reqs[1].type, NBD_CMD_READ);
  assert_int_equal (s->reqs[2].type, NBD_CMD_DISC);
}

static void
test_close_idle_sends_disc (void **state)
{
  struct ctx *c = *state;
  uint8_t buf[512];

  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_pread (c->h, buf, 512, 0, 0), 0);
  ctx_finish (c);
  assert_int_equal (c->s->disc_seen, 1);
}

static void
test_shutdown (void **state)
{
  struct ctx *c = *state;
  uint8_t buf[512];
  struct cbc cb = { 0 };

  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&cb), 0)
               >= 1);
  assert_int_equal (nbdaio_shutdown (c->h), 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  assert_int_equal (nbdaio_pread (c->h, buf, 512, 0, 0), -1);
  ctx_finish (c);
  assert_int_equal (c->s->disc_seen, 1);
  assert_int_equal (cb.frees, 1);
}

/* nbdaio_abort as nbdaio.h says: err 0 stands for ECONNABORTED, a NULL
 * reason for "connection aborted by the caller"; then ENOTCONN. */
static void
test_abort_defaults (void **state)
{
  struct ctx *c = *state;
  uint8_t buf[512];
  struct cbc cb = { 0 };

  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&cb), 0)
               >= 1);
  assert_int_equal (nbdaio_abort (c->h, 0, NULL), 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ECONNABORTED);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  assert_string_equal (nbdaio_get_connection_error (c->h),
                       "connection aborted by the caller");
  assert_int_equal (nbdaio_abort (c->h, EIO, "again"), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_abort (NULL, 0, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  assert_int_equal (cb.frees, 1);
}


/* Driving the handle from our own poll(2) loop with get_fd, get_direction,
 * notify_read/notify_write and submit. */
static void
test_manual_event_loop (void **state)
{
  struct ctx *c = *state;
  static uint8_t w[256 * KiB], r[256 * KiB];
  struct cbc cb[2] = { { 0 } };

  c->s->hs.size = 4 * MiB;
  ctx_start (c, script_serve);
  int fd = nbdaio_get_fd (c->h);
  assert_true (fd >= 0);
  fs_pattern (w, sizeof w, 99);
  assert_true (nbdaio_aio_pwrite (c->h, w, sizeof w, 0,
                                  cbc_completion (&cb[0]), 0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, r, sizeof r, 0,
                                 cbc_completion (&cb[1]), 0) >= 1);
  for (int i = 0; i < 2000 && cb[1].calls == 0; i++) {
    unsigned dir = nbdaio_aio_get_direction (c->h);
    struct pollfd p = { .fd = fd, .events = 0 };
    if (dir & NBDAIO_DIRECTION_READ)
      p.events |= POLLIN;
    if (dir & NBDAIO_DIRECTION_WRITE)
      p.events |= POLLOUT;
    assert_true (p.events != 0);
    int n = poll (&p, 1, 1000);
    assert_true (n >= 0);
    if (p.revents & POLLOUT)
      assert_int_equal (nbdaio_aio_notify_write (c->h), 0);
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
      assert_int_equal (nbdaio_aio_notify_read (c->h), 0);
  }
  assert_int_equal (cb[0].calls, 1);
  assert_int_equal (cb[0].error, 0);
  assert_int_equal (cb[1].calls, 1);
  assert_int_equal (cb[1].error, 0);
  assert_memory_equal (r, w, sizeof w);
  assert_int_equal (nbdaio_aio_get_direction (c->h), 0);
  ctx_finish (c);
}

/* A completion callback may issue the next command. */
struct chain {
  struct nbdaio_handle *h;
  uint8_t buf[512];
  int done, issued;
  int64_t last;
};

static int
chain_cb (void *ud, int *error)
{
  struct chain *ch = ud;
  if (*error)
    return 1;
  ch->done++;
  if (ch->issued < 10) {
    nbdaio_completion_callback next = { .callback = chain_cb,
                                        .user_data = ch };
    ch->last = nbdaio_aio_pread (ch->h, ch->buf, 512, ch->issued * 512, next,
                                 0);
    if (ch->last >= 1)
      ch->issued++;
  }
  return 1;
}

static void
test_issue_from_callback (void **state)
{
  struct ctx *c = *state;
  struct chain ch = { .h = c->h };

  ctx_start (c, script_serve);
  nbdaio_completion_callback first = { .callback = chain_cb,
                                       .user_data = &ch };
  assert_true (nbdaio_aio_flush (c->h, first, 0) >= 1);
  ch.issued = 0;
  for (int i = 0; i < 100 && ch.done < 11; i++)
    assert_true (nbdaio_poll (c->h, 100) >= 0);
  assert_int_equal (ch.done, 11);
  assert_int_equal (ch.issued, 10);
  uint8_t want[512];
  fs_pattern (want, 512, 9 * 512);
  assert_memory_equal (ch.buf, want, 512);
  ctx_finish (c);
}

/* Big writes that cannot leave in one system call, many at once, then read
 * back: the client must keep reading replies while it still sends. */
static void
test_large_writes (void **state)
{
  struct ctx *c = *state;
  const uint32_t chunk = 256 * KiB;
  const int n = 48;
  uint8_t *w = malloc ((size_t) chunk * n), *r = malloc ((size_t) chunk * n);
  struct cbc *cb = calloc (n, sizeof *cb);
  struct cbc **cs = calloc (n, sizeof *cs);

  assert_non_null (w);
  assert_non_null (r);
  assert_non_null (cb);
  assert_non_null (cs);
  c->s->hs.size = 16 * MiB;
  ctx_start (c, script_serve);
  for (int i = 0; i < n; i++)
    fs_pattern (w + (size_t) i * chunk, chunk, (uint64_t) i * 777);
  for (int i = 0; i < n; i++) {
    cs[i] = &cb[i];
    cb[i].ret = 1;
    assert_true (nbdaio_aio_pwrite (c->h, w + (size_t) i * chunk, chunk,
                                    (uint64_t) i * chunk,
                                    cbc_completion (&cb[i]), 0) >= 1);
  }
  assert_true (drive (c->h, cs, n, 10000) >= 0);
  for (int i = 0; i < n; i++) {
    assert_int_equal (cb[i].error, 0);
    cb[i] = (struct cbc) { .ret = 1 };
    assert_true (nbdaio_aio_pread (c->h, r + (size_t) i * chunk, chunk,
                                   (uint64_t) i * chunk,
                                   cbc_completion (&cb[i]), 0) >= 1);
  }
  assert_true (drive (c->h, cs, n, 10000) >= 0);
  for (int i = 0; i < n; i++)
    assert_int_equal (cb[i].error, 0);
  assert_memory_equal (r, w, (size_t) chunk * n);
  ctx_finish (c);
  assert_memory_equal (c->s->disk, w, (size_t) chunk * n);
  free (w);
  free (r);
  free (cb);
  free (cs);
}

/* Cookies stay unique over many retired commands. */
static void
test_cookies_never_reused (void **state)
{
  struct ctx *c = *state;
  enum { N = 600 };
  static int64_t seen[N];
  uint8_t buf[512];

  ctx_start (c, script_serve);
  for (int i = 0; i < N; i++) {
    int64_t ck = nbdaio_aio_pread (c->h, buf, 512, 0, NBDAIO_NULL_COMPLETION,
                                   0);
    assert_true (ck >= 1);
    seen[i] = ck;
    int done = 0;
    for (int k = 0; k < 50 && !done; k++) {
      done = nbdaio_aio_command_completed (c->h, ck);
      assert_true (done >= 0);
      if (!done)
        assert_true (nbdaio_poll (c->h, 100) >= 0);
    }
    assert_int_equal (done, 1);
  }
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++)
      assert_true (seen[i] != seen[j]);
  ctx_finish (c);
}


/* A completion callback asks about its own command.  Whatever it is told,
 * the bookkeeping must stay consistent: the cookie is retired exactly once
 * and later commands complete and retire normally. */
struct selfcheck {
  struct nbdaio_handle *h;
  int64_t cookie;
  int inner_rc;
  int calls;
};

static int
selfcheck_cb (void *ud, int *error)
{
  struct selfcheck *sc = ud;
  (void) error;
  sc->calls++;
  sc->inner_rc = nbdaio_aio_command_completed (sc->h, sc->cookie);
  return 0;
}

static void
test_command_completed_inside_callback (void **state)
{
  struct ctx *c = *state;
  struct selfcheck sc = { .h = c->h, .inner_rc = -2 };
  uint8_t buf[512];

  ctx_start (c, script_serve);
  nbdaio_completion_callback cb = { .callback = selfcheck_cb,
                                    .user_data = &sc };
  sc.cookie = nbdaio_aio_pread (c->h, buf, 512, 0, cb, 0);
  assert_true (sc.cookie >= 1);
  wait_idle (c->h);
  assert_int_equal (sc.calls, 1);
  fprintf (stderr, "  command_completed inside its callback -> %d\n",
           sc.inner_rc);
  int after = nbdaio_aio_command_completed (c->h, sc.cookie);
  if (sc.inner_rc == 1)
    assert_int_equal (after, -1);       /* already retired */
  else
    assert_int_equal (after, 1);        /* retired now */
  /* nothing may be left awaiting retirement */
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  /* and the slots still work */
  for (int i = 0; i < 8; i++) {
    int64_t ck = nbdaio_aio_pread (c->h, buf, 512, i * 512,
                                   NBDAIO_NULL_COMPLETION, 0);
    assert_true (ck >= 1);
    wait_idle (c->h);
    assert_int_equal (nbdaio_aio_peek_command_completed (c->h), ck);
    assert_int_equal (nbdaio_aio_command_completed (c->h, ck), 1);
  }
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  ctx_finish (c);
}


/* A synchronous call whose connection dies returns -1 with ENOTCONN, and
 * later calls fail at once. */
static int
script_eof_after_one (struct fs *s)
{
  struct fs_req r;
  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  free (r.data);
  return 0;                     /* half-close: EOF with the read pending */
}

static void
test_sync_connection_dies (void **state)
{
  struct ctx *c = *state;
  uint8_t buf[512];

  ctx_start (c, script_eof_after_one);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 0, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_non_null (nbdaio_get_connection_error (c->h));
  assert_int_equal (nbdaio_flush (c->h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  ctx_finish (c);
}

static void
test_settings_rules (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (nbdaio_set_strict (c->h, 0x100), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 65537), -1);
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 65536), 0);
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 300), 0);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 4), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_connect_timeout (c->h, 10), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* strictness may change at any time */
  assert_int_equal (nbdaio_set_strict (c->h, NBDAIO_STRICT_FLAGS), 0);
  assert_int_equal (nbdaio_get_strict (c->h), NBDAIO_STRICT_FLAGS);
  ctx_finish (c);
}

int
main (void)
{
#define T(f) CTX_TEST (f)
  const struct CMUnitTest tests[] = {
    T (test_cookies_unique),
    T (test_unconnected),
    T (test_free_success_and_server_error),
    T (test_issue_errors),
    T (test_read_only_eperm),
    T (test_max_in_flight),
    T (test_close_in_flight),
    T (test_close_queued_not_sent),
    T (test_retirement),
    T (test_failed_command_retirement),
    T (test_callback_changes_error),
    T (test_peek_and_in_flight),
    T (test_strict_off),
    T (test_sync_wrappers),
    T (test_aio_disconnect),
    T (test_close_idle_sends_disc),
    T (test_shutdown),
    T (test_abort_defaults),
    T (test_manual_event_loop),
    T (test_issue_from_callback),
    T (test_large_writes),
    T (test_cookies_never_reused),
    T (test_command_completed_inside_callback),
    T (test_sync_connection_dies),
    T (test_settings_rules),
  };
#undef T
  return cmocka_run_group_tests (tests, NULL, NULL);
}
