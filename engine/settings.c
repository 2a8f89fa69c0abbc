/* settings.c - the settings made on a handle before it connects (the export
 * name and meta context also while it negotiates in opt mode): one setter
 * per setting, and nbdaio_set_option, the table that names each setting for
 * profiles, URI query parameters and the fio plugin. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "escape.h"
#include "internal.h"
#include "parse.h"

int
settings_replace_string (char **dst, const char *src, const char *what)
{
  char *s = NULL;

  if (src) {
    if (strlen (src) > NBD_MAX_STRING)
      return set_error (EINVAL, "%s is longer than %d bytes", what,
                        NBD_MAX_STRING);
    if (!(s = strdup (src)))
      return set_error (ENOMEM, "out of memory");
  }
  free (*dst);
  *dst = s;
  return 0;
}

int
nbdaio_set_export_name (struct nbdaio_handle *h, const char *name)
{
  if (handle_check_state (h, IN_NEW | IN_NEGOTIATING, __func__) == -1)
    return -1;
  if (!name)
    return set_error (EINVAL, "export name is NULL");
  if (settings_replace_string (&h->export_name, name, "export name") == -1)
    return -1;
  h->export_name_explicit = true;
  return 0;
}

int
nbdaio_set_request_structured_replies (struct nbdaio_handle *h, int request)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->ask_structured_replies = request != 0;
  return 0;
}

int
nbdaio_set_request_extended_headers (struct nbdaio_handle *h, int request)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->extended_off = request == 0;
  return 0;
}

int
nbdaio_set_meta_context (struct nbdaio_handle *h, const char *name)
{
  if (handle_check_state (h, IN_NEW | IN_NEGOTIATING, __func__) == -1)
    return -1;
  if (name && !*name)
    return set_error (EINVAL, "meta context name is empty");
  if (settings_replace_string (&h->meta_context_wanted, name,
                               "meta context name") == -1)
    return -1;
  settings_clear_meta_more (h);
  return 0;
}

void
settings_clear_meta_more (struct nbdaio_handle *h)
{
  for (size_t i = 0; i < NBDAIO_MAX_META_CONTEXTS && h->meta_more[i]; i++) {
    free (h->meta_more[i]);
    h->meta_more[i] = NULL;
  }
}

int
nbdaio_add_meta_context (struct nbdaio_handle *h, const char *name)
{
  size_t n = 0;

  if (handle_check_state (h, IN_NEW | IN_NEGOTIATING, __func__) == -1)
    return -1;
  if (!name || !*name)
    return set_error (EINVAL, "meta context name is %s", name ? "empty" :
                      "NULL");
  if (!h->meta_context_wanted)
    return nbdaio_set_meta_context (h, name);
  if (strcmp (h->meta_context_wanted, name) == 0)
    return set_error (EINVAL, "meta context '%s' is asked for already",
                      ESCAPED (name, strlen (name)));
  for (; n < NBDAIO_MAX_META_CONTEXTS - 1 && h->meta_more[n]; n++)
    if (strcmp (h->meta_more[n], name) == 0)
      return set_error (EINVAL, "meta context '%s' is asked for already",
                        ESCAPED (name, strlen (name)));
  if (n == NBDAIO_MAX_META_CONTEXTS - 1)
    return set_error (E2BIG, "at most %d meta contexts can be asked for",
                      NBDAIO_MAX_META_CONTEXTS);
  return settings_replace_string (&h->meta_more[n], name, "meta context name");
}

int
nbdaio_set_reply_violations (struct nbdaio_handle *h, int policy)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (policy != NBDAIO_VIOLATIONS_COMMAND && policy != NBDAIO_VIOLATIONS_CLOSE)
    return set_error (EINVAL, "reply violations policy %d (expected "
                      "NBDAIO_VIOLATIONS_COMMAND or _CLOSE)", policy);
  h->violations_close = policy == NBDAIO_VIOLATIONS_CLOSE;
  return 0;
}

int
nbdaio_set_opt_mode (struct nbdaio_handle *h, int enable)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->opt_mode = enable != 0;
  return 0;
}

int
nbdaio_set_connect_timeout (struct nbdaio_handle *h, unsigned ms)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->connect_timeout_ms = ms;
  return 0;
}

int
nbdaio_set_request_timeout (struct nbdaio_handle *h, unsigned ms)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->request_timeout_ms = ms;
  return 0;
}

int
nbdaio_set_reconnect_delay (struct nbdaio_handle *h, unsigned ms)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->rc.delay_ms = ms;
  return 0;
}

int
nbdaio_set_max_in_flight (struct nbdaio_handle *h, unsigned n)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (n < 1 || n > CMD_MAX_SLOTS)
    return set_error (EINVAL, "max in flight %u is out of range (1 to %u)",
                      n, CMD_MAX_SLOTS);
  h->max_in_flight = n;
  return 0;
}

int
nbdaio_set_strict (struct nbdaio_handle *h, unsigned flags)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  if (flags & ~NBDAIO_STRICT_ALL)
    return set_error (EINVAL, "unknown strict flags 0x%x",
                      flags & ~NBDAIO_STRICT_ALL);
  h->strict = flags;
  return 0;
}

unsigned
nbdaio_get_strict (struct nbdaio_handle *h)
{
  return h ? h->strict : 0;
}

int
nbdaio_set_split (struct nbdaio_handle *h, int split)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->split_off = split == 0;
  return 0;
}

int
nbdaio_get_split (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  return !h->split_off;
}

int
nbdaio_set_conns (struct nbdaio_handle *h, unsigned n)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (n < 1 || n > NBDAIO_GROUP_MAX)
    return set_error (EINVAL, "conns %u is out of range (1 to %u)", n,
                      NBDAIO_GROUP_MAX);
  h->conns = n;
  return 0;
}

int
nbdaio_set_force_multi_conn (struct nbdaio_handle *h, int force)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->force_multi_conn = force != 0;
  return 0;
}

int
nbdaio_set_debug (struct nbdaio_handle *h, int debug)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  h->debug = debug != 0;
  return 0;
}

int
nbdaio_set_tls (struct nbdaio_handle *h, int mode)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (mode != NBDAIO_TLS_DISABLE && mode != NBDAIO_TLS_ALLOW &&
      mode != NBDAIO_TLS_REQUIRE)
    return set_error (EINVAL, "TLS mode %d is not one of NBDAIO_TLS_DISABLE, "
                      "NBDAIO_TLS_ALLOW, NBDAIO_TLS_REQUIRE", mode);
  h->tls.mode = mode;
  return 0;
}

int
nbdaio_get_tls (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  return h->tls.mode;
}

/* A path or name setting, the char * at offset field of h->tls (known
 * only once h is: NULL is refused first): non-empty, or NULL to unset. */
