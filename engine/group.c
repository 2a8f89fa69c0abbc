/* group.c - connection groups: several connections to one export with the
 * same settings (multi-conn).  Each is an ordinary handle; the group opens
 * them, picks the one for the next command, submits and waits on all of
 * them, and makes flushes that cover every connection's earlier writes.
 *
 * Flush epochs.  A flush must wait until the writes issued before it have
 * completed (a server's flush covers only completed writes), but not for
 * writes issued after it, or a busy group would never flush (and a caller
 * holding later writes back would wait forever).  Writes count in the
 * current epoch; a flush that finds writes in flight takes the current
 * epoch as its own, joins the FIFO of waiting flushes and starts a new
 * epoch, so later writes count apart.  low is the oldest epoch with writes
 * in flight: as completions drain it, it moves on, and every waiting flush
 * of an older epoch goes.  Epochs in use (low .. cur) are at most the
 * waiting flushes plus one, so their counters are a ring of pool + 2.  All
 * of it O(1) per command (amortized); flush records come from a pool made
 * at creation.
 *
 * Waiting.  nbdaio_group_wait reads first the connections whose oldest
 * reply may be back (not every sent command left since the previous wait
 * ended: those replies are rarely back yet), starting at a rotating one,
 * and polls only when reads find too little; when reads keep finding
 * nothing (replies spread over many sockets), it polls first, re-measuring
 * every 16th call. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "internal.h"

#define MISS_MAX 8              /* empty reads remembered at most */
#define MISS_POLL_FIRST 4       /* from this many, poll before reading */

struct group_flush {
  struct nbdaio_group *g;
  uint64_t epoch;               /* waiting: it goes once low passes it */
  nbdaio_completion_callback completion;
  unsigned out;                 /* its NBD_CMD_FLUSHes not completed */
  int error;                    /* the first error */
  struct group_flush *next;     /* on a waiting list or the free list */
};

struct flush_list { struct group_flush *head, *tail; };

struct group_member {
  struct nbdaio_handle *h;
  uint64_t left_before;         /* h->nleft when the last wait ended:
                                 * commands sent since are too fresh for
                                 * their replies to be back */
};

struct nbdaio_group {
  struct group_member m[NBDAIO_GROUP_MAX];
  unsigned n;
  unsigned target;              /* nbdaio_group_pick's current choice */
  unsigned share;               /* in flight on target before moving on */
  unsigned read_next;           /* the connection a wait reads first */
  unsigned empty_reads;          /* reads that found no completion minus
                                 * those that did, within 0..MISS_MAX */
  unsigned waits;               /* nbdaio_group_wait calls */
  bool multi_conn;              /* one flush covers every connection */
  bool closing;
  uint64_t completed;           /* commands of the group completed */
  /* flush epochs (see the top of the file) */
  uint64_t cur, low;            /* the current and the oldest epoch */
  uint64_t *writes;             /* writes in flight, by epoch % nepochs */
  uint32_t nepochs;
  struct flush_list waiting;    /* flushes by epoch, oldest first */
  struct group_flush *pool, *free_flush;
  int64_t flush_seq;
  struct pollfd pfd[NBDAIO_GROUP_MAX];
  unsigned pfd_member[NBDAIO_GROUP_MAX];
};

static bool
is_write (uint16_t type)
{
  return type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
         type == NBD_CMD_WRITE_ZEROES;
}

/* ---- creation ----------------------------------------------------------- */

/* Connection i (a new handle with h's settings) to h's target. */
static struct nbdaio_handle *
connect_like (struct nbdaio_handle *h, unsigned i)
{
  struct nbdaio_handle *c = nbdaio_create ();
  int r;

  if (!c)
    return NULL;
  if (settings_copy (c, h) == -1) {
    nbdaio_close (c);
    set_error (ENOMEM, "out of memory copying the settings");
    return NULL;
  }
  r = h->rc.kind == RC_TCP ? nbdaio_connect_tcp (c, h->rc.host, h->rc.port)
                           : nbdaio_connect_unix (c, h->rc.path);
  if (r == -1) {
    char what[48];
    snprintf (what, sizeof what, "connection %u of %u", i, h->conns);
    error_prefix (what);
    nbdaio_close (c);
    return NULL;
  }
  return c;
}

/* Connection i sees the export connection 0 sees.  Returns 0, or -1
 * (EPROTO) naming what differs. */
