/* uri.h - parsing NBD URIs (libnbd's syntax) into connection parameters.
 * Internal. */
#ifndef NBDAIO_URI_H
#define NBDAIO_URI_H

#include <stdbool.h>

struct nbdaio_uri {
  bool tls;                 /* nbds:// */
  bool unix_socket;         /* +unix */
  char *user;               /* TLS PSK user name, or NULL */
  char *host;               /* TCP host (default "localhost") */
  char *port;               /* TCP port (default 10809) */
  char *socket;             /* unix socket path */
  char *export_name;        /* never NULL after a successful parse */
  char *tls_certificates;   /* query parameters kept for TLS */
  char *tls_psk_file;
};

/* Parse uri into *out (zeroed first).  Returns 0, or -1 with an error
 * naming what is wrong (EINVAL; ENOTSUP for TLS forms while TLS is not
 * built in).  On error *out holds nothing to free. */
int uri_parse (const char *uri, struct nbdaio_uri *out);

void uri_free (struct nbdaio_uri *u);

#endif
