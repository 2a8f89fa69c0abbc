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

/* The result of an exchange as the call returns it: 0, or -1 after
 * HS_REFUSED (an error reply: the handle is still negotiating) or
 * HS_FAILED (the connection ends). */
static int
outcome (struct nbdaio_handle *h, enum hs_result r)
{
  switch (r) {
  case HS_OK:
    return 0;
  case HS_FAILED:
    return handle_failed (h);
  default:                      /* HS_REFUSED: the handle negotiates on */
    return -1;
  }
}

int
nbdaio_is_negotiating (struct nbdaio_handle *h)
{
  return handle_in (h, IN_NEGOTIATING);
}

int64_t
nbdaio_get_opt_reply_type (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  if (!h->opt_reply_type)
    return set_error (EINVAL, "no option was answered while negotiating");
  return h->opt_reply_type;
}

int
nbdaio_opt_list (struct nbdaio_handle *h, nbdaio_list_callback callback,
                 void *user_data)
{
  struct handshake_opts o;
  int n = 0;

  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  if (outcome (h, handshake_opt_list (&h->t, &o, callback, user_data,
                                      &n)) == -1)
    return -1;
  return n;
}

int
nbdaio_opt_info (struct nbdaio_handle *h)
{
  struct handshake_opts o;

  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  return outcome (h, handshake_opt_info (&h->t, &o, &h->info));
}

int
nbdaio_opt_list_meta_context (struct nbdaio_handle *h,
                              const char *const *queries,
                              nbdaio_context_callback callback,
                              void *user_data)
{
  struct handshake_opts o;
  uint64_t len = 0;
  int n = 0;

  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
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
  if (outcome (h, handshake_opt_list_meta_context (&h->t, &o, queries,
                                                   callback, user_data,
                                                   &n)) == -1)
    return -1;
  return n;
}

int64_t
nbdaio_opt_raw (struct nbdaio_handle *h, uint32_t option, const void *data,
                uint32_t len)
{
  struct handshake_opts o;
  uint32_t type = 0;

  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
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
  if (outcome (h, handshake_opt_raw (&h->t, &o, &h->info, option, data,
                                     len, &type)) == -1)
    return -1;
  return type;
}

int
nbdaio_opt_go (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
    return -1;
  return handle_finish_handshake (h, true) == HS_OK ? 0 : -1;
}

int
nbdaio_opt_abort (struct nbdaio_handle *h)
{
  struct handshake_opts o;

  if (handle_check_state (h, IN_NEGOTIATING, __func__) == -1)
    return -1;
  handle_hs_opts (h, &o, true);
  handshake_opt_abort (&h->t, &o);
  /* a clean end: no connection error */
  transport_close (&h->t);
  h->state = H_DEAD;
  return 0;
}
