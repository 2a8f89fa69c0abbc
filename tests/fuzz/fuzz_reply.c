/* fuzz_reply.c - libFuzzer target: the reply stream.  The harness plays a
 * server whose handshake is fixed and valid; the fuzzer controls the
 * transmission phase.  The client issues a fixed set of commands, then
 * reads whatever the stream holds until EOF; every callback checks the
 * promises of nbdaio.h (see fuzz_common.h).
 *
 * Input: two configuration bytes, then the stream.
 *   byte 0: C0_* bits (structured replies, meta context, block sizes,
 *           read-only export, record mode, callback behaviours); C0_META
 *           without C0_STRUCTURED means extended headers (which imply
 *           structured replies) with the meta context: the handshake
 *           acknowledges NBD_OPT_EXTENDED_HEADERS and record mode encodes
 *           32-byte extended reply headers and BLOCK_STATUS_EXT chunks
 *           (otherwise the handle does not ask for extended headers)
 *   byte 1: C1_* bits (few command slots, DF, more callback behaviours)
 *           and, in bits 5-7, how the stream arrives: all at once, or in
 *           pieces of 1, 3, 16, 100, 1000, 4096 or 40000 bytes with a
 *           poll after each (at most MAX_PIECES, then the rest), so that
 *           headers and payloads are split across reads
 * In raw mode the rest of the input is the server's transmission stream as
 * it is.  In record mode (C0_RECORDS) it is a list of records the harness
 * encodes into replies, with small cookie indexes mapped onto the cookies
 * of the commands actually issued and lengths computed, so that deep
 * sequences (several chunks of one read, block status after data...)
 * stay reachable; see put_records for the format.  tests/fuzz/make-seeds.py
 * writes seeds of both kinds and must agree with the command table. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"               /* CMD_SLOT_BITS: how cookies are made */
#include "proto.h"

#define INPUT_MAX    (64 * 1024)
#define EXPORT_SIZE  (1024 * 1024)
#define META_NAME    "base:allocation"
#define META_ID      5

#define C0_STRUCTURED   0x01u
#define C0_META         0x02u   /* alone: extended headers (see above) */
#define C0_BLOCK_SIZE   0x04u   /* INFO_BLOCK_SIZE 512 / 4096 / 64 KiB */
#define C0_READ_ONLY    0x08u
#define C0_RECORDS      0x10u
#define C0_RETIRE       0x20u   /* FZ_B_RETIRE */
#define C0_FOLLOWUP     0x40u   /* FZ_B_FOLLOWUP */
#define C0_CHUNK_FAIL   0x80u   /* FZ_B_CHUNK_FAIL */
#define C1_FEW_SLOTS    0x01u   /* max in flight 4 */
#define C1_DF           0x02u   /* command 1 carries DF */
#define C1_RETIRE_IN_CB 0x04u   /* FZ_B_RETIRE_IN_CB */
#define C1_ABORT_IN_CB  0x08u   /* FZ_B_ABORT_IN_CB */
#define C1_ABORT_IN_CHUNK 0x10u /* FZ_B_ABORT_IN_CHUNK: abort in a callback */
#define C1_PIECES_SHIFT 5

#define MAX_PIECES 512