static int
same_export (const struct nbdaio_handle *h0, const struct nbdaio_handle *c,
             unsigned i)
{
  if (c->info.size != h0->info.size)
    return set_error (EPROTO, "connection %u sees an export of %llu bytes, "
                      "connection 0 one of %llu bytes", i,
                      (unsigned long long) c->info.size,
                      (unsigned long long) h0->info.size);
  if (c->info.tflags != h0->info.tflags)
    return set_error (EPROTO, "connection %u sees transmission flags 0x%x, "
                      "connection 0 0x%x", i, c->info.tflags,
                      h0->info.tflags);
  if (c->info.extended != h0->info.extended ||
      c->info.structured_replies != h0->info.structured_replies)
    return set_error (EPROTO, "connection %u negotiated other reply "
                      "headers than connection 0", i);
  return 0;
}

/* h (connected) may become a group.  Returns 0, or -1 (EINVAL, ENOTSUP)
 * saying why not. */
static int
check_creatable (struct nbdaio_handle *h)
{
  if (h->group)
    return set_error (EINVAL, "the handle belongs to a group already");
  if (h->rc.kind == RC_NONE)
    return set_error (EINVAL, "a handle connected with "
                      "nbdaio_connect_socket cannot open more connections "
                      "(the library does not know its target)");
  if (h->conns > 1 && !(h->info.tflags & NBD_FLAG_CAN_MULTI_CONN) &&
      !h->force_multi_conn)
    return set_error (ENOTSUP, "conns=%u, but the server does not advertise "
                      "multi-conn (connections may see each other's writes "
                      "late); set force-multi-conn to use several "
                      "connections anyway", h->conns);
  return 0;
}

static void
group_free (struct nbdaio_group *g)
{
  free (g->writes);
  free (g->pool);
  free (g);
}

struct nbdaio_group *
nbdaio_group_create (struct nbdaio_handle *h)
{
  struct nbdaio_group *g;
  unsigned pool;

  if (handle_check_state (h, IN_CONNECTED, __func__) == -1 ||
      check_creatable (h) == -1)
    return NULL;
  g = calloc (1, sizeof *g);
  pool = h->max_in_flight;
  if (!g || !(g->pool = calloc (pool, sizeof *g->pool)) ||
      !(g->writes = calloc (pool + 2, sizeof *g->writes))) {
    if (g)
      free (g->pool);
    free (g);
    set_error (ENOMEM, "out of memory creating a group");
    return NULL;
  }
  g->m[0].h = h;
  for (g->n = 1; g->n < h->conns; g->n++) {
    struct nbdaio_handle *c = connect_like (h, g->n);
    if (c && same_export (h, c, g->n) == -1) {
      nbdaio_close (c);
      c = NULL;
    }
    if (!c) {
      struct saved_error e;
      error_save (&e);
      while (--g->n > 0)
        nbdaio_close (g->m[g->n].h);
      group_free (g);
      error_restore (&e);
      return NULL;
    }
    g->m[g->n].h = c;
  }
  for (unsigned i = 0; i < pool; i++) {
    g->pool[i].g = g;
    g->pool[i].next = i + 1 < pool ? &g->pool[i + 1] : NULL;
  }
  g->free_flush = g->pool;
  g->nepochs = pool + 2;
  for (unsigned i = 0; i < g->n; i++)
    g->m[i].h->group = g;
  g->share = (h->max_in_flight + g->n - 1) / g->n;
  g->multi_conn = (h->info.tflags & NBD_FLAG_CAN_MULTI_CONN) != 0;
  return g;
}

/* A waiting flush whose writes can no longer be flushed completes. */
static void flush_finish (struct group_flush *f);

void
nbdaio_group_close (struct nbdaio_group *g)
{
  if (!g)
    return;
  g->closing = true;            /* flushes released now fail (flush_go) */
  for (unsigned i = 0; i < g->n; i++) {
    g->m[i].h->group = NULL;
    nbdaio_close (g->m[i].h);
  }
  while (g->waiting.head) {
    struct group_flush *f = g->waiting.head;
    g->waiting.head = f->next;
    f->error = f->error ? f->error : ENOTCONN;
    flush_finish (f);
  }
  group_free (g);
}

unsigned
nbdaio_group_get_size (const struct nbdaio_group *g)
{
  return g ? g->n : 0;
}

struct nbdaio_handle *
nbdaio_group_get_handle (struct nbdaio_group *g, unsigned i)
{
  if (!g || i >= g->n) {
    set_error (EINVAL, "no connection %u in the group", i);
    return NULL;
  }
  return g->m[i].h;
}

