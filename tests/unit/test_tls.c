/* test_tls.c - unit tests of the TLS decisions made during the handshake,
 * against the scripted server (no crypto here: the TLS sessions themselves
 * are tested against nbdkit, qemu-nbd and nbd-server in tests/tls/):
 *  - tls=require never continues without TLS: after a refused STARTTLS, or
 *    with an oldstyle or non-fixed newstyle server, nothing but
 *    NBD_OPT_ABORT is sent;
 *  - tls=allow continues in plaintext when refused, tls=off never asks;
 *  - after an acknowledged STARTTLS the next bytes are a TLS ClientHello;
 *  - bad key files fail before any traffic: missing, not a regular file
 *    (directory, FIFO, /dev/zero), too large, or a key (PSK file,
 *    client-key.pem) that group or others can read;
 *  - the string settings (nbdaio_set_option) and the URI's tls-* query
 *    parameters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_common.h"

#define TLS_RECORD_HANDSHAKE 0x16   /* first byte of a ClientHello record */

/* What the scripted server should do with NBD_OPT_STARTTLS. */
struct tls_script {
  uint32_t starttls_reply;       /* NBD_REP_ACK or an error */
  uint32_t reply_len;            /* payload length (a violation if ACK) */
  uint32_t after[8];             /* options read after the reply */
  int nafter;
  int first_byte;                /* after ACK: first byte read, or -1 */
};

/* Greeting, client flags, then read options until EOF, answering STARTTLS
 * as configured, anything else with ERR_UNSUP, and a GO with a full
 * export so that a plaintext client can finish. */
static int
script_tls (struct fs *s)
{
  struct tls_script *t = s->arg;
  uint8_t payload[16] = { 0 };
  uint32_t opt, len;
  uint8_t *data;

  t->first_byte = -1;
  if (fs_send_greeting (s, s->hs.hflags) == -1 ||
      fs_read_client_flags (s, NULL) == -1)
    return -1;
  while (fs_read_option (s, &opt, &data, &len) == 0) {
    free (data);
    if (opt != NBD_OPT_STARTTLS && t->nafter < 8)
      t->after[t->nafter++] = opt;
    if (opt == NBD_OPT_STARTTLS) {
      if (fs_send_opt_reply (s, opt, t->starttls_reply, payload,
                             t->reply_len) == -1)
        return -1;
      if (t->starttls_reply == NBD_REP_ACK && t->reply_len == 0) {
        uint8_t b;
        if (fs_read_exact (s, &b, 1) == 0)
          t->first_byte = b;
        return 0;
      }
    }
    else if (opt == NBD_OPT_GO) {
      if (fs_send_info_export (s, opt, s->hs.size, s->hs.tflags) == -1)
        return -1;
      return fs_send_ack (s, opt) == -1 ? -1 : fs_serve_memory (s, 1);
    }
    else if (opt == NBD_OPT_ABORT)
      return fs_send_ack (s, opt) == -1 ? -1 : fs_wait_eof (s);
    else if (fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0) == -1)
      return -1;
  }
  return 0;
}

struct result {
  int rc, err, tls;
  char msg[1024];
};

/* Connect a handle set to mode and the settings (name, value pairs, then
 * NULL) to the script; hflags 0 means the default (fixed newstyle, no
 * zeroes). */
static void
run_tls_with (int mode, const char *const *settings, uint16_t hflags,
              struct tls_script *t, struct result *res)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();

  assert_non_null (s);
  assert_non_null (h);
  if (hflags)
    s->hs.hflags = hflags;
  s->hs.tflags &= ~NBD_FLAG_SEND_DF;         /* no structured replies here */
  assert_int_equal (nbdaio_set_tls (h, mode), 0);
  for (; settings && *settings; settings += 2)
    assert_int_equal (nbdaio_set_option (h, settings[0], settings[1]), 0);
  assert_true (fs_start (s, script_tls, t) >= 0);
  res->rc = test_connect (h, s);
  res->err = nbdaio_get_errno ();
  snprintf (res->msg, sizeof res->msg, "%s",
            nbdaio_get_error () ? nbdaio_get_error () : "(null)");
  res->tls = nbdaio_get_tls_negotiated (h);
  fprintf (stderr, "  rc=%d: %s\n", res->rc, res->rc ? res->msg : "ok");
  nbdaio_close (h);
  fs_join (s);
  fs_free (s);
}

