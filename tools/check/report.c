/* tools/check/report.c - nbdaio-check: collecting verdicts and printing
 * the report, as human lines ("PASS  id  detail (spec: ...)" and a
 * summary line) or as one JSON object (server facts, results, summary),
 * and writing the verdicts as JUnit XML (--junit FILE).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "check.h"
#include "cli-common.h"

struct result {
  char *id;
  enum verdict v;
  char *rule;
  char *violation;
  char *detail;
};

struct info {
  char *key;
  char *json;     /* the value as a JSON literal */
};

static struct result *results;
static size_t nresults, aresults;
static struct info *infos;
static size_t ninfos, ainfos;

static const char *const names[] = { "PASS", "FAIL", "WARN", "SKIP" };

static void *
xrealloc (void *p, size_t n)
{
  void *q = realloc (p, n);
  if (!q) {
    fprintf (stderr, PROG ": out of memory\n");
    exit (2);
  }
  return q;
}

static char *
xstrdup (const char *s)
{
  if (!s)
    return NULL;
  char *d = strdup (s);
  if (!d) {
    fprintf (stderr, PROG ": out of memory\n");
    exit (2);
  }
  return d;
}

void
report (const char *id, enum verdict v, const char *rule,
        const char *violation, const char *fmt, ...)
{
  char detail[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (detail, sizeof detail, fmt, ap);
  va_end (ap);
  if (nresults == aresults) {
    aresults = aresults ? 2 * aresults : 64;
    results = xrealloc (results, aresults * sizeof *results);
  }
  results[nresults++] = (struct result) {
    .id = xstrdup (id), .v = v, .rule = xstrdup (rule),
    .violation = violation && *violation ? xstrdup (violation) : NULL,
    .detail = xstrdup (detail),
  };
}

/* 1 when some verdict is FAIL, else 0. */
static int
report_failed (void)
{
  for (size_t i = 0; i < nresults; i++)
    if (results[i].v == V_FAIL)
      return 1;
  return 0;
}

/* Set the server fact key to json_value, a JSON literal the caller
 * formatted (the report_info_* calls below). */
static void
report_info_raw (const char *key, const char *json_value)
{
  for (size_t i = 0; i < ninfos; i++)
    if (strcmp (infos[i].key, key) == 0) {
      free (infos[i].json);
      infos[i].json = xstrdup (json_value);
      return;
    }
  if (ninfos == ainfos) {
    ainfos = ainfos ? 2 * ainfos : 32;
    infos = xrealloc (infos, ainfos * sizeof *infos);
  }
  infos[ninfos++] = (struct info) { xstrdup (key), xstrdup (json_value) };
}

void
report_info_str (const char *key, const char *s)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp;

  if (!s) {
    report_info_raw (key, "null");
    return;
  }
  fp = open_memstream (&buf, &len);
  if (!fp) {
    fprintf (stderr, PROG ": out of memory\n");
    exit (2);
  }
  cli_print_server_text (fp, s, 1);    /* exact, controls \u-escaped */
  fclose (fp);
  report_info_raw (key, buf);
  free (buf);
}

void
report_info_int (const char *key, int64_t v)
{
  char buf[32];
  snprintf (buf, sizeof buf, "%" PRId64, v);
  report_info_raw (key, buf);
}

void
report_info_bool (const char *key, int v)
{
  report_info_raw (key, v < 0 ? "null" : v ? "true" : "false");
}

static void
count (int n[4])
{
  n[0] = n[1] = n[2] = n[3] = 0;
  for (size_t i = 0; i < nresults; i++)
    n[results[i].v]++;
}

/* Details quote server text escaped (the library's messages, cli_escape
 * in the probes), so they are printed as they are: a control character
 * left anyway becomes '?', and for XML (JUnit) so does a byte that is not
 * valid UTF-8, while the markup characters become entities. */
