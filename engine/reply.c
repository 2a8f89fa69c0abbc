/* reply.c - the reply stream: reads through one buffer (several replies per
 * system call), puts read payloads straight into the caller's buffer, checks
 * every reply against the NBD spec's rules for replies (each a rule of
 * core/rules.c) and dispatches completions.  A violation ends the connection with an error
 * naming the rule ("protocol violation [rule]: ..."), except the ones that
 * leave the stream in sync and are found in a command's final reply
 * (simple-reply-read, chunk-coverage, chunk-error-length in a final error
 * chunk consumed whole): by default (reply-violations=command) they fail
 * only that command, with EPROTO. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "internal.h"

int
reply_init (struct nbdaio_handle *h)
{
  h->rcap = RBUF_SIZE;
  h->rbuf = malloc (h->rcap);
  if (!h->rbuf)
    return set_error (ENOMEM, "out of memory allocating the reply buffer");
  h->rpos = h->rlen = 0;
  memset (&h->rx, 0, sizeof h->rx);
  h->rx.state = RX_HEADER;
  return 0;
}

/* The command a reply names, or NULL after recording a violation. */
static struct nbdaio_cmd *
lookup (struct nbdaio_handle *h, uint64_t cookie)
{
  uint64_t idx = cookie & CMD_SLOT_MASK;
  struct nbdaio_cmd *cmd = idx < h->ncmds ? &h->cmds[idx] : NULL;

  if (cmd && cmd->cookie == cookie && cookie != 0) {
    if (cmd->state == CMD_SENT)
      return cmd;
    if (cmd->state == CMD_QUEUED) {
      set_violation (RULE_REPLY_COOKIE, "reply for cookie 0x%llx before its "
                     "request was fully sent", (unsigned long long) cookie);
      return NULL;
    }
    set_violation (RULE_REPLY_AFTER_DONE, "reply for cookie 0x%llx after its "
                   "final reply", (unsigned long long) cookie);
    return NULL;
  }
  if (cmd && cookie != 0 && cmd->last_cookie == cookie)
    set_violation (RULE_REPLY_AFTER_DONE, "reply for cookie 0x%llx after its "
                   "final reply", (unsigned long long) cookie);
  else
    set_violation (RULE_REPLY_COOKIE,
                   "reply for cookie 0x%llx, which is not in "
                   "flight", (unsigned long long) cookie);
  return NULL;
}

/* Check that [off, off+len) lies inside the request of cmd. */
static int
check_inside (struct nbdaio_cmd *cmd, uint64_t off, uint64_t len,
              const char *what)
{
  if (off < cmd->offset || off - cmd->offset > cmd->count ||
      len > cmd->count - (off - cmd->offset))
    return set_violation (RULE_CHUNK_BOUNDS,
                          "%s [%llu, +%llu) lies outside the "
                          "request [%llu, +%llu) of cookie 0x%llx", what,
                          (unsigned long long) off, (unsigned long long) len,
                          (unsigned long long) cmd->offset,
                          (unsigned long long) cmd->count,
                          (unsigned long long) cmd->cookie);
  return 0;
}

/* A data or hole chunk [off, off+len) of cmd: inside the request,
 * disjoint from the ones before, and the only one if the read has
 * NBD_CMD_FLAG_DF (checked in this order: the first rule broken is
 * named). */
static int
content_chunk (struct nbdaio_cmd *cmd, uint64_t off, uint32_t len,
               const char *what)
{
  bool first = cmd->covered == 0;       /* content chunks are not empty */

  if (check_inside (cmd, off, len, what) == -1 ||
      cmd_cover (cmd, (uint32_t) (off - cmd->offset), len) == -1)
    return -1;
  if ((cmd->flags & NBDAIO_CMD_FLAG_DF) && !first)
    return set_violation (RULE_CHUNK_DF,
                          "second content chunk (%s [%llu, +%u)) "
                          "in reply to the NBD_CMD_FLAG_DF read of cookie "
                          "0x%llx (at most one is allowed)", what,
                          (unsigned long long) off, len,
                          (unsigned long long) cmd->cookie);
  return 0;
}

/* The name of a context due that cmd got no block status chunk for. */
static const char *
bs_missing (const struct nbdaio_handle *h, const struct nbdaio_cmd *cmd)
{
  for (uint32_t i = 0; i < h->info.nmetas; i++)
    if ((cmd->bs_want & ~cmd->got_block_status) & (1u << i))
      return h->info.metas[i].name;
  return "(none)";
}

/* A simple reply (wire error err) to the read of cookie although
 * structured replies were negotiated.  Returns -1. */
