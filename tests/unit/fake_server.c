/* fake_server.c - the scripted in-process NBD server of the unit tests
 * (see fake_server.h).  The client-side helpers live in test_common.c. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "fake_server.h"

/* ---------------------------------------------------------------------- */
/* time */

int64_t
fs_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* lifecycle */

void
fs_hs_default (struct fs_hs *hs)
{
  memset (hs, 0, sizeof *hs);
  hs->hflags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
  hs->sr = 1;
  hs->meta = "base:allocation";
  hs->meta_id = 7;
  hs->size = 1024 * 1024;
  hs->tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA
    | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_DF
    | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE
    | NBD_FLAG_SEND_FAST_ZERO;
}

struct fs *
fs_new (void)
{
  struct fs *s = calloc (1, sizeof *s);
  if (!s)
    return NULL;
  s->fd = -1;
  s->client_fd = -1;
  if (pipe2 (s->sig, O_CLOEXEC) == -1) {
    free (s);
    return NULL;
  }
  fs_hs_default (&s->hs);
  return s;
}

static void
fs_drain (struct fs *s)
{
  int64_t deadline = fs_now_ms () + FS_TIMEOUT_MS;
  char buf[4096];

  for (;;) {
    int64_t left = deadline - fs_now_ms ();
    if (left <= 0)
      return;
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    int r = poll (&p, 1, (int) left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return;
    ssize_t n = recv (s->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
  }
}

static void *
fs_thread (void *p)
{
  struct fs *s = p;

  s->result = s->script (s);
  if (s->result != 0 && !s->err[0])
    snprintf (s->err, sizeof s->err, "script returned %d", s->result);
  /* The client sees EOF after whatever we sent; take what it still sends so
   * we never close with unread data (which would reset the connection). */
  if (s->fd >= 0) {
    shutdown (s->fd, SHUT_WR);
    fs_drain (s);
    close (s->fd);
    s->fd = -1;
  }
  return NULL;
}

int
fs_start (struct fs *s, fs_script_fn fn, void *arg)
{
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    return -1;
  s->fd = sv[0];
  s->client_fd = sv[1];
  s->script = fn;
  s->arg = arg;
  if (pthread_create (&s->thread, NULL, fs_thread, s) != 0) {
    close (sv[0]);
    close (sv[1]);
    s->fd = s->client_fd = -1;
    return -1;
  }
  s->started = 1;
  return s->client_fd;
}

int
fs_join (struct fs *s)
{
  if (s->started && !s->joined) {
    pthread_join (s->thread, NULL);
    s->joined = 1;
  }
  if (s->result != 0)
    fprintf (stderr, "fake server: %s\n", s->err);
  return s->result;
}

void
fs_free (struct fs *s)
{
  if (!s)
    return;
  if (s->client_fd >= 0) {      /* never handed to a handle */
    close (s->client_fd);
    s->client_fd = -1;
  }
  if (s->started && !s->joined) {
    pthread_join (s->thread, NULL);
    s->joined = 1;
  }
  if (s->fd >= 0)
    close (s->fd);
  for (int i = 0; i < s->nr_reqs && i < FS_MAX_REQS; i++)
    free (s->reqs[i].data);
  close (s->sig[0]);
  close (s->sig[1]);
  free (s->disk);
  free (s);
}

/* ---------------------------------------------------------------------- */
/* raw I/O */

int
fs_fail (struct fs *s, const char *fmt, ...)
{
  if (!s->err[0]) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (s->err, sizeof s->err, fmt, ap);
    va_end (ap);
  }
  return -1;
}

/* 0: read n bytes; 1: clean EOF before the first byte; -1: failure. */
static int
fs_read_exact_eof (struct fs *s, void *buf, size_t n)
{
  uint8_t *p = buf;
  size_t got = 0;
  int64_t deadline = fs_now_ms () + FS_TIMEOUT_MS;

  while (got < n) {
    int64_t left = deadline - fs_now_ms ();
    if (left <= 0)
      return fs_fail (s, "timeout reading %zu bytes (got %zu)", n, got);
    struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
    int r = poll (&pfd, 1, (int) left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return fs_fail (s, "poll: %s", strerror (errno));
    if (r == 0)
      continue;
    ssize_t k = recv (s->fd, p + got, n - got, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (k < 0)
      return fs_fail (s, "recv: %s", strerror (errno));
    if (k == 0) {
      if (got == 0)
        return 1;
      return fs_fail (s, "EOF after %zu of %zu bytes", got, n);
    }
    got += (size_t) k;
  }
  return 0;
}

int
fs_read_exact (struct fs *s, void *buf, size_t n)
{
  int r = fs_read_exact_eof (s, buf, n);
  if (r == 1)
    return fs_fail (s, "unexpected EOF from the client");
  return r;
}

void
fs_abort (struct fs *s)
{
  if (s->fd >= 0) {
    close (s->fd);
    s->fd = -1;
  }
}

int
fs_wait_eof (struct fs *s)
{
  char c;
  int r = fs_read_exact_eof (s, &c, 1);
  if (r == 1)
    return 0;
  if (r == 0)
    return fs_fail (s, "client sent data while EOF was expected");
  return -1;
}

void
fs_signal (struct fs *s)
{
  char c = 1;
  while (write (s->sig[1], &c, 1) == -1 && errno == EINTR)
    ;
}

int
fs_wait_signal (struct fs *s)
{
  struct pollfd pfd = { .fd = s->sig[0], .events = POLLIN };
  char c;
  int r;

  while ((r = poll (&pfd, 1, FS_TIMEOUT_MS)) == -1 && errno == EINTR)
    ;
  if (r != 1 || read (s->sig[0], &c, 1) != 1)
    return fs_fail (s, "timeout waiting for the test's signal");
  return 0;
}

/* Wait (bounded) until the client has read everything we sent. */
static void
fs_wait_consumed (struct fs *s)
{
  int64_t deadline = fs_now_ms () + 1000;
  int outq = 0;

  while (fs_now_ms () < deadline) {
    if (ioctl (s->fd, SIOCOUTQ, &outq) == -1 || outq == 0)
      return;
    usleep (50);
  }
  s->trickle = 0;               /* client stalled: stop trickling */
}

static int
fs_write_some (struct fs *s, const uint8_t *p, size_t n)
{
  size_t done = 0;
  int64_t deadline = fs_now_ms () + FS_TIMEOUT_MS;

  while (done < n) {
    ssize_t k = send (s->fd, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      done += (size_t) k;
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - fs_now_ms ();
      if (left <= 0)
        return fs_fail (s, "timeout writing %zu bytes", n);
      struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
      poll (&pfd, 1, (int) left);
      continue;
    }
    return fs_fail (s, "send: %s", strerror (errno));
  }
  return 0;
}

int
fs_write (struct fs *s, const void *buf, size_t n)
{
  const uint8_t *p = buf;

  if (!s->trickle)
    return fs_write_some (s, p, n);
  for (size_t i = 0; i < n; i++) {
    if (fs_write_some (s, p + i, 1) == -1)
      return -1;
    if (s->trickle)
      fs_wait_consumed (s);
  }
  return 0;
}

/* A header, then len bytes of payload (if any). */
static int
fs_write_msg (struct fs *s, const void *hdr, size_t hlen, const void *payload,
              uint32_t len)
{
  if (fs_write (s, hdr, hlen) == -1)
    return -1;
  if (len && fs_write (s, payload, len) == -1)
    return -1;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* handshake helpers */

int
fs_send_greeting_magic (struct fs *s, uint64_t magic1, uint64_t magic2,
                        uint16_t hflags)
{
  uint8_t b[18];
  wire_put64 (b, magic1);
  wire_put64 (b + 8, magic2);
  wire_put16 (b + 16, hflags);
  return fs_write (s, b, sizeof b);
}

int
fs_send_greeting (struct fs *s, uint16_t hflags)
{
  return fs_send_greeting_magic (s, NBD_MAGIC_INIT, NBD_MAGIC_OPT, hflags);
}

int
fs_read_client_flags (struct fs *s, uint32_t *flags)
{
  uint8_t b[4];
  if (fs_read_exact (s, b, 4) == -1)
    return -1;
  s->client_flags = wire_get32 (b);
  s->no_zeroes = (s->hs.hflags & NBD_FLAG_NO_ZEROES)
    && (s->client_flags & NBD_FLAG_NO_ZEROES);
  if (flags)
    *flags = s->client_flags;
  return 0;
}

int
fs_read_option (struct fs *s, uint32_t *opt, uint8_t **data, uint32_t *len)
{
  uint8_t h[NBD_OPT_HDR_LEN];

  *data = NULL;
  if (fs_read_exact (s, h, sizeof h) == -1)
    return -1;
  if (wire_get64 (h) != NBD_MAGIC_OPT)
    return fs_fail (s, "bad option magic 0x%016llx",
                    (unsigned long long) wire_get64 (h));
  *opt = wire_get32 (h + 8);
  *len = wire_get32 (h + 12);
  if (*len > FS_MAX_OPT_DATA)
    return fs_fail (s, "option %u too long (%u)", *opt, *len);
  *data = calloc (1, *len + 1);
  if (!*data)
    return fs_fail (s, "out of memory");
  if (*len && fs_read_exact (s, *data, *len) == -1) {
    free (*data);
    *data = NULL;
    return -1;
  }
  if (s->nr_options < (int) (sizeof s->options / sizeof s->options[0]))
    s->options[s->nr_options] = *opt;
  s->nr_options++;
  return 0;
}

int
fs_send_opt_reply_magic (struct fs *s, uint64_t magic, uint32_t opt,
                         uint32_t type, const void *payload, uint32_t len)
{
  uint8_t h[NBD_OPT_REPLY_HDR_LEN];
  wire_put64 (h, magic);
  wire_put32 (h + 8, opt);
  wire_put32 (h + 12, type);
  wire_put32 (h + 16, len);
  return fs_write_msg (s, h, sizeof h, payload, len);
}

int
fs_send_opt_reply (struct fs *s, uint32_t opt, uint32_t type,
                   const void *payload, uint32_t len)
{
  return fs_send_opt_reply_magic (s, NBD_MAGIC_OPT_REPLY, opt, type,
                                  payload, len);
}

int
fs_send_ack (struct fs *s, uint32_t opt)
{
  return fs_send_opt_reply (s, opt, NBD_REP_ACK, NULL, 0);
}

int
fs_send_info_export (struct fs *s, uint32_t opt, uint64_t size,
                     uint16_t tflags)
{
  uint8_t b[NBD_INFO_EXPORT_LEN];
  wire_put16 (b, NBD_INFO_EXPORT);
  wire_put64 (b + 2, size);
  wire_put16 (b + 10, tflags);
  return fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
}

static int
fs_send_info_string (struct fs *s, uint32_t opt, uint16_t type,
                     const char *str)
{
  size_t n = strlen (str);
  uint8_t b[2 + 1024];
  if (n > 1024)
    return fs_fail (s, "info string too long");
  wire_put16 (b, type);
  memcpy (b + 2, str, n);
  return fs_send_opt_reply (s, opt, NBD_REP_INFO, b, (uint32_t) (2 + n));
}

int
fs_send_info_name (struct fs *s, uint32_t opt, const char *name)
{
  return fs_send_info_string (s, opt, NBD_INFO_NAME, name);
}

int
fs_send_info_desc (struct fs *s, uint32_t opt, const char *desc)
{
  return fs_send_info_string (s, opt, NBD_INFO_DESCRIPTION, desc);
}

int
fs_send_info_block_size (struct fs *s, uint32_t opt, uint32_t min,
                         uint32_t pref, uint32_t max)
{
  uint8_t b[NBD_INFO_BLOCK_SIZE_LEN];
  wire_put16 (b, NBD_INFO_BLOCK_SIZE);
  wire_put32 (b + 2, min);
  wire_put32 (b + 6, pref);
  wire_put32 (b + 10, max);
  return fs_send_opt_reply (s, opt, NBD_REP_INFO, b, sizeof b);
}

int
fs_send_meta_context (struct fs *s, uint32_t opt, uint32_t id,
                      const char *name)
{
  size_t n = strlen (name);
  uint8_t b[4 + 1024];
  if (n > 1024)
    return fs_fail (s, "context name too long");
  wire_put32 (b, id);
  memcpy (b + 4, name, n);
  return fs_send_opt_reply (s, opt, NBD_REP_META_CONTEXT, b,
                            (uint32_t) (4 + n));
}

int
fs_send_oldstyle (struct fs *s, uint64_t size, uint32_t flags)
{
  uint8_t b[16 + NBD_OLDSTYLE_REST_LEN];
  memset (b, 0, sizeof b);
  wire_put64 (b, NBD_MAGIC_INIT);
  wire_put64 (b + 8, NBD_MAGIC_OLDSTYLE);
  wire_put64 (b + 16, size);
  wire_put32 (b + 24, flags);
  return fs_write (s, b, sizeof b);
}

int
fs_send_export_name_reply (struct fs *s, uint64_t size, uint16_t tflags,
                           int zeroes)
{
  uint8_t b[NBD_EXPORT_NAME_REPLY_LEN + NBD_ZEROES_LEN];
  memset (b, 0, sizeof b);
  wire_put64 (b, size);
  wire_put16 (b + 8, tflags);
  return fs_write (s, b, NBD_EXPORT_NAME_REPLY_LEN
                   + (zeroes ? NBD_ZEROES_LEN : 0));
}

int
fs_opt_export_name (const uint8_t *data, uint32_t len, char *name,
                    size_t namelen)
{
  if (len < 4)
    return -1;
  uint32_t n = wire_get32 (data);
  if (n > len - 4 || n >= namelen)
    return -1;
  memcpy (name, data + 4, n);
  name[n] = 0;
  return 0;
}

/* The first query of a SET_META_CONTEXT option. */
static int
fs_opt_first_query (const uint8_t *data, uint32_t len, char *q, size_t qlen)
{
  q[0] = 0;
  if (len < 4)
    return -1;
  uint32_t n = wire_get32 (data);
  if (n > len - 4 || len - 4 - n < 4)
    return -1;
  const uint8_t *p = data + 4 + n;
  uint32_t left = len - 4 - n;
  uint32_t nq = wire_get32 (p);
  p += 4;
  left -= 4;
  if (nq == 0)
    return 0;
  if (left < 4)
    return -1;
  uint32_t ql = wire_get32 (p);
  if (ql > left - 4 || ql >= qlen)
    return -1;
  memcpy (q, p + 4, ql);
  q[ql] = 0;
  return 0;
}

/* Does the (well-formed) META_CONTEXT option data hold the query name? */
static int
fs_opt_has_query (const uint8_t *data, uint32_t len, const char *name)
{
  uint32_t pos = 4 + wire_get32 (data), nq = wire_get32 (data + pos);

  pos += 4;
  for (uint32_t i = 0; i < nq && pos + 4 <= len; i++) {
    uint32_t ql = wire_get32 (data + pos);
    if (ql > len - pos - 4)
      return 0;
    if (ql == strlen (name) && memcmp (data + pos + 4, name, ql) == 0)
      return 1;
    pos += 4 + ql;
  }
  return 0;
}

static int
fs_answer_go (struct fs *s, uint32_t opt)
{
  const struct fs_hs *hs = &s->hs;

  if (hs->name && fs_send_info_name (s, opt, hs->name) == -1)
    return -1;
  if (hs->desc && fs_send_info_desc (s, opt, hs->desc) == -1)
    return -1;
  if (hs->bs_min && fs_send_info_block_size (s, opt, hs->bs_min,
                                             hs->bs_pref, hs->bs_max) == -1)
    return -1;
  if (fs_send_info_export (s, opt, hs->size, hs->tflags) == -1)
    return -1;
  return fs_send_ack (s, opt);
}

int
fs_handshake_hook (struct fs *s, fs_opt_hook hook)
{
  const struct fs_hs *hs = &s->hs;
  uint32_t opt, len;
  uint8_t *data;

  if (fs_send_greeting (s, hs->hflags) == -1
      || fs_read_client_flags (s, NULL) == -1)
    return -1;
  if (s->client_flags & ~(uint32_t) NBD_HANDSHAKE_FLAGS_KNOWN)
    return fs_fail (s, "client flags 0x%x have unknown bits",
                    s->client_flags);
  if ((s->client_flags & ~(uint32_t) hs->hflags) != 0)
    return fs_fail (s, "client flags 0x%x not offered (0x%x)",
                    s->client_flags, hs->hflags);

  for (int i = 0; i < 32; i++) {
    if (fs_read_option (s, &opt, &data, &len) == -1)
      return -1;
    if (hook) {
      int r = hook (s, opt, data, len);
      if (r != 0) {
        free (data);
        if (r == 2)
          return 1;
        if (r < 0)
          return -1;
        continue;
      }
    }
    int r = 0;
    if (!(hs->hflags & NBD_FLAG_FIXED_NEWSTYLE) && opt != NBD_OPT_EXPORT_NAME) {
      free (data);
      return fs_fail (s, "option %u sent to a non-fixed newstyle server",
                      opt);
    }
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
      snprintf (s->export_name, sizeof s->export_name, "%s", (char *) data);
      free (data);
      return fs_send_export_name_reply (s, hs->size, hs->tflags,
                                        !s->no_zeroes);
    case NBD_OPT_EXTENDED_HEADERS:
      if (len != 0)
        r = fs_fail (s, "EXTENDED_HEADERS with data");
      else if (hs->ext) {
        s->ext_negotiated = s->sr_negotiated = 1;
        r = fs_send_ack (s, opt);
      }
      else
        r = fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0);
      break;
    case NBD_OPT_STRUCTURED_REPLY:
      if (len != 0)
        r = fs_fail (s, "STRUCTURED_REPLY with data");
      else if (hs->sr) {
        s->sr_negotiated = 1;
        r = fs_send_ack (s, opt);
      }
      else
        r = fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0);
      break;
    case NBD_OPT_SET_META_CONTEXT:
      if (fs_opt_first_query (data, len, s->meta_query,
                              sizeof s->meta_query) == -1)
        r = fs_fail (s, "malformed SET_META_CONTEXT");
      else if (!s->sr_negotiated)
        r = fs_send_opt_reply (s, opt, NBD_REP_ERR_INVALID, NULL, 0);
      else {
        if (hs->meta && fs_opt_has_query (data, len, hs->meta)) {
          s->meta_negotiated = 1;
          r = fs_send_meta_context (s, opt, hs->meta_id, hs->meta);
        }
        if (r == 0 && hs->meta2 && fs_opt_has_query (data, len, hs->meta2))
          r = fs_send_meta_context (s, opt, hs->meta2_id, hs->meta2);
        if (r == 0)
          r = fs_send_ack (s, opt);
      }
      break;
    case NBD_OPT_GO:
    case NBD_OPT_INFO:
      if (fs_opt_export_name (data, len, s->export_name,
                              sizeof s->export_name) == -1)
        r = fs_fail (s, "malformed GO/INFO");
      else if (hs->go_unsup)
        r = fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0);
      else {
        r = fs_answer_go (s, opt);
        if (r == 0 && opt == NBD_OPT_GO) {
          free (data);
          return 0;
        }
      }
      break;
    case NBD_OPT_ABORT:
      fs_send_ack (s, opt);
      r = fs_fail (s, "client sent NBD_OPT_ABORT");
      break;
    default:
      r = fs_send_opt_reply (s, opt, NBD_REP_ERR_UNSUP, NULL, 0);
      break;
    }
    free (data);
    if (r == -1)
      return -1;
  }
  return fs_fail (s, "too many options");
}

