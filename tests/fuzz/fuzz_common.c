/* fuzz_common.c - the parts the libFuzzer targets share (see
 * fuzz_common.h): the pre-filled socketpair, stream building, input
 * reading, and the commands whose callbacks check the library's
 * promises. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "proto.h"

void
fz_fail (const char *file, int line, const char *what)
{
  const char *err = nbdaio_get_error ();

  fprintf (stderr, "\nfuzz harness: broken promise at %s:%d: %s\n"
           "  last library error: %s (errno %d)\n", file, line, what,
           err ? err : "(none)", nbdaio_get_errno ());
  abort ();
}

/* ---------------------------------------------------------------------- */
/* the server end */

void
fz_pair_open (struct fz_pair *p)
{
  int sv[2], size = 2 * FZ_STREAM_MAX + 64 * 1024, got = 0;
  socklen_t len = sizeof got;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    perror ("fuzz harness: socketpair");
    abort ();
  }
  /* The kernel doubles the value and caps it at net.core.wmem_max; root
   * may go beyond the cap.  Whatever does not fit is dropped, the same
   * way for every run of an input. */
  setsockopt (sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (getsockopt (sv[0], SOL_SOCKET, SO_SNDBUF, &got, &len) == 0 &&
      got < size)
    setsockopt (sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  p->server = sv[0];
  p->client = sv[1];
}

void
fz_pair_send (struct fz_pair *p, const void *data, size_t len)
{
  const uint8_t *d = data;

  while (len > 0) {
    ssize_t k = send (p->server, d, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k > 0) {
      d += k;
      len -= (size_t) k;
    }
    else if (k == -1 && errno == EINTR)
      continue;
    else
      return;                   /* full (or the client is gone): drop */
  }
}

void
fz_pair_eof (struct fz_pair *p)
{
  shutdown (p->server, SHUT_WR);
}

void
fz_pair_close (struct fz_pair *p)
{
  /* The handle owns the client end and must have closed it. */
  FZ_ASSERT (fcntl (p->client, F_GETFD) == -1 && errno == EBADF);
  if (p->server >= 0)
    close (p->server);
  p->server = -1;
}

/* ---------------------------------------------------------------------- */
/* building a stream */

void
fz_buf_reset (struct fz_buf *b)
{
  b->len = 0;
}

static void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p) {
    perror ("fuzz harness: malloc");
    abort ();
  }
  return p;
}

/* Room for len more bytes (fewer at the FZ_STREAM_MAX limit): returns how
 * many may be appended.  The first use allocates the whole limit. */
static size_t
fz_reserve (struct fz_buf *b, size_t len)
{
  if (!b->data)
    b->data = xmalloc (FZ_STREAM_MAX);
  if (len > FZ_STREAM_MAX - b->len)
    len = FZ_STREAM_MAX - b->len;
  return len;
}

void
fz_put (struct fz_buf *b, const void *data, size_t len)
{
  len = fz_reserve (b, len);
  if (len)
    memcpy (b->data + b->len, data, len);
  b->len += len;
}

void
fz_put_fill (struct fz_buf *b, uint8_t v, size_t len)
{
  len = fz_reserve (b, len);
  memset (b->data + b->len, v, len);
  b->len += len;
}

