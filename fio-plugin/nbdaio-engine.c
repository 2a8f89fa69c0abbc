/* nbdaio-engine.c - nbdaio.so, the fio external ioengine: fio's queue /
 * commit / getevents / event hooks mapped onto libnbdaio's aio commands and
 * completion callbacks.  Only the public nbdaio.h API is used; the library
 * is linked in statically and only the symbol `ioengine` is exported.
 *
 * Per job: `conns` connections, each reap/refill cycle's requests going
 * mostly to one of them (the least loaded, see pick_conn); the library
 * queues requests (auto-submit off) and the plugin decides when they leave,
 * in batches of one sendmsg per connection (see struct engine); a
 * completion callback puts the io_u on a ring that getevents /
 * event hand back to fio.
 */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "nbdaio.h"

#define ENGINE "nbdaio"
#define MAX_CONNS 64
#define MISS_MAX 8
#define MISS_POLL_FIRST 4

enum trim_op { TRIM_OP_TRIM, TRIM_OP_ZERO, TRIM_OP_ZERO_NOHOLE,
               TRIM_OP_FAST_ZERO, TRIM_OP_CACHE };

static const char *const trim_op_names[] = {
  [TRIM_OP_TRIM] = "trim", [TRIM_OP_ZERO] = "zero",
  [TRIM_OP_ZERO_NOHOLE] = "zero_nohole", [TRIM_OP_FAST_ZERO] = "fast_zero",
  [TRIM_OP_CACHE] = "cache",
};

/* Options that are library settings: passed as strings to
 * nbdaio_set_option under the fio option's name with '_' turned into '-'
 * (tls_psk_file -> tls-psk-file), so the library is the one judge of their
 * values.  Unset (NULL) ones keep the library's default or the profile's
 * value. */
enum setting {
  SET_TLS, SET_TLS_CERTIFICATES, SET_TLS_PSK_FILE, SET_TLS_USERNAME,
  SET_TLS_HOSTNAME, SET_TLS_VERIFY_PEER, SET_STRUCTURED, SET_STRICT,
  SET_SPLIT, SET_RECONNECT_DELAY, NR_SETTINGS
};

/* Engine options; the first member is fio's pad (it stores td there). */
struct engine_options {
  void *pad;
  char *uri;
  char *profile;
  char *config;
  unsigned int conns;
  unsigned int fua;
  char *trim_op;
  unsigned int cmd_timeout;
  unsigned int force_multi_conn;
  unsigned int busy_poll;
  char *setting[NR_SETTINGS];
};

#define SETTING_OPTION(idx, oname, long_name, text)                     \
  {                                                                     \
    .name = oname, .lname = long_name,                                  \
    .type = FIO_OPT_STR_STORE,                                          \
    .off1 = offsetof (struct engine_options, setting[idx]),             \
    .help = text,                                                       \
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,               \
  }