int
nbdaio_group_get_stats (struct nbdaio_group *g, struct nbdaio_stats *out,
                        size_t size)
{
  /* every field is a uint64_t counter (nbdaio.h): summed as such */
  enum { NCOUNTERS = sizeof (struct nbdaio_stats) / sizeof (uint64_t) };
  union { struct nbdaio_stats s; uint64_t c[NCOUNTERS]; } sum = { 0 }, one;
  _Static_assert (sizeof (struct nbdaio_stats) % sizeof (uint64_t) == 0,
                  "struct nbdaio_stats holds only uint64_t counters");

  if (!g || !out)
    return set_error (EINVAL, "group or output is NULL");
  for (unsigned i = 0; i < g->n; i++) {
    nbdaio_get_stats (g->m[i].h, &one.s, sizeof one.s);
    for (size_t k = 0; k < NCOUNTERS; k++)
      sum.c[k] += one.c[k];
  }
  return stats_copy_out (&sum.s, out, size);
}

/* ---- spreading and submitting ------------------------------------------ */

/* The target is full or not connected: move it to the best connection.
 * Out of line, so that nbdaio_group_pick's usual answer (the same target
 * again) costs a few loads and no register saves. */
static __attribute__((noinline)) void
retarget (struct nbdaio_group *g)
{
  unsigned best = g->target;

  for (unsigned i = 0; i < g->n; i++) {
    const struct nbdaio_handle *x = g->m[i].h, *b = g->m[best].h;
    /* connected beats reconnecting beats dead; then the lighter load */
    int rx = x->state == H_CONNECTED ? 2 : x->state == H_RECONNECTING;
    int rb = b->state == H_CONNECTED ? 2 : b->state == H_RECONNECTING;
    if (rx > rb || (rx == rb && x->in_flight < b->in_flight))
      best = i;
  }
  g->target = best;
}

struct nbdaio_handle *
nbdaio_group_pick (struct nbdaio_group *g, unsigned *index)
{
  struct nbdaio_handle *t;

  if (!g) {
    set_error (EINVAL, "group is NULL");
    return NULL;
  }
  t = g->m[g->target].h;
  if (g->n > 1 && (t->in_flight >= g->share || t->state != H_CONNECTED)) {
    retarget (g);
    t = g->m[g->target].h;
  }
  if (index)
    *index = g->target;
  return t;
}

int
nbdaio_group_submit (struct nbdaio_group *g)
{
  int sent = 0;

  if (!g)
    return set_error (EINVAL, "group is NULL");
  for (unsigned i = 0; i < g->n; i++) {
    struct nbdaio_handle *h = g->m[i].h;
    int r;
    /* nbdaio_aio_submit inline: its permitted states, no error */
    if (h->sq_len > send_ready (h) &&
        handle_in (h, IN_CONNECTED | IN_RECONNECTING) &&
        (r = send_submit_all (h)) > 0)
      sent += r;
  }
  return sent;
}

/* ---- waiting ------------------------------------------------------------ */

/* Whether h has something to wait for: a submitted command not answered,
 * or a reconnect attempt. */
static bool
waitable (const struct nbdaio_handle *h)
{
  if (h->state == H_RECONNECTING)
    return h->in_flight > 0;
  return h->state == H_CONNECTED && (h->nsent || send_ready (h));
}

/* Read what has arrived on connection i, without waiting. */
static void
read_member (struct nbdaio_group *g, unsigned i)
{
  nbdaio_aio_notify_read (g->m[i].h);   /* a death fails its commands */
}

/* Read the connections whose oldest reply may be back, starting at a
 * rotating one, until want commands completed since done0. */
static void
read_first (struct nbdaio_group *g, unsigned want, uint64_t done0)
{
  unsigned next = g->read_next;

  for (unsigned k = 0; k < g->n; k++) {
    unsigned i = next;
    struct nbdaio_handle *h = g->m[i].h;
    if (++next == g->n)
      next = 0;
    if (h->state == H_CONNECTED &&
        h->nsent > h->nleft - g->m[i].left_before) {
      uint64_t before = g->completed;
      read_member (g, i);
      if (g->completed != before)
        g->empty_reads -= g->empty_reads > 0;
      else
        g->empty_reads += g->empty_reads < MISS_MAX;
      if (want && g->completed - done0 >= want)
        break;                  /* completions come only from reads */
    }
  }
  g->read_next = next;
}

