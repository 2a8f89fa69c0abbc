/* test_split.c - commands longer than one request may carry, split by the
 * library (nbdaio_set_split), against the scripted server with a small
 * maximum payload (64 KiB): the pieces the server sees (offsets, lengths,
 * flags, alignment), the data of split reads and writes, the chunk
 * callback of every piece with absolute offsets, and one completion and
 * one free of each callback on every path: success, an error on the
 * first, the last or several pieces, the connection dying mid-split, no
 * caller slot (EAGAIN), pieces waiting for piece slots; split off keeps
 * the refusal. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_common.h"

#define MAXP (64 * KiB)         /* the fixtures' maximum payload */
#define MAX_PIECES 32

/* The usual fixture: 1 MiB, block sizes 512 / 4096 / 64 KiB. */
static void
small_max (struct fs *s)
{
  s->hs.bs_min = 512;
  s->hs.bs_pref = 4096;
  s->hs.bs_max = MAXP;
}

/* ---------------------------------------------------------------------- */
/* scripts */

/* What script_pieces does with the first n requests it reads. */
struct plan {
  int n;                        /* requests read before any reply */
  int order[MAX_PIECES];        /* reply order (indexes into them) */
  uint32_t err[MAX_PIECES];     /* NBD error for a request, 0 = success */
  int halves;                   /* reads: two data chunks, the second
                                 * half first */
  int die_after;                /* > 0: close the socket after that many
                                 * replies */
};

static int
reply_one (struct fs *s, const struct plan *p, const struct fs_req *r,
           uint32_t err)
{
  uint8_t *data;
  uint32_t h1;
  int ret;

  if (err)
    return fs_send_error_reply (s, r, err);
  if (r->type != NBD_CMD_READ)
    return fs_send_simple (s, 0, r->cookie, NULL, 0);
  if (!(data = malloc (r->count)))
    return fs_fail (s, "out of memory");
  fs_pattern (data, r->count, r->offset);
  h1 = r->count / 2;
  if (p->halves)
    ret = fs_send_chunk_data (s, 0, r->cookie, r->offset + h1, data + h1,
                              r->count - h1) == -1 ||
          fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie, r->offset,
                              data, h1) == -1 ? -1 : 0;
  else
    ret = fs_send_chunk_data (s, NBD_REPLY_FLAG_DONE, r->cookie, r->offset,
                              data, r->count);
  free (data);
  return ret;
}

/* The next request into *r (its payload freed): 0, 1 on EOF, -1 on a
 * failure or timeout. */
static int
next_request (struct fs *s, struct fs_req *r)
{
  struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
  uint8_t b;

  if (poll (&pfd, 1, FS_TIMEOUT_MS) <= 0)
    return fs_fail (s, "timeout waiting for a request");
  if (recv (s->fd, &b, 1, MSG_PEEK) <= 0)
    return 1;
  if (fs_read_request (s, r) == -1)
    return -1;
  free (r->data);
  return 0;
}

/* After the plan: only NBD_CMD_DISC (or EOF) may come. */
static int
expect_nothing_more (struct fs *s)
{
  struct fs_req r;
  int ret = next_request (s, &r);

  if (ret != 0 || r.type == NBD_CMD_DISC)
    return ret == 1 ? 0 : ret;
  return fs_fail (s, "request type %u at %llu after the split command "
                  "ended", r.type, (unsigned long long) r.offset);
}

/* Read plan->n requests, then reply in plan->order. */
static int
script_pieces (struct fs *s)
{
  const struct plan *p = s->arg;
  struct fs_req req[MAX_PIECES];

  if (fs_default_handshake (s) != 0)
    return -1;
  for (int i = 0; i < p->n; i++) {
    if (fs_read_request (s, &req[i]) == -1)
      return -1;
    free (req[i].data);
  }
  for (int i = 0; i < p->n; i++) {
    if (p->die_after && i == p->die_after) {
      fs_abort (s);
      return 0;
    }
    if (reply_one (s, p, &req[p->order[i]], p->err[p->order[i]]) == -1)
      return -1;
  }
  return expect_nothing_more (s);
}