static void
put_clean (FILE *fp, const char *s, int xml)
{
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    unsigned cp;
    int n = xml ? cli_utf8_decode (p, &cp) : 1;

    if (n == 0 || *p < 0x20 || *p == 0x7f)
      putc ('?', fp);
    else if (xml && (*p == '&' || *p == '<' || *p == '>' || *p == '"'))
      fputs (*p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ?
             "&gt;" : "&quot;", fp);
    else {
      fwrite (p, 1, (size_t) n, fp);
      p += n - 1;
    }
  }
}

static void
print_clean (const char *s)
{
  put_clean (stdout, s, 0);
}

static void
print_human (void)
{
  int width = 0, n[4];

  for (size_t i = 0; i < nresults; i++) {
    int len = (int) strlen (results[i].id);
    if (len > width)
      width = len;
  }
  for (size_t i = 0; i < nresults; i++) {
    const struct result *r = &results[i];
    printf ("%s  %-*s  ", names[r->v], width, r->id);
    print_clean (r->detail);
    if (r->violation)
      printf (" [violation: %s]", r->violation);
    if (r->rule && *r->rule) {
      printf (" (spec: \"");
      print_clean (r->rule);
      printf ("\")");
    }
    putchar ('\n');
  }
  count (n);
  printf ("summary: %d passed, %d failed, %d warnings, %d skipped\n",
          n[V_PASS], n[V_FAIL], n[V_WARN], n[V_SKIP]);
}

static void
json_field (const char *key, const char *s, int comma)
{
  printf ("      ");
  cli_json_string (stdout, key);
  printf (": ");
  if (s)
    cli_json_string (stdout, s);
  else
    printf ("null");
  printf ("%s\n", comma ? "," : "");
}

static void
print_json (const struct config *cfg)
{
  int n[4];

  printf ("{\n  \"program\": \"" PROG "\",\n  \"target\": ");
  if (cfg->uri)
    cli_json_string (stdout, cfg->uri);
  else {
    printf ("\"profile:");
    /* profile names are plain ini section names */
    for (const char *p = cfg->profile_name; *p; p++)
      if (*p != '"' && *p != '\\' && (unsigned char) *p >= 0x20)
        putchar (*p);
    printf ("\"");
  }
  printf (",\n  \"write\": %s,\n  \"timeout_seconds\": %.3f,\n",
          cfg->write ? "true" : "false", cfg->timeout_ms / 1000.0);
  printf ("  \"server\": {");
  for (size_t i = 0; i < ninfos; i++) {
    printf ("%s\n    ", i ? "," : "");
    cli_json_string (stdout, infos[i].key);
    printf (": %s", infos[i].json);
  }
  printf ("%s},\n  \"results\": [", ninfos ? "\n  " : "");
  for (size_t i = 0; i < nresults; i++) {
    const struct result *r = &results[i];
    printf ("%s\n    {\n", i ? "," : "");
    json_field ("id", r->id, 1);
    json_field ("verdict", names[r->v], 1);
    json_field ("rule", r->rule, 1);
    json_field ("detail", r->detail, 1);
    json_field ("violation", r->violation, 0);
    printf ("    }");
  }
  count (n);
  printf ("%s],\n  \"summary\": {\"passed\": %d, \"failed\": %d, "
          "\"warnings\": %d, \"skipped\": %d}\n}\n", nresults ? "\n  " : "",
          n[V_PASS], n[V_FAIL], n[V_WARN], n[V_SKIP]);
}

/* The JUnit text of one verdict's message: the detail, the violation,
 * the rule. */
static void
junit_text (FILE *fp, const struct result *r)
{
  put_clean (fp, r->detail, 1);
  if (r->violation) {
    fputs (" [violation: ", fp);
    put_clean (fp, r->violation, 1);
    fputs ("]", fp);
  }
  if (r->rule && *r->rule) {
    fputs (" (spec: &quot;", fp);
    put_clean (fp, r->rule, 1);
    fputs ("&quot;)", fp);
  }
}

