/* test_submit.c - explicit submission (nbdaio_set_auto_submit) against the
 * scripted server: with auto-submit off, commands queued while a reply is
 * read do not leave with nbdaio_aio_notify_read (the server's socket stays
 * empty, checked from the test thread while the script waits), and
 * nbdaio_aio_submit sends them together in one write; with it on (the
 * default) they leave with the read, as before; nbdaio_poll and the sync
 * calls submit; the request timeout does not run for an unsubmitted
 * command; a split command's later pieces leave without another submit
 * while a command queued after the submit stays behind; the setting by
 * name. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "test_common.h"

#define REQ_LEN 28              /* a request header (no extended headers) */

/* Bytes waiting in the server's socket, read from the test thread while
 * the script does not read (it waits for a signal). */
static int
server_pending (struct fs *s)
{
  int n = -1;

  assert_int_equal (ioctl (s->fd, FIONREAD, &n), 0);
  return n;
}

static uint64_t
bytes_sent (struct nbdaio_handle *h)
{
  struct nbdaio_stats st;

  assert_int_equal (nbdaio_get_stats (h, &st, sizeof st), sizeof st);
  return st.bytes_sent;
}

/* Wait (bounded) until the client's socket has something to read. */
static void
wait_readable (struct nbdaio_handle *h)
{
  struct pollfd pfd = { .fd = nbdaio_get_fd (h), .events = POLLIN };

  assert_int_equal (poll (&pfd, 1, 4000), 1);
}

/* Answer the first request, wait for the test's signal, then answer two
 * more and serve until EOF. */
static int
script_one_then_two (struct fs *s)
{
  struct fs_req r[2];

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r[0]) == -1 ||
      fs_send_simple (s, 0, r[0].cookie, NULL, 0) == -1 ||
      fs_wait_signal (s) == -1 ||
      fs_read_request (s, &r[0]) == -1 || fs_read_request (s, &r[1]) == -1 ||
      fs_send_simple (s, 0, r[0].cookie, NULL, 0) == -1 ||
      fs_send_simple (s, 0, r[1].cookie, NULL, 0) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

/* Flush A and submit it; queue B and C; read A's reply with
 * nbdaio_aio_notify_read.  Returns the bytes waiting at the server then. */
static int
read_with_queued (struct ctx *c, struct cbc cb[3])
{
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[0]), 0) >= 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[1]), 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb[2]), 0) >= 1);
  wait_readable (c->h);
  assert_int_equal (nbdaio_aio_notify_read (c->h), 0);
  assert_int_equal (cb[0].calls, 1);
  return server_pending (c->s);
}

static void
test_read_does_not_send (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { .ret = 1 }, { .ret = 1 }, { .ret = 1 } };
  struct cbc *cs[2] = { &cb[1], &cb[2] };

  ctx_start (c, script_one_then_two);
  assert_int_equal (nbdaio_get_auto_submit (c->h), 1);
  assert_int_equal (nbdaio_set_auto_submit (c->h, 0), 0);
  assert_int_equal (nbdaio_get_auto_submit (c->h), 0);
  assert_int_equal (read_with_queued (c, cb), 0);
  assert_int_equal (bytes_sent (c->h), REQ_LEN);
  assert_false (nbdaio_aio_get_direction (c->h) & NBDAIO_DIRECTION_WRITE);
  assert_int_equal (nbdaio_aio_notify_write (c->h), 0);
  assert_int_equal (server_pending (c->s), 0);
  /* both leave together, in one write */
  assert_int_equal (nbdaio_aio_submit (c->h), 2);
  assert_int_equal (server_pending (c->s), 2 * REQ_LEN);
  fs_signal (c->s);
  assert_true (drive (c->h, cs, 2, 4000) >= 0);
  assert_int_equal (cb[1].error, 0);
  assert_int_equal (cb[2].error, 0);
  ctx_finish (c);
}

/* The default: queued commands leave with the read, as they always did. */
static void
test_default_sends_with_read (void **state)
{
  struct ctx *c = *state;
  struct cbc cb[3] = { { .ret = 1 }, { .ret = 1 }, { .ret = 1 } };
  struct cbc *cs[2] = { &cb[1], &cb[2] };

  ctx_start (c, script_one_then_two);
  assert_int_equal (read_with_queued (c, cb), 2 * REQ_LEN);
  fs_signal (c->s);
  assert_true (drive (c->h, cs, 2, 4000) >= 0);
  ctx_finish (c);
}