/* run_tls_with, and a PSK file (or none). */
static void
run_tls (int mode, const char *psk_file, uint16_t hflags,
         struct tls_script *t, struct result *res)
{
  const char *const settings[] = { "tls-psk-file", psk_file, NULL };

  run_tls_with (mode, psk_file ? settings : NULL, hflags, t, res);
}

static void
test_require_refused (void **state)
{
  static const uint32_t refusals[] = {
    NBD_REP_ERR_UNSUP, NBD_REP_ERR_POLICY, NBD_REP_ERR_INVALID,
  };
  (void) state;

  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    struct tls_script t = { .starttls_reply = refusals[i] };
    struct result r;

    run_tls (NBDAIO_TLS_REQUIRE, NULL, 0, &t, &r);
    assert_int_equal (r.rc, -1);
    assert_int_equal (r.err, ENOTSUP);
    assert_true (contains (r.msg, "does not offer TLS"));
    /* no downgrade: nothing after the refusal but NBD_OPT_ABORT */
    assert_int_equal (t.nafter, 1);
    assert_int_equal (t.after[0], NBD_OPT_ABORT);
  }
}

static void
test_allow_refused_plaintext (void **state)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ERR_POLICY };
  struct result r;
  (void) state;

  run_tls (NBDAIO_TLS_ALLOW, NULL, 0, &t, &r);
  assert_int_equal (r.rc, 0);
  assert_int_equal (r.tls, 0);
  assert_true (t.nafter >= 1);
  assert_int_equal (t.after[t.nafter - 1], NBD_OPT_GO);
}

static void
test_off_never_asks (void **state)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;
  (void) state;

  run_tls (NBDAIO_TLS_DISABLE, NULL, 0, &t, &r);
  assert_int_equal (r.rc, 0);
  assert_int_equal (r.tls, 0);
  assert_int_equal (t.first_byte, -1);      /* STARTTLS never sent */
}

/* After the ACK the client's next byte opens a TLS handshake record: no
 * NBD option follows in plaintext. */
static void
test_ack_then_client_hello (void **state)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;
  (void) state;

  run_tls (NBDAIO_TLS_REQUIRE, NULL, 0, &t, &r);
  assert_int_equal (r.rc, -1);               /* the server stops there */
  assert_int_equal (t.first_byte, TLS_RECORD_HANDSHAKE);
  assert_int_equal (t.nafter, 0);
  assert_true (contains (r.msg, "TLS"));
}

static void
test_starttls_reply_violations (void **state)
{
  struct tls_script ack_len = { .starttls_reply = NBD_REP_ACK,
                                .reply_len = 4 };
  struct tls_script info = { .starttls_reply = NBD_REP_INFO,
                             .reply_len = 12 };
  struct result r;
  (void) state;

  run_tls (NBDAIO_TLS_REQUIRE, NULL, 0, &ack_len, &r);
  assert_int_equal (r.rc, -1);
  assert_true (contains (r.msg, "[opt-reply-length]"));
  run_tls (NBDAIO_TLS_ALLOW, NULL, 0, &info, &r);
  assert_int_equal (r.rc, -1);
  assert_true (contains (r.msg, "[opt-reply-type]"));
}

static void
test_require_nonfixed_newstyle (void **state)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;
  (void) state;

  run_tls (NBDAIO_TLS_REQUIRE, NULL, NBD_FLAG_NO_ZEROES, &t, &r);
  assert_int_equal (r.rc, -1);
  assert_int_equal (r.err, ENOTSUP);
  assert_true (contains (r.msg, "fixed newstyle"));
  assert_int_equal (t.nafter, 0);            /* not even EXPORT_NAME */
}

