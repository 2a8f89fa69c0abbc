/* tools/info.c - nbdaio-info: connect to an NBD URI (or through a
 * connection profile), with any library setting given as --NAME VALUE
 * (cli-common.h, as nbdaio-check), and print everything the handshake
 * found (human-readable "key: value" lines or JSON).  Exit status 0, 1
 * (cannot connect) or 2 (usage error).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <inttypes.h>

#include "nbdaio.h"
#include "cli-common.h"

enum kind { K_STR, K_INT, K_BOOL, K_HEX };

struct field {
  const char *key;
  enum kind kind;
  const char *s;      /* K_STR (NULL = not present) */
  int64_t n;          /* K_INT, K_BOOL, K_HEX */
};

#define MAX_FIELDS 40

static struct field fields[MAX_FIELDS];
static int nfields;

static void
usage (FILE *fp)
{
  fprintf (fp,
           "usage: nbdaio-info [options] URI\n"
           "       nbdaio-info [options] --profile NAME [--config FILE]\n"
           "Connect to an NBD server and print what the handshake found.\n"
           "  URI                 nbd[s]://host[:port][/export] or\n"
           "                      nbd[s]+unix:///[export]?socket=PATH\n"
           "  --profile NAME      connect with profile [NAME] of the profile "
           "file\n"
           "  --config FILE       the profile file (default: the one\n"
           "                      nbdaio_profile_load(3) finds, first\n"
           "                      $NBDAIO_CONFIG)\n"
           "  --json              print one JSON object instead of key: value "
           "lines\n");
  cli_print_settings_help (fp);
  fprintf (fp,
           "  --help              print this help\n"
           "Exit status: 0 printed, 1 cannot connect, 2 usage error.\n");
}

static void
add (const char *key, enum kind kind, const char *s, int64_t n)
{
  if (nfields == MAX_FIELDS) {
    fprintf (stderr, "nbdaio-info: internal error: too many fields\n");
    exit (1);
  }
  fields[nfields++] = (struct field) { key, kind, s, n };
}

/* Query a 1/0/-1 capability and record it as a boolean. */
static void
add_bool (struct nbdaio_handle *h, const char *key,
          int (*query) (struct nbdaio_handle *))
{
  int r = query (h);
  if (r == -1)
    cli_die_lib (key);
  add (key, K_BOOL, NULL, r);
}

static void
add_int (const char *key, int64_t v)
{
  if (v == -1)
    cli_die_lib (key);
  add (key, K_INT, NULL, v);
}

static void
print_json (void)
{
  printf ("{\n");
  for (int i = 0; i < nfields; i++) {
    const struct field *f = &fields[i];
    printf ("  ");
    cli_json_string (stdout, f->key);
    printf (": ");
    switch (f->kind) {
    case K_STR:
      if (f->s)
        cli_print_server_text (stdout, f->s, 1);
      else
        printf ("null");
      break;
    case K_BOOL: printf ("%s", f->n ? "true" : "false"); break;
    case K_INT:
    case K_HEX:  printf ("%" PRId64, f->n); break;
    }
    printf ("%s\n", i + 1 < nfields ? "," : "");
  }
  printf ("}\n");
}

/* Human output.  Strings (the server's, and for uniformity the URI and
 * profile too) are printed escaped; JSON holds them exactly, with every
 * control character \u-escaped (cli_print_server_text). */
static void
print_human (void)
{
  int width = 0;
  for (int i = 0; i < nfields; i++) {
    int len = (int) strlen (fields[i].key);
    if (len > width)
      width = len;
  }
  for (int i = 0; i < nfields; i++) {
    const struct field *f = &fields[i];
    /* "key:" then padding so that every value starts in the same column */
    printf ("%s:%*s ", f->key, width - (int) strlen (f->key), "");
    switch (f->kind) {
    case K_STR:
      if (!f->s)
        printf ("(none)");
      else
        cli_print_server_text (stdout, f->s, 0);
      break;
    case K_BOOL: printf ("%s", f->n ? "yes" : "no"); break;
    case K_INT:  printf ("%" PRId64, f->n); break;
    case K_HEX:  printf ("0x%04" PRIx64, f->n); break;
    }
    putchar ('\n');
  }
}

/* Connect h through profile name of config (NULL: the usual places), the
 * command line's settings s applied after the profile's, and record which
 * profile and file were used.  Returns the profile (free it after
 * printing: the fields point into it), or NULL. */
