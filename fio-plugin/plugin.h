/* plugin.h - what the files of nbdaio.so share: the job's engine options
 * (options.c: fio's option table, the library settings among them, and the
 * connection of a job's group) and the job checks made at setup
 * (job-check.c).  Internal to the plugin. */
#ifndef NBDAIO_PLUGIN_H
#define NBDAIO_PLUGIN_H

#include "fio.h"

#include "nbdaio.h"

#define ENGINE "nbdaio"

enum trim_op { TRIM_OP_TRIM, TRIM_OP_ZERO, TRIM_OP_ZERO_NOHOLE,
               TRIM_OP_FAST_ZERO, TRIM_OP_CACHE };


/* Options that are library settings: passed as strings to
 * nbdaio_set_option under the fio option's name with '_' turned into '-'
 * (tls_psk_file -> tls-psk-file), so the library is the one judge of their
 * values.  Unset (NULL) ones keep the library's default or the profile's
 * value. */
enum setting {
  SET_CONNS, SET_FORCE_MULTI_CONN, SET_TLS, SET_TLS_CERTIFICATES,
  SET_TLS_PSK_FILE, SET_TLS_USERNAME, SET_TLS_HOSTNAME, SET_TLS_VERIFY_PEER,
  SET_STRUCTURED, SET_STRICT, SET_SPLIT, SET_RECONNECT_DELAY,
  SET_REPLY_VIOLATIONS, NR_SETTINGS
};

/* Engine options; the first member is fio's pad (it stores td there). */
struct engine_options {
  void *pad;
  char *uri;
  char *profile;
  char *config;
  unsigned int fua;
  char *trim_op;
  char *cmd_timeout_str;        /* the options as given; job_connect */
  char *busy_poll_str;          /* reads them into the numbers below */
  unsigned int cmd_timeout;
  unsigned int busy_poll;
  char *setting[NR_SETTINGS];
};

extern struct fio_option job_options[];
extern const char *const trim_op_names[];

/* options.c */
/* s (NULL: the default, trim) as a trim_op.  Returns 0, or -1 after
 * saying why. */
int job_parse_trim_op (const char *s, enum trim_op *out);
/* What the job connects to, for messages. */
void job_describe_target (const struct engine_options *o, char *buf,
                          size_t len);
/* Connect the job's connection group with max_in_flight per connection:
 * the profile's settings first, then the job's own (cmd_timeout is the
 * request timeout and, unless the profile sets connect-timeout, the
 * connect timeout), then the job's uri or else the profile's server;
 * first it reads cmd_timeout and busy_poll into o's numbers (a value that
 * is not a whole number in range fails the job, naming the option).
 * Returns the group, or NULL after saying why. */
struct nbdaio_group *job_connect (struct thread_data *td,
                                  struct engine_options *o,
                                  unsigned max_in_flight);

/* job-check.c */
/* Refuse, with a message naming the option and the limit, a job this
 * server cannot run as written (h: its first connection): writes to a
 * read-only export, FUA, trim_op, flushes, sizes, alignment, the range
 * past the end of the export; sizes the job's file (fill_device: to the
 * end).  Returns 0 or -1. */
int job_check (struct thread_data *td, const struct engine_options *o,
               struct nbdaio_handle *h, enum trim_op trim_op);

#endif