static int
script_oldstyle_tls (struct fs *s)
{
  if (fs_send_oldstyle (s, s->hs.size, s->hs.tflags) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_require_oldstyle (void **state)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  (void) state;

  assert_int_equal (nbdaio_set_tls (h, NBDAIO_TLS_REQUIRE), 0);
  assert_true (fs_start (s, script_oldstyle_tls, NULL) >= 0);
  assert_int_equal (test_connect (h, s), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTSUP);
  assert_true (contains (nbdaio_get_error (), "oldstyle"));
  nbdaio_close (h);
  fs_join (s);
  fs_free (s);
}

/* Key files are read before NBD_OPT_STARTTLS is sent. */
static void
test_bad_key_files_before_traffic (void **state)
{
  char dir[] = "/tmp/nbdaio-tls-XXXXXX", path[64];
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;
  FILE *f;
  (void) state;

  assert_non_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/missing.psk", dir);
  run_tls (NBDAIO_TLS_REQUIRE, path, 0, &t, &r);
  assert_int_equal (r.rc, -1);
  assert_true (contains (r.msg, "cannot read TLS PSK file"));
  assert_true (contains (r.msg, path));
  assert_int_equal (t.first_byte, -1);

  snprintf (path, sizeof path, "%s/keys.psk", dir);
  assert_non_null (f = fopen (path, "w"));
  fputs ("bob:00112233\nalice:xyz\n", f);
  fclose (f);
  assert_int_equal (chmod (path, 0600), 0);       /* a key file is private */
  t = (struct tls_script) { .starttls_reply = NBD_REP_ACK };
  run_tls (NBDAIO_TLS_REQUIRE, path, 0, &t, &r);   /* login name */
  assert_int_equal (r.rc, -1);
  assert_true (contains (r.msg, "has no key for user"));
  unlink (path);
  rmdir (dir);
}

static void
test_x509_missing_ca (void **state)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  (void) state;

  assert_int_equal (nbdaio_set_option (h, "tls", "require"), 0);
  assert_int_equal (nbdaio_set_option (h, "tls-certificates",
                                       "/nonexistent/pki"), 0);
  assert_true (fs_start (s, script_tls, &t) >= 0);
  assert_int_equal (test_connect (h, s), -1);
  assert_true (contains (nbdaio_get_error (),
                         "cannot read TLS CA certificate "
                         "/nonexistent/pki/ca-cert.pem"));
  nbdaio_close (h);
  fs_join (s);
  fs_free (s);
  assert_int_equal (t.first_byte, -1);
}

/* ---- key and certificate files: what is read, and from whom ---- */

/* A self-signed CA certificate (made for these tests with certtool), so
 * that loading ca-cert.pem succeeds and the client key is read next. */
static const char test_ca_pem[] =
  "-----BEGIN CERTIFICATE-----\n"
  "MIIBgjCCASigAwIBAgIUCX3QpRQXb5CGQ1XIgDnPQD1t5CMwCgYIKoZIzj0EAwIw\n"
  "HjEcMBoGA1UEAxMTbmJkYWlvIHVuaXQgdGVzdCBDQTAgFw0yNjExMzAxMDIxMDJa\n"
  "GA8yMTI2MTEwNjEwMjEwMlowHjEcMBoGA1UEAxMTbmJkYWlvIHVuaXQgdGVzdCBD\n"
  "QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIh01VC6KiPJSS1KHYmrUQWfhyMV\n"
  "Qqojj37r/IH/MAzf3SbC8hvkHASzcDWuNXd/kS0wW5cqBbPRdLQi+m2viNKjQjBA\n"
  "MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMB0GA1UdDgQWBBS9+iRK\n"
  "SO3s9dw/MlDj+ck5m++r7zAKBggqhkjOPQQDAgNIADBFAiEAoMa5BPGkadfnEIKw\n"
  "hxxKOGdVaFnv7eHgJ4MwnCIFdf4CIDr5tHusetLmssHhdymyh1lMtzjDrh4D0q/S\n"
  "bXkoYD/w\n"
  "-----END CERTIFICATE-----\n";

#define ALICE_KEY "alice:00112233445566778899aabbccddeeff\n"

/* Write len bytes of text to path with mode (exactly: no umask). */
static void
make_file (const char *path, const void *text, size_t len, mode_t mode)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  assert_true (fd >= 0);
  assert_int_equal (write (fd, text, len), (ssize_t) len);
  assert_int_equal (fchmod (fd, mode), 0);
  assert_int_equal (close (fd), 0);
}

/* Connect with settings; the error must be errnum with "WHAT PATH WANT"
 * in the message, and nothing may have been sent after STARTTLS. */
static void
expect_key_refused (const char *const *settings, const char *what,
                    const char *path, const char *want, int errnum)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;
  char full[512];

  snprintf (full, sizeof full, "%s %s %s", what, path, want);
  run_tls_with (NBDAIO_TLS_REQUIRE, settings, 0, &t, &r);
  if (r.rc != -1 || r.err != errnum || !contains (r.msg, full))
    fail_msg ("rc %d, errno %d, \"%s\"; expected errno %d and \"%s\"", r.rc,
              r.err, r.msg, errnum, full);
  assert_int_equal (t.first_byte, -1);
}

