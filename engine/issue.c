/* issue.c - the aio command calls: local checks against what the server
 * advertised (NBDAIO_STRICT_*), a command slot, the encoded request, and the
 * send queue; or, for a command longer than one request may carry, a split
 * command (split.c).  On every failure each supplied free function runs
 * once. */
#include <errno.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "internal.h"

/* Flags each command may carry, and the transmission flag each needs. */
static uint32_t
flags_allowed (uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ:         return NBDAIO_CMD_FLAG_DF;
  case NBD_CMD_WRITE:        return NBDAIO_CMD_FLAG_FUA;
  case NBD_CMD_TRIM:         return NBDAIO_CMD_FLAG_FUA;
  case NBD_CMD_WRITE_ZEROES:
    return NBDAIO_CMD_FLAG_FUA | NBDAIO_CMD_FLAG_NO_HOLE |
           NBDAIO_CMD_FLAG_FAST_ZERO;
  case NBD_CMD_BLOCK_STATUS: return NBDAIO_CMD_FLAG_REQ_ONE;
  default:                   return 0;
  }
}

static int
check_flags (struct nbdaio_handle *h, uint16_t type, uint32_t flags)
{
  static const struct { uint32_t flag; uint16_t tflag; const char *name; } need[] = {
    { NBDAIO_CMD_FLAG_FUA,       NBD_FLAG_SEND_FUA,       "FUA" },
    { NBDAIO_CMD_FLAG_DF,        NBD_FLAG_SEND_DF,        "DF" },
    { NBDAIO_CMD_FLAG_FAST_ZERO, NBD_FLAG_SEND_FAST_ZERO, "FAST_ZERO" },
  };
  uint32_t bad = flags & ~flags_allowed (type);

  if (bad)
    return set_error (EINVAL, "flags 0x%x are not valid for %s", bad,
                      proto_cmd_name (type));
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
    if ((flags & need[i].flag) && !(h->info.tflags & need[i].tflag))
      return set_error (EINVAL, "server does not support the %s flag",
                        need[i].name);
  return 0;
}

static int
check_command (struct nbdaio_handle *h, uint16_t type)
{
  uint16_t f = h->info.tflags, want = 0;

  if ((type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
       type == NBD_CMD_WRITE_ZEROES) && (f & NBD_FLAG_READ_ONLY))
    return set_error (EPERM, "%s refused: the export is read-only",
                      proto_cmd_name (type));
  switch (type) {
  case NBD_CMD_FLUSH:        want = NBD_FLAG_SEND_FLUSH; break;
  case NBD_CMD_TRIM:         want = NBD_FLAG_SEND_TRIM; break;
  case NBD_CMD_WRITE_ZEROES: want = NBD_FLAG_SEND_WRITE_ZEROES; break;
  case NBD_CMD_CACHE:        want = NBD_FLAG_SEND_CACHE; break;
  case NBD_CMD_BLOCK_STATUS:
    if (!h->info.meta_context)
      return set_error (EINVAL, "NBD_CMD_BLOCK_STATUS needs a negotiated "
                        "meta context (the server offered none)");
    return 0;
  default:
    return 0;
  }
  if (!(f & want))
    return set_error (EINVAL, "server does not support %s",
                      proto_cmd_name (type));
  return 0;
}

/* split: the command is sent as pieces, each within the maximum
 * payload.  inline: on every command's path (gcc kept it out of line). */
static inline int
check_range (struct nbdaio_handle *h, uint16_t type, uint64_t offset,
             uint64_t count, bool split)
{
  unsigned strict = h->strict;

  if ((strict & NBDAIO_STRICT_BOUNDS) && type != NBD_CMD_FLUSH) {
    if (count == 0)
      return set_error (EINVAL, "%s of length 0 is not allowed",
                        proto_cmd_name (type));
    if (offset > h->info.size || count > h->info.size - offset)
      return set_error (EINVAL, "%s [%llu, +%llu) is beyond the end of the "
                        "export (size %llu)", proto_cmd_name (type),
                        (unsigned long long) offset, (unsigned long long) count,
                        (unsigned long long) h->info.size);
  }
  if ((strict & NBDAIO_STRICT_ALIGN) && h->align > 1 &&
      (offset % h->align || count % h->align))
    return set_error (EINVAL, "%s [%llu, +%llu) is not aligned to the "
                      "server's minimum block size %u", proto_cmd_name (type),
                      (unsigned long long) offset, (unsigned long long) count,
                      h->align);
  if ((strict & NBDAIO_STRICT_PAYLOAD) && !split &&
      (type == NBD_CMD_READ || type == NBD_CMD_WRITE) && count > h->max_payload)
    return set_error (ERANGE, "%s of %llu bytes exceeds the maximum payload "
                      "of %llu bytes (split is off)", proto_cmd_name (type),
                      (unsigned long long) count,
                      (unsigned long long) h->max_payload);
  return 0;
}

