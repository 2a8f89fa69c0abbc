/* test_deadline.c - the request timeout (nbdaio_set_request_timeout, the
 * setting request-timeout, the profile key timeout) against the scripted
 * server: expiry noticed by nbdaio_poll and by nbdaio_aio_notify_read in
 * an event loop of the test's own driven by nbdaio_aio_get_timeout;
 * replies out of order (the oldest unanswered command is the one that
 * expires, and it expires on its own clock); every command completes
 * exactly once with ETIMEDOUT (callbacks and frees once); a request the
 * server never reads; and the connect timeout as one deadline for the
 * whole connect. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_common.h"

/* ---------------------------------------------------------------------- */
/* helpers */

/* Poll h until it reports the connection's end (-1), for at most ms;
 * returns the last nbdaio_poll result. */
static int
poll_until_dead (struct nbdaio_handle *h, int ms)
{
  int64_t deadline = fs_now_ms () + ms;
  int r = 0;

  while (fs_now_ms () < deadline && (r = nbdaio_poll (h, 200)) != -1)
    ;
  return r;
}

/* The default handshake, read n requests, then wait (bounded) for the
 * client to hang up without answering any. */
static int
stall_after (struct fs *s, int n)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, n) == -1)
    return -1;
  return fs_wait_eof (s);
}

static int script_stall_1 (struct fs *s) { return stall_after (s, 1); }
static int script_stall_2 (struct fs *s) { return stall_after (s, 2); }

/* Answer the read request r with its data in one DONE chunk. */
static int
answer_read (struct fs *s, const struct fs_req *r)
{
  uint8_t data[4096];

  if (r->count > sizeof data)
    return fs_fail (s, "read of %u bytes", r->count);
  fs_pattern (data, r->count, r->offset);
  return fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie, r->offset,
                             data, r->count);
}

static void
assert_timed_out (struct nbdaio_handle *h, const char *what, unsigned ms)
{
  char want[64];

  snprintf (want, sizeof want, "within %u ms (request-timeout)", ms);
  assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
  if (!contains (nbdaio_get_error (), what) ||
      !contains (nbdaio_get_error (), want))
    fail_msg ("error '%s' should name '%s' and '%s'", nbdaio_get_error (),
              what, want);
  assert_string_equal (nbdaio_get_connection_error (h), nbdaio_get_error ());
  assert_int_equal (nbdaio_is_connected (h), 0);
  assert_int_equal (nbdaio_aio_in_flight (h), 0);
  assert_int_equal (nbdaio_aio_get_timeout (h), -1);
}

/* ---------------------------------------------------------------------- */
/* nbdaio_poll */

/* Two commands the server never answers: nbdaio_poll ends the connection
 * about the timeout after they left, naming the older one; both complete
 * once with ETIMEDOUT. */
static void
test_poll_expires (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[512];
  struct cbc rd = { .ret = 1 }, fl = { .ret = 1 };
  struct nbdaio_stats st;
  int64_t t0, took;

  assert_int_equal (nbdaio_set_request_timeout (c->h, 300), 0);
  ctx_start (c, script_stall_2);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 1024, cbc_completion (&rd),
                                 0) >= 1);
  assert_true (nbdaio_aio_flush (c->h, cbc_completion (&fl), 0) >= 1);
  t0 = fs_now_ms ();
  assert_int_equal (poll_until_dead (c->h, 3000), -1);
  took = fs_now_ms () - t0;
  assert_timed_out (c->h, "NBD_CMD_READ [offset 1024, length 512]", 300);
  assert_true (took >= 280 && took < 1500);
  assert_int_equal (rd.calls, 1);
  assert_int_equal (rd.error, ETIMEDOUT);
  assert_int_equal (rd.frees, 1);
  assert_int_equal (fl.calls, 1);
  assert_int_equal (fl.error, ETIMEDOUT);
  assert_int_equal (fl.frees, 1);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  assert_int_equal (st.timeouts, 1);
  assert_int_equal (st.violations, 0);
  assert_int_equal (st.read.failed, 1);
  assert_int_equal (st.flush.failed, 1);
  /* the handle is dead: polling says so at once */
  assert_int_equal (nbdaio_poll (c->h, 1000), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* an event loop of the caller's own */

/* Answer the first read, then nothing. */
static int
script_answer_first (struct fs *s)
{
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1 ||
      answer_read (s, &r) == -1 || fs_read_request (s, &r) == -1)
    return -1;
  return fs_wait_eof (s);
}

/* One round of the caller's loop: poll the fd no longer than
 * nbdaio_aio_get_timeout says, then notify_read.  Returns notify_read's
 * result. */
