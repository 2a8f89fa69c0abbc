/* nbdaio-engine.c - nbdaio.so, the fio external ioengine: fio's queue /
 * commit / getevents / event hooks mapped onto libnbdaio's aio commands and
 * completion callbacks.  Only the public nbdaio.h API is used; the library
 * is linked in statically and only the symbol `ioengine` is exported.
 *
 * Per job: one connection group (nbdaio_group_*: `conns` connections,
 * the library picks the one for each request, waits on all of them,
 * reconnects, times out and splits); the library queues requests
 * (auto-submit off) and this engine decides when they leave (engine_commit,
 * submit_held); a completion callback puts the io_u on a ring that
 * getevents / event hand back to fio.  The options are in options.c, the
 * refusals made at setup in job-check.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fio-version.h"
#include "plugin.h"

#define RULES_SAID_MAX 8        /* report_violation: more rules than fail a
                                 * request alone */

/* Per-job state.
 *
 * Sending: engine_queue hands each io_u to the library on the connection
 * the group picks, which only queues it: with auto-submit off it leaves
 * only on a submit, never with a read.  engine_commit submits at once
 * when fio has nothing else outstanding (QD1, the first commit: latency)
 * or when hold_max commands are queued; otherwise it holds them back: fio
 * must call getevents for the other outstanding io_us before it can need
 * the new ones, and getevents submits before anything can wait for a
 * reply (submit_held).  getevents answers from completions it has
 * without a system call when it can (fio's default takes one per call);
 * so the commits of several fio reap/refill cycles leave in one sendmsg. */
struct engine {
  struct nbdaio_group *g;
  bool dead[NBDAIO_GROUP_MAX];  /* its death was reported */
  unsigned inflight;            /* io_us issued and not completed... */
  unsigned nunsent;             /* ...of them queued and not submitted: */
  struct io_u **unsent;         /* stamped when they leave */
  unsigned hold_max;            /* commit submits this many at once */

  enum trim_op trim_op;
  uint32_t write_flags;         /* FUA for writes (fua=1) */
  uint32_t trim_flags;          /* the flags of trim_op's command */

  /* the rules whose violation report_violation named (the library's
   * static tags) */
  const char *rules_said[RULES_SAID_MAX];
  unsigned nrules_said;

  struct io_u **ring;           /* completed io_us, in completion order */
  unsigned ring_mask;
  unsigned ring_head, ring_tail;
  unsigned reported;            /* handed to fio by the last getevents */

  /* one slot per io_u (made by io_u_init), kept for freeing */
  struct io_slot **slots;
  unsigned nslots;
};

/* What io_u->engine_data points to. */
struct io_slot {
  struct engine *e;
  struct io_u *io_u;
  unsigned conn;                /* the connection it was issued on */
};

/* Parent, before fork: connect once (the whole group: the library checks
 * multi-conn and that every connection sees one export), check the job,
 * size the file. */
static int
engine_setup (struct thread_data *td)
{
  struct engine_options *o;
  struct nbdaio_group *g;
  enum trim_op trim_op;
  int r;

  /* first: td's layout is known only for the fio the plugin was built for */
  if (plugin_check_fio_version () == -1)
    return 1;
  o = td->eo;
  if (job_parse_trim_op (o->trim_op, &trim_op) == -1)
    return 1;
  if (!td->files_index) {
    add_file (td, "nbd", 0, 0);
    td->o.nr_files = td->o.nr_files ? : 1;
    td->o.open_files++;
  }
  if (!(g = job_connect (td, o, 1)))
    return 1;
  r = job_check (td, o, nbdaio_group_get_handle (g, 0), trim_op);
  nbdaio_group_close (g);
  return r == 0 ? 0 : 1;
}

/* At the end of a job: one line if a connection was re-established, one
 * if requests failed alone by a protocol violation of the server
 * (report_violation named the rules as they were broken). */
static void
report_stats (struct thread_data *td, struct engine *e)
{
  struct nbdaio_stats st;
  uint64_t n, alone;

  if (nbdaio_group_get_stats (e->g, &st, sizeof st) == -1)
    return;
  n = st.reconnects;
  alone = st.command_violations;
  if (alone)
    log_err ("%s: %s: %llu request%s failed alone by a protocol violation "
             "of the server (reply-violations=command)\n", ENGINE,
             td->o.name, (unsigned long long) alone, alone == 1 ? "" : "s");
  if (n)
    log_info ("%s: %s: %llu reconnect%s, %llu commands resent, %llu ms "
              "down\n", ENGINE, td->o.name, (unsigned long long) n,
              n == 1 ? "" : "s", (unsigned long long) st.commands_resent,
              (unsigned long long) st.downtime_ms);
}