static struct fio_option options[] = {
  {
    .name = "uri", .lname = "NBD URI",
    .type = FIO_OPT_STR_STORE,
    .off1 = offsetof (struct engine_options, uri),
    .help = "NBD URI of the export (nbd://host[:port]/export, "
            "nbd+unix:///export?socket=PATH, nbds:// for TLS), as for "
            "ioengine=nbd",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "nbd_profile", .lname = "NBD connection profile",
    .type = FIO_OPT_STR_STORE,
    .off1 = offsetof (struct engine_options, profile),
    .help = "Connect with this profile of the profiles file (fio's own "
            "'profile' option is taken, hence the name); job options given "
            "explicitly override the profile's",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "config", .lname = "NBD profiles file",
    .type = FIO_OPT_STR_STORE,
    .off1 = offsetof (struct engine_options, config),
    .help = "The profiles file for nbd_profile (default: $NBDAIO_CONFIG, "
            "~/.config/nbdaio/profiles.ini, /etc/nbdaio/profiles.ini)",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "conns", .lname = "NBD connections",
    .type = FIO_OPT_INT,
    .off1 = offsetof (struct engine_options, conns),
    .def = "0", .minval = 0, .maxval = MAX_CONNS,
    .help = "Connections per job; requests are spread across them (needs "
            "the server's multi-conn, see force_multi_conn); 0 = the "
            "profile's conns, else 1",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "fua", .lname = "NBD FUA writes",
    .type = FIO_OPT_BOOL,
    .off1 = offsetof (struct engine_options, fua),
    .def = "0",
    .help = "Send writes (and trims) with NBD_CMD_FLAG_FUA (the server must "
            "support FUA)",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "trim_op", .lname = "NBD command for trims",
    .type = FIO_OPT_STR_STORE,
    .off1 = offsetof (struct engine_options, trim_op),
    .def = "trim",
    .help = "What fio's trim direction sends: trim, zero, zero_nohole, "
            "fast_zero or cache",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "cmd_timeout", .lname = "NBD command timeout (ms)",
    .type = FIO_OPT_INT,
    .off1 = offsetof (struct engine_options, cmd_timeout),
    .def = "0",
    .help = "Fail a command with ETIMEDOUT (ending its connection) when it "
            "has no reply after this many milliseconds: the library's "
            "request-timeout; also bounds the connect and handshake (0 = "
            "the profile's timeout or request-timeout, else no limit; "
            "fio's own 'timeout' is its runtime, hence the name)",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "force_multi_conn", .lname = "NBD force multi-conn",
    .type = FIO_OPT_BOOL,
    .off1 = offsetof (struct engine_options, force_multi_conn),
    .def = "0",
    .help = "Allow conns > 1 although the server does not advertise "
            "multi-conn (data may look inconsistent across connections)",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "busy_poll", .lname = "NBD busy poll (us)",
    .type = FIO_OPT_INT,
    .off1 = offsetof (struct engine_options, busy_poll),
    .def = "0", .maxval = 1000000,
    .help = "Before sleeping for replies, keep checking the sockets for up "
            "to this many microseconds (0 = sleep at once): lower latency "
            "at low queue depth for a busy CPU",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  SETTING_OPTION (SET_STRUCTURED, "structured", "NBD structured replies",
                  "Negotiate structured replies (default 1; 0 = simple "
                  "replies only)"),
  SETTING_OPTION (SET_STRICT, "strict", "NBD local request checks",
                  "Check requests locally against what the server "
                  "advertised: 1/all (default), 0/none, or a list of "
                  "commands,flags,bounds,align,payload; server replies are "
                  "always validated"),
  SETTING_OPTION (SET_SPLIT, "split", "NBD split large requests",
                  "Send a request above the server's maximum size as "
                  "several NBD requests (default 1; 0 = refuse such a "
                  "job)"),
  SETTING_OPTION (SET_RECONNECT_DELAY, "reconnect_delay",
                  "NBD reconnect delay (s)",
                  "Re-establish a lost connection and resend its requests "
                  "for up to this many seconds (fractional allowed; default "
                  "0 = off: the requests fail)"),
  SETTING_OPTION (SET_TLS, "tls", "NBD TLS mode",
                  "off, allow (TLS when the server offers it) or require "
                  "(never plaintext); an nbds:// URI means require"),
  SETTING_OPTION (SET_TLS_CERTIFICATES, "tls_certificates",
                  "NBD TLS x509 directory",
                  "Directory with ca-cert.pem and optionally "
                  "client-cert.pem + client-key.pem (default: the system "
                  "trust store, no client certificate)"),
  SETTING_OPTION (SET_TLS_PSK_FILE, "tls_psk_file", "NBD TLS PSK file",
                  "Pre-shared keys file in psktool's format (selects PSK)"),
  SETTING_OPTION (SET_TLS_USERNAME, "tls_username", "NBD TLS PSK user",
                  "PSK user name (default: the URI's user@, else the login "
                  "name)"),
  SETTING_OPTION (SET_TLS_HOSTNAME, "tls_hostname", "NBD TLS host name",
                  "Name the server certificate must carry (default: the "
                  "URI's host; localhost for unix sockets)"),
  SETTING_OPTION (SET_TLS_VERIFY_PEER, "tls_verify_peer",
                  "NBD TLS verify server",
                  "Verify the server certificate (default 1)"),
  { .name = NULL },
};

/* One connection of a job. */
struct conn {
  struct nbdaio_handle *h;
  unsigned inflight;            /* io_us issued on it and not completed */
  unsigned nunsent;             /* of those, queued in the library and not
                                 * submitted yet... */
  struct io_u **unsent;         /* ...them, stamped when they leave */
  unsigned fresh;               /* submitted since getevents last began... */
  unsigned fresh_gen;           /* ...counted while e->gen had this value */
  bool dirty;                   /* on e->dirty (has unsent commands) */
  bool dead;                    /* its death was reported */
};

/* Per-job state.
 *
 * Sending: engine_queue hands each io_u to the library on one connection
 * (e->target, see pick_conn), which only queues it: with auto-submit off
 * it leaves only on nbdaio_aio_submit, never with a read.  engine_commit
 * submits a connection's queue (one sendmsg) at once when fio has nothing else
 * outstanding (QD1, the first commit: latency) or when the queue holds
 * hold_max commands; otherwise it holds the queue back: fio must call
 * getevents for the other outstanding io_us before it can need the new
 * ones, and getevents sends every held queue before anything can wait for
 * a reply.  getevents answers from completions it read earlier without
 * sending (fio's default takes one completion per call); so the commits
 * of several fio reap/refill cycles leave in one system call.
 *
 * Receiving: getevents reads only when its completions cannot satisfy
 * fio; it reads the connections directly (a recv usually finds replies),
 * starting at a rotating one and stopping once fio's minimum is there, and
 * polls only when those reads found too little. */
struct engine {
  struct conn conns[MAX_CONNS];
  unsigned nconns;
  unsigned target;              /* where engine_queue puts commands */
  unsigned share;               /* ceil(iodepth / nconns) */
  unsigned read_next;           /* the connection getevents reads first */
  unsigned gen;                 /* getevents calls so far */
  unsigned inflight;            /* sum of conns[].inflight */
  unsigned unsent;              /* sum of conns[].nunsent */
  unsigned hold_max;            /* commit sends a queue this long at once */
  /* direct reads that found no completion minus those that did, kept in
   * [0, MISS_MAX]: at MISS_POLL_FIRST getevents polls before reading (with
   * replies spread over several sockets a guess is often empty), except on
   * every 16th call, which reads first again to re-measure */
  unsigned miss_score;
  unsigned probe;
  unsigned dirty[MAX_CONNS];    /* connections with unsent commands */
  unsigned ndirty;
  struct pollfd pfd[MAX_CONNS];
  unsigned pfd_conn[MAX_CONNS];