int
fs_default_handshake (struct fs *s)
{
  return fs_handshake_hook (s, NULL);
}

/* ---------------------------------------------------------------------- */
/* transmission helpers */

/* A block status with NBD_CMD_FLAG_PAYLOAD_LEN where the server
 * advertised NBD_FLAG_BLOCK_STATUS_PAYLOAD: a filter follows. */
static int
filtered_bs (const struct fs *s, const struct fs_req *req)
{
  return req->type == NBD_CMD_BLOCK_STATUS &&
    (s->hs.tflags & NBD_FLAG_BLOCK_STATUS_PAYLOAD) &&
    (req->flags & NBD_CMD_FLAG_PAYLOAD_LEN);
}

/* The filter's payload (effect length, 32-bit ids) into req->data;
 * req->count becomes the effect length (its low 32 bits). */
static int
read_filter (struct fs *s, struct fs_req *req)
{
  if (req->length < NBD_BS_FILTER_HEAD_LEN + 4 || req->length > 4096 ||
      (req->length - NBD_BS_FILTER_HEAD_LEN) % 4)
    return fs_fail (s, "block status filter of %llu bytes",
                    (unsigned long long) req->length);
  req->data = malloc (req->length);
  if (!req->data)
    return fs_fail (s, "out of memory");
  if (fs_read_exact (s, req->data, req->length) == -1) {
    free (req->data);
    req->data = NULL;
    return -1;
  }
  req->count = (uint32_t) wire_get64 (req->data);
  return 0;
}