static struct nbdaio_profile *
connect_profile (struct nbdaio_handle *h, const char *name,
                 const char *config, const struct cli_settings *s)
{
  struct nbdaio_profile *p = cli_profile_load_apply (h, name, config);

  if (!p || cli_settings_apply (s, h) == -1 ||
      nbdaio_profile_connect (p, h) == -1) {
    const char *msg = nbdaio_get_error ();
    fprintf (stderr, "nbdaio-info: cannot connect with profile %s: %s\n",
             name, msg ? msg : "unknown error");
    nbdaio_profile_free (p);
    return NULL;
  }
  add ("profile", K_STR, name, 0);
  add ("profile_file", K_STR, nbdaio_profile_get_path (p), 0);
  return p;
}

/* Connect h to uri, the command line's settings s applied first, and
 * record the URI.  Returns 0, or -1 (message printed). */
static int
connect_uri (struct nbdaio_handle *h, const char *uri,
             const struct cli_settings *s)
{
  if (cli_settings_apply (s, h) == -1 || nbdaio_connect_uri (h, uri) == -1) {
    const char *msg = nbdaio_get_error ();
    fprintf (stderr, "nbdaio-info: cannot connect to %s: %s\n", uri,
             msg ? msg : "unknown error");
    return -1;
  }
  add ("uri", K_STR, uri, 0);
  return 0;
}

int
main (int argc, char *argv[])
{
  const char *uri = NULL, *profile = NULL, *config = NULL;
  struct cli_settings settings = { .n = 0 };
  int json = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *value;
    char name[64];

    if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      usage (stdout);
      return 0;
    }
    if (strcmp (a, "--json") == 0) {
      json = 1;
      continue;
    }
    if (cli_take_uri (&uri, a))
      continue;
    value = cli_option_value (argc, argv, &i, name, sizeof name);
    if (strcmp (name, "profile") == 0)
      profile = value;
    else if (strcmp (name, "config") == 0)
      config = value;
    else
      cli_settings_add (&settings, name, value);
  }
  cli_check_target (uri, profile, config);

  struct nbdaio_handle *h = nbdaio_create ();
  struct nbdaio_profile *prof = NULL;
  if (!h)
    cli_die_lib ("nbdaio_create");
  int ok = profile ?
    (prof = connect_profile (h, profile, config, &settings)) != NULL :
    connect_uri (h, uri, &settings) == 0;
  cli_settings_free (&settings);
  if (!ok) {
    nbdaio_close (h);
    return 1;
  }
  add ("protocol", K_STR, nbdaio_get_protocol (h), 0);
  add ("export_name", K_STR, nbdaio_get_export_name (h), 0);
  add ("description", K_STR, nbdaio_get_export_description (h), 0);
  add_int ("size", nbdaio_get_size (h));
  add_bool (h, "read_only", nbdaio_is_read_only);
  add_bool (h, "can_write", nbdaio_can_write);
  add_bool (h, "can_flush", nbdaio_can_flush);
  add_bool (h, "can_fua", nbdaio_can_fua);
  add_bool (h, "can_trim", nbdaio_can_trim);
  add_bool (h, "can_zero", nbdaio_can_zero);
  add_bool (h, "can_fast_zero", nbdaio_can_fast_zero);
  add_bool (h, "can_cache", nbdaio_can_cache);
  add_bool (h, "can_df", nbdaio_can_df);
  add_bool (h, "can_multi_conn", nbdaio_can_multi_conn);
  add_bool (h, "is_rotational", nbdaio_is_rotational);
  add_bool (h, "can_block_status", nbdaio_can_block_status);
  add_int ("block_size_minimum",
           nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM));
  add_int ("block_size_preferred",
           nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED));
  add_int ("block_size_maximum",
           nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM));
  add_int ("max_payload", nbdaio_get_max_payload (h));
  add_bool (h, "structured_replies",
            nbdaio_get_structured_replies_negotiated);
  add_bool (h, "extended_headers", nbdaio_get_extended_headers_negotiated);
  add_bool (h, "tls", nbdaio_get_tls_negotiated);
  add ("meta_context", K_STR, nbdaio_get_meta_context (h), 0);

  int hf = nbdaio_get_handshake_flags (h);
  if (hf == -1)
    cli_die_lib ("handshake_flags");
  add ("handshake_flags", K_HEX, NULL, hf);
  int tf = nbdaio_get_transmission_flags (h);
  if (tf == -1)
    cli_die_lib ("transmission_flags");
  add ("transmission_flags", K_HEX, NULL, tf);

  if (json)
    print_json ();
  else
    print_human ();

  /* Leave politely; a failure here does not change what we printed. */
  if (nbdaio_shutdown (h) == -1)
    fprintf (stderr, "nbdaio-info: warning: disconnect: %s\n",
             nbdaio_get_error ());
  nbdaio_close (h);
  nbdaio_profile_free (prof);
  return fflush (stdout) == 0 ? 0 : 1;
}
