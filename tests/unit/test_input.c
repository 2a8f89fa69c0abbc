/* test_input.c - bad local input, table-driven: malformed URIs, bad
 * settings (by name and through the typed setters, on a NULL, a fresh and a
 * connected handle) and refused requests (zero length, out of bounds,
 * overflowing offsets, unaligned, oversized, flags not allowed or not
 * advertised, read-only, NULL buffers, NULL / unconnected / closed / dead /
 * full / shut-down handles).  Each row names the errno and a piece of the
 * message the caller gets; every refused request runs each free function
 * once and no callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

/* Report a row that does not fail as expected, then assert. */
static void
expect_error (const char *row, int r, int want_errno, const char *want_msg)
{
  int e = nbdaio_get_errno ();
  const char *msg = nbdaio_get_error ();

  if (r != -1 || e != want_errno || !contains (msg, want_msg))
    print_message ("row '%s': returned %d, errno %d (%s), message \"%s\"; "
                   "expected -1, errno %d (%s), message with \"%s\"\n", row,
                   r, e, strerror (e), msg ? msg : "(none)", want_errno,
                   strerror (want_errno), want_msg);
  assert_int_equal (r, -1);
  assert_int_equal (e, want_errno);
  assert_true (contains (msg, want_msg));
}

/* ---------------------------------------------------------------------- */
/* malformed URIs */

struct uri_case {
  const char *uri;
  int err;
  const char *msg;
};

#define LONG_EXPORT_LEN (NBD_MAX_STRING + 1)

static void
test_bad_uris (void **state)
{
  static char long_uri[32 + LONG_EXPORT_LEN];
  const struct uri_case cases[] = {
    { NULL, EINVAL, "URI is NULL" },
    { "", EINVAL, "has no scheme" },
    { "localhost:10809/disk", EINVAL, "has no scheme" },
    { "nbd:/localhost/disk", EINVAL, "has no scheme" },
    { "http://localhost/disk", EINVAL, "unsupported URI scheme 'http'" },
    { "nbd+tcp://localhost/", EINVAL, "unsupported URI scheme 'nbd+tcp'" },
    { "://localhost/", EINVAL, "unsupported URI scheme ''" },
    { "nbd://localhost:0/", EINVAL, "port out of range in URI: 0" },
    { "nbd://localhost:65536/", EINVAL, "port out of range in URI: 65536" },
    { "nbd://localhost:99999/", EINVAL, "port out of range in URI: 99999" },
    { "nbd://localhost:123456/", EINVAL, "bad port in URI: '123456'" },
    { "nbd://localhost:nbd/", EINVAL, "bad port in URI: 'nbd'" },
    { "nbd://localhost:10809x/", EINVAL, "bad port in URI: '10809x'" },
    { "nbd://localhost:-1/", EINVAL, "bad port in URI: '-1'" },
    { "nbd://localhost:/", EINVAL, "bad port in URI: ''" },
    { "nbd://localhost:1:2/", EINVAL, "bad port in URI: '1:2'" },
    { "nbd://[::1]:/", EINVAL, "bad port in URI: ''" },
    { "nbd://:10809/", EINVAL, "empty host in URI" },
    { "nbd://[::1/", EINVAL, "bad IPv6 address in URI: '[::1'" },
    { "nbd://[]:10809/", EINVAL, "bad IPv6 address in URI: '[]:10809'" },
    { "nbd://[::1]x/", EINVAL, "unexpected 'x' after IPv6 address" },
    { "nbd://localhost/disk%zz", EINVAL,
      "bad percent-escape in URI export name" },
    { "nbd://localhost/disk%4", EINVAL,
      "bad percent-escape in URI export name" },
    { "nbd://localhost/disk%", EINVAL,
      "bad percent-escape in URI export name" },
    { "nbd://local%g1host/", EINVAL, "bad percent-escape in URI host" },
    { "nbd://localhost/a%00b", EINVAL,
      "bad percent-escape in URI export name" },
    { "nbds://al%00ice@localhost/", EINVAL,
      "bad percent-escape in URI user name" },
    { "nbds://localhost/?tls-psk-file=/k%0", EINVAL,
      "bad percent-escape in URI tls-psk-file" },
    { "nbd://localhost/?foo=bar", EINVAL,
      "unknown URI query parameter 'foo'" },
    { "nbd://localhost/?=x", EINVAL, "unknown URI query parameter ''" },
    { "nbd://localhost/?export=disk", EINVAL,
      "unknown URI query parameter 'export'" },
    { "nbds://localhost/?tls-nope=1", ENOENT,
      "URI query parameter: unknown setting 'tls-nope'" },
    { "nbd+unix:///?socket=/a.sock&socket=/b.sock", EINVAL,
      "URI query parameter 'socket' given twice" },
    { "nbds://localhost/?tls-hostname=a&tls-hostname=b", EINVAL,
      "URI query parameter 'tls-hostname' given twice" },
    { "nbd+unix:///disk", EINVAL, "a +unix URI needs ?socket=PATH" },
    { "nbd+unix:///?socket=", EINVAL,
      "URI query parameter 'socket' needs a value" },
    { "nbd+unix:///?socket", EINVAL,
      "URI query parameter 'socket' needs a value" },
    { "nbd+unix://localhost/?socket=/a.sock", EINVAL,
      "a +unix URI takes no host ('localhost')" },
    { "nbd://localhost/?socket=/a.sock", EINVAL,
      "?socket= is only valid with nbd+unix:// URIs" },
    { "nbd://localhost/?tls-certificates=/etc/pki", EINVAL,
      "TLS parameters (user@, tls-*) need an nbds://" },
    { "nbd+unix:///?socket=/a.sock&tls-psk-file=/k", EINVAL,
      "TLS parameters (user@, tls-*) need an nbds://" },
    { "nbd://alice@localhost/", EINVAL,
      "TLS parameters (user@, tls-*) need an nbds://" },
    { "nbds://@localhost/", EINVAL, "empty user name in URI" },
    { "nbds://localhost/?tls-verify-peer=maybe", EINVAL,
      "URI query parameter: tls-verify-peer: bad value 'maybe'" },
    { "nbds://localhost/?tls-certificates=", EINVAL,
      "URI query parameter 'tls-certificates' needs a value" },
    { "nbd://localhost/disk#part", EINVAL,
      "URI fragments ('#') are not allowed" },
    { "nbd://localhost/#", EINVAL, "URI fragments ('#') are not allowed" },
    { long_uri, EINVAL, "export name in URI is longer than 4096 bytes" },
  };
  (void) state;

  snprintf (long_uri, sizeof long_uri, "nbd://localhost/");
  memset (long_uri + strlen (long_uri), 'e', LONG_EXPORT_LEN);

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct uri_case *c = &cases[i];
    struct nbdaio_handle *h = test_handle ();
    char row[64];

    assert_non_null (h);
    snprintf (row, sizeof row, "%.60s", c->uri ? c->uri : "(NULL)");
    expect_error (row, nbdaio_connect_uri (h, c->uri), c->err, c->msg);
    /* refused before any connection attempt: still a fresh handle */
    assert_int_equal (nbdaio_is_connected (h), 0);
    assert_null (nbdaio_get_connection_error (h));
    assert_int_equal (nbdaio_set_export_name (h, "again"), 0);
    nbdaio_close (h);
  }
}

