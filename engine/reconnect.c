/* reconnect.c - reconnect-delay: a connection that was lost (EOF, reset,
 * a request timeout) is re-established to the same target (unix path or
 * TCP host and port, as the connect call named it) with the same settings
 * and TLS, and the commands in flight are resent in the order they were
 * first sent, ahead of those still queued (NBD reads, writes, zeroes,
 * trims, caches and block status are idempotent; a flush goes after what
 * was sent before it).  A protocol violation, a soft disconnect
 * (ESHUTDOWN, nbdaio_aio_disconnect), nbdaio_abort and an adopted socket
 * never reconnect.
 *
 * While reconnecting (H_RECONNECTING) commands may still be issued: they
 * queue.  Attempts run in the waiting and notify paths (loop.c): at once,
 * then after a backoff of 50 ms doubling up to 1 s, each connect and
 * handshake bounded by what is left of reconnect-delay (and the connect
 * timeout).  nbdaio_get_fd is then a timer descriptor that becomes
 * readable when the next attempt is due.  After a reconnect every command
 * is checked against what the server now advertises (size, flags, block
 * sizes); one that is no longer allowed fails with the error issuing it
 * would get.  When reconnect-delay runs out, every command fails with the
 * error of the loss (ENOTCONN, ETIMEDOUT). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "debug.h"
#include "error.h"
#include "internal.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS   1000
#define LAST_TRY_MS      20     /* the least time an attempt is given */

void
reconnect_free (struct nbdaio_handle *h)
{
  struct reconnect *rc = &h->rc;

  if (rc->timer_fd >= 0)
    close (rc->timer_fd);
  rc->timer_fd = -1;
  free (rc->path);
  free (rc->host);
  free (rc->port);
  free (rc->reason);
  rc->path = rc->host = rc->port = rc->reason = NULL;
  rc->kind = RC_NONE;
}

int
reconnect_remember (struct nbdaio_handle *h, enum rc_target kind,
                    const char *where, const char *port)
{
  struct reconnect *rc = &h->rc;

  /* kept also without reconnect-delay: nbdaio_group_create connects
   * more connections to it (a NULL target fails in the connect call) */
  reconnect_free (h);
  if (!where)
    return 0;
  if (kind == RC_UNIX)
    rc->path = strdup (where);
  else {
    rc->host = strdup (where);
    rc->port = strdup (port ? port : NBD_DEFAULT_PORT);
  }
  if (kind == RC_UNIX ? !rc->path : !rc->host || !rc->port) {
    reconnect_free (h);
    return set_error (ENOMEM, "out of memory remembering the target");
  }
  rc->kind = kind;
  return 0;
}

/* Errors that mean the connection was lost (not a violation, ENOMEM, a
 * caller's abort or close: those call conn_end or have other errors). */
static bool
is_loss (int err)
{
  return err == ENOTCONN || err == ETIMEDOUT || err == ECONNRESET ||
         err == EPIPE;
}

/* Make the timer readable at rc.next_try. */
static void
timer_arm (struct nbdaio_handle *h)
{
  int64_t ms = h->rc.next_try - transport_now_ms ();
  struct itimerspec its = { { 0, 0 }, { 0, 1 } };  /* 0 would disarm */

  if (ms > 0) {
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (ms % 1000) * 1000000;
  }
  timerfd_settime (h->rc.timer_fd, 0, &its, NULL);
}

static void
timer_clear (struct nbdaio_handle *h)
{
  uint64_t expirations;
  ssize_t r = read (h->rc.timer_fd, &expirations, sizeof expirations);

  (void) r;                     /* EAGAIN when it has not fired */
}

/* The command will go out again: forget what its first reply said. */
static void
cmd_reset (struct nbdaio_cmd *cmd)
{
  cmd->state = CMD_QUEUED;
  cmd->error = 0;
  cmd->covered = 0;
  cmd->nruns = 0;
  cmd->got_block_status = false;
  free (cmd->bits);
  cmd->bits = NULL;
}

/* Put every sent command back at the head of the send queue, in send
 * order, before those not sent yet (the queue holds every slot, so they
 * fit).  Returns how many go out again. */
static uint32_t
requeue_sent (struct nbdaio_handle *h)
{
  uint32_t n = h->sq_len && h->sq_sent ? 1 : 0;  /* a head half sent */

  for (uint32_t idx = h->sent.tail; idx != CMD_NONE;
       idx = h->cmds[idx].sent.prev) {
    h->sq_head = (h->sq_head - 1) & h->sq_mask;
    h->sendq[h->sq_head] = idx;
    h->sq_len++;
    h->sq_go++;                 /* it was submitted (auto-submit off) */
    cmd_reset (&h->cmds[idx]);
    n++;
  }
  h->sent.head = h->sent.tail = CMD_NONE;
  h->nsent = 0;
  h->sq_sent = 0;
  h->sq_head_ms = -1;
  return n;
}

bool
reconnect_begin (struct nbdaio_handle *h, int err)
{
  struct reconnect *rc = &h->rc;
  const char *msg = nbdaio_get_error ();
  int64_t now;

  if (!rc->delay_ms || rc->kind == RC_NONE || h->state != H_CONNECTED ||
      !is_loss (err) || h->disc_wanted || h->server_shutdown)
    return false;
  now = transport_now_ms ();
  if (rc->progress || !rc->outage)
    rc->outage = now;           /* a new outage */
  if (now >= rc->outage + rc->delay_ms) {
    /* lost again with nothing done since: the delay counts from the
     * first loss */
    char why[512];
    snprintf (why, sizeof why, "%s", msg ? msg : "connection lost");
    set_error (err, "%s (lost again with no command completed since the "
               "first loss %lld ms ago: reconnect-delay of %u ms has run "
               "out)", why, (long long) (now - rc->outage), rc->delay_ms);
    return false;
  }
  free (rc->reason);
  rc->reason = strdup (msg ? msg : "connection lost");
  rc->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (!rc->reason || rc->timer_fd == -1)
    return false;               /* conn_end: as without reconnect */
  transport_close (&h->t);
  reply_release (h);
  rc->requeued += requeue_sent (h);
  h->state = H_RECONNECTING;
  rc->progress = false;
  rc->err = err;
  rc->since = now;
  rc->deadline = rc->outage + rc->delay_ms;
  rc->next_try = now;
  rc->backoff_ms = BACKOFF_FIRST_MS;
  timer_arm (h);
  debug (h->debug, "connection lost (%s): reconnecting for up to %u ms with "
         "%u commands in flight", rc->reason, rc->delay_ms, h->in_flight);
  return true;
}