static int
set_tls_string (struct nbdaio_handle *h, size_t field, const char *value,
                const char *what)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  if (value && !*value)
    return set_error (EINVAL, "%s is empty", what);
  return settings_replace_string ((char **) ((char *) &h->tls + field),
                                  value, what);
}

int
nbdaio_set_tls_certificates (struct nbdaio_handle *h, const char *dir)
{
  return set_tls_string (h, offsetof (struct tls_config, certificates), dir,
                         "TLS certificates directory");
}

int
nbdaio_set_tls_psk_file (struct nbdaio_handle *h, const char *path)
{
  return set_tls_string (h, offsetof (struct tls_config, psk_file), path,
                         "TLS PSK file");
}

int
nbdaio_set_tls_username (struct nbdaio_handle *h, const char *name)
{
  return set_tls_string (h, offsetof (struct tls_config, username), name,
                         "TLS user name");
}

int
nbdaio_set_tls_hostname (struct nbdaio_handle *h, const char *name)
{
  return set_tls_string (h, offsetof (struct tls_config, hostname), name,
                         "TLS host name");
}

int
nbdaio_set_tls_verify_peer (struct nbdaio_handle *h, int verify)
{
  if (handle_check_state (h, IN_NEW, __func__) == -1)
    return -1;
  h->tls.verify_peer = verify != 0;
  return 0;
}

/* ---- nbdaio_set_option: settings by name ---------------------------- */

static int
opt_tls (struct nbdaio_handle *h, const char *name, const char *v)
{
  static const char *const modes[] = {
    [NBDAIO_TLS_DISABLE] = "off", [NBDAIO_TLS_ALLOW] = "allow",
    [NBDAIO_TLS_REQUIRE] = "require",
  };

  for (int m = 0; m < (int) (sizeof modes / sizeof modes[0]); m++)
    if (strcasecmp (v, modes[m]) == 0)
      return nbdaio_set_tls (h, m);
  return set_error (EINVAL, "%s: bad value '%s' (expected off, allow or "
                    "require)", name, v);
}

static int
opt_meta_context (struct nbdaio_handle *h, const char *name, const char *v)
{
  (void) name;
  return nbdaio_set_meta_context (h, strcmp (v, "none") == 0 ? NULL : v);
}

/* A duration setting: setter takes milliseconds. */
static int
opt_duration (struct nbdaio_handle *h, const char *name, const char *v,
              int (*setter) (struct nbdaio_handle *, unsigned))
{
  uint64_t ms;

  return parse_duration_ms (name, v, UINT32_MAX, &ms) == -1 ? -1 :
    setter (h, (unsigned) ms);
}

static int
opt_connect_timeout (struct nbdaio_handle *h, const char *name,
                     const char *v)
{
  return opt_duration (h, name, v, nbdaio_set_connect_timeout);
}

