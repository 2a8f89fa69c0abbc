/* test_escape.c - text a server sent never reaches a message, a debug
 * line or a tool's output raw: nbdaio_escape_string against a table (escape
 * sequences, BEL, C1 controls, invalid and overlong UTF-8, valid UTF-8
 * kept, backslash, NUL), its bounds and a lossless round trip of random
 * bytes; the JSON writer of the tools (tools/cli-common.h); and, end to
 * end against the scripted server, option and STARTTLS refusals, a listing
 * refused in opt mode, a wrong meta context name and an error chunk's
 * message (debug line) carrying terminal escape sequences. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_common.h"
#include "cli-common.h"

/* An OSC that sets the terminal title, BEL, a clear-screen CSI, a raw C1
 * CSI byte, the same as UTF-8, valid UTF-8 (kept) and a backslash. */
#define EVIL "\x1b]0;pwned\x07\x1b[2J\x9b\xc2\x9b" "caf\xc3\xa9\\"
#define EVIL_ESCAPED \
  "\\x1b]0;pwned\\x07\\x1b[2J\\x9b\\xc2\\x9b" "caf\xc3\xa9\\\\"

/* ---------------------------------------------------------------------- */
/* the escaper */

struct esc_case {
  const char *in;
  size_t len;
  const char *out;
};
#define C(in, out) { in, sizeof in - 1, out }

static const struct esc_case cases[] = {
  C ("", ""),
  C ("plain text: 0-9 a-z ~", "plain text: 0-9 a-z ~"),
  C ("a\\b", "a\\\\b"),
  C ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
  C ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
  C ("\x1b]8;;http://x\x1b\\link", "\\x1b]8;;http://x\\x1b\\\\link"),
  C ("\a\b\t\n\v\f\r", "\\x07\\x08\\x09\\x0a\\x0b\\x0c\\x0d"),
  C ("a\0b", "a\\x00b"),
  C ("\x7f", "\\x7f"),
  C ("\x80\x9b\x9f", "\\x80\\x9b\\x9f"),                    /* raw C1 */
  C ("\xc2\x80\xc2\x9b\xc2\x9f", "\\xc2\\x80\\xc2\\x9b\\xc2\\x9f"),
  C ("\xc2\xa0\xc3\xa9", "\xc2\xa0\xc3\xa9"),               /* NBSP, e-acute */
  C ("\xe2\x82\xac \xf0\x9f\x98\x80", "\xe2\x82\xac \xf0\x9f\x98\x80"),
  C ("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87"),
  C ("\xc0\xaf", "\\xc0\\xaf"),                             /* overlong / */
  C ("\xc1\xbf", "\\xc1\\xbf"),
  C ("\xe0\x80\xaf", "\\xe0\\x80\\xaf"),
  C ("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"),
  C ("\xed\xa0\x80", "\\xed\\xa0\\x80"),                    /* surrogate */
  C ("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"),           /* > U+10FFFF */
  C ("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"),
  C ("\xff\xfe", "\\xff\\xfe"),
  C ("x\xe2\x82", "x\\xe2\\x82"),                           /* truncated */
  C ("\xe2\x82x", "\\xe2\\x82x"),
  C ("\xc3(", "\\xc3("),
  C ("\xe2\x80\xae" "abc", "\\xe2\\x80\\xae" "abc"),        /* RLO */
  C ("\xe2\x81\xa6", "\\xe2\\x81\\xa6"),                    /* LRI */
  C ("\xe2\x80\x8b", "\\xe2\\x80\\x8b"),                    /* ZWSP */
  C ("\xe2\x80\xa8", "\\xe2\\x80\\xa8"),                    /* LINE SEP */
  C ("\xef\xbb\xbf", "\\xef\\xbb\\xbf"),                    /* BOM */
  C ("\xef\xbf\xbf", "\\xef\\xbf\\xbf"),                    /* U+FFFF */
  C ("\xef\xbf\xbd", "\xef\xbf\xbd"),                       /* U+FFFD */
  C (EVIL, EVIL_ESCAPED),
};