int
fs_read_request (struct fs *s, struct fs_req *req)
{
  uint8_t b[NBD_EXT_REQUEST_LEN];
  int ext = s->ext_negotiated;

  memset (req, 0, sizeof *req);
  if (fs_read_exact (s, b, ext ? NBD_EXT_REQUEST_LEN : NBD_REQUEST_LEN) == -1)
    return -1;
  req->magic = wire_get32 (b);
  req->flags = wire_get16 (b + 4);
  req->type = wire_get16 (b + 6);
  req->cookie = wire_get64 (b + 8);
  req->offset = wire_get64 (b + 16);
  req->length = ext ? wire_get64 (b + 24) : wire_get32 (b + 24);
  req->count = (uint32_t) req->length;
  if (req->magic != (ext ? NBD_MAGIC_EXT_REQUEST : NBD_MAGIC_REQUEST))
    return fs_fail (s, "bad request magic 0x%08x", req->magic);
  if (ext && (req->type == NBD_CMD_WRITE || filtered_bs (s, req)) !=
      !!(req->flags & NBD_CMD_FLAG_PAYLOAD_LEN))
    return fs_fail (s, "NBD_CMD_FLAG_PAYLOAD_LEN %s on %s",
                    req->type == NBD_CMD_WRITE ? "missing" : "set",
                    proto_cmd_name (req->type));
  if (filtered_bs (s, req) && read_filter (s, req) == -1)
    return -1;
  if (req->length > UINT32_MAX && req->type == NBD_CMD_WRITE)
    return fs_fail (s, "write of %llu bytes", (unsigned long long) req->length);
  if (req->type == NBD_CMD_WRITE) {
    if (req->count > 64u * 1024 * 1024)
      return fs_fail (s, "write payload too big (%u)", req->count);
    req->data = malloc (req->count ? req->count : 1);
    if (!req->data)
      return fs_fail (s, "out of memory");
    if (fs_read_exact (s, req->data, req->count) == -1) {
      free (req->data);
      req->data = NULL;
      return -1;
    }
  }
  if (req->type == NBD_CMD_DISC)
    s->disc_seen = 1;
  if (s->nr_reqs < FS_MAX_REQS) {
    s->reqs[s->nr_reqs] = *req;
    s->reqs[s->nr_reqs].data = NULL;
  }
  s->nr_reqs++;
  return 0;
}

