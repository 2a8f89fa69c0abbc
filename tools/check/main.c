/* tools/check/main.c - nbdaio-check: command-line options, the first
 * connection (what the server advertises), the order of the probe groups,
 * and the exit status (0 nothing failed, 1 some probe failed, 2 usage).
 *
 * Library settings are not listed here: any --NAME VALUE this file does
 * not know is handed to nbdaio_set_option (tls, tls-certificates,
 * tls-psk-file, ...) by cli-common.h, as nbdaio-info does, so the
 * library's table is the only one.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cli-common.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: " PROG " [options] URI\n"
"       " PROG " [options] --profile NAME [--config FILE]\n"
"Check an NBD server against the NBD protocol specification, rule by rule.\n"
"Each probe prints PASS, FAIL (a MUST broken), WARN (a SHOULD broken) or\n"
"SKIP (feature not offered, or needs --write), the rule and what was seen.\n"
"\n"
"  URI                 nbd[s]://host[:port][/export], nbd[s]+unix:///[export]"
"?socket=PATH\n"
"  --json              print one JSON object (server, results, summary)\n"
"  --junit FILE        also write the verdicts to FILE as JUnit XML (one\n"
"                      testcase per probe: failure for FAIL, skipped for\n"
"                      SKIP), for CI systems\n"
"  --write             also run the probes that modify data.  DATA IN THE\n"
"                      SCRATCH AREA IS OVERWRITTEN (and trimmed/zeroed)\n"
"  --scratch-offset N  start of the scratch area (default 0; bytes, or with\n"
"                      k/M/G); rounded up to the server's block size\n"
"  --scratch-size N    its size (default: 1M, or what the probes need, at\n"
"                      most up to the end of the export)\n"
"  --timeout SECONDS   per command, and for connecting (default 30; may be\n"
"                      fractional); a server that does not answer in time\n"
"                      earns a FAIL\n"
"  --profile NAME      connect with profile [NAME] of the profile file\n"
"  --config FILE       the profile file (default: the one\n"
"                      nbdaio_profile_load(3) finds, first $NBDAIO_CONFIG)\n");
  cli_print_settings_help (fp);
  fprintf (fp,
"  -v, --verbose       protocol trace of every connection to stderr\n"
"  --help              print this help\n"
"Exit status: 0 no probe failed, 1 some probe failed, 2 usage error\n"
"(or --junit FILE could not be written).\n");
}

/* "N" with an optional k/M/G/T suffix (powers of 1024), at most
 * INT64_MAX (the largest export size and offset).  Digits first:
 * strtoull would read "-1" and " -1" as 2^64 - 1. */
static uint64_t
parse_size (const char *opt, const char *s)
{
  char *end;
  unsigned long long v;
  unsigned shift = 0;

  if (*s < '0' || *s > '9')
    goto bad;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno == ERANGE)
    goto too_big;
  switch (*end) {
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  }
  if (*end == 'i' && shift)
    end++;
  if ((*end == 'b' || *end == 'B') && shift)
    end++;
  if (*end)
    goto bad;
  if (v > ((uint64_t) INT64_MAX >> shift))
    goto too_big;
  return (uint64_t) v << shift;
 bad:
  fprintf (stderr, PROG ": %s: '%s' is not a size (bytes, or a number "
           "with k, M, G or T)\n", opt, s);
  exit (2);
 too_big:
  fprintf (stderr, PROG ": %s: '%s' is too large (at most %" PRId64
           " bytes, 8 EiB - 1)\n", opt, s, INT64_MAX);
  exit (2);
}

static unsigned
parse_timeout (const char *s)
{
  char *end;
  errno = 0;
  double v = strtod (s, &end);
  if (errno || end == s || *end || !(v > 0) || v > 86400)
    cli_die_usage ("--timeout: '%s' is not a number of seconds (more than "
                   "0, at most 86400)", s);
  unsigned ms = (unsigned) (v * 1000 + 0.5);
  return ms ? ms : 1;
}