/* ---------------------------------------------------------------------- */
/* bad settings */

enum setter {
  S_OPTION,                     /* nbdaio_set_option (h, str, str2) */
  S_EXPORT, S_STRUCTURED, S_META, S_TIMEOUT, S_MAX_IN_FLIGHT, S_STRICT,
  S_DEBUG, S_TLS, S_TLS_CERTS, S_TLS_PSK, S_TLS_USER, S_TLS_HOST,
  S_TLS_VERIFY, S_GET_TLS,
  S_CONNECT_URI, S_CONNECT_UNIX, S_CONNECT_TCP, S_CONNECT_SOCKET,
};

/* On which handle a row runs. */
enum when { W_NULL, W_NEW, W_CONNECTED };

struct setting_case {
  enum when when;
  enum setter setter;
  const char *str, *str2;       /* string arguments */
  long num;                     /* numeric argument */
  int err;
  const char *msg;
};

static int
call_setter (struct nbdaio_handle *h, const struct setting_case *c)
{
  switch (c->setter) {
  case S_OPTION:        return nbdaio_set_option (h, c->str, c->str2);
  case S_EXPORT:        return nbdaio_set_export_name (h, c->str);
  case S_STRUCTURED:    return nbdaio_set_request_structured_replies (h, (int) c->num);
  case S_META:          return nbdaio_set_meta_context (h, c->str);
  case S_TIMEOUT:       return nbdaio_set_connect_timeout (h, (unsigned) c->num);
  case S_MAX_IN_FLIGHT: return nbdaio_set_max_in_flight (h, (unsigned) c->num);
  case S_STRICT:        return nbdaio_set_strict (h, (unsigned) c->num);
  case S_DEBUG:         return nbdaio_set_debug (h, (int) c->num);
  case S_TLS:           return nbdaio_set_tls (h, (int) c->num);
  case S_TLS_CERTS:     return nbdaio_set_tls_certificates (h, c->str);
  case S_TLS_PSK:       return nbdaio_set_tls_psk_file (h, c->str);
  case S_TLS_USER:      return nbdaio_set_tls_username (h, c->str);
  case S_TLS_HOST:      return nbdaio_set_tls_hostname (h, c->str);
  case S_TLS_VERIFY:    return nbdaio_set_tls_verify_peer (h, (int) c->num);
  case S_GET_TLS:       return nbdaio_get_tls (h);
  case S_CONNECT_URI:   return nbdaio_connect_uri (h, c->str);
  case S_CONNECT_UNIX:  return nbdaio_connect_unix (h, c->str);
  case S_CONNECT_TCP:   return nbdaio_connect_tcp (h, c->str, c->str2);
  case S_CONNECT_SOCKET: return nbdaio_connect_socket (h, (int) c->num);
  }
  return 0;
}

static const char *const setter_names[] = {
  [S_OPTION] = "set_option", [S_EXPORT] = "set_export_name",
  [S_STRUCTURED] = "set_request_structured_replies",
  [S_META] = "set_meta_context", [S_TIMEOUT] = "set_connect_timeout",
  [S_MAX_IN_FLIGHT] = "set_max_in_flight", [S_STRICT] = "set_strict",
  [S_DEBUG] = "set_debug", [S_TLS] = "set_tls",
  [S_TLS_CERTS] = "set_tls_certificates", [S_TLS_PSK] = "set_tls_psk_file",
  [S_TLS_USER] = "set_tls_username", [S_TLS_HOST] = "set_tls_hostname",
  [S_TLS_VERIFY] = "set_tls_verify_peer", [S_GET_TLS] = "get_tls",
  [S_CONNECT_URI] = "connect_uri", [S_CONNECT_UNIX] = "connect_unix",
  [S_CONNECT_TCP] = "connect_tcp", [S_CONNECT_SOCKET] = "connect_socket",
};

#define LONG_NAME_LEN (NBD_MAX_STRING + 1)
static char long_name[LONG_NAME_LEN + 1];
static char long_path[200];

#define BEFORE "this setting must be made before connecting"