static int
opt_request_timeout (struct nbdaio_handle *h, const char *name,
                     const char *v)
{
  return opt_duration (h, name, v, nbdaio_set_request_timeout);
}

/* Seconds, fractional allowed ("10", "0.5"), or a number with unit ms, s
 * or m. */
static int
opt_reconnect_delay (struct nbdaio_handle *h, const char *name,
                     const char *v)
{
  char *end;
  double s;
  uint64_t ms;

  errno = 0;
  s = (v[0] >= '0' && v[0] <= '9') ? strtod (v, &end) : -1;
  if (s >= 0 && end != v + strspn (v, "0123456789."))
    s = -1;                     /* no hex, no exponent */
  if (s >= 0 && *end == '\0' && errno == 0 && s * 1000 <= UINT32_MAX)
    return nbdaio_set_reconnect_delay (h, (unsigned) (s * 1000 + 0.5));
  if (s >= 0 && *end && parse_duration_ms (name, v, UINT32_MAX, &ms) == 0)
    return nbdaio_set_reconnect_delay (h, (unsigned) ms);
  return set_error (EINVAL, "%s: bad value '%s' (expected seconds, "
                    "fractional allowed, or a number with unit ms, s or m; "
                    "at most %u s)", name, v, UINT32_MAX / 1000);
}

static int
opt_max_in_flight (struct nbdaio_handle *h, const char *name,
                   const char *v)
{
  uint64_t n;

  return parse_uint (name, v, 1, CMD_MAX_SLOTS, &n) == -1 ? -1 :
    nbdaio_set_max_in_flight (h, (unsigned) n);
}

static int
opt_conns (struct nbdaio_handle *h, const char *name, const char *v)
{
  uint64_t n;

  return parse_uint (name, v, 1, NBDAIO_GROUP_MAX, &n) == -1 ? -1 :
    nbdaio_set_conns (h, (unsigned) n);
}

static int
opt_strict (struct nbdaio_handle *h, const char *name, const char *v)
{
  static const struct { const char *word; unsigned bits; } words[] = {
    { "all", NBDAIO_STRICT_ALL }, { "none", 0 },
    { "commands", NBDAIO_STRICT_COMMANDS }, { "flags", NBDAIO_STRICT_FLAGS },
    { "bounds", NBDAIO_STRICT_BOUNDS }, { "align", NBDAIO_STRICT_ALIGN },
    { "payload", NBDAIO_STRICT_PAYLOAD },
  };
  unsigned bits = 0;
  const char *p = v;
  bool b;

  if (parse_bool (name, v, &b) == 0)
    return nbdaio_set_strict (h, b ? NBDAIO_STRICT_ALL : 0);
  for (;;) {
    size_t len = strcspn (p, ",");
    size_t i;

    for (i = 0; i < sizeof words / sizeof words[0]; i++)
      if (strlen (words[i].word) == len &&
          strncasecmp (p, words[i].word, len) == 0)
        break;
    if (i == sizeof words / sizeof words[0])
      return set_error (EINVAL, "%s: bad value '%s' (expected all, none, a "
                        "boolean or a comma list of commands, flags, "
                        "bounds, align, payload)", name, v);
    bits |= words[i].bits;
    if (!p[len])
      break;
    p += len + 1;
  }
  return nbdaio_set_strict (h, bits);
}

static int
opt_reply_violations (struct nbdaio_handle *h, const char *name,
                      const char *v)
{
  if (strcmp (v, "command") == 0)
    return nbdaio_set_reply_violations (h, NBDAIO_VIOLATIONS_COMMAND);
  if (strcmp (v, "close") == 0)
    return nbdaio_set_reply_violations (h, NBDAIO_VIOLATIONS_CLOSE);
  return set_error (EINVAL, "%s: bad value '%s' (expected command or close)",
                    name, v);
}

/* How a setting takes its string: as it is, as a boolean, or parsed by its
 * own function. */