static void
parse_args (int argc, char *argv[], struct config *cfg,
            const char **config_file, int *timeout_given)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char name[64];
    const char *value;

    if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
      usage (stdout);
      exit (0);
    }
    if (strcmp (a, "--json") == 0) { cfg->json = 1; continue; }
    if (strcmp (a, "--write") == 0) { cfg->write = 1; continue; }
    if (strcmp (a, "-v") == 0 || strcmp (a, "--verbose") == 0) {
      cfg->verbose = 1;
      continue;
    }
    if (cli_take_uri (&cfg->uri, a))
      continue;
    value = cli_option_value (argc, argv, &i, name, sizeof name);

    if (strcmp (name, "scratch-offset") == 0)
      cfg->scratch_offset = parse_size (a, value);
    else if (strcmp (name, "scratch-size") == 0) {
      cfg->scratch_size = parse_size (a, value);
      cfg->scratch_size_given = 1;
      if (cfg->scratch_size == 0)
        cli_die_usage ("--scratch-size: must be more than 0 (got '%s')",
                       value);
    }
    else if (strcmp (name, "timeout") == 0) {
      cfg->timeout_ms = parse_timeout (value);
      *timeout_given = 1;
    }
    else if (strcmp (name, "junit") == 0)
      cfg->junit = value;
    else if (strcmp (name, "profile") == 0)
      cfg->profile_name = value;
    else if (strcmp (name, "config") == 0)
      *config_file = value;
    else
      cli_settings_add (&cfg->settings, name, value);
  }
  cli_check_target (cfg->uri, cfg->profile_name, *config_file);
}

/* What the first connection found: into ctx and the JSON server object. */
static void
record_server (struct ctx *c)
{
  struct nbdaio_handle *h = c->h;

  c->size = nbdaio_get_size (h);
  c->tflags = nbdaio_get_transmission_flags (h);
  c->hflags = nbdaio_get_handshake_flags (h);
  c->min_block = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  c->pref_block = nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED);
  c->max_block = nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM);
  c->read_only = nbdaio_is_read_only (h) == 1;
  c->can_flush = nbdaio_can_flush (h) == 1;
  c->can_fua = nbdaio_can_fua (h) == 1;
  c->can_trim = nbdaio_can_trim (h) == 1;
  c->can_zero = nbdaio_can_zero (h) == 1;
  c->can_fast_zero = nbdaio_can_fast_zero (h) == 1;
  c->can_cache = nbdaio_can_cache (h) == 1;
  c->can_df = nbdaio_can_df (h) == 1;
  c->can_multi_conn = nbdaio_can_multi_conn (h) == 1;
  c->can_bs = nbdaio_can_block_status (h) == 1;
  c->sr = nbdaio_get_structured_replies_negotiated (h) == 1;
  c->xhdr = nbdaio_get_extended_headers_negotiated (h) == 1;
  c->protocol = nbdaio_get_protocol (h);

  report_info_str ("protocol", c->protocol);
  report_info_str ("export_name", nbdaio_get_export_name (h));
  report_info_str ("description", nbdaio_get_export_description (h));
  report_info_int ("size", c->size);
  report_info_int ("handshake_flags", c->hflags);
  report_info_int ("transmission_flags", c->tflags);
  report_info_bool ("tls", nbdaio_get_tls_negotiated (h));
  report_info_bool ("structured_replies", c->sr);
  report_info_bool ("extended_headers", c->xhdr);
  report_info_str ("meta_context", nbdaio_get_meta_context (h));
  report_info_bool ("read_only", c->read_only);
  report_info_bool ("can_flush", c->can_flush);
  report_info_bool ("can_fua", c->can_fua);
  report_info_bool ("can_trim", c->can_trim);
  report_info_bool ("can_zero", c->can_zero);
  report_info_bool ("can_fast_zero", c->can_fast_zero);
  report_info_bool ("can_cache", c->can_cache);
  report_info_bool ("can_df", c->can_df);
  report_info_bool ("can_multi_conn", c->can_multi_conn);
  report_info_bool ("can_block_status", c->can_bs);
  report_info_int ("block_size_minimum", c->min_block);
  report_info_int ("block_size_preferred", c->pref_block);
  report_info_int ("block_size_maximum", c->max_block);
}

/* The bytes the --write probes need: 24 slots of one unit plus 64 pieces
 * of one unit for the concurrency probe (see probe-data.c). */
static uint64_t
scratch_needed (const struct ctx *c)
{
  return 88 * ctx_unit (c);
}

/* Place the scratch area inside the export, aligned; 0, or -1 (usage
 * error, message printed) when it does not fit. */