  enum trim_op trim_op;
  uint32_t write_flags;

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
  struct conn *conn;            /* where it was issued */
};

static int
parse_trim_op (const char *s, enum trim_op *out)
{
  for (size_t i = 0; i < sizeof trim_op_names / sizeof trim_op_names[0]; i++)
    if (strcmp (s ? s : "trim", trim_op_names[i]) == 0) {
      *out = (enum trim_op) i;
      return 0;
    }
  log_err ("%s: trim_op=%s is not one of trim, zero, zero_nohole, fast_zero, "
           "cache\n", ENGINE, s);
  return -1;
}

/* Hand the job's library settings to h (see enum setting). */
static int
apply_settings (const struct engine_options *o, struct nbdaio_handle *h)
{
  const size_t first = offsetof (struct engine_options, setting[0]);

  for (const struct fio_option *opt = options; opt->name; opt++) {
    size_t i = (opt->off1 - first) / sizeof o->setting[0];
    char name[64];

    if (opt->off1 < first || i >= NR_SETTINGS || !o->setting[i])
      continue;
    snprintf (name, sizeof name, "%s", opt->name);
    for (char *c = name; *c; c++)
      if (*c == '_')
        *c = '-';
    if (nbdaio_set_option (h, name, o->setting[i]) == -1)
      return -1;
  }
  return 0;
}

/* What the job connects to, for messages. */
static void
describe_target (const struct engine_options *o, char *buf, size_t len)
{
  if (o->uri)
    snprintf (buf, len, "%s", o->uri);
  else
    snprintf (buf, len, "profile %s", o->profile);
}

/* Load the job's profile, if it names one, and take from it what the job
 * leaves unset: conns, force_multi_conn (its timeout and request-timeout
 * are library settings, applied with the others).  Returns 0 with *out
 * (NULL without a profile), or -1 after saying why. */
static int
job_profile (const struct thread_data *td, struct engine_options *o,
              struct nbdaio_profile **out)
{
  struct nbdaio_profile *p;
  uint64_t v;

  *out = NULL;
  if (!o->profile) {
    if (o->config) {
      log_err ("%s: config=%s is set but nbd_profile is not\n", ENGINE,
               o->config);
      return -1;
    }
    if (!o->conns)
      o->conns = 1;
    return 0;
  }
  if (!(p = nbdaio_profile_load (o->config, o->profile))) {
    log_err ("%s: job %s: %s\n", ENGINE, td->o.name, nbdaio_get_error ());
    return -1;
  }
  if (!o->conns)
    o->conns = nbdaio_profile_get_number (p, "conns", &v) == 1 ? v : 1;
  if (!o->force_multi_conn &&
      nbdaio_profile_get_number (p, "force-multi-conn", &v) == 1)
    o->force_multi_conn = v;
  *out = p;
  return 0;
}

/* Create a handle and connect it: the profile's settings first, then the
 * job's own (cmd_timeout is the request timeout and, unless the profile
 * sets connect-timeout, the connect timeout), then the job's uri or else
 * the profile's server. */
static struct nbdaio_handle *
connect_one (struct thread_data *td, const struct engine_options *o,
             const struct nbdaio_profile *p, unsigned max_in_flight)
{
  struct nbdaio_handle *h = nbdaio_create ();
  char target[512];

  if (!h) {
    log_err ("%s: %s\n", ENGINE, nbdaio_get_error ());
    return NULL;
  }
  if ((p && nbdaio_profile_apply (p, h) == -1) ||
      apply_settings (o, h) == -1 ||
      nbdaio_set_max_in_flight (h, max_in_flight) == -1 ||
      nbdaio_set_auto_submit (h, 0) == -1 ||     /* submit_conn sends */
      (o->cmd_timeout &&
       nbdaio_set_request_timeout (h, o->cmd_timeout) == -1) ||
      (o->cmd_timeout && !(p && nbdaio_profile_get (p, "connect-timeout")) &&
       nbdaio_set_connect_timeout (h, o->cmd_timeout) == -1) ||
      (o->uri ? nbdaio_connect_uri (h, o->uri)
              : nbdaio_profile_connect (p, h)) == -1) {
    describe_target (o, target, sizeof target);
    log_err ("%s: job %s: cannot connect to %s: %s\n", ENGINE, td->o.name,
             target, nbdaio_get_error ());
    nbdaio_close (h);
    return NULL;
  }
  return h;
}

/* The fio option that makes the job flush, with its value in *n, or
 * NULL (fio syncs only jobs that write, or with override_sync). */
static const char *
flush_option (struct thread_data *td, unsigned *n)
{
  const struct thread_options *t = &td->o;
  const struct { const char *name; unsigned v; } opts[] = {
    { "fsync", t->fsync_blocks }, { "fdatasync", t->fdatasync_blocks },
    { "sync_file_range", td->sync_file_range_nr },
    { "end_fsync", t->end_fsync }, { "fsync_on_close", t->fsync_on_close },
  };

  if (!td_write (td) && !t->override_sync)
    return NULL;
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    if (opts[i].v) {
      *n = opts[i].v;
      return opts[i].name;
    }
  return NULL;
}

/* Refuse, with a message naming the option, jobs needing what this server
 * lacks. */
static int
check_job (struct thread_data *td, const struct engine_options *o,
           struct nbdaio_handle *h, enum trim_op trim_op)
{
  int64_t max_payload = nbdaio_get_max_payload (h);
  bool writes = td_write (td);
  bool trims = td_trim (td);
  const char *flush;
  unsigned flush_n;