/* Connect with settings: the key files are accepted, so a TLS ClientHello
 * follows STARTTLS. */
static void
expect_key_used (const char *const *settings)
{
  struct tls_script t = { .starttls_reply = NBD_REP_ACK };
  struct result r;

  run_tls_with (NBDAIO_TLS_REQUIRE, settings, 0, &t, &r);
  if (t.first_byte != TLS_RECORD_HANDSHAKE)
    fail_msg ("no ClientHello after STARTTLS: \"%s\"", r.msg);
}

/* A PSK file must be a regular file of at most 64 KiB that only its
 * owner can read; a NUL byte does not cut a key short. */
static void
test_psk_file_checks (void **state)
{
  char dir[] = "/tmp/nbdaio-tls-XXXXXX", path[64], fifo[64], want[256];
  const char *const settings[] = {
    "tls-psk-file", path, "tls-username", "alice", NULL,
  };
  static const mode_t loose[] = { 0644, 0640, 0604, 0660 };
  static const mode_t tight[] = { 0600, 0400 };
  static const char nul_key[] = "alice:0011\0" "2233\n";
  char *big;
  (void) state;

  assert_non_null (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/keys.psk", dir);
  snprintf (fifo, sizeof fifo, "%s/fifo.psk", dir);

  /* readable by group or others: refused, with the fix */
  for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
    make_file (path, ALICE_KEY, strlen (ALICE_KEY), loose[i]);
    snprintf (want, sizeof want, "can be read by group or others (mode "
              "%04o): a key must be private to its owner; run chmod 600 %s",
              (unsigned) loose[i], path);
    expect_key_refused (settings, "TLS PSK file", path, want, EACCES);
  }
  /* private: the key is used (a ClientHello follows STARTTLS) */
  for (size_t i = 0; i < sizeof tight / sizeof tight[0]; i++) {
    make_file (path, ALICE_KEY, strlen (ALICE_KEY), tight[i]);
    expect_key_used (settings);
  }
  /* a NUL byte inside the key: an error, not the digits before it */
  make_file (path, nul_key, sizeof nul_key - 1, 0600);
  expect_key_refused (settings, "TLS PSK file", path, "line 1: the key of "
                      "user 'alice' is not an even number of hex digits",
                      EINVAL);
  /* larger than 64 KiB (comment lines psktool would never write) */
  assert_non_null (big = malloc (64 * 1024 + 1));
  memset (big, '\n', 64 * 1024 + 1);
  memcpy (big, ALICE_KEY, strlen (ALICE_KEY));
  make_file (path, big, 64 * 1024, 0600);
  expect_key_used (settings);
  make_file (path, big, 64 * 1024 + 1, 0600);
  expect_key_refused (settings, "TLS PSK file", path, "is larger than 64 KiB, "
                      "the most read for a TLS PSK file", EFBIG);
  free (big);
  unlink (path);
  /* not a regular file: say what it is (a FIFO or /dev/zero would block
   * or never end) */
  memcpy (path, dir, sizeof dir);
  expect_key_refused (settings, "TLS PSK file", dir,
                      "is a directory, not a file", EISDIR);
  assert_int_equal (mkfifo (fifo, 0600), 0);
  memcpy (path, fifo, sizeof fifo);
  expect_key_refused (settings, "TLS PSK file", fifo,
                      "is a FIFO (named pipe), not a regular file", EINVAL);
  unlink (fifo);
  snprintf (path, sizeof path, "/dev/zero");
  expect_key_refused (settings, "TLS PSK file", "/dev/zero",
                      "is a character device, not a regular file", EINVAL);
  rmdir (dir);
}

/* x509: client-key.pem must be private too; every file of the directory
 * must be a regular file. */
