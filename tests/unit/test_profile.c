/* test_profile.c - unit tests of connection profiles (engine/profile.c): the
 * lookup order of the profile file (explicit path, $NBDAIO_CONFIG,
 * $XDG_CONFIG_HOME or $HOME/.config, /etc), every key read back and
 * applied (getters, and connections to the scripted server listening on a
 * unix socket or on TCP), timeout as the connect bound, a unix socket
 * whose listen queue is full (tried again until the timeout), and every
 * error with its FILE:LINE text (a NUL byte too); only a regular file of
 * at most 1 MiB is read. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "test_common.h"

#define SYSTEM_FILE "/etc/nbdaio/profiles.ini"

/* Each test gets a fresh directory; the environment points the lookup
 * into it ($HOME = DIR/home, no $XDG_CONFIG_HOME, no $NBDAIO_CONFIG). */
static char dir[64];
static char buf[8192];          /* scratch for paths and messages */

static int
setup (void **state)
{
  (void) state;
  snprintf (dir, sizeof dir, "/tmp/nbdaio-profile.XXXXXX");
  if (!mkdtemp (dir))
    return -1;
  snprintf (buf, sizeof buf, "%s/home", dir);
  setenv ("HOME", buf, 1);
  unsetenv ("XDG_CONFIG_HOME");
  unsetenv ("NBDAIO_CONFIG");
  return 0;
}

static int
teardown (void **state)
{
  char cmd[128];

  (void) state;
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system (cmd) == 0 ? 0 : -1;
}

/* DIR/rel as a new string (directories on the way are created). */
static char *
path_in_dir (const char *rel)
{
  char *p;

  assert_true (asprintf (&p, "%s/%s", dir, rel) > 0);
  for (char *s = strchr (p + strlen (dir) + 1, '/'); s; s = strchr (s + 1, '/')) {
    *s = '\0';
    assert_true (mkdir (p, 0700) == 0 || errno == EEXIST);
    *s = '/';
  }
  return p;
}

/* Write len bytes of text (NUL bytes too) to path. */
static void
write_bytes (const char *path, const char *text, size_t len)
{
  FILE *fp = fopen (path, "w");

  assert_non_null (fp);
  assert_int_equal (fwrite (text, 1, len, fp), len);
  assert_int_equal (fclose (fp), 0);
}

static void
write_file (const char *path, const char *text)
{
  write_bytes (path, text, strlen (text));
}

/* Write len bytes of text to DIR/rel; returns the path (free it). */
static char *
profile_bytes (const char *rel, const char *text, size_t len)
{
  char *p = path_in_dir (rel);

  write_bytes (p, text, len);
  return p;
}

/* Write text to DIR/rel; returns the path (free it). */
static char *
profile_file (const char *rel, const char *text)
{
  return profile_bytes (rel, text, strlen (text));
}

/* Load name from path; the profile's socket value must be want. */
static void
expect_socket (const char *path, const char *name, const char *want)
{
  struct nbdaio_profile *p = nbdaio_profile_load (path, name);

  if (!p)
    fail_msg ("load failed: %s", nbdaio_get_error ());
  assert_string_equal (nbdaio_profile_get (p, "socket"), want);
  nbdaio_profile_free (p);
}

/* Loading must fail with errnum and a message containing want. */
static void
expect_load_error (const char *path, const char *name, int errnum,
                   const char *want)
{
  struct nbdaio_profile *p = nbdaio_profile_load (path, name);

  if (p) {
    nbdaio_profile_free (p);
    fail_msg ("loading [%s] from %s worked; expected '%s'", name,
              path ? path : "(lookup)", want);
  }
  if (!strstr (nbdaio_get_error (), want))
    fail_msg ("error '%s' lacks '%s'", nbdaio_get_error (), want);
  assert_int_equal (nbdaio_get_errno (), errnum);
}

/* ---------------------------------------------------------------------- */
/* lookup order */