  if ((writes || (trims && trim_op != TRIM_OP_CACHE)) &&
      nbdaio_is_read_only (h) == 1) {
    char target[512];
    describe_target (o, target, sizeof target);
    log_err ("%s: job %s writes, but export %s is read-only\n", ENGINE,
             td->o.name, target);
    return -1;
  }
  if (o->fua && nbdaio_can_fua (h) != 1) {
    log_err ("%s: fua=1, but the server does not support FUA\n", ENGINE);
    return -1;
  }
  if (trims) {
    static const struct { int (*can) (struct nbdaio_handle *); const char *what; }
    need[] = {
      [TRIM_OP_TRIM] = { nbdaio_can_trim, "trim" },
      [TRIM_OP_ZERO] = { nbdaio_can_zero, "write zeroes" },
      [TRIM_OP_ZERO_NOHOLE] = { nbdaio_can_zero, "write zeroes" },
      [TRIM_OP_FAST_ZERO] = { nbdaio_can_fast_zero, "fast zero" },
      [TRIM_OP_CACHE] = { nbdaio_can_cache, "cache" },
    };
    if (need[trim_op].can (h) != 1) {
      log_err ("%s: trim_op=%s, but the server does not support %s\n",
               ENGINE, trim_op_names[trim_op], need[trim_op].what);
      return -1;
    }
  }
  if (o->conns > 1 && nbdaio_can_multi_conn (h) != 1 && !o->force_multi_conn) {
    log_err ("%s: conns=%u, but the server does not advertise multi-conn "
             "(connections may see inconsistent data); set "
             "force_multi_conn=1 to use several connections anyway\n",
             ENGINE, o->conns);
    return -1;
  }
  if ((flush = flush_option (td, &flush_n)) && nbdaio_can_flush (h) != 1) {
    log_err ("%s: %s=%u, but the server does not support flush (no "
             "NBD_FLAG_SEND_FLUSH)\n", ENGINE, flush, flush_n);
    return -1;
  }
  /* larger requests are split by the library, unless split=0 */
  for (int d = DDIR_READ; d <= DDIR_WRITE && nbdaio_get_split (h) == 0; d++) {
    if (td->o.max_bs[d] > (unsigned long long) max_payload &&
        (d == DDIR_READ ? td_read (td) : writes)) {
      log_err ("%s: bs=%llu exceeds the server's maximum request size of "
               "%lld bytes, and split=0 (split=1 sends it as several "
               "requests)\n", ENGINE, td->o.max_bs[d],
               (long long) max_payload);
      return -1;
    }
  }
  return 0;
}

/* Whether the job makes requests in direction d (verify reads use the
 * write sizes; bs_is_seq_rand picks the read or write sizes by pattern). */
static bool
ddir_used (struct thread_data *td, int d)
{
  if (td->o.bs_is_seq_rand && d != DDIR_TRIM)
    return true;
  return d == DDIR_READ ? td_read (td) :
         d == DDIR_WRITE ? td_write (td) : td_trim (td);
}

/* Where the job starts, for messages: "offset=1048576", "offset=50%",
 * with " + offset_increment=N x job K" for a numjobs subjob, and the
 * byte fio computed when the options alone do not say it. */
static void
describe_start (struct thread_data *td, uint64_t start, char *buf, size_t len)
{
  const struct thread_options *t = &td->o;
  size_t n;

  if (t->start_offset_percent)
    n = snprintf (buf, len, "offset=%u%%", t->start_offset_percent);
  else
    n = snprintf (buf, len, "offset=%llu", t->start_offset);
  if (n < len && t->offset_increment_percent)
    n += snprintf (buf + n, len - n, " + offset_increment=%u%% x job %u",
                   t->offset_increment_percent, td->subjob_number);
  else if (n < len && t->offset_increment)
    n += snprintf (buf + n, len - n, " + offset_increment=%llu x job %u",
                   t->offset_increment, td->subjob_number);
  if (n < len && start != t->start_offset)
    snprintf (buf + n, len - n, " (byte %llu)", (unsigned long long) start);
}

/* A value request offsets or lengths are built from, for check_alignment:
 * its option (with '=' or ':') and the value. */
struct job_value {
  const char *option;
  unsigned long long v;
};

/* With a minimum block size the library enforces, refuse jobs whose
 * requests could break it: fio builds every offset from the start offset,
 * blockalign (random), the lengths (sequential), rw=...:N and the strided
 * zones, and every length from bs / bsrange / bssplit (rounded down to a
 * multiple of the smallest unless bs_unaligned; a bsrange length is then
 * capped at the largest). */
static int
check_alignment (struct thread_data *td, struct nbdaio_handle *h,
                 uint64_t start)
{
  const struct thread_options *t = &td->o;
  long long mb = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  struct job_value val[12];
  unsigned n = 0;
  char where[160];

  if (mb <= 1 || !(nbdaio_get_strict (h) & NBDAIO_STRICT_ALIGN))
    return 0;
  if (t->bs_unaligned) {
    log_err ("%s: bs_unaligned=1 makes requests of any length, but the "
             "server's minimum block size is %lld bytes\n", ENGINE, mb);
    return -1;
  }
  for (int d = DDIR_READ; d <= DDIR_TRIM; d++) {
    const char *bs = t->bssplit_nr[d] ? "bssplit=" :
                     t->min_bs[d] == t->max_bs[d] ? "bs=" : "bsrange=";
    if (!ddir_used (td, d))
      continue;
    val[n++] = (struct job_value) { bs, t->min_bs[d] };
    if (!t->bssplit_nr[d])      /* bssplit's sizes are never capped */
      val[n++] = (struct job_value) { bs, t->max_bs[d] };
    val[n++] = (struct job_value) { "blockalign=", t->ba[d] };
  }
  val[n++] = (struct job_value) { "rw=...:", (unsigned long long)
                                  llabs (t->ddir_seq_add) };
  if (t->zone_mode == ZONE_MODE_STRIDED) {
    val[n++] = (struct job_value) { "zonerange=", t->zone_range };
    val[n++] = (struct job_value) { "zoneskip=", t->zone_skip };
  }
  for (unsigned i = 0; i < n; i++)
    if (val[i].v % mb) {
      log_err ("%s: %s%llu is not a multiple of the server's minimum block "
               "size (%lld bytes)\n", ENGINE, val[i].option, val[i].v, mb);
      return -1;
    }
  if (start % mb) {
    describe_start (td, start, where, sizeof where);
    log_err ("%s: %s is not a multiple of the server's minimum block size "
             "(%lld bytes)\n", ENGINE, where, mb);
    return -1;
  }
  return 0;
}

/* Refuse jobs whose range (as fio will compute it from offset,
 * offset_increment, size, filesize) reaches past the end of the export or
 * that want several files; fill_device means the rest of the export.
 * fio itself never issues a request past real_file_size, so past the end
 * it would silently do less than asked. */
static int
check_range (struct thread_data *td, uint64_t size, uint64_t start)
{
  struct thread_options *t = &td->o;
  char where[160];

  describe_start (td, start, where, sizeof where);
  if (td->files_index > 1) {
    log_err ("%s: nrfiles=%u (or several filename= names): an NBD export is "
             "one file; split it with numjobs and offset_increment\n",
             ENGINE, td->files_index);
    return -1;
  }
  if (start >= size) {
    log_err ("%s: %s is at or beyond the end of the export (%llu bytes)\n",
             ENGINE, where, (unsigned long long) size);
    return -1;
  }
  if (t->fill_device && t->size == -1ULL)
    t->size = size - start;     /* as for a block device: to its end */
  if (t->size > size - start) {
    log_err ("%s: %s + size=%llu is beyond the end of the export (%llu "
             "bytes)\n", ENGINE, where, t->size, (unsigned long long) size);
    return -1;
  }
  if (t->file_size_low > size) {
    log_err ("%s: filesize=%llu is beyond the end of the export (%llu "
             "bytes)\n", ENGINE, t->file_size_low, (unsigned long long) size);
    return -1;
  }
  return 0;
}

/* Parent, before fork: connect once, check the job, size the file. */
static int
engine_setup (struct thread_data *td)
{
  struct engine_options *o = td->eo;
  struct nbdaio_profile *p;
  struct nbdaio_handle *h;
  enum trim_op trim_op;
  int r;

  if (parse_trim_op (o->trim_op, &trim_op) == -1 ||
      job_profile (td, o, &p) == -1)
    return 1;
  if (!o->uri && !p) {
    log_err ("%s: the uri option (for example "
             "uri=nbd+unix:///?socket=/tmp/nbd.sock) or nbd_profile is "
             "required\n", ENGINE);
    return 1;
  }
  if (!td->files_index) {
    add_file (td, "nbd", 0, 0);
    td->o.nr_files = td->o.nr_files ? : 1;
    td->o.open_files++;
  }
  h = connect_one (td, o, p, 1);
  r = h ? check_job (td, o, h, trim_op) : -1;
  if (r == 0) {
    /* fio computes the start (percentages, offset_increment) from it */
    struct fio_file *f = td->files[0];
    uint64_t start;
    f->real_file_size = nbdaio_get_size (h);
    start = get_start_offset (td, f);
    r = check_range (td, f->real_file_size, start) == -1 ||
        check_alignment (td, h, start) == -1 ? -1 : 0;
  }
  nbdaio_close (h);
  nbdaio_profile_free (p);
  return r == 0 ? 0 : 1;
}

/* One line per job when a connection was re-established. */
static void
report_reconnects (struct thread_data *td, struct engine *e)
{
  uint64_t n = 0, resent = 0, down = 0;
  struct nbdaio_stats st;

  for (unsigned i = 0; i < e->nconns; i++) {
    if (nbdaio_get_stats (e->conns[i].h, &st, sizeof st) == -1)
      continue;
    n += st.reconnects;
    resent += st.commands_resent;
    down += st.downtime_ms;
  }
  if (n)
    log_info ("%s: %s: %llu reconnect%s, %llu commands resent, %llu ms "
              "down\n", ENGINE, td->o.name, (unsigned long long) n,
              n == 1 ? "" : "s", (unsigned long long) resent,
              (unsigned long long) down);
}

static void
engine_cleanup (struct thread_data *td)
{
  struct engine *e = td->io_ops_data;

  if (!e)
    return;
  report_reconnects (td, e);
  /* Nothing waits here: fio reaped (or gave up on) every io_u already.
   * Commands still queued unsent fail with ENOTCONN as the handle closes. */
  for (unsigned i = 0; i < e->nconns; i++)
    nbdaio_close (e->conns[i].h);
  for (unsigned i = 0; i < MAX_CONNS; i++)
    free (e->conns[i].unsent);
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
  struct nbdaio_profile *p;

  if (!e) {
    log_err ("%s: out of memory\n", ENGINE);
    return 1;
  }
  td->io_ops_data = e;
  while (size < depth)
    size <<= 1;
  e->ring = calloc (size, sizeof *e->ring);
  if (!e->ring) {
    log_err ("%s: out of memory\n", ENGINE);
    return 1;
  }
  e->ring_mask = size - 1;
  if (parse_trim_op (o->trim_op, &e->trim_op) == -1)
    return 1;
  e->write_flags = o->fua ? NBDAIO_CMD_FLAG_FUA : 0;
  if (job_profile (td, o, &p) == -1)
    return 1;
  for (unsigned i = 0; i < o->conns; i++) {
    struct conn *c = &e->conns[i];
    /* every io_u may sit on one connection */
    if (!(c->unsent = calloc (depth, sizeof *c->unsent))) {
      log_err ("%s: out of memory\n", ENGINE);
      break;
    }
    if (!(c->h = connect_one (td, o, p, depth)))
      break;
    e->nconns++;
  }
  nbdaio_profile_free (p);
  e->share = (depth + e->nconns - 1) / (e->nconns ? e->nconns : 1);
  /* half the queue depth: the other half keeps the server busy while a
   * batch is collected */
  e->hold_max = depth / 2 ? depth / 2 : 1;
  return e->nconns == o->conns ? 0 : 1;
}

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An io_u finished (err: 0 or its errno): getevents hands it to fio. */
static void
io_done (struct engine *e, struct io_slot *slot, int err)
{
  slot->io_u->error = err;
  slot->conn->inflight--;
  e->inflight--;
  e->ring[e->ring_tail++ & e->ring_mask] = slot->io_u;
}

static int
on_complete (void *user_data, int *error)
{
  struct io_slot *slot = user_data;

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
    switch (e->trim_op) {
    case TRIM_OP_TRIM:
      return nbdaio_aio_trim (h, io_u->xfer_buflen, io_u->offset, cb,
                              e->write_flags);
    case TRIM_OP_ZERO:
      return nbdaio_aio_zero (h, io_u->xfer_buflen, io_u->offset, cb,
                              e->write_flags);
    case TRIM_OP_ZERO_NOHOLE:
      return nbdaio_aio_zero (h, io_u->xfer_buflen, io_u->offset, cb,
                              e->write_flags | NBDAIO_CMD_FLAG_NO_HOLE);
    case TRIM_OP_FAST_ZERO:
      return nbdaio_aio_zero (h, io_u->xfer_buflen, io_u->offset, cb,
                              e->write_flags | NBDAIO_CMD_FLAG_FAST_ZERO);
    case TRIM_OP_CACHE:
      return nbdaio_aio_cache (h, io_u->xfer_buflen, io_u->offset, cb, 0);
    }
    break;
  case DDIR_SYNC:
  case DDIR_DATASYNC:
  case DDIR_SYNC_FILE_RANGE:
    return nbdaio_aio_flush (h, cb, 0);
  default:
    break;
  }
  errno = EINVAL;
  return -1;
}

