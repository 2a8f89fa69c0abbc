/* send.c - the send queue: issued commands wait here in issue order and
 * leave in batched sendmsg calls (headers and write payloads gathered into
 * one iovec array, payloads never copied), resuming after partial writes.
 * Each command that has left joins the sent list of deadline.c, stamped
 * with the one clock read of its batch (only with a request timeout).
 *
 * With auto-submit off only the first sq_go entries of the queue (those
 * queued before the last nbdaio_aio_submit) may leave; the others wait
 * for the next submit, whatever reads or notify calls happen meanwhile. */
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
  h->req_len = h->info.extended ? NBD_EXT_REQUEST_LEN : NBD_REQUEST_LEN;
  h->sq_mask = size - 1;
  h->sq_head = h->sq_len = 0;
  h->sq_sent = 0;
  h->sq_go = 0;
  h->sent.head = h->sent.tail = CMD_NONE;
  h->nsent = 0;
  h->sq_head_ms = -1;
  return 0;
}

/* With auto-submit off, a piece that the reply reader queues (a split
 * command's earlier piece completed and freed its slot) continues a
 * command already submitted: it joins the submitted part of the queue,
 * swapping places with the first unsubmitted entry (O(1)). */
static void
submit_piece (struct nbdaio_handle *h, uint32_t tail)
{
  uint32_t pos = (h->sq_head + h->sq_go) & h->sq_mask;
  uint32_t idx = h->sendq[tail];

  h->sendq[tail] = h->sendq[pos];
  h->sendq[pos] = idx;
  h->sq_go++;
}

void
send_submit_last (struct nbdaio_handle *h)
{
  if (h->auto_submit_off && h->sq_go < h->sq_len)
    submit_piece (h, (h->sq_head + h->sq_len - 1) & h->sq_mask);
}

void
send_enqueue (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  uint32_t tail = (h->sq_head + h->sq_len) & h->sq_mask;

  h->sendq[tail] = (uint32_t) (cmd - h->cmds);
  h->sq_len++;
  h->st.issued[cmd->type]++;
  if (h->auto_submit_off && h->reading && cmd->parent != CMD_NONE)
    submit_piece (h, tail);
}

static size_t
cmd_wire_len (const struct nbdaio_handle *h, const struct nbdaio_cmd *cmd)
{
  return cmd_hdr_len (h, cmd) + (cmd->type == NBD_CMD_WRITE ? cmd->count : 0);
}

/* Fill h->iov from the queue; returns the iovec count, *bytes the total. */
static int
gather (struct nbdaio_handle *h, size_t *bytes)
{
  int n = 0;
  size_t skip = h->sq_sent, total = 0;
  uint32_t ready = send_ready (h);

  for (uint32_t i = 0; i < ready && n + 2 <= SEND_IOV_MAX; i++) {
    struct nbdaio_cmd *cmd = &h->cmds[h->sendq[(h->sq_head + i) & h->sq_mask]];
    size_t hlen = cmd_hdr_len (h, cmd);
    if (skip < hlen) {
      h->iov[n].iov_base = cmd->hdr + skip;
      h->iov[n].iov_len = hlen - skip;
      total += h->iov[n++].iov_len;
      skip = 0;
    }
    else
      skip -= hlen;
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
    size_t len = cmd_wire_len (h, cmd);
    if (sent < len)
      break;
    sent -= len;
    cmd->state = CMD_SENT;
    deadline_sent (h, cmd);
    if (cmd->type == NBD_CMD_WRITE)
      h->st.payload_sent += cmd->count;
    h->sq_head = (h->sq_head + 1) & h->sq_mask;
    h->sq_len--;
    if (h->sq_go)
      h->sq_go--;
    done++;
    debug (h->debug, "sent %s cookie 0x%llx offset %llu count %llu flags 0x%x",
           proto_cmd_name (cmd->type), (unsigned long long) cmd->cookie,
           (unsigned long long) cmd->offset, (unsigned long long) cmd->count,
           cmd->flags);
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
  while (send_ready (h) && h->state == H_CONNECTED) {
    size_t want;
    int n = gather (h, &want);
    ssize_t r = h->t.writev (&h->t, h->iov, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (errno == EPIPE || errno == ECONNRESET) {
        /* the server closed: first take the replies it sent before it
         * did (they complete their commands), unless a callback of the
         * reply reader is sending; the read ends with the EOF, which
         * ends the connection (-1) or starts a reconnect */
        if (!h->reading) {
          if (reply_read (h) == -1)
            return -1;
          if (h->state != H_CONNECTED)
            return done;
        }
        set_error (ENOTCONN, "server closed the connection (while sending)");
        return conn_die (h, ENOTCONN);
      }
      set_error (errno, "sending to server: %s",
                 transport_strerror (&h->t, errno));
      return conn_die (h, errno == ENOTCONN ? ENOTCONN : errno);
    }
    h->st.bytes_sent += (size_t) r;
    done += advance (h, (size_t) r);
    if ((size_t) r < want)
      break;                    /* socket buffer full: wait for POLLOUT */
  }
  if (send_ready (h) && h->state == H_CONNECTED)
    deadline_send_blocked (h);
  return done;
}

int
send_disconnect (struct nbdaio_handle *h)
{
  uint8_t hdr[NBD_EXT_REQUEST_LEN];

  request_header_put (hdr, h->info.extended, 0, NBD_CMD_DISC, 0, 0, 0);
  debug (h->debug, "sending NBD_CMD_DISC");
  h->disc_sent = true;
  /* 28 or 32 bytes on an idle socket: a short deadline is plenty. */
  if (transport_write_full (&h->t, hdr, h->req_len,
                            transport_now_ms () + 1000) == -1)
    return -1;
  h->st.bytes_sent += h->req_len;
  transport_shutdown_write (&h->t);   /* TLS: close_notify first */
  return 0;
}

int
nbdaio_aio_submit (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  return send_submit_all (h);
}

int
nbdaio_set_auto_submit (struct nbdaio_handle *h, int auto_submit)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  h->auto_submit_off = auto_submit == 0;
  h->sq_go = h->sq_len;         /* what is queued now counts as submitted */
  return 0;
}

int
nbdaio_get_auto_submit (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  return !h->auto_submit_off;
}
