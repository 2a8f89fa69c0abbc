/* fake_server.h - a scripted in-process NBD server for the unit tests (the
 * client-side helpers the test programs share are in test_common.h).
 *
 * A test calls fs_start() with a script function: it gets back the client
 * end of a socketpair and hands it to nbdaio_connect_socket(); the script
 * runs in its own thread on the other end, using the fs_* helpers below to
 * speak (or deliberately break) the protocol.  Every read on the server side
 * is bounded by a poll timeout, so a script never hangs a test.  When the
 * script returns, the server half-closes its end, drains what the client
 * still sends until EOF (bounded), and closes.  Scripts must not call cmocka
 * assertions (they run in another thread): a failing helper records a
 * message with fs_fail() and returns -1; fs_join() reports it.
 */
#ifndef NBDAIO_TEST_FAKE_SERVER_H
#define NBDAIO_TEST_FAKE_SERVER_H

#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#include "nbdaio.h"
#include "proto.h"

#define FS_TIMEOUT_MS 4000      /* every server-side read waits at most this */
#define FS_MAX_OPT_DATA 8192
#define FS_MAX_REQS 64

struct fs;
typedef int (*fs_script_fn) (struct fs *s);

/* What the default handshake does (fs_hs_default() fills in the usual). */
struct fs_hs {
  uint16_t hflags;            /* handshake flags sent in the greeting */
  int sr;                     /* 1: ACK STRUCTURED_REPLY, 0: ERR_UNSUP */
  int ext;                    /* 1: ACK EXTENDED_HEADERS (default 0:
                               * ERR_UNSUP); then requests are read and
                               * replies sent in the extended format */
  const char *meta;           /* context to answer SET_META_CONTEXT with
                               * (NULL: answer with a bare ACK) */
  uint32_t meta_id;
  const char *meta2;          /* a second context, selected when asked for
                               * anywhere in the queries (NULL: none) */
  uint32_t meta2_id;
  uint64_t size;
  uint16_t tflags;
  int go_unsup;               /* answer GO with ERR_UNSUP, then expect
                               * NBD_OPT_EXPORT_NAME */
  uint32_t bs_min, bs_pref, bs_max; /* send INFO_BLOCK_SIZE if bs_min != 0 */
  const char *name;           /* send INFO_NAME if non-NULL */
  const char *desc;           /* send INFO_DESCRIPTION if non-NULL */
};

struct fs_req {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t count;
  uint64_t length;            /* the length field (64-bit when extended) */
  uint8_t *data;              /* write payload (malloc'd, or NULL) */
};

struct fs {
  int fd;                     /* server end */
  int client_fd;              /* client end until handed over, else -1 */
  pthread_t thread;
  int started, joined;
  fs_script_fn script;
  void *arg;                  /* for the test's own use */
  int result;                 /* script's return value */
  char err[512];              /* first failure */
  int trickle;                /* write one byte at a time */

  struct fs_hs hs;

  /* what the server learned during the handshake */
  uint32_t client_flags;
  int no_zeroes;              /* NO_ZEROES in effect */
  int sr_negotiated;
  int ext_negotiated;         /* extended headers (sr_negotiated too) */
  int meta_negotiated;
  char export_name[256];      /* as requested by GO / EXPORT_NAME */
  char meta_query[256];       /* first SET_META_CONTEXT query */
  int nr_options;
  uint32_t options[32];       /* option numbers in order */

  /* transmission phase bookkeeping (fs_read_request / fs_serve_memory) */
  int nr_reqs;
  struct fs_req reqs[FS_MAX_REQS]; /* copies without payload */
  int disc_seen;

  int sig[2];                 /* test -> script wake-ups (a pipe) */

  /* memory disk for fs_serve_memory */
  uint8_t *disk;
  uint64_t disk_size;
};

/* ---- lifecycle (test thread) ---- */
/* Allocate a server with the default handshake config. */
struct fs *fs_new (void);
/* Create the socketpair and start the script thread.  Returns the client fd
 * (also kept in s->client_fd) or -1. */
int fs_start (struct fs *s, fs_script_fn fn, void *arg);
/* Wait for the script thread; returns the script's result (0 = fine).  On
 * failure s->err says why. */
int fs_join (struct fs *s);
/* Join (if needed), close anything still open and free. */
void fs_free (struct fs *s);
void fs_hs_default (struct fs_hs *hs);
/* Monotonic clock in milliseconds (for bounded waits). */
int64_t fs_now_ms (void);