static const struct setting_case setting_cases[] = {
  /* a NULL handle */
  { W_NULL, S_OPTION, "export", "disk", 0, EINVAL, "handle is NULL" },
  { W_NULL, S_EXPORT, "disk", NULL, 0, EINVAL, "handle is NULL" },
  { W_NULL, S_STRUCTURED, NULL, NULL, 1, EINVAL, "handle is NULL" },
  { W_NULL, S_TIMEOUT, NULL, NULL, 1000, EINVAL, "handle is NULL" },
  { W_NULL, S_MAX_IN_FLIGHT, NULL, NULL, 16, EINVAL, "handle is NULL" },
  { W_NULL, S_STRICT, NULL, NULL, 0, EINVAL, "handle is NULL" },
  { W_NULL, S_DEBUG, NULL, NULL, 1, EINVAL, "handle is NULL" },
  { W_NULL, S_TLS, NULL, NULL, NBDAIO_TLS_ALLOW, EINVAL, "handle is NULL" },
  { W_NULL, S_TLS_CERTS, "/etc/pki", NULL, 0, EINVAL, "handle is NULL" },
  { W_NULL, S_GET_TLS, NULL, NULL, 0, EINVAL, "handle is NULL" },
  { W_NULL, S_CONNECT_URI, "nbd://localhost/", NULL, 0, EINVAL,
    "handle is NULL" },
  { W_NULL, S_CONNECT_SOCKET, NULL, NULL, 0, EINVAL, "handle is NULL" },

  /* settings by name: unknown names, NULLs, bad values */
  { W_NEW, S_OPTION, "bogus", "1", 0, ENOENT, "unknown setting 'bogus'" },
  { W_NEW, S_OPTION, "", "1", 0, ENOENT, "unknown setting ''" },
  { W_NEW, S_OPTION, "Export", "disk", 0, ENOENT, "unknown setting 'Export'" },
  { W_NEW, S_OPTION, "timeout", "5s", 0, ENOENT, "unknown setting 'timeout'" },
  { W_NEW, S_OPTION, NULL, "1", 0, EINVAL, "setting name is NULL" },
  { W_NEW, S_OPTION, "export", NULL, 0, EINVAL, "export: value is NULL" },
  { W_NEW, S_OPTION, "debug", NULL, 0, EINVAL, "debug: value is NULL" },
  { W_NEW, S_OPTION, "export", long_name, 0, EINVAL,
    "export name is longer than 4096 bytes" },
  { W_NEW, S_OPTION, "tls", "maybe", 0, EINVAL,
    "tls: bad value 'maybe' (expected off, allow or require)" },
  { W_NEW, S_OPTION, "tls", "", 0, EINVAL, "tls: bad value ''" },
  { W_NEW, S_OPTION, "tls-verify-peer", "2", 0, EINVAL,
    "tls-verify-peer: bad value '2' (expected yes/no" },
  { W_NEW, S_OPTION, "structured", "yes please", 0, EINVAL,
    "structured: bad value 'yes please'" },
  { W_NEW, S_OPTION, "debug", "", 0, EINVAL, "debug: bad value ''" },
  { W_NEW, S_OPTION, "meta-context", "", 0, EINVAL,
    "meta context name is empty" },
  { W_NEW, S_OPTION, "connect-timeout", "10h", 0, EINVAL,
    "connect-timeout: bad value '10h' (expected a duration" },
  { W_NEW, S_OPTION, "connect-timeout", "-1", 0, EINVAL,
    "connect-timeout: bad value '-1'" },
  { W_NEW, S_OPTION, "connect-timeout", "", 0, EINVAL,
    "connect-timeout: bad value ''" },
  { W_NEW, S_OPTION, "connect-timeout", "4294968s", 0, EINVAL,
    "connect-timeout: '4294968s' is too long (at most 4294967295 ms)" },
  { W_NEW, S_OPTION, "connect-timeout", "99999999999999999999", 0, EINVAL,
    "connect-timeout: bad value '99999999999999999999'" },
  { W_NEW, S_OPTION, "max-in-flight", "0", 0, EINVAL,
    "max-in-flight: 0 is out of range (1 to 65536)" },
  { W_NEW, S_OPTION, "max-in-flight", "65537", 0, EINVAL,
    "max-in-flight: 65537 is out of range (1 to 65536)" },
  { W_NEW, S_OPTION, "max-in-flight", "18446744073709551616", 0, EINVAL,
    "max-in-flight: bad value '18446744073709551616'" },
  { W_NEW, S_OPTION, "max-in-flight", "16k", 0, EINVAL,
    "max-in-flight: bad value '16k' (expected a whole number from 1 to "
    "65536)" },
  { W_NEW, S_OPTION, "max-in-flight", " 16", 0, EINVAL,
    "max-in-flight: bad value ' 16'" },
  { W_NEW, S_OPTION, "strict", "bogus", 0, EINVAL,
    "strict: bad value 'bogus' (expected all, none, a boolean or a comma "
    "list" },
  { W_NEW, S_OPTION, "strict", "flags,", 0, EINVAL,
    "strict: bad value 'flags,'" },
  { W_NEW, S_OPTION, "strict", "bounds,,align", 0, EINVAL,
    "strict: bad value 'bounds,,align'" },
  { W_NEW, S_OPTION, "split", "maybe", 0, EINVAL, "split: bad value 'maybe'" },
  { W_NEW, S_OPTION, "tls-certificates", "", 0, EINVAL,
    "TLS certificates directory is empty" },
  { W_NEW, S_OPTION, "tls-psk-file", "", 0, EINVAL, "TLS PSK file is empty" },

  /* typed setters: bad values */
  { W_NEW, S_EXPORT, NULL, NULL, 0, EINVAL, "export name is NULL" },
  { W_NEW, S_EXPORT, long_name, NULL, 0, EINVAL,
    "export name is longer than 4096 bytes" },
  { W_NEW, S_META, "", NULL, 0, EINVAL, "meta context name is empty" },
  { W_NEW, S_META, long_name, NULL, 0, EINVAL,
    "meta context name is longer than 4096 bytes" },
  { W_NEW, S_MAX_IN_FLIGHT, NULL, NULL, 0, EINVAL,
    "max in flight 0 is out of range (1 to 65536)" },
  { W_NEW, S_MAX_IN_FLIGHT, NULL, NULL, 65537, EINVAL,
    "max in flight 65537 is out of range (1 to 65536)" },
  { W_NEW, S_MAX_IN_FLIGHT, NULL, NULL, -1L, EINVAL,
    "max in flight 4294967295 is out of range" },
  { W_NEW, S_STRICT, NULL, NULL, 0x20, EINVAL, "unknown strict flags 0x20" },
  { W_NEW, S_STRICT, NULL, NULL, NBDAIO_STRICT_ALL | 0x100, EINVAL,
    "unknown strict flags 0x100" },
  { W_NEW, S_TLS, NULL, NULL, 3, EINVAL,
    "TLS mode 3 is not one of NBDAIO_TLS_DISABLE" },
  { W_NEW, S_TLS, NULL, NULL, -1, EINVAL, "TLS mode -1 is not one of" },
  { W_NEW, S_TLS_CERTS, "", NULL, 0, EINVAL,
    "TLS certificates directory is empty" },
  { W_NEW, S_TLS_PSK, "", NULL, 0, EINVAL, "TLS PSK file is empty" },
  { W_NEW, S_TLS_USER, "", NULL, 0, EINVAL, "TLS user name is empty" },
  { W_NEW, S_TLS_HOST, "", NULL, 0, EINVAL, "TLS host name is empty" },
  { W_NEW, S_TLS_HOST, long_name, NULL, 0, EINVAL,
    "TLS host name is longer than 4096 bytes" },

  /* connecting with bad local arguments (nothing reaches the network) */
  { W_NEW, S_CONNECT_SOCKET, NULL, NULL, -1, EBADF,
    "socket -1 is not a valid descriptor" },
  { W_NEW, S_CONNECT_UNIX, NULL, NULL, 0, EINVAL, "unix socket path is empty" },
  { W_NEW, S_CONNECT_UNIX, "", NULL, 0, EINVAL, "unix socket path is empty" },
  { W_NEW, S_CONNECT_UNIX, long_path, NULL, 0, ENAMETOOLONG,
    "unix socket path is longer than 107 bytes" },
  { W_NEW, S_CONNECT_TCP, NULL, "10809", 0, EINVAL, "TCP host is empty" },
  { W_NEW, S_CONNECT_TCP, "", NULL, 0, EINVAL, "TCP host is empty" },
  /* a numeric port out of range would wrap (getaddrinfo takes 65546 as
   * port 10); a service name is left to the resolver */
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", "65546", 0, EINVAL,
    "TCP port: 65546 is out of range (1 to 65535)" },
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", "0", 0, EINVAL,
    "TCP port: 0 is out of range (1 to 65535)" },
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", "18446744073709551626", 0, EINVAL,
    "TCP port: bad value '18446744073709551626' (expected a whole number "
    "from 1 to 65535)" },
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", "-1", 0, EINVAL,
    "TCP port: bad value '-1'" },
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", " 80", 0, EINVAL,
    "TCP port: bad value ' 80'" },
  { W_NEW, S_CONNECT_TCP, "127.0.0.1", "", 0, EINVAL,
    "TCP port: bad value ''" },

  /* after connecting: every setting but strict and debug is refused */
  { W_CONNECTED, S_OPTION, "export", "disk", 0, EINVAL, BEFORE },
  { W_CONNECTED, S_OPTION, "max-in-flight", "8", 0, EINVAL, BEFORE },
  { W_CONNECTED, S_OPTION, "split", "off", 0, EINVAL, BEFORE },
  { W_CONNECTED, S_OPTION, "tls", "require", 0, EINVAL, BEFORE },
  { W_CONNECTED, S_EXPORT, "disk", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_STRUCTURED, NULL, NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_META, "base:allocation", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_TIMEOUT, NULL, NULL, 1000, EINVAL, BEFORE },
  { W_CONNECTED, S_MAX_IN_FLIGHT, NULL, NULL, 16, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS, NULL, NULL, NBDAIO_TLS_REQUIRE, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS_CERTS, "/etc/pki", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS_PSK, "/k", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS_USER, "alice", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS_HOST, "disk.example", NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_TLS_VERIFY, NULL, NULL, 0, EINVAL, BEFORE },
  { W_CONNECTED, S_STRICT, NULL, NULL, 0x40, EINVAL,
    "unknown strict flags 0x40" },
  /* a handle connects once */
  { W_CONNECTED, S_CONNECT_URI, "nbd://localhost/", NULL, 0, EINVAL,
    "connect" },
  { W_CONNECTED, S_CONNECT_UNIX, "/nonexistent.sock", NULL, 0, EINVAL,
    "connect" },
  { W_CONNECTED, S_CONNECT_TCP, "localhost", "10809", 0, EINVAL, "connect" },
  { W_CONNECTED, S_CONNECT_SOCKET, NULL, NULL, 0, EINVAL, "connect" },
};

