/* test_common.c - the client-side helpers shared by the unit test programs
 * (see test_common.h): counting callbacks, bounded poll loops, the handle
 * factory and the per-test fixture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test_common.h"

/* ---------------------------------------------------------------------- */
/* counting callbacks */

static int
cbc_cb (void *ud, int *error)
{
  struct cbc *c = ud;
  c->calls++;
  c->error = *error;
  return c->ret;
}

static void
cbc_free (void *ud)
{
  struct cbc *c = ud;
  c->frees++;
}

nbdaio_completion_callback
cbc_completion (struct cbc *c)
{
  return (nbdaio_completion_callback) {
    .callback = cbc_cb, .user_data = c, .free = cbc_free };
}

static int
chunk_rec_cb (void *ud, const void *subbuf, size_t count, uint64_t offset,
              unsigned status, int *error)
{
  struct chunk_rec *r = ud;
  (void) error;
  if (r->nr < (int) (sizeof r->ch / sizeof r->ch[0])) {
    r->ch[r->nr].status = status;
    r->ch[r->nr].count = count;
    r->ch[r->nr].offset = offset;
    r->ch[r->nr].buf_pos = r->base
      ? (const uint8_t *) subbuf - r->base : -1;
  }
  r->nr++;
  r->calls++;
  return 0;
}

static void
chunk_rec_free (void *ud)
{
  struct chunk_rec *r = ud;
  r->frees++;
}

nbdaio_chunk_callback
chunk_rec_callback (struct chunk_rec *r)
{
  return (nbdaio_chunk_callback) {
    .callback = chunk_rec_cb, .user_data = r, .free = chunk_rec_free };
}

static int
extent_rec_cb (void *ud, const char *metacontext, uint64_t offset,
               uint32_t *entries, size_t nr_entries, int *error)
{
  struct extent_rec *r = ud;
  (void) error;
  r->calls++;
  snprintf (r->ctx, sizeof r->ctx, "%s", metacontext ? metacontext : "");
  r->offset = offset;
  r->nr_entries = nr_entries;
  for (size_t i = 0; i < nr_entries && i < 64; i++)
    r->entries[i] = entries[i];
  return 0;
}

static void
extent_rec_free (void *ud)
{
  struct extent_rec *r = ud;
  r->frees++;
}

nbdaio_extent_callback
extent_rec_callback (struct extent_rec *r)
{
  return (nbdaio_extent_callback) {
    .callback = extent_rec_cb, .user_data = r, .free = extent_rec_free };
}

/* ---------------------------------------------------------------------- */
/* polling */

int
drive (struct nbdaio_handle *h, struct cbc **cs, int n, int ms)
{
  int64_t deadline = fs_now_ms () + ms;
  int r = 0;

  for (;;) {
    int all = 1;
    for (int i = 0; i < n; i++)
      if (cs[i]->calls == 0)
        all = 0;
    if (all)
      return r;
    if (fs_now_ms () >= deadline)
      return -2;
    r = nbdaio_poll (h, 100);
    if (r == -1)
      return -1;
  }
}

int
drive_until_dead (struct nbdaio_handle *h, int ms)
{
  int64_t deadline = fs_now_ms () + ms;

  while (fs_now_ms () < deadline) {
    if (nbdaio_poll (h, 100) == -1)
      return 1;
  }
  return 0;
}

int
contains (const char *hay, const char *needle)
{
  return hay && needle && strcasestr (hay, needle) != NULL;
}

struct nbdaio_handle *
test_handle (void)
{
  struct nbdaio_handle *h = nbdaio_create ();
  if (!h)
    return NULL;
  nbdaio_set_connect_timeout (h, 5000);
  const char *d = getenv ("NBDAIO_TEST_DEBUG");
  if (d && *d == '1')
    nbdaio_set_debug (h, 1);
  return h;
}

int
test_connect (struct nbdaio_handle *h, struct fs *s)
{
  int fd = s->client_fd;
  s->client_fd = -1;
  return nbdaio_connect_socket (h, fd);
}

int
drive_one (struct nbdaio_handle *h, struct cbc *cb, int ms)
{
  return drive (h, &cb, 1, ms);
}

void
wait_idle (struct nbdaio_handle *h)
{
  for (int i = 0; i < 40 && nbdaio_aio_in_flight (h) > 0; i++)
    assert_true (nbdaio_poll (h, 100) >= 0);
  assert_int_equal (nbdaio_aio_in_flight (h), 0);
}

/* ---------------------------------------------------------------------- */
/* fixture */

int
ctx_setup (void **state)
{
  struct ctx *c = calloc (1, sizeof *c);
  if (!c)
    return -1;
  c->s = fs_new ();
  c->h = test_handle ();
  if (!c->s || !c->h)
    return -1;
  *state = c;
  return 0;
}

int
ctx_teardown (void **state)
{
  struct ctx *c = *state;
  nbdaio_close (c->h);
  fs_free (c->s);
  free (c);
  return 0;
}

int
ctx_start_connect (struct ctx *c, fs_script_fn fn)
{
  assert_true (fs_start (c->s, fn, NULL) >= 0);
  return test_connect (c->h, c->s);
}

void
ctx_start (struct ctx *c, fs_script_fn fn)
{
  assert_int_equal (ctx_start_connect (c, fn), 0);
}

void
ctx_finish (struct ctx *c)
{
  nbdaio_close (c->h);
  c->h = NULL;
  assert_int_equal (fs_join (c->s), 0);
}

/* ---------------------------------------------------------------------- */
/* common scripts */

int
script_handshake_only (struct fs *s)
{
  return fs_default_handshake (s) == 0 ? 0 : -1;
}

int
script_serve (struct fs *s)
{
  if (fs_default_handshake (s) != 0)
    return -1;
  return fs_serve_memory (s, 1);
}

int
saw_option (const struct fs *s, uint32_t opt)
{
  for (int i = 0; i < s->nr_options && i < 32; i++)
    if (s->options[i] == opt)
      return 1;
  return 0;
}
