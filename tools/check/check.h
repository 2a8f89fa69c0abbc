/* tools/check/check.h - nbdaio-check: what the program's files share.
 *
 * nbdaio-check validates an NBD server rule by rule.  main.c parses the
 * options into a struct config; conn.c opens connections (normal or in
 * option negotiation mode) and runs commands with a deadline, turning what
 * happened into a struct outcome; the probe-*.c files each run one group
 * of probes and record one verdict per probe through report.c, which
 * prints the report (human lines or one JSON object) and writes it as
 * JUnit XML (--junit).  probe-xhdr.c holds the extended-header and
 * several-context probes.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#ifndef NBDAIO_CHECK_H
#define NBDAIO_CHECK_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "nbdaio.h"
#include "cli-common.h"           /* struct cli_settings */

#define PROG "nbdaio-check"

/* ---- configuration (main.c) ------------------------------------------ */

struct config {
  const char *uri;              /* or NULL when a profile is used */
  struct nbdaio_profile *profile;
  const char *profile_name;
  /* library settings (--NAME VALUE), applied to every handle after the
   * profile's */
  struct cli_settings settings;
  int json;
  const char *junit;            /* --junit FILE: JUnit XML there too */
  int write;                    /* --write: probes that modify data */
  uint64_t scratch_offset;      /* the area --write probes overwrite */
  uint64_t scratch_size;
  int scratch_size_given;
  unsigned timeout_ms;          /* per command, and the connect timeout */
  int verbose;
};

/* ---- verdicts (report.c) ---------------------------------------------- */

enum verdict { V_PASS, V_FAIL, V_WARN, V_SKIP };

/* Record the verdict of probe id.  rule quotes the specification (section
 * and requirement); violation is the library's rule tag when a reply
 * broke a protocol rule the library enforces (NULL otherwise); detail says
 * what was seen (printf format). */
void report (const char *id, enum verdict v, const char *rule,
             const char *violation, const char *fmt, ...)
  __attribute__ ((format (printf, 5, 6)));

/* Facts about the server for the JSON "server" object: a string (NULL:
 * null), an integer, a boolean (-1: null). */
void report_info_str (const char *key, const char *s);
void report_info_int (const char *key, int64_t v);
void report_info_bool (const char *key, int v);

/* Print the report (human or JSON, as cfg says) and return the exit
 * status: 0 when nothing failed, else 1. */
int report_print (const struct config *cfg);
/* Write the verdicts as JUnit XML to path: one <testcase> per probe
 * (classname the probe group, the id up to its first '.'; name the id),
 * <failure> for FAIL, <skipped> for SKIP, PASS and WARN passing with
 * their text in <system-out>.  0, or -1 with a message on stderr. */
int report_write_junit (const char *path);
void report_free (void);
/* The final replies.valid verdict: FAIL naming every rule tag seen by
 * any probe, else PASS. */
void report_summarize_violations (void);

/* ---- connections and commands (conn.c) -------------------------------- */

/* What happened to one command or one group of commands. */
struct outcome {
  int err;               /* 0, or the command's errno */
  int timed_out;         /* no reply within the timeout: connection ended */
  int dead;              /* the connection ended (EOF, violation, timeout) */
  char violation[48];    /* the rule tag when the server broke one, or "" */
  char message[512];     /* the connection's error, or the issue error */
};

/* A handle with the profile's and the command line's settings applied,
 * the connect timeout set and strict local checks as given, connected to
 * the server.  NULL on failure (the handle is closed), with the reason in
 * *o (violation set when the handshake broke a rule). */
struct nbdaio_handle *check_open (const struct config *cfg, unsigned strict,
                                  struct outcome *o);

/* check_open with settings of the caller's own: setup(h, arg) runs on the
 * handle before it connects and returns 0, or -1 with the library's error
 * set (then NULL, the reason in *o). */
typedef int (*check_setup_fn) (struct nbdaio_handle *h, const void *arg);
struct nbdaio_handle *check_open_with (const struct config *cfg,
                                       unsigned strict, check_setup_fn setup,
                                       const void *arg, struct outcome *o);

/* Close a handle politely when it is still connected (bounded by the
 * timeout), else at once.  NULL is allowed. */
void check_close (const struct config *cfg, struct nbdaio_handle *h);

/* Fill *o from the last library error and the handle's connection error
 * (h may be NULL). */
