/* states.c - which handle states a public call is permitted in.
 *
 * Each public call declares its states once, as its first check:
 *
 *     if (handle_check_state (h, IN_CONNECTED | IN_RECONNECTING |
 *                             NOT_IN_CALLBACK, __func__) == -1)
 *       return -1;
 *
 * and handle_check_state is the one place that decides, and says, why a
 * call is refused: the refusal table below gives one errno and message per
 * set of permitted states.  The check costs a bit test on the I/O path. */
#include <errno.h>
#include <stddef.h>

#include "error.h"
#include "internal.h"

/* What a caller hears when h is in none of the states permitted. */
struct refusal {
  unsigned states;             /* the permitted set (NOT_IN_CALLBACK off) */
  int err;
  const char *msg;             /* NULL: say what the handle is doing */
};

static const struct refusal refusals[] = {
  { IN_NEW, EINVAL, "this setting must be made before connecting" },
  { IN_NEW | IN_NEGOTIATING, EINVAL, "this setting must be made before "
    "connecting or while negotiating" },
  { IN_NEGOTIATING, EINVAL, "handle is not negotiating (connect with opt "
    "mode on: nbdaio_set_opt_mode)" },
  { IN_CONNECTED | IN_RECONNECTING, ENOTCONN, NULL },
};

/* A transmission call on a handle that is not (or no longer) connected. */
static int
refuse_by_state (const struct nbdaio_handle *h, int err)
{
  switch (h->state) {
  case H_NEW:
    return set_error (err, "handle is not connected (connect first)");
  case H_NEGOTIATING:
    return set_error (err, "handle is still negotiating (opt mode): "
                      "call nbdaio_opt_go first");
  default:
    if (h->conn_error)
      return set_error (err, "connection is dead: %s", h->conn_error);
    return set_error (err, "handle is disconnected");
  }
}

/* The refusal for a set of permitted states (only on the failing path). */
static int
refuse (const struct nbdaio_handle *h, unsigned states)
{
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
    if (refusals[i].states == states)
      return refusals[i].msg ? set_error (refusals[i].err, "%s",
                                          refusals[i].msg)
                             : refuse_by_state (h, refusals[i].err);
  return refuse_by_state (h, EINVAL);
}

int
handle_check_state (const struct nbdaio_handle *h, unsigned permitted,
                    const char *call)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if ((permitted & NOT_IN_CALLBACK) && h->reading)
    return set_error (EBUSY, "%s called from a callback of this handle (a "
                      "chunk, extent or completion callback), while it reads "
                      "replies: return from the callback, then call it",
                      call);
  if (permitted & IN_STATE (h->state))
    return 0;
  return refuse (h, permitted & ~NOT_IN_CALLBACK);
}