int
fs_handshake_and_read (struct fs *s, struct fs_req *req)
{
  if (fs_default_handshake (s) != 0)
    return -1;
  return fs_read_request (s, req);
}

int
fs_read_requests (struct fs *s, int n)
{
  for (int i = 0; i < n; i++) {
    struct fs_req r;
    if (fs_read_request (s, &r) == -1)
      return -1;
    free (r.data);
  }
  return 0;
}

int
fs_send_simple_magic (struct fs *s, uint32_t magic, uint32_t error,
                      uint64_t cookie, const void *data, uint32_t len)
{
  uint8_t h[NBD_SIMPLE_REPLY_LEN];
  wire_put32 (h, magic);
  wire_put32 (h + 4, error);
  wire_put64 (h + 8, cookie);
  return fs_write_msg (s, h, sizeof h, data, len);
}

int
fs_send_simple (struct fs *s, uint32_t error, uint64_t cookie,
                const void *data, uint32_t len)
{
  return fs_send_simple_magic (s, NBD_MAGIC_SIMPLE_REPLY, error, cookie,
                               data, len);
}

int
fs_send_ext_chunk (struct fs *s, uint16_t flags, uint16_t type,
                   uint64_t cookie, uint64_t offset, uint64_t length,
                   const void *payload, uint32_t len)
{
  uint8_t h[NBD_EXT_REPLY_LEN];
  wire_put32 (h, NBD_MAGIC_EXT_REPLY);
  wire_put16 (h + 4, flags);
  wire_put16 (h + 6, type);
  wire_put64 (h + 8, cookie);
  wire_put64 (h + 16, offset);
  wire_put64 (h + 24, length);
  return fs_write_msg (s, h, sizeof h, payload, len);
}