static int
simple_read_violation (uint64_t cookie, uint32_t err)
{
  return set_violation (RULE_SIMPLE_REPLY_READ, "simple reply (%s) to "
                        "NBD_CMD_READ (cookie 0x%llx) although structured "
                        "replies were negotiated",
                        err ? nbdaio_error_name (err) : "success",
                        (unsigned long long) cookie);
}

/* The violation of the last error concerns cmd alone, whose final reply
 * was consumed whole (the stream is in sync).  reply-violations=command:
 * cmd completes with EPROTO (its callback, and nbdaio_aio_command_completed
 * after it, see the violation with its section: cmd_keep_violation), the
 * connection lives on; returns 0.  close: returns -1 (the connection
 * ends). */
static int
command_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  if (h->violations_close)
    return -1;
  h->st.command_violations++;
  cmd_keep_violation (h, cmd);
  cmd->error = EPROTO;
  debug (h->debug, "cookie 0x%llx failed: %s", (unsigned long long) cmd->cookie,
         nbdaio_get_error ());
  cmd_complete (h, cmd);
  return 0;
}

/* The violation of the last error is in a chunk of cmd consumed whole:
 * if it is cmd's final chunk, command_violation; else -1. */
static int
final_chunk_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  if (!(h->rx.chunk_flags & NBD_REPLY_FLAG_DONE))
    return -1;
  h->rx.state = RX_HEADER;
  h->rx.cmd = NULL;
  return command_violation (h, cmd);
}

/* The final reply of cmd arrived: check completeness and complete it. */
static int
finish_command (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  bool simple_read = h->rx.simple_read;

  h->rx.state = RX_HEADER;
  h->rx.cmd = NULL;
  h->rx.simple_read = false;
  if (cmd->state != CMD_SENT)
    return 0;   /* a callback ended the connection: completed already */
  if (simple_read) {
    simple_read_violation (cmd->cookie, h->rx.simple_error);
    return command_violation (h, cmd);
  }
  if (cmd->error == 0 && h->rx.in_chunk) {
    if (cmd->type == NBD_CMD_READ && cmd->covered != cmd->count) {
      set_violation (RULE_CHUNK_COVERAGE, "successful read of cookie "
                     "0x%llx ended with %llu of %llu bytes covered "
                     "by data or hole chunks",
                     (unsigned long long) cmd->cookie,
                     (unsigned long long) cmd->covered,
                     (unsigned long long) cmd->count);
      return command_violation (h, cmd);
    }
    if (cmd->type == NBD_CMD_BLOCK_STATUS && (!cmd->got_block_status ||
        cmd->got_block_status != cmd->bs_want))
      return set_violation (cmd->bs_filter ? RULE_BS_FILTER : RULE_BS_EXTENT,
                            "successful %sblock status of cookie 0x%llx "
                            "without a block status chunk for %s",
                            cmd->bs_filter ? "filtered " : "",
                            (unsigned long long) cmd->cookie,
                            bs_missing (h, cmd));
  }
  if (cmd->error == 0 && !h->rx.in_chunk && cmd->type == NBD_CMD_BLOCK_STATUS)
    return set_violation (RULE_BS_EXTENT,
                          "simple reply to NBD_CMD_BLOCK_STATUS "
                          "carries no extents");
  debug (h->debug, "completed cookie 0x%llx: %s", (unsigned long long) cmd->cookie,
         cmd->error ? strerror (cmd->error) : "ok");
  cmd_complete (h, cmd);
  return 0;
}

/* A chunk ended; finish the command if it was the final one. */
static int
chunk_done (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  if (h->rx.chunk_flags & NBD_REPLY_FLAG_DONE)
    return finish_command (h, cmd);
  h->rx.state = RX_HEADER;
  h->rx.cmd = NULL;
  return 0;
}

static void
call_chunk (struct nbdaio_cmd *cmd, uint64_t off, uint32_t len,
            unsigned status, int err)
{
  if (cmd->chunk.callback) {
    void *sub = (uint8_t *) cmd->buf + (off - cmd->offset);
    if (cmd->chunk.callback (cmd->chunk.user_data, sub, len, off, status,
                             &err) == -1)
      cmd_set_error (cmd, err ? err : EIO);
  }
}

static int
simple_reply (struct nbdaio_handle *h, const uint8_t *p)
{
  uint32_t err = wire_get32 (p + 4);
  uint64_t cookie = wire_get64 (p + 8);
  struct nbdaio_cmd *cmd = lookup (h, cookie);

  if (!cmd)
    return -1;
  debug (h->debug, "simple reply cookie 0x%llx error %u",
         (unsigned long long) cookie, err);
  if (cmd->type == NBD_CMD_READ && h->info.structured_replies) {
    if (h->violations_close)
      return simple_read_violation (cookie, err);
    h->rx.simple_read = true;   /* fails at finish_command, once any
                                 * payload is consumed */
    h->rx.simple_error = err;
  }
  h->rx.in_chunk = false;
  h->st.simple_replies++;
  h->rx.cmd = cmd;
  if (err) {
    cmd_set_error (cmd, proto_errno_from_wire (err));
    return finish_command (h, cmd);
  }
  if (cmd->type == NBD_CMD_READ && cmd->count) {
    h->rx.state = RX_DATA;
    h->rx.dest = cmd->buf;
    h->rx.remaining = (uint32_t) cmd->count; /* reads: 32-bit (issue.c) */
    return 0;
  }
  return finish_command (h, cmd);
}