/* The commands the new connection does not allow, taken off the queue
 * (the rest keep their order) and chained through sent.next from *head.
 * Returns how many. */
static uint32_t
take_refused (struct nbdaio_handle *h, uint32_t *head)
{
  uint32_t kept = 0, n = h->sq_len, tail = CMD_NONE, refused = 0;
  uint32_t go = 0;              /* of the kept, submitted ones */

  *head = CMD_NONE;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t idx = h->sendq[(h->sq_head + i) & h->sq_mask];
    struct nbdaio_cmd *cmd = &h->cmds[idx];

    if (cmd_recheck (h, cmd) == 0) {
      h->sendq[(h->sq_head + kept++) & h->sq_mask] = idx;
      go += i < h->sq_go;
      continue;
    }
    cmd->error = nbdaio_get_errno ();
    debug (h->debug, "after reconnecting: %s", nbdaio_get_error ());
    cmd->sent.next = CMD_NONE;
    if (tail != CMD_NONE)
      h->cmds[tail].sent.next = idx;
    else
      *head = idx;
    tail = idx;
    refused++;
  }
  h->sq_len = kept;
  h->sq_go = go;
  return refused;
}

/* The handshake succeeded: back to H_CONNECTED, fail what the server no
 * longer allows, restart the split commands' pieces.  Returns 1, or -1
 * (ENOMEM: the connection ended). */
static int
reconnected (struct nbdaio_handle *h)
{
  struct reconnect *rc = &h->rc;
  int64_t down = transport_now_ms () - rc->since;
  uint32_t head;

  if (reply_init (h) == -1)
    return conn_end (h, ENOMEM);
  take_refused (h, &head);
  close (rc->timer_fd);
  rc->timer_fd = -1;
  h->state = H_CONNECTED;
  h->st.reconnects++;
  h->st.downtime_ms += (uint64_t) down;
  h->st.resent += rc->requeued;
  rc->requeued = 0;
  debug (h->debug, "reconnected after %lld ms; resending %u commands",
         (long long) down, h->sq_len);
  while (head != CMD_NONE) {
    struct nbdaio_cmd *cmd = &h->cmds[head];

    head = cmd->sent.next;
    if (cmd->state == CMD_QUEUED)       /* not failed by a callback's abort */
      cmd_complete (h, cmd);
  }
  split_pump (h);
  return 1;
}

/* reconnect-delay ran out: every command fails with the original error. */
static int
give_up (struct nbdaio_handle *h, const char *last)
{
  struct reconnect *rc = &h->rc;

  set_error (rc->err, "connection lost (%s) and not re-established within "
             "reconnect-delay (%u ms; last attempt: %s)",
             rc->reason ? rc->reason : "", rc->delay_ms,
             last ? last : "none");
  return conn_end (h, rc->err);
}

/* One connect and handshake, bounded by what is left of reconnect-delay
 * (and the connect timeout).  Returns 1, 0 (failed: the next attempt is
 * scheduled) or -1 (gave up). */
static int
attempt (struct nbdaio_handle *h)
{
  struct reconnect *rc = &h->rc;
  int64_t left = rc->deadline - transport_now_ms ();
  unsigned ms = left > UINT_MAX ? UINT_MAX : (unsigned) left;
  char last[512];
  int64_t now;

  if (h->connect_timeout_ms && h->connect_timeout_ms < ms)
    ms = h->connect_timeout_ms;
  timer_clear (h);
  if (handle_reconnect (h, ms) == 0)
    return reconnected (h);
  snprintf (last, sizeof last, "%s", nbdaio_get_error ());
  debug (h->debug, "reconnect attempt failed: %s", last);
  now = transport_now_ms ();
  if (now + LAST_TRY_MS >= rc->deadline)
    return give_up (h, last);
  rc->next_try = now + rc->backoff_ms;
  if (rc->next_try > rc->deadline - LAST_TRY_MS)
    rc->next_try = rc->deadline - LAST_TRY_MS;  /* a last one just before */
  rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
                   rc->backoff_ms * 2;
  timer_arm (h);
  return 0;
}

int
reconnect_timeout (struct nbdaio_handle *h)
{
  int64_t ms = h->rc.next_try - transport_now_ms ();

  return ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int) ms;
}

int
reconnect_run (struct nbdaio_handle *h, int wait_ms)
{
  int64_t end = wait_ms > 0 ? transport_now_ms () + wait_ms : 0;

  for (;;) {
    int sleep_ms = reconnect_timeout (h);

    if (sleep_ms == 0) {
      int r = attempt (h);
      if (r != 0)
        return r;
      continue;
    }
    if (wait_ms == 0)
      return 0;
    if (wait_ms > 0) {
      int64_t left = end - transport_now_ms ();
      if (left <= 0)
        return 0;
      if (left < sleep_ms)
        sleep_ms = (int) left;
    }
    poll (NULL, 0, sleep_ms);
  }
}