/* Success for every request (no data: no reads), until DISC or EOF. */
static int
script_ack_all (struct fs *s)
{
  struct fs_req r;
  int ret;

  if (fs_default_handshake (s) != 0)
    return -1;
  while ((ret = next_request (s, &r)) == 0 && r.type != NBD_CMD_DISC)
    if (fs_send_simple (s, 0, r.cookie, NULL, 0) == -1)
      return -1;
  return ret == 1 ? 0 : ret;
}

static void
start_plan (struct ctx *c, struct plan *p)
{
  assert_true (fs_start (c->s, script_pieces, p) >= 0);
  assert_int_equal (test_connect (c->h, c->s), 0);
}

/* ---------------------------------------------------------------------- */
/* checks */

/* After the server was joined: its first n requests are the pieces of one
 * command of this type, flags, offset and length, in order, each of at
 * most piece bytes and aligned to align. */
static void
expect_pieces (struct fs *s, int first, int n, uint16_t type, uint16_t flags,
               uint64_t offset, uint64_t length, uint32_t piece,
               uint32_t align)
{
  uint64_t at = offset;

  assert_true (s->nr_reqs >= first + n);
  for (int i = first; i < first + n; i++) {
    const struct fs_req *r = &s->reqs[i];
    uint64_t want = offset + length - at < piece ? offset + length - at
                                                 : piece;
    if (r->type != type || r->flags != flags || r->offset != at ||
        r->count != want)
      print_message ("request %d: type %u flags 0x%x [%llu, +%u); want "
                     "type %u flags 0x%x [%llu, +%llu)\n", i, r->type,
                     r->flags, (unsigned long long) r->offset, r->count,
                     type, flags, (unsigned long long) at,
                     (unsigned long long) want);
    assert_int_equal (r->type, type);
    assert_int_equal (r->flags, flags);
    assert_int_equal (r->offset, at);
    assert_int_equal (r->count, want);
    assert_int_equal (r->offset % align, 0);
    assert_int_equal (r->count % align, 0);
    at += r->count;
  }
  assert_int_equal (at, offset + length);
}

/* Requests of type the server saw. */
static int
count_type (const struct fs *s, uint16_t type)
{
  int n = 0;

  for (int i = 0; i < s->nr_reqs && i < FS_MAX_REQS; i++)
    n += s->reqs[i].type == type;
  return n;
}

/* The cookies of the pieces: distinct, and none is the command's. */
static void
expect_piece_cookies (const struct fs *s, int n, int64_t cookie)
{
  for (int i = 0; i < n; i++) {
    assert_true (s->reqs[i].cookie != (uint64_t) cookie);
    for (int j = 0; j < i; j++)
      assert_true (s->reqs[i].cookie != s->reqs[j].cookie);
  }
}

/* ---------------------------------------------------------------------- */
/* data */

/* A 260 KiB read at 64 KiB: pieces 64K x 4 + 4K, answered in reverse
 * order, each in two data chunks (second half first).  The chunk callback
 * sees every chunk with its absolute offset and its place in the caller's
 * buffer; the data lands right; one completion, one free each. */
