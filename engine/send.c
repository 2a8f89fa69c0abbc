/* send.c - the send queue: issued commands wait here in issue order and
 * leave in batched sendmsg calls (headers and write payloads gathered into
 * one iovec array, payloads never copied), resuming after partial writes.
 * Each command that has left joins the sent list of deadline.c, stamped
 * with the one clock read of its batch (only with a request timeout). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "debug.h"
#include "error.h"
#include "internal.h"

int
send_init (struct nbdaio_handle *h)
{
  uint32_t size = 1;

  while (size < h->ncmds)
    size <<= 1;
  h->sendq = malloc (size * sizeof *h->sendq);
  h->iov = malloc (SEND_IOV_MAX * sizeof *h->iov);
  if (!h->sendq || !h->iov)
    return set_error (ENOMEM, "out of memory allocating the send queue");
  h->sq_mask = size - 1;
  h->sq_head = h->sq_len = 0;
  h->sq_sent = 0;
  h->sent_head = h->sent_tail = CMD_NONE;
  h->sq_head_ms = -1;
  return 0;
}

void
send_enqueue (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  h->sendq[(h->sq_head + h->sq_len) & h->sq_mask] = (uint32_t) (cmd - h->cmds);
  h->sq_len++;
  h->st.issued[cmd->type]++;
}

static size_t
cmd_wire_len (const struct nbdaio_cmd *cmd)
{
  return NBD_REQUEST_LEN + (cmd->type == NBD_CMD_WRITE ? cmd->count : 0);
}

/* Fill h->iov from the queue; returns the iovec count, *bytes the total. */
static int
gather (struct nbdaio_handle *h, size_t *bytes)
{
  int n = 0;
  size_t skip = h->sq_sent, total = 0;

  for (uint32_t i = 0; i < h->sq_len && n + 2 <= SEND_IOV_MAX; i++) {
    struct nbdaio_cmd *cmd = &h->cmds[h->sendq[(h->sq_head + i) & h->sq_mask]];
    if (skip < NBD_REQUEST_LEN) {
      h->iov[n].iov_base = cmd->hdr + skip;
      h->iov[n].iov_len = NBD_REQUEST_LEN - skip;
      total += h->iov[n++].iov_len;
      skip = 0;
    }
    else
      skip -= NBD_REQUEST_LEN;
    if (cmd->type == NBD_CMD_WRITE && cmd->count > skip) {
      h->iov[n].iov_base = (uint8_t *) cmd->buf + skip;
      h->iov[n].iov_len = cmd->count - skip;
      total += h->iov[n++].iov_len;
    }
    skip = 0;
  }
  *bytes = total;
  return n;
}

/* Account for sent bytes: commands fully sent become CMD_SENT. */
static int
advance (struct nbdaio_handle *h, size_t sent)
{
  int done = 0;

  sent += h->sq_sent;
  while (h->sq_len) {
    struct nbdaio_cmd *cmd = &h->cmds[h->sendq[h->sq_head]];
    size_t len = cmd_wire_len (cmd);
    if (sent < len)
      break;
    sent -= len;
    cmd->state = CMD_SENT;
    deadline_sent (h, cmd);
    if (cmd->type == NBD_CMD_WRITE)
      h->st.payload_sent += cmd->count;
    h->sq_head = (h->sq_head + 1) & h->sq_mask;
    h->sq_len--;
    done++;
    debug (h->debug, "sent %s cookie 0x%llx offset %llu count %u flags 0x%x",
           proto_cmd_name (cmd->type), (unsigned long long) cmd->cookie,
           (unsigned long long) cmd->offset, cmd->count, cmd->flags);
  }
  h->sq_sent = sent;
  return done;
}

int
send_flush (struct nbdaio_handle *h)
{
  int done = 0;

  if (h->request_timeout_ms)
    h->send_ms = deadline_clock ();     /* once per batch */
  while (h->sq_len && h->state == H_CONNECTED) {
    size_t want;
    int n = gather (h, &want);
    ssize_t r = h->t.writev (&h->t, h->iov, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (errno == EPIPE || errno == ECONNRESET) {
        set_error (ENOTCONN, "server closed the connection (while sending)");
        return conn_die (h, ENOTCONN);
      }
      set_error (errno, "sending to server: %s", strerror (errno));
      return conn_die (h, errno == ENOTCONN ? ENOTCONN : errno);
    }
    h->st.bytes_sent += (size_t) r;
    done += advance (h, (size_t) r);
    if ((size_t) r < want)
      break;                    /* socket buffer full: wait for POLLOUT */
  }
  if (h->sq_len && h->state == H_CONNECTED)
    deadline_send_blocked (h);
  return done;
}

int
send_disconnect (struct nbdaio_handle *h)
{
  uint8_t hdr[NBD_REQUEST_LEN] = { 0 };

  wire_put32 (hdr, NBD_MAGIC_REQUEST);
  wire_put16 (hdr + 6, NBD_CMD_DISC);
  debug (h->debug, "sending NBD_CMD_DISC");
  h->disc_sent = true;
  /* 28 bytes on an idle socket: a short deadline is plenty. */
  if (transport_write_full (&h->t, hdr, sizeof hdr,
                            transport_now_ms () + 1000) == -1)
    return -1;
  h->st.bytes_sent += sizeof hdr;
  shutdown (h->t.fd, SHUT_WR);
  return 0;
}

int
nbdaio_aio_submit (struct nbdaio_handle *h)
{
  if (conn_check_connected (h) == -1)
    return -1;
  return send_flush (h);
}