static const struct {
  const char *name;
  int (*set_string) (struct nbdaio_handle *h, const char *value);
  int (*set_bool) (struct nbdaio_handle *h, int value);
  int (*set) (struct nbdaio_handle *h, const char *name, const char *value);
  const char *help;     /* accepted values, one line (nbdaio_setting_help) */
} options[] = {
  { "export",           .set_string = nbdaio_set_export_name,
    .help = "export name" },
  { "tls",              .set = opt_tls,
    .help = "off | allow | require" },
  { "tls-certificates", .set_string = nbdaio_set_tls_certificates,
    .help = "directory of x509 certificates" },
  { "tls-psk-file",     .set_string = nbdaio_set_tls_psk_file,
    .help = "PSK key file" },
  { "tls-username",     .set_string = nbdaio_set_tls_username,
    .help = "PSK user name" },
  { "tls-hostname",     .set_string = nbdaio_set_tls_hostname,
    .help = "name the server certificate must carry" },
  { "tls-verify-peer",  .set_bool = nbdaio_set_tls_verify_peer,
    .help = "boolean: check the server certificate" },
  { "structured",       .set_bool = nbdaio_set_request_structured_replies,
    .help = "boolean: ask for structured replies" },
  { "extended-headers", .set_bool = nbdaio_set_request_extended_headers,
    .help = "boolean: ask for extended headers" },
  { "meta-context",     .set = opt_meta_context,
    .help = "context name, or none" },
  { "connect-timeout",  .set = opt_connect_timeout,
    .help = "duration (bare number = ms; units ms, s, m)" },
  { "request-timeout",  .set = opt_request_timeout,
    .help = "duration, as connect-timeout (0 = none)" },
  { "reconnect-delay",  .set = opt_reconnect_delay,
    .help = "seconds (fractional allowed) or a duration with unit" },
  { "max-in-flight",    .set = opt_max_in_flight,
    .help = "1..65536" },
  { "strict",           .set = opt_strict,
    .help = "all|none|boolean|list of commands,flags,bounds,align,payload" },
  { "reply-violations", .set = opt_reply_violations,
    .help = "command | close" },
  { "split",            .set_bool = nbdaio_set_split,
    .help = "boolean: split requests above the server maximum" },
  { "auto-submit",      .set_bool = nbdaio_set_auto_submit,
    .help = "boolean: submit queued requests automatically" },
  { "conns",            .set = opt_conns,
    .help = "1..64 connections" },
  { "force-multi-conn", .set_bool = nbdaio_set_force_multi_conn,
    .help = "boolean: use several connections without multi-conn" },
  { "debug",            .set_bool = nbdaio_set_debug,
    .help = "boolean" },
};

int
nbdaio_set_option (struct nbdaio_handle *h, const char *name,
                   const char *value)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  if (!name)
    return set_error (EINVAL, "setting name is NULL");
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (strcmp (name, options[i].name) != 0)
      continue;
    if (!value)
      return set_error (EINVAL, "%s: value is NULL", name);
    if (options[i].set_string)
      return options[i].set_string (h, value);
    if (options[i].set_bool) {
      bool b;
      return parse_bool (name, value, &b) == -1 ? -1 :
        options[i].set_bool (h, b);
    }
    return options[i].set (h, name, value);
  }
  return set_error (ENOENT, "unknown setting '%s'", name);
}

const char *
nbdaio_setting_name (unsigned i)
{
  return i < sizeof options / sizeof options[0] ? options[i].name : NULL;
}

const char *
nbdaio_setting_help (const char *name)
{
  if (!name) {
    set_error (EINVAL, "setting name is NULL");
    return NULL;
  }
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    if (strcmp (name, options[i].name) == 0)
      return options[i].help;
  set_error (EINVAL, "unknown setting '%s'", name);
  return NULL;
}

/* ---- copying settings (connection groups) ----------------------------- */

static int
copy_string (char **dst, const char *src)
{
  return settings_replace_string (dst, src, "setting");
}

int
settings_copy (struct nbdaio_handle *dst, const struct nbdaio_handle *src)
{
  int r = 0;

  r |= copy_string (&dst->export_name, src->export_name);
  r |= copy_string (&dst->meta_context_wanted, src->meta_context_wanted);
  for (size_t i = 0; i < NBDAIO_MAX_META_CONTEXTS && src->meta_more[i]; i++)
    r |= copy_string (&dst->meta_more[i], src->meta_more[i]);
  r |= copy_string (&dst->tls.certificates, src->tls.certificates);
  r |= copy_string (&dst->tls.psk_file, src->tls.psk_file);
  r |= copy_string (&dst->tls.username, src->tls.username);
  r |= copy_string (&dst->tls.hostname, src->tls.hostname);
  dst->tls.mode = src->tls.mode;
  dst->tls.verify_peer = src->tls.verify_peer;
  dst->export_name_explicit = src->export_name_explicit;
  dst->ask_structured_replies = src->ask_structured_replies;
  dst->extended_off = src->extended_off;
  dst->debug = src->debug;
  dst->connect_timeout_ms = src->connect_timeout_ms;
  dst->request_timeout_ms = src->request_timeout_ms;
  dst->max_in_flight = src->max_in_flight;
  dst->strict = src->strict;
  dst->split_off = src->split_off;
  dst->violations_close = src->violations_close;
  dst->auto_submit_off = src->auto_submit_off;
  dst->rc.delay_ms = src->rc.delay_ms;
  dst->conns = src->conns;
  dst->force_multi_conn = src->force_multi_conn;
  return r ? -1 : 0;
}
