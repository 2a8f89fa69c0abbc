/* tests/integration/opt-probe.c - probes a real server in option
 * negotiation mode through the public API: connects with opt mode on, then
 * nbdaio_opt_list, nbdaio_opt_info, nbdaio_opt_list_meta_context (all
 * contexts, then with the --query arguments), nbdaio_opt_raw with an
 * option no server knows, and finally nbdaio_opt_go (or nbdaio_opt_abort
 * with --abort) and one read.  Prints one JSON object saying what each
 * call returned (test-opt.sh asserts on it) and exits 1 when a call broke
 * the API's promises (a failed opt call must leave the handle negotiating
 * after an error reply, a read must work after go).
 *
 * usage: opt-probe [--export NAME] [--query Q]... [--abort] URI
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-common.h"
#include "nbdaio.h"

#define RAW_UNKNOWN_OPTION 0x4242
#define MAX_QUERIES 8

static int failures;

static void
fail (const char *what)
{
  fprintf (stderr, "opt-probe: %s: %s\n", what,
           nbdaio_get_error () ? nbdaio_get_error () : "(no error)");
  failures++;
}

static void
json_str (const char *s)
{
  if (s)
    cli_json_string (stdout, s);
  else
    fputs ("null", stdout);
}

/* ,"key":"value" */
static void
field_str (const char *key, const char *value)
{
  printf (",\"%s\":", key);
  json_str (value);
}

static void
field_errno (int rc)
{
  const char *name = rc == -1 ? strerrorname_np (nbdaio_get_errno ()) : NULL;

  field_str ("errno", name);
}

static int first_entry;

static void
on_export (void *user_data, const char *name, const char *description)
{
  (void) user_data;
  printf ("%s{\"name\":", first_entry ? "" : ",");
  json_str (name);
  field_str ("description", description);
  putchar ('}');
  first_entry = 0;
}

static void
on_context (void *user_data, uint32_t id, const char *name)
{
  (void) user_data;
  printf ("%s{\"id\":%" PRIu32 ",\"name\":", first_entry ? "" : ",", id);
  json_str (name);
  putchar ('}');
  first_entry = 0;
}

/* An opt call that failed: an error reply must leave the handle
 * negotiating, anything else must end it. */
static void
check_after_failure (struct nbdaio_handle *h, const char *call)
{
  int refused = nbdaio_get_errno () != EPROTO &&
    nbdaio_get_connection_error (h) == NULL;

  if (refused && nbdaio_is_negotiating (h) != 1) {
    fprintf (stderr, "opt-probe: %s was refused but the handle stopped "
             "negotiating\n", call);
    failures++;
  }
}

