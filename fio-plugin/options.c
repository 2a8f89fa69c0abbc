/* options.c - the engine's fio options (the library settings among them
 * are handed over by name: one source of truth per setting) and the
 * connection of a job's group from them. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "plugin.h"
#include "optgroup.h"

#define BUSY_POLL_MAX 1000000   /* microseconds: one second */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_ (x)

/* The names of trim_op's values, written once: the table, the help text
 * and the refusal's message are made from this list. */
#define TRIM_OPS(X)                                                     \
  X (TRIM_OP_TRIM, "trim") X (TRIM_OP_ZERO, "zero")                     \
  X (TRIM_OP_ZERO_NOHOLE, "zero_nohole")                                \
  X (TRIM_OP_FAST_ZERO, "fast_zero") X (TRIM_OP_CACHE, "cache")
#define TRIM_OP_ENTRY(op, name) [op] = name,
#define TRIM_OP_WORD(op, name) " " name
#define TRIM_OP_CHOICES "one of" TRIM_OPS (TRIM_OP_WORD)

const char *const trim_op_names[] = { TRIM_OPS (TRIM_OP_ENTRY) };

#define SETTING_OPTION(idx, oname, long_name, text)                     \
  {                                                                     \
    .name = oname, .lname = long_name,                                  \
    .type = FIO_OPT_STR_STORE,                                          \
    .off1 = offsetof (struct engine_options, setting[idx]),             \
    .help = text,                                                       \
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,               \
  }

struct fio_option job_options[] = {
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
    .help = "The profiles file for nbd_profile (default: the one "
            "nbdaio_profile_load(3) finds, first $NBDAIO_CONFIG)",
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
    .help = "What fio's trim direction sends, " TRIM_OP_CHOICES,
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "cmd_timeout", .lname = "NBD command timeout (ms)",
    /* a string, read by job_parse_numbers: fio's numeric types take
     * "-1" for a range with an empty first value and keep the default,
     * and store a value above 32 bits truncated */
    .type = FIO_OPT_STR_STORE,
    .off1 = offsetof (struct engine_options, cmd_timeout_str),
    .def = "0",
    .help = "Fail a command with ETIMEDOUT (ending its connection) when it "
            "has no reply after this many milliseconds: the library's "
            "request-timeout; also bounds the connect and handshake (0 = "
            "the profile's timeout or request-timeout, else no limit; "
            "fio's own 'timeout' is its runtime, hence the name)",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  {
    .name = "busy_poll", .lname = "NBD busy poll (us)",
    .type = FIO_OPT_STR_STORE,       /* see cmd_timeout */
    .off1 = offsetof (struct engine_options, busy_poll_str),
    .def = "0",
    .help = "Before sleeping for replies, keep checking the sockets for up "
            "to this many microseconds, 0 to " STRINGIFY (BUSY_POLL_MAX)
            " (0 = sleep at once): "
            "lower latency at low queue depth for a busy CPU",
    .category = FIO_OPT_C_ENGINE, .group = FIO_OPT_G_NBD,
  },
  SETTING_OPTION (SET_CONNS, "conns", "NBD connections",
                  "Connections per job, 1 to 64 (default: the profile's, "
                  "else 1); the library spreads requests across them "
                  "(needs the server's multi-conn, see force_multi_conn)"),
  SETTING_OPTION (SET_FORCE_MULTI_CONN, "force_multi_conn",
                  "NBD force multi-conn",
                  "Allow conns > 1 although the server does not advertise "
                  "multi-conn (data may look inconsistent across "
                  "connections)"),
  SETTING_OPTION (SET_STRUCTURED, "structured", "NBD structured replies",
                  "Negotiate structured replies (default 1; 0 = simple "
                  "replies only)"),
  SETTING_OPTION (SET_STRICT, "strict", "NBD local request checks",
                  "Check requests locally against what the server "
                  "advertised: 1/all (default), 0/none, or a list of "
                  "commands,flags,bounds,align,payload; server replies are "
                  "always validated"),
  SETTING_OPTION (SET_REPLY_VIOLATIONS, "reply_violations",
                  "NBD in-sync reply violations",
                  "command (default): a server reply that breaks the "
                  "protocol but leaves the stream in sync fails only its "
                  "request (EPROTO); close: it ends the connection, failing "
                  "every request in flight"),
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


int
job_parse_trim_op (const char *s, enum trim_op *out)
{
  for (size_t i = 0; i < sizeof trim_op_names / sizeof trim_op_names[0]; i++)
    if (strcmp (s ? s : "trim", trim_op_names[i]) == 0) {
      *out = (enum trim_op) i;
      return 0;
    }
  log_err ("%s: trim_op=%s is not " TRIM_OP_CHOICES "\n", ENGINE, s);
  return -1;
}


/* Read the decimal number s of option name into *out: 0 to max, digits
 * only (no sign, no suffix); -1 with a message naming the option. */
static int
parse_number (const char *name, const char *s, unsigned long long max,
              unsigned *out)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = s && *s >= '0' && *s <= '9' ? strtoull (s, &end, 10) : 0;
  if (!s || *s < '0' || *s > '9' || *end || errno || v > max) {
    log_err ("%s: %s=%s is not a whole number from 0 to %llu\n", ENGINE,
             name, s ? s : "", max);
    return -1;
  }
  *out = (unsigned) v;
  return 0;
}

