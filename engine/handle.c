/* handle.c - handle lifecycle (create, connect, close) and the settings
 * made before connecting. */
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
  h->request_structured = true;
  h->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  h->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  h->strict = NBDAIO_STRICT_ALL;
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
  free (h->rbuf);
  free (h->extents);
  h->sendq = NULL;
  h->iov = NULL;
  h->rbuf = NULL;
  h->extents = NULL;
}

void
nbdaio_close (struct nbdaio_handle *h)
{
  if (!h)
    return;
  if (h->state == H_CONNECTED) {
    if (h->in_flight == 0) {
      h->disc_wanted = true;
      conn_maybe_disconnect (h);
    }
    else {
      set_error (ENOTCONN, "handle closed with commands in flight");
      conn_die (h, ENOTCONN);
    }
  }
  transport_close (&h->t);
  handle_teardown (h);
  export_info_free (&h->info);
  free (h->export_name);
  free (h->meta_context_wanted);
  free (h->conn_error);
  free (h);
}

static int
check_new (struct nbdaio_handle *h)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (h->state != H_NEW)
    return set_error (EINVAL, "this setting must be made before connecting");
  return 0;
}

static int
replace_string (char **dst, const char *src, const char *what)
{
  char *s = NULL;

  if (src) {
    if (strlen (src) > NBD_MAX_STRING)
      return set_error (EINVAL, "%s is longer than %d bytes", what,
                        NBD_MAX_STRING);
    if (!(s = strdup (src)))
      return set_error (ENOMEM, "out of memory");
  }
  free (*dst);
  *dst = s;
  return 0;
}

int
nbdaio_set_export_name (struct nbdaio_handle *h, const char *name)
{
  if (check_new (h) == -1)
    return -1;
  if (!name)
    return set_error (EINVAL, "export name is NULL");
  return replace_string (&h->export_name, name, "export name");
}

int
nbdaio_set_request_structured_replies (struct nbdaio_handle *h, int request)
{
  if (check_new (h) == -1)
    return -1;
  h->request_structured = request != 0;
  return 0;
}

int
nbdaio_set_meta_context (struct nbdaio_handle *h, const char *name)
{
  if (check_new (h) == -1)
    return -1;
  if (name && !*name)
    return set_error (EINVAL, "meta context name is empty");
  return replace_string (&h->meta_context_wanted, name, "meta context name");
}

int
nbdaio_set_connect_timeout (struct nbdaio_handle *h, unsigned ms)
{
  if (check_new (h) == -1)
    return -1;
  h->connect_timeout_ms = ms;
  return 0;
}

int
nbdaio_set_max_in_flight (struct nbdaio_handle *h, unsigned n)
{
  if (check_new (h) == -1)
    return -1;
  if (n < 1 || n > CMD_MAX_SLOTS)
    return set_error (EINVAL, "max in flight %u is out of range (1 to %u)",
                      n, CMD_MAX_SLOTS);
  h->max_in_flight = n;
  return 0;
}

int
nbdaio_set_strict (struct nbdaio_handle *h, unsigned flags)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (flags & ~NBDAIO_STRICT_ALL)
    return set_error (EINVAL, "unknown strict flags 0x%x",
                      flags & ~NBDAIO_STRICT_ALL);
  h->strict = flags;
  return 0;
}

unsigned
nbdaio_get_strict (struct nbdaio_handle *h)
{
  return h ? h->strict : 0;
}

int
nbdaio_set_debug (struct nbdaio_handle *h, int debug)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  h->debug = debug != 0;
  return 0;
}

/* The connect or handshake failed: the handle is dead, the last error (which
 * stays the caller's) is kept as the reason. */
static int
connect_failed (struct nbdaio_handle *h)
{
  const char *msg = nbdaio_get_error ();

  h->conn_error = strdup (msg ? msg : "connect failed");
  h->state = H_DEAD;
  return -1;
}

/* Handshake on the connected transport, then set up the engine. */
static int
finish_connect (struct nbdaio_handle *h)
{
  struct handshake_opts o = {
    .export_name = h->export_name,
    .structured = h->request_structured,
    .meta_context = h->meta_context_wanted,
    .debug = h->debug,
    .deadline = h->connect_timeout_ms ?
      transport_now_ms () + h->connect_timeout_ms : 0,
  };

  if (handshake_run (&h->t, &o, &h->info) == -1 ||
      cmd_slots_init (h) == -1 || send_init (h) == -1 || reply_init (h) == -1)
    goto fail;
  h->align = h->info.bs_min ? h->info.bs_min : 1;
  h->max_payload = h->info.bs_max ? h->info.bs_max : NBD_DEFAULT_MAX_PAYLOAD;
  if (h->max_payload > UINT32_MAX)
    h->max_payload = UINT32_MAX;
  h->state = H_CONNECTED;
  return 0;

 fail:
  transport_close (&h->t);
  handle_teardown (h);
  return connect_failed (h);
}

int
nbdaio_connect_unix (struct nbdaio_handle *h, const char *path)
{
  if (check_new (h) == -1)
    return -1;
  if (transport_connect_unix (&h->t, path, h->connect_timeout_ms) == -1)
    return connect_failed (h);
  return finish_connect (h);
}

int
nbdaio_connect_tcp (struct nbdaio_handle *h, const char *host,
                    const char *port)
{
  if (check_new (h) == -1)
    return -1;
  if (transport_connect_tcp (&h->t, host, port, h->connect_timeout_ms) == -1)
    return connect_failed (h);
  return finish_connect (h);
}

int
nbdaio_connect_socket (struct nbdaio_handle *h, int fd)
{
  if (check_new (h) == -1)
    return -1;
  if (fd < 0)
    return set_error (EBADF, "socket %d is not a valid descriptor", fd);
  if (transport_adopt (&h->t, fd) == -1) {
    transport_close (&h->t);
    return connect_failed (h);
  }
  return finish_connect (h);
}

int
nbdaio_connect_uri (struct nbdaio_handle *h, const char *uri)
{
  struct nbdaio_uri u;
  int r;

  if (check_new (h) == -1 || uri_parse (uri, &u) == -1)
    return -1;
  r = replace_string (&h->export_name, u.export_name, "export name");
  if (r == 0)
    r = u.unix_socket ? nbdaio_connect_unix (h, u.socket)
                      : nbdaio_connect_tcp (h, u.host, u.port);
  uri_free (&u);
  return r;
}
