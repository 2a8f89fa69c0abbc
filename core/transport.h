/* transport.h - the byte stream under the protocol: connecting sockets with
 * a timeout and the send/receive calls the handshake and the engine use.
 * Non-blocking throughout.  Internal. */
#ifndef NBDAIO_TRANSPORT_H
#define NBDAIO_TRANSPORT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_session;

struct transport {
  int fd;                      /* -1 when closed */
  struct tls_session *tls;     /* set once TLS is running (tls.c) */
  const char *error;           /* TLS: what the last failing call saw */
  /* Each returns bytes moved, 0 on EOF (receive only), or -1 with errno
   * (EAGAIN when the socket is not ready). */
  ssize_t (*readv) (struct transport *t, const struct iovec *iov, int n);
  ssize_t (*writev) (struct transport *t, const struct iovec *iov, int n);
};

/* Milliseconds on the given clock (CLOCK_MONOTONIC_COARSE is the cheap
 * one, for stamps taken on the I/O path). */
int64_t transport_clock_ms (clockid_t clock);
/* Milliseconds on a monotonic clock, for deadlines. */
int64_t transport_now_ms (void);
/* What is left of a deadline (a transport_now_ms value) as a poll
 * timeout: -1 for no deadline (0), else 0 once it has passed, else the
 * milliseconds left (capped at 1000000). */
int transport_ms_left (int64_t deadline);

/* Connect to a unix socket / TCP host:port within timeout_ms (0 = none) and
 * set up *t.  Return 0 or -1 with an error naming the target. */
int transport_connect_unix (struct transport *t, const char *path,
                            unsigned timeout_ms);
int transport_connect_tcp (struct transport *t, const char *host,
                           const char *port, unsigned timeout_ms);
/* Adopt an already connected socket (made non-blocking). */
int transport_adopt (struct transport *t, int fd);
/* Close t (ending TLS first if it runs). */
void transport_close (struct transport *t);
/* Stop sending: TLS close_notify, then shutdown(SHUT_WR). */
void transport_shutdown_write (struct transport *t);
/* The text for a failed readv/writev that returned -1 with errno err. */
const char *transport_strerror (const struct transport *t, int err);

/* Blocking helpers for the handshake: move exactly len bytes before the
 * deadline (a transport_now_ms value, or 0 for none).  Return 0, or -1 with
 * errno ETIMEDOUT / ENOTCONN (EOF) / the socket error, and a message. */
int transport_read_full (struct transport *t, void *buf, size_t len,
                         int64_t deadline);
int transport_write_full (struct transport *t, const void *buf, size_t len,
                          int64_t deadline);

#endif