/* The commands, in issue order (make-seeds.py has the same table). */
static const struct {
  enum fz_kind kind;
  uint64_t offset;
  uint32_t count;
  uint32_t flags;
} commands[] = {
  { FZ_PREAD,        0,                 512,         0 },
  { FZ_PREAD_SR,     4096,              4096,        0 },  /* DF: C1_DF */
  { FZ_PREAD_SR,     65536,             8192,        0 },
  { FZ_PREAD_SR,     131072,            65536,       0 },
  { FZ_BLOCK_STATUS, 0,                 EXPORT_SIZE, 0 },
  { FZ_BLOCK_STATUS, 8192,              4096,        NBDAIO_CMD_FLAG_REQ_ONE },
  { FZ_PWRITE,       0,                 4096,        NBDAIO_CMD_FLAG_FUA },
  { FZ_FLUSH,        0,                 0,           0 },
  { FZ_TRIM,         0,                 4096,        0 },
  { FZ_ZERO,         4096,              4096,
    NBDAIO_CMD_FLAG_NO_HOLE | NBDAIO_CMD_FLAG_FAST_ZERO },
  { FZ_CACHE,        0,                 512,         0 },
  { FZ_PREAD,        EXPORT_SIZE - 512, 512,         0 },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* What a record's cookie index can name. */
struct target {
  uint64_t cookie;
  enum fz_kind kind;
  uint64_t offset;
  uint32_t count;
};

/* This input runs with extended headers (C0_META without C0_STRUCTURED). */
static bool xhdr;

static void
put_handshake (struct fz_buf *b, unsigned c0)
{
  bool sr = (c0 & C0_STRUCTURED) || xhdr;
  uint16_t tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
    NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN;

  if (sr)
    tflags |= NBD_FLAG_SEND_DF;
  if (c0 & C0_READ_ONLY)
    tflags |= NBD_FLAG_READ_ONLY;
  fz_put64 (b, NBD_MAGIC_INIT);
  fz_put64 (b, NBD_MAGIC_OPT);
  fz_put16 (b, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  if (sr) {
    fz_put_opt_reply (b, xhdr ? NBD_OPT_EXTENDED_HEADERS :
                      NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, 0);
    if (c0 & C0_META) {
      fz_put_opt_reply (b, NBD_OPT_SET_META_CONTEXT, NBD_REP_META_CONTEXT,
                        4 + strlen (META_NAME));
      fz_put32 (b, META_ID);
      fz_put (b, META_NAME, strlen (META_NAME));
      fz_put_opt_reply (b, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK, 0);
    }
  }
  if (c0 & C0_BLOCK_SIZE) {
    fz_put_opt_reply (b, NBD_OPT_GO, NBD_REP_INFO, NBD_INFO_BLOCK_SIZE_LEN);
    fz_put16 (b, NBD_INFO_BLOCK_SIZE);
    fz_put32 (b, 512);
    fz_put32 (b, 4096);
    fz_put32 (b, 64 * 1024);
  }
  fz_put_opt_reply (b, NBD_OPT_GO, NBD_REP_INFO, NBD_INFO_EXPORT_LEN);
  fz_put16 (b, NBD_INFO_EXPORT);
  fz_put64 (b, EXPORT_SIZE);
  fz_put16 (b, tflags);
  fz_put_opt_reply (b, NBD_OPT_GO, NBD_REP_ACK, 0);
}

/* An NBD error value: 0, each one the spec names, or an unknown one. */
static uint32_t
wire_error (uint8_t sel)
{
  static const uint32_t errs[] = {
    0, NBD_EPERM, NBD_EIO, NBD_ENOMEM, NBD_EINVAL, NBD_ENOSPC,
    NBD_EOVERFLOW, NBD_ENOTSUP, NBD_ESHUTDOWN,
  };
  const size_t n = sizeof errs / sizeof errs[0];

  return sel % (n + 1) < n ? errs[sel % (n + 1)] : 200u + sel;
}

static bool
is_read (const struct target *t)
{
  return t->kind == FZ_PREAD || t->kind == FZ_PREAD_SR;
}

/* A structured chunk header, or with extended headers the 32-byte one
 * carrying the offset of the request it answers (tg). */
static void
put_chunk_header (struct fz_buf *b, uint16_t flags, uint16_t type,
                  uint64_t cookie, const struct target *tg, uint32_t len)
{
  fz_put32 (b, xhdr ? NBD_MAGIC_EXT_REPLY : NBD_MAGIC_STRUCTURED_REPLY);
  fz_put16 (b, flags);
  fz_put16 (b, type);
  fz_put64 (b, cookie);
  if (xhdr) {
    fz_put64 (b, tg->offset);
    fz_put64 (b, len);
  }
  else
    fz_put32 (b, len);
}

/* A block status chunk of n extents read from in (16-bit length in
 * 512-byte units, a flags byte each): BLOCK_STATUS, or BLOCK_STATUS_EXT
 * with extended headers (64-bit fields, the descriptor count). */
static void
put_block_status (struct fz_buf *b, struct fz_in *in, uint16_t flags,
                  uint64_t cookie, const struct target *tg, uint8_t ctx,
                  unsigned n, int32_t delta)
{
  uint16_t v16;
  uint8_t x;

  put_chunk_header (b, flags, xhdr ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT :
                    NBD_REPLY_TYPE_BLOCK_STATUS, cookie, tg,
                    (xhdr ? 8 + 16u * n : 4 + 8u * n) + (uint32_t) delta);
  fz_put32 (b, ctx ? ctx : META_ID);
  if (xhdr)
    fz_put32 (b, n);
  for (unsigned i = 0; i < n; i++) {
    fz_get16 (in, &v16);
    fz_get8 (in, &x);
    if (xhdr) {
      fz_put64 (b, (uint64_t) v16 * 512);
      fz_put64 (b, x);
    }
    else {
      fz_put32 (b, (uint32_t) v16 * 512);
      fz_put32 (b, x);
    }
  }
}

/* A data or hole range: rel, then a length (0: to the end of the
 * request). */
static void
get_range (struct fz_in *in, const struct target *t, uint16_t *rel,
           uint32_t *len)
{
  uint16_t l;

  fz_get16 (in, rel);
  fz_get16 (in, &l);
  *len = l ? l : *rel < t->count ? t->count - *rel : 1;
}

/* Records, until the input ends:
 *   op    low nibble % 9: 0 simple reply, 1 NONE, 2 OFFSET_DATA,
 *         3 OFFSET_HOLE, 4 ERROR, 5 ERROR_OFFSET, 6 BLOCK_STATUS,
 *         7 another chunk type, 8 raw bytes;
 *         0x80 DONE, 0x40 a signed length delta byte follows (applied to
 *         the length field only), 0x20 a byte to XOR into the chunk flags
 *         follows
 *   sel   low 5 bits: cookie index (< number of targets: that command;
 *         31: cookie 0; 30: 8 raw bytes follow; else another sequence
 *         number on a real slot); 0x40: offsets are absolute (8 bytes)
 *         instead of 16-bit relative to the request; 0x80: relative
 *         offsets count backwards
 *   then per type: simple: error; data/hole: rel, len (16-bit each, len 0
 *   = to the end); error: error, message length; error offset: error,
 *   message length, offset; block status: context (0: the negotiated
 *   id), extent count, then per extent 16-bit length in 512-byte units
 *   and a flags byte; other: 16-bit type, length byte, payload; raw:
 *   length byte, bytes.  With extended headers the chunk headers are the
 *   32-byte ones (offset: the named command's) and block status is
 *   BLOCK_STATUS_EXT; a simple reply stays one (a violation there). */
static void
put_records (struct fz_buf *b, struct fz_in *in, const struct target *t,
             int nt)
{
  static const struct target none = { 1, FZ_FLUSH, 0, 512 };
  uint8_t op, sel, x, n;
  uint16_t rel, v16;
  uint32_t len;

  while (fz_get8 (in, &op) && fz_get8 (in, &sel)) {
    unsigned idx = sel & 0x1f;
    const struct target *tg = nt ? &t[idx % nt] : &none;
    uint16_t flags = (op & 0x80) ? NBD_REPLY_FLAG_DONE : 0;
    int32_t delta = 0;
    uint64_t cookie, off;

    if (op & 0x40 && fz_get8 (in, &x))
      delta = (int8_t) x;
    if (op & 0x20 && fz_get8 (in, &x))
      flags ^= x;
    if (idx == 31)
      cookie = 0;
    else if (idx == 30)
      fz_get64 (in, &cookie);
    else
      cookie = tg->cookie + ((int) idx < nt ? 0 :
                             UINT64_C(1) << CMD_SLOT_BITS);

    /* the offset of data, hole and error-offset chunks */
    off = tg->offset;
    switch ((op & 0x0f) % 9) {
    case 0:                     /* simple reply */
      fz_get8 (in, &x);
      fz_put32 (b, NBD_MAGIC_SIMPLE_REPLY);
      fz_put32 (b, wire_error (x));
      fz_put64 (b, cookie);
      len = is_read (tg) && wire_error (x) == 0 ? tg->count : 0;
      fz_put_fill (b, 0x5a, (size_t) ((int64_t) len + delta > 0 ?
                                      (int64_t) len + delta : 0));
      break;
    case 1:                     /* NONE */
      put_chunk_header (b, flags, NBD_REPLY_TYPE_NONE, cookie, tg,
                        (uint32_t) delta);
      break;
    case 2:                     /* OFFSET_DATA */
    case 3:                     /* OFFSET_HOLE */
      get_range (in, tg, &rel, &len);
      if (sel & 0x40)
        fz_get64 (in, &off);
      else
        off = (sel & 0x80) ? off - rel : off + rel;
      if ((op & 0x0f) % 9 == 2) {
        put_chunk_header (b, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, tg,
                          8 + len + (uint32_t) delta);
        fz_put64 (b, off);
        fz_put_fill (b, 0xd7, len);
      }
      else {
        put_chunk_header (b, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, tg,
                          12 + (uint32_t) delta);
        fz_put64 (b, off);
        fz_put32 (b, len);
      }
      break;
    case 4:                     /* ERROR */
    case 5:                     /* ERROR_OFFSET */
      fz_get8 (in, &x);
      fz_get8 (in, &n);
      if ((op & 0x0f) % 9 == 5) {
        fz_get16 (in, &rel);
        off = (sel & 0x80) ? off - rel : off + rel;
      }
      put_chunk_header (b, flags, (op & 0x0f) % 9 == 5 ?
                        NBD_REPLY_TYPE_ERROR_OFFSET : NBD_REPLY_TYPE_ERROR,
                        cookie, tg, 6 + n + ((op & 0x0f) % 9 == 5 ? 8 : 0) +
                        (uint32_t) delta);
      fz_put32 (b, wire_error (x));
      fz_put16 (b, n);
      fz_put_fill (b, 'E', n);
      if ((op & 0x0f) % 9 == 5)
        fz_put64 (b, off);
      break;
    case 6:                     /* BLOCK_STATUS */
      fz_get8 (in, &x);
      fz_get8 (in, &n);
      put_block_status (b, in, flags, cookie, tg, x, n % 40u, delta);
      break;
    case 7:                     /* another chunk type */
      fz_get16 (in, &v16);
      fz_get8 (in, &n);
      put_chunk_header (b, flags, v16, cookie, tg, n + (uint32_t) delta);
      len = n < in->left ? n : (uint32_t) in->left;
      fz_put (b, in->p, len);
      in->p += len;
      in->left -= len;
      break;
    default:                    /* raw bytes */
      fz_get8 (in, &n);
      len = n < in->left ? n : (uint32_t) in->left;
      fz_put (b, in->p, len);
      in->p += len;
      in->left -= len;
      break;
    }
  }
}

/* Deliver the stream: in pieces with a poll after each (while the
 * connection lives), then the rest at once. */
static const size_t piece_sizes[8] = { 0, 1, 3, 16, 100, 1000, 4096, 40000 };

static void
send_stream (struct fz_pair *pair, struct nbdaio_handle *h,
             const struct fz_buf *tx, size_t piece)
{
  size_t off = 0;

  for (int i = 0; piece && i < MAX_PIECES && off < tx->len &&
       nbdaio_is_connected (h); i++) {
    size_t n = tx->len - off < piece ? tx->len - off : piece;
    fz_pair_send (pair, tx->data + off, n);
    off += n;
    nbdaio_poll (h, 0);
  }
  fz_pair_send (pair, tx->data + off, tx->len - off);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fz_in in = { data, size };
  static struct fz_buf hs, tx;
  struct fz_pair pair;
  struct fz_run run = { 0 };
  struct target t[FZ_MAX_CMDS];
  uint8_t c0, c1;
  int nt = 0;
  unsigned slots = 256;

  if (size > INPUT_MAX)
    return 0;
  fz_get8 (&in, &c0);
  fz_get8 (&in, &c1);
  fz_buf_reset (&hs);
  fz_buf_reset (&tx);
  xhdr = (c0 & (C0_STRUCTURED | C0_META)) == C0_META;

  put_handshake (&hs, c0);
  fz_pair_open (&pair);
  fz_pair_send (&pair, hs.data, hs.len);
  run.h = nbdaio_create ();
  FZ_ASSERT (run.h != NULL);
  nbdaio_set_connect_timeout (run.h, 2000);
  nbdaio_set_request_structured_replies (run.h, (c0 & C0_STRUCTURED) || xhdr);
  nbdaio_set_request_extended_headers (run.h, xhdr);
  nbdaio_set_meta_context (run.h, (c0 & C0_META) ? META_NAME : NULL);
  if (c1 & C1_FEW_SLOTS) {
    slots = 4;
    nbdaio_set_max_in_flight (run.h, slots);
  }
  /* the handshake is ours: it must succeed */
  FZ_ASSERT (nbdaio_connect_socket (run.h, pair.client) == 0);
  if (((c0 & C0_STRUCTURED) || xhdr) && (c0 & C0_META))
    run.meta_context = META_NAME;
  FZ_ASSERT (nbdaio_get_extended_headers_negotiated (run.h) == xhdr);
  run.behave = ((c0 & C0_RETIRE) ? FZ_B_RETIRE : 0) |
    ((c0 & C0_FOLLOWUP) ? FZ_B_FOLLOWUP : 0) |
    ((c0 & C0_CHUNK_FAIL) ? FZ_B_CHUNK_FAIL : 0) |
    ((c1 & C1_RETIRE_IN_CB) ? FZ_B_RETIRE_IN_CB : 0) |
    ((c1 & C1_ABORT_IN_CB) ? FZ_B_ABORT_IN_CB : 0) |
    ((c1 & C1_ABORT_IN_CHUNK) ? FZ_B_ABORT_IN_CHUNK : 0);

  for (size_t i = 0; i < NCOMMANDS; i++) {
    uint32_t flags = commands[i].flags;
    if (i == 1 && (c1 & C1_DF))
      flags |= NBDAIO_CMD_FLAG_DF;
    int64_t ck = fz_issue (&run, commands[i].kind, commands[i].offset,
                           commands[i].count, flags);
    if (ck >= 1)
      t[nt++] = (struct target) { (uint64_t) ck, commands[i].kind,
                                  commands[i].offset, commands[i].count };
  }
  /* The follow-up pread gets the next sequence number and the next free
   * slot (engine/cmd.c): cookie = seq << CMD_SLOT_BITS | slot. */
  if ((c0 & C0_FOLLOWUP) && (unsigned) nt < slots) {
    t[nt] = (struct target) { ((uint64_t) nt + 1) << CMD_SLOT_BITS |
                              (uint64_t) nt,
                              FZ_PREAD, FZ_FOLLOWUP_OFFSET,
                              FZ_FOLLOWUP_COUNT };
    nt++;
  }

  if (c0 & C0_RECORDS)
    put_records (&tx, &in, t, nt);
  else
    fz_put (&tx, in.p, in.left);
  send_stream (&pair, run.h, &tx, piece_sizes[c1 >> C1_PIECES_SHIFT]);
  fz_pair_eof (&pair);

  fz_drive (&run);
  fz_retire_all (&run);
  fz_close_and_check (&run);
  fz_pair_close (&pair);
  return 0;
}