static void
test_lookup_order (void **state)
{
  char *explicit = profile_file ("explicit.ini", "[p]\nsocket = /explicit\n");
  char *env = profile_file ("env.ini", "[p]\nsocket = /env\n");
  char *xdg = profile_file ("xdg/nbdaio/profiles.ini", "[p]\nsocket = /xdg\n");
  char *home = profile_file ("home/.config/nbdaio/profiles.ini",
                             "[p]\nsocket = /home\n");
  char *xdg_dir = path_in_dir ("xdg");
  struct nbdaio_profile *p;

  (void) state;
  setenv ("NBDAIO_CONFIG", env, 1);
  setenv ("XDG_CONFIG_HOME", xdg_dir, 1);

  /* an explicit path wins over everything */
  p = nbdaio_profile_load (explicit, "p");
  assert_non_null (p);
  assert_string_equal (nbdaio_profile_get_path (p), explicit);
  assert_string_equal (nbdaio_profile_get (p, "socket"), "/explicit");
  nbdaio_profile_free (p);
  /* then $NBDAIO_CONFIG */
  p = nbdaio_profile_load (NULL, "p");
  assert_non_null (p);
  assert_string_equal (nbdaio_profile_get_path (p), env);
  nbdaio_profile_free (p);
  /* then $XDG_CONFIG_HOME */
  unsetenv ("NBDAIO_CONFIG");
  expect_socket (NULL, "p", "/xdg");
  setenv ("NBDAIO_CONFIG", "", 1);          /* empty counts as unset */
  expect_socket (NULL, "p", "/xdg");
  /* then $HOME/.config (also when $XDG_CONFIG_HOME is not absolute) */
  setenv ("XDG_CONFIG_HOME", "relative/dir", 1);
  expect_socket (NULL, "p", "/home");
  unsetenv ("XDG_CONFIG_HOME");
  expect_socket (NULL, "p", "/home");

  /* a named file that does not exist is an error, never a fallback */
  snprintf (buf, sizeof buf, "profile file %s/none.ini does not exist", dir);
  free (explicit);
  explicit = path_in_dir ("none.ini");
  expect_load_error (explicit, "p", ENOENT, buf);
  setenv ("NBDAIO_CONFIG", explicit, 1);
  snprintf (buf, sizeof buf, "profile file %s/none.ini (from "
            "$NBDAIO_CONFIG) does not exist", dir);
  expect_load_error (NULL, "p", ENOENT, buf);
  unsetenv ("NBDAIO_CONFIG");
  /* a directory */
  expect_load_error (dir, "p", EISDIR, "is a directory");

  /* the files are not merged: $XDG_CONFIG_HOME's file is used alone (it
   * lacks [q], which the $HOME file has) */
  write_file (home, "[p]\nsocket = /home\n[q]\nsocket = /q\n");
  setenv ("XDG_CONFIG_HOME", xdg_dir, 1);
  snprintf (buf, sizeof buf, "%s: no profile [q] (profiles in it: p)", xdg);
  expect_load_error (NULL, "q", ENOENT, buf);

  /* nothing found: ENOENT naming the places searched (unless this
   * machine has a system file) */
  unlink (xdg);
  if (access (SYSTEM_FILE, F_OK) != 0) {
    snprintf (buf, sizeof buf, "no profile file found (looked for %s and "
              SYSTEM_FILE, xdg);
    expect_load_error (NULL, "p", ENOENT, buf);
    unsetenv ("XDG_CONFIG_HOME");
    unsetenv ("HOME");
    expect_load_error (NULL, "p", ENOENT,
                       "no profile file found (looked for " SYSTEM_FILE ";");
  }
  free (explicit);
  free (env);
  free (xdg);
  free (home);
  free (xdg_dir);
}

/* The system file, last in the lookup order.  Only where this test can
 * create it and nobody else has one. */
static void
test_lookup_system_file (void **state)
{
  int made_dir;
  struct nbdaio_profile *p;

  (void) state;
  if (geteuid () != 0 || access (SYSTEM_FILE, F_OK) == 0) {
    skip ();
    return;
  }
  made_dir = mkdir ("/etc/nbdaio", 0755) == 0;
  assert_true (made_dir || errno == EEXIST);
  write_file (SYSTEM_FILE, "[p]\nsocket = /etc\n");
  p = nbdaio_profile_load (NULL, "p");      /* $HOME has no file */
  unlink (SYSTEM_FILE);
  if (made_dir)
    rmdir ("/etc/nbdaio");
  assert_non_null (p);
  assert_string_equal (nbdaio_profile_get_path (p), SYSTEM_FILE);
  assert_string_equal (nbdaio_profile_get (p, "socket"), "/etc");
  nbdaio_profile_free (p);
}

/* ---------------------------------------------------------------------- */
/* every key */