static int
loop_once (struct nbdaio_handle *h)
{
  struct pollfd pfd = { .fd = nbdaio_get_fd (h), .events = POLLIN };
  int ms = nbdaio_aio_get_timeout (h);

  assert_true (ms >= 0 && ms <= 400);
  assert_true (poll (&pfd, 1, ms) >= 0);
  return nbdaio_aio_notify_read (h);
}

static void
test_notify_read_expires (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[2][512];
  struct cbc a = { .ret = 1 }, b = { .ret = 1 };
  int64_t t0, took;
  int r = 0;

  assert_int_equal (nbdaio_aio_get_timeout (NULL), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);   /* not connected */
  assert_int_equal (nbdaio_set_request_timeout (c->h, 400), 0);
  ctx_start (c, script_answer_first);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);   /* idle */
  assert_true (nbdaio_aio_pread (c->h, buf[0], 512, 0, cbc_completion (&a),
                                 0) >= 1);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);   /* not sent */
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  r = nbdaio_aio_get_timeout (c->h);
  assert_true (r > 300 && r <= 400);
  while (a.calls == 0)
    assert_int_equal (loop_once (c->h), 0);
  assert_int_equal (a.error, 0);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);   /* answered */

  /* the second is never answered: notify_read ends the connection */
  assert_true (nbdaio_aio_pread (c->h, buf[1], 512, 4096, cbc_completion (&b),
                                 0) >= 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  t0 = fs_now_ms ();
  while (fs_now_ms () - t0 < 3000 && (r = loop_once (c->h)) == 0)
    ;
  took = fs_now_ms () - t0;
  assert_int_equal (r, -1);
  assert_timed_out (c->h, "NBD_CMD_READ [offset 4096, length 512]", 400);
  assert_true (took >= 380 && took < 1500);
  assert_int_equal (b.calls, 1);
  assert_int_equal (b.error, ETIMEDOUT);
  assert_int_equal (b.frees, 1);
  assert_int_equal (a.calls, 1);
  ctx_finish (c);
}

/* Without a request timeout nothing expires: nbdaio_aio_get_timeout says
 * -1 with a command in flight. */
static void
test_no_timeout (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[512];
  struct cbc a = { .ret = 1 };

  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread (c->h, buf, 512, 0, cbc_completion (&a),
                                 0) >= 1);
  assert_int_equal (nbdaio_aio_submit (c->h), 1);
  assert_int_equal (nbdaio_aio_get_timeout (c->h), -1);
  assert_int_equal (drive_one (c->h, &a, 4000), 1);
  assert_int_equal (a.error, 0);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* replies out of order */

/* Three reads A, B, C, each sent 200 ms after the one before; the server
 * answers B (the middle of the sent list), then A (its head), never C:
 * C expires on its own clock, 500 ms after it left, not on A's or B's. */
static int
script_b_then_a (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 3) == -1 ||
      answer_read (s, &s->reqs[1]) == -1 || answer_read (s, &s->reqs[0]) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_out_of_order (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[3][512];
  struct cbc cb[3] = { { .ret = 1 }, { .ret = 1 }, { .ret = 1 } };
  int64_t t0 = 0, took;

  assert_int_equal (nbdaio_set_request_timeout (c->h, 500), 0);
  ctx_start (c, script_b_then_a);
  for (int i = 0; i < 3; i++) {
    if (i)
      usleep (200 * 1000);
    assert_true (nbdaio_aio_pread (c->h, buf[i], 512, (uint64_t) i * 8192,
                                   cbc_completion (&cb[i]), 0) >= 1);
    assert_int_equal (nbdaio_aio_submit (c->h), 1);
    if (i == 0)
      t0 = fs_now_ms ();
  }
  assert_int_equal (poll_until_dead (c->h, 3000), -1);
  took = fs_now_ms () - t0;
  assert_timed_out (c->h, "NBD_CMD_READ [offset 16384, length 512]", 500);
  /* C left about 400 ms after A: expiring at 500 or 700 would be A's or
   * B's clock */
  assert_true (took >= 850 && took < 2500);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, i == 2 ? ETIMEDOUT : 0);
    assert_int_equal (cb[i].frees, 1);
  }
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* exactly once */

/* Nine commands of every kind; the server answers the first read, the
 * write and the trim (requests 0, 2, 4), then nothing. */