static void
junit_case (FILE *fp, const struct result *r)
{
  const char *dot = strchr (r->id, '.');
  int glen = dot ? (int) (dot - r->id) : (int) strlen (r->id);

  /* ids are the probes' own plain names: no markup in them */
  fprintf (fp, "    <testcase classname=\"%.*s\" name=\"%s\">", glen, r->id,
           r->id);
  if (r->v == V_FAIL || r->v == V_SKIP) {
    fprintf (fp, "\n      <%s message=\"", r->v == V_FAIL ? "failure" :
             "skipped");
    junit_text (fp, r);
    fprintf (fp, "\"/>\n    ");
  }
  else {
    fprintf (fp, "\n      <system-out>%s: ", names[r->v]);
    junit_text (fp, r);
    fputs ("</system-out>\n    ", fp);
  }
  fputs ("</testcase>\n", fp);
}

int
report_write_junit (const char *path)
{
  FILE *fp = fopen (path, "w");
  int n[4];

  if (!fp) {
    fprintf (stderr, PROG ": --junit %s: %m\n", path);
    return -1;
  }
  count (n);
  fprintf (fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<testsuites tests=\"%zu\" failures=\"%d\" errors=\"0\" "
           "skipped=\"%d\">\n  <testsuite name=\"" PROG "\" tests=\"%zu\" "
           "failures=\"%d\" errors=\"0\" skipped=\"%d\">\n", nresults,
           n[V_FAIL], n[V_SKIP], nresults, n[V_FAIL], n[V_SKIP]);
  for (size_t i = 0; i < nresults; i++)
    junit_case (fp, &results[i]);
  fputs ("  </testsuite>\n</testsuites>\n", fp);
  if (fclose (fp) != 0) {
    fprintf (stderr, PROG ": --junit %s: %m\n", path);
    return -1;
  }
  return 0;
}

int
report_print (const struct config *cfg)
{
  if (cfg->json)
    print_json (cfg);
  else
    print_human ();
  if (fflush (stdout) != 0)
    return 2;
  return report_failed () ? 1 : 0;
}

void
report_free (void)
{
  for (size_t i = 0; i < nresults; i++) {
    free (results[i].id);
    free (results[i].rule);
    free (results[i].violation);
    free (results[i].detail);
  }
  free (results);
  for (size_t i = 0; i < ninfos; i++) {
    free (infos[i].key);
    free (infos[i].json);
  }
  free (infos);
}

/* The spec's own words for what every reply of the run was checked
 * against (the library's rule tags name which one was broken). */
#define R_REPLIES_VALID "Transmission phase / Structured reply chunk " \
  "message types: replies use the magic of the negotiated mode (a " \
  "structured reply ... if structured replies were negotiated) and the " \
  "cookie of a request in flight; NBD_REPLY_FLAG_DONE marks the final " \
  "chunk of a reply; NBD_CMD_READ: the server MUST NOT send content " \
  "chunks that overlap ..., MUST NOT send chunks that describe data " \
  "outside the offset and length of the request, and if no error is " \
  "detected MUST send enough data chunks to cover the entire region"

void
report_summarize_violations (void)
{
  char tags[512] = "";
  size_t len = 0;
  int n = 0;

  for (size_t i = 0; i < nresults; i++) {
    const char *t = results[i].violation;
    if (!t)
      continue;
    n++;
    /* each tag once */
    int seen = 0;
    for (size_t j = 0; j < i; j++)
      if (results[j].violation && strcmp (results[j].violation, t) == 0)
        seen = 1;
    if (!seen && len + strlen (t) + 3 < sizeof tags)
      len += (size_t) snprintf (tags + len, sizeof tags - len, "%s%s",
                                len ? ", " : "", t);
  }
  if (n == 0)
    report ("replies.valid", V_PASS, R_REPLIES_VALID, NULL,
            "no reply broke a protocol rule during the run");
  else
    report ("replies.valid", V_FAIL, R_REPLIES_VALID, tags,
            "%d probe(s) saw a protocol violation: %s", n, tags);
}