/* ---- script helpers (server thread); all return 0 or -1 ---- */
int fs_fail (struct fs *s, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
int fs_read_exact (struct fs *s, void *buf, size_t n);
int fs_write (struct fs *s, const void *buf, size_t n);
/* Let the script go on: fs_signal (test thread) wakes one
 * fs_wait_signal (script, bounded wait; 0 or -1). */
void fs_signal (struct fs *s);
int fs_wait_signal (struct fs *s);
/* Close the server end at once (no half-close, no draining): unread
 * client data makes the client see a reset. */
void fs_abort (struct fs *s);
/* Wait (bounded) until the client closes its end: 0 on EOF. */
int fs_wait_eof (struct fs *s);

int fs_send_greeting (struct fs *s, uint16_t hflags);
int fs_send_greeting_magic (struct fs *s, uint64_t magic1, uint64_t magic2,
                            uint16_t hflags);
int fs_read_client_flags (struct fs *s, uint32_t *flags);
/* Reads one option; data goes to a malloc'd buffer (*data, free it) of *len
 * bytes (NUL-terminated for convenience). */
int fs_read_option (struct fs *s, uint32_t *opt, uint8_t **data,
                    uint32_t *len);
int fs_send_opt_reply (struct fs *s, uint32_t opt, uint32_t type,
                       const void *payload, uint32_t len);
int fs_send_opt_reply_magic (struct fs *s, uint64_t magic, uint32_t opt,
                             uint32_t type, const void *payload,
                             uint32_t len);
int fs_send_ack (struct fs *s, uint32_t opt);
int fs_send_info_export (struct fs *s, uint32_t opt, uint64_t size,
                         uint16_t tflags);
int fs_send_info_name (struct fs *s, uint32_t opt, const char *name);
int fs_send_info_desc (struct fs *s, uint32_t opt, const char *desc);
int fs_send_info_block_size (struct fs *s, uint32_t opt, uint32_t min,
                             uint32_t pref, uint32_t max);
int fs_send_meta_context (struct fs *s, uint32_t opt, uint32_t id,
                          const char *name);
int fs_send_oldstyle (struct fs *s, uint64_t size, uint32_t flags);
int fs_send_export_name_reply (struct fs *s, uint64_t size, uint16_t tflags,
                               int zeroes);

/* Handshake option loop, configured by s->hs.  hook (may be NULL) sees
 * every option first: return 0 to let the default handling run, 1 if it
 * answered the option itself (loop continues), 2 to end the script's
 * handshake at once (e.g. a violation was sent), -1 on failure.  Returns
 * 0 once the transmission phase is reached, 1 if the hook ended it, -1 on
 * failure. */
typedef int (*fs_opt_hook) (struct fs *s, uint32_t opt, const uint8_t *data,
                            uint32_t len);
int fs_handshake_hook (struct fs *s, fs_opt_hook hook);
/* fs_handshake_hook (s, NULL) */
int fs_default_handshake (struct fs *s);
/* Parse the export name of a GO/INFO/SET_META_CONTEXT option. */
int fs_opt_export_name (const uint8_t *data, uint32_t len, char *name,
                        size_t namelen);

/* Transmission phase. */
int fs_read_request (struct fs *s, struct fs_req *req);
/* fs_default_handshake, then fs_read_request. */
int fs_handshake_and_read (struct fs *s, struct fs_req *req);
/* Read n requests into s->reqs (payloads freed). */
int fs_read_requests (struct fs *s, int n);
int fs_send_simple (struct fs *s, uint32_t error, uint64_t cookie,
                    const void *data, uint32_t len);
int fs_send_simple_magic (struct fs *s, uint32_t magic, uint32_t error,
                          uint64_t cookie, const void *data, uint32_t len);
int fs_send_chunk (struct fs *s, uint16_t flags, uint16_t type,
                   uint64_t cookie, const void *payload, uint32_t len);
int fs_send_chunk_data (struct fs *s, uint16_t flags, uint64_t cookie,
                        uint64_t offset, const void *data, uint32_t len);
int fs_send_chunk_hole (struct fs *s, uint16_t flags, uint64_t cookie,
                        uint64_t offset, uint32_t len);
int fs_send_chunk_error (struct fs *s, uint16_t flags, uint16_t type,
                         uint64_t cookie, uint32_t error, const char *msg);
int fs_send_chunk_none (struct fs *s, uint64_t cookie);
/* An error reply to req: an ERROR chunk if structured replies are on,
 * else a simple reply. */
int fs_send_error_reply (struct fs *s, const struct fs_req *req,
                         uint32_t err);
/* Extended headers (s->ext_negotiated): a 32-byte reply header with the
 * given offset and 64-bit length field, then len bytes of payload.
 * fs_send_chunk uses it with the offset of the request the cookie names
 * (s->reqs) and length len. */
int fs_send_ext_chunk (struct fs *s, uint16_t flags, uint16_t type,
                       uint64_t cookie, uint64_t offset, uint64_t length,
                       const void *payload, uint32_t len);
/* NBD_REPLY_TYPE_BLOCK_STATUS_EXT: n pairs (length, status), the
 * descriptor count field set to count. */
int fs_send_chunk_bs_ext (struct fs *s, uint16_t flags, uint64_t cookie,
                          uint32_t ctx_id, const uint64_t *extents, size_t n,
                          uint32_t count);
/* A successful reply without payload: a simple reply, or with extended
 * headers a NONE chunk (simple replies are not allowed there). */
int fs_send_ok (struct fs *s, uint64_t cookie);
/* extents: n pairs (length, flags) */
int fs_send_chunk_bs (struct fs *s, uint16_t flags, uint64_t cookie,
                      uint32_t ctx_id, const uint32_t *extents, size_t n);
/* Serve requests against s->disk until NBD_CMD_DISC (returns 0) or
 * EOF/timeout (returns -1 unless allow_eof). */
int fs_serve_memory (struct fs *s, int allow_eof);
/* Fill buf with the test pattern of the bytes at offset..offset+n. */
void fs_pattern (void *buf, size_t n, uint64_t offset);
uint8_t fs_pattern_byte (uint64_t offset);

#endif /* NBDAIO_TEST_FAKE_SERVER_H */