/* The most extents a block status chunk for cmd can legally carry: one
 * with NBD_CMD_FLAG_REQ_ONE; else one per byte of the request (extents are
 * consecutive and not empty, and only the last may pass the request's
 * end: the MUSTs of the spec; extents finer than the minimum block size
 * break only a SHOULD and are accepted), and never more than
 * BS_MAX_EXTENTS, the spec's "SHOULD NOT send more than 2^20" kept as the
 * client's bound on what one chunk may make it buffer. */
static uint64_t
bs_max_extents (const struct nbdaio_cmd *cmd)
{
  if ((cmd->flags & NBDAIO_CMD_FLAG_REQ_ONE) || cmd->count == 0)
    return 1;
  return cmd->count < BS_MAX_EXTENTS ? cmd->count : BS_MAX_EXTENTS;
}

/* A block status chunk of len bytes for cmd: head + size * n (head 4,
 * size 8 for NBD_REPLY_TYPE_BLOCK_STATUS; 8 and 16 for _EXT), 1 <= n <=
 * what the request allows (checked on the header: nothing is buffered for
 * more). */
static int
check_bs_length (const struct nbdaio_cmd *cmd, uint16_t type, uint32_t len)
{
  uint32_t head = type == NBD_REPLY_TYPE_BLOCK_STATUS ? 4 : 8;
  uint32_t size = type == NBD_REPLY_TYPE_BLOCK_STATUS ? 8 : 16;
  uint64_t n, max = bs_max_extents (cmd);

  if (len < head + size || (len - head) % size != 0)
    return set_violation (RULE_CHUNK_LENGTH, "%s of length %u (must be %u + "
                          "%un, n >= 1)", proto_chunk_name (type), len, head,
                          size);
  n = (len - head) / size;
  if (n > max && (cmd->flags & NBDAIO_CMD_FLAG_REQ_ONE))
    return set_violation (RULE_BS_EXTENT, "%llu extents in reply to a "
                          "NBD_CMD_FLAG_REQ_ONE request (must be 1)",
                          (unsigned long long) n);
  if (n > max)
    return set_violation (RULE_CHUNK_LENGTH, "%s of length %u (%llu extents) "
                          "for a request of %llu bytes at %llu (cookie "
                          "0x%llx): at most %llu extents (one per byte "
                          "requested, at most %u)", proto_chunk_name (type),
                          len, (unsigned long long) n,
                          (unsigned long long) cmd->count,
                          (unsigned long long) cmd->offset,
                          (unsigned long long) cmd->cookie,
                          (unsigned long long) max, BS_MAX_EXTENTS);
  return 0;
}

/* The longest error chunk of this type: the spec caps messages at
 * NBD_MAX_STRING; an unknown error type may carry fields after its message
 * (whose length field is 16 bits). */
static uint32_t
error_chunk_max (uint16_t type)
{
  switch (type) {
  case NBD_REPLY_TYPE_ERROR:        return 6 + NBD_MAX_STRING;
  case NBD_REPLY_TYPE_ERROR_OFFSET: return 6 + NBD_MAX_STRING + 8;
  default:                          return 6 + 65535 + 8;
  }
}

/* The block status chunk type of the negotiated mode. */
static uint16_t
bs_chunk_type (const struct nbdaio_handle *h)
{
  return h->info.extended ? NBD_REPLY_TYPE_BLOCK_STATUS_EXT :
    NBD_REPLY_TYPE_BLOCK_STATUS;
}

