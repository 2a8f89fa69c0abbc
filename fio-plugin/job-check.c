/* job-check.c - the refusals made at setup, before any request: a job
 * this server cannot run as written (what the export lacks, sizes,
 * alignment, the range) is refused naming the fio option and the limit,
 * since fio itself would silently do less than asked or the library would
 * fail every request. */
#include <stdlib.h>

#include "plugin.h"

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
    job_describe_target (o, target, sizeof target);
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


int
job_check (struct thread_data *td, const struct engine_options *o,
           struct nbdaio_handle *h, enum trim_op trim_op)
{
  /* fio computes the start (percentages, offset_increment) from it */
  struct fio_file *f = td->files[0];
  uint64_t start;

  if (check_job (td, o, h, trim_op) == -1)
    return -1;
  f->real_file_size = nbdaio_get_size (h);
  start = get_start_offset (td, f);
  return check_range (td, f->real_file_size, start) == -1 ||
         check_alignment (td, h, start) == -1 ? -1 : 0;
}
