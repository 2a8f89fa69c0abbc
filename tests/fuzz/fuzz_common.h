/* fuzz_common.h - what the libFuzzer targets share: a socketpair whose
 * server end is filled with the whole server byte stream before the client
 * reads (then EOF), a growable byte buffer to build that stream in, and the
 * commands the harnesses issue, with callbacks that check the library's
 * promises as they run (each callback at most once, never after its free,
 * chunks and extents inside the request) and fz_cmds_check_closed, which
 * checks the rest once the handle is closed (each callback exactly once,
 * each free exactly once).  A broken promise calls abort(), so libFuzzer
 * reports the input.  Nothing here blocks: the client only ever finds data
 * already written or EOF. */
#ifndef NBDAIO_FUZZ_COMMON_H
#define NBDAIO_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbdaio.h"

/* The largest server stream a harness writes (it must fit the socket
 * buffer, see fz_pair_open). */
#define FZ_STREAM_MAX (512 * 1024)

/* Report a broken promise and abort (libFuzzer saves the input). */
#define FZ_ASSERT(cond) \
  ((cond) ? (void) 0 : fz_fail (__FILE__, __LINE__, #cond))
void fz_fail (const char *file, int line, const char *what)
  __attribute__((noreturn));

/* ---- the server end ---- */
struct fz_pair {
  int server;                   /* the harness writes here */
  int client;                   /* handed to nbdaio_connect_socket */
};
/* A socketpair with a send buffer large enough for FZ_STREAM_MAX. */
void fz_pair_open (struct fz_pair *p);
/* Write without blocking; what does not fit is dropped (the same input
 * always drops the same bytes). */
void fz_pair_send (struct fz_pair *p, const void *data, size_t len);
/* No more server bytes: the client reads EOF after what was sent. */
void fz_pair_eof (struct fz_pair *p);
/* Close the server end (the client end belongs to the handle). */
void fz_pair_close (struct fz_pair *p);

/* ---- building a server stream ---- */
/* Harnesses keep their buffers in static storage and reset them for each
 * input (the memory, FZ_STREAM_MAX bytes, is allocated once). */
struct fz_buf {
  uint8_t *data;
  size_t len;
};
void fz_buf_reset (struct fz_buf *b);
/* Append; a buffer never holds more than FZ_STREAM_MAX bytes (the rest is
 * dropped). */
void fz_put (struct fz_buf *b, const void *data, size_t len);
void fz_put8 (struct fz_buf *b, uint8_t v);
void fz_put16 (struct fz_buf *b, uint16_t v);
void fz_put32 (struct fz_buf *b, uint32_t v);
void fz_put64 (struct fz_buf *b, uint64_t v);
/* len bytes of value v */
void fz_put_fill (struct fz_buf *b, uint8_t v, size_t len);
/* An option reply header (magic, option, type, length). */
void fz_put_opt_reply (struct fz_buf *b, uint32_t opt, uint32_t type,
                       uint32_t len);

/* ---- reading the fuzz input ---- */
struct fz_in {
  const uint8_t *p;
  size_t left;
};
/* false when the input is exhausted (the value is then 0) */
bool fz_get8 (struct fz_in *in, uint8_t *v);
bool fz_get16 (struct fz_in *in, uint16_t *v);
bool fz_get64 (struct fz_in *in, uint64_t *v);

/* ---- commands and their promise-checking callbacks ---- */
enum fz_kind {
  FZ_PREAD, FZ_PREAD_SR, FZ_PWRITE, FZ_FLUSH, FZ_TRIM, FZ_ZERO, FZ_CACHE,
  FZ_BLOCK_STATUS,
};

/* What the callbacks do besides checking (FZ_B_* bits of fz_run.behave). */
#define FZ_B_RETIRE         0x01u /* completion returns 1 (auto-retire) */
#define FZ_B_CHUNK_FAIL     0x02u /* first chunk/extent call returns -1 */
#define FZ_B_FOLLOWUP       0x04u /* first completion issues a pread */
#define FZ_B_RETIRE_IN_CB   0x08u /* completion retires its own cookie */
#define FZ_B_ABORT_IN_CB    0x10u /* first completion calls nbdaio_abort */
#define FZ_B_ABORT_IN_CHUNK 0x20u /* first chunk/extent calls nbdaio_abort */

#define FZ_MAX_CMDS 16

/* The pread FZ_B_FOLLOWUP issues. */
#define FZ_FOLLOWUP_OFFSET 512
#define FZ_FOLLOWUP_COUNT  512

struct fz_run;

struct fz_cmd {
  struct fz_run *run;
  enum fz_kind kind;
  uint64_t offset;
  uint32_t count;
  uint32_t flags;
  uint8_t *buf;                 /* malloc'd, exactly count bytes */
  int64_t cookie;               /* -1: refused */
  int issue_errno;
  int completion_calls, completion_frees;
  int chunk_calls, chunk_frees;
  int extent_calls, extent_frees;
  int error;                    /* what the completion callback saw */
  bool retired;                 /* the harness knows it is retired */
  uint8_t *seen;                /* FZ_PREAD_SR: 1 per byte delivered */
  uint64_t covered;             /* FZ_PREAD_SR: data + hole bytes */
};

struct fz_run {
  struct nbdaio_handle *h;
  unsigned behave;              /* FZ_B_* */
  int ncmds;
  struct fz_cmd cmds[FZ_MAX_CMDS];
  bool first_completion_done, first_chunk_done;
  const char *meta_context;     /* what extent callbacks must see */
};

/* Issue one command with every callback the call takes; returns its
 * cookie or -1.  The command is recorded in run->cmds either way. */
int64_t fz_issue (struct fz_run *run, enum fz_kind kind, uint64_t offset,
                  uint32_t count, uint32_t flags);
/* Poll without blocking until the connection is gone (bounded). */
void fz_drive (struct fz_run *run);
/* After the connection died: nothing in flight; retire what the
 * completion callbacks kept, checking command_completed against the error
 * each callback saw. */
void fz_retire_all (struct fz_run *run);
/* Close the handle, then check each callback and free ran exactly once
 * and free the buffers. */
void fz_close_and_check (struct fz_run *run);

#endif /* NBDAIO_FUZZ_COMMON_H */