static void
test_table (void **state)
{
  char buf[256];
  (void) state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct esc_case *c = &cases[i];
    size_t n = nbdaio_escape_string (buf, sizeof buf, c->in, c->len);
    if (strcmp (buf, c->out) != 0)
      fprintf (stderr, "case %zu: got \"%s\", want \"%s\"\n", i, buf, c->out);
    assert_string_equal (buf, c->out);
    assert_int_equal (n, strlen (c->out));
    assert_true (n <= 4 * c->len);
    /* the length alone, without a buffer */
    assert_int_equal (nbdaio_escape_string (NULL, 0, c->in, c->len), n);
  }
  assert_int_equal (nbdaio_escape_string (buf, sizeof buf, NULL, 0), 0);
  assert_string_equal (buf, "");
}

/* Cut output: whole escapes and characters only, NUL-terminated, and the
 * full length returned. */
static void
test_bounds (void **state)
{
  char buf[16];
  (void) state;

  memset (buf, 'Z', sizeof buf);
  assert_int_equal (nbdaio_escape_string (buf, 6, "\x1b\x1b", 2), 8);
  assert_string_equal (buf, "\\x1b");
  assert_int_equal (nbdaio_escape_string (buf, 4, "\x1b", 1), 4);
  assert_string_equal (buf, "");
  assert_int_equal (nbdaio_escape_string (buf, 5, "\x1b", 1), 4);
  assert_string_equal (buf, "\\x1b");
  assert_int_equal (nbdaio_escape_string (buf, 4, "ab\xc3\xa9", 4), 4);
  assert_string_equal (buf, "ab");
  assert_int_equal (nbdaio_escape_string (buf, 3, "a\\", 2), 3);
  assert_string_equal (buf, "a");
  /* once a unit did not fit, a shorter one after it is not written */
  assert_int_equal (nbdaio_escape_string (buf, 3, "\x1b" "a", 2), 5);
  assert_string_equal (buf, "");
  memset (buf, 'Z', sizeof buf);
  assert_int_equal (nbdaio_escape_string (buf, 1, "abc", 3), 3);
  assert_int_equal (buf[0], '\0');
  assert_int_equal (buf[1], 'Z');
  assert_int_equal (nbdaio_escape_string (buf, 0, "abc", 3), 3);
  assert_int_equal (buf[0], '\0');
}

/* Undo the escaping (the test's own reading of the format). */
static size_t
unescape (const char *s, unsigned char *out)
{
  size_t n = 0;

  while (*s) {
    if (s[0] == '\\' && s[1] == '\\')
      out[n++] = '\\', s += 2;
    else if (s[0] == '\\' && s[1] == 'x') {
      unsigned v;
      assert_int_equal (sscanf (s + 2, "%2x", &v), 1);
      out[n++] = (unsigned char) v;
      s += 4;
    }
    else
      out[n++] = (unsigned char) *s++;
  }
  return n;
}

/* Random bytes: the output never holds a C0 control or DEL, is at most
 * four times as long, and gives the input back. */
static void
test_random_round_trip (void **state)
{
  unsigned char in[64], back[256];
  char out[4 * sizeof in + 1];
  unsigned seed = 12345;
  (void) state;

  for (int round = 0; round < 20000; round++) {
    size_t len = (size_t) (rand_r (&seed) % (int) sizeof in);
    for (size_t i = 0; i < len; i++)
      in[i] = (unsigned char) rand_r (&seed);
    size_t n = nbdaio_escape_string (out, sizeof out, (char *) in, len);
    assert_true (n <= 4 * len);
    assert_int_equal (strlen (out), n);
    for (size_t i = 0; i < n; i++)
      assert_true ((unsigned char) out[i] >= 0x20 && out[i] != 0x7f);
    assert_int_equal (unescape (out, back), len);
    assert_memory_equal (back, in, len);
  }
}

/* The tools' JSON writer: control characters as \uXXXX (C0, DEL, C1
 * given as UTF-8), quotes and backslashes escaped, other UTF-8 kept, a
 * byte that is not UTF-8 as U+FFFD; a server string is kept exact in JSON
 * and escaped in text. */