/* Read the cmd_timeout and busy_poll strings into o's numbers.  Returns 0,
 * or -1 after naming the option and its range. */
static int
job_parse_numbers (struct engine_options *o)
{
  return parse_number ("cmd_timeout", o->cmd_timeout_str, UINT_MAX,
                       &o->cmd_timeout) == -1 ||
         parse_number ("busy_poll", o->busy_poll_str, BUSY_POLL_MAX,
                       &o->busy_poll) == -1 ? -1 : 0;
}

/* Hand the job's library settings to h (see enum setting). */
static int
apply_settings (const struct engine_options *o, struct nbdaio_handle *h)
{
  const size_t first = offsetof (struct engine_options, setting[0]);

  for (const struct fio_option *opt = job_options; opt->name; opt++) {
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

void
job_describe_target (const struct engine_options *o, char *buf, size_t len)
{
  if (o->uri)
    snprintf (buf, len, "%s", o->uri);
  else
    snprintf (buf, len, "profile %s", o->profile);
}

struct nbdaio_group *
job_connect (struct thread_data *td, struct engine_options *o,
               unsigned max_in_flight)
{
  struct nbdaio_profile *p = NULL;
  struct nbdaio_handle *h = NULL;
  struct nbdaio_group *g = NULL;
  char target[512];

  if (job_parse_numbers (o) == -1)
    ;                           /* said why */
  else if (!o->profile && o->config)
    log_err ("%s: config=%s is set but nbd_profile is not\n", ENGINE,
             o->config);
  else if (!o->uri && !o->profile)
    log_err ("%s: the uri option (for example "
             "uri=nbd+unix:///?socket=/tmp/nbd.sock) or nbd_profile is "
             "required\n", ENGINE);
  else if ((o->profile && !(p = nbdaio_profile_load (o->config, o->profile)))
           || !(h = nbdaio_create ()))
    log_err ("%s: job %s: %s\n", ENGINE, td->o.name, nbdaio_get_error ());
  else if ((p && nbdaio_profile_apply (p, h) == -1) ||
           apply_settings (o, h) == -1 ||
           nbdaio_set_max_in_flight (h, max_in_flight) == -1 ||
           nbdaio_set_auto_submit (h, 0) == -1 ||
           (o->cmd_timeout &&
            nbdaio_set_request_timeout (h, o->cmd_timeout) == -1) ||
           (o->cmd_timeout && !(p && nbdaio_profile_get (p, "connect-timeout"))
            && nbdaio_set_connect_timeout (h, o->cmd_timeout) == -1) ||
           (o->uri ? nbdaio_connect_uri (h, o->uri)
                   : nbdaio_profile_connect (p, h)) == -1 ||
           !(g = nbdaio_group_create (h))) {
    job_describe_target (o, target, sizeof target);
    log_err ("%s: job %s: cannot connect to %s: %s\n", ENGINE, td->o.name,
             target, nbdaio_get_error ());
    nbdaio_close (h);
  }
  nbdaio_profile_free (p);
  return g;
}

