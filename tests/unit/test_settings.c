/* test_settings.c - unit tests of the settings enumeration
 * (nbdaio_setting_name, nbdaio_setting_help in engine/settings.c): every
 * name it yields has a help line and is a setting nbdaio_set_option and a
 * profile file accept with some ordinary value, it ends with NULL, and an
 * unknown name gets NULL + EINVAL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_common.h"

/* Ordinary values; each setting must take at least one of them. */
static const char *const candidates[] = {
  "off", "1", "10s", "/tmp", "command", "all", "none", "x",
};
#define NCAND (sizeof candidates / sizeof candidates[0])

/* The first candidate value h accepts for setting name, or NULL. */
static const char *
accepted_value (struct nbdaio_handle *h, const char *name)
{
  for (size_t i = 0; i < NCAND; i++)
    if (nbdaio_set_option (h, name, candidates[i]) == 0)
      return candidates[i];
  return NULL;
}

static void
test_every_name_is_a_setting (void **state)
{
  (void) state;
  struct nbdaio_handle *h = nbdaio_create ();
  const char *name;
  unsigned n = 0;

  assert_non_null (h);
  for (unsigned i = 0; (name = nbdaio_setting_name (i)) != NULL; i++, n++) {
    const char *help = nbdaio_setting_help (name);
    assert_non_null (help);
    assert_true (help[0] != '\0' && strchr (help, '\n') == NULL);
    if (!accepted_value (h, name))
      fail_msg ("setting %s takes none of the ordinary values", name);
  }
  assert_true (n >= 20);
  assert_null (nbdaio_setting_name (n));
  assert_null (nbdaio_setting_name (~0u));
  nbdaio_close (h);
}

static void
test_unknown_name (void **state)
{
  (void) state;
  errno = 0;
  assert_null (nbdaio_setting_help ("no-such-setting"));
  assert_int_equal (errno, EINVAL);
  assert_non_null (strstr (nbdaio_get_error (), "'no-such-setting'"));
  errno = 0;
  assert_null (nbdaio_setting_help (NULL));
  assert_int_equal (errno, EINVAL);
}

/* A profile with every enumerated setting (at a value the handle took)
 * loads and applies: the enumeration names what profiles accept. */
static void
test_profile_takes_every_setting (void **state)
{
  (void) state;
  char path[] = "/tmp/nbdaio-settings-XXXXXX";
  int fd = mkstemp (path);
  struct nbdaio_handle *h = nbdaio_create ();
  const char *name;

  assert_true (fd >= 0);
  assert_non_null (h);
  FILE *fp = fdopen (fd, "w");
  assert_non_null (fp);
  fprintf (fp, "[p]\nsocket = /nonexistent\n");
  for (unsigned i = 0; (name = nbdaio_setting_name (i)) != NULL; i++)
    fprintf (fp, "%s = %s\n", name, accepted_value (h, name));
  assert_int_equal (fclose (fp), 0);

  struct nbdaio_profile *p = nbdaio_profile_load (path, "p");
  if (!p)
    fail_msg ("profile with every setting: %s", nbdaio_get_error ());
  assert_int_equal (nbdaio_profile_apply (p, h), 0);
  nbdaio_profile_free (p);
  nbdaio_close (h);
  unlink (path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_every_name_is_a_setting),
    cmocka_unit_test (test_unknown_name),
    cmocka_unit_test (test_profile_takes_every_setting),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