static void
test_read_pieces (void **state)
{
  struct ctx *c = *state;
  const uint64_t off = 64 * KiB, len = 260 * KiB;
  static uint8_t buf[260 * KiB], want[260 * KiB];
  struct plan p = { .n = 5, .halves = 1 };
  struct chunk_rec ch = { 0 };
  struct cbc cb = { 0 };
  int64_t cookie;

  for (int i = 0; i < p.n; i++)
    p.order[i] = p.n - 1 - i;
  small_max (c->s);
  start_plan (c, &p);
  assert_int_equal (nbdaio_get_split (c->h), 1);
  ch.base = buf;
  cookie = nbdaio_aio_pread_structured (c->h, buf, len, off,
                                        chunk_rec_callback (&ch),
                                        cbc_completion (&cb), 0);
  assert_true (cookie >= 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 1);   /* one command */
  assert_int_equal (nbdaio_aio_command_completed (c->h, cookie), 0);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  fs_pattern (want, len, off);
  assert_memory_equal (buf, want, len);

  /* two chunks per piece, pieces last to first, halves second first */
  assert_int_equal (ch.calls, 10);
  for (int i = 0; i < 10; i++) {
    int piece = p.order[i / 2];
    uint64_t pstart = off + (uint64_t) piece * MAXP;
    uint64_t plen = piece == 4 ? 4 * KiB : MAXP;
    uint64_t at = i % 2 == 0 ? pstart + plen / 2 : pstart;

    assert_int_equal (ch.ch[i].status, NBDAIO_READ_DATA);
    assert_int_equal (ch.ch[i].offset, at);
    assert_int_equal (ch.ch[i].count, plen / 2);
    assert_int_equal (ch.ch[i].buf_pos, (ptrdiff_t) (at - off));
  }

  /* completed once, retired by its cookie like any other command */
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), cookie);
  assert_int_equal (nbdaio_aio_command_completed (c->h, cookie), 1);
  assert_int_equal (nbdaio_aio_command_completed (c->h, cookie), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  /* no piece is left to retire */
  assert_int_equal (nbdaio_aio_peek_command_completed (c->h), -1);
  ctx_finish (c);
  expect_pieces (c->s, 0, 5, NBD_CMD_READ, 0, off, len, MAXP, 512);
  expect_piece_cookies (c->s, 5, cookie);
}

/* A 200 KiB write with FUA at 128 KiB: every piece carries FUA and its
 * part of the payload; then a split read (DF on every piece) reads it
 * back; the synchronous calls split too. */
