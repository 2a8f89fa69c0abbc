/* stats.c - nbdaio_get_stats: the handle's counters (struct handle_stats,
 * plain increments on paths that run anyway: send.c, reply.c, cmd.c,
 * loop.c, deadline.c) handed out as struct nbdaio_stats, of which the
 * caller may know only a first part (versioned by size). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "internal.h"

/* Where each command type's counters go in struct nbdaio_stats. */
static const struct {
  uint16_t type;
  size_t at;
} cmd_fields[] = {
  { NBD_CMD_READ,         offsetof (struct nbdaio_stats, read) },
  { NBD_CMD_WRITE,        offsetof (struct nbdaio_stats, write) },
  { NBD_CMD_FLUSH,        offsetof (struct nbdaio_stats, flush) },
  { NBD_CMD_TRIM,         offsetof (struct nbdaio_stats, trim) },
  { NBD_CMD_WRITE_ZEROES, offsetof (struct nbdaio_stats, zero) },
  { NBD_CMD_CACHE,        offsetof (struct nbdaio_stats, cache) },
  { NBD_CMD_BLOCK_STATUS, offsetof (struct nbdaio_stats, block_status) },
};

int
nbdaio_get_stats (struct nbdaio_handle *h, struct nbdaio_stats *out,
                  size_t size)
{
  struct nbdaio_stats s = { 0 };
  const struct handle_stats *st;

  if (!h || !out)
    return set_error (EINVAL, "%s is NULL", h ? "stats buffer" : "handle");
  st = &h->st;
  for (size_t i = 0; i < sizeof cmd_fields / sizeof cmd_fields[0]; i++) {
    struct nbdaio_cmd_stats *c =
      (struct nbdaio_cmd_stats *) ((char *) &s + cmd_fields[i].at);
    uint16_t t = cmd_fields[i].type;

    c->issued = st->issued[t];
    c->completed = st->completed[t];
    c->failed = st->failed[t];
  }
  s.bytes_sent = st->bytes_sent;
  s.bytes_received = st->bytes_received;
  s.payload_sent = st->payload_sent;
  s.payload_received = st->payload_received;
  s.simple_replies = st->simple_replies;
  s.structured_chunks = st->chunks;
  s.timeouts = st->timeouts;
  s.violations = st->violations;
  s.reconnects = st->reconnects;
  s.commands_resent = st->resent;
  s.downtime_ms = st->downtime_ms;
  s.command_violations = st->command_violations;
  return stats_copy_out (&s, out, size);
}

int
stats_copy_out (const struct nbdaio_stats *s, struct nbdaio_stats *out,
                size_t size)
{
  if (size > sizeof *s) {
    memset ((char *) out + sizeof *s, 0, size - sizeof *s);
    size = sizeof *s;
  }
  memcpy (out, s, size);
  return (int) size;
}