void outcome_from_error (struct nbdaio_handle *h, struct outcome *o);

/* A command's completion, for conn_wait. */
struct done {
  int finished;
  int err;
};

/* The completion callback for a struct done (auto-retires). */
nbdaio_completion_callback done_cb (struct done *d);

/* Wait until every one of the n commands has finished or the timeout
 * (from now) expired; on expiry the connection is aborted (ETIMEDOUT) so
 * that every command completes.  Fills *o: err is the first non-zero
 * error among them.  Returns 0 if all finished before the deadline (with
 * or without errors), -1 on a timeout or a dead connection. */
int conn_wait (const struct config *cfg, struct nbdaio_handle *h,
               struct done *d, size_t n, struct outcome *o);

/* Issue-and-wait helpers: the cookie from an aio call (or -1) and its
 * struct done.  Returns 0 when the command succeeded, -1 otherwise (*o
 * says why: o->err the command's errno, o->dead/violation/timed_out). */
int conn_run (const struct config *cfg, struct nbdaio_handle *h,
              int64_t cookie, struct done *d, struct outcome *o);

/* Synchronous commands with the timeout (each 0 or -1, *o filled). */
int c_pread (const struct config *cfg, struct nbdaio_handle *h, void *buf,
             size_t count, uint64_t offset, uint32_t flags,
             struct outcome *o);
int c_pwrite (const struct config *cfg, struct nbdaio_handle *h,
              const void *buf, size_t count, uint64_t offset, uint32_t flags,
              struct outcome *o);
int c_trim (const struct config *cfg, struct nbdaio_handle *h,
            uint64_t count, uint64_t offset, uint32_t flags,
            struct outcome *o);
int c_zero (const struct config *cfg, struct nbdaio_handle *h,
            uint64_t count, uint64_t offset, uint32_t flags,
            struct outcome *o);
int c_cache (const struct config *cfg, struct nbdaio_handle *h,
             uint64_t count, uint64_t offset, uint32_t flags,
             struct outcome *o);
int c_flush (const struct config *cfg, struct nbdaio_handle *h,
             uint32_t flags, struct outcome *o);

/* Block status: the extents of the first chunk (up to max pairs of
 * length, flags), their count in *n, the number of chunks in *chunks. */
struct extents {
  uint64_t offset;          /* of the first chunk */
  uint32_t len[64], flags[64];
  size_t n;                 /* extents kept (at most 64) */
  size_t total;             /* extents received */
  int chunks;
};
int c_block_status (const struct config *cfg, struct nbdaio_handle *h,
                    uint64_t count, uint64_t offset, uint32_t flags,
                    struct extents *e, struct outcome *o);

/* 64-bit block status (nbdaio_aio_block_status_64): the chunks per
 * context (by the name the library passes), their extents, the bytes
 * the chunks describe. */
#define BS64_MAX_CONTEXTS NBDAIO_MAX_META_CONTEXTS
struct extents64 {
  const char *name[BS64_MAX_CONTEXTS];  /* the library's, valid while h is */
  int chunks[BS64_MAX_CONTEXTS];
  int ncontexts;
  int other;                /* chunks of more contexts than fit */
  size_t extents;
  uint64_t bytes;           /* summed over all chunks */
};
/* contexts NULL: every negotiated context; else the block status is
 * filtered to those (nbdaio_aio_block_status_filter). */
int c_block_status_64 (const struct config *cfg, struct nbdaio_handle *h,
                       uint64_t count, uint64_t offset, uint32_t flags,
                       const char *const *contexts, struct extents64 *e,
                       struct outcome *o);

/* A structured read counting content chunks. */
struct chunks {
  int data, hole, error;
};
int c_pread_chunks (const struct config *cfg, struct nbdaio_handle *h,
                    void *buf, size_t count, uint64_t offset, uint32_t flags,
                    struct chunks *ch, struct outcome *o);

/* A short human description of a failed outcome ("EINVAL", "the server
 * closed the connection: ...", "protocol violation [x]: ..."). */
const char *outcome_text (const struct outcome *o);
/* The errno name (EINVAL, ENOSPC, ...) of e, or its number. */
const char *errno_name (int e);

/* Record a FAIL for a probe whose command broke a rule, timed out, or lost
 * the connection unexpectedly; returns 1 if it did (the probe is done), 0
 * when *o shows none of those. */