static void
engine_cleanup (struct thread_data *td)
{
  struct engine *e = td->io_ops_data;

  if (!e)
    return;
  report_stats (td, e);
  /* Nothing waits here: fio reaped (or gave up on) every io_u already.
   * Commands still queued unsent fail with ENOTCONN as the group closes. */
  nbdaio_group_close (e->g);
  free (e->unsent);
  free (e->ring);
  for (unsigned i = 0; i < e->nslots; i++)
    free (e->slots[i]);
  free (e->slots);
  free (e);
  td->io_ops_data = NULL;
}

/* Worker: this job's own connections. */
static int
engine_init (struct thread_data *td)
{
  struct engine_options *o = td->eo;
  unsigned depth = td->o.iodepth ? td->o.iodepth : 1, size = 1;
  struct engine *e = calloc (1, sizeof *e);

  while (size < depth)
    size <<= 1;
  if (!e || !(e->ring = calloc (size, sizeof *e->ring)) ||
      !(e->unsent = calloc (depth, sizeof *e->unsent))) {
    log_err ("%s: out of memory\n", ENGINE);
    if (e)
      free (e->ring);
    free (e);
    return 1;
  }
  td->io_ops_data = e;
  e->ring_mask = size - 1;
  if (job_parse_trim_op (o->trim_op, &e->trim_op) == -1 ||
      !(e->g = job_connect (td, o, depth)))
    return 1;
  e->write_flags = o->fua ? NBDAIO_CMD_FLAG_FUA : 0;
  e->trim_flags = e->trim_op == TRIM_OP_CACHE ? 0 :
                  e->trim_op == TRIM_OP_ZERO_NOHOLE ?
                    e->write_flags | NBDAIO_CMD_FLAG_NO_HOLE :
                  e->trim_op == TRIM_OP_FAST_ZERO ?
                    e->write_flags | NBDAIO_CMD_FLAG_FAST_ZERO :
                  e->write_flags;
  /* half the queue depth: the other half keeps the server busy while a
   * batch is collected */
  e->hold_max = depth / 2 ? depth / 2 : 1;
  return 0;
}

/* Say once per connection why it died (a request timeout is cmd_timeout's
 * or the profile's). */
static void
report_dead (struct engine *e, unsigned conn)
{
  struct nbdaio_handle *h = nbdaio_group_get_handle (e->g, conn);
  const char *why = nbdaio_get_connection_error (h);
  struct nbdaio_stats st;

  if (!e->dead[conn] && why) {
    e->dead[conn] = true;
    nbdaio_get_stats (h, &st, sizeof st);
    log_err ("%s: connection %u: %s%s\n", ENGINE, conn, why,
             st.timeouts ? " [cmd_timeout]" : "");
  }
}

/* An io_u finished (err: 0 or its errno): getevents hands it to fio. */
static void
io_done (struct engine *e, struct io_slot *slot, int err)
{
  slot->io_u->error = err;
  e->inflight--;
  e->ring[e->ring_tail++ & e->ring_mask] = slot->io_u;
  if (err)
    report_dead (e, slot->conn);
}

/* In a completion callback with EPROTO: if the server broke a rule that
 * fails the request alone (reply-violations=command: the connection
 * lives on; a violation that ends it is report_dead's), name the rule,
 * its section and what the server sent, once per rule and job (a broken
 * server may fail every request).  Cold: kept out of on_complete, which
 * runs for every request. */
static void __attribute__((cold, noinline))
report_violation (struct engine *e, unsigned conn)
{
  struct nbdaio_handle *h = nbdaio_group_get_handle (e->g, conn);
  const char *tag = nbdaio_get_violation (), *msg = nbdaio_get_error ();
  char prefix[64];
  unsigned i = 0;
  int n;

  if (!tag || !msg || nbdaio_get_connection_violation (h))
    return;
  while (i < e->nrules_said && e->rules_said[i] != tag)
    i++;
  if (i < e->nrules_said || i == RULES_SAID_MAX)
    return;
  e->rules_said[e->nrules_said++] = tag;
  /* the message is "protocol violation [tag]: what was sent (section)" */
  n = snprintf (prefix, sizeof prefix, "protocol violation [%s]: ", tag);
  if (n > 0 && strncmp (msg, prefix, (size_t) n) == 0)
    msg += n;
  log_err ("%s: server broke rule %s: %s; this request failed alone "
           "(reply-violations=command)\n", ENGINE, tag, msg);
}