/* The connection for the next command: the current target until it holds
 * its share of the queue depth, then the least loaded live one.  So each
 * reap/refill cycle's commands mostly go to one connection (one sendmsg;
 * the server reads them in one go), the load stays even, and the scan over
 * the connections happens about once per cycle, not per command. */
static struct conn *
pick_conn (struct engine *e)
{
  struct conn *c = &e->conns[e->target];

  if (e->nconns > 1 && (c->inflight >= e->share || c->dead)) {
    unsigned best = e->target;
    for (unsigned i = 0; i < e->nconns; i++) {
      const struct conn *x = &e->conns[i];
      if (!x->dead && (e->conns[best].dead ||
                       x->inflight < e->conns[best].inflight))
        best = i;
    }
    e->target = best;
    c = &e->conns[best];
  }
  return c;
}

/* Say once per connection why it died (a request timeout is cmd_timeout's
 * or the profile's). */
static void
report_dead (struct conn *c, unsigned idx)
{
  const char *why = nbdaio_get_connection_error (c->h);
  struct nbdaio_stats st;

  if (!c->dead && why) {
    c->dead = true;
    nbdaio_get_stats (c->h, &st, sizeof st);
    log_err ("%s: connection %u: %s%s\n", ENGINE, idx, why,
             st.timeouts ? " [cmd_timeout]" : "");
  }
}