static void
test_write_fua_read_df (void **state)
{
  struct ctx *c = *state;
  const uint64_t off = 128 * KiB, len = 200 * KiB;
  static uint8_t w[200 * KiB], r[200 * KiB];
  struct cbc cb = { 0 }, cr = { 0 };

  small_max (c->s);
  ctx_start (c, script_serve);
  for (size_t i = 0; i < len; i++)
    w[i] = (uint8_t) (i * 7 + 3);
  assert_true (nbdaio_aio_pwrite (c->h, w, len, off, cbc_completion (&cb),
                                  NBDAIO_CMD_FLAG_FUA) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  assert_int_equal (cb.frees, 1);
  assert_true (nbdaio_aio_pread (c->h, r, len, off, cbc_completion (&cr),
                                 NBDAIO_CMD_FLAG_DF) >= 1);
  assert_true (drive_one (c->h, &cr, 4000) >= 0);
  assert_int_equal (cr.calls, 1);
  assert_int_equal (cr.error, 0);
  assert_int_equal (cr.frees, 1);
  assert_memory_equal (r, w, len);
  /* the synchronous wrappers: a 300 KiB write and read back */
  memset (r, 0, sizeof r);
  assert_int_equal (nbdaio_pwrite (c->h, w, 192 * KiB, 512 * KiB, 0), 0);
  assert_int_equal (nbdaio_pread (c->h, r, 192 * KiB, 512 * KiB, 0), 0);
  assert_memory_equal (r, w, 192 * KiB);
  ctx_finish (c);
  /* the server's disk holds the write */
  assert_memory_equal (c->s->disk + off, w, len);
  expect_pieces (c->s, 0, 4, NBD_CMD_WRITE, NBDAIO_CMD_FLAG_FUA, off, len,
                 MAXP, 512);
  expect_pieces (c->s, 4, 4, NBD_CMD_READ, NBDAIO_CMD_FLAG_DF, off, len,
                 MAXP, 512);
  expect_pieces (c->s, 8, 3, NBD_CMD_WRITE, 0, 512 * KiB, 192 * KiB, MAXP,
                 512);
  expect_pieces (c->s, 11, 3, NBD_CMD_READ, 0, 512 * KiB, 192 * KiB, MAXP,
                 512);
}

/* Trim and zero (FUA | NO_HOLE) of 5 GiB on an 8 GiB export: pieces of
 * the largest multiple of the preferred block size below 2^32, flags on
 * each; a cache (which servers read for: qemu-nbd refuses one above its
 * maximum payload) in pieces of the maximum payload. */
static void
test_trim_zero_cache (void **state)
{
  struct ctx *c = *state;
  const uint64_t len = UINT64_C (5) << 30, off = 4096;
  const uint32_t piece = UINT32_MAX - UINT32_MAX % 4096;
  const uint32_t zflags = NBDAIO_CMD_FLAG_FUA | NBDAIO_CMD_FLAG_NO_HOLE;
  struct cbc t = { 0 }, z = { 0 }, k = { 0 };
  struct cbc *all[] = { &t, &z, &k };

  small_max (c->s);
  c->s->hs.size = UINT64_C (8) << 30;
  ctx_start (c, script_ack_all);
  assert_true (nbdaio_aio_trim (c->h, len, off, cbc_completion (&t), 0) >= 1);
  assert_true (nbdaio_aio_zero (c->h, len, off, cbc_completion (&z), zflags)
               >= 1);
  assert_true (nbdaio_aio_cache (c->h, 3 * MAXP + 4096, off,
                                 cbc_completion (&k), 0) >= 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 3);
  assert_true (drive (c->h, all, 3, 4000) >= 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal (all[i]->calls, 1);
    assert_int_equal (all[i]->error, 0);
    assert_int_equal (all[i]->frees, 1);
  }
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  ctx_finish (c);
  expect_pieces (c->s, 0, 2, NBD_CMD_TRIM, 0, off, len, piece, 4096);
  expect_pieces (c->s, 2, 2, NBD_CMD_WRITE_ZEROES, zflags, off, len, piece,
                 4096);
  expect_pieces (c->s, 4, 4, NBD_CMD_CACHE, 0, off, 3 * MAXP + 4096, MAXP,
                 4096);
}

/* Block status over more than the maximum payload is one request. */
static void
test_block_status_not_split (void **state)
{
  struct ctx *c = *state;
  struct extent_rec ex = { 0 };

  small_max (c->s);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_block_status (c->h, 512 * KiB, 0,
                                         extent_rec_callback (&ex), 0), 0);
  assert_int_equal (ex.calls, 1);
  assert_int_equal (ex.frees, 1);
  ctx_finish (c);
  assert_int_equal (count_type (c->s, NBD_CMD_BLOCK_STATUS), 1);
  assert_int_equal (c->s->reqs[0].count, 512 * KiB);
}

/* ---------------------------------------------------------------------- */
/* errors: the first to arrive wins, one completion, one free */

/* A 256 KiB read (4 pieces) whose replies follow plan p; the command ends
 * with want_err. */
static void
run_error_plan (struct ctx *c, struct plan *p, int want_err)
{
  static uint8_t buf[256 * KiB];
  struct chunk_rec ch = { 0 };
  struct cbc cb = { 0 };
  int64_t cookie;

  small_max (c->s);
  start_plan (c, p);
  cb.ret = 1;                   /* auto-retire */
  cookie = nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 0,
                                        chunk_rec_callback (&ch),
                                        cbc_completion (&cb), 0);
  assert_true (cookie >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  /* whatever else arrives, nothing runs again */
  for (int i = 0; i < 3; i++)
    nbdaio_poll (c->h, 50);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, want_err);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ch.frees, 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  /* auto-retired: the cookie is gone */
  assert_int_equal (nbdaio_aio_command_completed (c->h, cookie), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  expect_pieces (c->s, 0, 4, NBD_CMD_READ, 0, 0, sizeof buf, MAXP, 512);
}