/* "reply":N, the last final reply type */
static void
field_reply (struct nbdaio_handle *h)
{
  printf (",\"reply\":%" PRId64, nbdaio_get_opt_reply_type (h));
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "export", required_argument, NULL, 'e' },
    { "query", required_argument, NULL, 'q' },
    { "abort", no_argument, NULL, 'a' },
    { NULL, 0, NULL, 0 },
  };
  const char *export = NULL, *queries[MAX_QUERIES + 1] = { NULL };
  int nq = 0, do_abort = 0, opt, r;
  struct nbdaio_handle *h;
  int64_t type;

  while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
    case 'e': export = optarg; break;
    case 'q':
      if (nq == MAX_QUERIES)
        goto usage;
      queries[nq++] = optarg;
      break;
    case 'a': do_abort = 1; break;
    default: goto usage;
    }
  }
  if (optind != argc - 1)
    goto usage;

  h = nbdaio_create ();
  if (!h || nbdaio_set_opt_mode (h, 1) == -1 ||
      nbdaio_set_connect_timeout (h, 20000) == -1) {
    fail ("create");
    return 1;
  }
  if (nbdaio_connect_uri (h, argv[optind]) == -1) {
    fail ("connect");
    nbdaio_close (h);
    return 1;
  }
  /* the URI's export is the default; --export overrides it */
  if (export && nbdaio_set_export_name (h, export) == -1)
    fail ("set_export_name while negotiating");
  printf ("{\"negotiating\":%d", nbdaio_is_negotiating (h));
  field_str ("protocol", nbdaio_get_protocol (h));
  printf (",\"structured\":%d",
          nbdaio_get_structured_replies_negotiated (h));

  /* NBD_OPT_LIST */
  printf (",\"list\":{\"exports\":[");
  first_entry = 1;
  r = nbdaio_opt_list (h, on_export, NULL);
  printf ("],\"rc\":%d", r);
  field_errno (r);
  field_reply (h);
  putchar ('}');
  if (r == -1)
    check_after_failure (h, "nbdaio_opt_list");

  /* NBD_OPT_INFO */
  if (nbdaio_is_negotiating (h)) {
    r = nbdaio_opt_info (h);
    printf (",\"info\":{\"rc\":%d", r);
    field_errno (r);
    field_reply (h);
    if (r == 0) {
      printf (",\"size\":%" PRId64 ",\"tflags\":%d,\"read_only\":%d",
              nbdaio_get_size (h), nbdaio_get_transmission_flags (h),
              nbdaio_is_read_only (h));
      field_str ("name", nbdaio_get_export_name (h));
      field_str ("description", nbdaio_get_export_description (h));
      printf (",\"block_size\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]",
              nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM),
              nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED),
              nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM));
      printf (",\"negotiating\":%d", nbdaio_is_negotiating (h));
    }
    else
      check_after_failure (h, "nbdaio_opt_info");
    putchar ('}');
  }

  /* NBD_OPT_LIST_META_CONTEXT: all, then the queries given */
  for (int pass = 0; pass < 2 && nbdaio_is_negotiating (h); pass++) {
    if (pass == 1 && nq == 0)
      break;
    printf (",\"%s\":{\"contexts\":[", pass ? "contexts_query" : "contexts");
    first_entry = 1;
    r = nbdaio_opt_list_meta_context (h, pass ? queries : NULL, on_context,
                                      NULL);
    printf ("],\"rc\":%d", r);
    field_errno (r);
    field_reply (h);
    putchar ('}');
    if (r == -1)
      check_after_failure (h, "nbdaio_opt_list_meta_context");
  }

  /* an option nobody knows */
  if (nbdaio_is_negotiating (h)) {
    type = nbdaio_opt_raw (h, RAW_UNKNOWN_OPTION, "probe", 5);
    printf (",\"raw\":{\"rc\":%" PRId64, type);
    field_errno (type == -1 ? -1 : 0);
    printf (",\"negotiating\":%d}", nbdaio_is_negotiating (h));
  }

  if (do_abort && nbdaio_is_negotiating (h)) {
    r = nbdaio_opt_abort (h);
    printf (",\"abort\":{\"rc\":%d,\"negotiating\":%d,\"connected\":%d", r,
            nbdaio_is_negotiating (h), nbdaio_is_connected (h));
    field_str ("connection_error", nbdaio_get_connection_error (h));
    putchar ('}');
  }
  else if (nbdaio_is_negotiating (h)) {
    char buf[512];
    r = nbdaio_opt_go (h);
    printf (",\"go\":{\"rc\":%d", r);
    field_errno (r);
    if (r == 0) {
      printf (",\"connected\":%d,\"size\":%" PRId64, nbdaio_is_connected (h),
              nbdaio_get_size (h));
      field_str ("name", nbdaio_get_export_name (h));
      field_str ("meta_context", nbdaio_get_meta_context (h));
      r = nbdaio_pread (h, buf, sizeof buf, 0, 0);
      printf (",\"read\":%d", r);
      if (r == -1)
        fail ("pread after go");
    }
    else
      check_after_failure (h, "nbdaio_opt_go");
    putchar ('}');
  }
  printf (",\"failures\":%d}\n", failures);
  if (nbdaio_is_connected (h) && nbdaio_shutdown (h) == -1)
    fail ("shutdown");
  nbdaio_close (h);
  return failures ? 1 : 0;

 usage:
  fprintf (stderr, "usage: opt-probe [--export NAME] [--query Q]... "
           "[--abort] URI\n");
  return 2;
}
