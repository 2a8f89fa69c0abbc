/* tls.h - TLS over the transport (gnutls): the client side of the TLS
 * handshake after NBD_OPT_STARTTLS, x509 and PSK credentials, and the
 * record-layer readv/writev that replace the socket ones.  Internal. */
#ifndef NBDAIO_TLS_H
#define NBDAIO_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "transport.h"

/* What the handle asked for (strings owned by the handle). */
struct tls_config {
  int mode;                    /* NBDAIO_TLS_* */
  char *certificates;          /* x509 directory, NULL = system trust */
  char *psk_file;              /* PSK key file; selects PSK */
  char *username;              /* PSK user, NULL = login name */
  char *hostname;              /* name to verify, NULL = the TCP host */
  bool verify_peer;
};

/* Load the credentials c names and set up a client session (before
 * NBD_OPT_STARTTLS is sent, so bad key files fail before any traffic);
 * host is the TCP host name, NULL for a unix socket.  Returns the session,
 * or NULL with a message naming the cause (missing or unreadable key files,
 * unknown PSK user, bad key).  c must outlive the session. */
struct tls_session *tls_prepare (const struct tls_config *c, const char *host);
void tls_session_free (struct tls_session *ts);

/* Run the TLS handshake for ts on t (NBD_OPT_STARTTLS acknowledged) before
 * the deadline (0 = none).  ts is consumed either way.  On success t reads
 * and writes TLS records.  Returns 0, or -1 with a message naming the cause
 * (certificate not trusted, expired or for another host, key rejected by
 * the server, timeout). */
int tls_start (struct transport *t, struct tls_session *ts, int64_t deadline,
               bool debug);

/* Send close_notify once (best effort, non-blocking). */
void tls_bye (struct transport *t);
/* tls_bye, then free the session. */
void tls_end (struct transport *t);

void tls_config_free (struct tls_config *c);

#endif
