/* socket-floor.c - the client CPU an NBD client cannot go below on this
 * machine: the bytes of 4k NBD reads (28-byte requests, 4124-byte
 * structured OFFSET_DATA replies, or any sizes given) moved through a unix
 * socket with the cheapest syscall pattern an async client can use
 * (requests sent in batches with one sendmsg, replies read with one recv
 * of up to 256 KiB, poll only when that found nothing), and no NBD logic.
 * A peer process (pinned to another CPU) answers every request with one
 * send, as nbdkit does; with -d it first spins NS nanoseconds per reply,
 * to answer at a real server's pace (a client faster than its server
 * sleeps and wakes for replies: that cost is part of its floor).  Prints the client's CPU time per IO (getrusage:
 * user + system) and its system calls per IO.  Used by bench.py to show
 * the floor under issue 5's "client CPU per IO <= 0.35x" target.  With -t
 * the two ends are a TCP loopback connection (TCP_NODELAY, as NBD clients
 * and nbdkit set it) instead of a unix socket pair; with -s BYTES both ends
 * set SO_SNDBUF and SO_RCVBUF to BYTES (the kernel doubles it), with -C
 * BYTES only the client end does: what bigger socket buffers give large
 * replies, and whether a client can get it alone (issue 15).
 *
 *   socket-floor [-n IOS] [-q DEPTH] [-b BATCH] [-r REPLY] [-d NS]
 *                [-c CPU] [-p CPU] [-t] [-s BYTES | -C BYTES]
 *
 * Not part of the test suite; built by bench.py with the system compiler. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#define REQ 28
#define RBUF (256 * 1024)

static void
pin (int cpu)
{
  cpu_set_t set;

  if (cpu < 0)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (0, sizeof set, &set) == -1)
    perror ("sched_setaffinity");
}

static long long
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The peer: one reply (one send) per request, blocking I/O; pace_ns of
 * busy work before each reply. */
static void
peer (int fd, size_t reply, long pace_ns)
{
  static char in[RBUF];
  char *out = calloc (1, reply);
  size_t have = 0;

  for (;;) {
    ssize_t r = recv (fd, in + have, sizeof in - have, 0);
    if (r <= 0)
      _exit (0);
    have += (size_t) r;
    while (have >= REQ) {
      if (pace_ns > 0)
        for (long long end = now_ns () + pace_ns; now_ns () < end;)
          ;
      if (send (fd, out, reply, 0) != (ssize_t) reply)
        _exit (0);
      have -= REQ;
      memmove (in, in + REQ, have);
    }
  }
}

/* sv[0] and sv[1]: the two ends of a TCP loopback connection */
static int
tcp_pair (int sv[2])
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int one = 1, l = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (l == -1 || bind (l, (struct sockaddr *) &a, sizeof a) == -1 ||
      listen (l, 1) == -1 || getsockname (l, (struct sockaddr *) &a, &len))
    return -1;
  sv[0] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sv[0] == -1 || connect (sv[0], (struct sockaddr *) &a, sizeof a) == -1)
    return -1;
  sv[1] = accept4 (l, NULL, NULL, SOCK_CLOEXEC);
  close (l);
  if (sv[1] == -1)
    return -1;
  setsockopt (sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt (sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return 0;
}

static int
set_buffers (int fd, int bytes)
{
  if (bytes <= 0)
    return 0;
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == -1 ||
      setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == -1)
    return -1;
  return 0;
}

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int
main (int argc, char **argv)
{
  long ios = 1000000, depth = 32, batch = 16, reply = 4124, pace = 0;
  int ccpu = 0, pcpu = 1, sv[2], opt, tcp = 0, bufsize = 0, peerbuf = 0;
  static char rbuf[RBUF], reqs[1024 * REQ];
  long sent = 0, done = 0, calls = 0, partial = 0;
  struct timespec t0, t1;
  double c0, c1;

  while ((opt = getopt (argc, argv, "n:q:b:r:d:c:p:ts:C:")) != -1) {
    switch (opt) {
    case 'n': ios = atol (optarg); break;
    case 'q': depth = atol (optarg); break;
    case 'b': batch = atol (optarg); break;
    case 'r': reply = atol (optarg); break;
    case 'd': pace = atol (optarg); break;
    case 'c': ccpu = atoi (optarg); break;
    case 'p': pcpu = atoi (optarg); break;
    case 't': tcp = 1; break;
    case 's': bufsize = peerbuf = atoi (optarg); break;
    case 'C': bufsize = atoi (optarg); peerbuf = 0; break;
    default:
      fprintf (stderr, "usage: %s [-n IOS] [-q DEPTH] [-b BATCH] "
               "[-r REPLY] [-d NS] [-c CPU] [-p CPU] [-t] [-s BYTES | -C BYTES]\n", argv[0]);
      return 2;
    }
  }
  if (depth < 1 || depth > 1024 || batch < 1 || batch > depth || reply < 1) {
    fprintf (stderr, "socket-floor: bad -q / -b / -r\n");
    return 2;
  }
  memset (reqs, 0x25, sizeof reqs);
  if ((tcp ? tcp_pair (sv)
           : socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) == -1 ||
      set_buffers (sv[0], bufsize) == -1 || set_buffers (sv[1], peerbuf) == -1) {
    perror (tcp ? "tcp loopback" : "socketpair");
    return 1;
  }
  pid_t pid = fork ();
  if (pid == 0) {
    close (sv[0]);
    pin (pcpu);
    peer (sv[1], (size_t) reply, pace);
  }
  close (sv[1]);
  pin (ccpu);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  c0 = cpu_seconds ();
  while (done < ios) {
    /* refill: whole batches (or the first fill / the tail) in one send */
    long room = depth - (sent - done), want = ios - sent;
    if (want > room)
      want = room;
    if (want >= batch || (want > 0 && sent == done) ||
        (want > 0 && sent + want == ios)) {
      if (send (sv[0], reqs, (size_t) want * REQ, MSG_DONTWAIT) !=
          want * REQ) {
        perror ("send");
        return 1;
      }
      calls++;
      sent += want;
    }
    ssize_t r = recv (sv[0], rbuf, sizeof rbuf, MSG_DONTWAIT);
    calls++;
    if (r < 0 && errno == EAGAIN) {
      struct pollfd p = { .fd = sv[0], .events = POLLIN };
      poll (&p, 1, -1);
      calls++;
      continue;
    }
    if (r <= 0) {
      perror ("recv");
      return 1;
    }
    partial += r;
    done += partial / reply;
    partial %= reply;
  }
  c1 = cpu_seconds ();
  clock_gettime (CLOCK_MONOTONIC, &t1);
  close (sv[0]);
  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
  double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf ("ios=%ld depth=%ld batch=%ld reply=%ld pace_ns=%ld %s buf=%d/%d "
          "cpu_us_per_io=%.3f syscalls_per_io=%.3f iops=%.0f\n", ios, depth,
          batch, reply, pace, tcp ? "tcp" : "unix", bufsize, peerbuf,
          (c1 - c0) * 1e6 / ios, (double) calls / ios, ios / wall);
  return 0;
}