/* A chunk header for cmd (found by its cookie): the checks of its type. */
static int
chunk_start (struct nbdaio_handle *h, struct nbdaio_cmd *cmd, uint16_t flags,
             uint16_t type, uint32_t len)
{
  struct rx *rx = &h->rx;
  uint64_t cookie = cmd->cookie;

  debug (h->debug, "chunk %s cookie 0x%llx flags 0x%x length %u",
         proto_chunk_name (type), (unsigned long long) cookie, flags, len);
  rx->in_chunk = true;
  h->st.chunks++;
  rx->cmd = cmd;
  rx->chunk_flags = flags;
  rx->chunk_type = type;
  rx->length = len;
  rx->state = RX_PAYLOAD;
  rx->need = len;

  switch (type) {
  case NBD_REPLY_TYPE_NONE:
    if (len != 0 || !(flags & NBD_REPLY_FLAG_DONE))
      return set_violation (RULE_CHUNK_NONE, "NBD_REPLY_TYPE_NONE with length "
                            "%u and flags 0x%x (must be 0 and DONE)", len, flags);
    return finish_command (h, cmd);
  case NBD_REPLY_TYPE_OFFSET_DATA:
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (cmd->type != NBD_CMD_READ)
      return set_violation (RULE_CHUNK_COMMAND,
                            "%s for %s (cookie 0x%llx); only "
                            "NBD_CMD_READ gets data chunks",
                            proto_chunk_name (type), proto_cmd_name (cmd->type),
                            (unsigned long long) cookie);
    if (type == NBD_REPLY_TYPE_OFFSET_DATA ? len < 9 : len != 12)
      return set_violation (RULE_CHUNK_LENGTH, "%s of length %u (must be %s)",
                            proto_chunk_name (type), len,
                            type == NBD_REPLY_TYPE_OFFSET_DATA ? "at least 9" : "12");
    if (type == NBD_REPLY_TYPE_OFFSET_DATA)
      rx->need = 8;             /* the offset; the data goes to the caller */
    return 0;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    if (type != bs_chunk_type (h))
      return set_violation (RULE_EXT_BS_TYPE, "%s for cookie 0x%llx with "
                            "extended headers %s (must be %s)",
                            proto_chunk_name (type),
                            (unsigned long long) cookie,
                            h->info.extended ? "negotiated" : "not negotiated",
                            proto_chunk_name (bs_chunk_type (h)));
    if (cmd->type != NBD_CMD_BLOCK_STATUS)
      return set_violation (RULE_CHUNK_COMMAND, "%s for %s (cookie 0x%llx)",
                            proto_chunk_name (type), proto_cmd_name (cmd->type),
                            (unsigned long long) cookie);
    return check_bs_length (cmd, type, len);
  default:
    if (!(type & NBD_REPLY_TYPE_ERROR_BIT))
      return set_violation (RULE_CHUNK_UNKNOWN, "unknown chunk type %u for "
                            "cookie 0x%llx", type, (unsigned long long) cookie);
    if (len < 6 || len > error_chunk_max (type))
      return set_violation (RULE_CHUNK_ERROR_LENGTH, "%s of length %u (must be "
                            "6 to %u)", proto_chunk_name (type), len,
                            error_chunk_max (type));
    return 0;
  }
}

/* A structured reply header (20 bytes at p). */
static int
chunk_header (struct nbdaio_handle *h, const uint8_t *p)
{
  struct nbdaio_cmd *cmd = lookup (h, wire_get64 (p + 8));

  if (!cmd)
    return -1;
  return chunk_start (h, cmd, wire_get16 (p + 4), wire_get16 (p + 6),
                      wire_get32 (p + 16));
}

/* An extended reply header (32 bytes at p): its offset must be the
 * request's, its 64-bit length a 32-bit one (no reply carries more). */
static int
ext_header (struct nbdaio_handle *h, const uint8_t *p)
{
  uint16_t type = wire_get16 (p + 6);
  uint64_t off = wire_get64 (p + 16), len = wire_get64 (p + 24);
  struct nbdaio_cmd *cmd = lookup (h, wire_get64 (p + 8));

  if (!cmd)
    return -1;
  if (off != cmd->offset)
    return set_violation (RULE_EXT_OFFSET, "extended reply header (%s) for "
                          "cookie 0x%llx has offset %llu, the request's is "
                          "%llu (must match)", proto_chunk_name (type),
                          (unsigned long long) cmd->cookie,
                          (unsigned long long) off,
                          (unsigned long long) cmd->offset);
  if (len > UINT32_MAX)
    return set_violation (RULE_EXT_LENGTH, "extended reply header (%s) for "
                          "cookie 0x%llx announces a payload of %llu bytes "
                          "(replies carry at most 32-bit payloads)",
                          proto_chunk_name (type),
                          (unsigned long long) cmd->cookie,
                          (unsigned long long) len);
  return chunk_start (h, cmd, wire_get16 (p + 4), type, (uint32_t) len);
}

static int
chunk_hole (struct nbdaio_handle *h, struct nbdaio_cmd *cmd, const uint8_t *p)
{
  uint64_t off = wire_get64 (p);
  uint32_t len = wire_get32 (p + 8);

  if (len == 0)
    return set_violation (RULE_CHUNK_LENGTH,
                          "NBD_REPLY_TYPE_OFFSET_HOLE of size 0");
  if (content_chunk (cmd, off, len, "hole chunk") == -1)
    return -1;
  memset ((uint8_t *) cmd->buf + (off - cmd->offset), 0, len);
  call_chunk (cmd, off, len, NBDAIO_READ_HOLE, 0);
  return chunk_done (h, cmd);
}