static const struct { const char *key, *value; } all_keys[] = {
  { "socket", "/run/nbd.sock" },
  { "conns", "4" },
  { "timeout", "30s" },
  { "force-multi-conn", "yes" },
  { "export", "disk1" },
  { "tls", "require" },
  { "tls-certificates", "/etc/nbdaio/pki" },
  { "tls-psk-file", "/etc/nbdaio/keys.psk" },
  { "tls-username", "alice" },
  { "tls-hostname", "server.example" },
  { "tls-verify-peer", "off" },
  { "structured", "no" },
  { "meta-context", "none" },
  { "connect-timeout", "2s" },
  { "max-in-flight", "8" },
  { "strict", "bounds,align" },
  { "debug", "0" },
};

static void
test_every_key (void **state)
{
  char *text = buf;
  size_t used = 0;
  char *path;
  struct nbdaio_profile *p;
  struct nbdaio_handle *h;

  (void) state;
  used += snprintf (text, sizeof buf, "; every key\n[all]\n");
  for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++)
    used += snprintf (text + used, sizeof buf - used, "%s = %s\n",
                      all_keys[i].key, all_keys[i].value);
  used += snprintf (text + used, sizeof buf - used,
                    "[tcp]\nhost = nbd.example\nport = 10810\n"
                    "[by-uri]  # comment\n  uri = nbds://bob@nbd.example/x"
                    "   ; comment\n");
  path = profile_file ("all.ini", text);

  p = nbdaio_profile_load (path, "all");
  if (!p)
    fail_msg ("%s", nbdaio_get_error ());
  for (size_t i = 0; i < sizeof all_keys / sizeof all_keys[0]; i++)
    assert_string_equal (nbdaio_profile_get (p, all_keys[i].key),
                         all_keys[i].value);
  assert_null (nbdaio_profile_get (p, "host"));
  assert_null (nbdaio_profile_get (p, NULL));
  {
    uint64_t v = 7;
    assert_int_equal (nbdaio_profile_get_number (p, "timeout", &v), 1);
    assert_int_equal (v, 30000);
    /* conns and force-multi-conn are settings now (nbdaio_group_create) */
    assert_int_equal (nbdaio_profile_get_number (p, "conns", &v), -1);
    v = 7;
    assert_int_equal (nbdaio_profile_get_number (p, "port", &v), 0);
    assert_int_equal (v, 7);
    assert_int_equal (nbdaio_profile_get_number (p, "socket", &v), -1);
    assert_int_equal (nbdaio_get_errno (), EINVAL);
    assert_int_equal (nbdaio_profile_get_number (p, "export", &v), -1);
  }

  h = nbdaio_create ();
  assert_non_null (h);
  assert_int_equal (nbdaio_profile_apply (p, h), 0);
  assert_int_equal (nbdaio_get_tls (h), NBDAIO_TLS_REQUIRE);
  assert_int_equal (nbdaio_get_strict (h),
                    NBDAIO_STRICT_BOUNDS | NBDAIO_STRICT_ALIGN);
  nbdaio_close (h);
  nbdaio_profile_free (p);

  p = nbdaio_profile_load (path, "tcp");
  assert_non_null (p);
  assert_string_equal (nbdaio_profile_get (p, "host"), "nbd.example");
  assert_string_equal (nbdaio_profile_get (p, "port"), "10810");
  assert_null (nbdaio_profile_get (p, "socket"));
  nbdaio_profile_free (p);

  /* indentation and comments are not part of keys or values */
  p = nbdaio_profile_load (path, "by-uri");
  assert_non_null (p);
  assert_string_equal (nbdaio_profile_get (p, "uri"),
                       "nbds://bob@nbd.example/x");
  nbdaio_profile_free (p);
  free (path);
}

/* ---------------------------------------------------------------------- */
/* connecting: the scripted server behind a listening socket */

static int
listen_unix_backlog (const char *path, int backlog)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  assert_true (fd >= 0);
  assert_true (strlen (path) < sizeof sun.sun_path);
  strcpy (sun.sun_path, path);
  assert_int_equal (bind (fd, (struct sockaddr *) &sun, sizeof sun), 0);
  assert_int_equal (listen (fd, backlog), 0);
  return fd;
}

static int
listen_unix (const char *path)
{
  return listen_unix_backlog (path, 4);
}

