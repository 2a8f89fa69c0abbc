/* tests/hostile/hostile-client.c - the client half of the hostile server
 * tests: connects to hostile-server.py through the public API only, issues
 * COUNT commands at once, drives the connection until every command has
 * completed or the connection died (TIMEOUT ms is the connect timeout and
 * the library's request timeout, which must end a stalled connection by
 * itself: only GRACE_MS later does the client abort it, and that is a
 * failure), and checks the promises of nbdaio.h on the way:
 *   - every completion callback runs exactly once, every free function
 *     exactly once (also for a command issued after the connection died);
 *   - a command that completed without error has the right data;
 *   - the outcome is what --expect says (violation: the client sets
 *     reply-violations=close, so every violation must end the connection;
 *     the other expectations keep the library's default policy, under
 *     which a violation that leaves the stream in sync fails only its
 *     command: errno:EPROTO, and that command's callback must see the
 *     violated rule).
 * --cmd opt connects in option negotiation mode first and calls
 * nbdaio_opt_list, nbdaio_opt_info, nbdaio_opt_list_meta_context and
 * nbdaio_opt_raw with an unknown option (all must answer what
 * hostile-server.py's correct behaviour says), then nbdaio_opt_go, and
 * reads; a failing opt call counts as a failed connect (and must leave the
 * handle dead, not negotiating).
 * Prints one line of JSON with what happened and exits 1 if any promise was
 * broken or the outcome was not the expected one.
 *
 * usage: hostile-client --cmd read|sread|dfread|write|bs|bs-one|bs-filter|mixed|opt
 *          --expect violation|eof|ok|timeout|shutdown|errno:NAME
 *          [--count N] [--timeout MS] SOCKET
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define MAX_CMDS 64
#define GRACE_MS 3000           /* the library's request timeout is late */
#define LEN 4096u

enum kind { K_READ, K_SREAD, K_WRITE, K_FLUSH, K_TRIM, K_ZERO, K_CACHE,
            K_BS, K_BS_ONE, K_DFREAD, K_BS_FILTER };
static const char *const kind_names[] = {
  "read", "sread", "write", "flush", "trim", "zero", "cache", "bs", "bs-one",
  "dfread",                     /* sread with NBD_CMD_FLAG_DF */
  "bs-filter"                   /* block status filtered to base:allocation,
                                 * qemu:dirty-bitmap:hostile negotiated too */
};
/* what --cmd mixed cycles through */
static const enum kind mixed[] = {
  K_READ, K_SREAD, K_WRITE, K_FLUSH, K_TRIM, K_ZERO, K_CACHE, K_BS
};

enum expect { X_VIOLATION, X_EOF, X_OK, X_TIMEOUT, X_SHUTDOWN, X_ERRNO };

/* Which free function: each cmd passes all three (where the call takes
 * them) and each must run exactly once. */
enum { F_COMPLETION, F_CHUNK, F_EXTENT, NR_FREES };

struct cmd {
  enum kind kind;
  uint64_t offset;
  uint32_t count;
  int64_t cookie;
  unsigned char buf[LEN];
  int calls;                    /* completion callback runs */
  int error;                    /* *error it saw */
  const char *violation;        /* nbdaio_get_violation () it saw, EPROTO */
  int retire;                   /* what it returns */
  int retired;
  int frees[NR_FREES];
  int passed[NR_FREES];         /* 1 if that free function was passed */
};

static struct cmd cmds[MAX_CMDS + 1];   /* + the command issued late */
static int issued;

/* Broken promises, for the JSON line. */
static char problems[4096];
static int nproblems;

static void __attribute__ ((format (printf, 1, 2)))
problem (const char *fmt, ...)
{
  size_t len = strlen (problems);
  va_list ap;

  nproblems++;
  if (len + 3 >= sizeof problems)
    return;
  if (len)
    strcpy (problems + len, "; "), len += 2;
  va_start (ap, fmt);
  vsnprintf (problems + len, sizeof problems - len, fmt, ap);
  va_end (ap);
}