static void
run_setting_case (struct nbdaio_handle *h, const struct setting_case *c)
{
  char row[128];

  snprintf (row, sizeof row, "%s (%s, %s, %ld)", setter_names[c->setter],
            c->str ? (strlen (c->str) > 40 ? "(long)" : c->str) : "NULL",
            c->str2 ? c->str2 : "NULL", c->num);
  expect_error (row, call_setter (h, c), c->err, c->msg);
}

static void
test_bad_settings (void **state)
{
  struct ctx *c = *state;
  size_t n = sizeof setting_cases / sizeof setting_cases[0];

  memset (long_name, 'n', LONG_NAME_LEN);
  snprintf (long_path, sizeof long_path, "/tmp/%0150d.sock", 0);

  for (size_t i = 0; i < n; i++) {
    const struct setting_case *sc = &setting_cases[i];
    struct nbdaio_handle *h;

    if (sc->when == W_NULL)
      run_setting_case (NULL, sc);
    if (sc->when != W_NEW)
      continue;
    h = test_handle ();
    assert_non_null (h);
    run_setting_case (h, sc);
    nbdaio_close (h);
  }

  ctx_start (c, script_serve);
  for (size_t i = 0; i < n; i++)
    if (setting_cases[i].when == W_CONNECTED)
      run_setting_case (c->h, &setting_cases[i]);
  /* nothing of that changed the connection; strict and debug still may */
  assert_int_equal (nbdaio_is_connected (c->h), 1);
  assert_int_equal (nbdaio_set_strict (c->h, NBDAIO_STRICT_BOUNDS), 0);
  assert_int_equal (nbdaio_set_debug (c->h, 0), 0);
  assert_int_equal (nbdaio_flush (c->h, 0), 0);
  ctx_finish (c);
}