static void
test_error_first_piece (void **state)
{
  struct plan p = { .n = 4, .order = { 0, 1, 2, 3 },
                    .err = { NBD_EIO, 0, 0, 0 } };
  run_error_plan (*state, &p, EIO);
}

static void
test_error_last_piece (void **state)
{
  struct plan p = { .n = 4, .order = { 0, 1, 2, 3 },
                    .err = { 0, 0, 0, NBD_ENOSPC } };
  run_error_plan (*state, &p, ENOSPC);
}

/* Errors on pieces 1 and 3; piece 3's arrives first and wins. */
static void
test_error_several_pieces (void **state)
{
  struct plan p = { .n = 4, .order = { 0, 3, 2, 1 },
                    .err = { 0, NBD_EIO, 0, NBD_ENOSPC } };
  run_error_plan (*state, &p, ENOSPC);
}

/* A chunk callback failing on one piece fails the command with its
 * error; the other pieces' chunks still arrive. */
static int
fail_second_chunk (void *ud, const void *subbuf, size_t count,
                   uint64_t offset, unsigned status, int *error)
{
  int *calls = ud;
  (void) subbuf; (void) count; (void) offset; (void) status;
  if (++*calls == 2) {
    *error = EBADMSG;
    return -1;
  }
  return 0;
}

static void
test_chunk_callback_error (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[128 * KiB];
  struct cbc cb = { 0 };
  int calls = 0;

  small_max (c->s);
  ctx_start (c, script_serve);
  assert_true (nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 0,
                 (nbdaio_chunk_callback) { .callback = fail_second_chunk,
                                           .user_data = &calls },
                 cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (calls, 2);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, EBADMSG);
  assert_int_equal (cb.frees, 1);
  ctx_finish (c);
}

/* With max in flight 1 (8 piece slots) a 1 MiB read has 16 pieces: the
 * first 8 leave; the first fails, so the other 8 are never sent. */
static void
test_error_stops_pieces (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[MiB];
  struct plan p = { .n = 8, .err = { NBD_EIO } };
  struct cbc cb = { 0 };

  for (int i = 0; i < 8; i++)
    p.order[i] = i;
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 1), 0);
  small_max (c->s);
  start_plan (c, &p);
  assert_true (nbdaio_aio_pread (c->h, buf, sizeof buf, 0,
                                 cbc_completion (&cb), 0) >= 1);
  assert_true (drive_one (c->h, &cb, 4000) >= 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, EIO);
  assert_int_equal (cb.frees, 1);
  ctx_finish (c);               /* the script checks nothing more came */
  assert_int_equal (count_type (c->s, NBD_CMD_READ), 8);
}

/* The connection dies after 2 of 8 pieces were answered, while a second
 * split command waits for piece slots (max in flight 2: 8 piece slots;
 * two 512 KiB reads of 8 pieces each): both complete once, ENOTCONN. */
static void
test_connection_dies_mid_split (void **state)
{
  struct ctx *c = *state;
  static uint8_t a[512 * KiB], b[512 * KiB];
  struct plan p = { .n = 8, .die_after = 2 };
  struct chunk_rec cha = { 0 }, chb = { 0 };
  struct cbc ca = { 0 }, cb = { 0 };
  struct cbc *both[] = { &ca, &cb };

  for (int i = 0; i < 8; i++)
    p.order[i] = i;
  assert_int_equal (nbdaio_set_max_in_flight (c->h, 2), 0);
  small_max (c->s);
  start_plan (c, &p);
  assert_true (nbdaio_aio_pread_structured (c->h, a, sizeof a, 0,
                                            chunk_rec_callback (&cha),
                                            cbc_completion (&ca), 0) >= 1);
  assert_true (nbdaio_aio_pread_structured (c->h, b, sizeof b, 512 * KiB,
                                            chunk_rec_callback (&chb),
                                            cbc_completion (&cb), 0) >= 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 2);
  assert_int_equal (drive (c->h, both, 2, 4000), -1);
  for (int i = 0; i < 3; i++)
    nbdaio_poll (c->h, 10);
  assert_int_equal (ca.calls, 1);
  assert_int_equal (ca.error, ENOTCONN);
  assert_int_equal (ca.frees, 1);
  assert_int_equal (cha.calls, 2);      /* the two pieces answered */
  assert_int_equal (cha.frees, 1);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ENOTCONN);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (chb.calls, 0);
  assert_int_equal (chb.frees, 1);
  assert_int_equal (nbdaio_aio_in_flight (c->h), 0);
  ctx_finish (c);
}