static const char *
errno_name (int err)
{
  static char buf[16];
  const char *s = err ? strerrorname_np (err) : "0";

  if (s)
    return s;
  snprintf (buf, sizeof buf, "E%d", err);
  return buf;
}

static int
errno_from_name (const char *name)
{
  for (int e = 1; e < 200; e++) {
    const char *s = strerrorname_np (e);
    if (s && strcmp (s, name) == 0)
      return e;
  }
  return -1;
}

/* The export's contents, as hostile-server.py's pattern() makes them. */
static unsigned char
pattern_byte (uint64_t o)
{
  if ((o >> 10) % 4 == 3)
    return 0;
  return (unsigned char) (((o * 7 + (o >> 10) * 13) & 0xff) | 1);
}

static int
pattern_differs (const unsigned char *p, uint64_t offset, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte (offset + i))
      return 1;
  return 0;
}

/* ---- callbacks ------------------------------------------------------ */

static int
on_complete (void *user_data, int *error)
{
  struct cmd *c = user_data;
  int idx = (int) (c - cmds);

  if (++c->calls > 1)
    problem ("callback of command %d ran %d times", idx, c->calls);
  c->error = *error;
  if (*error == EPROTO)
    c->violation = nbdaio_get_violation ();
  if (*error == 0 &&
      (c->kind == K_READ || c->kind == K_SREAD || c->kind == K_DFREAD) &&
      pattern_differs (c->buf, c->offset, c->count))
    problem ("command %d (%s) succeeded with wrong data", idx,
             kind_names[c->kind]);
  return c->retire;
}

static int
on_chunk (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct cmd *c = user_data;
  int idx = (int) (c - cmds);
  (void) error;

  if (c->calls)
    problem ("chunk callback of command %d after its completion", idx);
  if (offset < c->offset || offset - c->offset > c->count ||
      count > c->count - (offset - c->offset) ||
      (const unsigned char *) subbuf != c->buf + (offset - c->offset)) {
    problem ("chunk callback of command %d: [%" PRIu64 ", +%zu) outside "
             "the request or at the wrong place in its buffer", idx, offset,
             count);
    return 0;
  }
  if (status != NBDAIO_READ_ERROR &&
      pattern_differs (subbuf, offset, count))
    problem ("chunk callback of command %d: %s chunk [%" PRIu64 ", +%zu) "
             "has wrong data", idx,
             status == NBDAIO_READ_HOLE ? "hole" : "data", offset, count);
  return 0;
}

/* What both extent callbacks check: the chunk comes before the command's
 * completion, is base:allocation's, starts at the request's offset, has
 * entries (nr_entries > 0, and bad_count 0: the callback's own count
 * check passed) and no extent of length 0 (zero_lengths of them had). */
static void
check_extents (const struct cmd *c, const char *metacontext,
               uint64_t offset, size_t nr_entries, int bad_count,
               size_t zero_lengths)
{
  int idx = (int) (c - cmds);

  if (c->calls)
    problem ("extent callback of command %d after its completion", idx);
  if (strcmp (metacontext, "base:allocation") != 0 || offset != c->offset ||
      nr_entries == 0 || bad_count)
    problem ("extent callback of command %d: context %s, offset %" PRIu64
             ", %zu entries", idx, metacontext, offset, nr_entries);
  for (size_t i = 0; i < zero_lengths; i++)
    problem ("extent callback of command %d: extent of length 0", idx);
}

static int
on_extent (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct cmd *c = user_data;
  size_t zero_lengths = 0;
  (void) error;

  for (size_t i = 0; i < nr_entries; i += 2)
    zero_lengths += entries[i] == 0;
  check_extents (c, metacontext, offset, nr_entries,
                 nr_entries % 2 || (c->kind == K_BS_ONE && nr_entries != 2),
                 zero_lengths);
  return 0;
}