/* The library refused io_u (checks, dead connection): it completes with
 * the error; the first one on a live connection is said. */
static void
refused (struct thread_data *td, struct engine *e, struct conn *c,
         struct io_u *io_u)
{
  int err = nbdaio_get_errno () ? nbdaio_get_errno () : EIO;

  if (!td->error && !c->dead)
    log_err ("%s: %s\n", ENGINE, nbdaio_get_error () ?
             nbdaio_get_error () : strerror (err));
  report_dead (c, (unsigned) (c - e->conns));
  io_done (e, io_u->engine_data, err);
  io_u_mark_submit (td, 1);
}

static enum fio_q_status
engine_queue (struct thread_data *td, struct io_u *io_u)
{
  struct engine *e = td->io_ops_data;
  struct conn *c = pick_conn (e);
  struct io_slot *slot = io_u->engine_data;

  fio_ro_check (td, io_u);
  /* with io_submit_mode=offload a worker thread (its own td, engine and
   * connections) queues io_us whose slots the parent job made */
  slot->e = e;
  slot->conn = c;
  c->inflight++;
  e->inflight++;
  if (issue (e, c->h, io_u) == -1) {
    refused (td, e, c, io_u);
    return FIO_Q_QUEUED;
  }
  e->unsent++;
  c->unsent[c->nunsent++] = io_u;
  if (!c->dirty) {
    c->dirty = true;
    e->dirty[e->ndirty++] = (unsigned) (c - e->conns);
  }
  return FIO_Q_QUEUED;
}