/* Closing the handle with split commands in flight, one of them waiting
 * for piece slots: each completes once (ENOTCONN), frees once. */
static void
test_close_mid_split (void **state)
{
  struct ctx *c = *state;
  static uint8_t a[512 * KiB], b[512 * KiB];
  struct cbc ca = { 0 }, cb = { 0 };

  assert_int_equal (nbdaio_set_max_in_flight (c->h, 2), 0);
  small_max (c->s);
  ctx_start (c, script_handshake_only);
  assert_true (nbdaio_aio_pread (c->h, a, sizeof a, 0, cbc_completion (&ca),
                                 0) >= 1);
  assert_true (nbdaio_aio_pwrite (c->h, b, sizeof b, 0, cbc_completion (&cb),
                                  0) >= 1);
  nbdaio_close (c->h);
  c->h = NULL;
  assert_int_equal (ca.calls, 1);
  assert_int_equal (ca.error, ENOTCONN);
  assert_int_equal (ca.frees, 1);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, ENOTCONN);
  assert_int_equal (cb.frees, 1);
  fs_join (c->s);
}

/* Slots: a split command takes one caller slot (none free: EAGAIN, each
 * free function once); its pieces wait for piece slots, oldest command
 * first, and all the data arrives. */
static void
test_slots (void **state)
{
  struct ctx *c = *state;
  static uint8_t a[768 * KiB], b[256 * KiB], want[MiB];
  struct cbc ca = { 0 }, cb = { 0 }, cx = { 0 };
  struct chunk_rec ch = { 0 };
  struct cbc *both[] = { &ca, &cb };

  assert_int_equal (nbdaio_set_max_in_flight (c->h, 2), 0);
  small_max (c->s);
  ctx_start (c, script_serve);
  /* 12 pieces, then 4: 8 piece slots for both */
  assert_true (nbdaio_aio_pread (c->h, a, sizeof a, 0, cbc_completion (&ca),
                                 0) >= 1);
  assert_true (nbdaio_aio_pread (c->h, b, sizeof b, sizeof a,
                                 cbc_completion (&cb), 0) >= 1);
  /* both caller slots are taken */
  assert_int_equal (nbdaio_aio_pread_structured (c->h, a, sizeof a, 0,
                                                 chunk_rec_callback (&ch),
                                                 cbc_completion (&cx), 0),
                    -1);
  assert_int_equal (nbdaio_get_errno (), EAGAIN);
  assert_true (contains (nbdaio_get_error (), "too many commands: 2 in "
                         "flight and 0 completed but not retired (limit 2"));
  assert_int_equal (cx.calls, 0);
  assert_int_equal (cx.frees, 1);
  assert_int_equal (ch.frees, 1);
  assert_true (drive (c->h, both, 2, 4000) >= 0);
  assert_int_equal (ca.calls, 1);
  assert_int_equal (ca.error, 0);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.error, 0);
  fs_pattern (want, sizeof want, 0);
  assert_memory_equal (a, want, sizeof a);
  assert_memory_equal (b, want + sizeof a, sizeof b);
  ctx_finish (c);
  assert_int_equal (ca.frees, 1);
  assert_int_equal (cb.frees, 1);
  /* the first command's 12 pieces all left before the second's */
  expect_pieces (c->s, 0, 12, NBD_CMD_READ, 0, 0, sizeof a, MAXP, 512);
  expect_pieces (c->s, 12, 4, NBD_CMD_READ, 0, sizeof a, sizeof b, MAXP,
                 512);
}

