/* tests/integration/reconnect-probe.c - the library's reconnect through
 * the synchronous calls (which wait in nbdaio_poll): connects to URI with
 * reconnect-delay DELAY (seconds, by name), then for DURATION ms writes a
 * 64 KiB block (a pattern of its number and offset) with nbdaio_pwrite at
 * offsets cycling through the first SPAN bytes, reads it back with
 * nbdaio_pread and compares, 20 ms apart; the test script kills and
 * restarts the server meanwhile.  Stops at the first failing call.
 * Prints one line of JSON: blocks written and verified, the first error
 * (errno name and message), the ms from the start to it, the reconnect
 * counters of nbdaio_get_stats, and nbdaio_aio_get_timeout after the
 * failure.  Exits 0 if no call failed and every block read back right,
 * 1 otherwise, 2 on bad usage.
 *
 * usage: reconnect-probe DELAY DURATION-MS SPAN URI [SETTING=VALUE...]
 * (the settings are made by name before connecting)
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define BLOCK 65536

static void
fill (uint8_t *buf, uint64_t n, uint64_t off)
{
  for (size_t i = 0; i < BLOCK; i += 8) {
    uint64_t v = (n << 40) ^ (off + i);
    memcpy (buf + i, &v, 8);
  }
}

static const char *
errno_name (int e)
{
  switch (e) {
  case ENOTCONN:  return "ENOTCONN";
  case ETIMEDOUT: return "ETIMEDOUT";
  case EINVAL:    return "EINVAL";
  case EPROTO:    return "EPROTO";
  case EPERM:     return "EPERM";
  default:        return "other";
  }
}

int
main (int argc, char **argv)
{
  static uint8_t wbuf[BLOCK], rbuf[BLOCK];
  struct nbdaio_handle *h;
  struct nbdaio_stats st;
  uint64_t n = 0, verified = 0, span;
  int64_t start, dur, fail_ms = -1;
  int err = 0, bad = 0;
  char msg[512] = "";

  if (argc < 5) {
    fprintf (stderr, "usage: %s DELAY DURATION-MS SPAN URI "
             "[SETTING=VALUE...]\n", argv[0]);
    return 2;
  }
  dur = atoll (argv[2]);
  span = strtoull (argv[3], NULL, 10);
  if (span < BLOCK || !(h = nbdaio_create ()))
    return 2;
  for (int i = 5; i < argc; i++) {
    char *eq = strchr (argv[i], '=');
    if (!eq)
      return 2;
    *eq = '\0';
    if (nbdaio_set_option (h, argv[i], eq + 1) == -1) {
      fprintf (stderr, "%s\n", nbdaio_get_error ());
      return 2;
    }
  }
  if (nbdaio_set_option (h, "reconnect-delay", argv[1]) == -1 ||
      nbdaio_connect_uri (h, argv[4]) == -1) {
    fprintf (stderr, "%s\n", nbdaio_get_error ());
    return 1;
  }
  start = cli_now_ms ();
  while (cli_now_ms () - start < dur) {
    uint64_t off = (n * BLOCK) % (span - span % BLOCK);
    struct timespec pause = { 0, 20 * 1000000 };

    fill (wbuf, n, off);
    if (nbdaio_pwrite (h, wbuf, BLOCK, off, 0) == -1 ||
        nbdaio_pread (h, rbuf, BLOCK, off, 0) == -1) {
      err = nbdaio_get_errno ();
      snprintf (msg, sizeof msg, "%s", nbdaio_get_error ());
      fail_ms = cli_now_ms () - start;
      break;
    }
    if (memcmp (wbuf, rbuf, BLOCK) == 0)
      verified++;
    else
      bad++;
    n++;
    nanosleep (&pause, NULL);
  }
  nbdaio_get_stats (h, &st, sizeof st);
  printf ("{\"written\": %" PRIu64 ", \"verified\": %" PRIu64 ", "
          "\"errno\": \"%s\", \"error_ms\": %" PRId64 ", "
          "\"reconnects\": %" PRIu64 ", \"resent\": %" PRIu64 ", "
          "\"downtime_ms\": %" PRIu64 ", \"connected\": %d, \"message\": ",
          n, verified, err ? errno_name (err) : "", fail_ms, st.reconnects,
          st.commands_resent, st.downtime_ms, nbdaio_is_connected (h));
  /* the message names local paths only: print it plainly, quotes out */
  for (char *p = msg; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char) *p < 0x20)
      *p = ' ';
  printf ("\"%s\"}\n", msg);
  nbdaio_close (h);
  return err || bad ? 1 : 0;
}
