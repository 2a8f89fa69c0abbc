/* test_reconnect.c - reconnect-delay where the scripted server can say it:
 * the setting's values by name (seconds, fractional, with units; bad ones
 * refused), only before connecting, and a socket given to
 * nbdaio_connect_socket never reconnects (the library cannot open it
 * again): a lost connection fails its commands at once with ENOTCONN, as
 * without the setting.  The reconnects themselves need a server that can
 * be restarted: tests/integration/test-reconnect.sh and
 * tests/fio/test-reconnect.sh. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

static void
test_setting_values (void **state)
{
  static const char *const good[] = { "0", "10", "0.5", "1.25", "250ms",
                                      "2s", "1m" };
  static const char *const bad[] = { "", "-1", "abc", "5x", "nan", "inf",
                                     "1e10", " 5", "0x10" };
  struct nbdaio_handle *h = nbdaio_create ();

  (void) state;
  assert_non_null (h);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal (nbdaio_set_option (h, "reconnect-delay", good[i]), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal (nbdaio_set_option (h, "reconnect-delay", bad[i]), -1);
    assert_int_equal (nbdaio_get_errno (), EINVAL);
    assert_true (contains (nbdaio_get_error (), "reconnect-delay"));
  }
  assert_int_equal (nbdaio_set_reconnect_delay (NULL, 1000), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  nbdaio_close (h);
}

/* Handshake, read one request, then close without answering. */
static int
script_drop (struct fs *s)
{
  struct fs_req r;

  if (fs_default_handshake (s) != 0 || fs_read_request (s, &r) == -1)
    return -1;
  free (r.data);
  fs_abort (s);
  return 0;
}

static void
test_adopted_socket (void **state)
{
  struct ctx *c = *state;
  static uint8_t buf[4096];
  struct cbc cb = { .ret = 1 };
  struct nbdaio_stats st;
  int64_t t0;

  assert_int_equal (nbdaio_set_reconnect_delay (c->h, 5000), 0);
  ctx_start (c, script_drop);
  /* a setting made after connecting is refused */
  assert_int_equal (nbdaio_set_reconnect_delay (c->h, 0), -1);
  assert_int_equal (nbdaio_get_errno (), EINVAL);
  assert_true (nbdaio_aio_pread (c->h, buf, sizeof buf, 0,
                                 cbc_completion (&cb), 0) >= 1);
  t0 = fs_now_ms ();
  drive_one (c->h, &cb, 3000);
  assert_int_equal (cb.calls, 1);
  assert_int_equal (cb.frees, 1);
  assert_int_equal (cb.error, ENOTCONN);
  assert_true (fs_now_ms () - t0 < 1000);       /* not reconnect-delay */
  assert_false (nbdaio_is_connected (c->h));
  assert_int_equal (nbdaio_get_fd (c->h), -1);
  assert_int_equal (nbdaio_get_stats (c->h, &st, sizeof st), sizeof st);
  assert_int_equal (st.reconnects, 0);
  assert_int_equal (st.commands_resent, 0);
  assert_int_equal (st.downtime_ms, 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_setting_values),
    CTX_TEST (test_adopted_socket),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