static void
test_json_writer (void **state)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  (void) state;

  assert_non_null (fp);
  cli_json_string (fp, "q\"b\\\n\t\x01\x1b\x7f\xc2\x85\xc2\xa0\xc3\xa9");
  fputc (' ', fp);
  cli_print_server_text (fp, EVIL, 1);
  fputc (' ', fp);
  cli_print_server_text (fp, EVIL, 0);
  fclose (fp);
  assert_string_equal (buf,
    "\"q\\\"b\\\\\\n\\t\\u0001\\u001b\\u007f\\u0085\xc2\xa0\xc3\xa9\" "
    "\"\\u001b]0;pwned\\u0007\\u001b[2J\\ufffd\\u009bcaf\xc3\xa9"
    "\\\\\" " EVIL_ESCAPED);
  free (buf);

  /* invisible and direction-changing characters; bytes that are not
   * UTF-8 (overlong, surrogate) */
  fp = open_memstream (&buf, &len);
  assert_non_null (fp);
  cli_json_string (fp, "a\xe2\x80\xae" "b\xef\xbb\xbf\xe2\x80\x8b\xc0\xaf"
                   "\xed\xa0\x80z");
  fclose (fp);
  assert_string_equal (buf, "\"a\\u202eb\\ufeff\\u200b\\ufffd\\ufffd"
                       "\\ufffd\\ufffd\\ufffdz\"");
  free (buf);
}

/* ---------------------------------------------------------------------- */
/* end to end: what the library says holds no raw server text */

/* msg holds no C0 control, DEL or C1 byte, and the escaped EVIL. */
static void
assert_clean (const char *msg)
{
  assert_non_null (msg);
  fprintf (stderr, "  -> %s\n", msg);
  for (const unsigned char *p = (const unsigned char *) msg; *p; p++)
    assert_true (*p >= 0x20 && *p != 0x7f);
  assert_null (strstr (msg, "\x9b"));
  assert_non_null (strstr (msg, EVIL_ESCAPED));
}

/* The server's answer to one option: type with EVIL (and its NUL) as the
 * payload; every other option as usual, NBD_OPT_ABORT acknowledged if the
 * client still listens (after a refused connect it does not wait). */
struct refusal {
  uint32_t opt, type;
};

static int
hook_refuse (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  const struct refusal *r = s->arg;
  (void) d; (void) l;

  if (opt == NBD_OPT_ABORT) {
    (void) fs_send_ack (s, opt);
    return 2;
  }
  if (opt != r->opt)
    return 0;
  return fs_send_opt_reply (s, opt, r->type, EVIL, sizeof EVIL) ? -1 : 1;
}

static int
script_refuse (struct fs *s)
{
  return fs_handshake_hook (s, hook_refuse) < 0 ? -1 : 0;
}

/* Start the server refusing r and connect h to it; returns the
 * connect's result. */
static int
connect_refused (struct ctx *c, struct refusal *r)
{
  assert_true (fs_start (c->s, script_refuse, r) >= 0);
  return test_connect (c->h, c->s);
}

static void
test_option_refusal (void **state)
{
  struct ctx *c = *state;
  struct refusal r = { NBD_OPT_GO, NBD_REP_ERR_POLICY };

  assert_int_equal (nbdaio_set_export_name (c->h, "disk\x1b[2J"), 0);
  assert_int_equal (connect_refused (c, &r), -1);
  assert_int_equal (nbdaio_get_errno (), EPERM);
  assert_clean (nbdaio_get_error ());
  assert_non_null (strstr (nbdaio_get_error (), EVIL_ESCAPED "\\x00"));
  assert_non_null (strstr (nbdaio_get_error (), "'disk\\x1b[2J'"));
  assert_true (contains (nbdaio_get_error (), "NBD_REP_ERR_POLICY"));
  ctx_finish (c);
}