/* poll_members found nothing to wait for. */
#define NOTHING_WAITABLE (-2)

/* Poll the connections with something to wait for, up to ms (-1: no
 * limit) and never past a request deadline or reconnect attempt; handle
 * those that can go on.  Returns poll's result, or NOTHING_WAITABLE.
 * Internal fields are read directly: this runs once per wait. */
static int
poll_members (struct nbdaio_group *g, int ms)
{
  unsigned n = 0;
  int r;

  for (unsigned i = 0; i < g->n; i++) {
    struct nbdaio_handle *h = g->m[i].h;
    struct pollfd *p = &g->pfd[n];
    if (!waitable (h))
      continue;
    if (h->state == H_RECONNECTING) {
      int left = reconnect_timeout (h);
      if (left >= 0 && (ms < 0 || left < ms))
        ms = left;
      p->fd = h->rc.timer_fd;
      p->events = POLLIN;
    }
    else {
      if (h->request_timeout_ms)        /* else no deadline: no call */
        ms = deadline_poll_ms (h, ms);
      p->fd = h->t.fd;
      p->events = POLLIN | (send_ready (h) ? POLLOUT : 0);
    }
    p->revents = 0;
    g->pfd_member[n++] = i;
  }
  if (!n)
    return NOTHING_WAITABLE;
  r = poll (g->pfd, n, ms);
  for (int k = 0; r >= 0 && k < (int) n; k++) {
    unsigned i = g->pfd_member[k];
    struct nbdaio_handle *h = g->m[i].h;
    short rev = g->pfd[k].revents;
    if (rev & (POLLIN | POLLHUP | POLLERR))
      read_member (g, i);       /* also finishes a partial send */
    else if (rev & POLLOUT)
      nbdaio_aio_notify_write (h);
    else if (h->state == H_CONNECTED ? deadline_poll_ms (h, -1) == 0
                                     : reconnect_timeout (h) == 0)
      read_member (g, i);       /* checks the deadline: ETIMEDOUT, or
                                 * makes the reconnect attempt */
  }
  return r;
}

int
nbdaio_group_wait (struct nbdaio_group *g, unsigned want, int timeout_ms)
{
  uint64_t done0;
  int64_t deadline = -1;
  bool polled = false;
  int r = 0;

  if (!g)
    return set_error (EINVAL, "group is NULL");
  for (unsigned i = 0; i < g->n; i++)
    if (g->m[i].h->reading)
      return set_error (EBUSY, "nbdaio_group_wait called from a callback "
                        "of connection %u while it reads replies", i);
  done0 = g->completed;
  if (timeout_ms > 0)
    deadline = transport_now_ms () + timeout_ms;
  if (g->empty_reads < MISS_POLL_FIRST || !(++g->waits & 15))
    read_first (g, want, done0);
  else if (!want)
    r = poll_members (g, 0);
  while (want && g->completed - done0 < want) {
    int ms = -1;
    if (timeout_ms == 0) {
      if (polled)
        break;
      ms = 0;                   /* one look, never sleeping */
    }
    else if (deadline >= 0) {
      int64_t now = transport_now_ms ();
      if (now >= deadline)
        break;
      ms = (int) (deadline - now);
    }
    r = poll_members (g, ms);
    polled = true;
    if (r < 0)
      break;
  }
  for (unsigned i = 0; i < g->n; i++)
    g->m[i].left_before = g->m[i].h->nleft;
  if (r == -1 && errno != EINTR)
    return set_error (errno, "poll: %s", strerror (errno));
  return (int) (g->completed - done0);
}

/* ---- flushes ------------------------------------------------------------ */

static void
list_push (struct flush_list *l, struct group_flush *f)
{
  f->next = NULL;
  if (l->tail)
    l->tail->next = f;
  else
    l->head = f;
  l->tail = f;
}

static void
flush_finish (struct group_flush *f)
{
  struct nbdaio_group *g = f->g;
  nbdaio_completion_callback cb = f->completion;
  int err = f->error;

  memset (&f->completion, 0, sizeof f->completion);
  f->next = g->free_flush;
  g->free_flush = f;
  if (cb.callback)
    cb.callback (cb.user_data, &err);
  if (cb.free)
    cb.free (cb.user_data);
}

/* One NBD_CMD_FLUSH of f completed. */
static int
flush_piece_done (void *user_data, int *error)
{
  struct group_flush *f = user_data;

  if (*error && !f->error)
    f->error = *error;
  if (--f->out == 0)
    flush_finish (f);
  return 1;
}

