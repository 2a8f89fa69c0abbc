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
 * set of permitted states.  The check costs a bit test on the I/O path
 * (KNOWING_EXPORT, for the info getters, is looked at only when it fails).
 * A call that answers by the state without an error (nbdaio_is_connected)
 * declares its states to handle_in (internal.h). */
#include <errno.h>
#include <stddef.h>

#include "error.h"
#include "internal.h"

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

/* An info getter on a handle that knows no export (yet). */
static int
refuse_no_export (const struct nbdaio_handle *h, int err)
{
  if (h->state == H_NEGOTIATING)
    return set_error (err, "handle is negotiating and knows no export yet "
                      "(call nbdaio_opt_info or nbdaio_opt_go)");
  return set_error (err, "handle has not connected yet");
}

/* What a caller hears when h is in none of the states permitted. */
struct refusal {
  unsigned states;             /* the permitted set (NOT_IN_CALLBACK off) */
  int err;
  const char *msg;             /* NULL: say () picks it by state */
  int (*say) (const struct nbdaio_handle *h, int err);
};

static const struct refusal refusals[] = {
  { IN_NEW, EINVAL, "this setting must be made before connecting", NULL },
  { IN_NEW | IN_NEGOTIATING, EINVAL, "this setting must be made before "
    "connecting or while negotiating", NULL },
  { IN_NEGOTIATING, EINVAL, "handle is not negotiating (connect with opt "
    "mode on: nbdaio_set_opt_mode)", NULL },
  { IN_CONNECTED | IN_RECONNECTING, ENOTCONN, NULL, refuse_by_state },
  /* the export's facts; the connection's (known from the greeting on) */
  { EXPORT_KNOWN, EINVAL, NULL, refuse_no_export },
  { IN_NEGOTIATING | EXPORT_KNOWN, EINVAL, NULL, refuse_no_export },
  /* nbdaio_group_create */
  { IN_CONNECTED, EINVAL, "a group is made from a connected handle", NULL },
};

/* The refusal for a set of permitted states (only on the failing path). */
static int
refuse (const struct nbdaio_handle *h, unsigned states)
{
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
    if (refusals[i].states == states)
      return refusals[i].msg ? set_error (refusals[i].err, "%s",
                                          refusals[i].msg)
                             : refusals[i].say (h, refusals[i].err);
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
  if (h->info.name && (permitted & KNOWING_EXPORT (IN_STATE (h->state))))
    return 0;
  return refuse (h, permitted & ~NOT_IN_CALLBACK);
}