static int
chunk_data_start (struct nbdaio_handle *h, struct nbdaio_cmd *cmd,
                  const uint8_t *p)
{
  struct rx *rx = &h->rx;
  uint64_t off = wire_get64 (p);
  uint32_t len = rx->length - 8;

  if (content_chunk (cmd, off, len, "data chunk") == -1)
    return -1;
  rx->state = RX_DATA;
  rx->dest = (uint8_t *) cmd->buf + (off - cmd->offset);
  rx->remaining = len;
  rx->data_offset = off;
  rx->data_len = len;
  return 0;
}

/* All the data of a data chunk (or simple read reply) has landed. */
static int
data_done (struct nbdaio_handle *h)
{
  struct nbdaio_cmd *cmd = h->rx.cmd;

  if (!h->rx.in_chunk) {
    /* a simple reply is one data chunk covering the whole request */
    h->st.payload_received += cmd->count;
    if (!h->rx.simple_read)
      call_chunk (cmd, cmd->offset, cmd->count, NBDAIO_READ_DATA, 0);
    return finish_command (h, cmd);
  }
  h->st.payload_received += h->rx.data_len;
  call_chunk (cmd, h->rx.data_offset, h->rx.data_len, NBDAIO_READ_DATA, 0);
  return chunk_done (h, cmd);
}

/* The index in info.metas of context id ctx, and the room for n extents
 * of a block status chunk of cmd: a negotiated context (at most
 * NBDAIO_MAX_META_CONTEXTS to look through), its first chunk for cmd,
 * h->extents64 large enough.  Returns the index or -1. */
static int
bs_prepare (struct nbdaio_handle *h, struct nbdaio_cmd *cmd, uint32_t ctx,
            uint32_t n)
{
  uint32_t i = 0;

  while (i < h->info.nmetas && h->info.metas[i].id != ctx)
    i++;
  if (i == h->info.nmetas)
    return set_violation (RULE_BS_CONTEXT, "block status for context id %u, "
                          "which was not negotiated", ctx);
  if (!(cmd->bs_want & (1u << i)))
    return set_violation (RULE_BS_FILTER, "block status chunk for context "
                          "%s (id %u), which the filtered request of cookie "
                          "0x%llx did not ask for",
                          ESCAPED (h->info.metas[i].name,
                                   strlen (h->info.metas[i].name)), ctx,
                          (unsigned long long) cmd->cookie);
  if (cmd->got_block_status & (1u << i))
    return set_violation (RULE_BS_EXTENT, "second block status chunk for "
                          "context %u (cookie 0x%llx)", ctx,
                          (unsigned long long) cmd->cookie);
  if (n > h->extents64_cap) {
    nbdaio_extent64 *e = realloc (h->extents64, n * sizeof *e);
    if (!e)
      return set_error (ENOMEM, "out of memory for %u extents", n);
    h->extents64 = e;
    h->extents64_cap = n;
  }
  return (int) i;
}

static int
bs_zero_length (const struct nbdaio_cmd *cmd, uint32_t i)
{
  return set_violation (RULE_BS_EXTENT, "extent %u of cookie 0x%llx has "
                        "length 0", i, (unsigned long long) cmd->cookie);
}

/* The *n extents of h->extents64 as 32-bit pairs in h->extents, for
 * nbdaio_aio_block_status: the first extent longer than 32 bits (any may
 * be with a 64-bit request) is cut to the largest multiple of the minimum
 * block size below 2^32 and ends the list (*n shrinks: what followed it
 * would be placed wrong), as libnbd does.  Returns 0, EOVERFLOW for a
 * status above 32 bits (legal outside base: contexts, but not for this
 * callback), or -1 (ENOMEM). */
static int
bs_narrow (struct nbdaio_handle *h, uint32_t *n)
{
  uint32_t cut = UINT32_MAX - (h->align > 1 ? h->align - 1 : 0);

  if (2 * (size_t) *n > h->extents_cap) {
    uint32_t *e = realloc (h->extents, 2 * (size_t) *n * sizeof *e);
    if (!e)
      return set_error (ENOMEM, "out of memory for %u extents", *n);
    h->extents = e;
    h->extents_cap = 2 * (size_t) *n;
  }
  for (uint32_t i = 0; i < *n; i++) {
    const nbdaio_extent64 *x = &h->extents64[i];
    if (x->flags > UINT32_MAX)
      return EOVERFLOW;
    h->extents[2 * i + 1] = (uint32_t) x->flags;
    h->extents[2 * i] = x->length > UINT32_MAX ? cut : (uint32_t) x->length;
    if (x->length > UINT32_MAX)
      *n = i + 1;
  }
  return 0;
}