static int
resolve_scratch (struct ctx *c, const struct config *cfg)
{
  uint64_t a = ctx_align (c), need = scratch_needed (c);
  uint64_t size = (uint64_t) c->size, off = cfg->scratch_offset;
  uint64_t want = cfg->scratch_size_given ? cfg->scratch_size :
    (need > (1u << 20) ? need : (1u << 20));

  /* round up only an offset inside the export: it cannot wrap then */
  if (off < size)
    off = (off + a - 1) / a * a;
  if (off >= size) {
    fprintf (stderr, PROG ": --scratch-offset %" PRIu64 " is not inside the "
             "export (size %" PRIu64 ")\n", cfg->scratch_offset, size);
    return -1;
  }
  if (want > size - off)
    want = cfg->scratch_size_given ? want : size - off;
  want = want / a * a;
  if (want > size - off) {
    fprintf (stderr, PROG ": the scratch area [%" PRIu64 ", +%" PRIu64
             ") runs past the end of the export (size %" PRIu64 ")\n",
             off, want, size);
    return -1;
  }
  if (cfg->write && want < need) {
    fprintf (stderr, PROG ": the scratch area is %" PRIu64 " bytes; the "
             "--write probes need %" PRIu64 " (set --scratch-size, or "
             "--scratch-offset lower)\n", want, need);
    return -1;
  }
  c->scratch_offset = off;
  c->scratch_size = want;
  report_info_int ("scratch_offset", (int64_t) off);
  report_info_int ("scratch_size", (int64_t) want);
  return 0;
}

/* The last probe: every reply of the run went through the library's
 * checks; list the rules broken anywhere. */
static void
probe_replies_valid (void)
{
  report_summarize_violations ();
}

int
main (int argc, char *argv[])
{
  struct config cfg = { .timeout_ms = 30000 };
  const char *config_file = NULL;
  int timeout_given = 0, status;
  struct ctx c = { .cfg = &cfg };
  struct outcome o;

  parse_args (argc, argv, &cfg, &config_file, &timeout_given);
  if (cfg.verbose)
    cli_settings_add (&cfg.settings, "debug", "1");
  if (cfg.profile_name) {
    cfg.profile = nbdaio_profile_load (config_file, cfg.profile_name);
    if (!cfg.profile) {
      fprintf (stderr, PROG ": --profile %s: %s\n", cfg.profile_name,
               nbdaio_get_error () ? nbdaio_get_error () : "cannot load");
      return 2;
    }
    uint64_t t;
    if (!timeout_given &&
        nbdaio_profile_get_number (cfg.profile, "timeout", &t) == 1 && t > 0)
      cfg.timeout_ms = t > UINT32_MAX ? UINT32_MAX : (unsigned) t;
  }
  c.seed = (uint32_t) time (NULL) ^ ((uint32_t) getpid () << 16);

  c.h = check_open (&cfg, NBDAIO_STRICT_ALL, &o);
  if (!c.h) {
    report ("session.connect", V_FAIL,
            "Protocol phases: the handshake, then the transmission phase",
            o.violation[0] ? o.violation : NULL,
            "cannot connect: %s", o.message);
    report ("session.probes", V_SKIP, "", NULL,
            "no probe run: the server cannot be connected to");
    status = report_print (&cfg);
    if (cfg.junit && report_write_junit (cfg.junit) == -1)
      status = 2;
    goto out;
  }
  record_server (&c);
  report ("session.connect", V_PASS,
          "Protocol phases: the handshake, then the transmission phase",
          NULL, "connected (%s, export size %" PRId64 ", transmission "
          "flags 0x%04x%s%s)", c.protocol, c.size, (unsigned) c.tflags,
          nbdaio_get_tls_negotiated (c.h) == 1 ? ", TLS" : "",
          c.sr ? ", structured replies" : "");
  if (resolve_scratch (&c, &cfg) == -1) {
    status = 2;
    goto out;
  }

  probe_handshake (&c);
  probe_commands (&c);
  probe_refuse (&c);
  probe_data (&c);
  probe_concurrency (&c);
  probe_xhdr (&c);
  probe_replies_valid ();

  status = report_print (&cfg);
  if (cfg.junit && report_write_junit (cfg.junit) == -1)
    status = 2;

 out:
  if (c.h)
    check_close (&cfg, c.h);
  nbdaio_profile_free (cfg.profile);
  cli_settings_free (&cfg.settings);
  report_free ();
  return status;
}