/* The longest request of this type one NBD request may carry: with
 * extended headers any 64-bit effect length (trim, zero, cache, block
 * status: the spec lets the client ask more than the maximum payload of
 * commands without one); else, and always for reads and writes, whose
 * payload the 32-bit INFO_BLOCK_SIZE maximum bounds, 32 bits. */
static uint64_t
max_length (const struct nbdaio_handle *h, uint16_t type)
{
  if (h->info.extended && type != NBD_CMD_READ && type != NBD_CMD_WRITE)
    return UINT64_MAX;
  return UINT32_MAX;
}

static int
too_long (uint16_t type, uint64_t count)
{
  bool payload = type == NBD_CMD_READ || type == NBD_CMD_WRITE;

  return set_error (ERANGE, "%s of %llu bytes: %s%s", proto_cmd_name (type),
                    (unsigned long long) count,
                    payload ? "a read or write payload is 32-bit" :
                    "without extended headers NBD lengths are 32-bit",
                    type == NBD_CMD_BLOCK_STATUS || type == NBD_CMD_FLUSH ?
                    "" : " (split is off)");
}

static int
check_all (struct nbdaio_handle *h, uint16_t type, uint32_t flags,
           uint64_t offset, uint64_t count, const void *buf, bool split)
{
  if (h && h->server_shutdown)
    return set_error (ESHUTDOWN, "server is shutting down (it answered "
                      "ESHUTDOWN): no new commands");
  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  if (h->disc_wanted)
    return set_error (ENOTCONN, "disconnect in progress: no new commands");
  if (count > max_length (h, type) && !split)
    return too_long (type, count);
  if ((type == NBD_CMD_READ || type == NBD_CMD_WRITE) && !buf && count)
    return set_error (EFAULT, "%s with a NULL buffer", proto_cmd_name (type));
  if ((h->strict & NBDAIO_STRICT_FLAGS) && check_flags (h, type, flags) == -1)
    return -1;
  if ((h->strict & NBDAIO_STRICT_COMMANDS) && check_command (h, type) == -1)
    return -1;
  if (flags > UINT16_MAX)
    return set_error (EINVAL, "flags 0x%x do not fit in 16 bits", flags);
  return check_range (h, type, offset, count, split);
}

/* Every negotiated context (the chunks an unfiltered block status
 * gets). */
static uint8_t
bs_all (const struct nbdaio_handle *h)
{
  return (uint8_t) ((1u << h->info.nmetas) - 1);
}

/* A filtered block status needs extended headers and the server's
 * NBD_FLAG_BLOCK_STATUS_PAYLOAD (the spec: a client SHOULD NOT send the
 * payload form otherwise). */
static int
check_filter_allowed (const struct nbdaio_handle *h)
{
  if (!h->info.extended)
    return set_error (ENOTSUP, "block status filtered to some contexts "
                      "needs extended headers, which were not negotiated");
  if (!(h->info.tflags & NBD_FLAG_BLOCK_STATUS_PAYLOAD))
    return set_error (ENOTSUP, "the server does not accept block status "
                      "filtered to some contexts (it did not advertise "
                      "NBD_FLAG_BLOCK_STATUS_PAYLOAD)");
  return 0;
}

/* A filtered block status's payload after the header: the effect length,
 * then the ids of the contexts in bs_want; the header's length is the
 * payload's.  Returns the payload's length. */
static uint32_t
encode_filter (const struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  uint8_t *p = cmd->hdr + NBD_EXT_REQUEST_LEN;
  uint32_t len = NBD_BS_FILTER_HEAD_LEN;

  wire_put64 (p, cmd->count);
  for (uint32_t i = 0; i < h->info.nmetas; i++)
    if (cmd->bs_want & (1u << i)) {
      wire_put32 (p + len, h->info.metas[i].id);
      len += 4;
    }
  return len;
}

void
request_header_put (uint8_t *hdr, bool ext, uint16_t flags, uint16_t type,
                    uint64_t cookie, uint64_t offset, uint64_t length)
{
  wire_put32 (hdr, ext ? NBD_MAGIC_EXT_REQUEST : NBD_MAGIC_REQUEST);
  wire_put16 (hdr + 4, flags);
  wire_put16 (hdr + 6, type);
  wire_put64 (hdr + 8, cookie);
  wire_put64 (hdr + 16, offset);
  if (ext)
    wire_put64 (hdr + 24, length);
  else
    wire_put32 (hdr + 24, (uint32_t) length);
}