/* A filtered block status: base:allocation's chunk only. */
static int
on_extent64 (void *user_data, const char *metacontext, uint64_t offset,
             nbdaio_extent64 *entries, size_t nr_entries, int *error)
{
  struct cmd *c = user_data;
  size_t zero_lengths = 0;
  (void) error;

  for (size_t i = 0; i < nr_entries; i++)
    zero_lengths += entries[i].length == 0;
  check_extents (c, metacontext, offset, nr_entries, 0, zero_lengths);
  return 0;
}

static void
free_completion (void *user_data)
{
  ((struct cmd *) user_data)->frees[F_COMPLETION]++;
}

static void
free_chunk (void *user_data)
{
  ((struct cmd *) user_data)->frees[F_CHUNK]++;
}

static void
free_extent (void *user_data)
{
  ((struct cmd *) user_data)->frees[F_EXTENT]++;
}

/* ---- issuing -------------------------------------------------------- */

static const char *const only_base[] = { "base:allocation", NULL };

static int64_t
issue (struct nbdaio_handle *h, struct cmd *c)
{
  nbdaio_completion_callback done = {
    .callback = on_complete, .user_data = c, .free = free_completion
  };
  nbdaio_chunk_callback chunk = {
    .callback = on_chunk, .user_data = c, .free = free_chunk
  };
  nbdaio_extent_callback extent = {
    .callback = on_extent, .user_data = c, .free = free_extent
  };

  c->passed[F_COMPLETION] = 1;
  switch (c->kind) {
  case K_READ:
    return nbdaio_aio_pread (h, c->buf, c->count, c->offset, done, 0);
  case K_SREAD:
  case K_DFREAD:
    c->passed[F_CHUNK] = 1;
    return nbdaio_aio_pread_structured (h, c->buf, c->count, c->offset,
                                        chunk, done, c->kind == K_DFREAD ?
                                        NBDAIO_CMD_FLAG_DF : 0);
  case K_WRITE:
    for (uint32_t i = 0; i < c->count; i++)
      c->buf[i] = pattern_byte (c->offset + i);
    return nbdaio_aio_pwrite (h, c->buf, c->count, c->offset, done, 0);
  case K_FLUSH:
    return nbdaio_aio_flush (h, done, 0);
  case K_TRIM:
    return nbdaio_aio_trim (h, c->count, c->offset, done, 0);
  case K_ZERO:
    return nbdaio_aio_zero (h, c->count, c->offset, done, 0);
  case K_CACHE:
    return nbdaio_aio_cache (h, c->count, c->offset, done, 0);
  case K_BS:
  case K_BS_ONE:
    c->passed[F_EXTENT] = 1;
    return nbdaio_aio_block_status (h, c->count, c->offset, extent, done,
                                    c->kind == K_BS_ONE ?
                                    NBDAIO_CMD_FLAG_REQ_ONE : 0);
  case K_BS_FILTER:
    c->passed[F_EXTENT] = 1;
    return nbdaio_aio_block_status_filter (
      h, c->count, c->offset, only_base,
      (nbdaio_extent64_callback) { on_extent64, c, free_extent }, done, 0);
  }
  return -1;
}

/* Retire, through nbdaio_aio_command_completed, the completed commands
 * whose callback did not retire them; check that the others are gone. */
static void
retire_completed (struct nbdaio_handle *h)
{
  for (int i = 0; i < issued; i++) {
    struct cmd *c = &cmds[i];
    int r;

    if (c->calls != 1 || c->retired)
      continue;
    c->retired = 1;
    r = nbdaio_aio_command_completed (h, c->cookie);
    if (c->retire) {
      if (r != -1 || nbdaio_get_errno () != EINVAL)
        problem ("command %d retired by its callback is still known "
                 "(command_completed returned %d)", i, r);
    }
    else if (c->error == 0 ? r != 1 :
             r != -1 || nbdaio_get_errno () != c->error)
      problem ("command_completed of command %d returned %d (%s), its "
               "callback saw %s", i, r, errno_name (nbdaio_get_errno ()),
               errno_name (c->error));
  }
}

/* ---- opt mode --------------------------------------------------------- */