static int
on_complete (void *user_data, int *error)
{
  struct io_slot *slot = user_data;

  if (*error == EPROTO)
    report_violation (slot->e, slot->conn);
  io_done (slot->e, slot, *error);
  return 1;                     /* retire the command at once */
}

static int64_t
issue (struct engine *e, struct nbdaio_handle *h, struct io_u *io_u)
{
  nbdaio_completion_callback cb = { .callback = on_complete,
                                    .user_data = io_u->engine_data };

  switch (io_u->ddir) {
  case DDIR_READ:
    return nbdaio_aio_pread (h, io_u->xfer_buf, io_u->xfer_buflen,
                             io_u->offset, cb, 0);
  case DDIR_WRITE:
    return nbdaio_aio_pwrite (h, io_u->xfer_buf, io_u->xfer_buflen,
                              io_u->offset, cb, e->write_flags);
  case DDIR_TRIM:
    return (e->trim_op == TRIM_OP_TRIM ? nbdaio_aio_trim :
            e->trim_op == TRIM_OP_CACHE ? nbdaio_aio_cache : nbdaio_aio_zero)
      (h, io_u->xfer_buflen, io_u->offset, cb, e->trim_flags);
  case DDIR_SYNC:
  case DDIR_DATASYNC:
  case DDIR_SYNC_FILE_RANGE:
    /* fio quiesces before a sync; the group's flush covers every
     * connection's earlier writes all the same */
    return nbdaio_group_aio_flush (e->g, cb, 0);
  default:
    errno = EINVAL;
    return -1;
  }
}

static enum fio_q_status
engine_queue (struct thread_data *td, struct io_u *io_u)
{
  struct engine *e = td->io_ops_data;
  struct io_slot *slot = io_u->engine_data;
  struct nbdaio_handle *h = nbdaio_group_pick (e->g, &slot->conn);

  fio_ro_check (td, io_u);
  /* with io_submit_mode=offload a worker thread (its own td, engine and
   * connections) queues io_us whose slots the parent job made */
  slot->e = e;
  e->inflight++;
  if (issue (e, h, io_u) == -1) {
    /* refused by the library (checks, dead connection): it completes with
     * the error; the first one on a live connection is said */
    int err = nbdaio_get_errno () ? nbdaio_get_errno () : EIO;
    if (!td->error && !e->dead[slot->conn])
      log_err ("%s: %s\n", ENGINE, nbdaio_get_error () ?
               nbdaio_get_error () : strerror (err));
    io_done (e, slot, err);
    io_u_mark_submit (td, 1);
    return FIO_Q_QUEUED;
  }
  e->unsent[e->nunsent++] = io_u;
  return FIO_Q_QUEUED;
}

/* Submit what the library queued (one sendmsg per connection, unless a
 * socket buffer fills: the library sends the rest when it takes it);
 * account for it as issued now: fio's issue time and submission latency,
 * its submit histogram (the library starts the request-timeout clock as
 * the requests leave). */
static void
submit (struct thread_data *td, struct engine *e)
{
  unsigned n = e->nunsent;

  e->nunsent = 0;
  nbdaio_group_submit (e->g);   /* a connection that dies fails its own */
  if (fio_fill_issue_time (td)) {
    struct timespec now;
    fio_gettime (&now, NULL);
    for (unsigned i = 0; i < n; i++) {
      memcpy (&e->unsent[i]->issue_time, &now, sizeof now);
      io_u_queued (td, e->unsent[i]);
    }
  }
  io_u_mark_submit (td, n);
}

/* Completions fio has not been handed yet. */
static unsigned
unreported (const struct engine *e)
{
  return e->ring_tail - e->ring_head - e->reported;
}

static int
engine_commit (struct thread_data *td)
{
  struct engine *e = td->io_ops_data;
  /* io_us fio gets back from getevents before it can need these */
  unsigned others = e->inflight + unreported (e) - e->nunsent;

  if (e->nunsent && (!others || e->nunsent >= e->hold_max))
    submit (td, e);
  return 0;
}