/* nbdaio_poll submits before it waits: the sync calls and the drain of
 * nbdaio_shutdown work with auto-submit off. */
static void
test_poll_and_sync_submit (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[4096], want[4096];
  struct cbc cb = { .ret = 1 };

  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_set_option (c->h, "auto-submit", "off"), 0);
  assert_int_equal (nbdaio_get_auto_submit (c->h), 0);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 8192, 0), 0);
  fs_pattern (want, sizeof want, 8192);
  assert_memory_equal (buf, want, sizeof buf);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_true (nbdaio_aio_flush (c->h, NBDAIO_NULL_COMPLETION, 0) >= 1);
  assert_int_equal (nbdaio_shutdown (c->h), 0);
  ctx_finish (c);
}

static void
sleep_ms (int ms)
{
  struct timespec ts = { .tv_sec = ms / 1000,
                         .tv_nsec = (long) (ms % 1000) * 1000000 };

  nanosleep (&ts, NULL);
}

/* The request timeout's clock starts when a request leaves: a command
 * held twice the timeout before its submit still completes. */
static void
test_timeout_starts_at_submit (void **state)
{
  struct ctx *c = *state;
  struct cbc cb = { .ret = 1 };

  assert_int_equal (nbdaio_set_request_timeout (c->h, 100), 0);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_set_auto_submit (c->h, 0), 0);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&cb), 0) >= 1);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);
  sleep_ms (250);
  assert_int_equal (nbdaio_aio_notify_read (c->h), 0);
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  assert_true (nbdaio_aio_get_timeout (c->h) >= 0);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.error, 0);
  ctx_finish (c);
}

/* Drive h with its fd, direction and notify calls only (no nbdaio_poll,
 * which submits) until cb has run; bounded. */
static void
drive_notify (struct nbdaio_handle *h, struct cbc *cb)
{
  for (int i = 0; i < 10000 && !cb->calls; i++) {
    unsigned dir = nbdaio_aio_get_direction (h);
    struct pollfd pfd = {
      .fd = nbdaio_get_fd (h),
      .events = ((dir & NBDAIO_DIRECTION_READ) ? POLLIN : 0) |
                ((dir & NBDAIO_DIRECTION_WRITE) ? POLLOUT : 0),
    };
    assert_true (poll (&pfd, 1, 4000) == 1);
    if (pfd.revents & POLLIN)
      assert_int_equal (nbdaio_aio_notify_read (h), 0);
    if (pfd.revents & POLLOUT)
      assert_int_equal (nbdaio_aio_notify_write (h), 0);
  }
  assert_int_equal (cb->calls, 1);
}

/* A 1 MiB read in 16 pieces of 64 KiB with 8 piece slots, submitted once:
 * the pieces queued as earlier ones complete leave on their own; a flush
 * queued after the submit stays behind until it is submitted. */
static void
test_split_pieces_continue (void **state)
{
  struct ctx *c = *state;
  size_t len = 1 * MiB;
  uint8_t *buf = malloc (len), *want = malloc (len);
  struct cbc rd = { .ret = 1 }, fl = { .ret = 1 };

  assert_non_null (buf);
  assert_non_null (want);
  c->s->hs.bs_min = 512;
  c->s->hs.bs_pref = 4096;
  c->s->hs.bs_max = 64 * KiB;
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 2), 0);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_set_auto_submit (c->h, 0), 0);
  assert_true (nbdaio_aio_pread (c->h, buf, len, 0, cbc_completion (&rd), 0)
               >= 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 8);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&fl), 0) >= 1);
  drive_notify (c->h, &rd);
  assert_int_equal (rd.error, 0);
  fs_pattern (want, len, 0);
  assert_memory_equal (buf, want, len);
  assert_int_equal (bytes_sent (c->h), 16 * REQ_LEN);
  assert_int_equal (fl.calls, 0);
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  drive_notify (c->h, &fl);
  assert_int_equal (fl.error, 0);
  free (buf);
  free (want);
  ctx_finish (c);
}

static void
test_null_handle (void **state)
{
  (void) state;
  assert_int_equal (nbdaio_set_auto_submit (NULL, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_get_auto_submit (NULL), -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_read_does_not_send),
    CTX_TEST (test_default_sends_with_read),
    CTX_TEST (test_poll_and_sync_submit),
    CTX_TEST (test_timeout_starts_at_submit),
    CTX_TEST (test_split_pieces_continue),
    cmocka_unit_test (test_null_handle),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
