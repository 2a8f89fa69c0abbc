/* transport.c - plain socket transport: non-blocking unix and TCP connects
 * with a timeout, vectored send (MSG_NOSIGNAL: a dead server is an error,
 * never SIGPIPE) and receive. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "parse.h"
#include "proto.h"
#include "tls.h"
#include "transport.h"

int64_t
transport_clock_ms (clockid_t clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
transport_now_ms (void)
{
  return transport_clock_ms (CLOCK_MONOTONIC);
}

int
transport_ms_left (int64_t deadline)
{
  int64_t left;

  if (!deadline)
    return -1;
  left = deadline - transport_now_ms ();
  return left <= 0 ? 0 : left > 1000000 ? 1000000 : (int) left;
}

static ssize_t
sock_readv (struct transport *t, const struct iovec *iov, int n)
{
  if (n == 1)
    return recv (t->fd, iov[0].iov_base, iov[0].iov_len, 0);
  return readv (t->fd, iov, n);
}

static ssize_t
sock_writev (struct transport *t, const struct iovec *iov, int n)
{
  struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = n };

  return sendmsg (t->fd, &msg, MSG_NOSIGNAL);
}

int
transport_adopt (struct transport *t, int fd)
{
  int fl = fcntl (fd, F_GETFL);

  t->fd = fd;
  t->tls = NULL;
  t->error = NULL;
  t->readv = sock_readv;
  t->writev = sock_writev;
  if (fl == -1 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) == -1)
    return set_error (errno, "cannot make socket non-blocking: %s",
                      strerror (errno));
  return 0;
}

void
transport_close (struct transport *t)
{
  if (t->tls)
    tls_end (t);
  if (t->fd >= 0)
    close (t->fd);
  t->fd = -1;
}

void
transport_shutdown_write (struct transport *t)
{
  tls_bye (t);
  if (t->fd >= 0)
    shutdown (t->fd, SHUT_WR);
}

const char *
transport_strerror (const struct transport *t, int err)
{
  return t->error ? t->error : strerror (err);
}

/* A unix socket whose listen queue is full refuses a non-blocking connect
 * at once with EAGAIN: nothing is in progress, the socket stays
 * unconnected.  The connect is tried again on a new socket, backing off
 * from the first to the longest pause, until the connect timeout. */
#define BACKLOG_RETRY_FIRST_MS 1
#define BACKLOG_RETRY_MAX_MS 64
#define CONNECT_QUEUE_FULL (-2)

/* Wait for a non-blocking connect on fd to finish before the deadline. */
static int
wait_connect (int fd, int64_t deadline, unsigned timeout_ms,
              const char *target)
{
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };
  int r, err = 0;
  socklen_t len = sizeof err;

  do
    r = poll (&pfd, 1, transport_ms_left (deadline));
  while (r == -1 && errno == EINTR);
  if (r == 0)
    return set_error (ETIMEDOUT, "connecting to %s: timed out after %u ms",
                      target, timeout_ms);
  if (r == -1 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
    return set_error (errno, "connecting to %s: %s", target, strerror (errno));
  if (err)
    return set_error (err, "connecting to %s: %s", target, strerror (err));
  return 0;
}

/* One connect on a new socket: its fd, -1 with the error set, or
 * CONNECT_QUEUE_FULL (a unix socket's EAGAIN, see above). */