#define RAW_UNKNOWN_OPTION 0x4242

/* 1 if the option reply type t (as nbdaio_opt_raw returns it) has the
 * name given (the library's names: no number is repeated here) */
static int
reply_is (int64_t t, const char *name)
{
  const char *n = t >= 0 ? nbdaio_option_reply_name ((uint32_t) t) : NULL;

  return n && strcmp (n, name) == 0;
}

struct names {
  int n;
  char first[64];
  int has_base;
};

static void
on_export (void *user_data, const char *name, const char *description)
{
  struct names *l = user_data;

  if (l->n++ == 0)
    snprintf (l->first, sizeof l->first, "%s|%s", name, description);
}

static void
on_context (void *user_data, uint32_t id, const char *name)
{
  struct names *l = user_data;

  l->n++;
  if (strcmp (name, "base:allocation") == 0 && id != 0)
    l->has_base = 1;
}

/* The opt calls on a negotiating handle, then go.  Returns 0, or -1 with
 * the failing call's error as the last error. */
static int
negotiate (struct nbdaio_handle *h)
{
  struct names exports = { 0 }, contexts = { 0 };
  int64_t type;
  int r;

  if (nbdaio_is_negotiating (h) != 1) {
    problem ("opt mode: the handle is not negotiating after connecting");
    return 0;
  }
  r = nbdaio_opt_list (h, on_export, &exports);
  if (r == -1)
    return -1;
  if (r != 2 || exports.n != 2 ||
      strcmp (exports.first, "|the default export") != 0)
    problem ("nbdaio_opt_list returned %d (%d callbacks, first '%s'), "
             "expected the server's 2 exports", r, exports.n, exports.first);
  if (nbdaio_opt_info (h) == -1)
    return -1;
  if (nbdaio_get_size (h) != 1 << 20 || nbdaio_is_negotiating (h) != 1)
    problem ("after nbdaio_opt_info: size %" PRId64 ", negotiating %d",
             nbdaio_get_size (h), nbdaio_is_negotiating (h));
  r = nbdaio_opt_list_meta_context (h, NULL, on_context, &contexts);
  if (r == -1)
    return -1;
  if (r != 2 || contexts.n != 2 || !contexts.has_base)
    problem ("nbdaio_opt_list_meta_context returned %d (%d callbacks), "
             "expected 2 with base:allocation", r, contexts.n);
  type = nbdaio_opt_raw (h, RAW_UNKNOWN_OPTION, "??", 2);
  if (type == -1)
    return -1;
  if (!reply_is (type, "NBD_REP_ERR_UNSUP") ||
      nbdaio_get_opt_reply_type (h) != type)
    problem ("an unknown option was answered with 0x%" PRIx64
             " (last reply type 0x%" PRIx64 "), expected NBD_REP_ERR_UNSUP",
             type, nbdaio_get_opt_reply_type (h));
  if (nbdaio_opt_go (h) == -1)
    return -1;
  if (!reply_is (nbdaio_get_opt_reply_type (h), "NBD_REP_ACK"))
    problem ("after nbdaio_opt_go the last reply type is 0x%" PRIx64,
             nbdaio_get_opt_reply_type (h));
  return 0;
}

/* ---- output --------------------------------------------------------- */

static void
json_string (const char *key, const char *s)
{
  printf (",\"%s\":", key);
  if (s)
    cli_json_string (stdout, s);
  else
    fputs ("null", stdout);
}

