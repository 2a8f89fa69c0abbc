/* profile.c - connection profiles: an ini file (read with inih) holding one
 * [section] per profile.  Owns finding the file (explicit path,
 * $NBDAIO_CONFIG, the user's config directory, /etc), validating the whole
 * file with errors that name FILE:LINE, and applying a profile to a handle
 * and connecting it.
 *
 * The file is read whole first (a regular file of at most
 * PROFILE_FILE_MAX bytes: see localfile.h), then handed to inih line by
 * line.
 *
 * Keys are the profile-only ones in profile_keys[] below (where to connect,
 * and the timeout shorthand) plus every setting nbdaio_set_option
 * knows; those are checked by applying them to a scratch handle, so their
 * syntax is defined once, in engine/settings.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "nbdaio.h"
#include "error.h"
#include "localfile.h"
#include "parse.h"
#include "uri.h"

#define PROFILES_FILE  "nbdaio/profiles.ini"
#define SYSTEM_FILE    "/etc/" PROFILES_FILE
/* inih keeps at most this many bytes of a section name. */
#define SECTION_NAME_MAX 49
/* The largest profile file read: far more than any real one, and a bound
 * for a path that names the wrong file. */
#define PROFILE_FILE_MAX (1024 * 1024)

struct entry {
  char *key, *value;
  int line;
};

struct nbdaio_profile {
  char *path;                   /* the file it came from */
  char *name;                   /* its [section] */
  int line;                     /* line of the [section] header */
  struct entry *entries;        /* in file order */
  size_t n;
};

/* One file being read. */
struct profile_file {
  char *path;
  char *text;                   /* the whole file (see localfile.h) */
  size_t len, pos;              /* its length; where the next line starts */
  int line;                     /* the line inih is at (see read_line) */
  int err_line;                 /* line of the first error found, or 0 */
  struct nbdaio_profile *profiles;  /* every section, in file order */
  size_t n;
  struct nbdaio_handle *scratch;    /* checks nbdaio_set_option settings */
};

/* ---- errors ------------------------------------------------------------ */

/* Prefix the current error with "PATH[:LINE][: [SECTION]]" (line 0 and
 * section NULL leave that part out).  Returns -1. */
static int
error_at (const char *path, int line, const char *section)
{
  char what[512];
  int n = line > 0 ? snprintf (what, sizeof what, "%s:%d", path, line)
                   : snprintf (what, sizeof what, "%s", path);

  if (section && n >= 0 && (size_t) n < sizeof what)
    snprintf (what + n, sizeof what - n, ": [%s]", section);
  error_prefix (what);
  return -1;
}

/* ---- profile-only keys --------------------------------------------------- */

/* Keys that are not handle settings.  The server: uri, or socket, or host
 * with an optional port.  timeout is shorthand for the settings in
 * timeout_settings[] (each unless the profile gives it by its own name),
 * so it is at most what they take. */
static const struct {
  const char *key;
  enum { V_URI, V_STRING, V_UINT, V_DURATION } type;
  uint64_t min, max;            /* V_UINT; max also for V_DURATION */
} profile_keys[] = {
  { "uri",              V_URI, 0, 0 },
  { "socket",           V_STRING, 0, 0 },
  { "host",             V_STRING, 0, 0 },
  { "port",             V_UINT, 1, 65535 },
  { "timeout",          V_DURATION, 0, UINT32_MAX },
};
#define NR_PROFILE_KEYS (sizeof profile_keys / sizeof profile_keys[0])

/* What the profile key timeout stands for. */
static const char *const timeout_settings[] = {
  "request-timeout", "connect-timeout",
};

/* Index in profile_keys, or NR_PROFILE_KEYS for a handle setting. */
static size_t
profile_key (const char *key)
{
  size_t i;

  for (i = 0; i < NR_PROFILE_KEYS; i++)
    if (strcmp (key, profile_keys[i].key) == 0)
      break;
  return i;
}