/* ---------------------------------------------------------------------- */
/* split off */

static void
test_split_off (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[128 * KiB];
  struct chunk_rec ch = { 0 };
  struct cbc cb = { 0 };

  assert_int_equal (nbdaio_set_split (c->h, 0), 0);
  assert_int_equal (nbdaio_get_split (c->h), 0);
  small_max (c->s);
  ctx_start (c, script_serve);
  assert_int_equal (nbdaio_aio_pread_structured (c->h, buf, sizeof buf, 0,
                                                 chunk_rec_callback (&ch),
                                                 cbc_completion (&cb), 0),
                    -1);
  assert_int_equal (nbdaio_get_errno (), ERANGE);
  assert_true (contains (nbdaio_get_error (), "NBD_CMD_READ of 131072 bytes "
                         "exceeds the maximum payload of 65536 bytes (split "
                         "is off)"));
  assert_int_equal (cb.calls, 0);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (ch.frees, 1);
  /* with strict payload checks off too, the request leaves as it is */
  assert_int_equal (nbdaio_set_strict (c->h, NBDAIO_STRICT_ALL &
                                       ~NBDAIO_STRICT_PAYLOAD), 0);
  assert_int_equal (nbdaio_pwrite (c->h, buf, sizeof buf, 0, 0), 0);
  /* and the setting is fixed once connected */
  assert_int_equal (nbdaio_set_split (c->h, 1), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  ctx_finish (c);
  assert_int_equal (c->s->nr_reqs, 2);  /* the write and NBD_CMD_DISC */
  assert_int_equal (c->s->reqs[0].type, NBD_CMD_WRITE);
  assert_int_equal (c->s->reqs[0].count, sizeof buf);
}

/* The setting by name, as profiles and the fio plugin give it. */
static void
test_split_by_name (void **state)
{
  (void) state;
  struct nbdaio_handle *h = test_handle ();

  assert_non_null (h);
  assert_int_equal (nbdaio_get_split (h), 1);
  assert_int_equal (nbdaio_set_option (h, "split", "off"), 0);
  assert_int_equal (nbdaio_get_split (h), 0);
  assert_int_equal (nbdaio_set_option (h, "split", "yes"), 0);
  assert_int_equal (nbdaio_get_split (h), 1);
  assert_int_equal (nbdaio_get_split (NULL), -1);
  nbdaio_close (h);

  /* and from a profile */
  char path[] = "/tmp/test_split.XXXXXX";
  int fd = mkstemp (path);
  static const char text[] = "[nosplit]\nsocket = /nowhere.sock\n"
                             "split = off\n";
  struct nbdaio_profile *p;

  assert_true (fd >= 0);
  assert_int_equal (write (fd, text, sizeof text - 1), sizeof text - 1);
  close (fd);
  p = nbdaio_profile_load (path, "nosplit");
  unlink (path);
  assert_non_null (p);
  h = test_handle ();
  assert_non_null (h);
  assert_int_equal (nbdaio_profile_apply (p, h), 0);
  assert_int_equal (nbdaio_get_split (h), 0);
  nbdaio_close (h);
  nbdaio_profile_free (p);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    CTX_TEST (test_read_pieces),
    CTX_TEST (test_write_fua_read_df),
    CTX_TEST (test_trim_zero_cache),
    CTX_TEST (test_block_status_not_split),
    CTX_TEST (test_error_first_piece),
    CTX_TEST (test_error_last_piece),
    CTX_TEST (test_error_several_pieces),
    CTX_TEST (test_chunk_callback_error),
    CTX_TEST (test_error_stops_pieces),
    CTX_TEST (test_connection_dies_mid_split),
    CTX_TEST (test_close_mid_split),
    CTX_TEST (test_slots),
    CTX_TEST (test_split_off),
    cmocka_unit_test (test_split_by_name),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