/* Submit what the library queued on c (one sendmsg, unless the socket
 * buffer fills: the library sends the rest when the socket takes it);
 * account for it as issued now: fio's issue time and submission latency,
 * its submit histogram (the library starts the request-timeout clock as
 * the requests leave).  The caller takes c off e->dirty. */
static void
submit_conn (struct thread_data *td, struct engine *e, struct conn *c)
{
  unsigned n = c->nunsent;

  c->dirty = false;
  c->nunsent = 0;
  e->unsent -= n;
  if (nbdaio_aio_submit (c->h) == -1)
    report_dead (c, (unsigned) (c - e->conns)); /* its commands failed */
  if (fio_fill_issue_time (td)) {
    struct timespec now;
    fio_gettime (&now, NULL);
    for (unsigned i = 0; i < n; i++) {
      memcpy (&c->unsent[i]->issue_time, &now, sizeof now);
      io_u_queued (td, c->unsent[i]);
    }
  }
  io_u_mark_submit (td, n);
  if (c->fresh_gen != e->gen) {
    c->fresh_gen = e->gen;
    c->fresh = 0;
  }
  c->fresh += n;
}

/* Commands on c submitted since the last getevents call ended (by commit,
 * right before this call, or by this call itself): their replies are very
 * unlikely to be back yet. */
static unsigned
fresh (const struct engine *e, const struct conn *c)
{
  return c->fresh_gen == e->gen ? c->fresh : 0;
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
  unsigned keep = 0, others_base = e->inflight + unreported (e);

  for (unsigned i = 0; i < e->ndirty; i++) {
    struct conn *c = &e->conns[e->dirty[i]];
    /* io_us fio gets back from getevents before it can need these */
    unsigned others = others_base - c->nunsent;
    if (others && c->nunsent < e->hold_max)
      e->dirty[keep++] = e->dirty[i];   /* held for getevents, see above */
    else
      submit_conn (td, e, c);
  }
  e->ndirty = keep;
  return 0;
}

/* Completions for this getevents call (the last call's are consumed). */
static unsigned
avail (const struct engine *e)
{
  return e->ring_tail - e->ring_head;
}

/* Before getevents reads or waits: send the held queues, unless the
 * commands already sent can satisfy fio's minimum on their own and keep
 * the server busy (at least hold_max of them); then the held ones wait
 * for a fuller batch.  Waiting never depends on an unsent command. */
static void
submit_held (struct thread_data *td, struct engine *e, unsigned min)
{
  unsigned sent = e->inflight - e->unsent;
  unsigned need = min > avail (e) ? min - avail (e) : 1;

  if (!e->ndirty || (sent >= need && sent >= e->hold_max))
    return;
  for (unsigned i = 0; i < e->ndirty; i++)
    submit_conn (td, e, &e->conns[e->dirty[i]]);
  e->ndirty = 0;
}

/* Read what has arrived on c, without waiting (one recv when the socket
 * holds less than the reply buffer). */
