/* test_version.c - the version macros of nbdaio-version.h and
 * nbdaio_get_version agree with each other and with the project version
 * meson passes as the first argument. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "nbdaio.h"

static const char *project_version;

static void
test_version_string (void **state)
{
  char built[64];

  (void) state;
  snprintf (built, sizeof built, "%d.%d.%d", NBDAIO_VERSION_MAJOR,
            NBDAIO_VERSION_MINOR, NBDAIO_VERSION_MICRO);
  assert_string_equal (built, NBDAIO_VERSION_STRING);
  assert_non_null (nbdaio_get_version ());
  assert_string_equal (nbdaio_get_version (), NBDAIO_VERSION_STRING);
  assert_string_equal (nbdaio_get_version (), project_version);
}

static void
test_check_version (void **state)
{
  (void) state;
  assert_true (NBDAIO_CHECK_VERSION (NBDAIO_VERSION_MAJOR,
                                     NBDAIO_VERSION_MINOR,
                                     NBDAIO_VERSION_MICRO));
  assert_true (NBDAIO_CHECK_VERSION (0, 0, 0));
  assert_false (NBDAIO_CHECK_VERSION (NBDAIO_VERSION_MAJOR,
                                      NBDAIO_VERSION_MINOR,
                                      NBDAIO_VERSION_MICRO + 1));
  assert_false (NBDAIO_CHECK_VERSION (NBDAIO_VERSION_MAJOR,
                                      NBDAIO_VERSION_MINOR + 1, 0));
  assert_false (NBDAIO_CHECK_VERSION (NBDAIO_VERSION_MAJOR + 1, 0, 0));
}

int
main (int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_version_string),
    cmocka_unit_test (test_check_version),
  };
  if (argc != 2) {
    fprintf (stderr, "usage: %s PROJECT-VERSION\n", argv[0]);
    return 2;
  }
  project_version = argv[1];
  return cmocka_run_group_tests (tests, NULL, NULL);
}