/* The n extents of context idx in h->extents64 go to the caller's
 * callback, the 64-bit one as they are. */
static int
bs_deliver (struct nbdaio_handle *h, struct nbdaio_cmd *cmd, int idx,
            uint32_t n)
{
  const char *name = h->info.metas[idx].name;
  int err = 0, r = 0, narrow;

  cmd->got_block_status |= (uint8_t) (1u << idx);
  if (cmd->extent64)
    r = cmd->extent64 (cmd->extent.user_data, name, cmd->offset,
                       h->extents64, n, &err);
  else if (cmd->extent.callback) {
    if ((narrow = bs_narrow (h, &n)) == -1)
      return -1;
    if (narrow)
      cmd_set_error (cmd, narrow);
    else
      r = cmd->extent.callback (cmd->extent.user_data, name, cmd->offset,
                                h->extents, 2 * (size_t) n, &err);
  }
  if (r == -1)
    cmd_set_error (cmd, err ? err : EIO);
  return chunk_done (h, cmd);
}

static int
chunk_block_status (struct nbdaio_handle *h, struct nbdaio_cmd *cmd,
                    const uint8_t *p)
{
  uint32_t ctx = wire_get32 (p), n = (h->rx.length - 4) / 8;
  int idx = bs_prepare (h, cmd, ctx, n);

  if (idx == -1)
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    h->extents64[i].length = wire_get32 (p + 4 + 8 * i);
    h->extents64[i].flags = wire_get32 (p + 8 + 8 * i);
    if (h->extents64[i].length == 0)
      return bs_zero_length (cmd, i);
  }
  return bs_deliver (h, cmd, idx, n);
}

/* NBD_REPLY_TYPE_BLOCK_STATUS_EXT: context id, descriptor count, then
 * 64-bit length/status pairs; a status above 32 bits breaks the spec in
 * a base: context. */
static int
chunk_block_status_ext (struct nbdaio_handle *h, struct nbdaio_cmd *cmd,
                        const uint8_t *p)
{
  uint32_t ctx = wire_get32 (p), count = wire_get32 (p + 4);
  uint32_t n = (h->rx.length - 8) / 16;
  const char *name;
  int idx;

  if (count != n)
    return set_violation (RULE_EXT_BS_COUNT, "NBD_REPLY_TYPE_BLOCK_STATUS_EXT "
                          "of cookie 0x%llx says %u descriptors, its length "
                          "%u holds %u", (unsigned long long) cmd->cookie,
                          count, h->rx.length, n);
  if ((idx = bs_prepare (h, cmd, ctx, n)) == -1)
    return -1;
  name = h->info.metas[idx].name;
  for (uint32_t i = 0; i < n; i++) {
    nbdaio_extent64 *x = &h->extents64[i];
    x->length = wire_get64 (p + 8 + 16 * i);
    x->flags = wire_get64 (p + 16 + 16 * i);
    if (x->length == 0)
      return bs_zero_length (cmd, i);
    if (x->flags > UINT32_MAX && strncmp (name, "base:", 5) == 0)
      return set_violation (RULE_EXT_BS_STATUS, "extent %u of cookie 0x%llx "
                            "has status 0x%llx in context %s (the high 32 "
                            "bits MUST be zero in base: contexts)", i,
                            (unsigned long long) cmd->cookie,
                            (unsigned long long) x->flags,
                            ESCAPED (name, strlen (name)));
  }
  return bs_deliver (h, cmd, idx, n);
}

static int
chunk_error (struct nbdaio_handle *h, struct nbdaio_cmd *cmd, const uint8_t *p)
{
  uint16_t type = h->rx.chunk_type;
  uint32_t len = h->rx.length, werr = wire_get32 (p);
  uint32_t msglen = wire_get16 (p + 4);
  uint32_t room = len - 6 - (type == NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0);
  int err;

  if (werr == 0)
    return set_violation (RULE_CHUNK_ERROR_ZERO,
                          "%s with error 0 (cookie 0x%llx)",
                          proto_chunk_name (type),
                          (unsigned long long) cmd->cookie);
  if (len < 6 + (type == NBD_REPLY_TYPE_ERROR_OFFSET ? 8u : 0u) ||
      (type == NBD_REPLY_TYPE_ERROR || type == NBD_REPLY_TYPE_ERROR_OFFSET ?
       msglen != room : msglen > room)) {
    set_violation (RULE_CHUNK_ERROR_LENGTH, "%s of length %u carries a "
                   "message of %u bytes (%s, cookie 0x%llx)",
                   proto_chunk_name (type), len, msglen,
                   proto_cmd_name (cmd->type),
                   (unsigned long long) cmd->cookie);
    return final_chunk_violation (h, cmd);
  }
  err = proto_errno_from_wire (werr);
  debug (h->debug, "error chunk cookie 0x%llx: %s: %s",
         (unsigned long long) cmd->cookie, strerror (err),
         ESCAPED (p + 6, msglen));
  if (type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    uint64_t off = wire_get64 (p + 6 + msglen);
    if (check_inside (cmd, off, 1, "error offset") == -1)
      return -1;
    if (cmd->type == NBD_CMD_READ)
      call_chunk (cmd, off, 0, NBDAIO_READ_ERROR, err);
  }
  cmd_set_error (cmd, err);
  return chunk_done (h, cmd);
}

