/* tls.c - TLS for the NBD connection, with gnutls.
 *
 * Credentials: x509 (ca-cert.pem, optional client-cert.pem + client-key.pem
 * from a directory laid out as nbdkit and qemu expect, or the system trust
 * store) or PSK (a psktool key file).  The server certificate is verified
 * against the host name during the handshake.
 *
 * Batching: writev packs the caller's iovecs into records of up to the
 * maximum record size (a batch of small requests is one record, one
 * system call); gnutls pulls from a 64 KiB read-ahead buffer, so many
 * records arrive in one recv; readv returns short only once gnutls, the
 * buffer and the socket are all drained, so the engine's "short read means
 * empty" rule holds and no byte is ever left behind a poll. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "debug.h"
#include "error.h"
#include "localfile.h"
#include "tls.h"

#define TLS_RECORD_MAX 16384        /* plaintext bytes per record */
#define TLS_READ_AHEAD (64 * 1024)  /* raw bytes read from the socket at once */
#define PSK_PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"

struct tls_session {
  gnutls_session_t s;
  gnutls_certificate_credentials_t x509;
  gnutls_psk_client_credentials_t psk;
  const char *psk_user;             /* as configured (NULL: login name) */
  const char *verify_host;          /* name the certificate must carry */
  size_t send_pending;              /* bytes of a record cut short by EAGAIN */
  bool bye_sent;
  bool client_cert;                 /* x509: we sent a certificate */
  bool got_record;                  /* any data received since the handshake */
  uint8_t stage[TLS_RECORD_MAX];    /* small iovecs packed into one record */
  /* raw bytes read ahead from the socket: gnutls pulls a record's header
   * and body separately, so one recv here serves many records */
  int fd;
  size_t rpos, rlen;
  uint64_t pulled;                  /* bytes gnutls took from raw, ever */
  uint8_t raw[TLS_READ_AHEAD];
};

void
tls_config_free (struct tls_config *c)
{
  free (c->certificates);
  free (c->psk_file);
  free (c->username);
  free (c->hostname);
  memset (c, 0, sizeof *c);
}

void
tls_session_free (struct tls_session *ts)
{
  if (!ts)
    return;
  if (ts->s)
    gnutls_deinit (ts->s);
  if (ts->x509)
    gnutls_certificate_free_credentials (ts->x509);
  if (ts->psk)
    gnutls_psk_free_client_credentials (ts->psk);
  free (ts);
}

void
tls_bye (struct transport *t)
{
  if (t->tls && t->fd >= 0 && !t->tls->bye_sent) {
    t->tls->bye_sent = true;
    (void) gnutls_bye (t->tls->s, GNUTLS_SHUT_WR);  /* non-blocking */
  }
}

void
tls_end (struct transport *t)
{
  if (!t->tls)
    return;
  tls_bye (t);
  tls_session_free (t->tls);
  t->tls = NULL;
}

/* ---- the socket under gnutls ------------------------------------------ */

/* gnutls' pull: serve from the read-ahead buffer, refilled with one recv of
 * whatever the socket holds.  EAGAIN only when both are empty. */
static ssize_t
raw_pull (gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  struct tls_session *ts = ptr;
  size_t n;

  if (ts->rpos == ts->rlen) {
    ssize_t r = recv (ts->fd, ts->raw, sizeof ts->raw, 0);
    if (r <= 0) {
      if (r < 0)
        gnutls_transport_set_errno (ts->s, errno);
      return r;
    }
    ts->rpos = 0;
    ts->rlen = (size_t) r;
  }
  n = ts->rlen - ts->rpos < len ? ts->rlen - ts->rpos : len;
  memcpy (data, ts->raw + ts->rpos, n);
  ts->rpos += n;
  ts->pulled += n;
  return (ssize_t) n;
}

/* gnutls asks whether data can be pulled within ms. */
static int
raw_pull_timeout (gnutls_transport_ptr_t ptr, unsigned ms)
{
  struct tls_session *ts = ptr;
  struct pollfd pfd = { .fd = ts->fd, .events = POLLIN };

  if (ts->rpos < ts->rlen)
    return 1;
  return poll (&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int) ms);
}

/* gnutls' push: the records it has queued, in one sendmsg (MSG_NOSIGNAL:
 * a dead server is an error, not SIGPIPE). */
static ssize_t
raw_push (gnutls_transport_ptr_t ptr, const giovec_t *iov, int n)
{
  struct tls_session *ts = ptr;
  struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = n };
  ssize_t r = sendmsg (ts->fd, &msg, MSG_NOSIGNAL);

  if (r < 0)
    gnutls_transport_set_errno (ts->s, errno);
  return r;
}