/* Encode the request: 28 bytes, or with extended headers 32 with a
 * 64-bit length and NBD_CMD_FLAG_PAYLOAD_LEN where a payload follows (a
 * write: its data; a filtered block status: the filter, in hdr after the
 * header). */
static void
cmd_encode (const struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  bool ext = h->info.extended;
  uint16_t flags = cmd->flags;
  uint64_t length = cmd->count;

  cmd->hdr_extra = 0;
  if (ext && cmd->bs_filter) {
    cmd->hdr_extra = (uint8_t) encode_filter (h, cmd);
    length = cmd->hdr_extra;
  }
  if (ext && (cmd->type == NBD_CMD_WRITE || cmd->bs_filter))
    flags |= NBD_CMD_FLAG_PAYLOAD_LEN;
  request_header_put (cmd->hdr, ext, flags, cmd->type, cmd->cookie,
                      cmd->offset, length);
}

void
cmd_queue (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  cmd_encode (h, cmd);
  cmd->state = CMD_QUEUED;
  send_enqueue (h, cmd);
}

int
cmd_recheck (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  if ((h->strict & NBDAIO_STRICT_FLAGS) &&
      check_flags (h, cmd->type, cmd->flags) == -1)
    return -1;
  if ((h->strict & NBDAIO_STRICT_COMMANDS) && check_command (h, cmd->type) == -1)
    return -1;
  if (cmd->count > max_length (h, cmd->type))
    return too_long (cmd->type, cmd->count);
  if (cmd->bs_filter && check_filter_allowed (h) == -1)
    return -1;
  if (cmd->bs_filter && cmd->bs_want >> h->info.nmetas)
    return set_error (ENOTSUP, "block status filtered to %d meta contexts: "
                      "the new connection negotiated %u",
                      __builtin_popcount (cmd->bs_want), h->info.nmetas);
  if (cmd->type == NBD_CMD_BLOCK_STATUS && !cmd->bs_filter)
    cmd->bs_want = bs_all (h);
  if (check_range (h, cmd->type, cmd->offset, cmd->count, false) == -1)
    return -1;
  cmd_encode (h, cmd);          /* the new connection's format and ids */
  return 0;
}

/* Issue one command; the caller passes every callback it was given.
 * filter: a block status's contexts (bits of info.metas), 0 for all of
 * them unfiltered. */
static int64_t
issue_cmd (struct nbdaio_handle *h, uint16_t type, uint32_t flags,
           uint64_t offset, uint64_t count, void *buf,
           nbdaio_chunk_callback *chunk, nbdaio_extent_callback *extent,
           nbdaio_completion_callback *completion, uint8_t filter)
{
  bool split = split_needed (h, type, count);
  struct nbdaio_cmd *cmd;

  if (check_all (h, type, flags, offset, count, buf, split) == -1 ||
      !(cmd = cmd_alloc (h))) {
    struct saved_error e;
    error_save (&e);            /* free functions may clobber it */
    callbacks_release (chunk, extent, completion);
    return error_restore (&e);
  }
  cmd->type = type;
  cmd->flags = (uint16_t) flags;
  cmd->offset = offset;
  cmd->count = split ? 0 : count; /* a split one is not sent */
  cmd->buf = buf;
  cmd->bs_filter = filter != 0;
  cmd->bs_want = filter ? filter :
    type == NBD_CMD_BLOCK_STATUS ? bs_all (h) : 0;
  cmd->chunk = chunk ? *chunk : NBDAIO_NULL_CHUNK;
  if (extent)
    cmd->extent = *extent;
  else
    memset (&cmd->extent, 0, sizeof cmd->extent);
  cmd->extent64 = NULL;         /* nbdaio_aio_block_status_64 sets it */
  cmd->completion = completion ? *completion : NBDAIO_NULL_COMPLETION;
  h->in_flight++;
  if (h->group)
    group_cmd_issued (h, cmd);
  if (split)
    split_start (h, cmd, count);
  else
    cmd_queue (h, cmd);
  return (int64_t) cmd->cookie;
}

static int64_t
issue (struct nbdaio_handle *h, uint16_t type, uint32_t flags,
       uint64_t offset, uint64_t count, void *buf,
       nbdaio_chunk_callback *chunk, nbdaio_extent_callback *extent,
       nbdaio_completion_callback *completion)
{
  return issue_cmd (h, type, flags, offset, count, buf, chunk, extent,
                    completion, 0);
}

int64_t
nbdaio_aio_pread (struct nbdaio_handle *h, void *buf, size_t count,
                  uint64_t offset, nbdaio_completion_callback completion,
                  uint32_t flags)
{
  return issue (h, NBD_CMD_READ, flags, offset, count, buf, NULL, NULL,
                &completion);
}