static void __attribute__ ((noreturn))
usage (void)
{
  fprintf (stderr, "usage: hostile-client --cmd read|sread|dfread|write|bs|"
           "bs-one|bs-filter|mixed|opt --expect violation|eof|ok|timeout|shutdown|errno:NAME "
           "[--count N] [--timeout MS] SOCKET\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "cmd", required_argument, NULL, 'c' },
    { "expect", required_argument, NULL, 'e' },
    { "count", required_argument, NULL, 'n' },
    { "timeout", required_argument, NULL, 't' },
    { NULL, 0, NULL, 0 },
  };
  const char *cmd_arg = NULL, *expect_arg = NULL, *path;
  char *connect_error = NULL, *conn_error = NULL, *late_error = NULL;
  const char *violation = NULL;         /* the tag the library reports */
  int count = 16, timeout_ms = 5000, opt, connected, aborted = 0;
  int want_errno = 0, late_errno = 0, nok = 0;
  int connect_errno = 0, nerr[256] = { 0 }, nfail = 0, other_fail = 0;
  int frees = 0, frees_expected = 0, callbacks = 0, alive, opt_mode;
  enum expect expect;
  struct nbdaio_handle *h;
  int64_t start, elapsed;

  while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': cmd_arg = optarg; break;
    case 'e': expect_arg = optarg; break;
    case 'n': count = atoi (optarg); break;
    case 't': timeout_ms = atoi (optarg); break;
    default: usage ();
    }
  }
  if (optind != argc - 1 || !cmd_arg || !expect_arg || count < 1 ||
      count > MAX_CMDS || timeout_ms < 1)
    usage ();
  path = argv[optind];
  opt_mode = strcmp (cmd_arg, "opt") == 0;
  if (strcmp (expect_arg, "violation") == 0) expect = X_VIOLATION;
  else if (strcmp (expect_arg, "eof") == 0) expect = X_EOF;
  else if (strcmp (expect_arg, "ok") == 0) expect = X_OK;
  else if (strcmp (expect_arg, "timeout") == 0) expect = X_TIMEOUT;
  else if (strcmp (expect_arg, "shutdown") == 0) expect = X_SHUTDOWN;
  else if (strncmp (expect_arg, "errno:", 6) == 0 &&
           (want_errno = errno_from_name (expect_arg + 6)) > 0)
    expect = X_ERRNO;
  else
    usage ();

  for (int i = 0; i < count; i++) {
    struct cmd *c = &cmds[i];
    if (strcmp (cmd_arg, "mixed") == 0)
      c->kind = mixed[i % (sizeof mixed / sizeof mixed[0])];
    else if (opt_mode)
      c->kind = K_READ;
    else {
      size_t k = 0;
      while (k < sizeof kind_names / sizeof kind_names[0] &&
             strcmp (cmd_arg, kind_names[k]) != 0)
        k++;
      if (k == sizeof kind_names / sizeof kind_names[0])
        usage ();
      c->kind = (enum kind) k;
    }
    /* 4 KiB, crossing the server's 1 KiB hole/data pieces unaligned */
    c->offset = (uint64_t) i * 5120 + (i % 2) * 512;
    c->count = LEN;
    c->retire = i % 2 == 0;     /* half retire themselves, half are polled */
  }

  start = cli_now_ms ();
  h = nbdaio_create ();
  if (!h) {
    fprintf (stderr, "hostile-client: %s\n", nbdaio_get_error ());
    return 1;
  }
  if (nbdaio_set_connect_timeout (h, (unsigned) timeout_ms) == -1 ||
      nbdaio_set_request_timeout (h, (unsigned) timeout_ms) == -1) {
    fprintf (stderr, "hostile-client: %s\n", nbdaio_get_error ());
    return 1;
  }
  if (opt_mode && nbdaio_set_opt_mode (h, 1) == -1) {
    fprintf (stderr, "hostile-client: %s\n", nbdaio_get_error ());
    return 1;
  }
  /* --expect violation: every violation must end the connection; other
   * expectations keep the library's default policy, under which one that
   * leaves the stream in sync fails its command only (errno:EPROTO) */
  if (expect == X_VIOLATION &&
      nbdaio_set_reply_violations (h, NBDAIO_VIOLATIONS_CLOSE) == -1) {
    fprintf (stderr, "hostile-client: %s\n", nbdaio_get_error ());
    return 1;
  }
  if (strcmp (cmd_arg, "bs-filter") == 0 &&
      nbdaio_add_meta_context (h, "qemu:dirty-bitmap:hostile") == -1) {
    fprintf (stderr, "hostile-client: %s\n", nbdaio_get_error ());
    return 1;
  }
  connected = nbdaio_connect_unix (h, path) == 0;
  if (connected && opt_mode && negotiate (h) == -1) {
    connected = 0;
    if (nbdaio_is_negotiating (h) || nbdaio_get_connection_error (h) == NULL)
      problem ("a failed opt call left the handle negotiating or without "
               "a connection error");
  }
  if (!connected) {
    connect_errno = nbdaio_get_errno ();
    connect_error = strdup (nbdaio_get_error () ? nbdaio_get_error () : "");
    violation = nbdaio_get_violation ();
    if (!violation != !nbdaio_get_connection_violation (h) ||
        (violation && strcmp (violation,
                              nbdaio_get_connection_violation (h))))
      problem ("the failed connect and the dead handle name different "
               "violations");
  }

  /* Issue everything at once: it leaves in one batch, so that the server
   * misbehaves with commands in flight. */
  for (int i = 0; connected && i < count; i++) {
    struct cmd *c = &cmds[i];
    if ((c->kind == K_BS || c->kind == K_BS_ONE) &&
        nbdaio_can_block_status (h) != 1)
      c->kind = K_READ;         /* simple replies: no meta context */
    if (c->kind == K_DFREAD && nbdaio_can_df (h) != 1)
      c->kind = K_SREAD;        /* DF not advertised */
    if (c->kind == K_BS_FILTER && nbdaio_can_block_status_payload (h) != 1)
      c->kind = K_READ;         /* no filtering: a read instead */
    c->cookie = issue (h, c);
    if (c->cookie == -1) {
      problem ("issuing command %d (%s) failed: %s", i, kind_names[c->kind],
               nbdaio_get_error ());
      break;
    }
    issued++;
  }
  while (connected && nbdaio_aio_in_flight (h) > 0) {
    int64_t left = start + timeout_ms + GRACE_MS - cli_now_ms ();
    if (left <= 0) {
      char why[128];
      snprintf (why, sizeof why, "hostile-client gave up: the request "
                "timeout (%d ms) did not end the connection", timeout_ms);
      if (nbdaio_abort (h, ETIMEDOUT, why) == -1)
        problem ("nbdaio_abort failed: %s", nbdaio_get_error ());
      aborted = 1;
      break;
    }
    if (nbdaio_poll (h, (int) left) == -1) {
      if (nbdaio_is_connected (h) == 1)
        problem ("nbdaio_poll failed on a live connection: %s",
                 nbdaio_get_error ());
      break;
    }
    retire_completed (h);
  }
  retire_completed (h);
  if (connected && nbdaio_aio_in_flight (h) != 0)
    problem ("%d commands still in flight after the connection ended",
             nbdaio_aio_in_flight (h));
  elapsed = cli_now_ms () - start;
  if (nbdaio_get_connection_error (h))
    conn_error = strdup (nbdaio_get_connection_error (h));
  if (connected)
    violation = nbdaio_get_connection_violation (h);
  alive = nbdaio_is_connected (h) == 1;
  if (alive && nbdaio_shutdown (h) == -1)
    problem ("nbdaio_shutdown failed: %s", nbdaio_get_error ());

  /* The handle cannot issue any more: a command must fail at once, its
   * callback must not run, its free must. */
  {
    struct cmd *c = &cmds[MAX_CMDS];
    c->kind = K_READ;
    c->count = LEN;
    if (issue (h, c) != -1)
      problem ("a read was issued on a dead handle");
    late_errno = nbdaio_get_errno ();
    late_error = strdup (nbdaio_get_error () ? nbdaio_get_error () : "");
    if (c->calls || c->frees[F_COMPLETION] != 1)
      problem ("refused command: callback ran %d times, free %d times",
               c->calls, c->frees[F_COMPLETION]);
  }
  nbdaio_close (h);

  for (int i = 0; i < issued; i++) {
    struct cmd *c = &cmds[i];
    callbacks += c->calls;
    if (c->calls != 1)
      problem ("callback of command %d ran %d times", i, c->calls);
    for (int f = 0; f < NR_FREES; f++) {
      frees += c->frees[f];
      frees_expected += c->passed[f];
      if (c->frees[f] != c->passed[f])
        problem ("free %d of command %d ran %d times", f, i, c->frees[f]);
    }
    if (c->calls && c->error == 0)
      nok++;
    else if (c->calls) {
      nfail++;
      nerr[c->error & 255]++;
    }
    if (c->error == EPROTO && !c->violation)
      problem ("command %d failed with EPROTO, its callback saw no "
               "violated rule", i);
    if (c->error == EPROTO && !conn_error && !violation)
      violation = c->violation;   /* the connection lived on */
  }

  /* Was the outcome the expected one? */
  for (int e = 1; e < 256; e++) {
    int want = expect == X_VIOLATION ? EPROTO : expect == X_EOF ? ENOTCONN :
               expect == X_TIMEOUT ? ETIMEDOUT :
               expect == X_SHUTDOWN ? ESHUTDOWN : want_errno;
    if (e != want)
      other_fail += nerr[e];
  }
  switch (expect) {
  case X_OK:
    if (!connected || nfail || conn_error || nok != count)
      problem ("expected every command to succeed");
    break;
  case X_ERRNO:
  case X_SHUTDOWN:
    if (!connected || nfail == 0 || other_fail || conn_error)
      problem ("expected some commands to fail with %s, the others to "
               "succeed, and no connection error", expect_arg);
    if (expect == X_SHUTDOWN && (alive || late_errno != ESHUTDOWN))
      problem ("expected a soft disconnect, then ESHUTDOWN for new "
               "commands (got %s)", errno_name (late_errno));
    break;
  case X_VIOLATION:
  case X_EOF:
  case X_TIMEOUT: {
    int want = expect == X_VIOLATION ? EPROTO : expect == X_EOF ? ENOTCONN :
               ETIMEDOUT;
    if (!connected) {
      if (connect_errno != want)
        problem ("connect failed with %s, expected %s",
                 errno_name (connect_errno), errno_name (want));
    }
    else if (alive || !conn_error || nfail == 0 || other_fail ||
             aborted)
      problem ("expected the connection to end (%s) and the commands in "
               "flight to fail with %s", expect_arg, errno_name (want));
    if (expect == X_VIOLATION && !violation)
      problem ("the library names no violated rule");
    if (expect == X_TIMEOUT && connected &&
        !strstr (conn_error ? conn_error : "", "(request-timeout)"))
      problem ("the connection did not end by the request timeout");
    if (expect == X_TIMEOUT && elapsed > timeout_ms + GRACE_MS)
      problem ("gave up after %lld ms (timeout %d ms)", (long long) elapsed,
               timeout_ms);
    break;
  }
  }

  printf ("{\"connect\":%d", connected ? 0 : -1);
  json_string ("connect_errno", connected ? NULL : errno_name (connect_errno));
  json_string ("connect_error", connect_error);
  printf (",\"issued\":%d,\"callbacks\":%d,\"succeeded\":%d,\"failed\":{",
          issued, callbacks, nok);
  for (int e = 1, first = 1; e < 256; e++)
    if (nerr[e]) {
      printf ("%s\"%s\":%d", first ? "" : ",", errno_name (e), nerr[e]);
      first = 0;
    }
  printf ("},\"frees\":%d,\"frees_expected\":%d", frees, frees_expected);
  json_string ("connection_error", conn_error);
  json_string ("violation", violation);
  json_string ("late_issue_errno", errno_name (late_errno));
  json_string ("late_issue_error", late_error);
  printf (",\"aborted\":%s,\"elapsed_ms\":%lld", aborted ? "true" : "false",
          (long long) elapsed);
  json_string ("problems", nproblems ? problems : NULL);
  printf ("}\n");
  free (connect_error);
  free (conn_error);
  free (late_error);
  return nproblems ? 1 : 0;
}