/* ---- record I/O ------------------------------------------------------ */

/* A gnutls error during transmission: errno for the engine, text for its
 * message.  A TLS 1.3 server checks the client certificate after the
 * handshake has completed on our side, so a missing one shows up as the
 * first read failing: say so. */
static ssize_t
record_error (struct transport *t, ssize_t r)
{
  if (!t->tls->got_record && t->tls->x509 && !t->tls->client_cert)
    t->error = "the server ended the TLS session right after the handshake: "
               "does it require a client certificate? (client-cert.pem and "
               "client-key.pem in the tls-certificates directory)";
  else
    t->error = gnutls_strerror ((int) r);
  errno = r == GNUTLS_E_PUSH_ERROR ? EPIPE : ECONNABORTED;
  return -1;
}

static ssize_t
tls_readv (struct transport *t, const struct iovec *iov, int n)
{
  gnutls_session_t s = t->tls->s;
  ssize_t total = 0;

  for (int i = 0; i < n; i++) {
    size_t off = 0;

    while (off < iov[i].iov_len) {
      uint64_t pulled = t->tls->pulled;
      ssize_t r = gnutls_record_recv (s, (char *) iov[i].iov_base + off,
                                      iov[i].iov_len - off);
      if (r > 0) {
        off += (size_t) r;
        total += r;
        t->tls->got_record = true;
      }
      else if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
        /* EOF, with or without close_notify; right after the handshake
         * it is worth the client-certificate hint */
        if (!total && !t->tls->got_record && t->tls->x509 &&
            !t->tls->client_cert)
          return record_error (t, r);
        return total;
      }
      else if (r == GNUTLS_E_AGAIN) {
        /* gnutls stops after a post-handshake message (a TLS 1.3
         * NewSessionTicket, a KeyUpdate) with the records behind it
         * still in the read-ahead buffer, where poll cannot see them: go
         * on while that call consumed some of it (else gnutls waits for
         * something else, such as a write: back to poll) */
        if (t->tls->rpos < t->tls->rlen && t->tls->pulled != pulled)
          continue;
        if (total)
          return total;
        errno = EAGAIN;
        return -1;
      }
      else if (r != GNUTLS_E_INTERRUPTED)
        return total ? total : record_error (t, r);
    }
  }
  return total;
}

/* The next at most TLS_RECORD_MAX bytes after skipping `skip` bytes of iov:
 * pointed to in place when one iovec holds them all, else packed into the
 * stage buffer.  Returns the length (0 when iov is exhausted). */
static size_t
next_record (struct tls_session *ts, const struct iovec *iov, int n,
             size_t skip, const void **data)
{
  size_t len = 0;
  int i = 0;

  while (i < n && skip >= iov[i].iov_len)
    skip -= iov[i++].iov_len;
  if (i == n)
    return 0;
  if (iov[i].iov_len - skip >= TLS_RECORD_MAX || i == n - 1) {
    *data = (const char *) iov[i].iov_base + skip;
    len = iov[i].iov_len - skip;
    return len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
  }
  for (; i < n && len < TLS_RECORD_MAX; i++, skip = 0) {
    size_t k = iov[i].iov_len - skip;
    if (k > TLS_RECORD_MAX - len)
      k = TLS_RECORD_MAX - len;
    memcpy (ts->stage + len, (const char *) iov[i].iov_base + skip, k);
    len += k;
  }
  *data = ts->stage;
  return len;
}

static ssize_t
tls_writev (struct transport *t, const struct iovec *iov, int n)
{
  struct tls_session *ts = t->tls;
  ssize_t total = 0;

  for (;;) {
    const void *data = NULL;
    size_t len;
    ssize_t r;

    if (ts->send_pending) {
      /* gnutls holds the encrypted record: flush it; the caller passed the
       * same bytes again */
      len = ts->send_pending;
      r = gnutls_record_send (ts->s, NULL, 0);
    }
    else {
      len = next_record (ts, iov, n, (size_t) total, &data);
      if (len == 0)
        return total;
      r = gnutls_record_send (ts->s, data, len);
    }
    if (r >= 0) {
      ts->send_pending = 0;
      total += r;
    }
    else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
      ts->send_pending = len;
      if (total)
        return total;
      errno = EAGAIN;
      return -1;
    }
    else
      return total ? total : record_error (t, r);
  }
}

/* ---- credentials ----------------------------------------------------- */

