/* loop.c - event-loop integration (fd, direction, notify, poll), the death
 * of a connection and the graceful disconnect.  The notify calls and
 * nbdaio_poll check the request deadline (deadline.c) after they have read
 * and sent; nbdaio_poll never waits past it.  They send only what may
 * leave (send_ready: with auto-submit off, what was submitted). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "internal.h"

int
conn_die (struct nbdaio_handle *h, int err)
{
  if (err == EPROTO && h->state == H_CONNECTED)
    h->st.violations++;
  if (reconnect_begin (h, err))
    return 0;
  return conn_end (h, err);
}

int
conn_end (struct nbdaio_handle *h, int err)
{
  const char *msg = nbdaio_get_error ();

  if (h->state == H_CONNECTED || h->state == H_RECONNECTING) {
    free (h->conn_error);
    h->conn_error = strdup (msg ? msg : "connection failed");
    h->conn_rule = error_rule ();
    h->state = H_DEAD;
    transport_close (&h->t);
    reconnect_free (h);
    debug (h->debug, "connection ended: %s", h->conn_error ? h->conn_error : "");
    cmd_fail_all (h, err);
    reply_release (h);
  }
  /* callbacks may have overwritten the thread's error */
  return error_raise (err, h->conn_rule,
                      h->conn_error ? h->conn_error : "connection failed");
}

void
conn_maybe_disconnect (struct nbdaio_handle *h)
{
  if (h->state != H_CONNECTED || !h->disc_wanted || h->disc_sent ||
      h->in_flight)
    return;
  if (send_disconnect (h) == -1) {
    conn_die (h, ENOTCONN);
    return;
  }
  /* The server closes after NBD_CMD_DISC; nothing more is expected. */
  /* A clean close (also the soft disconnect a server's ESHUTDOWN asks
   * for): no connection error. */
  transport_close (&h->t);
  h->state = H_DEAD;
}

int
nbdaio_get_fd (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  return h->state == H_RECONNECTING ? h->rc.timer_fd : h->t.fd;
}

unsigned
nbdaio_aio_get_direction (struct nbdaio_handle *h)
{
  unsigned dir = 0;

  if (!handle_in (h, IN_CONNECTED | IN_RECONNECTING))
    return 0;
  if (h->state == H_RECONNECTING)       /* the timer fd: the next attempt */
    return NBDAIO_DIRECTION_READ;
  if (h->in_flight)
    dir |= NBDAIO_DIRECTION_READ;
  if (send_ready (h))
    dir |= NBDAIO_DIRECTION_WRITE;
  return dir;
}

int
nbdaio_aio_notify_read (struct nbdaio_handle *h)
{
  int rc;

  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING |
                          NOT_IN_CALLBACK, __func__) == -1)
    return -1;
  if (h->state == H_RECONNECTING && (rc = reconnect_run (h, 0)) <= 0)
    return rc;
  if (reply_read (h) == -1)
    return -1;
  if (send_ready (h) && send_flush (h) == -1)
    return -1;
  conn_maybe_disconnect (h);
  return deadline_check (h);
}

int
nbdaio_aio_notify_write (struct nbdaio_handle *h)
{
  int rc;

  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  if (h->state == H_RECONNECTING && (rc = reconnect_run (h, 0)) <= 0)
    return rc;
  if (send_flush (h) == -1)
    return -1;
  conn_maybe_disconnect (h);
  return deadline_check (h);
}

int
nbdaio_poll (struct nbdaio_handle *h, int timeout_ms)
{
  struct pollfd pfd;
  int r;

  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING |
                          NOT_IN_CALLBACK, __func__) == -1)
    return -1;
  if (h->state == H_RECONNECTING) {
    /* back (commands may have completed: refused by the new connection),
     * still reconnecting after timeout_ms, or given up */
    if ((r = reconnect_run (h, timeout_ms)) <= 0)
      return r;
    return h->sq_len && nbdaio_aio_submit (h) == -1 ? -1 : 1;
  }
  if (h->sq_len && nbdaio_aio_submit (h) == -1)
    return -1;
  conn_maybe_disconnect (h);
  if (h->state != H_CONNECTED)
    return 1;
  pfd.fd = h->t.fd;
  pfd.events = POLLIN | (send_ready (h) ? POLLOUT : 0);
  pfd.revents = 0;
  r = poll (&pfd, 1, deadline_poll_ms (h, timeout_ms));
  if (r == -1) {
    if (errno == EINTR)
      return 0;
    return set_error (errno, "poll: %s", strerror (errno));
  }
  if (r > 0) {
    if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && reply_read (h) == -1)
      return -1;
    if (h->state == H_CONNECTED && send_ready (h) && send_flush (h) == -1)
      return -1;
    conn_maybe_disconnect (h);
  }
  if (deadline_check (h) == -1)
    return -1;
  return r > 0;
}

int
nbdaio_aio_disconnect (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  h->disc_wanted = true;
  conn_maybe_disconnect (h);
  return 0;
}

int
nbdaio_abort (struct nbdaio_handle *h, int err, const char *reason)
{
  if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING,
                          __func__) == -1)
    return -1;
  set_error (err ? err : ECONNABORTED, "%s",
             reason ? reason : "connection aborted by the caller");
  conn_end (h, err ? err : ECONNABORTED);       /* never reconnects */
  return 0;
}