static void
test_x509_file_checks (void **state)
{
  char dir[] = "/tmp/nbdaio-tls-XXXXXX", ca[64], cert[64], key[64];
  char want[256];
  const char *const settings[] = { "tls-certificates", dir, NULL };
  static const char junk[] = "not a PEM file\n";
  (void) state;

  assert_non_null (mkdtemp (dir));
  snprintf (ca, sizeof ca, "%s/ca-cert.pem", dir);
  snprintf (cert, sizeof cert, "%s/client-cert.pem", dir);
  snprintf (key, sizeof key, "%s/client-key.pem", dir);
  make_file (ca, test_ca_pem, strlen (test_ca_pem), 0644);
  make_file (cert, junk, strlen (junk), 0644);   /* public: fine */

  make_file (key, junk, strlen (junk), 0644);
  snprintf (want, sizeof want, "can be read by group or others (mode "
            "0644): a key must be private to its owner; run chmod 600 %s",
            key);
  expect_key_refused (settings, "TLS client key", key, want, EACCES);
  make_file (key, junk, strlen (junk), 0640);
  expect_key_refused (settings, "TLS client key", key, "can be read by "
                      "group or others (mode 0640)", EACCES);
  /* private: read and handed to gnutls, which finds no key in it */
  make_file (key, junk, strlen (junk), 0600);
  snprintf (want, sizeof want, "/ key %s: ", key);
  expect_key_refused (settings, "TLS client certificate", cert, want,
                      EINVAL);
  unlink (key);
  assert_int_equal (mkdir (key, 0700), 0);
  expect_key_refused (settings, "TLS client key", key,
                      "is a directory, not a file", EISDIR);
  rmdir (key);
  unlink (cert);
  /* a CA file that never ends */
  unlink (ca);
  assert_int_equal (symlink ("/dev/zero", ca), 0);
  expect_key_refused (settings, "TLS CA certificate", ca,
                      "is a character device, not a regular file", EINVAL);
  unlink (ca);
  rmdir (dir);
}
static int
script_tls_reqd_with_message (struct fs *s)
{
  static const char msg[] = "this server speaks TLS only";
  uint32_t opt, len;
  uint8_t *data;

  if (fs_send_greeting (s, s->hs.hflags) == -1 ||
      fs_read_client_flags (s, NULL) == -1 ||
      fs_read_option (s, &opt, &data, &len) == -1)
    return -1;
  free (data);
  if (fs_send_opt_reply (s, opt, NBD_REP_ERR_TLS_REQD, msg,
                         sizeof msg - 1) == -1)
    return -1;
  return fs_wait_eof (s);
}

static void
test_tls_reqd_message (void **state)
{
  struct fs *s = fs_new ();
  struct nbdaio_handle *h = test_handle ();
  (void) state;

  assert_true (fs_start (s, script_tls_reqd_with_message, NULL) >= 0);
  assert_int_equal (test_connect (h, s), -1);
  assert_int_equal (nbdaio_get_errno (), ENOTSUP);
  assert_true (contains (nbdaio_get_error (), "requires TLS"));
  assert_true (contains (nbdaio_get_error (), "this server speaks TLS only"));
  nbdaio_close (h);
  fs_join (s);
  fs_free (s);
}

/* ---- settings by name ---- */

struct bad_option {
  const char *name, *value, *want;
  int err;
};

static void
test_set_option_errors (void **state)
{
  static const struct bad_option bad[] = {
    { "tls", "maybe", "tls: bad value 'maybe'", EINVAL },
    { "tls-verify-peer", "perhaps", "tls-verify-peer: bad value", EINVAL },
    { "tls-certificates", "", "TLS certificates directory is empty", EINVAL },
    { "structured", "2", "structured: bad value '2'", EINVAL },
    { "connect-timeout", "5h", "connect-timeout: bad value '5h'", EINVAL },
    { "connect-timeout", "99999999999", "connect-timeout: '99999999999' is "
      "too long", EINVAL },
    { "max-in-flight", "0", "max-in-flight: 0 is out of range", EINVAL },
    { "max-in-flight", "-3", "max-in-flight: bad value '-3'", EINVAL },
    { "strict", "bounds,nope", "strict: bad value 'bounds,nope'", EINVAL },
    { "strict", "", "strict: bad value ''", EINVAL },
    { "no-such-setting", "1", "unknown setting 'no-such-setting'", ENOENT },
    { "export", NULL, "export: value is NULL", EINVAL },
  };
  struct nbdaio_handle *h = nbdaio_create ();
  (void) state;

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal (nbdaio_set_option (h, bad[i].name, bad[i].value), -1);
    if (!contains (nbdaio_get_error (), bad[i].want))
      fprintf (stderr, "  %s=%s: \"%s\"\n", bad[i].name, bad[i].value,
               nbdaio_get_error ());
    assert_true (contains (nbdaio_get_error (), bad[i].want));
    assert_int_equal (nbdaio_get_errno (), bad[i].err);
  }
  nbdaio_close (h);
}