/* The buffered payload of the current chunk is complete at p. */
static int
chunk_payload (struct nbdaio_handle *h, const uint8_t *p)
{
  struct nbdaio_cmd *cmd = h->rx.cmd;

  switch (h->rx.chunk_type) {
  case NBD_REPLY_TYPE_OFFSET_DATA:  return chunk_data_start (h, cmd, p);
  case NBD_REPLY_TYPE_OFFSET_HOLE:  return chunk_hole (h, cmd, p);
  case NBD_REPLY_TYPE_BLOCK_STATUS: return chunk_block_status (h, cmd, p);
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    return chunk_block_status_ext (h, cmd, p);
  default:                          return chunk_error (h, cmd, p);
  }
}

/* A chunk larger than RBUF_SIZE was consumed: give the memory it took
 * back (the buffer returns to RBUF_SIZE, a large extents array is freed). */
static void
reply_shrink (struct nbdaio_handle *h)
{
  size_t avail = h->rlen - h->rpos;
  uint8_t *b;

  if (h->extents_cap * sizeof *h->extents > RBUF_SIZE) {
    free (h->extents);
    h->extents = NULL;
    h->extents_cap = 0;
  }
  if (h->extents64_cap * sizeof *h->extents64 > RBUF_SIZE) {
    free (h->extents64);
    h->extents64 = NULL;
    h->extents64_cap = 0;
  }
  if (avail > RBUF_SIZE)
    return;
  memmove (h->rbuf, h->rbuf + h->rpos, avail);
  h->rpos = 0;
  h->rlen = avail;
  b = realloc (h->rbuf, RBUF_SIZE);
  if (b) {                      /* else keep the larger one */
    h->rbuf = b;
    h->rcap = RBUF_SIZE;
  }
}

void
reply_release (struct nbdaio_handle *h)
{
  free (h->rbuf);
  free (h->extents);
  free (h->extents64);
  h->rbuf = NULL;
  h->extents = NULL;
  h->extents64 = NULL;
  h->rcap = h->rpos = h->rlen = 0;
  h->extents_cap = h->extents64_cap = 0;
}

/* A reply header starts with magic, not one of the negotiated mode. */
static int
wrong_magic (struct nbdaio_handle *h, uint32_t magic)
{
  if (h->info.extended || magic == NBD_MAGIC_EXT_REPLY)
    return set_violation (RULE_EXT_REPLY_MAGIC, "reply magic 0x%08x with "
                          "extended headers %s (expected 0x%08x%s)", magic,
                          h->info.extended ? "negotiated" : "not negotiated",
                          h->info.extended ? NBD_MAGIC_EXT_REPLY :
                          NBD_MAGIC_SIMPLE_REPLY,
                          h->info.extended ? ", the only reply allowed" :
                          h->info.structured_replies ? " or 0x668e33ef" : "");
  return set_violation (RULE_REPLY_MAGIC, "reply magic 0x%08x (expected "
                        "0x%08x%s)", magic, NBD_MAGIC_SIMPLE_REPLY,
                        h->info.structured_replies ? " or 0x668e33ef" :
                        ": structured replies were not negotiated");
}

/* Parse what the buffer holds.  Returns 0 when more bytes are needed, -1 on
 * a violation (the last error says which). */
