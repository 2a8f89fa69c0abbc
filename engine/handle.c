/* handle.c - handle lifecycle: create, connect (the handshake, and the
 * setup of the transmission phase it ends with, shared with nbdaio_opt_go),
 * close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "error.h"
#include "internal.h"
#include "uri.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 30000
#define DEFAULT_MAX_IN_FLIGHT      256
#define DEFAULT_META_CONTEXT       "base:allocation"

struct nbdaio_handle *
nbdaio_create (void)
{
  struct nbdaio_handle *h = calloc (1, sizeof *h);

  if (!h) {
    set_error (ENOMEM, "out of memory creating a handle");
    return NULL;
  }
  h->state = H_NEW;
  h->t.fd = -1;
  h->ask_structured_replies = true;
  h->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  h->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  h->conns = 1;
  h->strict = NBDAIO_STRICT_ALL;
  h->tls.verify_peer = true;
  h->rc.timer_fd = -1;
  h->debug = debug_from_env ();
  h->export_name = strdup ("");
  h->meta_context_wanted = strdup (DEFAULT_META_CONTEXT);
  if (!h->export_name || !h->meta_context_wanted) {
    nbdaio_close (h);
    set_error (ENOMEM, "out of memory creating a handle");
    return NULL;
  }
  return h;
}

static void
handle_teardown (struct nbdaio_handle *h)
{
  cmd_slots_free (h);
  free (h->sendq);
  free (h->iov);
  reply_release (h);
  h->sendq = NULL;
  h->iov = NULL;
}

void
nbdaio_close (struct nbdaio_handle *h)
{
  if (!h)
    return;
  if (h->state == H_NEGOTIATING) {
    struct handshake_opts o;
    handle_hs_opts (h, &o, true);
    handshake_opt_abort (&h->t, &o);
  }
  if (h->state == H_CONNECTED) {
    if (h->in_flight == 0) {
      h->disc_wanted = true;
      conn_maybe_disconnect (h);
    }
    else {
      set_error (ENOTCONN, "handle closed with commands in flight");
      conn_end (h, ENOTCONN);
    }
  }
  if (h->state == H_RECONNECTING) {
    set_error (ENOTCONN, "handle closed while reconnecting");
    conn_end (h, ENOTCONN);
  }
  reconnect_free (h);
  transport_close (&h->t);
  handle_teardown (h);
  export_info_free (&h->info);
  free (h->export_name);
  free (h->meta_context_wanted);
  settings_clear_meta_more (h);
  tls_config_free (&h->tls);
  free (h->conn_error);
  free (h);
}

/* The connect failed before a handshake started: the handle is dead, the
 * last error (which stays the caller's) is kept as the reason. */
static int
connect_failed (struct nbdaio_handle *h)
{
  const char *msg = nbdaio_get_error ();

  free (h->conn_error);
  h->conn_error = strdup (msg ? msg : "connect failed");
  h->conn_rule = error_rule ();
  h->state = H_DEAD;
  return -1;
}

int
handle_failed (struct nbdaio_handle *h)
{
  transport_close (&h->t);
  handle_teardown (h);
  return connect_failed (h);
}

void
handle_hs_opts (struct nbdaio_handle *h, struct handshake_opts *o,
                bool keep_negotiating)
{
  *o = (struct handshake_opts) {
    .export_name = h->export_name,
    .ask_structured_replies = h->ask_structured_replies,
    .ask_extended_headers = !h->extended_off,
    .meta_context = h->meta_context_wanted,
    .meta_more = (const char *const *) h->meta_more,
    .debug = h->debug,
    /* a connect call has one deadline for all of it; an opt mode call
     * (h negotiating) counts afresh */
    .deadline = h->connect_deadline ? h->connect_deadline :
      h->connect_timeout_ms ? transport_now_ms () + h->connect_timeout_ms : 0,
    .tls = &h->tls,
    .keep_negotiating = keep_negotiating,
    /* remembered for nbdaio_get_opt_reply_type: only while negotiating */
    .reply_type = keep_negotiating ? &h->opt_reply_type : NULL,
  };
}

/* The request limits that follow from what the server advertised. */
static void
set_limits (struct nbdaio_handle *h)
{
  h->align = h->info.bs_min ? h->info.bs_min : 1;
  h->max_payload = h->info.bs_max ? h->info.bs_max : NBD_DEFAULT_MAX_PAYLOAD;
  if (h->max_payload > UINT32_MAX)
    h->max_payload = UINT32_MAX;
}

enum hs_result
handle_finish_handshake (struct nbdaio_handle *h, bool keep_negotiating)
{
  struct handshake_opts o;
  enum hs_result r;

  handle_hs_opts (h, &o, keep_negotiating);
  r = handshake_finish (&h->t, &o, &h->info);
  if (r == HS_REFUSED)
    return r;
  if (r != HS_OK ||
      cmd_slots_init (h) == -1 || send_init (h) == -1 || reply_init (h) == -1)
    return handle_failed (h);
  set_limits (h);
  h->state = H_CONNECTED;
  return HS_OK;
}

/* A connect call starts: the connect timeout bounds all of it, the
 * socket's connect and every step of the handshake together. */