/* The largest certificate file read (a CA bundle), and the largest key
 * file (a PSK file, a private key): far beyond real ones, and a bound for
 * a path that names the wrong file. */
#define TLS_CERT_FILE_MAX (1024 * 1024)
#define TLS_KEY_FILE_MAX (64 * 1024)

static const struct localfile ca_file = {
  .what = "TLS CA certificate", .max = TLS_CERT_FILE_MAX,
};
static const struct localfile cert_file = {
  .what = "TLS client certificate", .max = TLS_CERT_FILE_MAX,
};
static const struct localfile key_file = {
  .what = "TLS client key", .max = TLS_KEY_FILE_MAX, .secret = true,
};
static const struct localfile psk_file = {
  .what = "TLS PSK file", .max = TLS_KEY_FILE_MAX, .secret = true,
};

static bool
file_exists (const char *path)
{
  return access (path, F_OK) == 0;
}

/* A file read whole, as gnutls takes it from memory. */
struct loaded {
  gnutls_datum_t d;
  bool secret;
};

static int
load_file (const char *path, const struct localfile *how, struct loaded *l)
{
  char *data;
  size_t len;

  l->d.data = NULL;
  l->d.size = 0;
  l->secret = how->secret;
  if (localfile_read (path, how, &data, &len) == -1)
    return -1;
  l->d.data = (unsigned char *) data;
  l->d.size = (unsigned) len;
  return 0;
}

/* Free (and for a key, wipe) what load_file read. */
static void
unload_file (struct loaded *l)
{
  localfile_free ((char *) l->d.data, l->d.size, l->secret);
  l->d.data = NULL;
  l->d.size = 0;
}

static int
load_ca (struct tls_session *ts, const char *ca)
{
  struct loaded l;
  int r;

  if (load_file (ca, &ca_file, &l) == -1)
    return -1;
  r = gnutls_certificate_set_x509_trust_mem (ts->x509, &l.d,
                                             GNUTLS_X509_FMT_PEM);
  unload_file (&l);
  if (r <= 0)
    return set_error (EINVAL, "TLS CA certificate %s holds no usable "
                      "certificate%s%s", ca, r < 0 ? ": " : "",
                      r < 0 ? gnutls_strerror (r) : "");
  return 0;
}

/* The client certificate and its key; the key is wiped from our memory as
 * soon as gnutls has it, on every path. */
static int
load_client_cert (struct tls_session *ts, const char *cert, const char *key)
{
  struct loaded c, k = { { NULL, 0 }, true };
  int r = -1;

  if (load_file (cert, &cert_file, &c) == 0 &&
      load_file (key, &key_file, &k) == 0) {
    r = gnutls_certificate_set_x509_key_mem (ts->x509, &c.d, &k.d,
                                             GNUTLS_X509_FMT_PEM);
    if (r < 0)
      set_error (EINVAL, "TLS client certificate %s / key %s: %s", cert,
                 key, gnutls_strerror (r));
  }
  unload_file (&k);
  unload_file (&c);
  if (r < 0)
    return -1;
  ts->client_cert = true;
  return 0;
}

static int
load_x509 (struct tls_session *ts, const struct tls_config *c)
{
  char ca[4096], cert[4096], key[4096];
  int r;

  if ((r = gnutls_certificate_allocate_credentials (&ts->x509)) < 0)
    return set_error (ENOMEM, "TLS: %s", gnutls_strerror (r));
  if (!c->certificates) {
    r = gnutls_certificate_set_x509_system_trust (ts->x509);
    if (r <= 0)
      return set_error (ENOENT, "TLS: the system trust store has no CA "
                        "certificates%s%s (set tls-certificates to a "
                        "directory with ca-cert.pem)", r < 0 ? ": " : "",
                        r < 0 ? gnutls_strerror (r) : "");
    return 0;
  }
  snprintf (ca, sizeof ca, "%s/ca-cert.pem", c->certificates);
  snprintf (cert, sizeof cert, "%s/client-cert.pem", c->certificates);
  snprintf (key, sizeof key, "%s/client-key.pem", c->certificates);
  if (load_ca (ts, ca) == -1)
    return -1;
  if (!file_exists (cert) && !file_exists (key))
    return 0;                   /* no client certificate */
  return load_client_cert (ts, cert, key);
}

/* The login name, for PSK when no user name was given. */
static const char *
login_name (char *buf, size_t len)
{
  struct passwd pw, *res = NULL;

  if (getpwuid_r (geteuid (), &pw, buf, len, &res) != 0 || !res)
    return NULL;
  return res->pw_name;
}