/* Send f's NBD_CMD_FLUSHes: one on the picked connection with multi-conn,
 * else one on every live connection; released: its writes completed
 * after the nbdaio_group_aio_flush call.  Returns how many left; with none,
 * f->error says why. */
static unsigned
flush_go (struct nbdaio_group *g, struct group_flush *f, bool released)
{
  nbdaio_completion_callback cb = { .callback = flush_piece_done,
                                    .user_data = f };

  f->out = 1;                   /* held while they are issued */
  for (unsigned i = 0; i < g->n && !g->closing; i++) {
    struct nbdaio_handle *h = g->multi_conn ? nbdaio_group_pick (g, NULL)
                                            : g->m[i].h;
    if (nbdaio_aio_flush (h, cb, 0) >= 1) {
      /* the caller submitted the group flush long ago, maybe: it leaves
       * with the next send on h, without waiting for a submit */
      if (released)
        send_submit_last (h);
      f->out++;
      if (g->multi_conn)
        break;
    }
    else if (!f->error)
      f->error = nbdaio_get_errno () ? nbdaio_get_errno () : EIO;
  }
  if (g->closing && !f->error)
    f->error = ENOTCONN;
  return --f->out;
}

/* The counter of epoch e. */
static uint64_t *
epoch_writes (struct nbdaio_group *g, uint64_t e)
{
  return &g->writes[e % g->nepochs];
}

/* Move low past the drained epochs and send the flushes waiting for
 * them. */
static void
flush_release (struct nbdaio_group *g)
{
  while (g->low < g->cur && *epoch_writes (g, g->low) == 0)
    g->low++;
  while (g->waiting.head && g->waiting.head->epoch < g->low) {
    struct group_flush *f = g->waiting.head;
    if (!(g->waiting.head = f->next))
      g->waiting.tail = NULL;
    if (flush_go (g, f, true) == 0)
      flush_finish (f);
  }
}

void
group_cmd_issued (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  struct nbdaio_group *g = h->group;

  cmd->group_epoch = 0;
  if (is_write (cmd->type)) {
    cmd->group_epoch = (uint32_t) (g->cur % g->nepochs) + 1;
    (*epoch_writes (g, g->cur))++;
  }
}

/* cmd, a write counted in a flush epoch (group_epoch: the epoch's counter
 * + 1), completed.  Out of line, so that group_cmd_done, which runs for
 * every completion, saves no registers. */
static __attribute__((noinline)) void
write_done (struct nbdaio_group *g, struct nbdaio_cmd *cmd)
{
  uint32_t e = cmd->group_epoch;

  cmd->group_epoch = 0;
  if (--g->writes[e - 1] == 0 && e - 1 == g->low % g->nepochs)
    flush_release (g);
}

void
group_cmd_done (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  struct nbdaio_group *g = h->group;

  g->completed++;
  if (cmd->group_epoch)
    write_done (g, cmd);
}

int64_t
nbdaio_group_aio_flush (struct nbdaio_group *g,
                        nbdaio_completion_callback completion, uint32_t flags)
{
  struct group_flush *f;
  int r = 0;

  if (!g)
    r = set_error (EINVAL, "group is NULL");
  else if (flags)
    r = set_error (EINVAL, "flags 0x%x are not valid for a flush", flags);
  else if (!(g->m[0].h->info.tflags & NBD_FLAG_SEND_FLUSH))
    r = set_error (ENOTSUP, "the server does not support flush");
  else if (!(f = g->free_flush))
    r = set_error (EAGAIN, "too many group flushes in flight");
  if (r == -1) {
    callbacks_release (NULL, NULL, &completion);
    return -1;
  }
  g->free_flush = f->next;
  f->completion = completion;
  f->error = 0;
  if (g->low < g->cur || *epoch_writes (g, g->cur)) {
    /* writes before it are in flight: it waits for its epoch to drain */
    f->epoch = g->cur++;        /* its counter was drained: ring */
    list_push (&g->waiting, f);
  }
  else if (flush_go (g, f, false) == 0) {
    /* no connection took it: the call fails with the last connection's
     * error, the callback never runs */
    struct saved_error e;
    f->next = g->free_flush;
    g->free_flush = f;
    error_save (&e);
    callbacks_release (NULL, NULL, &f->completion);
    return error_restore (&e);
  }
  return ++g->flush_seq;
}