static void
read_conn (struct engine *e, struct conn *c)
{
  if (nbdaio_aio_notify_read (c->h) == -1)
    report_dead (c, (unsigned) (c - e->conns));
}

/* Read the connections where a reply may be waiting, starting at a
 * rotating one; with min > 0 stop once min completions are there (the
 * others keep collecting replies for a later, fuller read).  With
 * all = false a connection whose every command is fresh is skipped. */
static void
reap (struct engine *e, unsigned min, bool all)
{
  for (unsigned i = 0; i < e->nconns; i++) {
    struct conn *c = &e->conns[e->read_next];
    if (++e->read_next == e->nconns)
      e->read_next = 0;
    /* sent commands (held ones are not on the socket) older than fresh */
    if (c->inflight - c->nunsent > (all ? 0 : fresh (e, c))) {
      unsigned before = e->ring_tail;
      read_conn (e, c);
      if (e->ring_tail != before)
        e->miss_score -= e->miss_score > 0;
      else
        e->miss_score += e->miss_score < MISS_MAX;
    }
    if (min && avail (e) >= min)
      break;
  }
}

/* Sleep up to ms (-1: no limit), never past a connection's request
 * deadline (nbdaio_aio_get_timeout), until a connection can go on; then
 * read (or finish sending on) the ones that can, and have the library end
 * those whose deadline has passed (their io_us complete with ETIMEDOUT);
 * returns poll's result. */
static int
wait_conns (struct engine *e, int ms)
{
  unsigned n = 0;
  int r;

  for (unsigned c = 0; c < e->nconns; c++) {
    unsigned dir = e->conns[c].inflight ?
                   nbdaio_aio_get_direction (e->conns[c].h) : 0;
    int left = dir ? nbdaio_aio_get_timeout (e->conns[c].h) : -1;
    if (!dir)
      continue;
    if (left >= 0 && (ms < 0 || left < ms))
      ms = left;
    e->pfd[n].fd = nbdaio_get_fd (e->conns[c].h);
    e->pfd[n].events = ((dir & NBDAIO_DIRECTION_READ) ? POLLIN : 0) |
                       ((dir & NBDAIO_DIRECTION_WRITE) ? POLLOUT : 0);
    e->pfd[n].revents = 0;
    e->pfd_conn[n++] = c;
  }
  if (!n)
    return 0;
  r = poll (e->pfd, n, ms);
  for (int i = 0; r >= 0 && i < (int) n; i++) {
    struct conn *c = &e->conns[e->pfd_conn[i]];
    short rev = e->pfd[i].revents;
    if (rev & (POLLIN | POLLHUP | POLLERR))
      read_conn (e, c);         /* also finishes a partial send */
    else if ((rev & POLLOUT) && nbdaio_aio_notify_write (c->h) == -1)
      report_dead (c, e->pfd_conn[i]);
    else if (!rev && nbdaio_aio_get_timeout (c->h) == 0)
      read_conn (e, c);         /* checks the deadline: ETIMEDOUT */
  }
  return r;
}

/* busy_poll: check for replies without sleeping until min completions
 * are there or usec microseconds have passed. */
static void
busy_poll (struct engine *e, unsigned min, unsigned usec)
{
  struct timespec t0, t;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  while (avail (e) < min && e->inflight > 0) {
    reap (e, min, true);
    clock_gettime (CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 >=
        (long) usec)
      break;
  }
}

static int
engine_getevents (struct thread_data *td, unsigned int min, unsigned int max,
                  const struct timespec *t)
{
  struct engine *e = td->io_ops_data;
  struct engine_options *o = td->eo;
  int64_t deadline = -1;
  unsigned n;

  e->ring_head += e->reported;  /* fio consumed the last batch */
  e->reported = 0;
  if (avail (e) >= (min ? min : 1))
    goto done;                  /* no system call needed; held queues wait */
  submit_held (td, e, min);
  if (t)
    deadline = now_ms () + t->tv_sec * 1000 + t->tv_nsec / 1000000;

  /* Read first, poll only if that found too little.  A connection whose
   * commands are all fresh (see fresh()) is not read but waited for. */
  if (e->miss_score < MISS_POLL_FIRST || !(++e->probe & 15))
    reap (e, min, false);
  else if (!min)
    wait_conns (e, 0);
  if (o->busy_poll)
    busy_poll (e, min, o->busy_poll);
  while (avail (e) < min && e->inflight > 0) {
    int64_t now, ms = -1;
    submit_held (td, e, min);
    if (deadline >= 0) {
      now = now_ms ();
      if (now >= deadline)
        break;
      ms = deadline - now;
    }
    if (wait_conns (e, (int) ms) < 0 && errno != EINTR) {
      int err = errno;
      log_err ("%s: poll: %s\n", ENGINE, strerror (err));
      td_verror (td, err, "poll");      /* else the job's error reads -1 */
      return -1;
    }
  }
done:
  e->gen++;                     /* what was sent so far is no longer fresh */
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

static int
engine_invalidate (struct thread_data *td, struct fio_file *f)
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
  .invalidate = engine_invalidate,
  .options = options,
  .option_struct_size = sizeof (struct engine_options),
};