/* The offset of the latest request read with this cookie (0 if none). */
static uint64_t
fs_req_offset (const struct fs *s, uint64_t cookie)
{
  int n = s->nr_reqs < FS_MAX_REQS ? s->nr_reqs : FS_MAX_REQS;
  for (int i = n - 1; i >= 0; i--)
    if (s->reqs[i].cookie == cookie)
      return s->reqs[i].offset;
  return 0;
}

int
fs_send_ok (struct fs *s, uint64_t cookie)
{
  if (s->ext_negotiated)
    return fs_send_chunk_none (s, cookie);
  return fs_send_simple (s, 0, cookie, NULL, 0);
}

int
fs_send_chunk (struct fs *s, uint16_t flags, uint16_t type, uint64_t cookie,
               const void *payload, uint32_t len)
{
  uint8_t h[NBD_STRUCTURED_REPLY_LEN];
  if (s->ext_negotiated)
    return fs_send_ext_chunk (s, flags, type, cookie,
                              fs_req_offset (s, cookie), len, payload, len);
  wire_put32 (h, NBD_MAGIC_STRUCTURED_REPLY);
  wire_put16 (h + 4, flags);
  wire_put16 (h + 6, type);
  wire_put64 (h + 8, cookie);
  wire_put32 (h + 16, len);
  return fs_write_msg (s, h, sizeof h, payload, len);
}