/* Check value for profile_keys[k] (not empty: checked before). */
static int
check_value (size_t k, const char *value)
{
  const char *key = profile_keys[k].key;
  struct nbdaio_uri u;
  uint64_t n;

  switch (profile_keys[k].type) {
  case V_URI:
    if (uri_parse (value, &u) == -1)
      return -1;
    uri_free (&u);
    return 0;
  case V_UINT:
    return parse_uint (key, value, profile_keys[k].min, profile_keys[k].max,
                       &n);
  case V_DURATION:
    return parse_duration_ms (key, value, profile_keys[k].max, &n);
  case V_STRING:
    break;
  }
  return 0;
}

/* Server keys that exclude each other. */
static const char *const exclusive[][2] = {
  { "uri", "socket" }, { "uri", "host" }, { "uri", "port" },
  { "socket", "host" }, { "socket", "port" },
};

/* Append item to the ", "-separated list in buf (truncated when full). */
static void
comma_list_append (char *buf, size_t size, const char *item)
{
  size_t used = strlen (buf);

  if (used + 1 < size)
    snprintf (buf + used, size - used, "%s%s", used ? ", " : "", item);
}

/* ---- one profile ------------------------------------------------------- */

static const struct entry *
entry_find (const struct nbdaio_profile *p, const char *key)
{
  for (size_t i = 0; i < p->n; i++)
    if (strcmp (p->entries[i].key, key) == 0)
      return &p->entries[i];
  return NULL;
}

static int
entry_add (struct nbdaio_profile *p, const char *key, const char *value,
           int line)
{
  struct entry *e = realloc (p->entries, (p->n + 1) * sizeof *e);

  if (!e)
    return set_error (ENOMEM, "out of memory");
  p->entries = e;
  e = &p->entries[p->n];
  e->key = strdup (key);
  e->value = strdup (value);
  e->line = line;
  if (!e->key || !e->value) {
    free (e->key);
    free (e->value);
    return set_error (ENOMEM, "out of memory");
  }
  p->n++;
  return 0;
}

static void
profile_clear (struct nbdaio_profile *p)
{
  for (size_t i = 0; i < p->n; i++) {
    free (p->entries[i].key);
    free (p->entries[i].value);
  }
  free (p->entries);
  free (p->name);
  free (p->path);
  memset (p, 0, sizeof *p);
}

/* The server keys of one profile agree: exactly one way to the server. */
static int
check_server (const char *path, const struct nbdaio_profile *p)
{
  for (size_t i = 0; i < sizeof exclusive / sizeof exclusive[0]; i++) {
    const struct entry *a = entry_find (p, exclusive[i][0]);
    const struct entry *b = entry_find (p, exclusive[i][1]);

    if (a && b) {
      const struct entry *later = a->line > b->line ? a : b;
      const struct entry *first = later == a ? b : a;
      set_error (EINVAL, "'%s' cannot be combined with '%s' (line %d): a "
                 "profile names its server by uri, by socket, or by host "
                 "and port", later->key, first->key, first->line);
      return error_at (path, later->line, p->name);
    }
  }
  if (!entry_find (p, "uri") && !entry_find (p, "socket") &&
      !entry_find (p, "host")) {
    set_error (EINVAL, "no server given: set uri, socket or host");
    return error_at (path, p->line, p->name);
  }
  return 0;
}

/* ---- reading the file --------------------------------------------------- */

static struct nbdaio_profile *
section_find (struct profile_file *f, const char *name, size_t len)
{
  for (size_t i = 0; i < f->n; i++)
    if (strlen (f->profiles[i].name) == len &&
        memcmp (f->profiles[i].name, name, len) == 0)
      return &f->profiles[i];
  return NULL;
}

/* A [section] header at the current line: a new profile. */
static int
section_add (struct profile_file *f, const char *name, size_t len)
{
  struct nbdaio_profile *p = section_find (f, name, len);

  if (p)
    return set_error (EINVAL, "section [%s] given twice (first at line %d)",
                      p->name, p->line);
  if (len == 0 || len > SECTION_NAME_MAX)
    return set_error (EINVAL, "a section name must be 1 to %d characters",
                      SECTION_NAME_MAX);
  p = realloc (f->profiles, (f->n + 1) * sizeof *p);
  if (!p)
    return set_error (ENOMEM, "out of memory");
  f->profiles = p;
  p = &f->profiles[f->n];
  memset (p, 0, sizeof *p);
  if (!(p->name = strndup (name, len)))
    return set_error (ENOMEM, "out of memory");
  p->line = f->line;
  f->n++;
  return 0;
}