static int
parse (struct nbdaio_handle *h)
{
  struct rx *rx = &h->rx;

  while (h->state == H_CONNECTED) {
    const uint8_t *p = h->rbuf + h->rpos;
    size_t avail = h->rlen - h->rpos;
    uint32_t magic;

    switch (rx->state) {
    case RX_HEADER:
      if (avail < 4)
        return 0;
      magic = wire_get32 (p);
      if (h->info.extended) {
        if (magic != NBD_MAGIC_EXT_REPLY)
          return wrong_magic (h, magic);
        if (avail < NBD_EXT_REPLY_LEN)
          return 0;
        h->rpos += NBD_EXT_REPLY_LEN;
        if (ext_header (h, p) == -1)
          return -1;
      }
      else if (magic == NBD_MAGIC_SIMPLE_REPLY) {
        if (avail < NBD_SIMPLE_REPLY_LEN)
          return 0;
        h->rpos += NBD_SIMPLE_REPLY_LEN;
        if (simple_reply (h, p) == -1)
          return -1;
      }
      else if (magic == NBD_MAGIC_STRUCTURED_REPLY && h->info.structured_replies) {
        if (avail < NBD_STRUCTURED_REPLY_LEN)
          return 0;
        h->rpos += NBD_STRUCTURED_REPLY_LEN;
        if (chunk_header (h, p) == -1)
          return -1;
      }
      else
        return wrong_magic (h, magic);
      break;
    case RX_PAYLOAD:
      if (avail < rx->need)
        return 0;
      h->rpos += rx->need;
      if (chunk_payload (h, p) == -1)
        return -1;
      if (h->rcap > RBUF_SIZE)
        reply_shrink (h);
      break;
    case RX_DATA:
      if (rx->remaining) {
        uint32_t n = avail < rx->remaining ? (uint32_t) avail : rx->remaining;
        memcpy (rx->dest, p, n);
        rx->dest += n;
        rx->remaining -= n;
        h->rpos += n;
        if (rx->remaining)
          return 0;
      }
      if (data_done (h) == -1)
        return -1;
      break;
    }
  }
  return 0;
}

/* Make room in the buffer for what the parser waits for: move the unparsed
 * bytes to the front when what is awaited would not fit behind them; grow
 * the buffer (doubling, up to what is awaited) only when it is full, so
 * that a chunk larger than RBUF_SIZE costs memory as its bytes arrive, not
 * as soon as its header announces it. */
static int
make_room (struct nbdaio_handle *h)
{
  size_t avail = h->rlen - h->rpos;
  size_t need = h->rx.state == RX_PAYLOAD ? h->rx.need :
    h->info.extended ? NBD_EXT_REPLY_LEN : NBD_STRUCTURED_REPLY_LEN;

  if (h->rpos && (h->rpos == h->rlen || h->rcap - h->rpos < need)) {
    memmove (h->rbuf, h->rbuf + h->rpos, avail);
    h->rpos = 0;
    h->rlen = avail;
  }
  if (h->rlen == h->rcap) {     /* then need > rcap: the parser waits */
    size_t cap = 2 * h->rcap < need ? 2 * h->rcap : need;
    uint8_t *b = realloc (h->rbuf, cap);
    if (!b)
      return set_error (ENOMEM, "out of memory growing the reply buffer to "
                        "%zu bytes (for a %zu-byte chunk)", cap, need);
    h->rbuf = b;
    h->rcap = cap;
  }
  return 0;
}

static int
read_loop (struct nbdaio_handle *h)
{
  for (;;) {
    struct iovec iov[2];
    int n = 0;
    size_t want = 0, direct = 0;
    ssize_t r;

    if (parse (h) == -1)
      return conn_die (h, EPROTO);
    if (h->state != H_CONNECTED)
      return 0;
    if (make_room (h) == -1)
      return conn_die (h, ENOMEM);
    if (h->rx.state == RX_DATA && h->rpos == h->rlen && h->rx.remaining) {
      /* payload straight into the caller's buffer, then the next header */
      direct = h->rx.remaining;
      iov[n].iov_base = h->rx.dest;
      iov[n++].iov_len = direct;
      h->rpos = h->rlen = 0;
    }
    iov[n].iov_base = h->rbuf + h->rlen;
    iov[n++].iov_len = h->rcap - h->rlen;
    for (int i = 0; i < n; i++)
      want += iov[i].iov_len;

    r = h->t.readv (&h->t, iov, n);
    if (r == 0) {
      set_error (ENOTCONN, "server closed the connection%s",
                 h->in_flight ? " with commands in flight" : "");
      return conn_die (h, ENOTCONN);
    }
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      set_error (ENOTCONN, "reading from server: %s",
                 transport_strerror (&h->t, errno));
      return conn_die (h, ENOTCONN);
    }
    h->st.bytes_received += (size_t) r;
    if (direct) {
      size_t k = (size_t) r < direct ? (size_t) r : direct;
      h->rx.dest += k;
      h->rx.remaining -= k;
      h->rlen += (size_t) r - k;
    }
    else
      h->rlen += (size_t) r;
    if ((size_t) r < want) {
      /* a short read means the socket is drained: no EAGAIN round trip */
      if (parse (h) == -1)
        return conn_die (h, EPROTO);
      return 0;
    }
  }
}

int
reply_read (struct nbdaio_handle *h)
{
  int r;

  h->reading = true;
  r = read_loop (h);
  h->reading = false;
  return r;
}
