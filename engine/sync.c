/* sync.c - synchronous wrappers: issue one command and poll until it
 * completes; and nbdaio_shutdown (drain, NBD_CMD_DISC, close).  They wait
 * only in nbdaio_poll, which never sleeps past the request deadline
 * (deadline.c): with a request timeout none of them waits longer. */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "internal.h"

/* A synchronous call waits, so a callback of h may not make one (it would
 * re-enter the reply reader): then -1 with EBUSY before anything is issued,
 * and the callbacks passed are released as when issuing fails. */
static int
sync_refused (struct nbdaio_handle *h, const char *call,
              nbdaio_chunk_callback *chunk, nbdaio_extent_callback *extent)
{
  if (handle_check_state (h, IN_ANY_STATE | NOT_IN_CALLBACK, call) == 0)
    return 0;
  callbacks_release (chunk, extent, NULL);
  return -1;
}

/* Poll until the command with this cookie completes; retire it. */
static int
wait_for (struct nbdaio_handle *h, int64_t cookie)
{
  if (cookie == -1)
    return -1;
  for (;;) {
    int r = nbdaio_aio_command_completed (h, cookie);
    if (r == 1)
      return 0;
    if (r == -1)
      return -1;
    if (nbdaio_poll (h, -1) == -1) {
      /* the command was failed with the connection; retire it */
      struct saved_error e;
      error_save (&e);
      nbdaio_aio_command_completed (h, cookie);
      return error_restore (&e);
    }
  }
}

int
nbdaio_pread (struct nbdaio_handle *h, void *buf, size_t count,
              uint64_t offset, uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_pread (h, buf, count, offset,
                                        NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_pread_structured (struct nbdaio_handle *h, void *buf, size_t count,
                         uint64_t offset, nbdaio_chunk_callback chunk,
                         uint32_t flags)
{
  if (sync_refused (h, __func__, &chunk, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_pread_structured (h, buf, count, offset, chunk,
                                                   NBDAIO_NULL_COMPLETION,
                                                   flags));
}

int
nbdaio_pwrite (struct nbdaio_handle *h, const void *buf, size_t count,
               uint64_t offset, uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_pwrite (h, buf, count, offset,
                                         NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_trim (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
             uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_trim (h, count, offset,
                                       NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_zero (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
             uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_zero (h, count, offset,
                                       NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_cache (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
              uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_cache (h, count, offset,
                                        NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_flush (struct nbdaio_handle *h, uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, NULL) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_flush (h, NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_block_status (struct nbdaio_handle *h, uint64_t count, uint64_t offset,
                     nbdaio_extent_callback extent, uint32_t flags)
{
  if (sync_refused (h, __func__, NULL, &extent) == -1)
    return -1;
  return wait_for (h, nbdaio_aio_block_status (h, count, offset, extent,
                                               NBDAIO_NULL_COMPLETION, flags));
}

int
nbdaio_shutdown (struct nbdaio_handle *h)
{
  if (h && h->state == H_DEAD && h->disc_sent)
    return 0;                   /* already disconnected cleanly */
  if (h && h->in_flight &&
      handle_check_state (h, IN_ANY_STATE | NOT_IN_CALLBACK, __func__) == -1)
    return -1;                  /* it would wait, re-entering the reader */
  if (nbdaio_aio_disconnect (h) == -1)
    return -1;
  while (h->state == H_CONNECTED || h->state == H_RECONNECTING)
    if (nbdaio_poll (h, -1) == -1)
      return -1;
  return 0;
}