/* inih's line reader: inih asks for one line per call, so counting them
 * here tells the key handler its line.  Leading blanks are dropped (the
 * format has no continuation lines), a [section] header is recorded (inih
 * tells the handler only about keys, so an empty section would go unseen),
 * and a line longer than inih's buffer or holding a NUL byte (which would
 * cut it short unseen) is an error.  Returns NULL at the end of the file
 * or after the first error. */
static char *
read_line (char *buf, int size, void *stream)
{
  struct profile_file *f = stream;
  const char *start = f->text + f->pos, *nl, *nul;
  size_t len, skip;

  if (f->err_line || f->pos == f->len)
    return NULL;
  f->line++;
  nl = memchr (start, '\n', f->len - f->pos);
  len = nl ? (size_t) (nl - start) : f->len - f->pos;
  f->pos += len + (nl != NULL);
  if ((nul = memchr (start, '\0', len))) {
    set_error (EINVAL, "NUL byte at column %zu: a profile file is text",
               (size_t) (nul - start) + 1);
    goto fail;
  }
  if (len > (size_t) size - 1) {
    set_error (EINVAL, "line is longer than %d characters", size - 1);
    goto fail;
  }
  memcpy (buf, start, len);
  buf[len] = '\0';
  skip = strspn (buf, " \t");
  memmove (buf, buf + skip, len - skip + 1);
  if (buf[0] == '[') {
    size_t end = strcspn (buf, "]");
    if (buf[end] == ']' && section_add (f, buf + 1, end - 1) == -1)
      goto fail;
  }
  return buf;

 fail:
  f->err_line = f->line;
  error_at (f->path, f->line, NULL);
  return NULL;
}

/* One key = value line of [section]: checked, then stored. */
static int
add_key (struct profile_file *f, const char *section, const char *key,
         const char *value)
{
  struct nbdaio_profile *p = section_find (f, section, strlen (section));
  const struct entry *e;
  size_t k = profile_key (key);
  char known[128] = "";

  if (!*section)
    return set_error (EINVAL, "key '%s' outside any [section]", key);
  if (!p) {          /* a header read_line missed (a byte-order mark) */
    if (section_add (f, section, strlen (section)) == -1)
      return -1;
    p = &f->profiles[f->n - 1];
  }
  if ((e = entry_find (p, key)))
    return set_error (EINVAL, "'%s' given twice in [%s] (first at line %d)",
                      key, section, e->line);
  if (!*value)
    return set_error (EINVAL, "%s: empty value (leave the key out for the "
                      "default)", key);
  if (k < NR_PROFILE_KEYS) {
    if (check_value (k, value) == -1)
      return -1;
  }
  else if (nbdaio_set_option (f->scratch, key, value) == -1) {
    if (nbdaio_get_errno () != ENOENT)
      return -1;
    for (size_t i = 0; i < NR_PROFILE_KEYS; i++)
      comma_list_append (known, sizeof known, profile_keys[i].key);
    return set_error (EINVAL, "unknown key '%s' in [%s] (known: %s, and "
                      "every setting of nbdaio_set_option in nbdaio.h)",
                      key, section, known);
  }
  return entry_add (p, key, value, f->line);
}

/* inih's handler: nonzero to go on.  Only the first error is kept. */
static int
on_key (void *user, const char *section, const char *key, const char *value)
{
  struct profile_file *f = user;

  if (f->err_line)
    return 1;
  if (add_key (f, section, key, value) == -1) {
    f->err_line = f->line;
    error_at (f->path, f->line, NULL);
    return 0;
  }
  return 1;
}

/* Parse and check the whole file. */
static int
read_profiles (struct profile_file *f)
{
  int r;

  if (!(f->scratch = nbdaio_create ()))
    return -1;
  r = ini_parse_stream (read_line, f, on_key, f);
  nbdaio_close (f->scratch);
  f->scratch = NULL;
  if (r == -2)
    return set_error (ENOMEM, "out of memory reading %s", f->path);
  /* inih reports the first bad line; a syntax error has no message of
   * ours (or comes before the first error we found). */
  if (r > 0 && (!f->err_line || r < f->err_line)) {
    set_error (EINVAL, "syntax error (expected [section], key = value, or "
               "a comment starting with ; or #)");
    return error_at (f->path, r, NULL);
  }
  if (f->err_line)
    return -1;
  for (size_t i = 0; i < f->n; i++)
    if (check_server (f->path, &f->profiles[i]) == -1)
      return -1;
  return 0;
}