/* ---------------------------------------------------------------------- */
/* refused requests */

/* The handle a row runs on. */
enum fixture {
  F_RW,         /* 1 MiB, block sizes 512/4096/64 KiB, flush, trim, zero;
                 * no FUA, DF, fast zero or cache; structured replies and
                 * base:allocation */
  F_RO,         /* 40 MiB read-only, FUA, simple replies only (so no DF
                 * and no block status), no block sizes (so the payload
                 * limit is the default 32 MiB) */
  F_RW_LAX,     /* F_RW with strictness off */
  F_RW_NOSPLIT, /* F_RW with split off */
  F_RO_NOSPLIT, /* F_RO with split off */
  F_NEW,        /* never connected */
  F_CLOSED,     /* nbdaio_shutdown done */
  F_DEAD,       /* the server hung up */
  F_FULL,       /* max in flight 1, one command queued */
  F_SHUTDOWN,   /* the server answered ESHUTDOWN */
  F_NULL,       /* NULL */
  F_COUNT
};

static const char *const fixture_names[] = {
  "read-write", "read-only", "not strict", "read-write, split off",
  "read-only, split off", "unconnected", "closed", "dead",
  "full", "server shut down", "NULL",
};

enum op { OP_PREAD, OP_PREAD_SR, OP_PWRITE, OP_TRIM, OP_ZERO, OP_CACHE,
          OP_FLUSH, OP_BS };

static const char *const op_names[] = {
  "pread", "pread_structured", "pwrite", "trim", "zero", "cache", "flush",
  "block_status",
};

struct req_case {
  enum fixture fixture;
  enum op op;
  uint64_t count, offset;
  uint32_t flags;
  int null_buf;                 /* pass NULL as the buffer */
  int err;
  const char *msg;
};

#define SIZE MiB
#define BIG (128 * KiB)         /* the largest buffer a row passes */