static bool
is_hex_key (const char *s, size_t len)
{
  return len > 0 && len % 2 == 0 &&
         strspn (s, "0123456789abcdefABCDEF") >= len;
}

/* Hand the key of user (len hex digits at k, NUL-terminated) to gnutls. */
static int
set_psk (struct tls_session *ts, const char *user, char *k, size_t len)
{
  gnutls_datum_t key = { (unsigned char *) k, (unsigned) len };
  int r;

  if ((r = gnutls_psk_allocate_client_credentials (&ts->psk)) < 0 ||
      (r = gnutls_psk_set_client_credentials (ts->psk, user, &key,
                                              GNUTLS_PSK_KEY_HEX)) < 0)
    return set_error (EINVAL, "TLS PSK for user '%s': %s", user,
                      gnutls_strerror (r));
  return 0;
}

/* Find user's key in the psktool file text ("user:hexkey" lines) and set
 * it.  The text is cut into lines in place. */
static int
find_psk (struct tls_session *ts, const char *path, const char *user,
          char *text, size_t len)
{
  size_t ulen = strlen (user), pos = 0;
  unsigned lineno = 0;

  while (pos < len) {
    char *line = text + pos, *nl = memchr (line, '\n', len - pos);
    size_t n = nl ? (size_t) (nl - line) : len - pos;

    pos += n + (nl != NULL);
    lineno++;
    if (n > 0 && line[n - 1] == '\r')
      n--;
    line[n] = '\0';
    if (n <= ulen || memcmp (line, user, ulen) != 0 || line[ulen] != ':')
      continue;
    if (!is_hex_key (line + ulen + 1, n - ulen - 1))
      return set_error (EINVAL, "TLS PSK file %s line %u: the key of user "
                        "'%s' is not an even number of hex digits", path,
                        lineno, user);
    return set_psk (ts, user, line + ulen + 1, n - ulen - 1);
  }
  return set_error (ENOENT, "TLS PSK file %s has no key for user '%s'",
                    path, user);
}

/* Read the PSK file c names and take user's key from it; the file's text
 * is wiped from our memory on every path. */
static int
load_psk (struct tls_session *ts, const struct tls_config *c)
{
  char pwbuf[1024];
  const char *user = c->username ? c->username :
    login_name (pwbuf, sizeof pwbuf);
  struct loaded l;
  int r;

  if (!user)
    return set_error (EINVAL, "TLS PSK: no user name given and the login "
                      "name is unknown (set tls-username)");
  if (load_file (c->psk_file, &psk_file, &l) == -1)
    return -1;
  r = find_psk (ts, c->psk_file, user, (char *) l.d.data, l.d.size);
  unload_file (&l);
  return r;
}

/* ---- handshake ------------------------------------------------------- */

static bool
is_ip_address (const char *host)
{
  unsigned char buf[sizeof (struct in6_addr)];

  return inet_pton (AF_INET, host, buf) == 1 ||
         inet_pton (AF_INET6, host, buf) == 1;
}

/* Why the server certificate was rejected, in words. */
static int
verify_error (struct tls_session *ts)
{
  unsigned status = gnutls_session_get_verify_cert_status (ts->s);
  gnutls_datum_t out = { NULL, 0 };
  const char *why;
  int ret;

  if (status & GNUTLS_CERT_EXPIRED)
    why = "has expired";
  else if (status & GNUTLS_CERT_NOT_ACTIVATED)
    why = "is not valid yet";
  else if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
    why = "is for another host name";
  else if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
    why = "is not trusted (its issuer is not in ca-cert.pem / the trust "
          "store)";
  else if (status & GNUTLS_CERT_REVOKED)
    why = "has been revoked";
  else
    why = "was rejected";
  gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509,
                                                &out, 0);
  ret = set_error (EACCES, "TLS: the server certificate %s (checked for "
                   "host '%s'): %s", why, ts->verify_host,
                   out.data ? (char *) out.data : "");
  gnutls_free (out.data);
  return ret;
}