static void
test_starttls_refusal (void **state)
{
  struct ctx *c = *state;
  struct refusal r = { NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY };

  assert_int_equal (nbdaio_set_tls (c->h, NBDAIO_TLS_REQUIRE), 0);
  assert_int_equal (connect_refused (c, &r), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTSUP);
  assert_true (contains (nbdaio_get_error (), "NBD_OPT_STARTTLS"));
  assert_clean (nbdaio_get_error ());
  assert_clean (nbdaio_get_connection_error (c->h));
  ctx_finish (c);
}

static void
test_opt_list_refusal (void **state)
{
  struct ctx *c = *state;
  struct refusal r = { NBD_OPT_LIST, NBD_REP_ERR_UNSUP };

  assert_int_equal (nbdaio_set_opt_mode (c->h, 1), 0);
  assert_int_equal (connect_refused (c, &r), 0);
  assert_int_equal (nbdaio_opt_list (c->h, NULL, NULL), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTSUP);
  assert_clean (nbdaio_get_error ());
  assert_int_equal (nbdaio_is_negotiating (c->h), 1);
  assert_int_equal (nbdaio_opt_abort (c->h), 0);
  ctx_finish (c);
}

/* SET_META_CONTEXT answered with a context named EVIL. */
static int
hook_meta_evil (struct fs *s, uint32_t opt, const uint8_t *d, uint32_t l)
{
  (void) d; (void) l;
  if (opt != NBD_OPT_SET_META_CONTEXT)
    return 0;
  fs_send_meta_context (s, opt, 1, EVIL);
  return 2;
}

static int
script_meta_evil (struct fs *s)
{
  return fs_handshake_hook (s, hook_meta_evil) < 0 ? -1 : 0;
}

static void
test_meta_context_name (void **state)
{
  struct ctx *c = *state;

  assert_int_equal (ctx_start_connect (c, script_meta_evil), -1);
  assert_int_equal (nbdaio_get_errno (), EPROTO);
  assert_true (contains (nbdaio_get_error (), "[meta-context-name]"));
  assert_clean (nbdaio_get_error ());
  assert_clean (nbdaio_get_connection_error (c->h));
  ctx_finish (c);
}

/* The default handshake, an error chunk carrying EVIL for the first
 * request, then serve. */
static int
script_error_chunk (struct fs *s)
{
  struct fs_req req;

  if (fs_handshake_and_read (s, &req) != 0 ||
      fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                           req.cookie, NBD_EIO, EVIL) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

/* With debug on, the error chunk's message appears escaped on stderr. */
static void
test_error_chunk_debug (void **state)
{
  struct ctx *c = *state;
  char tmpl[] = "/tmp/nbdaio-test-escape.XXXXXX", out[4096];
  int fd = mkstemp (tmpl), saved = dup (2);
  uint8_t buf[512];
  ssize_t n;

  assert_true (fd >= 0 && saved >= 0);
  unlink (tmpl);
  assert_int_equal (nbdaio_set_debug (c->h, 1), 0);
  ctx_start (c, script_error_chunk);
  fflush (stderr);
  assert_int_equal (dup2 (fd, 2), 2);
  assert_int_equal (nbdaio_pread (c->h, buf, sizeof buf, 0, 0), -1);
  fflush (stderr);
  assert_int_equal (dup2 (saved, 2), 2);
  close (saved);
  assert_int_equal (nbdaio_get_errno (), EIO);
  n = pread (fd, out, sizeof out - 1, 0);
  close (fd);
  assert_true (n > 0);
  out[n] = '\0';
  assert_non_null (strstr (out, "error chunk"));
  /* lines end in '\n'; nothing else below 0x20 */
  for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n"))
    if (strstr (line, "error chunk"))
      assert_clean (line);
    else
      for (const char *p = line; *p; p++)
        assert_true ((unsigned char) *p >= 0x20 && *p != 0x7f);
  ctx_finish (c);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_table),
    cmocka_unit_test (test_bounds),
    cmocka_unit_test (test_random_round_trip),
    cmocka_unit_test (test_json_writer),
    CTX_TEST (test_option_refusal),
    CTX_TEST (test_starttls_refusal),
    CTX_TEST (test_opt_list_refusal),
    CTX_TEST (test_meta_context_name),
    CTX_TEST (test_error_chunk_debug),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
