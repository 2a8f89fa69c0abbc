/* tools/cli-common.h - helpers shared by the command-line tools
 * (nbdaio-info and nbdaio-check) and the test programs: JSON string
 * output, connecting through a connection profile, the monotonic clock,
 * dying of a library error, and the tools' command line: --NAME VALUE
 * options and library settings, the URI or profile to connect to.
 * Header-only (static inline), so each program just includes it.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#ifndef NBDAIO_CLI_COMMON_H
#define NBDAIO_CLI_COMMON_H

#include <errno.h>                /* program_invocation_short_name */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbdaio.h"

/* The monotonic clock in milliseconds (for deadlines and durations). */
static inline int64_t
cli_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print "PROGRAM: what: the library's error" on stderr and exit 1. */
static inline void __attribute__ ((noreturn))
cli_die_lib (const char *what)
{
  const char *msg = nbdaio_get_error ();

  fprintf (stderr, "%s: %s: %s\n", program_invocation_short_name, what,
           msg ? msg : "unknown error");
  exit (1);
}

/* The length (1-4) of the valid UTF-8 sequence at p and its code point
 * in *cp, or 0 when p starts no valid sequence (a stray continuation
 * byte, a truncated or overlong sequence, a surrogate, past U+10FFFF). */
static inline int
cli_utf8_decode (const unsigned char *p, unsigned *cp)
{
  static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
  int n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 :
          *p >= 0xe0 && *p <= 0xef ? 3 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
  unsigned c = n == 1 ? *p : *p & (0x7f >> n);

  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (p[i] & 0x3f);
  }
  if (n == 0 || c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

/* Print s as a JSON string literal to fp: the exact text, with what RFC
 * 8259 requires escaped and every other control character (C0, DEL, C1)
 * and invisible or direction-changing format character as \uXXXX, so the
 * output is safe on a terminal; a byte that is not
 * valid UTF-8 (which the NBD spec forbids in its strings) becomes
 * U+FFFD, so the output is valid JSON whatever a server sent. */
static inline void
cli_json_string (FILE *fp, const char *s)
{
  putc ('"', fp);
  for (const unsigned char *p = (const unsigned char *) s; *p; ) {
    unsigned cp;
    int n = cli_utf8_decode (p, &cp);

    if (n == 0) {
      fputs ("\\ufffd", fp);
      p++;
      continue;
    }
    switch (cp) {
    case '"':  fputs ("\\\"", fp); break;
    case '\\': fputs ("\\\\", fp); break;
    case '\n': fputs ("\\n", fp); break;
    case '\r': fputs ("\\r", fp); break;
    case '\t': fputs ("\\t", fp); break;
    case '\b': fputs ("\\b", fp); break;
    case '\f': fputs ("\\f", fp); break;
    default:
      if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
          (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
          (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff)
        fprintf (fp, "\\u%04x", cp);
      else
        fwrite (p, 1, (size_t) n, fp);
    }
    p += n;
  }
  putc ('"', fp);
}

/* s, text a server sent, escaped with nbdaio_escape_string into a
 * malloc'd string; NULL when out of memory. */
static inline char *
cli_escape (const char *s)
{
  size_t len = strlen (s), n = nbdaio_escape_string (NULL, 0, s, len);
  char *e = malloc (n + 1);

  if (e)
    nbdaio_escape_string (e, n + 1, s, len);
  return e;
}

/* Print s, text a server sent: escaped (cli_escape) for people, or when
 * json as a JSON string literal holding the exact text (cli_json_string
 * escapes every control character, so neither reaches a terminal raw). */
static inline void
cli_print_server_text (FILE *fp, const char *s, int json)
{
  char *e;

  if (json) {
    cli_json_string (fp, s);
    return;
  }
  e = cli_escape (s);
  fputs (e ? e : "(out of memory)", fp);
  free (e);
}

/* Load profile name from config (NULL: the usual places) and apply its
 * settings to h.  Returns the profile (free it with nbdaio_profile_free)
 * or NULL with the library's error set.  Connect afterwards with
 * nbdaio_profile_connect; settings made in between override the
 * profile's. */
static inline struct nbdaio_profile *
cli_profile_load_apply (struct nbdaio_handle *h, const char *name,
                        const char *config)
{
  struct nbdaio_profile *p = nbdaio_profile_load (config, name);

  if (p && nbdaio_profile_apply (p, h) == -1) {
    nbdaio_profile_free (p);
    return NULL;
  }
  return p;
}

/* ---- the tools' command line ------------------------------------------ */

/* The --help lines of the library settings, the same in every tool (the
 * names are nbdaio_set_option's: the library has the one table). */
#define CLI_SETTINGS_HELP \
"  --SETTING VALUE     any library setting, by the name nbdaio_set_option(3)\n" \
"                      and a profile use; --SETTING=VALUE works too;\n" \
"                      applied after the profile's settings.  The settings\n" \
"                      (from nbdaio_setting_name(3), nbdaio_setting_help(3)):\n"

/* Print CLI_SETTINGS_HELP and then every library setting with its values,
 * one a line, indented so that they read as part of the --SETTING entry. */
static inline void
cli_print_settings_help (FILE *fp)
{
  const char *name;

  fputs (CLI_SETTINGS_HELP, fp);
  for (unsigned i = 0; (name = nbdaio_setting_name (i)) != NULL; i++)
    fprintf (fp, "    --%-16s %s\n", name, nbdaio_setting_help (name));
}

/* Print "PROGRAM: message" and a pointer to --help on stderr, then exit 2
 * (usage error). */
static inline void __attribute__ ((noreturn, format (printf, 1, 2)))
cli_die_usage (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "%s: ", program_invocation_short_name);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n(%s --help for usage)\n", program_invocation_short_name);
  exit (2);
}

/* Whether argument a is the URI ("-" alone counts as one), then taken as
 * *uri, or else a long option ("--NAME...").  Exits 2 (usage error) for a
 * second URI or a short option this does not know. */
static inline int
cli_take_uri (const char **uri, const char *a)
{
  if (a[0] != '-' || a[1] == '\0') {
    if (*uri)
      cli_die_usage ("more than one URI given ('%s')", a);
    *uri = a;
    return 1;
  }
  if (a[1] != '-')
    cli_die_usage ("unknown option '%s'", a);
  return 0;
}

/* The value of the long option argv[*i] ("--NAME=VALUE", or "--NAME"
 * followed by VALUE: then *i moves past it), with NAME copied to name
 * (size bytes).  Exits 2 (usage error) for an empty or too long name or
 * a missing value. */
static inline const char *
cli_option_value (int argc, char *argv[], int *i, char *name, size_t size)
{
  const char *a = argv[*i], *eq = strchr (a, '=');
  size_t len = eq ? (size_t) (eq - a - 2) : strlen (a + 2);

  if (len == 0 || len >= size)
    cli_die_usage ("unknown option '%s'", a);
  memcpy (name, a + 2, len);
  name[len] = '\0';
  if (eq)
    return eq + 1;
  if (*i + 1 >= argc)
    cli_die_usage ("option '%s' needs a value", a);
  return argv[++*i];
}

/* At most this many library settings on one command line. */
#define CLI_MAX_SETTINGS 32

/* Library settings given on the command line (--NAME VALUE), in order;
 * name malloc'd, value argv's. */
struct cli_settings {
  struct { char *name; const char *value; } v[CLI_MAX_SETTINGS];
  int n;
};

/* Add setting name = value to s, once a scratch handle took it: exits 2
 * (usage error) with the library's message naming the setting when the
 * name is unknown or the value bad, or when s is full. */
static inline void
cli_settings_add (struct cli_settings *s, const char *name,
                  const char *value)
{
  struct nbdaio_handle *h = nbdaio_create ();
  int r = h ? nbdaio_set_option (h, name, value) : -1;
  int e = nbdaio_get_errno ();
  const char *msg = nbdaio_get_error ();

  if (r == -1 && e == ENOENT)
    cli_die_usage ("unknown option '--%s': %s (nbdaio_set_option(3) lists "
                   "the settings)", name, msg ? msg : "unknown setting");
  if (r == -1 && msg && strncmp (msg, name, strlen (name)) == 0 &&
      msg[strlen (name)] == ':')
    cli_die_usage ("--%s", msg);        /* the message names the setting */
  if (r == -1)
    cli_die_usage ("--%s: %s", name, msg ? msg : "bad value");
  nbdaio_close (h);
  if (s->n == CLI_MAX_SETTINGS)
    cli_die_usage ("too many settings (at most %d), at '--%s'",
                   CLI_MAX_SETTINGS, name);
  if (!(s->v[s->n].name = strdup (name)))
    cli_die_usage ("out of memory");
  s->v[s->n++].value = value;
}

/* Apply the settings of s to h in order.  Returns 0, or -1 with the
 * library's error set. */
static inline int
cli_settings_apply (const struct cli_settings *s, struct nbdaio_handle *h)
{
  for (int i = 0; i < s->n; i++)
    if (nbdaio_set_option (h, s->v[i].name, s->v[i].value) == -1)
      return -1;
  return 0;
}

static inline void
cli_settings_free (struct cli_settings *s)
{
  for (int i = 0; i < s->n; i++)
    free (s->v[i].name);
  s->n = 0;
}

/* Exit 2 (usage error) unless the command line names exactly one target:
 * a URI, or a profile (with config, its file, only then). */
static inline void
cli_check_target (const char *uri, const char *profile, const char *config)
{
  if (uri && profile)
    cli_die_usage ("give either a URI or --profile, not both");
  if (config && !profile)
    cli_die_usage ("--config goes with --profile");
  if (!uri && !profile)
    cli_die_usage ("no URI given");
}

#endif /* NBDAIO_CLI_COMMON_H */
