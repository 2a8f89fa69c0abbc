/* tests/integration/roundtrip.c - integration test client: connects to a real
 * NBD server through the public API (nbdaio.h only) and exercises commands,
 * local refusals and the data path, checking what the server advertised
 * against the expectations given on the command line.  Prints each failed
 * check and exits 1 if any failed.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nbdaio.h"

/* ---- options ------------------------------------------------------- */

static struct {
  const char *uri;
  int expect_readonly;          /* -1: don't care */
  int expect_sr;                /* -1: don't care */
  int64_t expect_min_block;     /* -1: don't care, 0: none advertised */
  int64_t expect_size;          /* -1: don't care */
  const char *expect_protocol;
  const char *write_pattern;    /* dump the expected contents here */
  const char *compare_file;     /* the export must hold this file's data */
  const char *error_file;       /* nbdkit error filter trigger for reads */
  int expect_hole;              /* fresh export must read as HOLE chunks */
  int server_align_error;       /* server itself refuses unaligned I/O */
  int no_write;
  int data_only;                /* only reads and plain writes */
  int server_bounds_error;      /* server refuses out-of-range reads */
  int kill_pid;                 /* kill this server mid-flight */
  const char *shutdown_file;    /* reads answer ESHUTDOWN while it exists */
  int request_sr;
  const char *meta_context;     /* NULL: library default */
  int no_meta;
  uint64_t length;              /* 0: min(size, 16 MiB) */
  size_t chunk;
  unsigned depth;
  unsigned seed;
  int verbose;
  int expect_tls;               /* -1: don't care */
  const char *settings[16];     /* NAME=VALUE for nbdaio_set_option */
  int nsettings;
} opt = {
  .expect_tls = -1,
  .expect_readonly = -1, .expect_sr = -1, .expect_min_block = -1,
  .expect_size = -1, .request_sr = 1, .chunk = 65536, .depth = 32,
  .seed = 1,
};

/* ---- checks -------------------------------------------------------- */

static unsigned checks, failures;

#define CHECK(cond, ...) check ((cond), __LINE__, __VA_ARGS__)

static int __attribute__ ((format (printf, 3, 4)))
check (int ok, int line, const char *fmt, ...)
{
  va_list ap;
  checks++;
  if (ok)
    return 1;
  failures++;
  fprintf (stderr, "roundtrip: FAIL (line %d): ", line);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return 0;
}

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "roundtrip: FATAL: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (1);
}

static void __attribute__ ((format (printf, 1, 2)))
note (const char *fmt, ...)
{
  va_list ap;
  if (!opt.verbose)
    return;
  printf ("roundtrip: ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  putchar ('\n');
  fflush (stdout);
}

static const char *
lib_error (void)
{
  const char *e = nbdaio_get_error ();
  return e ? e : "(no message)";
}

/* ---- test state ---------------------------------------------------- */

static struct nbdaio_handle *h;
static int64_t size;
static uint64_t len;            /* bytes exercised: [0, len) */
static uint64_t align = 1;      /* minimum block size, at least 1 */
static int64_t max_payload;
static int read_only, sr;
static unsigned char *model;    /* what [0, len) must contain */
static int model_known;

/* Every completion context, counted so that callbacks and frees can be
 * checked to run exactly once. */
static unsigned long callbacks_run, frees_run, contexts_made;

struct ctx {
  const char *what;
  uint64_t offset;
  uint64_t count;
  int done;
  int error;
  int retire;                   /* callback return value */
  unsigned char *buf;           /* for reads: where the data lands */
  /* structured read bookkeeping */
  unsigned chunks, holes, data_chunks, error_chunks;
  unsigned char *covered;       /* one byte per request byte */
};

static struct ctx *
ctx_new (const char *what, uint64_t offset, uint64_t count)
{
  struct ctx *c = calloc (1, sizeof *c);
  if (!c)
    die ("out of memory");
  c->what = what;
  c->offset = offset;
  c->count = count;
  c->retire = 1;
  return c;
}

static int
on_complete (void *user_data, int *error)
{
  struct ctx *c = user_data;
  callbacks_run++;
  CHECK (!c->done, "%s @%" PRIu64 ": completion callback ran twice",
         c->what, c->offset);
  c->done = 1;
  c->error = *error;
  return c->retire;
}

static void
on_free (void *user_data)
{
  struct ctx *c = user_data;
  frees_run++;
  free (c->covered);
  free (c);
}

/* A ctx that is kept after the command is retired (freed by us, not by the
 * library): used where we must look at it after completion. */
static void
on_free_count_only (void *user_data)
{
  (void) user_data;
  frees_run++;
}

static nbdaio_completion_callback
completion (struct ctx *c)
{
  contexts_made++;
  return (nbdaio_completion_callback) {
    .callback = on_complete, .user_data = c, .free = on_free,
  };
}

static nbdaio_completion_callback
completion_kept (struct ctx *c)
{
  contexts_made++;
  return (nbdaio_completion_callback) {
    .callback = on_complete, .user_data = c, .free = on_free_count_only,
  };
}

/* One step of the event loop: nbdaio_poll, or (manual_loop) our own poll(2)
 * on nbdaio_get_fd with nbdaio_aio_get_direction and the notify calls, as an
 * application with its own main loop would do it.  Returns -1 on error. */
static int manual_loop;

static int
step (int timeout_ms)
{
  if (!manual_loop)
    return nbdaio_poll (h, timeout_ms);
  if (nbdaio_aio_submit (h) == -1)
    return -1;
  unsigned dir = nbdaio_aio_get_direction (h);
  struct pollfd pfd = { .fd = nbdaio_get_fd (h) };
  if (pfd.fd < 0)
    return -1;
  if (dir & NBDAIO_DIRECTION_READ)
    pfd.events |= POLLIN;
  if (dir & NBDAIO_DIRECTION_WRITE)
    pfd.events |= POLLOUT;
  if (pfd.events == 0)
    return 0;
  int r = poll (&pfd, 1, timeout_ms);
  if (r <= 0)
    return r;
  if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
      nbdaio_aio_notify_read (h) == -1)
    return -1;
  if ((pfd.revents & POLLOUT) && nbdaio_aio_notify_write (h) == -1)
    return -1;
  return 1;
}

/* Drive the handle until nothing is in flight (or a 60 s budget runs out). */
static int
drain (void)
{
  time_t end = time (NULL) + 60;
  while (nbdaio_aio_in_flight (h) > 0) {
    if (time (NULL) > end)
      return CHECK (0, "drain: commands still in flight after 60 s");
    int r = step (1000);
    if (r == -1)
      return CHECK (0, "event loop: %s", lib_error ());
  }
  return CHECK (nbdaio_aio_in_flight (h) == 0, "in_flight not 0 after drain");
}

/* Wait until the command owning c has completed. */
static int
wait_done (struct ctx *c)
{
  time_t end = time (NULL) + 60;
  while (!c->done) {
    if (time (NULL) > end)
      return CHECK (0, "%s: no completion after 60 s", c->what);
    if (step (1000) == -1)
      return CHECK (0, "%s: event loop: %s", c->what, lib_error ());
  }
  return 1;
}

/* ---- pattern -------------------------------------------------------- */

static uint64_t
mix (uint64_t x)
{
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ULL;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dULL;
  x ^= x >> 33;
  return x;
}

/* Deterministic bytes for [off, off + n) under a seed. */
static void
pattern_fill (unsigned char *buf, uint64_t off, uint64_t n, unsigned seed)
{
  for (uint64_t i = 0; i < n; i++) {
    uint64_t p = off + i;
    uint64_t w = mix ((p >> 3) ^ ((uint64_t) seed << 48));
    buf[i] = (unsigned char) (w >> ((p & 7) * 8));
  }
}