int report_broken (const char *id, const char *rule,
                   const struct outcome *o);

/* ---- the probes -------------------------------------------------------- */

/* The state probes share: the main connection (reopened when it dies)
 * and what the first connection found. */
struct ctx {
  const struct config *cfg;
  struct nbdaio_handle *h;      /* main connection, NULL when dead */
  struct nbdaio_handle *loose;  /* local checks off, for refusals */
  int64_t size;
  int tflags;
  int hflags;
  int64_t min_block, pref_block, max_block;
  int read_only, can_flush, can_fua, can_trim, can_zero, can_fast_zero;
  int can_cache, can_df, can_multi_conn, can_bs, sr;
  int xhdr;                     /* extended headers negotiated */
  int64_t xhdr_reply;           /* the reply to a lone raw
                                 * NBD_OPT_EXTENDED_HEADERS, -1 unknown */
  int compact_tflags;           /* transmission flags without extended
                                 * headers, -1 unknown */
  int filter_judged;            /* xhdr.payload-filter has its verdict */
  const char *protocol;
  uint64_t scratch_offset, scratch_size;  /* resolved scratch area */
  uint32_t seed;                /* distinct data per run */
};

/* The main connection (reconnecting when it died, closing the loose one
 * first; strict checks on), or
 * NULL when the server cannot be reached (a FAIL for probe id was then
 * recorded, unless id is NULL). */
struct nbdaio_handle *ctx_conn (struct ctx *c, const char *id);
/* The same for the connection without local checks (nbdaio_set_strict
 * 0), used to send what a server must refuse. */
struct nbdaio_handle *ctx_loose (struct ctx *c, const char *id);
/* Close both connections (a server may allow only one client at a
 * time, so probes that open their own connections call this first). */
void ctx_close_all (struct ctx *c);
/* Forget the connections that died. */
void ctx_check_alive (struct ctx *c);

/* The alignment probes use: max(minimum block size, 512). */
uint64_t ctx_align (const struct ctx *c);
/* The unit of the scratch area: max(alignment, 4096); slot k of the
 * scratch area starts at scratch_offset + k * unit.  Slots 0-23 are
 * single-probe areas (see the probe files), 24-87 the concurrency
 * pieces. */
uint64_t ctx_unit (const struct ctx *c);
uint64_t ctx_slot (const struct ctx *c, unsigned k);

/* Probes that modify data: SKIP (and return 1) unless --write was given
 * and the export is writable. */
int need_write (struct ctx *c, const char *id, const char *rule);

/* Fill buf with a pattern unique to (seed, tag, offset), never all zero in
 * any 512-byte block. */
void fill_pattern (void *buf, size_t n, uint64_t offset, uint32_t seed,
                   uint32_t tag);
int is_zero (const void *buf, size_t n);

/* ---- option negotiation mode (probe-handshake.c) ----------------------- */

/* What an option-mode connection negotiates before the probe takes over:
 * what the settings say (extended headers, else structured replies),
 * structured replies only, or nothing at all. */
enum opt_start { OPT_START_DEFAULT, OPT_START_NO_XHDR, OPT_START_NOTHING };

/* A connection stopped before NBD_OPT_GO, or NULL: a FAIL or SKIP for
 * each id in ids (NULL-terminated, rules alongside) was then recorded. */
struct nbdaio_handle *opt_open (struct ctx *c, const char *const *ids,
                                const char *const *rules,
                                enum opt_start start);
/* opt_open for a single probe id and its rule. */
struct nbdaio_handle *opt_open_one (struct ctx *c, const char *id,
                                    const char *rule, enum opt_start start);
/* After an nbdaio_opt_* call failed: 1 (and a FAIL recorded) when the
 * connection is gone, 0 when the server sent an error reply. */
int opt_dead (struct nbdaio_handle *h, const char *id, const char *rule);
/* The NBD_REP_* name of an option reply type. */
const char *rep_name (int64_t t);
/* Leave option mode (if still in it) and close. */
void opt_close (struct ctx *c, struct nbdaio_handle *h);

void probe_handshake (struct ctx *c);
void probe_commands (struct ctx *c);
void probe_refuse (struct ctx *c);
void probe_data (struct ctx *c);
void probe_concurrency (struct ctx *c);
void probe_xhdr (struct ctx *c);

#endif /* NBDAIO_CHECK_H */