static const struct req_case req_cases[] = {
  /* zero length */
  { F_RW, OP_PREAD, 0, 0, 0, 0, EINVAL,
    "NBD_CMD_READ of length 0 is not allowed" },
  { F_RW, OP_PWRITE, 0, 512, 0, 0, EINVAL, "NBD_CMD_WRITE of length 0" },
  { F_RW, OP_TRIM, 0, 0, 0, 0, EINVAL, "NBD_CMD_TRIM of length 0" },
  { F_RW, OP_ZERO, 0, 0, 0, 0, EINVAL, "NBD_CMD_WRITE_ZEROES of length 0" },
  { F_RW, OP_BS, 0, 0, 0, 0, EINVAL, "NBD_CMD_BLOCK_STATUS of length 0" },
  { F_RW, OP_PREAD, 0, 0, 0, 1, EINVAL, "NBD_CMD_READ of length 0" },
  /* past the end, and offsets that overflow */
  { F_RW, OP_PREAD, 1024, SIZE - 512, 0, 0, EINVAL,
    "NBD_CMD_READ [1048064, +1024) is beyond the end of the export (size "
    "1048576)" },
  { F_RW, OP_PREAD, 512, SIZE, 0, 0, EINVAL, "beyond the end of the export" },
  { F_RW, OP_PWRITE, 512, 2 * SIZE, 0, 0, EINVAL,
    "NBD_CMD_WRITE [2097152, +512) is beyond the end" },
  { F_RW, OP_BS, SIZE + 512, 0, 0, 0, EINVAL,
    "NBD_CMD_BLOCK_STATUS [0, +1049088) is beyond the end" },
  { F_RW, OP_PREAD, 512, UINT64_MAX, 0, 0, EINVAL,
    "NBD_CMD_READ [18446744073709551615, +512) is beyond the end" },
  { F_RW, OP_TRIM, 4096, UINT64_MAX - 1023, 0, 0, EINVAL,
    "NBD_CMD_TRIM [18446744073709550592, +4096) is beyond the end" },
  { F_RW, OP_ZERO, 512, UINT64_C(1) << 63, 0, 0, EINVAL,
    "NBD_CMD_WRITE_ZEROES [9223372036854775808, +512) is beyond the end" },
  { F_RW_NOSPLIT, OP_TRIM, UINT64_MAX - 511, 512, 0, 0, ERANGE,
    "NBD_CMD_TRIM of 18446744073709551104 bytes: without extended headers "
    "NBD lengths are 32-bit (split is off)" },
  /* split on: a length above 32 bits is judged by the export's end */
  { F_RW, OP_TRIM, UINT64_MAX - 511, 512, 0, 0, EINVAL,
    "NBD_CMD_TRIM [512, +18446744073709551104) is beyond the end" },
  { F_RW, OP_PREAD, UINT64_C(1) << 32, 0, 0, 0, EINVAL,
    "NBD_CMD_READ [0, +4294967296) is beyond the end" },
  /* unaligned to the 512-byte minimum block size */
  { F_RW, OP_PREAD, 512, 100, 0, 0, EINVAL,
    "NBD_CMD_READ [100, +512) is not aligned to the server's minimum block "
    "size 512" },
  { F_RW, OP_PWRITE, 100, 0, 0, 0, EINVAL,
    "NBD_CMD_WRITE [0, +100) is not aligned" },
  { F_RW, OP_TRIM, 4096 + 1, 4096, 0, 0, EINVAL, "NBD_CMD_TRIM [4096, +4097) "
    "is not aligned" },
  { F_RW, OP_BS, 4096, 256, 0, 0, EINVAL, "NBD_CMD_BLOCK_STATUS [256, "
    "+4096) is not aligned" },
  /* with split off: above the maximum payload, and counts beyond 32 bits
   * (split on sends them as pieces: test_split.c) */
  { F_RW_NOSPLIT, OP_PREAD, BIG, 0, 0, 0, ERANGE,
    "NBD_CMD_READ of 131072 bytes exceeds the maximum payload of 65536 "
    "bytes (split is off)" },
  { F_RW_NOSPLIT, OP_PWRITE, 64 * KiB + 512, 0, 0, 0, ERANGE,
    "NBD_CMD_WRITE of 66048 bytes exceeds the maximum payload of 65536" },
  { F_RO_NOSPLIT, OP_PREAD, 32 * MiB + 512, 0, 0, 0, ERANGE,
    "NBD_CMD_READ of 33554944 bytes exceeds the maximum payload of "
    "33554432 bytes" },
  { F_RW_NOSPLIT, OP_PREAD, UINT64_C(1) << 32, 0, 0, 0, ERANGE,
    "NBD_CMD_READ of 4294967296 bytes: a read or write payload is 32-bit" },
  { F_RW_NOSPLIT, OP_ZERO, UINT64_C(1) << 32, 0, 0, 0, ERANGE,
    "NBD_CMD_WRITE_ZEROES of 4294967296 bytes: without extended headers "
    "NBD lengths are 32-bit" },
  /* block status is never split */
  { F_RW, OP_BS, UINT64_MAX, 0, 0, 0, ERANGE,
    "without extended headers NBD lengths are 32-bit" },
  /* flags not advertised by the server */
  { F_RW, OP_PWRITE, 512, 0, NBDAIO_CMD_FLAG_FUA, 0, EINVAL,
    "server does not support the FUA flag" },
  { F_RW, OP_TRIM, 512, 0, NBDAIO_CMD_FLAG_FUA, 0, EINVAL,
    "server does not support the FUA flag" },
  { F_RW, OP_PREAD_SR, 512, 0, NBDAIO_CMD_FLAG_DF, 0, EINVAL,
    "server does not support the DF flag" },
  { F_RO, OP_PREAD, 512, 0, NBDAIO_CMD_FLAG_DF, 0, EINVAL,
    "server does not support the DF flag" },
  { F_RW, OP_ZERO, 512, 0, NBDAIO_CMD_FLAG_FAST_ZERO, 0, EINVAL,
    "server does not support the FAST_ZERO flag" },
  /* flags a command never takes, and unknown bits */
  { F_RW, OP_PWRITE, 512, 0, NBDAIO_CMD_FLAG_DF, 0, EINVAL,
    "flags 0x4 are not valid for NBD_CMD_WRITE" },
  { F_RW, OP_PREAD, 512, 0, NBDAIO_CMD_FLAG_REQ_ONE, 0, EINVAL,
    "flags 0x8 are not valid for NBD_CMD_READ" },
  { F_RW, OP_PREAD, 512, 0, NBDAIO_CMD_FLAG_FUA, 0, EINVAL,
    "flags 0x1 are not valid for NBD_CMD_READ" },
  { F_RW, OP_FLUSH, 0, 0, NBDAIO_CMD_FLAG_NO_HOLE, 0, EINVAL,
    "flags 0x2 are not valid for NBD_CMD_FLUSH" },
  { F_RW, OP_FLUSH, 0, 0, NBDAIO_CMD_FLAG_FUA, 0, EINVAL,
    "flags 0x1 are not valid for NBD_CMD_FLUSH" },
  { F_RW, OP_TRIM, 512, 0, NBDAIO_CMD_FLAG_NO_HOLE, 0, EINVAL,
    "flags 0x2 are not valid for NBD_CMD_TRIM" },
  { F_RW, OP_BS, 512, 0, NBDAIO_CMD_FLAG_FUA, 0, EINVAL,
    "flags 0x1 are not valid for NBD_CMD_BLOCK_STATUS" },
  { F_RW, OP_PREAD, 512, 0, 1u << 7, 0, EINVAL,
    "flags 0x80 are not valid for NBD_CMD_READ" },
  { F_RW, OP_ZERO, 512, 0, 1u << 5, 0, EINVAL,
    "flags 0x20 are not valid for NBD_CMD_WRITE_ZEROES" },
  { F_RW, OP_PWRITE, 512, 0, 1u << 16, 0, EINVAL,
    "flags 0x10000 are not valid for NBD_CMD_WRITE" },
  { F_RW_LAX, OP_PWRITE, 512, 0, 1u << 16, 0, EINVAL,
    "flags 0x10000 do not fit in 16 bits" },
  /* commands the server does not offer */
  { F_RW, OP_CACHE, 512, 0, 0, 0, EINVAL,
    "server does not support NBD_CMD_CACHE" },
  { F_RO, OP_BS, 512, 0, 0, 0, EINVAL,
    "NBD_CMD_BLOCK_STATUS needs a negotiated meta context" },
  /* a read-only export */
  { F_RO, OP_PWRITE, 512, 0, 0, 0, EPERM,
    "NBD_CMD_WRITE refused: the export is read-only" },
  { F_RO, OP_PWRITE, 512, 0, NBDAIO_CMD_FLAG_FUA, 0, EPERM,
    "NBD_CMD_WRITE refused: the export is read-only" },
  { F_RO, OP_TRIM, 512, 0, 0, 0, EPERM,
    "NBD_CMD_TRIM refused: the export is read-only" },
  { F_RO, OP_ZERO, 512, 0, 0, 0, EPERM,
    "NBD_CMD_WRITE_ZEROES refused: the export is read-only" },
  /* NULL buffers */
  { F_RW, OP_PREAD, 512, 0, 0, 1, EFAULT, "NBD_CMD_READ with a NULL buffer" },
  { F_RW, OP_PREAD_SR, 512, 0, 0, 1, EFAULT,
    "NBD_CMD_READ with a NULL buffer" },
  { F_RW, OP_PWRITE, 512, 0, 0, 1, EFAULT,
    "NBD_CMD_WRITE with a NULL buffer" },
  { F_RW_LAX, OP_PWRITE, 512, 0, 0, 1, EFAULT,
    "NBD_CMD_WRITE with a NULL buffer" },
  /* handles that cannot take commands */
  { F_NULL, OP_PREAD, 512, 0, 0, 0, EINVAL, "handle is NULL" },
  { F_NULL, OP_PREAD_SR, 512, 0, 0, 0, EINVAL, "handle is NULL" },
  { F_NULL, OP_BS, 512, 0, 0, 0, EINVAL, "handle is NULL" },
  { F_NULL, OP_FLUSH, 0, 0, 0, 0, EINVAL, "handle is NULL" },
  { F_NEW, OP_PREAD, 512, 0, 0, 0, ENOTCONN,
    "handle is not connected (connect first)" },
  { F_NEW, OP_PWRITE, 512, 0, 0, 0, ENOTCONN, "handle is not connected" },
  { F_NEW, OP_PREAD_SR, 512, 0, 0, 0, ENOTCONN, "handle is not connected" },
  { F_NEW, OP_BS, 512, 0, 0, 0, ENOTCONN, "handle is not connected" },
  { F_NEW, OP_FLUSH, 0, 0, 0, 0, ENOTCONN, "handle is not connected" },
  { F_NEW, OP_PREAD, 0, 0, 1u << 7, 1, ENOTCONN, "handle is not connected" },
  { F_CLOSED, OP_PREAD, 512, 0, 0, 0, ENOTCONN, "handle is disconnected" },
  { F_CLOSED, OP_TRIM, 512, 0, 0, 0, ENOTCONN, "handle is disconnected" },
  { F_DEAD, OP_PREAD, 512, 0, 0, 0, ENOTCONN,
    "connection is dead: server closed the connection" },
  { F_DEAD, OP_CACHE, 512, 0, 0, 0, ENOTCONN, "connection is dead" },
  { F_FULL, OP_PREAD, 512, 0, 0, 0, EAGAIN,
    "too many commands: 1 in flight and 0 completed but not retired "
    "(limit 1, see nbdaio_set_max_in_flight)" },
  { F_FULL, OP_BS, 512, 0, 0, 0, EAGAIN, "too many commands" },
  { F_SHUTDOWN, OP_PREAD, 512, 0, 0, 0, ESHUTDOWN,
    "server is shutting down (it answered ESHUTDOWN): no new commands" },
  { F_SHUTDOWN, OP_FLUSH, 0, 0, 0, 0, ESHUTDOWN, "server is shutting down" },
};

