/* tools/info.c - nbdaio-info: connect to an NBD URI (or through a
 * connection profile) and print everything the handshake found
 * (human-readable "key: value" lines or JSON).
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
           "usage: nbdaio-info [--json] URI\n"
           "       nbdaio-info [--json] --profile NAME [--config FILE]\n"
           "Connect to an NBD server and print what the handshake found.\n"
           "  URI              nbd://host[:port][/export] or\n"
           "                   nbd+unix:///[export]?socket=PATH\n"
           "  --profile NAME   connect with profile [NAME] of the profile file\n"
           "  --config FILE    the profile file (default: the one\n"
           "                   nbdaio_profile_load(3) finds, first\n"
           "                   $NBDAIO_CONFIG)\n"
           "  --json           print one JSON object instead of key: value "
           "lines\n"
           "  --help           print this help\n");
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

/* Argument i of an option that takes one (argv[i] is the option). */
static const char *
option_arg (int argc, char *argv[], int i)
{
  if (i + 1 >= argc) {
    fprintf (stderr, "nbdaio-info: %s needs an argument\n", argv[i]);
    usage (stderr);
    exit (1);
  }
  return argv[i + 1];
}

/* Connect h through profile name of config (NULL: the usual places) and
 * record which profile and file were used.  Returns the profile (free it
 * after printing: the fields point into it), or NULL. */
static struct nbdaio_profile *
connect_profile (struct nbdaio_handle *h, const char *name,
                 const char *config)
{
  struct nbdaio_profile *p = cli_profile_load_apply (h, name, config);

  if (!p || nbdaio_profile_connect (p, h) == -1) {
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

int
main (int argc, char *argv[])
{
  const char *uri = NULL, *profile = NULL, *config = NULL;
  int json = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
      usage (stdout);
      return 0;
    }
    else if (strcmp (argv[i], "--json") == 0)
      json = 1;
    else if (strcmp (argv[i], "--profile") == 0)
      profile = option_arg (argc, argv, i++);
    else if (strcmp (argv[i], "--config") == 0)
      config = option_arg (argc, argv, i++);
    else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf (stderr, "nbdaio-info: unknown option '%s'\n", argv[i]);
      usage (stderr);
      return 1;
    }
    else if (uri) {
      fprintf (stderr, "nbdaio-info: more than one URI given ('%s')\n",
               argv[i]);
      usage (stderr);
      return 1;
    }
    else
      uri = argv[i];
  }
  const char *bad = NULL;
  if (uri && profile)
    bad = "give either a URI or --profile, not both";
  else if (config && !profile)
    bad = "--config goes with --profile";
  else if (!uri && !profile)
    bad = "no URI given";
  if (bad) {
    fprintf (stderr, "nbdaio-info: %s\n", bad);
    usage (stderr);
    return 1;
  }

  struct nbdaio_handle *h = nbdaio_create ();
  struct nbdaio_profile *prof = NULL;
  if (!h)
    cli_die_lib ("nbdaio_create");
  if (profile) {
    if (!(prof = connect_profile (h, profile, config))) {
      nbdaio_close (h);
      return 1;
    }
  }
  else if (nbdaio_connect_uri (h, uri) == -1) {
    const char *msg = nbdaio_get_error ();
    fprintf (stderr, "nbdaio-info: cannot connect to %s: %s\n", uri,
             msg ? msg : "unknown error");
    nbdaio_close (h);
    return 1;
  }
  else
    add ("uri", K_STR, uri, 0);
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