static int
connect_once (int domain, const struct sockaddr *sa, socklen_t salen,
              int64_t deadline, unsigned timeout_ms, const char *target)
{
  int fd = socket (domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int e;

  if (fd == -1)
    return set_error (errno, "socket: %s", strerror (errno));
  if (connect (fd, sa, salen) == 0)
    return fd;
  e = errno;
  if (e == EINPROGRESS && wait_connect (fd, deadline, timeout_ms,
                                        target) == 0)
    return fd;
  close (fd);
  if (e == EAGAIN && domain == AF_UNIX)
    return CONNECT_QUEUE_FULL;
  if (e != EINPROGRESS)
    set_error (e, "connecting to %s: %s", target, strerror (e));
  return -1;
}

static int
connect_addr (int domain, const struct sockaddr *sa, socklen_t salen,
              unsigned timeout_ms, const char *target)
{
  int64_t deadline = timeout_ms ? transport_now_ms () + timeout_ms : 0;
  int pause = BACKLOG_RETRY_FIRST_MS, fd;

  while ((fd = connect_once (domain, sa, salen, deadline, timeout_ms,
                             target)) == CONNECT_QUEUE_FULL) {
    int left = transport_ms_left (deadline);

    if (left == 0)
      return set_error (ETIMEDOUT, "connecting to %s: timed out after %u "
                        "ms: the server's listen queue stayed full (the "
                        "server is not accepting connections)", target,
                        timeout_ms);
    poll (NULL, 0, left != -1 && left < pause ? left : pause);
    if (pause < BACKLOG_RETRY_MAX_MS)
      pause *= 2;
  }
  return fd;
}

/* A numeric TCP port must be 1 to 65535: getaddrinfo would take 65546 as
 * port 10.  A name (from /etc/services) starts with a letter. */
static int
check_port (const char *port)
{
  uint64_t n;

  if ((*port >= 'a' && *port <= 'z') || (*port >= 'A' && *port <= 'Z'))
    return 0;
  return parse_uint ("TCP port", port, 1, 65535, &n);
}

int
transport_connect_unix (struct transport *t, const char *path,
                        unsigned timeout_ms)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd;

  if (!path || !*path)
    return set_error (EINVAL, "unix socket path is empty");
  if (strlen (path) >= sizeof sun.sun_path)
    return set_error (ENAMETOOLONG, "unix socket path is longer than %zu "
                      "bytes: %s", sizeof sun.sun_path - 1, path);
  strcpy (sun.sun_path, path);
  fd = connect_addr (AF_UNIX, (struct sockaddr *) &sun, sizeof sun,
                     timeout_ms, path);
  if (fd == -1)
    return -1;
  return transport_adopt (t, fd);
}

int
transport_connect_tcp (struct transport *t, const char *host,
                       const char *port, unsigned timeout_ms)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
  struct addrinfo *res, *ai;
  char target[512];
  int r, fd = -1, one = 1;

  if (!host || !*host)
    return set_error (EINVAL, "TCP host is empty");
  if (!port)
    port = NBD_DEFAULT_PORT;
  if (check_port (port) == -1)
    return -1;
  snprintf (target, sizeof target, "%s port %s", host, port);
  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0)
    return set_error (r == EAI_SYSTEM ? errno : EHOSTUNREACH,
                      "cannot resolve %s: %s", target, gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next) {
    fd = connect_addr (ai->ai_family, ai->ai_addr, ai->ai_addrlen,
                       timeout_ms, target);
    if (fd >= 0)
      break;
  }
  freeaddrinfo (res);
  if (fd == -1)
    return -1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return transport_adopt (t, fd);
}

/* Wait for events on t before the deadline. */
static int
wait_ready (struct transport *t, short events, int64_t deadline)
{
  struct pollfd pfd = { .fd = t->fd, .events = events };
  int r, ms;

  for (;;) {
    if ((ms = transport_ms_left (deadline)) == 0)
      return set_error (ETIMEDOUT, "timed out waiting for the server "
                        "during the handshake");
    r = poll (&pfd, 1, ms);
    if (r > 0)
      return 0;
    if (r == -1 && errno != EINTR)
      return set_error (errno, "poll: %s", strerror (errno));
  }
}

int
transport_read_full (struct transport *t, void *buf, size_t len,
                     int64_t deadline)
{
  while (len > 0) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    ssize_t r = t->readv (t, &iov, 1);
    if (r > 0) {
      buf = (char *) buf + r;
      len -= r;
    }
    else if (r == 0)
      return set_error (ENOTCONN, "server closed the connection");
    else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_ready (t, POLLIN, deadline) == -1)
        return -1;
    }
    else if (errno != EINTR)
      return set_error (errno, "reading from server: %s",
                        transport_strerror (t, errno));
  }
  return 0;
}

int
transport_write_full (struct transport *t, const void *buf, size_t len,
                      int64_t deadline)
{
  while (len > 0) {
    struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
    ssize_t r = t->writev (t, &iov, 1);
    if (r >= 0) {
      buf = (const char *) buf + r;
      len -= r;
    }
    else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_ready (t, POLLOUT, deadline) == -1)
        return -1;
    }
    else if (errno == EPIPE || errno == ECONNRESET)
      return set_error (ENOTCONN, "server closed the connection%s%s",
                        t->error ? ": " : "", t->error ? t->error : "");
    else if (errno != EINTR)
      return set_error (errno, "writing to server: %s",
                        transport_strerror (t, errno));
  }
  return 0;
}