/* One request of a row, with every callback its call takes. */
static void
run_req_case (struct nbdaio_handle *h, const struct req_case *rc)
{
  static uint8_t buf[BIG];
  uint8_t *b = rc->null_buf ? NULL : buf;
  struct cbc cb = { 0 };
  struct chunk_rec ch = { 0 };
  struct extent_rec ex = { 0 };
  nbdaio_completion_callback cc = cbc_completion (&cb);
  int64_t r = 0;
  char row[160];

  switch (rc->op) {
  case OP_PREAD:
    r = nbdaio_aio_pread (h, b, rc->count, rc->offset, cc, rc->flags);
    break;
  case OP_PREAD_SR:
    r = nbdaio_aio_pread_structured (h, b, rc->count, rc->offset,
                                     chunk_rec_callback (&ch), cc, rc->flags);
    break;
  case OP_PWRITE:
    r = nbdaio_aio_pwrite (h, b, rc->count, rc->offset, cc, rc->flags);
    break;
  case OP_TRIM:
    r = nbdaio_aio_trim (h, rc->count, rc->offset, cc, rc->flags);
    break;
  case OP_ZERO:
    r = nbdaio_aio_zero (h, rc->count, rc->offset, cc, rc->flags);
    break;
  case OP_CACHE:
    r = nbdaio_aio_cache (h, rc->count, rc->offset, cc, rc->flags);
    break;
  case OP_FLUSH:
    r = nbdaio_aio_flush (h, cc, rc->flags);
    break;
  case OP_BS:
    r = nbdaio_aio_block_status (h, rc->count, rc->offset,
                                 extent_rec_callback (&ex), cc, rc->flags);
    break;
  }
  snprintf (row, sizeof row, "%s on a %s handle: count %llu offset %llu "
            "flags 0x%x%s", op_names[rc->op], fixture_names[rc->fixture],
            (unsigned long long) rc->count, (unsigned long long) rc->offset,
            rc->flags, rc->null_buf ? " NULL buffer" : "");
  expect_error (row, r == -1 ? -1 : 0, rc->err, rc->msg);
  /* refused: no callback ran, each free function ran once */
  assert_int_equal (cb.calls, 0);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ch.calls, 0);
  assert_int_equal (ch.frees, rc->op == OP_PREAD_SR);
  assert_int_equal (ex.calls, 0);
  assert_int_equal (ex.frees, rc->op == OP_BS);
}