/* v as n (<= 8) big-endian bytes */
static void
fz_put_be (struct fz_buf *b, uint64_t v, size_t n)
{
  uint8_t w[8];

  for (size_t i = 0; i < n; i++)
    w[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
  fz_put (b, w, n);
}

void fz_put8 (struct fz_buf *b, uint8_t v) { fz_put_be (b, v, 1); }
void fz_put16 (struct fz_buf *b, uint16_t v) { fz_put_be (b, v, 2); }
void fz_put32 (struct fz_buf *b, uint32_t v) { fz_put_be (b, v, 4); }
void fz_put64 (struct fz_buf *b, uint64_t v) { fz_put_be (b, v, 8); }

void
fz_put_opt_reply (struct fz_buf *b, uint32_t opt, uint32_t type,
                  uint32_t len)
{
  fz_put64 (b, NBD_MAGIC_OPT_REPLY);
  fz_put32 (b, opt);
  fz_put32 (b, type);
  fz_put32 (b, len);
}

/* ---------------------------------------------------------------------- */
/* reading the input */

/* The next n (<= 8) bytes as a big-endian number. */
static bool
fz_get (struct fz_in *in, size_t n, uint64_t *v)
{
  *v = 0;
  if (in->left < n) {
    in->left = 0;
    return false;
  }
  for (size_t i = 0; i < n; i++)
    *v = *v << 8 | in->p[i];
  in->p += n;
  in->left -= n;
  return true;
}

bool
fz_get8 (struct fz_in *in, uint8_t *v)
{
  uint64_t x;
  bool ok = fz_get (in, 1, &x);
  *v = (uint8_t) x;
  return ok;
}

bool
fz_get16 (struct fz_in *in, uint16_t *v)
{
  uint64_t x;
  bool ok = fz_get (in, 2, &x);
  *v = (uint16_t) x;
  return ok;
}

bool
fz_get64 (struct fz_in *in, uint64_t *v)
{
  return fz_get (in, 8, v);
}

/* ---------------------------------------------------------------------- */
/* commands */

static bool
has_chunk (const struct fz_cmd *c)
{
  return c->kind == FZ_PREAD_SR;
}

static bool
has_extent (const struct fz_cmd *c)
{
  return c->kind == FZ_BLOCK_STATUS;
}

static bool
has_buf (const struct fz_cmd *c)
{
  return c->kind == FZ_PREAD || c->kind == FZ_PREAD_SR || c->kind == FZ_PWRITE;
}

/* The first chunk (or extent) callback of the run may act on the handle. */
static int
chunk_behaviour (struct fz_cmd *c, int *error)
{
  struct fz_run *run = c->run;

  if (run->first_chunk_done)
    return 0;
  run->first_chunk_done = true;
  if (run->behave & FZ_B_ABORT_IN_CHUNK)
    nbdaio_abort (run->h, EIO, "fuzz: aborted from a chunk callback");
  if (run->behave & FZ_B_CHUNK_FAIL) {
    *error = EIO;
    return -1;
  }
  return 0;
}

static int
chunk_cb (void *ud, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct fz_cmd *c = ud;
  const uint8_t *sub = subbuf;
  size_t pos;

  FZ_ASSERT (has_chunk (c) && c->cookie >= 1);
  FZ_ASSERT (c->chunk_frees == 0);
  FZ_ASSERT (c->completion_calls == 0);   /* no chunk after completion */
  c->chunk_calls++;
  FZ_ASSERT (sub >= c->buf && sub <= c->buf + c->count);
  pos = (size_t) (sub - c->buf);
  FZ_ASSERT (offset == c->offset + pos);
  FZ_ASSERT (count <= c->count - pos);
  switch (status) {
  case NBDAIO_READ_DATA:
  case NBDAIO_READ_HOLE:
    FZ_ASSERT (count > 0);
    /* chunks never overlap; a hole reads as zeroes */
    FZ_ASSERT (memchr (c->seen + pos, 1, count) == NULL);
    memset (c->seen + pos, 1, count);
    if (status == NBDAIO_READ_HOLE)
      FZ_ASSERT (sub[0] == 0 && memcmp (sub, sub + 1, count - 1) == 0);
    c->covered += count;
    break;
  case NBDAIO_READ_ERROR:
    FZ_ASSERT (*error != 0);
    FZ_ASSERT (pos < c->count);
    break;
  default:
    FZ_ASSERT (!"unknown chunk status");
  }
  return chunk_behaviour (c, error);
}

static int
extent_cb (void *ud, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct fz_cmd *c = ud;
  struct fz_run *run = c->run;

  FZ_ASSERT (has_extent (c) && c->cookie >= 1);
  FZ_ASSERT (c->extent_frees == 0);
  FZ_ASSERT (c->completion_calls == 0);
  FZ_ASSERT (c->extent_calls == 0);        /* one context, one chunk */
  c->extent_calls++;
  FZ_ASSERT (run->meta_context && metacontext &&
             strcmp (metacontext, run->meta_context) == 0);
  FZ_ASSERT (offset == c->offset);
  FZ_ASSERT (entries && nr_entries >= 2 && nr_entries % 2 == 0);
  if (c->flags & NBDAIO_CMD_FLAG_REQ_ONE)
    FZ_ASSERT (nr_entries == 2);
  for (size_t i = 0; i < nr_entries; i += 2)
    FZ_ASSERT (entries[i] != 0);
  return chunk_behaviour (c, error);
}

static int
completion_cb (void *ud, int *error)
{
  struct fz_cmd *c = ud;
  struct fz_run *run = c->run;
  int ret = (run->behave & FZ_B_RETIRE) ? 1 : 0;

  FZ_ASSERT (c->cookie >= 1);
  FZ_ASSERT (c->completion_calls == 0 && c->completion_frees == 0);
  c->completion_calls++;
  c->error = *error;
  FZ_ASSERT (*error >= 0);
  /* a successful read was covered exactly, as the callbacks saw it */
  if (*error == 0 && has_chunk (c))
    FZ_ASSERT (c->covered == c->count);
  if (*error == 0 && has_extent (c))
    FZ_ASSERT (c->extent_calls == 1);

  if (!run->first_completion_done) {
    run->first_completion_done = true;
    if (run->behave & FZ_B_FOLLOWUP)
      fz_issue (run, FZ_PREAD, FZ_FOLLOWUP_OFFSET, FZ_FOLLOWUP_COUNT, 0);
    if (run->behave & FZ_B_ABORT_IN_CB)
      nbdaio_abort (run->h, ECONNABORTED,
                    "fuzz: aborted from a completion callback");
  }
  if (run->behave & FZ_B_RETIRE_IN_CB) {
    int r = nbdaio_aio_command_completed (run->h, c->cookie);
    FZ_ASSERT (r == (*error ? -1 : 1));
    if (r == -1)
      FZ_ASSERT (nbdaio_get_errno () == *error);
    c->retired = true;
    return 0;
  }
  if (ret == 1)
    c->retired = true;
  return ret;
}

static void completion_free (void *ud) { ((struct fz_cmd *) ud)->completion_frees++; }
static void chunk_free (void *ud) { ((struct fz_cmd *) ud)->chunk_frees++; }
static void extent_free (void *ud) { ((struct fz_cmd *) ud)->extent_frees++; }

int64_t
fz_issue (struct fz_run *run, enum fz_kind kind, uint64_t offset,
          uint32_t count, uint32_t flags)
{
  struct fz_cmd *c;
  nbdaio_completion_callback cc = { completion_cb, NULL, completion_free };
  nbdaio_chunk_callback ch = { chunk_cb, NULL, chunk_free };
  nbdaio_extent_callback ex = { extent_cb, NULL, extent_free };
  struct nbdaio_handle *h = run->h;
  int64_t r = -1;

  if (run->ncmds == FZ_MAX_CMDS)
    return -1;
  c = &run->cmds[run->ncmds++];
  memset (c, 0, sizeof *c);
  c->run = run;
  c->kind = kind;
  c->offset = offset;
  c->count = count;
  c->flags = flags;
  c->cookie = -1;
  cc.user_data = ch.user_data = ex.user_data = c;
  if (has_buf (c)) {
    /* exactly count bytes, so ASan sees any write past the request */
    c->buf = xmalloc (count);
    memset (c->buf, kind == FZ_PWRITE ? 0xa5 : 0xee, count);
  }
  if (has_chunk (c)) {
    c->seen = xmalloc (count);
    memset (c->seen, 0, count);
  }

  switch (kind) {
  case FZ_PREAD:
    r = nbdaio_aio_pread (h, c->buf, count, offset, cc, flags);
    break;
  case FZ_PREAD_SR:
    r = nbdaio_aio_pread_structured (h, c->buf, count, offset, ch, cc, flags);
    break;
  case FZ_PWRITE:
    r = nbdaio_aio_pwrite (h, c->buf, count, offset, cc, flags);
    break;
  case FZ_FLUSH:
    r = nbdaio_aio_flush (h, cc, flags);
    break;
  case FZ_TRIM:
    r = nbdaio_aio_trim (h, count, offset, cc, flags);
    break;
  case FZ_ZERO:
    r = nbdaio_aio_zero (h, count, offset, cc, flags);
    break;
  case FZ_CACHE:
    r = nbdaio_aio_cache (h, count, offset, cc, flags);
    break;
  case FZ_BLOCK_STATUS:
    r = nbdaio_aio_block_status (h, count, offset, ex, cc, flags);
    break;
  }
  if (r == -1) {
    /* refused: a clear error, no callback, every free once */
    c->issue_errno = nbdaio_get_errno ();
    FZ_ASSERT (c->issue_errno != 0 && nbdaio_get_error () != NULL);
    FZ_ASSERT (c->completion_calls == 0 && c->completion_frees == 1);
    FZ_ASSERT (c->chunk_frees == has_chunk (c));
    FZ_ASSERT (c->extent_frees == has_extent (c));
    return -1;
  }
  FZ_ASSERT (r >= 1);
  for (int i = 0; i < run->ncmds - 1; i++)
    FZ_ASSERT (run->cmds[i].cookie != r);
  c->cookie = r;
  return r;
}

void
fz_drive (struct fz_run *run)
{
  for (int i = 0; i < 64 && nbdaio_is_connected (run->h); i++)
    if (nbdaio_poll (run->h, 0) == -1)
      break;
}

void
fz_retire_all (struct fz_run *run)
{
  struct nbdaio_handle *h = run->h;
  bool dead = !nbdaio_is_connected (h);

  if (dead)
    FZ_ASSERT (nbdaio_aio_in_flight (h) == 0);
  for (int i = 0; i < run->ncmds; i++) {
    struct fz_cmd *c = &run->cmds[i];
    int r;

    if (c->cookie < 1)
      continue;
    /* a dead connection completed everything it had */
    if (dead)
      FZ_ASSERT (c->completion_calls == 1);
    if (c->completion_calls == 0)
      continue;                 /* still in flight: nbdaio_close ends it */
    r = nbdaio_aio_command_completed (h, c->cookie);
    if (c->retired) {
      FZ_ASSERT (r == -1 && nbdaio_get_errno () == EINVAL);
      continue;
    }
    FZ_ASSERT (r == (c->error ? -1 : 1));
    if (r == -1)
      FZ_ASSERT (nbdaio_get_errno () == c->error);
    c->retired = true;
  }
  if (dead)
    FZ_ASSERT (nbdaio_aio_peek_command_completed (h) == -1);
}

void
fz_close_and_check (struct fz_run *run)
{
  nbdaio_close (run->h);
  run->h = NULL;
  for (int i = 0; i < run->ncmds; i++) {
    struct fz_cmd *c = &run->cmds[i];

    FZ_ASSERT (c->completion_calls == (c->cookie >= 1));
    FZ_ASSERT (c->completion_frees == 1);
    FZ_ASSERT (c->chunk_frees == has_chunk (c));
    FZ_ASSERT (c->extent_frees == has_extent (c));
    free (c->buf);
    free (c->seen);
    c->buf = c->seen = NULL;
  }
}