int64_t
nbdaio_aio_pread_structured (struct nbdaio_handle *h, void *buf, size_t count,
                             uint64_t offset, nbdaio_chunk_callback chunk,
                             nbdaio_completion_callback completion,
                             uint32_t flags)
{
  return issue (h, NBD_CMD_READ, flags, offset, count, buf, &chunk, NULL,
                &completion);
}

int64_t
nbdaio_aio_pwrite (struct nbdaio_handle *h, const void *buf, size_t count,
                   uint64_t offset, nbdaio_completion_callback completion,
                   uint32_t flags)
{
  return issue (h, NBD_CMD_WRITE, flags, offset, count, (void *) buf, NULL,
                NULL, &completion);
}

int64_t
nbdaio_aio_trim (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
                 nbdaio_completion_callback completion, uint32_t flags)
{
  return issue (h, NBD_CMD_TRIM, flags, offset, count, NULL, NULL, NULL,
                &completion);
}

int64_t
nbdaio_aio_zero (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
                 nbdaio_completion_callback completion, uint32_t flags)
{
  return issue (h, NBD_CMD_WRITE_ZEROES, flags, offset, count, NULL, NULL,
                NULL, &completion);
}

int64_t
nbdaio_aio_cache (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
                  nbdaio_completion_callback completion, uint32_t flags)
{
  return issue (h, NBD_CMD_CACHE, flags, offset, count, NULL, NULL, NULL,
                &completion);
}

int64_t
nbdaio_aio_flush (struct nbdaio_handle *h,
                  nbdaio_completion_callback completion, uint32_t flags)
{
  return issue (h, NBD_CMD_FLUSH, flags, 0, 0, NULL, NULL, NULL, &completion);
}

int64_t
nbdaio_aio_block_status (struct nbdaio_handle *h, uint64_t count,
                         uint64_t offset, nbdaio_extent_callback extent,
                         nbdaio_completion_callback completion, uint32_t flags)
{
  return issue (h, NBD_CMD_BLOCK_STATUS, flags, offset, count, NULL, NULL,
                &extent, &completion);
}

int64_t
nbdaio_aio_block_status_64 (struct nbdaio_handle *h, uint64_t count,
                            uint64_t offset, nbdaio_extent64_callback extent,
                            nbdaio_completion_callback completion,
                            uint32_t flags)
{
  /* user_data and free travel in the 32-bit slot (one free path) */
  nbdaio_extent_callback slot = { NULL, extent.user_data, extent.free };
  int64_t cookie = issue (h, NBD_CMD_BLOCK_STATUS, flags, offset, count,
                          NULL, NULL, &slot, &completion);

  if (cookie >= 1)
    h->cmds[cookie & CMD_SLOT_MASK].extent64 = extent.callback;
  return cookie;
}

/* The bits of info.metas the NULL-terminated names select: each one
 * negotiated, none twice, at least one.  Returns the bits, or -1. */
static int
filter_bits (const struct nbdaio_handle *h, const char *const *contexts)
{
  unsigned bits = 0;

  if (!contexts || !contexts[0])
    return set_error (EINVAL, "block status filter names no meta context");
  for (size_t k = 0; contexts[k]; k++) {
    uint32_t i = 0;
    while (i < h->info.nmetas && strcmp (h->info.metas[i].name, contexts[k]))
      i++;
    if (i == h->info.nmetas)
      return set_error (EINVAL, "block status filter: meta context %s was "
                        "not negotiated",
                        ESCAPED (contexts[k], strlen (contexts[k])));
    if (bits & (1u << i))
      return set_error (EINVAL, "block status filter names meta context %s "
                        "twice", ESCAPED (contexts[k], strlen (contexts[k])));
    bits |= 1u << i;
  }
  return (int) bits;
}

int64_t
nbdaio_aio_block_status_filter (struct nbdaio_handle *h, uint64_t count,
                                uint64_t offset,
                                const char *const *contexts,
                                nbdaio_extent64_callback extent,
                                nbdaio_completion_callback completion,
                                uint32_t flags)
{
  nbdaio_extent_callback slot = { NULL, extent.user_data, extent.free };
  int bits;
  int64_t cookie;

  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1 ||
      check_filter_allowed (h) == -1 ||
      (bits = filter_bits (h, contexts)) == -1) {
    struct saved_error e;
    error_save (&e);
    callbacks_release (NULL, &slot, &completion);
    return error_restore (&e);
  }
  cookie = issue_cmd (h, NBD_CMD_BLOCK_STATUS, flags, offset, count, NULL,
                      NULL, &slot, &completion, (uint8_t) bits);
  if (cookie >= 1)
    h->cmds[cookie & CMD_SLOT_MASK].extent64 = extent.callback;
  return cookie;
}