int
fs_send_chunk_data (struct fs *s, uint16_t flags, uint64_t cookie,
                    uint64_t offset, const void *data, uint32_t len)
{
  uint8_t *b = malloc (8 + (size_t) len);
  if (!b)
    return fs_fail (s, "out of memory");
  wire_put64 (b, offset);
  if (len)
    memcpy (b + 8, data, len);
  int r = fs_send_chunk (s, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, b,
                         8 + len);
  free (b);
  return r;
}

int
fs_send_chunk_hole (struct fs *s, uint16_t flags, uint64_t cookie,
                    uint64_t offset, uint32_t len)
{
  uint8_t b[12];
  wire_put64 (b, offset);
  wire_put32 (b + 8, len);
  return fs_send_chunk (s, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, b, 12);
}

int
fs_send_chunk_error (struct fs *s, uint16_t flags, uint16_t type,
                     uint64_t cookie, uint32_t error, const char *msg)
{
  size_t n = msg ? strlen (msg) : 0;
  uint8_t b[6 + 512];
  if (n > 512)
    return fs_fail (s, "error message too long");
  wire_put32 (b, error);
  wire_put16 (b + 4, (uint16_t) n);
  if (n)
    memcpy (b + 6, msg, n);
  return fs_send_chunk (s, flags, type, cookie, b, (uint32_t) (6 + n));
}

