/* test_violation_policy.c - the policy for protocol violations that leave
 * the reply stream in sync (nbdaio_set_reply_violations, setting
 * reply-violations): under the default (command) a simple reply to a read
 * with structured replies negotiated, with an error or with data, and a
 * successful read whose chunks do not cover it fail that read alone with
 * EPROTO (its callback sees the rule's tag, the message names the
 * cookie; a synchronous call's error names the rule and its section, and
 * so does the callback of a split read one of whose pieces failed so),
 * the other commands in flight and the next ones succeed and
 * command_violations counts it; under close the connection ends, failing
 * every command in flight (test_reply.c runs every violation that way). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbdaio.h"
#include "proto.h"
#include "test_common.h"

/* What a completion callback saw. */
struct seen {
  int calls, error;
  const char *violation;
  char msg[512];
};

static int
seen_cb (void *user_data, int *error)
{
  struct seen *s = user_data;

  s->calls++;
  s->error = *error;
  s->violation = nbdaio_get_violation ();
  snprintf (s->msg, sizeof s->msg, "%s",
            nbdaio_get_error () ? nbdaio_get_error () : "");
  return 1;                     /* retire */
}

static nbdaio_completion_callback
seen_completion (struct seen *s)
{
  return (nbdaio_completion_callback) { .callback = seen_cb, .user_data = s };
}

static struct nbdaio_stats
stats (struct nbdaio_handle *h)
{
  struct nbdaio_stats st;

  assert_int_equal (nbdaio_get_stats (h, &st, sizeof st), (int) sizeof st);
  return st;
}

/* How the first read is answered; the second one and all later requests
 * are served correctly (fs_serve_memory), unless the client is to close
 * the connection (then the server waits for EOF). */
enum misreply { SIMPLE_ERROR, SIMPLE_DATA, HALF_COVERED, ERROR_MSGLEN,
                ERROR_MSGLEN_NOT_DONE };
static int client_closes;

static int
misreply (struct fs *s, enum misreply how)
{
  static uint8_t data[4096];
  struct fs_req r;

  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  if (r.type != NBD_CMD_READ || r.length != sizeof data)
    return fs_fail (s, "expected a 4 KiB read first");
  fs_pattern (data, sizeof data, r.offset);
  switch (how) {
  case SIMPLE_ERROR:
    if (fs_send_simple (s, NBD_EIO, r.cookie, NULL, 0) == -1)
      return -1;
    break;
  case SIMPLE_DATA:
    if (fs_send_simple (s, 0, r.cookie, data, sizeof data) == -1)
      return -1;
    break;
  case HALF_COVERED:
    if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r.cookie, r.offset,
                            data, sizeof data / 2) == -1)
      return -1;
    break;
  case ERROR_MSGLEN:            /* nbd-server 3.26: the message length */
  case ERROR_MSGLEN_NOT_DONE: { /* in host (little-endian) byte order */
    uint8_t b[6 + 12];
    wire_put32 (b, NBD_EIO);
    wire_put16 (b + 4, 12u << 8);
    memcpy (b + 6, "read failed!", 12);
    if (fs_send_chunk (s, how == ERROR_MSGLEN ? NBD_REPLY_FLAG_DONE : 0,
                       NBD_REPLY_TYPE_ERROR, r.cookie, b, sizeof b) == -1)
      return -1;
    break;
  }
  }
  if (client_closes)             /* the second read, then EOF */
    return fs_read_request (s, &r) == -1 ? -1 : fs_wait_eof (s);
  return fs_serve_memory (s, 1);
}

static int script_simple_error (struct fs *s) { return misreply (s, SIMPLE_ERROR); }
static int script_simple_data (struct fs *s) { return misreply (s, SIMPLE_DATA); }
static int script_half_covered (struct fs *s) { return misreply (s, HALF_COVERED); }
static int script_error_msglen (struct fs *s) { return misreply (s, ERROR_MSGLEN); }
static int
script_error_msglen_not_done (struct fs *s)
{
  return misreply (s, ERROR_MSGLEN_NOT_DONE);
}

/* Under the default policy: the first of two reads in flight fails with
 * EPROTO naming tag and its cookie, the second succeeds, and so does a
 * read issued afterwards; counted once in command_violations. */
