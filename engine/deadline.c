/* deadline.c - request-timeout: a command sent to the server that gets no
 * reply within the timeout ends the connection (NBD cannot cancel a
 * command), and every command in flight completes with ETIMEDOUT.
 *
 * Commands leave in the order they were queued, so the sent and unanswered
 * ones form a list in send order (threaded through the slots: O(1) to
 * append as they leave, O(1) to remove as their replies come, in any
 * order), stamped with a coarse clock read once per send batch; its head
 * is the oldest, so the next deadline costs O(1) and nothing is scanned.
 * A queue head that could not leave whole (the server stopped reading)
 * has its clock started when the send that left it behind ran.
 *
 * The waiting and notify paths (loop.c) ask for the next deadline before
 * they wait and check it after they have read: a reply that has arrived
 * is always taken before a command is declared late. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "error.h"
#include "internal.h"

int64_t
deadline_clock (void)
{
  return transport_clock_ms (CLOCK_MONOTONIC_COARSE);
}

void
deadline_sent (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  uint32_t idx = (uint32_t) (cmd - h->cmds);

  /* a head left behind by an earlier send started its clock then */
  cmd->sent_ms = h->sq_head_ms >= 0 ? h->sq_head_ms : h->send_ms;
  h->sq_head_ms = -1;
  h->nsent++;
  h->nleft++;
  slot_list_append (h, &h->sent, SLOT_LINK (sent), idx);
}

void
deadline_unsent (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  h->nsent--;
  slot_list_remove (h, &h->sent, SLOT_LINK (sent),
                    (uint32_t) (cmd - h->cmds));
}

void
deadline_send_blocked (struct nbdaio_handle *h)
{
  if (h->request_timeout_ms && h->sq_head_ms < 0)
    h->sq_head_ms = h->send_ms;
}

/* The oldest command waiting for the server, or NULL; *since is when its
 * clock started. */
static struct nbdaio_cmd *
oldest (struct nbdaio_handle *h, int64_t *since)
{
  if (h->sent.head != CMD_NONE) {
    *since = h->cmds[h->sent.head].sent_ms;
    return &h->cmds[h->sent.head];
  }
  if (h->sq_len && h->sq_head_ms >= 0) {
    *since = h->sq_head_ms;
    return &h->cmds[h->sendq[h->sq_head]];
  }
  return NULL;
}

/* When the oldest command waiting for the server expires (clock of
 * deadline_clock), or -1 when nothing can expire. */
static int64_t
next_deadline (struct nbdaio_handle *h, struct nbdaio_cmd **cmd)
{
  int64_t since;

  if (!h->request_timeout_ms || h->state != H_CONNECTED ||
      !(*cmd = oldest (h, &since)))
    return -1;
  return since + h->request_timeout_ms;
}

/* ms until deadline (>= 0) as a poll timeout, capped at INT_MAX. */
static int
ms_until (int64_t deadline)
{
  int64_t left = deadline - deadline_clock ();

  return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

int
deadline_poll_ms (struct nbdaio_handle *h, int timeout_ms)
{
  struct nbdaio_cmd *cmd;
  int64_t deadline = next_deadline (h, &cmd);
  int left;

  if (deadline < 0)
    return timeout_ms;
  left = ms_until (deadline);
  return timeout_ms < 0 || left < timeout_ms ? left : timeout_ms;
}

int
deadline_check (struct nbdaio_handle *h)
{
  struct nbdaio_cmd *cmd;
  int64_t deadline = next_deadline (h, &cmd);
  bool sent;

  if (deadline < 0 || deadline_clock () < deadline)
    return 0;
  sent = cmd->state == CMD_SENT;
  set_error (ETIMEDOUT, "request timed out: %s [offset %llu, length %llu] "
             "(cookie 0x%llx) %s within %u ms (request-timeout); the "
             "connection was ended (NBD cannot cancel a command) and every "
             "command in flight (%u) failed with ETIMEDOUT",
             proto_cmd_name (cmd->type), (unsigned long long) cmd->offset,
             (unsigned long long) cmd->count, (unsigned long long) cmd->cookie,
             sent ? "got no reply" : "could not be sent whole (the server "
             "stopped reading)", h->request_timeout_ms, h->in_flight);
  h->st.timeouts++;
  return conn_die (h, ETIMEDOUT);
}

int
nbdaio_aio_get_timeout (struct nbdaio_handle *h)
{
  struct nbdaio_cmd *cmd;
  int64_t deadline;

  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  if (h->state == H_RECONNECTING)
    return reconnect_timeout (h);       /* the next attempt */
  deadline = next_deadline (h, &cmd);
  return deadline < 0 ? -1 : ms_until (deadline);
}