/* Move profile name out of f. */
static struct nbdaio_profile *
take_profile (struct profile_file *f, const char *name)
{
  struct nbdaio_profile *found = section_find (f, name, strlen (name)), *p;
  char list[512] = "";

  if (!found) {
    for (size_t i = 0; i < f->n; i++)
      comma_list_append (list, sizeof list, f->profiles[i].name);
    set_error (ENOENT, "%s: no profile [%s] (%s%s)", f->path, name,
               f->n ? "profiles in it: " : "it has no profiles", list);
    return NULL;
  }
  if (!(p = malloc (sizeof *p))) {
    set_error (ENOMEM, "out of memory");
    return NULL;
  }
  *p = *found;
  memset (found, 0, sizeof *found);
  p->path = f->path;
  f->path = NULL;
  return p;
}

static void
file_close (struct profile_file *f)
{
  for (size_t i = 0; i < f->n; i++)
    profile_clear (&f->profiles[i]);
  free (f->profiles);
  free (f->path);
  localfile_free (f->text, f->len, false);
}

/* ---- finding the file ---------------------------------------------------- */

/* Read path into f: 1 if read, 0 if it does not exist, -1 on another
 * error (not a regular file, too large, unreadable).  from says where the
 * name came from (for messages), or NULL. */
static int
try_open (struct profile_file *f, const char *path, const char *from)
{
  const struct localfile how = {
    .what = "profile file", .note = from, .max = PROFILE_FILE_MAX,
  };

  if (localfile_read (path, &how, &f->text, &f->len) == -1)
    return errno == ENOENT ? 0 : -1;
  if (!(f->path = strdup (path)))
    return set_error (ENOMEM, "out of memory");
  return 1;
}

/* A file that was asked for by name must exist. */
static int
open_named (struct profile_file *f, const char *path, const char *from)
{
  int r = try_open (f, path, from);

  if (r == 0)
    return set_error (ENOENT, "profile file %s%s does not exist", path,
                      from ? from : "");
  return r == 1 ? 0 : -1;
}

/* *out = $XDG_CONFIG_HOME/nbdaio/profiles.ini (an absolute
 * $XDG_CONFIG_HOME, as the XDG base directory rules say), else
 * $HOME/.config/nbdaio/profiles.ini, else NULL.  -1 only for ENOMEM. */
static int
user_file (char **out)
{
  const char *xdg = getenv ("XDG_CONFIG_HOME"), *home = getenv ("HOME");
  int r;

  *out = NULL;
  if (xdg && xdg[0] == '/')
    r = asprintf (out, "%s/" PROFILES_FILE, xdg);
  else if (home && *home)
    r = asprintf (out, "%s/.config/" PROFILES_FILE, home);
  else
    return 0;
  if (r == -1) {
    *out = NULL;
    return set_error (ENOMEM, "out of memory");
  }
  return 0;
}

/* The lookup order: explicit path, $NBDAIO_CONFIG, the user's file, the
 * system file; the first that exists is the one. */
static int
find_file (struct profile_file *f, const char *path)
{
  const char *env = getenv ("NBDAIO_CONFIG");
  char *user;
  int r;

  if (path)
    return open_named (f, path, NULL);
  if (env && *env)
    return open_named (f, env, " (from $NBDAIO_CONFIG)");
  if (user_file (&user) == -1)
    return -1;
  r = user ? try_open (f, user, NULL) : 0;
  if (r == 0)
    r = try_open (f, SYSTEM_FILE, NULL);
  if (r == 0)
    set_error (ENOENT, "no profile file found (looked for %s%s"
               SYSTEM_FILE "; $NBDAIO_CONFIG is not set)",
               user ? user : "", user ? " and " : "");
  free (user);
  return r == 1 ? 0 : -1;
}