static void
in_sync (struct ctx *c, fs_script_fn script, const char *tag)
{
  static uint8_t a[4096], b[4096], d[4096], want[4096];
  struct seen sa = { 0 }, sb = { 0 };
  struct chunk_rec rec = { 0 };
  struct nbdaio_stats st;
  char cookie[32];
  int64_t ca;

  client_closes = 0;
  ctx_start (c, script);
  rec.base = a;
  rec.base_offset = 0;
  ca = nbdaio_aio_pread_structured (c->h, a, sizeof a, 0,
                                    chunk_rec_callback (&rec),
                                    seen_completion (&sa), 0);
  assert_true (ca > 0);
  assert_true (nbdaio_aio_pread (c->h, b, sizeof b, 8192,
                                 seen_completion (&sb), 0) > 0);
  for (int i = 0; i < 200 && (!sa.calls || !sb.calls); i++)
    assert_true (nbdaio_poll (c->h, 50) >= 0);

  assert_int_equal (sa.calls, 1);
  assert_int_equal (sa.error, EPROTO);
  assert_non_null (sa.violation);
  assert_string_equal (sa.violation, tag);
  snprintf (cookie, sizeof cookie, "0x%llx", (unsigned long long) ca);
  fprintf (stderr, "  message: %s\n", sa.msg);
  assert_true (contains (sa.msg, cookie));
  assert_true (contains (sa.msg, tag));
  assert_true (contains (sa.msg, strcmp (tag, "chunk-coverage") == 0 ?
                         "successful read" : "NBD_CMD_READ"));
  if (strcmp (tag, "simple-reply-read") == 0)
    assert_int_equal (rec.nr, 0);       /* no data chunk for a bad reply */
  assert_int_equal (sb.calls, 1);
  assert_int_equal (sb.error, 0);
  fs_pattern (want, sizeof want, 8192);
  assert_memory_equal (b, want, sizeof want);

  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_null (nbdaio_get_connection_error (c->h));
  assert_int_equal (nbdaio_pread (c->h, d, sizeof d, 4096, 0), 0);
  fs_pattern (want, sizeof want, 4096);
  assert_memory_equal (d, want, sizeof want);

  st = stats (c->h);
  assert_int_equal (st.command_violations, 1);
  assert_int_equal (st.violations, 0);
  assert_int_equal (st.read.completed, 3);
  assert_int_equal (st.read.failed, 1);
  assert_int_equal (nbdaio_shutdown (c->h), 0);
  ctx_finish (c);
}

static void
test_simple_error_fails_the_read (void **state)
{
  in_sync (*state, script_simple_error, "simple-reply-read");
}

/* The data of the simple reply is consumed (the next replies are parsed
 * where they start), not handed to the chunk callback. */
static void
test_simple_data_fails_the_read (void **state)
{
  in_sync (*state, script_simple_data, "simple-reply-read");
}

static void
test_half_covered_fails_the_read (void **state)
{
  in_sync (*state, script_half_covered, "chunk-coverage");
}

/* A final error chunk whose message length disagrees with its length. */
static void
test_error_msglen_fails_the_read (void **state)
{
  in_sync (*state, script_error_msglen, "chunk-error-length");
}

/* The synchronous call reports the failure as EPROTO too, naming the
 * rule and its section of the NBD specification. */
static void
test_sync_read (void **state)
{
  struct ctx *c = *state;
  static uint8_t a[4096];

  client_closes = 0;
  ctx_start (c, script_simple_error);
  assert_int_equal (nbdaio_pread (c->h, a, sizeof a, 0, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EPROTO);
  assert_non_null (nbdaio_get_violation ());
  assert_string_equal (nbdaio_get_violation (), "simple-reply-read");
  assert_true (contains (nbdaio_get_error (),
                         "protocol violation [simple-reply-read]: "));
  assert_true (contains (nbdaio_get_error (), "\"Simple reply message\""));
  assert_int_equal (nbdaio_pread (c->h, a, sizeof a, 0, 0), 0);
  assert_int_equal (nbdaio_shutdown (c->h), 0);
  ctx_finish (c);
}

/* The two 4 KiB pieces of a split 8 KiB read, the first answered with
 * half its data and DONE (chunk-coverage), the second whole; then the
 * export is served. */
static int
script_split_half_covered (struct fs *s)
{
  static uint8_t data[4096];
  struct fs_req r[2];

  if (fs_default_handshake (s) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    if (fs_read_request (s, &r[i]) == -1)
      return -1;
    free (r[i].data);
    if (r[i].type != NBD_CMD_READ || r[i].length != sizeof data)
      return fs_fail (s, "expected two 4 KiB reads");
  }
  for (int i = 0; i < 2; i++) {
    fs_pattern (data, sizeof data, r[i].offset);
    if (fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r[i].cookie,
                            r[i].offset, data,
                            i == 0 ? sizeof data / 2 : sizeof data) == -1)
      return -1;
  }
  return fs_serve_memory (s, 1);
}

/* A piece of a split read fails alone: the read completes with EPROTO
 * after its other piece, its callback seeing the piece's rule, what the
 * server sent and the rule's section. */