static int
handshake_error (struct tls_session *ts, int r)
{
  const char *user = ts->psk_user ? ts->psk_user : "(login name)";

  if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
    return verify_error (ts);
  if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    const char *alert = gnutls_alert_get_name (gnutls_alert_get (ts->s));
    if (ts->psk)
      return set_error (EACCES, "TLS: the server rejected the pre-shared key "
                        "of user '%s' (wrong key or unknown user; alert: "
                        "%s)", user, alert ? alert : "unknown");
    return set_error (EACCES, "TLS: the server refused the handshake (alert: "
                      "%s)%s", alert ? alert : "unknown",
                      ts->client_cert ? "" : "; does it require a client "
                      "certificate? (client-cert.pem and client-key.pem in "
                      "the tls-certificates directory)");
  }
  if (ts->psk && (r == GNUTLS_E_DECRYPTION_FAILED ||
                      r == GNUTLS_E_PREMATURE_TERMINATION ||
                      r == GNUTLS_E_PULL_ERROR))
    return set_error (EACCES, "TLS: the PSK handshake failed for user '%s' "
                      "(wrong key or unknown user?): %s", user,
                      gnutls_strerror (r));
  if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ||
      r == GNUTLS_E_PUSH_ERROR)
    return set_error (ECONNRESET, "TLS: the server closed the connection "
                      "during the TLS handshake: %s", gnutls_strerror (r));
  return set_error (EPROTO, "TLS handshake failed: %s", gnutls_strerror (r));
}

/* Drive the non-blocking handshake until done or the deadline. */
static int
run_handshake (struct tls_session *ts, int fd, int64_t deadline)
{
  int r;

  while ((r = gnutls_handshake (ts->s)) < 0) {
    struct pollfd pfd = { .fd = fd };
    int ms = transport_ms_left (deadline);

    if (gnutls_error_is_fatal (r))
      return r;
    if (ms == 0)
      return GNUTLS_E_TIMEDOUT;
    pfd.events = gnutls_record_get_direction (ts->s) ? POLLOUT : POLLIN;
    if (poll (&pfd, 1, ms) == 0)
      return GNUTLS_E_TIMEDOUT;
  }
  return 0;
}

struct tls_session *
tls_prepare (const struct tls_config *c, const char *host)
{
  struct tls_session *ts = calloc (1, sizeof *ts);
  const char *err_pos = NULL;
  int r;

  if (!ts) {
    set_error (ENOMEM, "out of memory");
    return NULL;
  }
  ts->psk_user = c->username;
  ts->verify_host = c->hostname ? c->hostname : host ? host : "localhost";
  if ((r = gnutls_init (&ts->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
                        GNUTLS_NO_SIGNAL)) < 0) {
    ts->s = NULL;
    set_error (ENOMEM, "TLS: %s", gnutls_strerror (r));
    goto fail;
  }
  if (c->psk_file) {
    if (load_psk (ts, c) == -1)
      goto fail;
    r = gnutls_priority_set_direct (ts->s, PSK_PRIORITY, &err_pos);
    if (r >= 0)
      r = gnutls_credentials_set (ts->s, GNUTLS_CRD_PSK, ts->psk);
  }
  else {
    if (load_x509 (ts, c) == -1)
      goto fail;
    r = gnutls_set_default_priority (ts->s);
    if (r >= 0)
      r = gnutls_credentials_set (ts->s, GNUTLS_CRD_CERTIFICATE, ts->x509);
    if (r >= 0 && !is_ip_address (ts->verify_host))
      r = gnutls_server_name_set (ts->s, GNUTLS_NAME_DNS, ts->verify_host,
                                  strlen (ts->verify_host));
    if (r >= 0 && c->verify_peer)
      gnutls_session_set_verify_cert (ts->s, ts->verify_host, 0);
  }
  if (r < 0) {
    set_error (EINVAL, "TLS setup: %s", gnutls_strerror (r));
    goto fail;
  }
  return ts;

 fail:
  tls_session_free (ts);
  return NULL;
}

int
tls_start (struct transport *t, struct tls_session *ts, int64_t deadline,
           bool debug)
{
  int r;

  ts->fd = t->fd;
  gnutls_transport_set_ptr (ts->s, ts);
  gnutls_transport_set_pull_function (ts->s, raw_pull);
  gnutls_transport_set_pull_timeout_function (ts->s, raw_pull_timeout);
  gnutls_transport_set_vec_push_function (ts->s, raw_push);
  r = run_handshake (ts, t->fd, deadline);
  if (r == GNUTLS_E_TIMEDOUT) {
    tls_session_free (ts);
    return set_error (ETIMEDOUT, "TLS handshake timed out");
  }
  if (r < 0) {
    handshake_error (ts, r);
    tls_session_free (ts);
    return -1;
  }
  if (debug) {
    char *desc = gnutls_session_get_desc (ts->s);
    debug (true, "TLS handshake done: %s%s", desc ? desc : "",
           ts->psk ? " (PSK)" : " (x509)");
    gnutls_free (desc);
  }
  t->tls = ts;
  t->readv = tls_readv;
  t->writev = tls_writev;
  return 0;
}