int
fs_send_chunk_none (struct fs *s, uint64_t cookie)
{
  return fs_send_chunk (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie,
                        NULL, 0);
}

int
fs_send_chunk_bs (struct fs *s, uint16_t flags, uint64_t cookie,
                  uint32_t ctx_id, const uint32_t *extents, size_t n)
{
  uint8_t b[4 + 8 * 32];
  if (n > 32)
    return fs_fail (s, "too many extents");
  wire_put32 (b, ctx_id);
  for (size_t i = 0; i < n; i++) {
    wire_put32 (b + 4 + 8 * i, extents[2 * i]);
    wire_put32 (b + 8 + 8 * i, extents[2 * i + 1]);
  }
  return fs_send_chunk (s, flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, b,
                        (uint32_t) (4 + 8 * n));
}

int
fs_send_chunk_bs_ext (struct fs *s, uint16_t flags, uint64_t cookie,
                      uint32_t ctx_id, const uint64_t *extents, size_t n,
                      uint32_t count)
{
  uint8_t b[8 + 16 * 32];
  if (n > 32)
    return fs_fail (s, "too many extents");
  wire_put32 (b, ctx_id);
  wire_put32 (b + 4, count);
  for (size_t i = 0; i < n; i++) {
    wire_put64 (b + 8 + 16 * i, extents[2 * i]);
    wire_put64 (b + 16 + 16 * i, extents[2 * i + 1]);
  }
  return fs_send_chunk (s, flags, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, cookie, b,
                        (uint32_t) (8 + 16 * n));
}