static void
test_split_piece_fails_the_read (void **state)
{
  struct ctx *c = *state;
  static uint8_t a[8192];
  struct seen sa = { 0 };

  c->s->hs.bs_min = 512;
  c->s->hs.bs_pref = 4096;
  c->s->hs.bs_max = sizeof a / 2;
  ctx_start (c, script_split_half_covered);
  assert_true (nbdaio_aio_pread (c->h, a, sizeof a, 0,
                                 seen_completion (&sa), 0) > 0);
  for (int i = 0; i < 200 && !sa.calls; i++)
    assert_true (nbdaio_poll (c->h, 50) >= 0);
  assert_int_equal (sa.calls, 1);
  assert_int_equal (sa.error, EPROTO);
  assert_non_null (sa.violation);
  assert_string_equal (sa.violation, "chunk-coverage");
  fprintf (stderr, "  message: %s\n", sa.msg);
  assert_true (contains (sa.msg, "protocol violation [chunk-coverage]: "
                         "successful read of cookie 0x"));
  assert_true (contains (sa.msg, "2048 of 4096 bytes"));
  assert_true (contains (sa.msg, "\"Request types\""));
  assert_int_equal (stats (c->h).command_violations, 1);
  assert_int_equal (nbdaio_pread (c->h, a, sizeof a, 0, 0), 0);
  assert_int_equal (nbdaio_shutdown (c->h), 0);
  ctx_finish (c);
}

/* reply-violations=close: the same reply ends the connection, both reads
 * in flight fail, the connection names the rule. */
static void
close_policy_default (struct ctx *c, fs_script_fn script, const char *tag)
{
  static uint8_t a[4096], b[4096];
  struct seen sa = { 0 }, sb = { 0 };
  struct nbdaio_stats st;

  client_closes = 1;
  ctx_start (c, script);
  assert_true (nbdaio_aio_pread (c->h, a, sizeof a, 0,
                                 seen_completion (&sa), 0) > 0);
  assert_true (nbdaio_aio_pread (c->h, b, sizeof b, 8192,
                                 seen_completion (&sb), 0) > 0);
  assert_int_equal (drive_until_dead (c->h, 4000), 1);
  assert_int_equal (sa.calls, 1);
  assert_int_equal (sb.calls, 1);
  assert_int_equal (sa.error, EPROTO);
  assert_int_equal (sb.error, EPROTO);
  assert_int_equal (nbdaio_is_connected (c->h), 0);
  assert_non_null (nbdaio_get_connection_violation (c->h));
  assert_string_equal (nbdaio_get_connection_violation (c->h), tag);
  st = stats (c->h);
  assert_int_equal (st.violations, 1);
  assert_int_equal (st.command_violations, 0);
  ctx_finish (c);
}

static void
close_policy (struct ctx *c, fs_script_fn script, const char *tag)
{
  assert_int_equal (nbdaio_set_option (c->h, "reply-violations", "close"), 0);
  close_policy_default (c, script, tag);
}

static void
test_close_simple_error (void **state)
{
  close_policy (*state, script_simple_error, "simple-reply-read");
}

static void
test_close_simple_data (void **state)
{
  close_policy (*state, script_simple_data, "simple-reply-read");
}

static void
test_close_half_covered (void **state)
{
  close_policy (*state, script_half_covered, "chunk-coverage");
}

static void
test_close_error_msglen (void **state)
{
  close_policy (*state, script_error_msglen, "chunk-error-length");
}

/* The same chunk without DONE: more of the read is to come, so the
 * violation ends the connection under the default policy too. */
static void
test_error_msglen_not_final (void **state)
{
  struct ctx *c = *state;

  client_closes = 1;
  close_policy_default (c, script_error_msglen_not_done,
                        "chunk-error-length");
}

/* The setter and the setting by name refuse what they do not know, and
 * changes once connected. */
static void
test_setting (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (nbdaio_set_option (c->h, "reply-violations", "drop"),
                    -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_true (contains (nbdaio_get_error (), "reply-violations"));
  assert_int_equal (nbdaio_set_reply_violations (c->h, 2), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_set_reply_violations (NULL, 0), -1);
  assert_int_equal (nbdaio_set_option (c->h, "reply-violations", "command"),
                    0);
  ctx_start (c, script_handshake_only);
  assert_int_equal (nbdaio_set_reply_violations (c->h,
                                                 NBDAIO_VIOLATIONS_CLOSE), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_simple_error_fails_the_read),
    CTX_TEST (test_simple_data_fails_the_read),
    CTX_TEST (test_half_covered_fails_the_read),
    CTX_TEST (test_sync_read),
    CTX_TEST (test_split_piece_fails_the_read),
    CTX_TEST (test_close_simple_error),
    CTX_TEST (test_close_simple_data),
    CTX_TEST (test_close_half_covered),
    CTX_TEST (test_error_msglen_fails_the_read),
    CTX_TEST (test_close_error_msglen),
    CTX_TEST (test_error_msglen_not_final),
    CTX_TEST (test_setting),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
