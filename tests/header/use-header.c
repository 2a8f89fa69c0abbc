/* tests/header/use-header.c - nbdaio.h as a program uses it, compiled
 * (not linked) by the header-* tests as strict ISO C11 and as C++11 with
 * every warning an error: the header must not need GNU extensions, and a
 * C++ program must be able to use it, NBDAIO_NULL_COMPLETION included. */
#include "nbdaio.h"

static int
on_done (void *user_data, int *error)
{
  (void) user_data;
  return *error == 0;
}

int
main (void)
{
  struct nbdaio_handle *h = nbdaio_create ();
  char buf[512];
  nbdaio_completion_callback done = NBDAIO_NULL_COMPLETION;
  int64_t a, b;

  done.callback = on_done;
  a = nbdaio_aio_pread (h, buf, sizeof buf, 0, NBDAIO_NULL_COMPLETION, 0);
  b = nbdaio_aio_pread_structured (h, buf, sizeof buf, 0, NBDAIO_NULL_CHUNK,
                                   done, 0);
  nbdaio_close (h);
  return a < 0 && b < 0 && NBDAIO_CHECK_VERSION (0, 0, 0) ? 0 : 1;
}
