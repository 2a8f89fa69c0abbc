/* opt.c - option negotiation mode (nbdaio_set_opt_mode is in settings.c):
 * the nbdaio_opt_* calls, each running one option exchange on a
 * negotiating handle, nbdaio_is_negotiating and nbdaio_get_opt_reply_type.
 * The exchanges themselves are core/handshake.c's; this file keeps the
 * handle's state: an error reply leaves it negotiating, anything else that
 * fails (EOF, timeout, protocol violation) ends the connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "internal.h"

static int
check_negotiating (struct nbdaio_handle *h)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (h->state != H_NEGOTIATING)
    return set_error (EINVAL, "handle is not negotiating (connect with opt "
                      "mode on: nbdaio_set_opt_mode)");
  return 0;
}

/* The result r of an exchange: HS_REFUSED (error reply) fails the call,
 * the handle still negotiating; -1 ends the connection. */
static int64_t
outcome (struct nbdaio_handle *h, int64_t r)
{
  if (r == HS_REFUSED)
    return -1;
  if (r == -1)
    return handle_failed (h);
  return r;
}

int
nbdaio_is_negotiating (struct nbdaio_handle *h)
{
  return h && h->state == H_NEGOTIATING;
}

int64_t
nbdaio_get_opt_reply_type (struct nbdaio_handle *h)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (!h->opt_reply_type)
    return set_error (EINVAL, "no option was answered while negotiating");
  return h->opt_reply_type;
}

int
nbdaio_opt_list (struct nbdaio_handle *h, nbdaio_list_callback callback,
                 void *user_data)
{
  struct handshake_opts o;

  if (check_negotiating (h) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  return (int) outcome (h, handshake_opt_list (&h->t, &o, callback,
                                               user_data));
}

int
nbdaio_opt_info (struct nbdaio_handle *h)
{
  struct handshake_opts o;

  if (check_negotiating (h) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  return (int) outcome (h, handshake_opt_info (&h->t, &o, &h->info));
}

int
nbdaio_opt_list_meta_context (struct nbdaio_handle *h,
                              const char *const *queries,
                              nbdaio_context_callback callback,
                              void *user_data)
{
  struct handshake_opts o;
  uint64_t len = 0;

  if (check_negotiating (h) == -1)
    return -1;
  /* checked here, so that nothing is sent when they are refused */
  for (size_t i = 0; queries && queries[i]; i++) {
    size_t qlen = strlen (queries[i]);
    if (qlen > NBD_MAX_STRING)
      return set_error (EINVAL, "meta context query %zu is longer than %d "
                        "bytes", i, NBD_MAX_STRING);
    len += 4 + qlen;
    if (len > UINT32_MAX / 2)
      return set_error (EINVAL, "meta context queries too long for one "
                        "option");
  }
  handle_hs_opts (h, &o, true);
  return (int) outcome (h, handshake_opt_list_meta_context (&h->t, &o,
                                                            queries,
                                                            callback,
                                                            user_data));
}

int64_t
nbdaio_opt_raw (struct nbdaio_handle *h, uint32_t option, const void *data,
                uint32_t len)
{
  struct handshake_opts o;

  if (check_negotiating (h) == -1)
    return -1;
  switch (option) {
  case NBD_OPT_STARTTLS:
  case NBD_OPT_GO:
  case NBD_OPT_EXPORT_NAME:
  case NBD_OPT_ABORT:
    return set_error (EINVAL, "%s cannot be sent raw: it changes the "
                      "connection's state (use nbdaio_opt_go or "
                      "nbdaio_opt_abort)", proto_option_name (option));
  default:
    break;
  }
  if (len && !data)
    return set_error (EINVAL, "option data is NULL but its length is %u",
                      len);
  handle_hs_opts (h, &o, true);
  return outcome (h, handshake_opt_raw (&h->t, &o, &h->info, option, data,
                                        len));
}

int
nbdaio_opt_go (struct nbdaio_handle *h)
{
  if (check_negotiating (h) == -1)
    return -1;
  return handle_finish_handshake (h, true) == 0 ? 0 : -1;
}

int
nbdaio_opt_abort (struct nbdaio_handle *h)
{
  struct handshake_opts o;

  if (check_negotiating (h) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  handshake_opt_abort (&h->t, &o);
  /* a clean end: no connection error */
  transport_close (&h->t);
  h->state = H_DEAD;
  return 0;
}