static int
script_answer_three (struct fs *s)
{
  if (fs_default_handshake (s) != 0 || fs_read_requests (s, 9) == -1 ||
      answer_read (s, &s->reqs[0]) == -1 ||
      fs_send_simple (s, 0, s->reqs[2].cookie, NULL, 0) == -1 ||
      fs_send_chunk_none (s, s->reqs[4].cookie) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_exactly_once (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[3][512];
  struct cbc cb[9] = { { 0 } };
  struct chunk_rec ch = { 0 };
  struct extent_rec ex = { 0 };
  struct nbdaio_stats st;
  int64_t ck[9];
  uint64_t completed = 0, failed = 0;

  assert_int_equal (nbdaio_set_request_timeout (c->h, 300), 0);
  ctx_start (c, script_answer_three);
  for (int i = 0; i < 9; i++)
    cb[i].ret = i % 2;          /* half retire themselves */
  ck[0] = nbdaio_aio_pread (c->h, buf[0], 512, 0, cbc_completion (&cb[0]), 0);
  ck[1] = nbdaio_aio_pread (c->h, buf[1], 512, 512, cbc_completion (&cb[1]),
                            0);
  ck[2] = nbdaio_aio_pwrite (c->h, buf[2], 512, 1024, cbc_completion (&cb[2]),
                             0);
  ck[3] = nbdaio_aio_flush (c->h, cbc_completion (&cb[3]), 0);
  ck[4] = nbdaio_aio_trim (c->h, 512, 0, cbc_completion (&cb[4]), 0);
  ck[5] = nbdaio_aio_zero (c->h, 512, 0, cbc_completion (&cb[5]), 0);
  ck[6] = nbdaio_aio_cache (c->h, 512, 0, cbc_completion (&cb[6]), 0);
  ck[7] = nbdaio_aio_block_status (c->h, 512, 0, extent_rec_callback (&ex),
                                   cbc_completion (&cb[7]), 0);
  ck[8] = nbdaio_aio_pread_structured (c->h, buf[0], 512, 0,
                                       chunk_rec_callback (&ch),
                                       cbc_completion (&cb[8]), 0);
  for (int i = 0; i < 9; i++)
    assert_true (ck[i] >= 1);
  assert_int_equal (poll_until_dead (c->h, 3000), -1);
  assert_timed_out (c->h, "NBD_CMD_READ [offset 512, length 512]", 300);
  for (int i = 0; i < 9; i++) {
    int ok = i == 0 || i == 2 || i == 4;
    assert_int_equal (cb[i].calls, 1);
    assert_int_equal (cb[i].error, ok ? 0 : ETIMEDOUT);
    assert_int_equal (cb[i].frees, 1);
    if (cb[i].ret == 0) {       /* kept: retire it now */
      assert_int_equal (nbdaio_aio_command_completed (c->h, ck[i]),
                        ok ? 1 : -1);
      if (!ok)
        assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
    }
    else
      assert_int_equal (nbdaio_aio_command_completed (c->h, ck[i]), -1);
  }
  for (int i = 0; i < 9; i++)   /* retiring frees nothing more */
    assert_int_equal (cb[i].frees, 1);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (ex.frees, 1);
  assert_int_equal (ch.calls + ex.calls, 0);
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  /* nothing more runs, and a new command is refused, its free run once */
  {
    struct cbc late = { 0 };
    assert_int_equal (nbdaio_aio_flush (c->h, cbc_completion (&late), 0), -1);
    assert_int_equal (nbdaio_get_errno (), ENOTCONN);
    assert_int_equal (late.calls, 0);
    assert_int_equal (late.frees, 1);
  }
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  {
    const struct nbdaio_cmd_stats *k[] = {
      &st.read, &st.write, &st.flush, &st.trim, &st.zero, &st.cache,
      &st.block_status,
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
      assert_int_equal (k[i]->issued, k[i]->completed);
      completed += k[i]->completed;
      failed += k[i]->failed;
    }
  }
  assert_int_equal (st.read.completed, 3);
  assert_int_equal (completed, 9);
  assert_int_equal (failed, 6);
  assert_int_equal (st.timeouts, 1);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* a request that cannot leave */

/* The server never reads: a 16 MiB write cannot be sent whole, and its
 * clock runs from the send that left it behind. */
static int
script_no_read (struct fs *s)
{
  if (fs_default_handshake (s) != 0)
    return -1;
  return fs_wait_signal (s);
}

static void
test_send_stalls (void **state)
{
  struct ctx *c = *state;
  size_t len = 16 * MiB;
  uint8_t *buf = calloc (1, len);
  static struct cbc w = { .ret = 1 };   /* the handle outlives a failure */
  struct nbdaio_stats st;
  int64_t t0, took;

  assert_non_null (buf);
  assert_int_equal (nbdaio_set_request_timeout (c->h, 300), 0);
  c->s->hs.size = len;
  ctx_start (c, script_no_read);
  t0 = fs_now_ms ();
  assert_true (nbdaio_aio_pwrite (c->h, buf, len, 0, cbc_completion (&w), 0)
               >= 1);
  assert_int_equal (poll_until_dead (c->h, 3000), -1);
  took = fs_now_ms () - t0;
  fs_signal (c->s);
  assert_timed_out (c->h, "NBD_CMD_WRITE [offset 0, length 16777216]", 300);
  assert_true (contains (nbdaio_get_error (), "could not be sent whole"));
  assert_true (took >= 280 && took < 1500);
  assert_int_equal (w.calls, 1);
  assert_int_equal (w.error, ETIMEDOUT);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  assert_int_equal (st.write.issued, 1);
  assert_int_equal (st.write.failed, 1);
  assert_int_equal (st.payload_sent, 0);        /* it never left whole */
  assert_true (st.bytes_sent > 0 && st.bytes_sent < len);
  ctx_finish (c);
  free (buf);
}

/* ---------------------------------------------------------------------- */
/* settings */

static void
test_setting (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (nbdaio_set_request_timeout (NULL, 1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_option (c->h, "request-timeout", "2s"), 0);
  assert_int_equal (nbdaio_set_option (c->h, "request-timeout", "0"), 0);
  assert_int_equal (nbdaio_set_option (c->h, "request-timeout", "soon"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_true (contains (nbdaio_get_error (), "request-timeout: bad value"));
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_set_request_timeout (c->h, 100), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_option (c->h, "request-timeout", "1s"), -1);
  ctx_finish (c);
}

/* The profile key timeout is request-timeout (unless the profile gives
 * request-timeout itself); applied by nbdaio_profile_apply. */
static void
profile_case (const char *keys, unsigned want_ms)
{
  char path[] = "/tmp/nbdaio-deadline-XXXXXX";
  int fd = mkstemp (path);
  struct nbdaio_profile *p;
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  static uint8_t buf[512];
  struct cbc a = { .ret = 1 };
  FILE *f;

  assert_true (fd >= 0 && s && h);
  assert_non_null (f = fdopen (fd, "w"));
  fprintf (f, "[p]\nsocket = /nonexistent\n%s", keys);
  fclose (f);
  p = nbdaio_profile_load (path, "p");
  unlink (path);
  if (!p)
    fail_msg ("%s", nbdaio_get_error ());
  assert_int_equal (nbdaio_profile_apply (p, h), 0);
  nbdaio_profile_free (p);
  assert_true (fs_start (s, script_stall_1, NULL) >= 0);
  assert_int_equal (test_connect (h, s), 0);
  assert_true (nbdaio_aio_pread (h, buf, 512, 0, cbc_completion (&a), 0) >= 1);
  assert_int_equal (poll_until_dead (h, 3000), -1);
  assert_timed_out (h, "NBD_CMD_READ", want_ms);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);
}

static void
test_profile_timeout (void **state)
{
  (void) state;
  profile_case ("timeout = 300ms\n", 300);
  profile_case ("timeout = 20s\nrequest-timeout = 250ms\n", 250);
}

/* ---------------------------------------------------------------------- */
/* the connect timeout: one deadline for the whole connect */

#define SLOW_STEP_MS 350

static int
slow_go (struct fs *s, uint32_t opt, const uint8_t *data, uint32_t len)
{
  (void) s;
  (void) data;
  (void) len;
  if (opt == NBD_OPT_GO)
    usleep (SLOW_STEP_MS * 1000);
  return 0;
}

/* Greeting and GO each late by SLOW_STEP_MS: each step alone is within
 * the connect timeout, together they are not.  The script ends without
 * judging (the client has gone when it answers GO). */
static int
script_slow_steps (struct fs *s)
{
  usleep (SLOW_STEP_MS * 1000);
  fs_handshake_hook (s, slow_go);
  return 0;
}

static void
test_connect_one_deadline (void **state)
{
  struct ctx *c = *state;
  int64_t t0 = fs_now_ms (), took;

  assert_int_equal (nbdaio_set_connect_timeout (c->h, 600), 0);
  assert_int_equal (ctx_start_connect (c, script_slow_steps), -1);
  took = fs_now_ms () - t0;
  assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
  assert_true (took >= 550 && took < 1500);
  ctx_finish (c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_poll_expires),
    CTX_TEST (test_notify_read_expires),
    CTX_TEST (test_no_timeout),
    CTX_TEST (test_out_of_order),
    CTX_TEST (test_exactly_once),
    CTX_TEST (test_send_stalls),
    CTX_TEST (test_setting),
    cmocka_unit_test (test_profile_timeout),
    CTX_TEST (test_connect_one_deadline),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