/* The first request gets ESHUTDOWN, then a memory disk (the client sends
 * NBD_CMD_DISC). */
static int
script_eshutdown (struct fs *s)
{
  struct fs_req r;

  if (fs_handshake_and_read (s, &r) == -1)
    return -1;
  free (r.data);
  if (fs_send_error_reply (s, &r, NBD_ESHUTDOWN) == -1)
    return -1;
  return fs_serve_memory (s, 1);
}

struct fixture_state {
  struct fs *s;
  struct nbdaio_handle *h;
  struct cbc pending;           /* F_FULL's queued command, F_SHUTDOWN's */
};

static void
fixture_open (struct fixture_state *f, enum fixture kind)
{
  struct fs_hs *hs;
  fs_script_fn script = script_serve;

  memset (f, 0, sizeof *f);
  if (kind == F_NULL)
    return;
  f->h = test_handle ();
  assert_non_null (f->h);
  if (kind == F_NEW)
    return;
  f->s = fs_new ();
  assert_non_null (f->s);
  hs = &f->s->hs;
  hs->size = SIZE;
  if (kind == F_RO || kind == F_RO_NOSPLIT) {
    hs->size = 40 * MiB;
    hs->sr = 0;
    hs->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY |
      NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
      NBD_FLAG_SEND_WRITE_ZEROES;
  }
  else {
    hs->bs_min = 512;
    hs->bs_pref = 4096;
    hs->bs_max = 64 * KiB;
    hs->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
      NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
  }
  if (kind == F_DEAD)
    script = script_handshake_only;
  if (kind == F_SHUTDOWN)
    script = script_eshutdown;
  if (kind == F_FULL)
    assert_int_equal (nbdaio_set_max_in_flight (f->h, 1), 0);
  if (kind == F_RW_NOSPLIT || kind == F_RO_NOSPLIT)
    assert_int_equal (nbdaio_set_option (f->h, "split", "off"), 0);
  assert_true (fs_start (f->s, script, NULL) >= 0);
  assert_int_equal (test_connect (f->h, f->s), 0);

  switch (kind) {
  case F_RW_LAX:
    assert_int_equal (nbdaio_set_strict (f->h, 0), 0);
    break;
  case F_CLOSED:
    assert_int_equal (nbdaio_shutdown (f->h), 0);
    break;
  case F_DEAD:
    assert_int_equal (drive_until_dead (f->h, 4000), 1);
    break;
  case F_FULL:
    assert_true (nbdaio_aio_flush (f->h, cbc_completion (&f->pending), 0)
                 >= 1);
    break;
  case F_SHUTDOWN:
    assert_true (nbdaio_aio_flush (f->h, cbc_completion (&f->pending), 0)
                 >= 1);
    assert_true (drive_one (f->h, &f->pending, 4000) >= 0);
    assert_int_equal (f->pending.error, ESHUTDOWN);
    break;
  default:
    break;
  }
}

static void
fixture_close (struct fixture_state *f, enum fixture kind)
{
  if (kind == F_RW || kind == F_RO || kind == F_RW_LAX ||
      kind == F_RW_NOSPLIT || kind == F_RO_NOSPLIT) {
    /* the refusals left the handle as it was */
    assert_int_equal (nbdaio_aio_in_flight (f->h), 0);
    assert_int_equal (nbdaio_flush (f->h, 0), 0);
  }
  if (kind == F_FULL) {
    /* the queued command still completes */
    assert_true (drive_one (f->h, &f->pending, 4000) >= 0);
    assert_int_equal (f->pending.calls, 1);
    assert_int_equal (f->pending.error, 0);
  }
  nbdaio_close (f->h);
  if (f->s)
    assert_int_equal (fs_join (f->s), 0);
  fs_free (f->s);
  if (kind == F_FULL || kind == F_SHUTDOWN)
    assert_int_equal (f->pending.frees, 1);
}

static void
test_bad_requests (void **state)
{
  (void) state;

  for (int k = 0; k < F_COUNT; k++) {
    struct fixture_state f;

    fixture_open (&f, (enum fixture) k);
    for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++)
      if (req_cases[i].fixture == (enum fixture) k)
        run_req_case (f.h, &req_cases[i]);
    fixture_close (&f, (enum fixture) k);
  }
}

/* Every fixture has rows, and every row a fixture. */
static void
test_tables_complete (void **state)
{
  int rows[F_COUNT] = { 0 };
  (void) state;

  for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
    assert_true (req_cases[i].fixture < F_COUNT);
    rows[req_cases[i].fixture]++;
  }
  for (int k = 0; k < F_COUNT; k++)
    assert_true (rows[k] > 0);
  assert_int_equal (sizeof fixture_names / sizeof fixture_names[0], F_COUNT);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_bad_uris),
    CTX_TEST (test_bad_settings),
    cmocka_unit_test (test_bad_requests),
    cmocka_unit_test (test_tables_complete),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