/* Completions for this getevents call (the last call's are consumed). */
static unsigned
avail (const struct engine *e)
{
  return e->ring_tail - e->ring_head;
}

/* Before getevents waits: submit the held commands, unless those already
 * sent can satisfy fio's minimum on their own (sent >= need) and keep the
 * server busy (sent >= hold_max); then the held ones wait for a fuller
 * batch.  Without the first test a minimum above the sent ones (fio's
 * iodepth_batch_complete_min) would hold them until every sent one has
 * completed (the wait ends there, nothing else being in flight): one
 * server round trip late, not a hang (fio-batching-complete-min-held). */
static void
submit_held (struct thread_data *td, struct engine *e, unsigned min)
{
  unsigned sent = e->inflight - e->nunsent;
  unsigned need = min > avail (e) ? min - avail (e) : 1;

  if (e->nunsent && (sent < need || sent < e->hold_max))
    submit (td, e);
}

static int64_t
now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
engine_getevents (struct thread_data *td, unsigned int min, unsigned int max,
                  const struct timespec *t)
{
  struct engine *e = td->io_ops_data;
  struct engine_options *o = td->eo;
  int64_t limit = t ? t->tv_sec * 1000000 + t->tv_nsec / 1000 : -1;
  /* the clock only for a limit: fio's timeout or busy polling */
  int64_t start = limit >= 0 || o->busy_poll ? now_us () : 0;
  unsigned n, idle = 0;
  int r;

  e->ring_head += e->reported;  /* fio consumed the last batch */
  e->reported = 0;
  /* no system call when earlier reads completed enough; held ones wait */
  while (avail (e) < (min ? min : 1) && e->inflight > 0) {
    int64_t spent = start ? now_us () - start : 0;
    bool spin = spent < o->busy_poll;
    int ms = spin ? 0 : limit < 0 ? -1 :
             spent >= limit ? 0 : (int) ((limit - spent + 999) / 1000);
    submit_held (td, e, min);
    r = nbdaio_group_wait (e->g, min > avail (e) ? min - avail (e) : 0, ms);
    if (r == -1 || (ms < 0 && r == 0 && !e->nunsent && ++idle > 2)) {
      int err = r == -1 ? nbdaio_get_errno () : EIO;
      log_err ("%s: %s\n", ENGINE, r == -1 ? nbdaio_get_error () :
               "requests in flight, but none can complete (a bug: please "
               "report it)");
      td_verror (td, err, "getevents");  /* else the job's error reads -1 */
      return -1;
    }
    if (!spin && (ms == 0 || !min))
      break;                    /* fio's timeout passed, or min = 0 */
  }
  n = avail (e) < max ? avail (e) : max;
  e->reported = n;
  return (int) n;
}

static struct io_u *
engine_event (struct thread_data *td, int event)
{
  struct engine *e = td->io_ops_data;

  return e->ring[(e->ring_head + (unsigned) event) & e->ring_mask];
}

/* Each io_u gets a slot once, before any I/O (engine init ran already). */
static int
engine_io_u_init (struct thread_data *td, struct io_u *io_u)
{
  struct engine *e = td->io_ops_data;
  struct io_slot *slot = calloc (1, sizeof *slot);
  struct io_slot **slots = realloc (e->slots, (e->nslots + 1) * sizeof *slots);

  if (!slot || !slots) {
    free (slot);
    log_err ("%s: out of memory\n", ENGINE);
    return 1;
  }
  e->slots = slots;
  slot->e = e;
  slot->io_u = io_u;
  e->slots[e->nslots++] = slot;
  io_u->engine_data = slot;
  return 0;
}

static int
engine_open_file (struct thread_data *td, struct fio_file *f)
{
  (void) td;
  (void) f;
  return 0;
}

/* The one exported symbol: fio looks it up with dlsym. */
__attribute__((visibility ("default")))
struct ioengine_ops ioengine = {
  .name = "nbdaio",
  .version = FIO_IOOPS_VERSION,
  .flags = FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NODISKUTIL |
           FIO_ASYNCIO_SETS_ISSUE_TIME,
  .setup = engine_setup,
  .init = engine_init,
  .cleanup = engine_cleanup,
  .queue = engine_queue,
  .commit = engine_commit,
  .getevents = engine_getevents,
  .event = engine_event,
  .io_u_init = engine_io_u_init,
  .open_file = engine_open_file,
  .invalidate = engine_open_file,
  .options = job_options,
  .option_struct_size = sizeof (struct engine_options),
};