static int
is_zero (const unsigned char *p, uint64_t n)
{
  for (uint64_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

/* Compare got with the model at offset; report the first difference. */
static int
compare_model (const char *what, const unsigned char *got, uint64_t offset,
               uint64_t n)
{
  if (!model_known)
    return 1;
  const unsigned char *want = model + offset;
  if (memcmp (got, want, n) == 0)
    return CHECK (1, "data matches");
  for (uint64_t i = 0; i < n; i++)
    if (got[i] != want[i])
      return CHECK (0, "%s: data differs at offset %" PRIu64
                    " (got 0x%02x, want 0x%02x)", what, offset + i, got[i],
                    want[i]);
  return 0;
}

/* ---- local refusals -------------------------------------------------- */

/* An issue call that must fail at once with errno want, running the free
 * function of its completion exactly once. */
#define EXPECT_REFUSED(want, call_desc, call) do {                      \
    unsigned long frees_before_ = frees_run;                            \
    int64_t r_ = (call);                                                \
    int e_ = nbdaio_get_errno ();                                       \
    if (CHECK (r_ == -1, "%s: expected -1 (%s), got cookie %" PRId64,   \
               call_desc, strerror (want), r_))                         \
      CHECK (e_ == (want), "%s: errno %s, expected %s (%s)",            \
             call_desc, strerror (e_), strerror (want), lib_error ());  \
    CHECK (frees_run == frees_before_ + 1,                              \
           "%s: free ran %lu times, expected once", call_desc,         \
           frees_run - frees_before_);                                  \
    drain ();                                                           \
  } while (0)

static unsigned char *scratch;  /* a buffer for refused commands */

/* A handle with the --set settings applied (every connection of the run
 * uses them). */
static struct nbdaio_handle *
new_handle (void)
{
  struct nbdaio_handle *nh = nbdaio_create ();

  for (int i = 0; nh && i < opt.nsettings; i++) {
    char name[64];
    const char *eq = strchr (opt.settings[i], '=');
    snprintf (name, sizeof name, "%.*s", (int) (eq - opt.settings[i]),
              opt.settings[i]);
    if (nbdaio_set_option (nh, name, eq + 1) == -1)
      die ("--set %s: %s", opt.settings[i], lib_error ());
  }
  return nh;
}

static void
test_unconnected (void)
{
  struct nbdaio_handle *u = nbdaio_create ();
  if (!u)
    die ("nbdaio_create: %s", lib_error ());
  unsigned char b[512];
  unsigned long fb = frees_run;
  int64_t r = nbdaio_aio_pread (u, b, sizeof b, 0,
                                completion (ctx_new ("unconnected", 0, 512)),
                                0);
  CHECK (r == -1, "aio_pread on an unconnected handle returned %" PRId64, r);
  CHECK (nbdaio_get_errno () == ENOTCONN,
         "aio_pread unconnected: errno %s, expected ENOTCONN",
         strerror (nbdaio_get_errno ()));
  CHECK (frees_run == fb + 1, "aio_pread unconnected: free not run once");
  CHECK (nbdaio_get_size (u) == -1, "get_size on unconnected handle");
  CHECK (nbdaio_is_connected (u) == 0, "is_connected on unconnected handle");
  CHECK (nbdaio_aio_in_flight (u) <= 0, "in_flight on unconnected handle");
  nbdaio_close (u);
}

static void
test_refusals (void)
{
  uint64_t a = align;

  /* bounds */
  EXPECT_REFUSED (EINVAL, "pread past the end",
                  nbdaio_aio_pread (h, scratch, a, size,
                                    completion (ctx_new ("r", 0, 0)), 0));
  if ((uint64_t) size >= 2 * a)
    EXPECT_REFUSED (EINVAL, "pread crossing the end",
                    nbdaio_aio_pread (h, scratch, 2 * a, size - a,
                                      completion (ctx_new ("r", 0, 0)), 0));
  EXPECT_REFUSED (EINVAL, "zero-length pread",
                  nbdaio_aio_pread (h, scratch, 0, 0,
                                    completion (ctx_new ("r", 0, 0)), 0));
  if (max_payload + (int64_t) a <= size &&
      max_payload <= 256 * 1024 * 1024) {
    /* big enough for the request in case it is (wrongly) sent */
    unsigned char *big = malloc (max_payload + a);
    if (!big)
      die ("out of memory");
    if (nbdaio_get_split (h) == 1)      /* split into wire requests */
      CHECK (nbdaio_pread (h, big, max_payload + a, 0, 0) == 0,
             "split pread above max payload: %s", lib_error ());
    else
      EXPECT_REFUSED (ERANGE, "pread above max payload",
                      nbdaio_aio_pread (h, big, max_payload + a, 0,
                                        completion (ctx_new ("r", 0, 0)), 0));
    free (big);
  }

  /* alignment */
  if (a > 1) {
    EXPECT_REFUSED (EINVAL, "unaligned pread offset",
                    nbdaio_aio_pread (h, scratch, a, 1,
                                      completion (ctx_new ("r", 0, 0)), 0));
    EXPECT_REFUSED (EINVAL, "unaligned pread length",
                    nbdaio_aio_pread (h, scratch, a / 2, 0,
                                      completion (ctx_new ("r", 0, 0)), 0));
    if (!read_only)
      EXPECT_REFUSED (EINVAL, "unaligned pwrite",
                      nbdaio_aio_pwrite (h, scratch, a, a / 2,
                                         completion (ctx_new ("w", 0, 0)),
                                         0));
  }

  /* flags and commands the server did not advertise */
  if (nbdaio_can_df (h) != 1)
    EXPECT_REFUSED (EINVAL, "DF without can_df",
                    nbdaio_aio_pread_structured (
                      h, scratch, a, 0, NBDAIO_NULL_CHUNK,
                      completion (ctx_new ("r", 0, 0)), NBDAIO_CMD_FLAG_DF));
  EXPECT_REFUSED (EINVAL, "unknown flag bit",
                  nbdaio_aio_pread (h, scratch, a, 0,
                                    completion (ctx_new ("r", 0, 0)),
                                    1u << 7));
  if (nbdaio_can_cache (h) != 1)
    EXPECT_REFUSED (EINVAL, "cache without can_cache",
                    nbdaio_aio_cache (h, a, 0,
                                      completion (ctx_new ("c", 0, 0)), 0));
  if (nbdaio_can_block_status (h) != 1)
    EXPECT_REFUSED (EINVAL, "block status without a meta context",
                    nbdaio_aio_block_status (h, a, 0,
                                             (nbdaio_extent_callback) { 0 },
                                             completion (ctx_new ("b", 0, 0)),
                                             0));
  if (nbdaio_can_flush (h) != 1)
    EXPECT_REFUSED (EINVAL, "flush without can_flush",
                    nbdaio_aio_flush (h, completion (ctx_new ("f", 0, 0)), 0));

  if (read_only) {
    EXPECT_REFUSED (EPERM, "pwrite to a read-only export",
                    nbdaio_aio_pwrite (h, scratch, a, 0,
                                       completion (ctx_new ("w", 0, 0)), 0));
    /* zero/trim: refused; EPERM or EINVAL (not advertised) both fit */
    unsigned long fb = frees_run;
    int64_t r = nbdaio_aio_zero (h, a, 0, completion (ctx_new ("z", 0, 0)), 0);
    int e = nbdaio_get_errno ();
    CHECK (r == -1 && (e == EPERM || e == EINVAL),
           "zero on a read-only export: r=%" PRId64 " errno %s", r,
           strerror (e));
    r = nbdaio_aio_trim (h, a, 0, completion (ctx_new ("t", 0, 0)), 0);
    e = nbdaio_get_errno ();
    CHECK (r == -1 && (e == EPERM || e == EINVAL),
           "trim on a read-only export: r=%" PRId64 " errno %s", r,
           strerror (e));
    CHECK (frees_run == fb + 2, "read-only zero/trim: frees not run once");
  }
  else {
    if (nbdaio_can_fua (h) != 1)
      EXPECT_REFUSED (EINVAL, "FUA write without can_fua",
                      nbdaio_aio_pwrite (h, scratch, a, 0,
                                         completion (ctx_new ("w", 0, 0)),
                                         NBDAIO_CMD_FLAG_FUA));
    if (nbdaio_can_zero (h) != 1)
      EXPECT_REFUSED (EINVAL, "zero without can_zero",
                      nbdaio_aio_zero (h, a, 0,
                                       completion (ctx_new ("z", 0, 0)), 0));
    else if (nbdaio_can_fast_zero (h) != 1)
      EXPECT_REFUSED (EINVAL, "FAST_ZERO without can_fast_zero",
                      nbdaio_aio_zero (h, a, 0,
                                       completion (ctx_new ("z", 0, 0)),
                                       NBDAIO_CMD_FLAG_FAST_ZERO));
    if (nbdaio_can_trim (h) != 1)
      EXPECT_REFUSED (EINVAL, "trim without can_trim",
                      nbdaio_aio_trim (h, a, 0,
                                       completion (ctx_new ("t", 0, 0)), 0));
    EXPECT_REFUSED (EINVAL, "pwrite past the end",
                    nbdaio_aio_pwrite (h, scratch, a, size,
                                       completion (ctx_new ("w", 0, 0)), 0));
  }
  /* with split off, lengths that do not fit the 32-bit wire field are
   * refused even with every local check off (never truncated); with split
   * on (the default) they are split, as the unit and fio-split tests
   * check */
  uint64_t huge = (1ull << 32) + a;
  unsigned saved = nbdaio_get_strict (h);
  nbdaio_set_strict (h, 0);
  if (nbdaio_get_split (h) != 1) {
    if (!read_only && nbdaio_can_zero (h) == 1) {
      unsigned long fb = frees_run;
      int64_t r = nbdaio_aio_zero (h, huge, 0,
                                   completion (ctx_new ("z", 0, 0)), 0);
      CHECK (r == -1, "a zero of 2^32 + %" PRIu64 " bytes was issued", a);
      CHECK (frees_run == fb + 1, "huge zero: free not run once");
    }
    if (!read_only && nbdaio_can_trim (h) == 1) {
      int64_t r = nbdaio_aio_trim (h, huge, 0,
                                   completion (ctx_new ("t", 0, 0)), 0);
      CHECK (r == -1, "a trim of 2^32 + %" PRIu64 " bytes was issued", a);
    }
    if (nbdaio_can_cache (h) == 1) {
      int64_t r = nbdaio_aio_cache (h, huge, 0,
                                    completion (ctx_new ("c", 0, 0)), 0);
      CHECK (r == -1, "a cache of 2^32 + %" PRIu64 " bytes was issued", a);
    }
  }
  nbdaio_set_strict (h, saved);
  drain ();

  CHECK (nbdaio_is_connected (h) == 1, "refusals broke the connection");
}

/* ---- bulk writes and reads ------------------------------------------- */

static uint64_t
chunk_at (uint64_t off)
{
  return len - off < opt.chunk ? len - off : opt.chunk;
}

/* Per-command error seen by the bulk write callbacks: they free their ctx,
 * so errors are recorded here. */
static unsigned long write_errors;

static int
on_write_complete (void *user_data, int *error)
{
  if (*error) {
    struct ctx *c = user_data;
    if (write_errors++ < 5)
      CHECK (0, "write @%" PRIu64 " failed: %s", c->offset,
             strerror (*error));
  }
  return on_complete (user_data, error);
}

/* Write model[0, len) with up to depth writes in flight, every 4th with FUA
 * when advertised. */
static void
bulk_write (void)
{
  int fua = nbdaio_can_fua (h) == 1 && !opt.data_only;
  unsigned long cb0 = callbacks_run, fr0 = frees_run, made0 = contexts_made;
  uint64_t off = 0, n = 0;
  int failed = 0;
  time_t end = time (NULL) + 60;

  while ((off < len || nbdaio_aio_in_flight (h) > 0) && time (NULL) < end) {
    while (off < len && nbdaio_aio_in_flight (h) < (int) opt.depth) {
      uint64_t c = chunk_at (off);
      struct ctx *x = ctx_new ("write", off, c);
      uint32_t flags = fua && n % 4 == 3 ? NBDAIO_CMD_FLAG_FUA : 0;
      nbdaio_completion_callback cb = completion (x);
      cb.callback = on_write_complete;
      int64_t ck = nbdaio_aio_pwrite (h, model + off, c, off, cb, flags);
      if (!CHECK (ck >= 1, "aio_pwrite @%" PRIu64 ": %s", off, lib_error ())) {
        failed = 1;
        break;
      }
      off += c;
      n++;
    }
    if (failed)
      break;
    if (!CHECK (step (1000) != -1, "event loop: %s", lib_error ()))
      break;
  }
  drain ();
  unsigned long made = contexts_made - made0;
  CHECK (callbacks_run - cb0 == (failed ? made - 1 : made),
         "bulk write: %lu callbacks for %lu commands", callbacks_run - cb0,
         made);
  CHECK (frees_run - fr0 == made, "bulk write: %lu frees for %lu contexts",
         frees_run - fr0, made);
  note ("wrote %" PRIu64 " bytes in %" PRIu64 " commands", len, n);
}

/* Read [0, len) into buf with up to depth reads in flight.  Half carry no
 * completion callback and are found with peek_command_completed; the other
 * half have a callback returning 0, so both are retired with
 * command_completed. */
static void
bulk_read (unsigned char *buf, int *cookies_ok)
{
  struct pending { int64_t cookie; struct ctx *c; uint64_t off; } *p;
  size_t np = 0, cap = opt.depth;
  uint64_t off = 0, n = 0;
  time_t end = time (NULL) + 60;

  p = calloc (cap, sizeof *p);
  if (!p)
    die ("out of memory");
  *cookies_ok = 1;
  while ((off < len || np > 0) && time (NULL) < end) {
    while (off < len && np < cap) {
      uint64_t c = chunk_at (off);
      struct ctx *x = NULL;
      nbdaio_completion_callback cb = NBDAIO_NULL_COMPLETION;
      if (n % 2) {
        x = ctx_new ("read", off, c);
        x->retire = 0;
        cb = completion_kept (x);
      }
      int64_t ck = nbdaio_aio_pread (h, buf + off, c, off, cb, 0);
      if (!CHECK (ck >= 1, "aio_pread @%" PRIu64 ": %s", off, lib_error ())) {
        free (x);
        *cookies_ok = 0;
        goto out;
      }
      for (size_t i = 0; i < np; i++)
        if (p[i].cookie == ck)
          *cookies_ok = CHECK (0, "cookie %" PRId64 " handed out twice", ck);
      p[np++] = (struct pending) { ck, x, off };
      off += c;
      n++;
    }
    if (!CHECK (step (1000) != -1, "event loop: %s", lib_error ()))
      goto out;
    int64_t ck;
    while ((ck = nbdaio_aio_peek_command_completed (h)) > 0) {
      size_t i;
      for (i = 0; i < np && p[i].cookie != ck; i++)
        ;
      if (!CHECK (i < np, "peek returned unknown cookie %" PRId64, ck))
        goto out;
      if (p[i].c)
        CHECK (p[i].c->done, "read @%" PRIu64 " completed before its "
               "callback ran", p[i].off);
      int r = nbdaio_aio_command_completed (h, ck);
      CHECK (r == 1, "command_completed(read @%" PRIu64 ") = %d: %s",
             p[i].off, r, r == -1 ? lib_error () : "");
      if (p[i].c) {
        CHECK (p[i].c->error == 0, "read @%" PRIu64 " callback error %s",
               p[i].off, strerror (p[i].c->error));
        free (p[i].c);
      }
      CHECK (nbdaio_aio_command_completed (h, ck) == -1,
             "a retired cookie is still known");
      p[i] = p[--np];
    }
    CHECK (ck == 0 || np == 0, "peek_command_completed returned %" PRId64
           " with %zu commands pending: %s", ck, np, lib_error ());
  }
out:
  CHECK (np == 0, "bulk read: %zu reads never completed", np);
  for (size_t i = 0; i < np; i++)
    free (p[i].c);         /* only reached after a failure */
  free (p);
  drain ();
  note ("read %" PRIu64 " bytes in %" PRIu64 " commands", off, n);
}

static void
verify_all (const char *what)
{
  unsigned char *buf = malloc (len);
  int ok;
  if (!buf)
    die ("out of memory");
  memset (buf, 0xa5, len);
  bulk_read (buf, &ok);
  compare_model (what, buf, 0, len);
  free (buf);
}

/* The size of one read for the single-request checks: up to 1 MiB, within
 * the data path and the payload limit. */
static uint64_t
one_request (void)
{
  uint64_t n = len < 1048576 ? len : 1048576;
  if (n > (uint64_t) max_payload)
    n = max_payload / align * align;
  return n;
}

/* Synchronous read / write of [off, off + n) in requests of opt.chunk. */
static int
read_range (unsigned char *buf, uint64_t off, uint64_t n)
{
  for (uint64_t done = 0; done < n; done += opt.chunk) {
    uint64_t c = n - done < opt.chunk ? n - done : opt.chunk;
    if (nbdaio_pread (h, buf + done, c, off + done, 0) == -1)
      return -1;
  }
  return 0;
}

static int
write_range (const unsigned char *buf, uint64_t off, uint64_t n)
{
  for (uint64_t done = 0; done < n; done += opt.chunk) {
    uint64_t c = n - done < opt.chunk ? n - done : opt.chunk;
    if (nbdaio_pwrite (h, buf + done, c, off + done, 0) == -1)
      return -1;
  }
  return 0;
}

/* ---- structured reads -------------------------------------------------- */

static int
on_chunk (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct ctx *c = user_data;
  (void) error;
  c->chunks++;
  if (status == NBDAIO_READ_ERROR) {
    c->error_chunks++;
    return 0;
  }
  if (offset < c->offset || offset + count > c->offset + c->count ||
      count == 0) {
    CHECK (0, "%s: chunk [%" PRIu64 ", +%zu) outside the request [%" PRIu64
           ", +%" PRIu64 ")", c->what, offset, count, c->offset, c->count);
    return 0;
  }
  CHECK (subbuf == c->buf + (offset - c->offset), "%s: subbuf does not "
         "point into the caller's buffer at the chunk's offset", c->what);
  for (size_t i = 0; i < count; i++) {
    unsigned char *cov = &c->covered[offset - c->offset + i];
    if (*cov) {
      CHECK (0, "%s: chunks overlap at %" PRIu64, c->what, offset + i);
      break;
    }
    *cov = 1;
  }
  if (status == NBDAIO_READ_HOLE) {
    c->holes++;
    CHECK (is_zero (subbuf, count), "%s: hole chunk at %" PRIu64
           " not zeroed", c->what, offset);
  }
  else if (status == NBDAIO_READ_DATA)
    c->data_chunks++;
  else
    CHECK (0, "%s: chunk status %u", c->what, status);
  if (model_known && offset + count <= len)
    compare_model (c->what, subbuf, offset, count);
  return 0;
}

/* aio_pread_structured of [off, off+n): returns the finished ctx (caller
 * frees) after checking completeness of the chunks on success. */
static struct ctx *
structured_read (const char *what, uint64_t off, uint64_t n, uint32_t flags,
                 int expect_error)
{
  struct ctx *c = ctx_new (what, off, n);
  c->buf = malloc (n);
  c->covered = calloc (1, n);
  if (!c->buf || !c->covered)
    die ("out of memory");
  memset (c->buf, 0xa5, n);
  nbdaio_chunk_callback chunk = { .callback = on_chunk, .user_data = c };
  int64_t ck = nbdaio_aio_pread_structured (h, c->buf, n, off, chunk,
                                            completion_kept (c), flags);
  if (!CHECK (ck >= 1, "%s: aio_pread_structured: %s", what, lib_error ())) {
    free (c->buf);
    free (c->covered);
    free (c);
    return NULL;
  }
  wait_done (c);
  drain ();
  if (expect_error)
    CHECK (c->error == expect_error, "%s: finished with %s, expected %s",
           what, strerror (c->error), strerror (expect_error));
  else if (CHECK (c->error == 0, "%s: failed: %s", what,
                  strerror (c->error))) {
    CHECK (memchr (c->covered, 0, n) == NULL,
           "%s: chunks did not cover the whole request (%u chunks)", what,
           c->chunks);
    CHECK (c->error_chunks == 0, "%s: error chunk on a successful read",
           what);
    if (!sr)
      CHECK (c->chunks == 1 && c->data_chunks == 1,
             "%s: simple reply: expected one data chunk, got %u chunks",
             what, c->chunks);
    compare_model (what, c->buf, off, n);
  }
  return c;
}

static void
free_ctx (struct ctx *c)
{
  if (c) {
    free (c->buf);
    free (c->covered);
    free (c);
  }
}

static void
test_structured (void)
{
  uint64_t n = one_request ();
  free_ctx (structured_read ("structured read", 0, n, 0, 0));

  /* the synchronous wrapper with the same chunk checks */
  struct ctx *c = ctx_new ("sync structured read", 0, n);
  c->buf = malloc (n);
  c->covered = calloc (1, n);
  if (!c->buf || !c->covered)
    die ("out of memory");
  nbdaio_chunk_callback chunk = { .callback = on_chunk, .user_data = c };
  if (CHECK (nbdaio_pread_structured (h, c->buf, n, 0, chunk, 0) == 0,
             "pread_structured: %s", lib_error ())) {
    CHECK (memchr (c->covered, 0, n) == NULL,
           "pread_structured: chunks did not cover the request");
    compare_model ("pread_structured", c->buf, 0, n);
  }
  free_ctx (c);

  if (nbdaio_can_df (h) == 1) {
    c = structured_read ("DF read", 0, n, NBDAIO_CMD_FLAG_DF, 0);
    if (c)
      CHECK (c->chunks == 1, "DF read: %u chunks, expected 1", c->chunks);
    free_ctx (c);
  }
}

/* The export has just been created: reading it must show holes (qemu-nbd on
 * a sparse raw file answers with OFFSET_HOLE chunks). */
static void
test_expect_hole (void)
{
  uint64_t n = one_request ();
  int saved = model_known;
  model_known = 0;
  struct ctx *c = structured_read ("hole read", 0, n, 0, 0);
  model_known = saved;
  if (c) {
    CHECK (c->holes > 0, "hole read: no HOLE chunk (%u chunks)", c->chunks);
    CHECK (is_zero (c->buf, n), "hole read: data not all zero");
  }
  free_ctx (c);
}

/* ---- zero, trim, cache, flush, block status ----------------------------- */

/* A sub-range of [0, len): slot i of 8, aligned; 0 length if too small. */
static void
range (int i, uint64_t *off, uint64_t *n)
{
  uint64_t a = align < 512 ? 512 : align;
  uint64_t s = len / 8 / a * a;
  *off = s * i;
  *n = s;
}

/* Issue a command through fn and wait; returns the completion error. */
static int
run_cmd (const char *what, int64_t cookie, struct ctx *c)
{
  if (!CHECK (cookie >= 1, "%s: issuing failed: %s", what, lib_error ())) {
    return -1;
  }
  wait_done (c);
  drain ();
  return c->error;
}

static void
check_zero_range (const char *what, uint64_t off, uint64_t n)
{
  unsigned char *b = malloc (n);
  if (!b)
    die ("out of memory");
  memset (b, 0xa5, n);
  if (CHECK (read_range (b, off, n) == 0, "%s: read back: %s", what,
             lib_error ()))
    CHECK (is_zero (b, n), "%s: range [%" PRIu64 ", +%" PRIu64 ") does not "
           "read back as zeros", what, off, n);
  free (b);
}

static void
test_zero_trim (void)
{
  uint64_t off, n;
  range (1, &off, &n);
  if (n == 0)
    return;

  if (nbdaio_can_zero (h) == 1) {
    struct ctx *c = ctx_new ("zero", off, n);
    c->retire = 1;
    int e = run_cmd ("zero", nbdaio_aio_zero (h, n, off, completion_kept (c),
                                              0), c);
    if (CHECK (e == 0, "zero: %s", strerror (e))) {
      memset (model + off, 0, n);
      check_zero_range ("zero", off, n);
    }
    free (c);

    range (2, &off, &n);
    c = ctx_new ("zero NO_HOLE", off, n);
    e = run_cmd ("zero NO_HOLE",
                 nbdaio_aio_zero (h, n, off, completion_kept (c),
                                  NBDAIO_CMD_FLAG_NO_HOLE), c);
    if (CHECK (e == 0, "zero NO_HOLE: %s", strerror (e))) {
      memset (model + off, 0, n);
      check_zero_range ("zero NO_HOLE", off, n);
    }
    free (c);

    if (nbdaio_can_fast_zero (h) == 1) {
      range (3, &off, &n);
      c = ctx_new ("fast zero", off, n);
      e = run_cmd ("fast zero",
                   nbdaio_aio_zero (h, n, off, completion_kept (c),
                                    NBDAIO_CMD_FLAG_FAST_ZERO), c);
      /* a server may refuse a fast zero it cannot do quickly */
      if (e == ENOTSUP || e == EOPNOTSUPP)
        note ("fast zero refused by the server (allowed)");
      else if (CHECK (e == 0, "fast zero: %s", strerror (e))) {
        memset (model + off, 0, n);
        check_zero_range ("fast zero", off, n);
      }
      free (c);
    }
  }

  if (nbdaio_can_trim (h) == 1) {
    range (5, &off, &n);
    struct ctx *c = ctx_new ("trim", off, n);
    int e = run_cmd ("trim", nbdaio_aio_trim (h, n, off, completion_kept (c),
                                              0), c);
    CHECK (e == 0, "trim: %s", strerror (e));
    free (c);
    /* contents after a trim are unspecified: read must work; then put
     * new data there (synchronous wrapper) and remember it */
    unsigned char *b = malloc (n);
    if (!b)
      die ("out of memory");
    CHECK (read_range (b, off, n) == 0, "read after trim: %s", lib_error ());
    pattern_fill (model + off, off, n, opt.seed + 1000);
    CHECK (write_range (model + off, off, n) == 0, "pwrite after trim: %s",
           lib_error ());
    free (b);
  }
}

static void
test_cache_flush (void)
{
  uint64_t n = one_request ();
  if (nbdaio_can_cache (h) == 1) {
    struct ctx *c = ctx_new ("cache", 0, n);
    int e = run_cmd ("cache", nbdaio_aio_cache (h, n, 0, completion_kept (c),
                                                0), c);
    CHECK (e == 0, "cache: %s", strerror (e));
    free (c);
    CHECK (nbdaio_cache (h, n, 0, 0) == 0, "sync cache: %s", lib_error ());
  }
  if (nbdaio_can_flush (h) == 1) {
    struct ctx *c = ctx_new ("flush", 0, 0);
    int e = run_cmd ("flush", nbdaio_aio_flush (h, completion_kept (c), 0), c);
    CHECK (e == 0, "flush: %s", strerror (e));
    free (c);
    CHECK (nbdaio_flush (h, 0) == 0, "sync flush: %s", lib_error ());
  }
}

struct extents {
  const char *what;
  uint64_t start, next;         /* requested offset, end of the last extent */
  unsigned calls, entries;
  int problem;
};

static int
on_extent (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct extents *x = user_data;
  const char *want = nbdaio_get_meta_context (h);
  (void) error;
  x->calls++;
  if (!CHECK (want && metacontext && strcmp (want, metacontext) == 0,
              "%s: extent callback for context '%s', negotiated '%s'",
              x->what, metacontext ? metacontext : "(null)",
              want ? want : "(null)"))
    return 0;
  CHECK (offset == x->start, "%s: extents start at %" PRIu64 ", asked %"
         PRIu64, x->what, offset, x->start);
  if (!CHECK (nr_entries > 0 && nr_entries % 2 == 0, "%s: %zu entries",
              x->what, nr_entries))
    return 0;
  uint64_t p = offset;
  for (size_t i = 0; i < nr_entries; i += 2) {
    uint32_t l = entries[i], fl = entries[i + 1];
    CHECK (l > 0, "%s: zero-length extent at %" PRIu64, x->what, p);
    /* whatever the server calls zero must read as zeros */
    if (strcmp (metacontext, "base:allocation") == 0 &&
        (fl & NBDAIO_STATE_ZERO) && model_known && p < len) {
      uint64_t e = p + l > len ? len : p + l;
      CHECK (is_zero (model + p, e - p), "%s: extent [%" PRIu64 ", +%" PRIu32
             ") reported zero but holds data", x->what, p, l);
    }
    p += l;
    x->entries++;
  }
  x->next = p;
  return 0;
}

static void
test_block_status (void)
{
  if (nbdaio_can_block_status (h) != 1)
    return;
  uint64_t n = len > 0xffffffffu ? 0xffffffffu / align * align : len;
  struct extents x = { .what = "block status", .start = 0 };
  nbdaio_extent_callback cb = { .callback = on_extent, .user_data = &x };
  if (CHECK (nbdaio_block_status (h, n, 0, cb, 0) == 0, "block status: %s",
             lib_error ())) {
    CHECK (x.calls == 1, "block status: %u extent callbacks, expected 1",
           x.calls);
    CHECK (x.next > 0, "block status: no progress");
  }

  uint64_t off, rn;
  range (4, &off, &rn);
  if (rn == 0)
    return;
  struct extents y = { .what = "block status REQ_ONE", .start = off };
  cb.user_data = &y;
  if (CHECK (nbdaio_block_status (h, rn, off, cb, NBDAIO_CMD_FLAG_REQ_ONE)
             == 0, "block status REQ_ONE: %s", lib_error ()))
    CHECK (y.calls == 1 && y.entries == 1,
           "block status REQ_ONE: %u callbacks, %u extents", y.calls,
           y.entries);
}

/* ---- errors delivered by the server ------------------------------------- */

static void
test_error_file (void)
{
  uint64_t n = len < opt.chunk ? len : opt.chunk;
  FILE *fp = fopen (opt.error_file, "w");
  if (!fp)
    die ("creating %s: %m", opt.error_file);
  fclose (fp);

  struct ctx *c = ctx_new ("read with injected EIO", 0, n);
  unsigned char *b = malloc (n);
  if (!b)
    die ("out of memory");
  c->retire = 0;
  int64_t ck = nbdaio_aio_pread (h, b, n, 0, completion_kept (c), 0);
  if (CHECK (ck >= 1, "aio_pread: %s", lib_error ())) {
    wait_done (c);
    CHECK (c->error == EIO, "injected EIO: callback saw %s",
           strerror (c->error));
    int r = nbdaio_aio_command_completed (h, ck);
    CHECK (r == -1 && nbdaio_get_errno () == EIO,
           "injected EIO: command_completed %d errno %s", r,
           strerror (nbdaio_get_errno ()));
  }
  free (c);
  CHECK (nbdaio_pread (h, b, n, 0, 0) == -1 && nbdaio_get_errno () == EIO,
         "sync pread with injected EIO: errno %s",
         strerror (nbdaio_get_errno ()));
  free_ctx (structured_read ("structured read with injected EIO", 0, n, 0,
                             EIO));
  CHECK (nbdaio_is_connected (h) == 1, "an EIO reply ended the connection");

  unlink (opt.error_file);
  if (CHECK (nbdaio_pread (h, b, n, 0, 0) == 0,
             "read after the error stopped: %s", lib_error ()))
    compare_model ("read after the error stopped", b, 0, n);
  free (b);
}

/* With the local alignment check off, the server itself must refuse. */
static void
test_server_align_error (void)
{
  unsigned saved = nbdaio_get_strict (h);
  CHECK (nbdaio_set_strict (h, saved & ~NBDAIO_STRICT_ALIGN) == 0,
         "set_strict: %s", lib_error ());
  struct ctx *c = ctx_new ("unaligned read sent to the server", 1, 512);
  int e = run_cmd (c->what, nbdaio_aio_pread (h, scratch, 512, 1,
                                              completion_kept (c), 0), c);
  CHECK (e == EINVAL, "server-side unaligned read: %s, expected EINVAL",
         strerror (e));
  free (c);
  CHECK (nbdaio_set_strict (h, saved) == 0, "set_strict restore");
  CHECK (nbdaio_get_strict (h) == saved, "get_strict after restore");
  CHECK (nbdaio_is_connected (h) == 1, "refused request ended the connection");
}

/* One request as large as the data path and the payload limit allow. */
static void
test_big_read (void)
{
  uint64_t n = len < (uint64_t) max_payload ? len : (uint64_t) max_payload;
  n -= n % align;
  unsigned char *b = malloc (n);
  if (!b)
    die ("out of memory");
  if (CHECK (nbdaio_pread (h, b, n, 0, 0) == 0, "pread of %" PRIu64
             " bytes: %s", n, lib_error ()))
    compare_model ("big read", b, 0, n);
  free (b);
}

/* With the local bounds check off, the server must refuse a read past the
 * end with an error reply, and the connection must survive it. */
static void
test_server_bounds_error (void)
{
  unsigned saved = nbdaio_get_strict (h);
  uint64_t a = align < 512 ? 512 : align;
  CHECK (nbdaio_set_strict (h, saved & ~NBDAIO_STRICT_BOUNDS) == 0,
         "set_strict: %s", lib_error ());
  struct ctx *c = ctx_new ("read past the end sent to the server", size, a);
  int e = run_cmd (c->what, nbdaio_aio_pread (h, scratch, a, size,
                                              completion_kept (c), 0), c);
  CHECK (e == EINVAL, "%s: %s, expected EINVAL", c->what, strerror (e));
  free (c);
  c = structured_read ("structured read past the end", size - a, 2 * a, 0,
                       EINVAL);
  free_ctx (c);
  CHECK (nbdaio_set_strict (h, saved) == 0, "set_strict restore");
  CHECK (nbdaio_is_connected (h) == 1, "an error reply ended the connection");
  unsigned char *b = malloc (a);
  if (!b)
    die ("out of memory");
  CHECK (nbdaio_pread (h, b, a, 0, 0) == 0, "read after the error: %s",
         lib_error ());
  free (b);
}

/* The server dies with reads in flight (it delays reads): every command
 * must complete exactly once with ENOTCONN, and the handle must say why. */
static void
test_server_dies (void)
{
  enum { N = 16 };
  static struct ctx cs[N];
  static unsigned char bufs[N][512];
  unsigned long fr0 = frees_run;
  int issued = 0;
  for (int i = 0; i < N; i++) {
    cs[i] = (struct ctx) { .what = "read when the server dies", .retire = 1 };
    nbdaio_completion_callback cb = {
      .callback = on_complete, .user_data = &cs[i],
      .free = on_free_count_only,
    };
    if (CHECK (nbdaio_aio_pread (h, bufs[i], 512, 512 * i, cb, 0) >= 1,
               "aio_pread: %s", lib_error ()))
      issued++;
  }
  CHECK (nbdaio_aio_submit (h) >= 0, "submit: %s", lib_error ());
  /* give the requests time to reach the server, then kill it */
  for (int i = 0; i < 3; i++)
    nbdaio_poll (h, 100);
  CHECK (nbdaio_aio_in_flight (h) == issued, "%d in flight before the kill, "
         "expected %d (is the server delaying reads?)",
         nbdaio_aio_in_flight (h), issued);
  if (kill (opt.kill_pid, SIGKILL) == -1)
    die ("kill %d: %m", opt.kill_pid);

  time_t end = time (NULL) + 30;
  while (nbdaio_aio_in_flight (h) > 0 && time (NULL) < end)
    if (nbdaio_poll (h, 1000) == -1)
      break;
  CHECK (nbdaio_aio_in_flight (h) == 0, "%d commands still in flight after "
         "the server died", nbdaio_aio_in_flight (h));
  for (int i = 0; i < issued; i++) {
    CHECK (cs[i].done, "command %d never completed", i);
    CHECK (cs[i].error == ENOTCONN, "command %d ended with %s, expected "
           "ENOTCONN", i, strerror (cs[i].error));
  }
  CHECK (frees_run - fr0 == N, "%lu frees for %d commands", frees_run - fr0,
         N);
  CHECK (nbdaio_is_connected (h) == 0, "still connected after the server "
         "died");
  const char *why = nbdaio_get_connection_error (h);
  CHECK (why != NULL, "no connection error after the server died");
  note ("connection error: %s", why ? why : "(none)");
  unsigned char b[512];
  unsigned long fb = frees_run;
  struct ctx *c = ctx_new ("read after death", 0, 512);
  int64_t r = nbdaio_aio_pread (h, b, 512, 0, completion (c), 0);
  CHECK (r == -1 && nbdaio_get_errno () == ENOTCONN,
         "issuing on a dead connection: r=%" PRId64 " errno %s", r,
         strerror (nbdaio_get_errno ()));
  CHECK (frees_run == fb + 1, "issuing on a dead connection: free not run");
  nbdaio_close (h);
}

/* The server answers a read with ESHUTDOWN (nbdkit error filter): the
 * command fails with it, and the handle accepts no new command after. */
static void
test_server_eshutdown (void)
{
  unsigned char b[512];
  FILE *fp = fopen (opt.shutdown_file, "w");
  if (!fp)
    die ("creating %s: %m", opt.shutdown_file);
  fclose (fp);
  struct ctx *c = ctx_new ("read answered ESHUTDOWN", 0, sizeof b);
  int e = run_cmd (c->what, nbdaio_aio_pread (h, b, sizeof b, 0,
                                              completion_kept (c), 0), c);
  CHECK (e == ESHUTDOWN, "%s: %s, expected ESHUTDOWN", c->what, strerror (e));
  free (c);
  unlink (opt.shutdown_file);
  unsigned long fb = frees_run;
  int64_t r = nbdaio_aio_pread (h, b, sizeof b, 0,
                                completion (ctx_new ("after", 0, 0)), 0);
  int err = nbdaio_get_errno ();
  CHECK (r == -1 && (err == ESHUTDOWN || err == ENOTCONN),
         "a read issued after ESHUTDOWN: r=%" PRId64 " errno %s", r,
         strerror (err));
  CHECK (frees_run == fb + 1, "read after ESHUTDOWN: free not run once");
  time_t end = time (NULL) + 30;
  while (nbdaio_is_connected (h) == 1 && time (NULL) < end)
    if (nbdaio_poll (h, 1000) == -1)
      break;
  CHECK (nbdaio_is_connected (h) == 0, "still connected 30 s after "
         "ESHUTDOWN");
  CHECK (nbdaio_aio_in_flight (h) == 0, "commands left in flight");
  nbdaio_close (h);
}

/* Graceful aio_disconnect with reads in flight: they still complete, new
 * commands are refused, the connection then ends. */
static void
test_aio_disconnect (void)
{
  struct nbdaio_handle *h2 = new_handle ();
  if (!h2 || nbdaio_connect_uri (h2, opt.uri) == -1) {
    CHECK (0, "third connection: %s", lib_error ());
    nbdaio_close (h2);
    return;
  }
  enum { N = 4 };
  static struct ctx cs[N];
  static unsigned char bufs[N][4096];
  uint64_t n = align > 4096 ? 0 : 4096;
  int issued = 0;
  for (int i = 0; n && (uint64_t) size >= n && i < N; i++) {
    cs[i] = (struct ctx) { .what = "read before disconnect", .retire = 1 };
    nbdaio_completion_callback cb = {
      .callback = on_complete, .user_data = &cs[i],
      .free = on_free_count_only,
    };
    if (CHECK (nbdaio_aio_pread (h2, bufs[i], n, 0, cb, 0) >= 1,
               "aio_pread: %s", lib_error ()))
      issued++;
  }
  CHECK (nbdaio_aio_disconnect (h2) == 0, "aio_disconnect: %s", lib_error ());
  CHECK (nbdaio_aio_pread (h2, bufs[0], 512, 0, NBDAIO_NULL_COMPLETION, 0)
         == -1, "a read issued after aio_disconnect was accepted");
  time_t end = time (NULL) + 30;
  while (nbdaio_is_connected (h2) == 1 && time (NULL) < end)
    if (nbdaio_poll (h2, 1000) == -1)
      break;
  CHECK (nbdaio_is_connected (h2) == 0, "still connected 30 s after "
         "aio_disconnect");
  for (int i = 0; i < issued; i++) {
    CHECK (cs[i].done, "disconnect: read %d never completed", i);
    CHECK (cs[i].error == 0, "disconnect: read %d failed: %s", i,
           strerror (cs[i].error));
    if (model_known && n <= len)
      compare_model ("read before disconnect", bufs[i], 0, n);
  }
  CHECK (nbdaio_get_connection_error (h2) == NULL,
         "clean disconnect left a connection error: %s",
         nbdaio_get_connection_error (h2));
  nbdaio_close (h2);
}

/* ---- closing with commands in flight ------------------------------------ */

static void
test_close_in_flight (void)
{
  enum { N = 8 };
  struct nbdaio_handle *h2 = new_handle ();
  if (!h2 || nbdaio_set_max_in_flight (h2, N) == -1 ||
      nbdaio_connect_uri (h2, opt.uri) == -1) {
    CHECK (0, "second connection: %s", lib_error ());
    nbdaio_close (h2);
    return;
  }
  static struct ctx cs[N];
  static unsigned char bufs[N][512];
  unsigned long fr0 = frees_run;
  int issued = 0;
  uint64_t n = align > 512 ? 0 : 512;
  if (n == 0 || (uint64_t) size < n) {
    nbdaio_close (h2);
    return;
  }
  for (int i = 0; i < N; i++) {
    cs[i] = (struct ctx) { .what = "read closed in flight", .retire = 1 };
    nbdaio_completion_callback cb = {
      .callback = on_complete, .user_data = &cs[i],
      .free = on_free_count_only,
    };
    if (CHECK (nbdaio_aio_pread (h2, bufs[i], n, 0, cb, 0) >= 1,
               "aio_pread on 2nd handle: %s", lib_error ()))
      issued++;
  }
  /* the limit: one more is refused with EAGAIN (free still runs once) */
  unsigned long fb = frees_run;
  struct ctx *extra = ctx_new ("read beyond max in flight", 0, n);
  int64_t r = nbdaio_aio_pread (h2, scratch, n, 0, completion (extra), 0);
  CHECK (r == -1 && nbdaio_get_errno () == EAGAIN,
         "read beyond max_in_flight: r=%" PRId64 " errno %s", r,
         strerror (nbdaio_get_errno ()));
  CHECK (frees_run == fb + 1, "read beyond max_in_flight: free not run once");
  fr0 = frees_run;
  nbdaio_close (h2);          /* nothing was sent: all must end ENOTCONN */
  CHECK (frees_run - fr0 == N, "close: %lu frees for %d commands",
         frees_run - fr0, N);
  for (int i = 0; i < issued; i++) {
    CHECK (cs[i].done, "close: command %d never completed", i);
    CHECK (cs[i].error == ENOTCONN, "close: command %d ended with %s", i,
           strerror (cs[i].error));
  }
}

/* ---- main --------------------------------------------------------------- */

static void
usage (void)
{
  printf ("usage: roundtrip [options] URI\n"
          "  --expect-readonly | --expect-writable\n"
          "  --expect-sr=0|1          structured replies negotiated or not\n"
          "  --expect-min-block=N     advertised minimum block size (0 none)\n"
          "  --expect-size=N          export size\n"
          "  --expect-protocol=NAME   newstyle-fixed, newstyle, oldstyle\n"
          "  --expect-hole            a fresh export reads as HOLE chunks\n"
          "  --server-align-error     with local alignment checks off, the\n"
          "                           server refuses unaligned I/O (EINVAL)\n"
          "  --error-file=FILE        reads fail with EIO while FILE exists\n"
          "                           (nbdkit error filter error-pread-file)\n"
          "  --compare-file=FILE      the export must start with FILE's data\n"
          "  --write-pattern=FILE     store what [0, length) must contain\n"
          "  --no-write               do not write (read-only checks only)\n"
          "  --data-only              only reads and plain writes: no FUA,\n"
          "                           flush, zero, trim, cache (for servers\n"
          "                           that advertise them but refuse them)\n"
          "  --request-sr=0|1         ask for structured replies (default 1)\n"
          "  --meta-context=NAME|none context to negotiate\n"
          "  --length=N --chunk=N --depth=N --seed=N   data path shape\n"
          "  --server-bounds-error    with local bounds checks off, the\n"
          "                           server refuses a read past the end\n"
          "  --eshutdown-file=FILE    only: reads answer ESHUTDOWN while\n"
          "                           FILE exists; expect a soft disconnect\n"
          "  --kill-server=PID        only: issue reads (the server must\n"
          "                           delay them), kill PID, expect ENOTCONN\n"
          "  --set NAME=VALUE         nbdaio_set_option on every handle\n"
          "  --expect-tls=0|1         TLS negotiated or not\n"
          "  -v                       verbose\n");
}

static int64_t
num (const char *s, const char *name)
{
  char *end;
  errno = 0;
  long long v = strtoll (s, &end, 0);
  if (errno || *end || v < 0)
    die ("bad number for %s: '%s'", name, s);
  return v;
}

static void
parse_args (int argc, char *argv[])
{
  enum { O_RO = 256, O_RW, O_SR, O_MINB, O_SIZE, O_PROTO, O_HOLE, O_SALIGN,
         O_ERRF, O_CMPF, O_WPAT, O_NOW, O_RSR, O_META, O_LEN, O_CHUNK,
         O_DEPTH, O_SEED, O_HELP, O_NOFUA, O_SBOUNDS, O_KILL, O_ESHUT,
         O_SET, O_TLS };
  static const struct option lo[] = {
    { "expect-readonly", no_argument, 0, O_RO },
    { "expect-writable", no_argument, 0, O_RW },
    { "expect-sr", required_argument, 0, O_SR },
    { "expect-min-block", required_argument, 0, O_MINB },
    { "expect-size", required_argument, 0, O_SIZE },
    { "expect-protocol", required_argument, 0, O_PROTO },
    { "expect-hole", no_argument, 0, O_HOLE },
    { "server-align-error", no_argument, 0, O_SALIGN },
    { "error-file", required_argument, 0, O_ERRF },
    { "compare-file", required_argument, 0, O_CMPF },
    { "write-pattern", required_argument, 0, O_WPAT },
    { "no-write", no_argument, 0, O_NOW },
    { "data-only", no_argument, 0, O_NOFUA },
    { "server-bounds-error", no_argument, 0, O_SBOUNDS },
    { "kill-server", required_argument, 0, O_KILL },
    { "eshutdown-file", required_argument, 0, O_ESHUT },
    { "request-sr", required_argument, 0, O_RSR },
    { "meta-context", required_argument, 0, O_META },
    { "length", required_argument, 0, O_LEN },
    { "chunk", required_argument, 0, O_CHUNK },
    { "depth", required_argument, 0, O_DEPTH },
    { "seed", required_argument, 0, O_SEED },
    { "set", required_argument, 0, O_SET },
    { "expect-tls", required_argument, 0, O_TLS },
    { "help", no_argument, 0, O_HELP },
    { 0 }
  };
  int c;
  while ((c = getopt_long (argc, argv, "v", lo, NULL)) != -1) {
    switch (c) {
    case O_RO: opt.expect_readonly = 1; break;
    case O_RW: opt.expect_readonly = 0; break;
    case O_SR: opt.expect_sr = num (optarg, "--expect-sr") != 0; break;
    case O_MINB: opt.expect_min_block = num (optarg, "--expect-min-block");
      break;
    case O_SIZE: opt.expect_size = num (optarg, "--expect-size"); break;
    case O_PROTO: opt.expect_protocol = optarg; break;
    case O_HOLE: opt.expect_hole = 1; break;
    case O_SALIGN: opt.server_align_error = 1; break;
    case O_ERRF: opt.error_file = optarg; break;
    case O_CMPF: opt.compare_file = optarg; break;
    case O_WPAT: opt.write_pattern = optarg; break;
    case O_NOW: opt.no_write = 1; break;
    case O_NOFUA: opt.data_only = 1; break;
    case O_SBOUNDS: opt.server_bounds_error = 1; break;
    case O_KILL: opt.kill_pid = num (optarg, "--kill-server"); break;
    case O_ESHUT: opt.shutdown_file = optarg; break;
    case O_RSR: opt.request_sr = num (optarg, "--request-sr") != 0; break;
    case O_META:
      if (strcmp (optarg, "none") == 0)
        opt.no_meta = 1;
      else
        opt.meta_context = optarg;
      break;
    case O_LEN: opt.length = num (optarg, "--length"); break;
    case O_CHUNK: opt.chunk = num (optarg, "--chunk"); break;
    case O_DEPTH: opt.depth = num (optarg, "--depth"); break;
    case O_SEED: opt.seed = num (optarg, "--seed"); break;
    case 'v': opt.verbose = 1; break;
    case O_SET:
      if (!strchr (optarg, '=') || opt.nsettings == 16)
        die ("--set wants NAME=VALUE (at most 16): '%s'", optarg);
      opt.settings[opt.nsettings++] = optarg;
      break;
    case O_TLS: opt.expect_tls = num (optarg, "--expect-tls") != 0; break;
    case O_HELP: usage (); exit (0);
    default: usage (); exit (2);
    }
  }
  if (optind != argc - 1) {
    usage ();
    exit (2);
  }
  opt.uri = argv[optind];
  if (opt.chunk == 0 || opt.depth == 0)
    die ("--chunk and --depth must be > 0");
}

static void
connect_and_check (void)
{
  h = new_handle ();
  if (!h)
    die ("nbdaio_create: %s", lib_error ());
  if (nbdaio_set_request_structured_replies (h, opt.request_sr) == -1 ||
      (opt.no_meta && nbdaio_set_meta_context (h, NULL) == -1) ||
      (opt.meta_context && nbdaio_set_meta_context (h, opt.meta_context) == -1)
      || nbdaio_set_connect_timeout (h, 20000) == -1)
    die ("settings: %s", lib_error ());
  if (nbdaio_connect_uri (h, opt.uri) == -1)
    die ("connect %s: %s (errno %s)", opt.uri, lib_error (),
         strerror (nbdaio_get_errno ()));
  CHECK (nbdaio_is_connected (h) == 1, "not connected after connect");
  CHECK (opt.expect_tls == -1 || nbdaio_get_tls_negotiated (h) ==
         opt.expect_tls, "TLS negotiated: %d, expected %d",
         nbdaio_get_tls_negotiated (h), opt.expect_tls);
  CHECK (nbdaio_connect_uri (h, opt.uri) == -1 &&
         nbdaio_get_errno () == EINVAL, "a second connect did not fail "
         "with EINVAL");
  CHECK (nbdaio_set_export_name (h, "x") == -1 &&
         nbdaio_get_errno () == EINVAL,
         "set_export_name after connect did not fail with EINVAL");
  CHECK (nbdaio_get_fd (h) >= 0, "get_fd: %d", nbdaio_get_fd (h));

  size = nbdaio_get_size (h);
  if (size <= 0)
    die ("export size %" PRId64 ": %s", size, lib_error ());
  read_only = nbdaio_is_read_only (h) == 1;
  sr = nbdaio_get_structured_replies_negotiated (h) == 1;
  int64_t mb = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  CHECK (mb >= 0, "get_block_size: %s", lib_error ());
  align = mb > 1 ? (uint64_t) mb : 1;
  max_payload = nbdaio_get_max_payload (h);
  CHECK (max_payload > 0, "max payload %" PRId64, max_payload);
  const char *proto = nbdaio_get_protocol (h);
  note ("connected: %s, size %" PRId64 ", %s, sr=%d, min block %" PRId64
        ", max payload %" PRId64 ", meta context %s, flags 0x%x/0x%x",
        proto ? proto : "?", size, read_only ? "read-only" : "writable", sr,
        mb, max_payload, nbdaio_get_meta_context (h) ?
        nbdaio_get_meta_context (h) : "none",
        nbdaio_get_handshake_flags (h), nbdaio_get_transmission_flags (h));

  CHECK (nbdaio_can_write (h) == !read_only, "can_write disagrees with "
         "is_read_only");
  /* the public flag constants as real servers set them */
  int tflags = nbdaio_get_transmission_flags (h);
  CHECK (tflags & NBDAIO_FLAG_HAS_FLAGS, "transmission flags 0x%x without "
         "NBDAIO_FLAG_HAS_FLAGS", tflags);
  CHECK (!(tflags & NBDAIO_FLAG_READ_ONLY) == !read_only, "transmission "
         "flags 0x%x disagree with is_read_only %d", tflags, read_only);
  CHECK (!(tflags & NBDAIO_FLAG_SEND_FLUSH) == !nbdaio_can_flush (h),
         "transmission flags 0x%x disagree with can_flush", tflags);
  if (proto && strcmp (proto, "newstyle-fixed") == 0)
    CHECK (nbdaio_get_handshake_flags (h) &
           NBDAIO_HANDSHAKE_FLAG_FIXED_NEWSTYLE, "handshake flags 0x%x "
           "without NBDAIO_HANDSHAKE_FLAG_FIXED_NEWSTYLE",
           nbdaio_get_handshake_flags (h));
  if (opt.expect_readonly != -1)
    CHECK (read_only == opt.expect_readonly, "read-only is %d, expected %d",
           read_only, opt.expect_readonly);
  if (opt.expect_sr != -1)
    CHECK (sr == opt.expect_sr, "structured replies %d, expected %d", sr,
           opt.expect_sr);
  if (opt.expect_min_block != -1)
    CHECK (mb == opt.expect_min_block, "minimum block size %" PRId64
           ", expected %" PRId64, mb, opt.expect_min_block);
  if (opt.expect_size != -1)
    CHECK (size == opt.expect_size, "size %" PRId64 ", expected %" PRId64,
           size, opt.expect_size);
  if (opt.meta_context)
    CHECK (nbdaio_get_meta_context (h) &&
           strcmp (nbdaio_get_meta_context (h), opt.meta_context) == 0,
           "meta context %s, asked for %s", nbdaio_get_meta_context (h) ?
           nbdaio_get_meta_context (h) : "(none)", opt.meta_context);
  if (opt.no_meta)
    CHECK (nbdaio_get_meta_context (h) == NULL &&
           nbdaio_can_block_status (h) == 0,
           "a meta context was negotiated although none was asked for");
  if (opt.expect_protocol)
    CHECK (proto && strcmp (proto, opt.expect_protocol) == 0,
           "protocol %s, expected %s", proto ? proto : "(null)",
           opt.expect_protocol);
  if (!sr)
    CHECK (nbdaio_can_df (h) != 1 && nbdaio_can_block_status (h) != 1,
           "DF or block status without structured replies");

  /* what the data path covers */
  len = opt.length ? opt.length : 16 * 1024 * 1024;
  if (len > (uint64_t) size)
    len = size;
  len -= len % align;
  if (opt.chunk % align)
    opt.chunk += align - opt.chunk % align;
  if ((int64_t) opt.chunk > max_payload)
    opt.chunk = max_payload / align * align;
  if (len == 0 || opt.chunk == 0)
    die ("export too small to test (%" PRId64 " bytes, block %" PRIu64 ")",
         size, align);
}

static void
load_compare_file (void)
{
  FILE *fp = fopen (opt.compare_file, "rb");
  if (!fp)
    die ("%s: %m", opt.compare_file);
  size_t got = fread (model, 1, len, fp);
  if (ferror (fp))
    die ("reading %s: %m", opt.compare_file);
  fclose (fp);
  if (got < len) {
    note ("%s has %zu bytes: checking only those", opt.compare_file, got);
    len = got - got % align;
    if (len == 0)
      die ("%s is too short", opt.compare_file);
  }
  model_known = 1;
}

static void
save_pattern (void)
{
  FILE *fp = fopen (opt.write_pattern, "wb");
  if (!fp || fwrite (model, 1, len, fp) != len || fclose (fp) != 0)
    die ("writing %s: %m", opt.write_pattern);
}

int
main (int argc, char *argv[])
{
  parse_args (argc, argv);
  test_unconnected ();
  connect_and_check ();

  model = calloc (1, len);
  scratch = calloc (1, align * 2 > 65536 ? align * 2 : 65536);
  if (!model || !scratch)
    die ("out of memory");
  if (opt.kill_pid || opt.shutdown_file) {
    if (opt.kill_pid)
      test_server_dies ();
    else
      test_server_eshutdown ();
    printf ("roundtrip: %s: %u checks, %u failed\n", opt.uri, checks,
            failures);
    return failures ? 1 : 0;
  }
  test_refusals ();

  if (opt.expect_hole)
    test_expect_hole ();
  if (opt.compare_file) {
    load_compare_file ();
    verify_all ("compare with file");
  }

  int writing = !read_only && !opt.no_write;
  if (writing) {
    pattern_fill (model, 0, len, opt.seed);
    model_known = 1;
    bulk_write ();
    CHECK (write_errors == 0, "%lu writes failed", write_errors);
    if (!opt.data_only)
      test_cache_flush ();
    verify_all ("read back after write");
    if (!opt.data_only)
      test_zero_trim ();
  }
  else if (!opt.data_only)
    test_cache_flush ();
  test_structured ();
  test_big_read ();
  test_block_status ();
  if (opt.error_file)
    test_error_file ();
  if (opt.server_align_error)
    test_server_align_error ();
  if (opt.server_bounds_error)
    test_server_bounds_error ();
  if (writing) {
    manual_loop = 1;          /* this pass through the notify API */
    verify_all ("final read back");
    manual_loop = 0;
  }
  if (opt.write_pattern && model_known)
    save_pattern ();

  CHECK (nbdaio_aio_in_flight (h) == 0, "commands left in flight");
  CHECK (nbdaio_shutdown (h) == 0, "shutdown: %s", lib_error ());
  CHECK (nbdaio_is_connected (h) == 0, "still connected after shutdown");
  nbdaio_close (h);
  CHECK (frees_run == contexts_made, "%lu free calls for %lu completions",
         frees_run, contexts_made);
  test_close_in_flight ();
  test_aio_disconnect ();

  printf ("roundtrip: %s: %u checks, %u failed\n", opt.uri, checks, failures);
  free (model);
  free (scratch);
  return failures ? 1 : 0;
}