uint8_t
fs_pattern_byte (uint64_t offset)
{
  return (uint8_t) ((offset * 7 + (offset >> 9) * 13 + 1) & 0xff);
}

void
fs_pattern (void *buf, size_t n, uint64_t offset)
{
  uint8_t *p = buf;
  for (size_t i = 0; i < n; i++)
    p[i] = fs_pattern_byte (offset + i);
}

int
fs_send_error_reply (struct fs *s, const struct fs_req *req, uint32_t err)
{
  if (s->sr_negotiated)
    return fs_send_chunk_error (s, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                                req->cookie, err, "fake server refused");
  return fs_send_simple (s, err, req->cookie, NULL, 0);
}

int
fs_serve_memory (struct fs *s, int allow_eof)
{
  if (!s->disk) {
    s->disk_size = s->hs.size;
    s->disk = malloc (s->disk_size ? s->disk_size : 1);
    if (!s->disk)
      return fs_fail (s, "out of memory");
    fs_pattern (s->disk, s->disk_size, 0);
  }

  for (;;) {
    struct fs_req req;
    uint8_t b[1];
    /* Peek for a clean EOF between requests. */
    struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
    if (poll (&pfd, 1, FS_TIMEOUT_MS) <= 0)
      return fs_fail (s, "timeout waiting for a request");
    if (recv (s->fd, b, 1, MSG_PEEK) <= 0) {
      if (allow_eof)
        return 0;
      return fs_fail (s, "EOF before NBD_CMD_DISC");
    }
    if (fs_read_request (s, &req) == -1)
      return -1;
    int r = 0;
    int in_bounds = req.offset <= s->disk_size
      && req.length <= s->disk_size - req.offset;
    switch (req.type) {
    case NBD_CMD_DISC:
      free (req.data);
      return 0;
    case NBD_CMD_READ:
      if (!in_bounds)
        r = fs_send_error_reply (s, &req, NBD_EINVAL);
      else if (s->sr_negotiated)
        r = fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, req.cookie,
                                req.offset, s->disk + req.offset, req.count);
      else
        r = fs_send_simple (s, 0, req.cookie, s->disk + req.offset,
                            req.count);
      break;
    case NBD_CMD_WRITE:
      if (!in_bounds)
        r = fs_send_error_reply (s, &req, NBD_EINVAL);
      else {
        memcpy (s->disk + req.offset, req.data, req.count);
        r = fs_send_ok (s, req.cookie);
      }
      break;
    case NBD_CMD_WRITE_ZEROES:
      if (!in_bounds)
        r = fs_send_error_reply (s, &req, NBD_EINVAL);
      else {
        memset (s->disk + req.offset, 0, req.count);
        r = fs_send_ok (s, req.cookie);
      }
      break;
    case NBD_CMD_FLUSH:
      r = fs_send_ok (s, req.cookie);
      break;
    case NBD_CMD_TRIM:
    case NBD_CMD_CACHE:
      if (!in_bounds)
        r = fs_send_error_reply (s, &req, NBD_EINVAL);
      else
        r = fs_send_ok (s, req.cookie);
      break;
    case NBD_CMD_BLOCK_STATUS:
      if (!in_bounds || !s->meta_negotiated)
        r = fs_send_error_reply (s, &req, NBD_EINVAL);
      else if (s->ext_negotiated) {
        uint64_t ext[2] = { req.length, 0 };
        r = fs_send_chunk_bs_ext (s, NBD_REPLY_FLAG_DONE, req.cookie,
                                  s->hs.meta_id, ext, 1, 1);
      }
      else {
        uint32_t ext[2] = { req.count, 0 };
        r = fs_send_chunk_bs (s, NBD_REPLY_FLAG_DONE, req.cookie,
                              s->hs.meta_id, ext, 1);
      }
      break;
    default:
      r = fs_send_error_reply (s, &req, NBD_EINVAL);
      break;
    }
    free (req.data);
    if (r == -1)
      return -1;
  }
}