static void
test_set_option_values (void **state)
{
  struct nbdaio_handle *h = nbdaio_create ();
  (void) state;

  assert_int_equal (nbdaio_get_tls (h), NBDAIO_TLS_DISABLE);
  assert_int_equal (nbdaio_set_option (h, "tls", "Allow"), 0);
  assert_int_equal (nbdaio_get_tls (h), NBDAIO_TLS_ALLOW);
  assert_int_equal (nbdaio_set_option (h, "tls", "require"), 0);
  assert_int_equal (nbdaio_get_tls (h), NBDAIO_TLS_REQUIRE);
  assert_int_equal (nbdaio_set_option (h, "strict", "none"), 0);
  assert_int_equal (nbdaio_get_strict (h), 0);
  assert_int_equal (nbdaio_set_option (h, "strict", "bounds,align"), 0);
  assert_int_equal (nbdaio_get_strict (h),
                    NBDAIO_STRICT_BOUNDS | NBDAIO_STRICT_ALIGN);
  assert_int_equal (nbdaio_set_option (h, "strict", "all"), 0);
  assert_int_equal (nbdaio_get_strict (h), NBDAIO_STRICT_ALL);
  assert_int_equal (nbdaio_set_option (h, "connect-timeout", "2s"), 0);
  assert_int_equal (nbdaio_set_option (h, "connect-timeout", "150ms"), 0);
  assert_int_equal (nbdaio_set_option (h, "max-in-flight", "65536"), 0);
  assert_int_equal (nbdaio_set_option (h, "meta-context", "none"), 0);
  assert_int_equal (nbdaio_set_option (h, "debug", "off"), 0);
  assert_int_equal (nbdaio_set_option (h, "tls-verify-peer", "no"), 0);
  assert_int_equal (nbdaio_set_option (h, "export", "disk1"), 0);
  assert_int_equal (nbdaio_set_tls (h, 7), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  nbdaio_close (h);
}

/* The URI's TLS parts reach the handle; the connect itself then fails on
 * the missing socket. */
static void
test_uri_tls_parameters (void **state)
{
  struct nbdaio_handle *h = nbdaio_create ();
  (void) state;

  assert_int_equal (nbdaio_connect_uri (h, "nbds+unix://alice@/x?socket="
                                        "/nonexistent.sock&tls-psk-file=/k"
                                        "&tls-hostname=disk.example"), -1);
  assert_true (contains (nbdaio_get_error (), "/nonexistent.sock"));
  assert_int_equal (nbdaio_get_tls (h), NBDAIO_TLS_REQUIRE);
  nbdaio_close (h);

  h = nbdaio_create ();
  assert_int_equal (nbdaio_connect_uri (h, "nbds://localhost/?tls-nope=1"),
                    -1);
  assert_true (contains (nbdaio_get_error (), "URI query parameter: "
                         "unknown setting 'tls-nope'"));
  nbdaio_close (h);

  h = nbdaio_create ();
  assert_int_equal (nbdaio_connect_uri (h, "nbds://localhost/?"
                                        "tls-verify-peer=maybe"), -1);
  assert_true (contains (nbdaio_get_error (), "tls-verify-peer: bad value"));
  nbdaio_close (h);

  h = nbdaio_create ();
  assert_int_equal (nbdaio_connect_uri (h, "nbd://localhost/?"
                                        "tls-certificates=/x"), -1);
  assert_true (contains (nbdaio_get_error (), "need an nbds://"));
  nbdaio_close (h);

  h = nbdaio_create ();
  assert_int_equal (nbdaio_connect_uri (h, "nbds://h/?tls-psk-file=/a&"
                                        "tls-psk-file=/b"), -1);
  assert_true (contains (nbdaio_get_error (), "given twice"));
  nbdaio_close (h);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_require_refused),
    cmocka_unit_test (test_allow_refused_plaintext),
    cmocka_unit_test (test_off_never_asks),
    cmocka_unit_test (test_ack_then_client_hello),
    cmocka_unit_test (test_starttls_reply_violations),
    cmocka_unit_test (test_require_nonfixed_newstyle),
    cmocka_unit_test (test_require_oldstyle),
    cmocka_unit_test (test_bad_key_files_before_traffic),
    cmocka_unit_test (test_x509_missing_ca),
    cmocka_unit_test (test_psk_file_checks),
    cmocka_unit_test (test_x509_file_checks),
    cmocka_unit_test (test_tls_reqd_message),
    cmocka_unit_test (test_set_option_errors),
    cmocka_unit_test (test_set_option_values),
    cmocka_unit_test (test_uri_tls_parameters),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