/* ---- the public API ------------------------------------------------------ */

struct nbdaio_profile *
nbdaio_profile_load (const char *path, const char *name)
{
  struct profile_file f = { 0 };
  struct nbdaio_profile *p = NULL;

  if (!name)
    set_error (EINVAL, "profile name is NULL");
  else if (find_file (&f, path) == 0 && read_profiles (&f) == 0)
    p = take_profile (&f, name);
  file_close (&f);
  return p;
}

void
nbdaio_profile_free (struct nbdaio_profile *p)
{
  if (p) {
    profile_clear (p);
    free (p);
  }
}

const char *
nbdaio_profile_get_path (const struct nbdaio_profile *p)
{
  return p ? p->path : NULL;
}

const char *
nbdaio_profile_get (const struct nbdaio_profile *p, const char *key)
{
  const struct entry *e = p && key ? entry_find (p, key) : NULL;

  return e ? e->value : NULL;
}

int
nbdaio_profile_get_number (const struct nbdaio_profile *p, const char *key,
                           uint64_t *out)
{
  const char *value = nbdaio_profile_get (p, key);
  size_t k = key ? profile_key (key) : NR_PROFILE_KEYS;

  if (k == NR_PROFILE_KEYS || profile_keys[k].type == V_URI ||
      profile_keys[k].type == V_STRING)
    return set_error (EINVAL, "'%s' is not a numeric profile key (port, "
                      "timeout)", key ? key : "NULL");
  if (!value)
    return 0;
  switch (profile_keys[k].type) {
  case V_DURATION:
    return parse_duration_ms (key, value, profile_keys[k].max, out) == -1 ?
      -1 : 1;
  default:
    return parse_uint (key, value, profile_keys[k].min, profile_keys[k].max,
                       out) == -1 ? -1 : 1;
  }
}

/* Apply the key timeout (entry e) as each of timeout_settings the profile
 * does not give by its own name. */
static int
apply_timeout (const struct nbdaio_profile *p, const struct entry *e,
               struct nbdaio_handle *h)
{
  for (size_t i = 0; i < sizeof timeout_settings / sizeof timeout_settings[0];
       i++)
    if (!entry_find (p, timeout_settings[i]) &&
        nbdaio_set_option (h, timeout_settings[i], e->value) == -1)
      return -1;
  return 0;
}

int
nbdaio_profile_apply (const struct nbdaio_profile *p, struct nbdaio_handle *h)
{
  if (!p || !h)
    return set_error (EINVAL, "%s is NULL", p ? "handle" : "profile");
  for (size_t i = 0; i < p->n; i++) {
    const struct entry *e = &p->entries[i];
    int r;

    if (strcmp (e->key, "timeout") == 0)
      r = apply_timeout (p, e, h);
    else if (profile_key (e->key) < NR_PROFILE_KEYS)
      continue;
    else
      r = nbdaio_set_option (h, e->key, e->value);
    if (r == -1)
      return error_at (p->path, e->line, p->name);
  }
  return 0;
}

int
nbdaio_profile_connect (const struct nbdaio_profile *p,
                        struct nbdaio_handle *h)
{
  const char *uri, *sock;
  int r;

  if (!p || !h)
    return set_error (EINVAL, "%s is NULL", p ? "handle" : "profile");
  if ((uri = nbdaio_profile_get (p, "uri")))
    r = nbdaio_connect_uri (h, uri);
  else if ((sock = nbdaio_profile_get (p, "socket")))
    r = nbdaio_connect_unix (h, sock);
  else
    r = nbdaio_connect_tcp (h, nbdaio_profile_get (p, "host"),
                            nbdaio_profile_get (p, "port"));
  return r == -1 ? error_at (p->path, 0, p->name) : 0;
}

int
nbdaio_connect_profile (struct nbdaio_handle *h, const char *path,
                        const char *name)
{
  struct nbdaio_profile *p;
  int r;

  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (!(p = nbdaio_profile_load (path, name)))
    return -1;
  r = nbdaio_profile_apply (p, h);
  if (r == 0)
    r = nbdaio_profile_connect (p, h);
  nbdaio_profile_free (p);
  return r;
}