static int
listen_tcp (int *port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  socklen_t len = sizeof sin;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  assert_true (fd >= 0);
  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  assert_int_equal (bind (fd, (struct sockaddr *) &sin, sizeof sin), 0);
  assert_int_equal (listen (fd, 4), 0);
  assert_int_equal (getsockname (fd, (struct sockaddr *) &sin, &len), 0);
  *port = ntohs (sin.sin_port);
  return fd;
}

/* The script: take one connection from the listening socket in s->arg
 * (instead of the socketpair), then the default handshake (without DF,
 * which would be a violation when the client turned structured replies
 * off). */
static int
script_accept (struct fs *s)
{
  struct pollfd p = { .fd = *(int *) s->arg, .events = POLLIN };
  int fd;

  if (poll (&p, 1, FS_TIMEOUT_MS) != 1)
    return fs_fail (s, "no connection to the listening socket");
  if ((fd = accept4 (p.fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
    return fs_fail (s, "accept: %s", strerror (errno));
  close (s->fd);
  s->fd = fd;
  s->hs.tflags &= ~NBD_FLAG_SEND_DF;
  return fs_default_handshake (s) == 0 ? 0 : -1;
}

/* The scripted server for the next connection to the listening socket
 * *lfd, and a new handle in *h. */
static struct fs *
serve_next (int *lfd, struct nbdaio_handle **h)
{
  struct fs *s = fs_new ();

  assert_non_null (s);
  assert_non_null (*h = test_handle ());
  assert_true (fs_start (s, script_accept, lfd) >= 0);
  return s;
}

/* Connect a new handle with profile name of the file holding text and
 * check what the server saw: the export name and whether structured
 * replies were negotiated.  lfd is the listening socket. */
static void
connect_and_check (int lfd, const char *text, const char *name,
                   const char *want_export, int want_sr)
{
  char *path = profile_file ("connect.ini", text);
  struct nbdaio_handle *h;
  struct fs *s = serve_next (&lfd, &h);

  if (nbdaio_connect_profile (h, path, name) == -1)
    fail_msg ("connect failed: %s", nbdaio_get_error ());
  assert_int_equal (nbdaio_get_structured_replies_negotiated (h), want_sr);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  assert_string_equal (s->export_name, want_export);
  assert_int_equal (s->sr_negotiated, want_sr);
  fs_free (s);
  free (path);
}

static void
test_connect_socket_tcp_uri (void **state)
{
  char *sock = path_in_dir ("nbd.sock");
  int ufd = listen_unix (sock), port, tfd = listen_tcp (&port);

  (void) state;
  snprintf (buf, sizeof buf, "[unix]\nsocket = %s\nexport = disk1\n"
            "structured = no\ntimeout = 5s\n", sock);
  connect_and_check (ufd, buf, "unix", "disk1", 0);

  snprintf (buf, sizeof buf, "[tcp]\nhost = 127.0.0.1\nport = %d\n"
            "export = tcpdisk\n", port);
  connect_and_check (tfd, buf, "tcp", "tcpdisk", 1);

  /* the profile's settings apply first: a URI without an export asks for
   * the profile's (a URI naming another one is refused, see
   * nbdaio_connect_uri) */
  snprintf (buf, sizeof buf, "[u]\nuri = nbd+unix:///?socket=%s\n"
            "export = from-profile\nstructured = no\n", sock);
  connect_and_check (ufd, buf, "u", "from-profile", 0);
  close (ufd);
  close (tfd);
  free (sock);
}

/* max-in-flight from the profile limits the connected handle. */
static void
test_connect_max_in_flight (void **state)
{
  char *sock = path_in_dir ("nbd.sock");
  int lfd = listen_unix (sock);
  struct nbdaio_handle *h;
  struct fs *s = serve_next (&lfd, &h);
  struct nbdaio_profile *p;
  char *path;
  static char data[512];

  (void) state;
  snprintf (buf, sizeof buf, "[p]\nsocket = %s\nmax-in-flight = 1\n", sock);
  path = profile_file ("p.ini", buf);
  p = nbdaio_profile_load (path, "p");
  assert_non_null (p);
  assert_int_equal (nbdaio_profile_apply (p, h), 0);
  assert_int_equal (nbdaio_profile_connect (p, h), 0);
  assert_true (nbdaio_aio_pread (h, data, 512, 0, NBDAIO_NULL_COMPLETION,
                                 0) >= 1);
  assert_int_equal (nbdaio_aio_pread (h, data, 512, 0,
                                      NBDAIO_NULL_COMPLETION, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EAGAIN);

  /* settings cannot be applied to a connected handle */
  assert_int_equal (nbdaio_profile_apply (p, h), -1);
  snprintf (buf, sizeof buf, "%s:3: [p]: ", path);
  assert_ptr_equal (strstr (nbdaio_get_error (), buf), nbdaio_get_error ());
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  nbdaio_close (h);
  fs_free (s);                  /* the script may fail: the read is cut */

  /* a connect error names the file and the profile */
  h = test_handle ();
  unlink (sock);
  assert_int_equal (nbdaio_profile_connect (p, h), -1);
  snprintf (buf, sizeof buf, "%s: [p]: ", path);
  assert_ptr_equal (strstr (nbdaio_get_error (), buf), nbdaio_get_error ());
  nbdaio_close (h);

  assert_int_equal (nbdaio_profile_apply (NULL, h), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_int_equal (nbdaio_connect_profile (NULL, path, "p"), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  nbdaio_profile_free (p);
  nbdaio_profile_free (NULL);
  assert_null (nbdaio_profile_get_path (NULL));
  close (lfd);
  free (sock);
  free (path);
}

/* A server that never answers: the connect ends after the profile's
 * timeout, or after connect-timeout when both are given. */
static void
test_timeout_bounds_connect (void **state)
{
  static const char *const bounds[] = {
    "timeout = 300ms\n",
    "timeout = 10m\nconnect-timeout = 300ms\n",
  };
  char *sock = path_in_dir ("silent.sock");
  int lfd = listen_unix (sock);       /* the kernel accepts, nobody talks */

  (void) state;
  for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
    char *path;
    struct nbdaio_handle *h = nbdaio_create ();   /* default: 30 s */
    int64_t t0 = fs_now_ms (), took;

    snprintf (buf, sizeof buf, "[slow]\nsocket = %s\n%s", sock, bounds[i]);
    path = profile_file ("slow.ini", buf);
    assert_int_equal (nbdaio_connect_profile (h, path, "slow"), -1);
    took = fs_now_ms () - t0;
    assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
    assert_true (took >= 250 && took < 5000);
    nbdaio_close (h);
    free (path);
  }
  close (lfd);
  free (sock);
}

/* Connect non-blocking to the unix socket path until its listen queue is
 * full (EAGAIN); the connections go to fds[], their number is returned. */
static int
fill_listen_queue (const char *path, int *fds, int max)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int n;

  strcpy (sun.sun_path, path);
  for (n = 0; n < max; n++) {
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true (fd >= 0);
    if (connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      assert_int_equal (errno, EAGAIN);
      close (fd);
      break;
    }
    fds[n] = fd;
  }
  return n;
}

/* A server that starts accepting late: lfd first (script_accept reads it
 * through s->arg), and how many connections wait before the client's. */
struct late_accept {
  int lfd;
  int queued;
};

/* After 200 ms, take the queued connections off the listening socket,
 * then serve the next one as script_accept does. */
static int
script_accept_late (struct fs *s)
{
  struct late_accept *la = s->arg;

  usleep (200 * 1000);
  for (int i = 0; i < la->queued; i++) {
    int fd = accept4 (la->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd == -1)
      return fs_fail (s, "accept: %s", strerror (errno));
    close (fd);
  }
  return script_accept (s);
}

/* A unix socket whose listen queue is full refuses connect with EAGAIN
 * at once: the client tries again until the connect timeout and then
 * says so (it once went on over the unconnected socket); a server that
 * starts accepting in time gets the connection. */
static void
test_listen_queue_full (void **state)
{
  char *sock = path_in_dir ("full.sock");
  int fds[64], lfd = listen_unix_backlog (sock, 0);
  struct late_accept la = { lfd, fill_listen_queue (sock, fds, 64) };
  struct nbdaio_handle *h = nbdaio_create ();
  int64_t t0 = fs_now_ms (), took;
  struct fs *s;

  (void) state;
  assert_true (la.queued >= 1 && la.queued < 64);
  assert_int_equal (nbdaio_set_connect_timeout (h, 300), 0);
  assert_int_equal (nbdaio_connect_unix (h, sock), -1);
  took = fs_now_ms () - t0;
  snprintf (buf, sizeof buf, "connecting to %s: timed out after 300 ms: "
            "the server's listen queue stayed full (the server is not "
            "accepting connections)", sock);
  if (!contains (nbdaio_get_error (), buf))
    fail_msg ("\"%s\" lacks \"%s\"", nbdaio_get_error (), buf);
  assert_int_equal (nbdaio_get_errno (), ETIMEDOUT);
  assert_true (took >= 250 && took < 5000);
  nbdaio_close (h);

  s = fs_new ();
  assert_non_null (s);
  assert_non_null (h = test_handle ());           /* 5 s to connect */
  assert_true (fs_start (s, script_accept_late, &la) >= 0);
  t0 = fs_now_ms ();
  if (nbdaio_connect_unix (h, sock) == -1)
    fail_msg ("connect failed: %s", nbdaio_get_error ());
  assert_true (fs_now_ms () - t0 >= 150);
  nbdaio_close (h);
  assert_int_equal (fs_join (s), 0);
  fs_free (s);
  for (int i = 0; i < la.queued; i++)
    close (fds[i]);
  close (lfd);
  free (sock);
}

/* tls = require reaches the connection: the plaintext scripted server
 * does not offer TLS, so connecting fails. */
static void
test_tls_require_applied (void **state)
{
  char *sock = path_in_dir ("nbd.sock");
  int lfd = listen_unix (sock);
  struct nbdaio_handle *h;
  struct fs *s = serve_next (&lfd, &h);
  char *path;

  (void) state;
  snprintf (buf, sizeof buf, "[secure]\nsocket = %s\ntls = require\n", sock);
  path = profile_file ("tls.ini", buf);
  assert_int_equal (nbdaio_connect_profile (h, path, "secure"), -1);
  assert_true (contains (nbdaio_get_error (), "TLS"));
  nbdaio_close (h);
  fs_free (s);                  /* the script fails: the client gave up */
  close (lfd);
  free (sock);
  free (path);
}

/* ---------------------------------------------------------------------- */
/* errors */

/* Each file is loaded for profile [a]; the message is the expected text
 * after "FILE" (so ":LINE: ..." or ": ..."). */
static const struct {
  const char *text;
  int errnum;
  const char *msg;
} bad_files[] = {
  { "[a]\nsocket = /s\nbogus = 1\n", EINVAL,
    ":3: unknown key 'bogus' in [a] (known: uri, socket, host, port, "
    "timeout, and every setting of nbdaio_set_option" },
  { "[a]\nsocket = /s\nSocket = /t\n", EINVAL, ":3: unknown key 'Socket'" },
  { "[a]\nsocket = /s\ntls = maybe\n", EINVAL,
    ":3: tls: bad value 'maybe' (expected off, allow or require)" },
  { "[a]\nhost = h\nport = 0\n", EINVAL,
    ":3: port: 0 is out of range (1 to 65535)" },
  { "[a]\nhost = h\nport = 65536\n", EINVAL,
    ":3: port: 65536 is out of range (1 to 65535)" },
  { "[a]\nhost = h\nport = nbd\n", EINVAL, ":3: port: bad value 'nbd'" },
  { "[a]\nsocket = /s\nconns = 65\n", EINVAL,
    ":3: conns: 65 is out of range (1 to 64)" },
  { "[a]\nsocket = /s\nconns = 0\n", EINVAL, ":3: conns: 0 is out of range" },
  { "[a]\nsocket = /s\ntimeout = 5 years\n", EINVAL,
    ":3: timeout: bad value '5 years'" },
  { "[a]\nsocket = /s\ntimeout = 99999999m\n", EINVAL,
    ":3: timeout: '99999999m' is too long" },
  { "[a]\nsocket = /s\nforce-multi-conn = perhaps\n", EINVAL,
    ":3: force-multi-conn: bad value 'perhaps'" },
  { "[a]\nuri = nbd.example\n", EINVAL,
    ":2: URI 'nbd.example' has no scheme" },
  { "[a]\nsocket = /s\nmax-in-flight = 0\n", EINVAL,
    ":3: max-in-flight: 0 is out of range" },
  { "[a]\nsocket = /s\nstrict = everything\n", EINVAL,
    ":3: strict: bad value 'everything'" },
  { "[a]\nsocket = /s\nconnect-timeout = soon\n", EINVAL,
    ":3: connect-timeout: bad value 'soon'" },
  { "[a]\nsocket = /s\ntls-verify-peer = 2\n", EINVAL,
    ":3: tls-verify-peer: bad value '2'" },
  { "[a]\nsocket = /s\nstructured = y\n", EINVAL,
    ":3: structured: bad value 'y'" },
  { "[a]\nsocket = /s\ndebug = loud\n", EINVAL, ":3: debug: bad value" },
  { "[a]\nsocket = /s\nexport =\n", EINVAL, ":3: export: empty value" },
  { "; header\nsocket = /s\n[a]\n", EINVAL,
    ":2: key 'socket' outside any [section]" },
  { "[a]\nhost = h\nport = 1\nport = 2\n", EINVAL,
    ":4: 'port' given twice in [a] (first at line 3)" },
  { "[a]\nsocket = /s\n\n[a]\n", EINVAL,
    ":4: section [a] given twice (first at line 1)" },
  { "[a]\nsocket = /s\njust words\n", EINVAL, ":3: syntax error" },
  { "[a]\nsocket = /s\n[b\nsocket = /t\n", EINVAL, ":3: syntax error" },
  { "[a]\nsocket = /s\n    continued\n", EINVAL, ":3: syntax error" },
  { "[]\nsocket = /s\n", EINVAL,
    ":1: a section name must be 1 to 49 characters" },
  /* the first error in the file is the one reported */
  { "[a]\nnonsense\nbogus = 1\n", EINVAL, ":2: syntax error" },
  { "[a]\nbogus = 1\nnonsense\n", EINVAL, ":2: unknown key 'bogus'" },
  /* the whole file is checked, not only [a] */
  { "[a]\nsocket = /s\n[b]\nsocket = /t\nretries = 3\n", EINVAL,
    ":5: unknown key 'retries' in [b]" },
  /* how the server is named */
  { "[a]\nuri = nbd://h/\nsocket = /s\n", EINVAL,
    ":3: [a]: 'socket' cannot be combined with 'uri' (line 2)" },
  { "[a]\nhost = h\nuri = nbd://h/\n", EINVAL,
    ":3: [a]: 'uri' cannot be combined with 'host' (line 2)" },
  { "[a]\nuri = nbd://h/\nport = 1\n", EINVAL,
    ":3: [a]: 'port' cannot be combined with 'uri' (line 2)" },
  { "[a]\nsocket = /s\nhost = h\n", EINVAL,
    ":3: [a]: 'host' cannot be combined with 'socket' (line 2)" },
  { "[a]\nport = 1\nsocket = /s\n", EINVAL,
    ":3: [a]: 'socket' cannot be combined with 'port' (line 2)" },
  { "[a]\nexport = x\n", EINVAL,
    ":1: [a]: no server given: set uri, socket or host" },
  { "[a]\nsocket = /s\n[b]\n", EINVAL,
    ":3: [b]: no server given: set uri, socket or host" },
  { "[a]\nport = 1\n", EINVAL, ":1: [a]: no server given" },
  /* the profile is not in the file */
  { "[b]\nsocket = /s\n[c]\nsocket = /t\n", ENOENT,
    ": no profile [a] (profiles in it: b, c)" },
  { "; nothing\n", ENOENT, ": no profile [a] (it has no profiles)" },
};

static void
test_errors (void **state)
{
  (void) state;
  for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
    char *path = profile_file ("bad.ini", bad_files[i].text);
    char want[512];

    snprintf (want, sizeof want, "%s%s", path, bad_files[i].msg);
    expect_load_error (path, "a", bad_files[i].errnum, want);
    /* the message starts with the file name */
    assert_int_equal (strncmp (nbdaio_get_error (), path, strlen (path)), 0);
    free (path);
  }
}

/* Lines longer than inih's buffer are refused, not split; inline
 * comments need a blank before ';'. */
static void
test_long_line_and_comments (void **state)
{
  char *path;
  struct nbdaio_profile *p;
  char value[300];

  (void) state;
  memset (value, 'x', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  snprintf (buf, sizeof buf, "[a]\nsocket = /s\nexport = %s\n", value);
  path = profile_file ("long.ini", buf);
  snprintf (buf, sizeof buf, "%s:3: line is longer than 199 characters",
            path);
  expect_load_error (path, "a", EINVAL, buf);

  /* 199 characters and a newline are fine */
  value[199 - strlen ("export = ")] = '\0';
  snprintf (buf, sizeof buf, "[a]\nsocket = /s;x ; comment\nexport = %s\n",
            value);
  write_file (path, buf);
  p = nbdaio_profile_load (path, "a");
  if (!p)
    fail_msg ("%s", nbdaio_get_error ());
  assert_string_equal (nbdaio_profile_get (p, "export"), value);
  assert_string_equal (nbdaio_profile_get (p, "socket"), "/s;x");
  nbdaio_profile_free (p);

  expect_load_error (path, NULL, EINVAL, "profile name is NULL");
  free (path);
}

/* A NUL byte would cut a line short unseen: an error at FILE:LINE. */
static void
test_nul_byte (void **state)
{
  static const struct {
    const char text[40];
    size_t len;
    const char *msg;
  } cases[] = {
    { "[a]\nsocket = /s\nexport = ab\0cd\n", 30,
      ":3: NUL byte at column 12: a profile file is text" },
    { "[a]\nsocket = /s\n\0bogus = 1\n", 27,
      ":3: NUL byte at column 1" },
    { "[a\0b]\nsocket = /s\n", 18, ":1: NUL byte at column 3" },
    { "[a]\nsocket = /s\0", 16, ":2: NUL byte at column 12" },
  };
  (void) state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *path = profile_bytes ("nul.ini", cases[i].text, cases[i].len);

    snprintf (buf, sizeof buf, "%s%s", path, cases[i].msg);
    expect_load_error (path, "a", EINVAL, buf);
    free (path);
  }
}

/* Only a regular file of at most 1 MiB is read: a FIFO, a device or a
 * huge file is refused at once (it could block or never end), saying what
 * the path is. */
static void
test_not_a_profile_file (void **state)
{
  const size_t max = 1024 * 1024;
  char *big = malloc (max + 1), *path, *fifo = path_in_dir ("fifo.ini");
  struct nbdaio_profile *p;

  (void) state;
  assert_non_null (big);
  memset (big, '\n', max + 1);
  memcpy (big, "[a]\nsocket = /s\n", 16);
  path = profile_bytes ("big.ini", big, max);
  p = nbdaio_profile_load (path, "a");
  if (!p)
    fail_msg ("a file of exactly 1 MiB: %s", nbdaio_get_error ());
  nbdaio_profile_free (p);
  free (path);
  path = profile_bytes ("big.ini", big, max + 1);
  snprintf (buf, sizeof buf, "profile file %s is larger than 1 MiB, the "
            "most read for a profile file (is it the right file?)", path);
  expect_load_error (path, "a", EFBIG, buf);
  free (path);
  free (big);

  expect_load_error (dir, "a", EISDIR, "is a directory, not a file");
  assert_int_equal (mkfifo (fifo, 0600), 0);
  snprintf (buf, sizeof buf, "profile file %s is a FIFO (named pipe), not "
            "a regular file (only regular files are read: a pipe or a "
            "device may block or never end)", fifo);
  expect_load_error (fifo, "a", EINVAL, buf);
  expect_load_error ("/dev/zero", "a", EINVAL, "profile file /dev/zero is a "
                     "character device, not a regular file");
  setenv ("NBDAIO_CONFIG", "/dev/zero", 1);
  expect_load_error (NULL, "a", EINVAL, "profile file /dev/zero (from "
                     "$NBDAIO_CONFIG) is a character device");
  /* a regular file that reports size 0 is still read to its end */
  expect_load_error ("/proc/self/status", "a", EINVAL,
                     "/proc/self/status:1: key 'Name' outside any [section]");
  free (fifo);
}

int
main (void)
{
#define T(f) cmocka_unit_test_setup_teardown (f, setup, teardown)
  const struct CMUnitTest tests[] = {
    T (test_lookup_order),
    T (test_lookup_system_file),
    T (test_every_key),
    T (test_connect_socket_tcp_uri),
    T (test_connect_max_in_flight),
    T (test_timeout_bounds_connect),
    T (test_listen_queue_full),
    T (test_tls_require_applied),
    T (test_errors),
    T (test_long_line_and_comments),
    T (test_nul_byte),
    T (test_not_a_profile_file),
  };
#undef T
  return cmocka_run_group_tests (tests, NULL, NULL);
}
