/* test_rules.c - the table of protocol rules (core/rules.c): every rule
 * has a well-formed, unique tag, a section and a text; README's "Protocol
 * rules enforced" table (its path is argv[1]) holds exactly the same rows;
 * and a violation's tag reaches nbdaio_get_violation, survives what keeps
 * an error (a prefix, save and restore) and goes with the next error. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nbdaio.h"
#include "error.h"
#include "rules.h"

static const char *readme_path;

static int
tag_well_formed (const char *tag)
{
  size_t n = strspn (tag, "abcdefghijklmnopqrstuvwxyz0123456789-");

  return n > 0 && tag[n] == '\0' && tag[0] != '-' && tag[n - 1] != '-' &&
         !strstr (tag, "--");
}

static void
test_table_complete (void **state)
{
  (void) state;
  assert_null (rule_get (RULE_NONE));
  assert_null (rule_get (RULE_COUNT));
  for (int i = 0; i < RULE_COUNT; i++) {
    const struct rule *r = rule_get (i);
    assert_non_null (r);
    assert_non_null (r->tag);       /* an id without an entry */
    assert_true (tag_well_formed (r->tag));
    assert_non_null (r->section);
    assert_true (r->section[0] != '\0');
    assert_non_null (r->text);
    assert_true (r->text[0] != '\0');
    assert_null (strchr (r->text, '|'));        /* fits a README cell */
    for (int j = 0; j < i; j++)
      assert_string_not_equal (rule_get (j)->tag, r->tag);
  }
}

/* README's rules table, one row per rule: "| `tag` | section | text |" */
struct row {
  char tag[64], section[128], text[512];
};

/* Copy the next cell of *p ("| cell |...") into buf, trimmed; 0 if none. */
static int
next_cell (const char **p, char *buf, size_t size)
{
  const char *s = *p, *end;
  size_t n;

  if (*s != '|' || !(end = strchr (s + 1, '|')))
    return 0;
  for (s++; *s == ' '; s++)
    ;
  for (n = end - s; n > 0 && s[n - 1] == ' '; n--)
    ;
  if (n >= size)
    return 0;
  memcpy (buf, s, n);
  buf[n] = '\0';
  *p = end;
  return 1;
}

static int
parse_row (const char *line, struct row *r)
{
  char tag[sizeof r->tag + 2];
  size_t n;

  if (!next_cell (&line, tag, sizeof tag) ||
      !next_cell (&line, r->section, sizeof r->section) ||
      !next_cell (&line, r->text, sizeof r->text) || strcmp (line, "|\n"))
    return 0;
  n = strlen (tag);
  if (n < 3 || tag[0] != '`' || tag[n - 1] != '`')
    return 0;
  memcpy (r->tag, tag + 1, n - 2);
  r->tag[n - 2] = '\0';
  return 1;
}

/* The rows of the table under "### Protocol rules enforced"; returns how
 * many (fails the test on a row it cannot read). */
static int
read_readme_rows (struct row *rows, int max)
{
  FILE *f = fopen (readme_path, "r");
  char line[1024];
  int n = 0, in_section = 0, in_table = 0;

  if (!f)
    fail_msg ("cannot open %s", readme_path);
  while (fgets (line, sizeof line, f)) {
    if (!in_section) {
      in_section = strcmp (line, "### Protocol rules enforced\n") == 0;
      continue;
    }
    if (line[0] != '|') {
      if (in_table || line[0] == '#')
        break;
      continue;
    }
    if (!in_table++ || strncmp (line, "|---", 4) == 0)
      continue;                       /* the header and its rule */
    if (n == max || !parse_row (line, &rows[n]))
      fail_msg ("README rules table: cannot read row \"%s\"", line);
    n++;
  }
  fclose (f);
  return n;
}

static void
test_readme_agrees (void **state)
{
  struct row rows[2 * RULE_COUNT];
  int n = read_readme_rows (rows, 2 * RULE_COUNT), found[RULE_COUNT] = { 0 };

  (void) state;
  assert_true (n > 0);
  for (int k = 0; k < n; k++) {
    int i;
    for (i = 0; i < RULE_COUNT; i++)
      if (strcmp (rows[k].tag, rule_get (i)->tag) == 0)
        break;
    if (i == RULE_COUNT)
      fail_msg ("README names rule [%s], which the library does not have",
                rows[k].tag);
    if (found[i]++)
      fail_msg ("README lists [%s] twice", rows[k].tag);
    if (strcmp (rows[k].section, rule_get (i)->section) ||
        strcmp (rows[k].text, rule_get (i)->text))
      fail_msg ("[%s]: README says \"%s\" / \"%s\", the library \"%s\" / "
                "\"%s\"", rows[k].tag, rows[k].section, rows[k].text,
                rule_get (i)->section, rule_get (i)->text);
  }
  for (int i = 0; i < RULE_COUNT; i++)
    if (!found[i])
      fail_msg ("README does not list [%s]", rule_get (i)->tag);
}

static void
test_violation_tag (void **state)
{
  struct saved_error saved;

  (void) state;
  assert_int_equal (set_violation (RULE_CHUNK_OVERLAP, "chunk %d", 2), -1);
  assert_int_equal (nbdaio_get_errno (), EPROTO);
  assert_string_equal (nbdaio_get_violation (), "chunk-overlap");
  assert_non_null (strstr (nbdaio_get_error (),
                           "protocol violation [chunk-overlap]: chunk 2"));

  error_prefix ("pread");                   /* the same error, told more */
  assert_string_equal (nbdaio_get_violation (), "chunk-overlap");

  error_save (&saved);
  set_error (EINVAL, "a callback failed");  /* not a violation */
  assert_null (nbdaio_get_violation ());
  assert_int_equal (error_restore (&saved), -1);
  assert_string_equal (nbdaio_get_violation (), "chunk-overlap");
  assert_int_equal (nbdaio_get_errno (), EPROTO);

  set_violation (RULE_EXT_BS_STATUS, "x");  /* the last one counts */
  assert_string_equal (nbdaio_get_violation (), "ext-bs-status");
  error_raise (ENOTCONN, RULE_NONE, "connection is dead");
  assert_null (nbdaio_get_violation ());
  assert_int_equal (nbdaio_get_errno (), ENOTCONN);
  error_raise (EPROTO, RULE_HS_MAGIC, "protocol violation [hs-magic]: x");
  assert_string_equal (nbdaio_get_violation (), "hs-magic");
}

int
main (int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_table_complete),
    cmocka_unit_test (test_readme_agrees),
    cmocka_unit_test (test_violation_tag),
  };

  if (argc != 2) {
    fprintf (stderr, "usage: %s README.md\n", argv[0]);
    return EXIT_FAILURE;
  }
  readme_path = argv[1];
  return cmocka_run_group_tests (tests, NULL, NULL);
}
