/* test_common.h - client-side helpers shared by the unit test programs
 * that run against the scripted server (fake_server.h): counting and
 * recording callbacks, bounded poll loops, handle creation, and the cmocka
 * fixture (a server plus a handle per test) with its start/finish steps.
 * All of these run on the test thread and may use cmocka assertions. */
#ifndef NBDAIO_TEST_COMMON_H
#define NBDAIO_TEST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_server.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* ---- counting callbacks ---- */
struct cbc {
  int calls;                  /* completion callback runs */
  int frees;                  /* free runs */
  int error;                  /* *error seen by the last callback */
  int ret;                    /* what the callback returns */
};
nbdaio_completion_callback cbc_completion (struct cbc *c);

struct chunk_rec {
  int calls, frees;
  const uint8_t *base;        /* the read buffer */
  uint64_t base_offset;       /* the read's offset */
  int nr;
  struct { unsigned status; size_t count; uint64_t offset;
           ptrdiff_t buf_pos; } ch[32];
};
nbdaio_chunk_callback chunk_rec_callback (struct chunk_rec *r);

struct extent_rec {
  int calls, frees;
  char ctx[64];
  uint64_t offset;
  size_t nr_entries;
  uint32_t entries[64];
};
nbdaio_extent_callback extent_rec_callback (struct extent_rec *r);

/* ---- polling ---- */
/* Poll h (bounded by ms) until every counter in cs[0..n) has run or
 * nbdaio_poll returns -1.  Returns the last nbdaio_poll result (-1 if the
 * connection died), or -2 on timeout. */
int drive (struct nbdaio_handle *h, struct cbc **cs, int n, int ms);
/* Poll until nbdaio_poll returns -1 or ms pass; returns 1 if it did. */
int drive_until_dead (struct nbdaio_handle *h, int ms);
/* Case-insensitive substring test, NULL-safe. */
int contains (const char *hay, const char *needle);
/* 1 if the scripted server s received option opt during the handshake. */
int saw_option (const struct fs *s, uint32_t opt);
/* Create a handle with a short connect timeout. */
struct nbdaio_handle *test_handle (void);
/* Connect h to s over the socketpair; returns nbdaio_connect_socket's
 * result. */
int test_connect (struct nbdaio_handle *h, struct fs *s);

/* drive (h, &cb, 1, ms): wait for one counter. */
int drive_one (struct nbdaio_handle *h, struct cbc *cb, int ms);
/* Poll until nothing is in flight (bounded); asserts it got there. */
void wait_idle (struct nbdaio_handle *h);

/* ---- fixture: one server and one handle per test ---- */
struct ctx {
  struct fs *s;
  struct nbdaio_handle *h;
};
/* cmocka setup/teardown: *state is a struct ctx.  Teardown closes the
 * handle (the server sees EOF and finishes) and frees the server. */
int ctx_setup (void **state);
int ctx_teardown (void **state);
/* Start the script and connect; returns test_connect's result. */
int ctx_start_connect (struct ctx *c, fs_script_fn fn);
/* Same, asserting that the connection succeeded. */
void ctx_start (struct ctx *c, fs_script_fn fn);
/* Close the client and wait for the server: its script must have passed. */
void ctx_finish (struct ctx *c);
#define CTX_TEST(f) cmocka_unit_test_setup_teardown (f, ctx_setup, ctx_teardown)

/* ---- common scripts ---- */
/* The default handshake, then nothing. */
int script_handshake_only (struct fs *s);
/* The default handshake, then serve s->disk until DISC or EOF. */
int script_serve (struct fs *s);

#endif /* NBDAIO_TEST_COMMON_H */