static void
connect_begin (struct nbdaio_handle *h)
{
  h->connect_deadline = h->connect_timeout_ms ?
    transport_now_ms () + h->connect_timeout_ms : 0;
}

/* Handshake on the connected transport: all of it, or in opt mode up to
 * the options (the handle is then negotiating).  host is the TCP host
 * name (what a TLS certificate must name), NULL for others. */
static int
handshake_connect (struct nbdaio_handle *h, const char *host)
{
  struct handshake_opts o;

  handle_hs_opts (h, &o, false);
  o.host = host;
  if (handshake_start (&h->t, &o, &h->info) == HS_FAILED)
    return handle_failed (h);
  if (h->opt_mode && handshake_can_negotiate (&h->info)) {
    h->state = H_NEGOTIATING;
    return 0;
  }
  /* a connect never stays negotiating: an error reply is fatal */
  return handle_finish_handshake (h, false) == HS_OK ? 0 : -1;
}

/* handshake_connect, within the connect call's deadline. */
static int
finish_connect (struct nbdaio_handle *h, const char *host)
{
  int r = handshake_connect (h, host);

  h->connect_deadline = 0;      /* opt mode calls count afresh */
  return r;
}

int
nbdaio_connect_unix (struct nbdaio_handle *h, const char *path)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  connect_begin (h);
  if (reconnect_remember (h, RC_UNIX, path, NULL) == -1 ||
      transport_connect_unix (&h->t, path, h->connect_timeout_ms) == -1)
    return connect_failed (h);
  return finish_connect (h, NULL);
}

int
nbdaio_connect_tcp (struct nbdaio_handle *h, const char *host,
                    const char *port)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  connect_begin (h);
  if (reconnect_remember (h, RC_TCP, host, port) == -1 ||
      transport_connect_tcp (&h->t, host, port, h->connect_timeout_ms) == -1)
    return connect_failed (h);
  return finish_connect (h, host);
}

int
nbdaio_connect_socket (struct nbdaio_handle *h, int fd)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (fd < 0)
    return set_error (EBADF, "socket %d is not a valid descriptor", fd);
  connect_begin (h);
  if (transport_adopt (&h->t, fd) == -1) {
    transport_close (&h->t);
    return connect_failed (h);
  }
  return finish_connect (h, NULL);
}

int
handle_reconnect (struct nbdaio_handle *h, unsigned timeout_ms)
{
  struct export_info info = { 0 };
  struct handshake_opts o;
  bool tcp = h->rc.kind == RC_TCP;
  int r;

  r = tcp ? transport_connect_tcp (&h->t, h->rc.host, h->rc.port, timeout_ms)
          : transport_connect_unix (&h->t, h->rc.path, timeout_ms);
  if (r == -1)
    return -1;
  h->connect_deadline = transport_now_ms () + timeout_ms;
  handle_hs_opts (h, &o, false);
  o.host = tcp ? h->rc.host : NULL;
  r = handshake_run (&h->t, &o, &info) == HS_OK ? 0 : -1;
  h->connect_deadline = 0;
  if (r == 0 && info.extended != h->info.extended)
    /* the queued requests are encoded for the first connection's mode */
    r = set_error (EPROTO, "the server %s extended headers after the "
                   "reconnect, unlike before", info.extended ? "negotiated" :
                   "refused");
  if (r != 0) {
    export_info_free (&info);
    transport_close (&h->t);
    return -1;
  }
  export_info_free (&h->info);
  h->info = info;
  set_limits (h);
  return 0;
}

/* The export a URI names: an empty one (nbd://host, nbd+unix:///?socket=S)
 * leaves an export set explicitly in force; a named one must agree with
 * it, since silently preferring either would send I/O to the wrong export.
 * Returns 0, or -1 (EINVAL) naming both. */
static int
uri_take_export (struct nbdaio_handle *h, const struct nbdaio_uri *u)
{
  if (!h->export_name_explicit)
    return settings_replace_string (&h->export_name, u->export_name,
                                    "export name");
  if (u->export_name[0] == '\0' || strcmp (u->export_name, h->export_name) == 0)
    return 0;
  return set_error (EINVAL, "the URI names export '%s' but export '%s' was "
                    "set explicitly (export setting, --export or a profile's "
                    "export): name the export in one place",
                    u->export_name, h->export_name);
}

int
nbdaio_connect_uri (struct nbdaio_handle *h, const char *uri)
{
  struct nbdaio_uri u;
  int r;

  if (handle_check_state (h, IN_NEW, __func__) == -1 ||
      uri_parse (uri, &u) == -1)
    return -1;
  r = uri_take_export (h, &u);
  if (r == 0 && u.tls)
    r = nbdaio_set_tls (h, NBDAIO_TLS_REQUIRE);
  for (size_t i = 0; r == 0 && i < u.nparams; i++) {
    r = nbdaio_set_option (h, u.params[i].name, u.params[i].value);
    if (r == -1)
      error_prefix ("URI query parameter");
  }
  if (r == 0 && u.user)
    r = nbdaio_set_tls_username (h, u.user);
  if (r == 0)
    r = u.unix_socket ? nbdaio_connect_unix (h, u.socket)
                      : nbdaio_connect_tcp (h, u.host, u.port);
  uri_free (&u);
  return r;
}
