/* uri.h - parsing NBD URIs (libnbd's syntax) into connection parameters.
 * Internal. */
#ifndef NBDAIO_URI_H
#define NBDAIO_URI_H

#include <stdbool.h>
#include <stddef.h>

#define URI_MAX_PARAMS 8

struct nbdaio_uri {
  bool tls;                 /* nbds:// */
  bool unix_socket;         /* +unix */
  char *user;               /* TLS PSK user name, or NULL */
  char *host;               /* TCP host (default "localhost") */
  char *port;               /* TCP port (default 10809) */
  char *socket;             /* unix socket path */
  char *export_name;        /* never NULL after a successful parse */
  /* tls-* query parameters, names as nbdaio_set_option knows them */
  struct uri_param { char *name, *value; } params[URI_MAX_PARAMS];
  size_t nparams;
};

/* Parse uri into *out (zeroed first).  Query parameters: socket, and the
 * tls-* settings (their values are checked when applied).  Returns 0, or -1
 * with EINVAL and an error naming what is wrong.  On error *out holds
 * nothing to free. */
int uri_parse (const char *uri, struct nbdaio_uri *out);

void uri_free (struct nbdaio_uri *u);

#endif
