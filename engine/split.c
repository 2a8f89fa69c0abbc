/* split.c - commands longer than one wire request may carry.  Such a
 * command keeps its caller slot and cookie but never goes on the wire
 * itself (state CMD_SPLIT); it is sent as pieces, ordinary wire commands
 * in slots of their own (the piece slots, after the caller's), whose
 * completion reaches it through split_piece_done.  The caller's chunk
 * callback is handed to every piece as it is (without its free function):
 * the reply reader then calls it with absolute offsets and sub-buffers of
 * the caller's buffer.  The command completes once, when its last piece
 * has, with the first error a piece got.
 *
 * Pieces are issued as piece slots free up: split commands waiting for
 * slots form a FIFO (oldest first, doubly linked through the slots), and
 * each freed piece slot goes to its head.  Everything is O(1) per piece;
 * nothing is allocated.  The split command holds no wire state, so a
 * reconnect may resend its pieces in flight like any other request. */
#include "debug.h"
#include "internal.h"

/* What one request of this type may carry (0: the type is never
 * split). */
static uint64_t
wire_limit (const struct nbdaio_handle *h, uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ:
  case NBD_CMD_WRITE:
  case NBD_CMD_CACHE:
    /* a cache has no payload, but servers read for it: qemu-nbd (7.2 and
     * 10) refuses one above its maximum payload with EINVAL */
    return h->max_payload;
  case NBD_CMD_TRIM:
  case NBD_CMD_WRITE_ZEROES:
    /* the wire's length field; with extended headers it is 64-bit and
     * the server's maximum bounds only payloads: one request */
    return h->info.extended ? 0 : UINT32_MAX;
  default:
    return 0;
  }
}

/* The pieces of a split command of this type: the wire limit rounded
 * down to the block size pieces keep, so that every piece of an aligned
 * command stays aligned (the preferred block size for the commands
 * without payload, the minimum for reads and writes, whose maximum is a
 * multiple of it already). */
static uint32_t
piece_size (const struct nbdaio_handle *h, uint16_t type)
{
  uint64_t limit = wire_limit (h, type), unit = h->align, piece;

  if (type != NBD_CMD_READ && type != NBD_CMD_WRITE && h->info.bs_pref > unit)
    unit = h->info.bs_pref;
  piece = limit - limit % unit;
  return (uint32_t) (piece ? piece : limit);
}

bool
split_needed (const struct nbdaio_handle *h, uint16_t type, uint64_t count)
{
  uint64_t limit;

  if (!h || h->split_off ||
      (h->state != H_CONNECTED && h->state != H_RECONNECTING))
    return false;
  limit = wire_limit (h, type);
  return limit && count > limit;
}

static uint32_t
slot_of (const struct nbdaio_handle *h, const struct nbdaio_cmd *cmd)
{
  return (uint32_t) (cmd - h->cmds);
}

static void
wait_append (struct nbdaio_handle *h, struct nbdaio_cmd *p)
{
  uint32_t idx = slot_of (h, p);

  p->split.waiting = true;
  slot_list_append (h, &h->split_queue, SLOT_LINK (split.wait), idx);
}

static void
wait_remove (struct nbdaio_handle *h, struct nbdaio_cmd *p)
{
  if (!p->split.waiting)
    return;
  p->split.waiting = false;
  slot_list_remove (h, &h->split_queue, SLOT_LINK (split.wait), slot_of (h, p));
}

/* Issue the next piece of p in the free piece slot c. */
static void
piece_issue (struct nbdaio_handle *h, struct nbdaio_cmd *p,
             struct nbdaio_cmd *c)
{
  uint64_t rel = p->split.next - p->offset;
  uint32_t n = p->split.left < p->split.piece ?
    (uint32_t) p->split.left : p->split.piece;

  c->parent = slot_of (h, p);
  c->chunk = p->chunk;
  c->chunk.free = NULL;         /* the split command frees it, once */
  c->extent = (nbdaio_extent_callback) { 0 };
  c->completion = NBDAIO_NULL_COMPLETION;
  c->type = p->type;
  c->flags = p->flags;          /* FUA, DF, ... on every piece */
  c->offset = p->split.next;
  c->count = n;
  c->bs_filter = false;         /* block status is never split */
  c->bs_want = 0;
  c->buf = p->buf ? (uint8_t *) p->buf + rel : NULL;
  p->split.next += n;
  p->split.left -= n;
  p->split.out++;
  cmd_queue (h, c);
}

/* Give free piece slots to the waiting split commands, oldest first
 * (while reconnecting too: the pieces queue and leave after the resend). */
void
split_pump (struct nbdaio_handle *h)
{
  while (h->split_queue.head != CMD_NONE &&
         (h->state == H_CONNECTED || h->state == H_RECONNECTING)) {
    struct nbdaio_cmd *p = &h->cmds[h->split_queue.head];
    struct nbdaio_cmd *c = cmd_alloc_piece (h);

    if (!c)
      return;
    piece_issue (h, p, c);
    if (p->split.left == 0)
      wait_remove (h, p);
  }
}

void
split_start (struct nbdaio_handle *h, struct nbdaio_cmd *p, uint64_t count)
{
  p->state = CMD_SPLIT;
  p->split.next = p->offset;
  p->split.left = count;
  p->split.piece = piece_size (h, p->type);
  p->split.out = 0;
  debug (h->debug, "split %s cookie 0x%llx [%llu, +%llu) into %llu pieces "
         "of at most %u bytes", proto_cmd_name (p->type),
         (unsigned long long) p->cookie, (unsigned long long) p->offset,
         (unsigned long long) count,
         (unsigned long long) ((count + p->split.piece - 1) / p->split.piece),
         p->split.piece);
  wait_append (h, p);
  split_pump (h);
}

void
split_piece_done (struct nbdaio_handle *h, struct nbdaio_cmd *p, int err)
{
  p->split.out--;
  if (err) {
    cmd_set_error (p, err);     /* the first error to arrive wins */
    wait_remove (h, p);         /* no further pieces */
  }
  split_pump (h);               /* the freed slot, to the oldest waiting */
  /* still waiting here means pieces are left and the connection may
   * still send them; otherwise the command ends with its last piece (or
   * split_fail_all ends it) */
  if (p->split.out == 0 && !p->split.waiting)
    cmd_complete (h, p);
}

void
split_fail_all (struct nbdaio_handle *h, int err)
{
  while (h->split_queue.head != CMD_NONE) {
    struct nbdaio_cmd *p = &h->cmds[h->split_queue.head];

    wait_remove (h, p);
    cmd_set_error (p, err);
    if (p->split.out == 0)
      cmd_complete (h, p);
    /* else its last piece completes it (split_piece_done) */
  }
}
