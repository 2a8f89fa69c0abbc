/* nbdaio.h - the public API of libnbdaio, an asynchronous NBD client.
 *
 * This header is the whole public surface: fio-plugin/, tools/ and examples/
 * include nothing else.  Every exported symbol is prefixed nbdaio_.
 *
 * Conventions (they mirror libnbd's aio calls):
 *  - Calls returning int return 0 (or a non-negative value) on success and -1
 *    on error; calls returning int64_t return a value >= 0 (a cookie >= 1 for
 *    commands) or -1.  After -1, nbdaio_get_error() returns a message naming
 *    what was wrong and nbdaio_get_errno() an errno value; both are
 *    thread-local and describe the last failing call in this thread.
 *  - A handle is not thread-safe: use one handle from one thread at a time
 *    (the library takes no locks).
 *  - Commands may only be issued on a connected handle that has finished the
 *    handshake.
 *  - Every command issued with a completion callback gets exactly one call of
 *    its callback (also when the connection dies: error ENOTCONN, EPROTO
 *    when the server broke the protocol, ETIMEDOUT when the request timeout
 *    ended it) and every non-NULL free function
 *    passed to a call runs exactly once, also when issuing fails.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#ifndef NBDAIO_H
#define NBDAIO_H

#include <stdint.h>
#include <stddef.h>

#include "nbdaio-version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NBDAIO_API __attribute__((visibility("default")))
#else
#define NBDAIO_API
#endif

struct nbdaio_handle;

/* ---- callbacks ------------------------------------------------------- */

/* Runs once when a command completes.  *error is 0 on success or an errno
 * value; the callback may change it.  Return 1 to retire the command at once
 * (nbdaio_aio_command_completed then no longer knows its cookie), 0 to keep
 * it until nbdaio_aio_command_completed retires it.  When the server's
 * reply broke a protocol rule that fails only this command
 * (nbdaio_set_reply_violations), *error is EPROTO and, in the callback,
 * nbdaio_get_violation () is the rule's tag and nbdaio_get_error () says
 * "protocol violation [tag]: " what the server sent and the rule's
 * section of the NBD specification (nbdaio_aio_command_completed reports
 * the same error). */
typedef struct {
  int (*callback) (void *user_data, int *error);
  void *user_data;
  void (*free) (void *user_data);
} nbdaio_completion_callback;

/* Runs for each data, hole or error chunk of a structured read.  subbuf
 * points into the caller's buffer (for a hole, already zeroed); status is one
 * of NBDAIO_READ_*.  Return -1 (and set *error) to fail the command. */
typedef struct {
  int (*callback) (void *user_data, const void *subbuf, size_t count,
                   uint64_t offset, unsigned status, int *error);
  void *user_data;
  void (*free) (void *user_data);
} nbdaio_chunk_callback;

/* Runs for each block-status chunk: entries holds nr_entries / 2 pairs
 * (length, flags) in host byte order, the first starting at offset (in
 * the context base:allocation the flags are NBDAIO_STATE_* bits). */
typedef struct {
  int (*callback) (void *user_data, const char *metacontext, uint64_t offset,
                   uint32_t *entries, size_t nr_entries, int *error);
  void *user_data;
  void (*free) (void *user_data);
} nbdaio_extent_callback;

/* One extent of a 64-bit block status reply. */
typedef struct {
  uint64_t length;
  uint64_t flags;
} nbdaio_extent64;

/* Runs for each block-status chunk of nbdaio_aio_block_status_64:
 * nr_entries extents, the first starting at offset, for the context
 * metacontext (one chunk per negotiated context and command). */
typedef struct {
  int (*callback) (void *user_data, const char *metacontext, uint64_t offset,
                   nbdaio_extent64 *entries, size_t nr_entries, int *error);
  void *user_data;
  void (*free) (void *user_data);
} nbdaio_extent64_callback;

#ifdef __cplusplus             /* C++ has no compound literals */
#define NBDAIO_NULL_COMPLETION (nbdaio_completion_callback ())
#define NBDAIO_NULL_CHUNK      (nbdaio_chunk_callback ())
#else
#define NBDAIO_NULL_COMPLETION ((nbdaio_completion_callback) { 0 })
#define NBDAIO_NULL_CHUNK      ((nbdaio_chunk_callback) { 0 })
#endif

/* status values passed to a chunk callback */
#define NBDAIO_READ_DATA   1
#define NBDAIO_READ_HOLE   2
#define NBDAIO_READ_ERROR  3

/* block status flags of the base:allocation context */
#define NBDAIO_STATE_HOLE  1
#define NBDAIO_STATE_ZERO  2

/* Command flags.  These are the NBD wire values (the one definition of them
 * in the project). */
#define NBDAIO_CMD_FLAG_FUA        (1u << 0)
#define NBDAIO_CMD_FLAG_NO_HOLE    (1u << 1)
#define NBDAIO_CMD_FLAG_DF         (1u << 2)
#define NBDAIO_CMD_FLAG_REQ_ONE    (1u << 3)
#define NBDAIO_CMD_FLAG_FAST_ZERO  (1u << 4)

/* nbdaio_aio_get_direction() bits */
#define NBDAIO_DIRECTION_READ  1u
#define NBDAIO_DIRECTION_WRITE 2u

/* nbdaio_get_block_size() selectors */
#define NBDAIO_SIZE_MINIMUM   0
#define NBDAIO_SIZE_PREFERRED 1
#define NBDAIO_SIZE_MAXIMUM   2

/* nbdaio_set_strict() bits: local checks made before a command is sent.
 * Reply validation (the protocol rules of the server's side) is always on;
 * turning these off lets a test send what a server must refuse. */
#define NBDAIO_STRICT_COMMANDS 0x01u  /* command advertised, not read-only */
#define NBDAIO_STRICT_FLAGS    0x02u  /* flags advertised and legal */
#define NBDAIO_STRICT_BOUNDS   0x04u  /* inside the export, non-zero length */
#define NBDAIO_STRICT_ALIGN    0x08u  /* aligned to the minimum block size */
#define NBDAIO_STRICT_PAYLOAD  0x10u  /* payload <= maximum block size */
#define NBDAIO_STRICT_ALL      0x1fu

/* ---- version --------------------------------------------------------- */

/* Return the version of the library running, as "MAJOR.MINOR.MICRO":
 * NBDAIO_VERSION_STRING of the library's build, which may be newer than
 * the NBDAIO_VERSION_* macros (nbdaio-version.h) a program was compiled
 * with.  The string is static.  Never fails; safe from any thread. */
NBDAIO_API const char *nbdaio_get_version (void);

/* ---- errors ---------------------------------------------------------- */

/* The message of the last error in this thread, or NULL if none.  Text
 * the server sent (an option refusal's message, a name it returned) is
 * quoted escaped as by nbdaio_escape_string, so the message is safe to
 * print. */
NBDAIO_API const char *nbdaio_get_error (void);
/* The errno of the last error in this thread, or 0 if none. */
NBDAIO_API int nbdaio_get_errno (void);
/* The protocol rule behind this thread's last error: when the last error
 * in this thread is a protocol violation by the server (errno EPROTO, message
 * "protocol violation [tag]: ..."), the tag of the rule it broke
 * ("chunk-overlap"; README's "Protocol rules enforced" lists every tag with
 * its section of the NBD specification); NULL when there is no error or it is
 * not a violation (an error that only quotes one, such as "connection is dead:
 * protocol violation [...]", is not: see nbdaio_get_connection_violation).
 * The string is static.  Never fails. */
NBDAIO_API const char *nbdaio_get_violation (void);

/* ---- protocol values ------------------------------------------------- */

/* The NBD specification's numbers for what crosses this API: the one
 * definition of them in the project (the library's wire code uses these
 * too).  The names are the specification's with NBD_ replaced by
 * NBDAIO_; nbdaio_option_name and the other calls below give the
 * specification's names back. */

/* Handshake flags of the server (nbdaio_get_handshake_flags). */
#define NBDAIO_HANDSHAKE_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBDAIO_HANDSHAKE_FLAG_NO_ZEROES      (1u << 1)

/* Transmission flags of the export (nbdaio_get_transmission_flags). */
#define NBDAIO_FLAG_HAS_FLAGS            (1u << 0)
#define NBDAIO_FLAG_READ_ONLY            (1u << 1)
#define NBDAIO_FLAG_SEND_FLUSH           (1u << 2)
#define NBDAIO_FLAG_SEND_FUA             (1u << 3)
#define NBDAIO_FLAG_ROTATIONAL           (1u << 4)
#define NBDAIO_FLAG_SEND_TRIM            (1u << 5)
#define NBDAIO_FLAG_SEND_WRITE_ZEROES    (1u << 6)
#define NBDAIO_FLAG_SEND_DF              (1u << 7)
#define NBDAIO_FLAG_CAN_MULTI_CONN       (1u << 8)
#define NBDAIO_FLAG_SEND_RESIZE          (1u << 9)
#define NBDAIO_FLAG_SEND_CACHE           (1u << 10)
#define NBDAIO_FLAG_SEND_FAST_ZERO       (1u << 11)
#define NBDAIO_FLAG_BLOCK_STATUS_PAYLOAD (1u << 12)

/* Options (nbdaio_opt_raw, nbdaio_option_name). */
#define NBDAIO_OPT_EXPORT_NAME       1
#define NBDAIO_OPT_ABORT             2
#define NBDAIO_OPT_LIST              3
#define NBDAIO_OPT_STARTTLS          5
#define NBDAIO_OPT_INFO              6
#define NBDAIO_OPT_GO                7
#define NBDAIO_OPT_STRUCTURED_REPLY  8
#define NBDAIO_OPT_LIST_META_CONTEXT 9
#define NBDAIO_OPT_SET_META_CONTEXT  10
#define NBDAIO_OPT_EXTENDED_HEADERS  11

/* Option reply types (what nbdaio_opt_raw and nbdaio_get_opt_reply_type
 * return; nbdaio_option_reply_name): NBDAIO_REP_FLAG_ERROR is set in every
 * error type. */
#define NBDAIO_REP_ACK               1
#define NBDAIO_REP_SERVER            2
#define NBDAIO_REP_INFO              3
#define NBDAIO_REP_META_CONTEXT      4
#define NBDAIO_REP_FLAG_ERROR        (UINT32_C (1) << 31)
#define NBDAIO_REP_ERR_UNSUP         (NBDAIO_REP_FLAG_ERROR | 1)
#define NBDAIO_REP_ERR_POLICY        (NBDAIO_REP_FLAG_ERROR | 2)
#define NBDAIO_REP_ERR_INVALID       (NBDAIO_REP_FLAG_ERROR | 3)
#define NBDAIO_REP_ERR_PLATFORM      (NBDAIO_REP_FLAG_ERROR | 4)
#define NBDAIO_REP_ERR_TLS_REQD      (NBDAIO_REP_FLAG_ERROR | 5)
#define NBDAIO_REP_ERR_UNKNOWN       (NBDAIO_REP_FLAG_ERROR | 6)
#define NBDAIO_REP_ERR_SHUTDOWN      (NBDAIO_REP_FLAG_ERROR | 7)
#define NBDAIO_REP_ERR_BLOCK_SIZE_REQD (NBDAIO_REP_FLAG_ERROR | 8)
#define NBDAIO_REP_ERR_TOO_BIG       (NBDAIO_REP_FLAG_ERROR | 9)
#define NBDAIO_REP_ERR_EXT_HEADER_REQD (NBDAIO_REP_FLAG_ERROR | 10)

/* ---- names of wire values -------------------------------------------- */

/* Name a value seen on the wire as the NBD specification does.  Each
 * returns a static string: the name of an option (nbdaio_opt_raw's option:
 * "NBD_OPT_GO"), an option reply type (what nbdaio_opt_raw and
 * nbdaio_get_opt_reply_type return: "NBD_REP_ACK", "NBD_REP_ERR_UNSUP"), a
 * command type ("NBD_CMD_READ"), a structured reply chunk type
 * ("NBD_REPLY_TYPE_OFFSET_DATA") or an error value ("NBD_EIO").  Each
 * returns NULL for a value the library does not know.  Never fail; safe
 * from any thread. */
NBDAIO_API const char *nbdaio_option_name (uint32_t option);
NBDAIO_API const char *nbdaio_option_reply_name (uint32_t reply_type);
NBDAIO_API const char *nbdaio_command_name (uint16_t type);
NBDAIO_API const char *nbdaio_reply_type_name (uint16_t type);
NBDAIO_API const char *nbdaio_error_name (uint32_t error);

/* ---- untrusted server text ------------------------------------------- */

/* Strings a server chose (export names and descriptions, the names and
 * descriptions of nbdaio_opt_list, the context names of
 * nbdaio_opt_list_meta_context) are handed over raw: they may hold any
 * byte but NUL, including terminal escape sequences and invalid UTF-8.
 * Escape them before printing them or writing them to a log. */

/* Escape untrusted server text for printing.  nbdaio_escape_string copies the
 * len bytes at s (s may be NULL when len is 0) to buf, keeping printable ASCII
 * and the UTF-8 encoding of printable code points, writing a backslash as "\\"
 * and every other byte as "\xNN" (two lowercase hex digits): C0 controls and
 * NUL, DEL, C1 controls (U+0080-U+009F), invisible and direction-changing
 * format characters (U+200B-U+200F, U+2028-U+202E, U+2060-U+206F, U+FEFF,
 * U+FFF9-U+FFFB), the noncharacters U+FFFE-U+FFFF, and every byte of
 * invalid UTF-8 (stray continuation bytes, truncated or overlong
 * sequences, surrogates, code points above U+10FFFF).  The output holds
 * at most size - 1 bytes and a NUL (when size > 0; buf may be NULL when
 * size is 0), never cuts an escape or a character in two, and is at most
 * 4 * len bytes long.  Returns the length of the whole escaped text
 * (without the NUL), as snprintf does: the text was cut when the result is
 * >= size.  Never fails. */
NBDAIO_API size_t nbdaio_escape_string (char *buf, size_t size,
                                        const char *s, size_t len);

/* ---- handle lifecycle and settings ----------------------------------- */

/* Create a handle.  Returns NULL (ENOMEM) on failure.  NBDAIO_DEBUG=1 in the
 * environment turns on protocol tracing to stderr. */
NBDAIO_API struct nbdaio_handle *nbdaio_create (void);

/* Close the handle: sends a disconnect if the connection is idle, completes
 * every queued or in-flight command with ENOTCONN, runs every pending free
 * function, closes the socket and frees the handle.  NULL is allowed.  Must
 * not be called from inside a callback.  It does not wait for the server's
 * replies, but it may block briefly: sending NBD_CMD_DISC on an idle
 * connection waits at most 1 s for the socket, and on a negotiating handle
 * (opt mode) sending NBD_OPT_ABORT and reading its acknowledgement take at
 * most 1 s together. */
NBDAIO_API void nbdaio_close (struct nbdaio_handle *h);

/* Settings: only before connecting (else -1, EINVAL). */
/* Set the export name to ask for (default "").  Setting it makes the export
 * explicit: nbdaio_connect_uri then refuses a URI naming another one.
 * Allowed while negotiating too (opt mode).  Returns 0, or -1: EINVAL (h
 * NULL or connected, name NULL or longer than 4096 bytes), ENOMEM. */
NBDAIO_API int nbdaio_set_export_name (struct nbdaio_handle *h,
                                       const char *name);
/* Set whether to ask for structured replies (default 1).  Returns 0, or -1
 * (EINVAL) if h is NULL or has connected. */
NBDAIO_API int nbdaio_set_request_structured_replies (struct nbdaio_handle *h,
                                                      int request);
/* Set whether to ask for extended headers (NBD_OPT_EXTENDED_HEADERS,
 * before structured replies; default 1): 32-byte requests and replies
 * with 64-bit lengths.
 * Only with structured replies on; a server that refuses them gets
 * NBD_OPT_STRUCTURED_REPLY instead.  0 never asks (a server requiring
 * them then refuses the export: NBD_REP_ERR_EXT_HEADER_REQD).  Returns 0,
 * or -1 (EINVAL) if h is NULL or has connected. */
NBDAIO_API int nbdaio_set_request_extended_headers (struct nbdaio_handle *h,
                                                    int request);
/* Set the meta context to negotiate when structured replies are on
 * (default "base:allocation"); NULL negotiates none.  Replaces the whole list
 * nbdaio_add_meta_context builds.  Allowed while negotiating too (opt
 * mode).  Returns 0, or -1: EINVAL (h NULL or connected, name empty or
 * longer than 4096 bytes), ENOMEM. */
NBDAIO_API int nbdaio_set_meta_context (struct nbdaio_handle *h,
                                        const char *name);
/* The most meta contexts one handle asks for. */
#define NBDAIO_MAX_META_CONTEXTS 8
/* Ask for one more meta context (after those set or added before; the
 * first when there is none): NBD_OPT_SET_META_CONTEXT names them all, and
 * each block status reply then holds one chunk per context the server
 * selected, each passed to the extent callback with its name.  Returns 0,
 * or -1: EINVAL (h NULL or connected, name NULL, empty, longer than 4096
 * bytes, or asked already), E2BIG (NBDAIO_MAX_META_CONTEXTS reached). */
NBDAIO_API int nbdaio_add_meta_context (struct nbdaio_handle *h,
                                        const char *name);
/* Set the connect + handshake timeout in milliseconds (default 30000;
 * 0 = none): one deadline for the whole connect call (socket, TLS, every
 * option).  Returns 0, or -1 (EINVAL) if h is NULL or has connected. */
NBDAIO_API int nbdaio_set_connect_timeout (struct nbdaio_handle *h,
                                           unsigned ms);
/* Set the request timeout in milliseconds (default 0 = none).  A command sent
 * to the server that has no final reply after ms (or, while the server does
 * not read, a request that could not be sent whole within ms) ends the
 * connection, since NBD cannot cancel a command: every command in flight
 * completes with ETIMEDOUT (callbacks once, frees once) and the call that
 * noticed returns -1 with ETIMEDOUT and a message naming the oldest command
 * (type, offset, length) and the timeout, which is also
 * nbdaio_get_connection_error.  It is checked, with the resolution of the
 * coarse monotonic clock (a few ms), by nbdaio_poll, nbdaio_aio_notify_read,
 * nbdaio_aio_notify_write and so by the synchronous wrappers and
 * nbdaio_shutdown; an event loop of its own waits at most
 * nbdaio_aio_get_timeout.  Only before connecting (else -1, EINVAL). */
NBDAIO_API int nbdaio_set_request_timeout (struct nbdaio_handle *h,
                                           unsigned ms);
/* Set how long a lost connection is reconnected for (default 0 = off).  With
 * ms > 0, a connection made by nbdaio_connect_unix, _tcp or _uri that is lost
 * (EOF, reset, a request timeout) is re-established to the same target with
 * the same settings and TLS for up to ms milliseconds; the commands in flight
 * are checked against what the server then advertises (one no longer allowed
 * fails with the error issuing it would get: EPERM, EINVAL, ERANGE) and sent
 * again in their first order (a flush after what was sent before it).
 * Commands not completed within ms fail with the error of the loss (ENOTCONN,
 * ETIMEDOUT).  A protocol violation (EPROTO), a soft disconnect (ESHUTDOWN,
 * nbdaio_aio_disconnect, nbdaio_shutdown), nbdaio_abort and a socket given to
 * nbdaio_connect_socket never reconnect.  Attempts run inside nbdaio_poll,
 * the notify calls and the synchronous calls (at once, then after 50 ms
 * doubling up to 1 s; each connect and handshake may block up to what is left
 * of ms and the connect timeout).  While reconnecting the handle counts as
 * connected for issuing (new commands queue and go out after the resent
 * ones), nbdaio_is_connected returns 0, nbdaio_get_fd returns a timer
 * descriptor that becomes readable when the next attempt is due (direction
 * READ, nbdaio_aio_get_timeout: ms until then), and afterwards the new
 * socket: an event loop must take nbdaio_get_fd again after each notify call.
 * The setting by name (reconnect-delay) is in seconds, fractional allowed, or
 * with a unit (ms, s, m).  Only before connecting (else -1, EINVAL).  Counted
 * in nbdaio_get_stats (reconnects, commands_resent, downtime_ms). */
NBDAIO_API int nbdaio_set_reconnect_delay (struct nbdaio_handle *h,
                                           unsigned ms);
/* Set the maximum number of commands issued and not yet retired (default
 * 256, 1..65536).  Issuing beyond it fails with EAGAIN.  Returns 0, or -1
 * with EINVAL (h NULL or connected, n out of range). */
NBDAIO_API int nbdaio_set_max_in_flight (struct nbdaio_handle *h,
                                         unsigned n);
/* Set or get the local checks made before a command is sent:
 * NBDAIO_STRICT_* bits (default NBDAIO_STRICT_ALL); may be changed at any
 * time.  nbdaio_set_strict returns 0, or -1 (EINVAL) if h is NULL or flags
 * has a bit outside NBDAIO_STRICT_ALL; nbdaio_get_strict returns the bits
 * (0 if h is NULL). */
NBDAIO_API int nbdaio_set_strict (struct nbdaio_handle *h, unsigned flags);
NBDAIO_API unsigned nbdaio_get_strict (struct nbdaio_handle *h);
/* nbdaio_set_reply_violations() policies. */
#define NBDAIO_VIOLATIONS_COMMAND 0
#define NBDAIO_VIOLATIONS_CLOSE   1
/* Set whether a reply violation fails the command or the connection: what a
 * protocol violation of the server found in a command's final reply,
 * consumed whole (the stream in sync, one command concerned), does
 * (README "Protocol rules enforced": simple-reply-read, chunk-coverage,
 * chunk-error-length in a final error chunk; every other violation ends
 * the connection under either policy).  NBDAIO_VIOLATIONS_COMMAND (default):
 * that command completes with EPROTO, its completion callback, then
 * nbdaio_aio_command_completed (so a synchronous call such as
 * nbdaio_pread) seeing nbdaio_get_violation () = the rule's tag and a
 * message naming what the server sent (with the command's cookie) and the
 * rule's section of the NBD specification; the connection and the other
 * commands live on;
 * counted in nbdaio_get_stats (command_violations).
 * NBDAIO_VIOLATIONS_CLOSE: the connection ends, as for any other
 * violation (what a conformance checker wants).  Returns 0, or -1 with
 * EINVAL for another policy or after connecting. */
NBDAIO_API int nbdaio_set_reply_violations (struct nbdaio_handle *h,
                                            int policy);
/* Set whether commands longer than one request may carry are split (default
 * 1; only before connecting, else -1, EINVAL).  With it on, a read, write or
 * cache longer than the maximum payload (nbdaio_get_max_payload; a cache
 * carries none, but servers refuse one above it: qemu-nbd does) and, without
 * extended headers, a trim or zero longer than the 32-bit wire length is sent
 * as several requests ("pieces"), each aligned to the minimum block size
 * (trim, zero and cache pieces to the preferred one), and completes as one
 * command: see "asynchronous commands".  With extended headers a trim or zero
 * of any length is one request.  Block status is never split.  0 sends every
 * command as one request: the refusals of "asynchronous commands" apply
 * (ERANGE).  Returns 0, or -1 (EINVAL) if h is NULL or connected. */
NBDAIO_API int nbdaio_set_split (struct nbdaio_handle *h, int split);
/* Whether commands are split.  Returns 1 if split is on, 0 if off, -1
 * (EINVAL) if h is NULL. */
NBDAIO_API int nbdaio_get_split (struct nbdaio_handle *h);
/* Set whether queued commands leave on their own (default 1; off, submitting
 * is the caller's choice, as io_uring_submit is in liburing).  On: a queued
 * command leaves at the next nbdaio_aio_submit, nbdaio_aio_notify_write,
 * nbdaio_aio_notify_read or nbdaio_poll, whichever comes first.  Off: it
 * leaves only once the caller submits (nbdaio_aio_submit, or nbdaio_poll,
 * which submits before it waits), never as a side effect of a read or of
 * nbdaio_aio_notify_write; what was submitted and did not fit the socket
 * goes on with any notify call (nbdaio_aio_get_direction then says WRITE;
 * it never does for unsubmitted commands).  So the caller batches: issue
 * several commands, then submit them in one system call.  The one
 * exception: a split command's later pieces, which wait for piece slots,
 * leave as earlier pieces complete (the command was submitted).  The
 * request timeout's clock starts when a request leaves, not when it is
 * queued: an unsubmitted command never times out.  With max-in-flight
 * commands issued and unsubmitted, the next issue fails with EAGAIN: submit
 * and reap.  Allowed at any time; turning it off counts what is queued
 * already as submitted.  Returns 0, or -1 (EINVAL) if h is NULL. */
NBDAIO_API int nbdaio_set_auto_submit (struct nbdaio_handle *h,
                                       int auto_submit);
/* Whether auto-submit is on.  Returns 1 if it is, 0 if off, -1 (EINVAL)
 * if h is NULL. */
NBDAIO_API int nbdaio_get_auto_submit (struct nbdaio_handle *h);
/* Set how many connections nbdaio_group_create opens from h: 1 (default) to
 * NBDAIO_GROUP_MAX (setting "conns"; also a profile key).  Returns 0, or
 * -1 (EINVAL) if h is NULL or has connected or n is out of range. */
NBDAIO_API int nbdaio_set_conns (struct nbdaio_handle *h, unsigned n);
/* Set whether a group may go without multi-conn: let nbdaio_group_create open
 * several connections although the server does not advertise multi-conn
 * (default 0; setting "force-multi-conn"): the connections may then see each
 * other's writes late, and a group flush is sent on every connection.
 * Returns 0, or -1 (EINVAL) if h is NULL or has connected. */
NBDAIO_API int nbdaio_set_force_multi_conn (struct nbdaio_handle *h,
                                            int force);
/* Turn protocol tracing to stderr on or off (default: NBDAIO_DEBUG=1 in
 * the environment).  Unlike the settings around it, allowed at any time.
 * Returns 0, or -1 (EINVAL) if h is NULL. */
NBDAIO_API int nbdaio_set_debug (struct nbdaio_handle *h, int debug);

/* TLS modes for nbdaio_set_tls(). */
#define NBDAIO_TLS_DISABLE 0   /* never TLS (default) */
#define NBDAIO_TLS_ALLOW   1   /* TLS when the server offers it */
#define NBDAIO_TLS_REQUIRE 2   /* TLS or fail; never falls back to plaintext */

/* Set or get the TLS mode (NBDAIO_TLS_*; an nbds:// URI sets REQUIRE).
 * nbdaio_set_tls returns 0, or -1 (EINVAL) if h is NULL or has connected
 * or mode is another value; nbdaio_get_tls returns the mode, or -1
 * (EINVAL) if h is NULL. */
NBDAIO_API int nbdaio_set_tls (struct nbdaio_handle *h, int mode);
NBDAIO_API int nbdaio_get_tls (struct nbdaio_handle *h);
/* Set the x509 certificate directory: a directory holding ca-cert.pem (trusted
 * CAs) and optionally client-cert.pem + client-key.pem, laid out as nbdkit and
 * qemu do.  NULL (the default) trusts the system store and sends no client
 * certificate.  The files are read when connecting, as for the PSK file below
 * (certificates up to 1 MiB; client-key.pem as a key).  Returns as
 * nbdaio_set_tls_psk_file. */
NBDAIO_API int nbdaio_set_tls_certificates (struct nbdaio_handle *h,
                                            const char *dir);
/* Set the TLS pre-shared key file: a key file in psktool's format (lines
 * "user:hexkey").  Setting one selects PSK instead of x509.  Key files are
 * read when connecting, before anything is sent, and the connect fails naming
 * the file unless it is a regular file (EISDIR for a directory, EINVAL for a
 * FIFO, device or socket) of at most 64 KiB (EFBIG) that group and others
 * cannot read (EACCES, with the chmod 600 fix).  The library wipes its copies
 * of the key once gnutls has it.  NULL unsets it.  Returns 0, or -1: EINVAL
 * (h NULL or connected, path empty or longer than 4096 bytes), ENOMEM.
 * The same holds for nbdaio_set_tls_certificates, _username and
 * _hostname. */
NBDAIO_API int nbdaio_set_tls_psk_file (struct nbdaio_handle *h,
                                        const char *path);
/* Set the PSK user name (default: the URI's user@, else the login name).
 * Returns as nbdaio_set_tls_psk_file. */
NBDAIO_API int nbdaio_set_tls_username (struct nbdaio_handle *h,
                                        const char *name);
/* Set the name the server certificate must carry (default: the TCP host
 * name; "localhost" for unix sockets).  Returns as
 * nbdaio_set_tls_psk_file. */
NBDAIO_API int nbdaio_set_tls_hostname (struct nbdaio_handle *h,
                                        const char *name);
/* Set whether the server certificate is verified (default 1).  0 still
 * encrypts but accepts any certificate: for tests only.  Returns 0, or -1
 * (EINVAL) if h is NULL or has connected. */
NBDAIO_API int nbdaio_set_tls_verify_peer (struct nbdaio_handle *h,
                                           int verify);
/* Whether the connection runs over TLS.  Returns, from the greeting on
 * (also while negotiating and after the connection ended), 1 if it does,
 * 0 if not; -1 (EINVAL) before connecting or if h is NULL. */
NBDAIO_API int nbdaio_get_tls_negotiated (struct nbdaio_handle *h);

/* Set one setting by name from a string (as profiles and the fio plugin
 * do).  Names and values:
 *   export            export name
 *   tls               off | allow | require
 *   tls-certificates  directory (see nbdaio_set_tls_certificates)
 *   tls-psk-file      file
 *   tls-username      PSK user name
 *   tls-hostname      name the server certificate must carry
 *   tls-verify-peer   boolean
 *   structured        boolean: ask for structured replies
 *   extended-headers  boolean (nbdaio_set_request_extended_headers)
 *   meta-context      context name, or "none"
 *   connect-timeout   duration (bare number = milliseconds; units ms, s, m)
 *   request-timeout   duration, as connect-timeout (0 = none)
 *   max-in-flight     1..65536
 *   strict            all | none | a boolean (all / none) | a comma list
 *                     of commands, flags, bounds, align, payload
 *   reply-violations  command | close (nbdaio_set_reply_violations)
 *   split             boolean (nbdaio_set_split)
 *   auto-submit       boolean (nbdaio_set_auto_submit)
 *   reconnect-delay   seconds, fractional allowed, or a duration with unit
 *                     (nbdaio_set_reconnect_delay)
 *   conns             1..64 (nbdaio_set_conns)
 *   force-multi-conn  boolean (nbdaio_set_force_multi_conn)
 *   debug             boolean
 * Booleans are yes/no, true/false, on/off or 1/0.  Returns 0, or -1 with
 * a message naming the setting and the bad value: EINVAL (a bad value, or
 * the setting's own error, as after connecting), ENOENT (an unknown
 * name). */
NBDAIO_API int nbdaio_set_option (struct nbdaio_handle *h, const char *name,
                                  const char *value);

/* List the settings nbdaio_set_option accepts: the name of setting i,
 * counting from 0; callable at any time, without a handle.  Returns a
 * static string, or NULL when i is past the last setting.  Never fails. */
NBDAIO_API const char *nbdaio_setting_name (unsigned i);

/* Describe one setting of nbdaio_set_option in one line: what it takes and
 * its accepted values; callable at any time, without a handle.  Returns a static string, or NULL with an error
 * naming the cause.  Errors: EINVAL (name is NULL or not a setting). */
NBDAIO_API const char *nbdaio_setting_help (const char *name);

/* ---- connecting ------------------------------------------------------ */

/* Each connects and runs the whole handshake, blocking up to the connect
 * timeout.  Return 0, or -1 with an error naming the cause (bad URI,
 * connection refused, unknown export, TLS required, protocol violation...).
 * A unix socket whose listen queue is full is tried again until the
 * timeout (then ETIMEDOUT, "the server's listen queue stayed full").
 * A handle connects once: a second call fails with EINVAL.  Errors:
 * EINVAL (h NULL, connected already, a bad argument or URI), ETIMEDOUT
 * (the connect timeout passed), EPROTO (the server broke the protocol),
 * and the errno of a failed system call (ECONNREFUSED, ...). */

/* Connect to the server a URI names.  URIs:
 *   nbd[s]://[user@]host[:port][/export][?query]
 *   nbd[s]+unix://[user@]/[export]?socket=PATH[&query]
 * A URI without an export (or with an empty one) asks for the export set
 * with nbdaio_set_export_name (default ""); a URI naming an export other
 * than one set explicitly fails with EINVAL naming both, so I/O never goes
 * to an export the caller did not mean.  nbds sets TLS to REQUIRE and
 * user@ is the PSK user name.  Query parameters: socket,
 * tls-certificates, tls-psk-file, tls-hostname, tls-verify-peer (as
 * nbdaio_set_option). */
NBDAIO_API int nbdaio_connect_uri (struct nbdaio_handle *h, const char *uri);
/* Connect to the unix domain socket at path.  Returns 0, or -1 as the
 * connect calls above; besides: EINVAL (path NULL or empty), ENAMETOOLONG
 * (path longer than a socket address holds), the connect's errno
 * (ENOENT, ECONNREFUSED, ...). */
NBDAIO_API int nbdaio_connect_unix (struct nbdaio_handle *h,
                                    const char *path);
/* Connect over TCP to host and port.  port may be NULL (10809); a
 * numeric port must be 1 to 65535 (EINVAL), a name is looked up as a
 * service. */
NBDAIO_API int nbdaio_connect_tcp (struct nbdaio_handle *h, const char *host,
                                   const char *port);
/* Run the handshake over an already connected stream socket.  The handle
 * then owns it (it is closed by nbdaio_close, also on failure).
 * Returns 0, or -1 as the connect calls above; besides: EBADF (fd < 0),
 * fcntl's errno (fd cannot be made non-blocking).  When the call fails
 * before taking fd (EINVAL: h NULL or connected already; EBADF), fd stays
 * the caller's. */
NBDAIO_API int nbdaio_connect_socket (struct nbdaio_handle *h, int fd);

/* ---- connection profiles ---------------------------------------------- */

/* A profile is one [section] of an ini file; the section name is the
 * profile name.  Keys ("key = value"; lines starting with ; or # are
 * comments):
 *   uri               an NBD URI (as nbdaio_connect_uri)
 *   socket            a unix socket path
 *   host, port        a TCP server (port 1..65535, default 10809)
 *   timeout           duration (as connect-timeout): shorthand for
 *                     request-timeout and connect-timeout, each unless
 *                     the profile gives it by its own name
 *   and every setting nbdaio_set_option knows (export, tls,
 *   tls-certificates, tls-psk-file, tls-username, conns, ...), same
 *   syntax.
 * A profile names its server by exactly one of: uri, socket, or host (with
 * an optional port).  Each key at most once per profile, each section at
 * most once per file, no keys before the first section. */
struct nbdaio_profile;

/* Read the profile called name from a profile file.
 * path NULL looks in order for: $NBDAIO_CONFIG; else
 * $XDG_CONFIG_HOME/nbdaio/profiles.ini (when $XDG_CONFIG_HOME is absolute)
 * or $HOME/.config/nbdaio/profiles.ini; else /etc/nbdaio/profiles.ini.
 * The first that exists is used alone (files are not merged).  The whole
 * file is checked, every key of every section, not only the profile asked
 * for.  Returns a profile to free with nbdaio_profile_free, or NULL:
 *   ENOENT  an explicit path or $NBDAIO_CONFIG does not exist ("profile
 *           file F does not exist"); no file found ("no profile file found
 *           (looked for ...)"); "F: no profile [name] (profiles in it: a,
 *           b)"
 *   EINVAL  a bad file, as "F:LINE: what": unknown key 'k' in [s]; a bad
 *           value ("F:LINE: port: 0 is out of range (1 to 65535)"); empty
 *           value; key outside any [section]; 'k' given twice in [s];
 *           section [s] given twice; syntax error; line too long; "F:LINE:
 *           [s]: 'host' cannot be combined with 'uri' (line N) ..."; "F:LINE:
 *           [s]: no server given: set uri, socket or host"
 *           a NUL byte ("F:LINE: NUL byte at column N"); F is not a
 *           regular file ("F is a FIFO (named pipe), not a regular file";
 *           a device, a socket)
 *   EISDIR  F is a directory
 *   EFBIG   F is larger than 1 MiB
 *   other   the file cannot be opened or read (errno of the failure), or
 *           ENOMEM. */
NBDAIO_API struct nbdaio_profile *nbdaio_profile_load (const char *path,
                                                       const char *name);
/* Free a profile.  NULL is allowed. */
NBDAIO_API void nbdaio_profile_free (struct nbdaio_profile *p);
/* The file the profile was read from (valid until nbdaio_profile_free),
 * or NULL if p is NULL.  Never fails otherwise. */
NBDAIO_API const char *nbdaio_profile_get_path (const struct nbdaio_profile *p);
/* The value of key in the profile.  It is as written in the file (already
 * checked), or NULL if the profile does not set it. */
NBDAIO_API const char *nbdaio_profile_get (const struct nbdaio_profile *p,
                                           const char *key);
/* Read a numeric profile-only key (port, timeout in milliseconds) into
 * *out.  Returns 1 if the profile sets it, 0
 * if not (*out untouched), -1 (EINVAL) for another key. */
NBDAIO_API int nbdaio_profile_get_number (const struct nbdaio_profile *p,
                                          const char *key, uint64_t *out);
/* Apply the profile's settings to h: every handle setting of the profile
 * with nbdaio_set_option, and timeout as request-timeout and connect-timeout
 * (each unless the profile sets it by its own name).
 * uri/socket/host/port are not applied.  Must be
 * called before connecting.  Returns 0, or -1 with the setting's error
 * prefixed "F:LINE: [name]: " (EINVAL when h is already connected). */
NBDAIO_API int nbdaio_profile_apply (const struct nbdaio_profile *p,
                                     struct nbdaio_handle *h);
/* Connect h to the profile's server: uri with nbdaio_connect_uri (a
 * profile's export applies to a URI without one; a URI naming another
 * export is an error, as nbdaio_connect_uri says),
 * socket with nbdaio_connect_unix, host and port with nbdaio_connect_tcp.
 * Settings are not applied here: call nbdaio_profile_apply first (and make
 * your own settings after it to override the profile's).  Returns 0, or -1
 * with the connect error prefixed "F: [name]: ". */
NBDAIO_API int nbdaio_profile_connect (const struct nbdaio_profile *p,
                                       struct nbdaio_handle *h);
/* Load a profile, apply it and connect h: nbdaio_profile_load (path, name)
 * (path may be NULL; the two strings in the same order as there), then
 * nbdaio_profile_apply and nbdaio_profile_connect.  Returns 0, or -1 with
 * the error of whichever failed (EINVAL if h is NULL). */
NBDAIO_API int nbdaio_connect_profile (struct nbdaio_handle *h,
                                       const char *path, const char *name);

/* ---- option negotiation mode (for tools that probe a server) ---------- */

/* Set whether the connect calls stop at option negotiation (opt mode; default
 * 0).  When 1, a connect call stops after the greeting, the client flags and,
 * as the settings ask, NBD_OPT_STARTTLS (with the TLS handshake) and
 * NBD_OPT_STRUCTURED_REPLY: it returns 0 with the handle negotiating.  The
 * nbdaio_opt_* calls then each run one option exchange, blocking up to the
 * connect timeout (counted afresh per call); nbdaio_opt_go enters
 * transmission and nbdaio_opt_abort leaves.  A server that cannot negotiate
 * (oldstyle, or newstyle without the fixed flag) is connected as usual:
 * nbdaio_is_negotiating is then 0.  Only before connecting (else -1, EINVAL).
 */
NBDAIO_API int nbdaio_set_opt_mode (struct nbdaio_handle *h, int enable);
/* Whether the handle is negotiating: 1 while it is, 0 otherwise (also for
 * NULL). */
NBDAIO_API int nbdaio_is_negotiating (struct nbdaio_handle *h);

/* Common to the nbdaio_opt_* calls below:
 *   - -1 EINVAL when the handle is not negotiating;
 *   - a server error reply (NBD_REP_ERR_*) fails the call with -1, the
 *     handle staying negotiating; the message names the option, the reply
 *     type and the server's text; errno: ENOTSUP (the server replied
 *     ERR_UNSUP, ERR_TLS_REQD or ERR_PLATFORM), EPERM (the server replied
 *     ERR_POLICY), EINVAL (the server replied ERR_INVALID,
 *     ERR_BLOCK_SIZE_REQD or an unknown error type), ENOENT (the server
 *     replied ERR_UNKNOWN), ESHUTDOWN (the server replied ERR_SHUTDOWN),
 *     ERANGE (the server replied ERR_TOO_BIG); the exact type is
 *     nbdaio_get_opt_reply_type;
 *   - a lost connection, a timeout, or a reply breaking the protocol
 *     ("[rule]" in the message, as for the handshake) fails with -1 and
 *     ends the connection (the handle is then dead, nbdaio_get_connection_error
 *     says why).
 * Callbacks run during the call.  While negotiating, nbdaio_set_export_name
 * and nbdaio_set_meta_context may still be called (they apply to the next
 * option); the other settings may not. */
/* The reply type of the last option answered: the type of its final
 * reply (NBDAIO_REP_ACK, or an NBDAIO_REP_ERR_* type:
 * NBDAIO_REP_FLAG_ERROR set), as a non-negative number, or -1 (EINVAL) if
 * no option was answered yet. */
NBDAIO_API int64_t nbdaio_get_opt_reply_type (struct nbdaio_handle *h);

/* Called once per export by nbdaio_opt_list; description is "" when the
 * server sent none.  The strings are valid only during the call and are
 * untrusted server text (see nbdaio_escape_string).  The callbacks run
 * once the final NBD_REP_ACK arrived (after an error reply none runs). */
typedef void (*nbdaio_list_callback) (void *user_data, const char *name,
                                      const char *description);
/* List the server's exports (NBD_OPT_LIST).  Returns the number of exports
 * listed (callback called that many times; callback may be NULL), or -1.  The
 * names are kept until the final reply, in at most 16 MiB of memory (what they
 * really take: the strings and the bookkeeping per entry); a server listing
 * more ends the connection with EOVERFLOW ("... more than fit in 16 MiB ...")
 * and nothing stays allocated.  The same cap holds for
 * nbdaio_opt_list_meta_context. */
NBDAIO_API int nbdaio_opt_list (struct nbdaio_handle *h,
                                nbdaio_list_callback callback,
                                void *user_data);

/* Ask the server about the export name set: NBD_OPT_INFO, asking for
 * NAME, DESCRIPTION and BLOCK_SIZE.  On success the getters of "what the
 * handshake found" answer with what this reply said (size, flags, block sizes,
 * name, description), while the handle stays negotiating; nbdaio_opt_go
 * replaces them with what NBD_OPT_GO says.  (nbdaio_get_protocol,
 * nbdaio_get_handshake_flags, nbdaio_get_structured_replies_negotiated
 * and nbdaio_get_tls_negotiated answer all the time the handle
 * negotiates.)
 * Returns 0 or -1 (an INFO with
 * no NBD_INFO_EXPORT is the violation [info-missing-export]). */
NBDAIO_API int nbdaio_opt_info (struct nbdaio_handle *h);

/* Called once per NBD_REP_META_CONTEXT by nbdaio_opt_list_meta_context,
 * once the final NBD_REP_ACK arrived (as for nbdaio_opt_list); name is
 * untrusted server text, valid only during the call. */
typedef void (*nbdaio_context_callback) (void *user_data, uint32_t id,
                                         const char *name);
/* List the meta contexts the given queries match: NBD_OPT_LIST_META_CONTEXT
 * for the export name set with the queries (a NULL-terminated array; NULL or
 * empty asks for every context the server has; a query longer than 4096 bytes
 * is EINVAL, nothing sent).  Returns the number of contexts listed, or -1. */
NBDAIO_API int nbdaio_opt_list_meta_context (struct nbdaio_handle *h,
                                             const char *const *queries,
                                             nbdaio_context_callback callback,
                                             void *user_data);

/* Send a raw option and read its replies: any option with len bytes of data
 * (for probing how a server treats an option it does not know), its replies
 * read up to the final one (NBD_REP_ACK or an error type), discarding
 * payloads; at most 64 replies of up to 64 KiB each are read.  Only the magic
 * and the option echoed are checked.  Returns the final reply type (>= 0; an
 * error reply is not a failure here) or -1 (more than 64 replies ends the
 * connection with EOVERFLOW).  NBD_OPT_STARTTLS, NBD_OPT_GO,
 * NBD_OPT_EXPORT_NAME and NBD_OPT_ABORT are refused (EINVAL): they change the
 * connection's state.  An NBD_REP_ACK to a raw NBD_OPT_STRUCTURED_REPLY counts
 * as structured replies negotiated.  Errors: EINVAL (the handle is not
 * negotiating, or one of those options), EOVERFLOW (more than 64 replies),
 * and those of a lost connection, a timeout or a protocol violation (as
 * for the other nbdaio_opt_* calls). */
NBDAIO_API int64_t nbdaio_opt_raw (struct nbdaio_handle *h, uint32_t option,
                                   const void *data, uint32_t len);

/* End negotiation and enter transmission: NBD_OPT_SET_META_CONTEXT (when
 * structured replies were negotiated and a meta context is set) and NBD_OPT_GO
 * for the export name set, falling back to NBD_OPT_EXPORT_NAME when the server
 * does not know NBD_OPT_GO.  Returns 0, the handle then connected as after
 * a normal connect, or -1; an error reply to NBD_OPT_GO (unknown export,
 * ...) leaves it negotiating. */
NBDAIO_API int nbdaio_opt_go (struct nbdaio_handle *h);

/* Abort negotiation: send NBD_OPT_ABORT, wait briefly for the server's
 * acknowledgement (it is not required), then close the connection.  The handle
 * is no longer connected or negotiating; only nbdaio_close remains.  Returns 0
 * or -1.  Errors: EINVAL (the handle is not negotiating). */
NBDAIO_API int nbdaio_opt_abort (struct nbdaio_handle *h);

/* ---- what the handshake found (valid after connecting) ---------------- */

/* These answer once the handle knows an export: after the handshake (and
 * still after the connection ended), or while negotiating after
 * nbdaio_opt_info (nbdaio_get_protocol, nbdaio_get_handshake_flags and
 * the nbdaio_get_*_negotiated calls from the greeting on).  Before that,
 * or for a NULL h, the calls returning a number return -1 and those
 * returning a string NULL, both with EINVAL and the thread's error set
 * (a NULL of "none", such as a missing description, sets no error).
 * Errors: EINVAL (h NULL, or no export known yet). */

/* The size of the export in bytes. */
NBDAIO_API int64_t nbdaio_get_size (struct nbdaio_handle *h);
/* The export name (as the server named it, else as requested): untrusted
 * server text (see nbdaio_escape_string). */
NBDAIO_API const char *nbdaio_get_export_name (struct nbdaio_handle *h);
/* The export's description, or NULL when the server sent none: untrusted
 * server text. */
NBDAIO_API const char *nbdaio_get_export_description (struct nbdaio_handle *h);
/* The handshake style the server used: "newstyle-fixed", "newstyle" or
 * "oldstyle". */
NBDAIO_API const char *nbdaio_get_protocol (struct nbdaio_handle *h);
/* What the server advertised for the export: whether it is read-only,
 * and each command or property; 1 yes, 0 no, -1 as the other getters here. */
NBDAIO_API int nbdaio_is_read_only (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_write (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_flush (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_fua (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_trim (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_zero (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_fast_zero (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_cache (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_df (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_can_multi_conn (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_is_rotational (struct nbdaio_handle *h);
/* Whether block status can be queried: 1 if a meta context was
 * negotiated, 0 if not. */
NBDAIO_API int nbdaio_can_block_status (struct nbdaio_handle *h);
/* Whether block status may be filtered to some contexts
 * (nbdaio_aio_block_status_filter): 1 if extended headers were negotiated
 * and the server advertised NBD_FLAG_BLOCK_STATUS_PAYLOAD, 0 if not, -1 as
 * the other getters here. */
NBDAIO_API int nbdaio_can_block_status_payload (struct nbdaio_handle *h);
/* The block size the server advertised (which: NBDAIO_SIZE_*); 0 if it
 * advertised none, -1 on error. */
NBDAIO_API int64_t nbdaio_get_block_size (struct nbdaio_handle *h, int which);
/* The largest read/write payload of one request (the advertised maximum,
 * else 32 MiB); longer reads and writes are split
 * (nbdaio_set_split) or, with split off, refused.  While negotiating after
 * nbdaio_opt_info: what nbdaio_opt_go would make of that reply.  -1 as the
 * other getters here. */
NBDAIO_API int64_t nbdaio_get_max_payload (struct nbdaio_handle *h);
/* Whether structured replies were negotiated (extended headers imply
 * them): 1 if so, 0 if not. */
NBDAIO_API int nbdaio_get_structured_replies_negotiated (struct nbdaio_handle *h);
/* Whether extended headers were negotiated (32-byte requests and
 * replies): 1 if so, 0 if not; -1 as the other getters here (no connection
 * facts yet). */
NBDAIO_API int nbdaio_get_extended_headers_negotiated
  (struct nbdaio_handle *h);
/* The negotiated meta context name, or NULL if none (with several, the
 * first the server selected). */
NBDAIO_API const char *nbdaio_get_meta_context (struct nbdaio_handle *h);
/* How many meta contexts were negotiated: 0 to NBDAIO_MAX_META_CONTEXTS,
 * -1 as the other getters here. */
NBDAIO_API int nbdaio_get_nr_meta_contexts (struct nbdaio_handle *h);
/* Whether the server selected the meta context name: 1 if so, 0 if not,
 * -1 as the other getters here (or EINVAL for a NULL name). */
NBDAIO_API int nbdaio_can_meta_context (struct nbdaio_handle *h,
                                        const char *name);
/* The raw 16-bit handshake and transmission flags.  Test them with the
 * NBDAIO_HANDSHAKE_FLAG_* and NBDAIO_FLAG_* bits; -1 as the other getters
 * here. */
NBDAIO_API int nbdaio_get_handshake_flags (struct nbdaio_handle *h);
NBDAIO_API int nbdaio_get_transmission_flags (struct nbdaio_handle *h);

/* Whether the handle has a live connection in transmission: 1 if so (also
 * after nbdaio_aio_disconnect until NBD_CMD_DISC has left, although new
 * commands then fail with ENOTCONN), 0 otherwise: for NULL, before
 * connecting, while negotiating (opt mode), after the connection ended or
 * was shut down, and while reconnecting (nbdaio_set_reconnect_delay),
 * when commands may still be issued and queue.  Never fails. */
NBDAIO_API int nbdaio_is_connected (struct nbdaio_handle *h);
/* Why the connection ended: a message (protocol violation naming its rule,
 * EOF, ...), or NULL while it is alive, when it was closed cleanly or h is
 * NULL.  Never fails. */
NBDAIO_API const char *nbdaio_get_connection_error (struct nbdaio_handle *h);
/* The rule whose violation ended the connection: its tag (as
 * nbdaio_get_violation names it), or NULL while it is alive or when it
 * ended otherwise (EOF, timeout, a clean close) or h is NULL.  The string
 * is static.  Never fails. */
NBDAIO_API const char *nbdaio_get_connection_violation
  (struct nbdaio_handle *h);

/* ---- asynchronous commands ------------------------------------------- */

/* Queue a command: each queues one and returns its cookie (>= 1, unique
 * per handle) or -1.  Errors: ENOTCONN (not connected / connection dead),
 * EAGAIN (max in flight reached), EINVAL (zero length, out of bounds,
 * unaligned, flag not allowed or not advertised, command not advertised),
 * EPERM (write to a read-only export), ERANGE (what one request cannot
 * carry and is not split: with split off, a read or write above 2^32 - 1
 * bytes, or above the maximum payload under NBDAIO_STRICT_PAYLOAD, and,
 * without extended headers, a trim, zero or cache above 2^32 - 1; a block
 * status above 2^32 - 1 without extended headers, split or not; with
 * extended headers a trim, zero, cache or block status of any 64-bit
 * length is one request), ESHUTDOWN (server asked to shut down).  Queued
 * commands leave in one batched write at the latest at the next
 * nbdaio_aio_submit, nbdaio_aio_notify_write, nbdaio_aio_notify_read or
 * nbdaio_poll (with auto-submit off: at the next nbdaio_aio_submit or
 * nbdaio_poll only, see nbdaio_set_auto_submit).  Buffers must stay valid
 * until the command completes.
 *
 * Large requests (nbdaio_set_split on, the default): a read or write of
 * any size_t length, and a trim, zero or cache of any 64-bit length, is
 * accepted (inside the export) and sent as pieces of at most the maximum
 * payload (reads, writes, and caches, whatever the headers: pieces of the
 * maximum payload rounded down to the preferred block size) or, without
 * extended headers, of the largest multiple of the preferred block size
 * below 2^32 (trims, zeroes; with extended headers a trim or zero goes as
 * one request whatever its length), every piece carrying the
 * command's flags (FUA on each write piece, DF on each read piece).  It
 * is still one command: one cookie, one call of the completion callback
 * (after the last piece; the error is the first a piece got, and no
 * further pieces are sent once one failed), each free function once, one
 * count in nbdaio_aio_in_flight and one max-in-flight slot.  The chunk
 * callback of pread_structured is called for the chunks of every piece
 * with offsets in the export and sub-buffers of buf, as they arrive (in
 * the order of each piece's reply).  The pieces have slots of their own
 * (as many as max-in-flight, at least 8, at most 1024), shared by all
 * split commands: pieces that find none wait, oldest command first, and
 * leave as earlier pieces complete, so a split command is never refused
 * for want of them. */
NBDAIO_API int64_t nbdaio_aio_pread (struct nbdaio_handle *h, void *buf,
                                     size_t count, uint64_t offset,
                                     nbdaio_completion_callback completion,
                                     uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_pread_structured (struct nbdaio_handle *h,
                                                void *buf, size_t count,
                                                uint64_t offset,
                                                nbdaio_chunk_callback chunk,
                                                nbdaio_completion_callback completion,
                                                uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_pwrite (struct nbdaio_handle *h,
                                      const void *buf, size_t count,
                                      uint64_t offset,
                                      nbdaio_completion_callback completion,
                                      uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_trim (struct nbdaio_handle *h, uint64_t count,
                                    uint64_t offset,
                                    nbdaio_completion_callback completion,
                                    uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_zero (struct nbdaio_handle *h, uint64_t count,
                                    uint64_t offset,
                                    nbdaio_completion_callback completion,
                                    uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_cache (struct nbdaio_handle *h, uint64_t count,
                                     uint64_t offset,
                                     nbdaio_completion_callback completion,
                                     uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_flush (struct nbdaio_handle *h,
                                     nbdaio_completion_callback completion,
                                     uint32_t flags);
NBDAIO_API int64_t nbdaio_aio_block_status (struct nbdaio_handle *h,
                                            uint64_t count, uint64_t offset,
                                            nbdaio_extent_callback extent,
                                            nbdaio_completion_callback completion,
                                            uint32_t flags);
/* Query block status with 64-bit extents: lengths and statuses as
 * the server sent them (with extended headers, BLOCK_STATUS_EXT; else the
 * 32-bit values widened), never cut or refused for size.  Same returns,
 * errors and callback rules as nbdaio_aio_block_status. */
NBDAIO_API int64_t nbdaio_aio_block_status_64 (struct nbdaio_handle *h,
                                               uint64_t count, uint64_t offset,
                                               nbdaio_extent64_callback extent,
                                               nbdaio_completion_callback completion,
                                               uint32_t flags);
/* Query block status for some of the negotiated meta contexts only:
 * nbdaio_aio_block_status_64 answered for those of contexts, which is a
 * NULL-terminated list of names, each one negotiated
 * (nbdaio_can_meta_context), none twice.  The request carries their ids
 * (NBD_CMD_FLAG_PAYLOAD_LEN, set by the library), and the reply must bring
 * exactly one chunk for each of them and none for another context (else the
 * connection ends: protocol violation [bs-filter]).  Returns a cookie or -1:
 * ENOTSUP (extended headers were not negotiated or the server does not
 * accept filtering: see nbdaio_can_block_status_payload), EINVAL (an empty
 * list, or a name not negotiated or repeated), and every error of
 * nbdaio_aio_block_status_64; the free functions run on every path. */
NBDAIO_API int64_t nbdaio_aio_block_status_filter (struct nbdaio_handle *h,
                                                   uint64_t count,
                                                   uint64_t offset,
                                                   const char *const *contexts,
                                                   nbdaio_extent64_callback extent,
                                                   nbdaio_completion_callback completion,
                                                   uint32_t flags);

/* Disconnect gracefully: no new commands are accepted; NBD_CMD_DISC is sent
 * once every in-flight command has completed (drive it with nbdaio_poll).
 * Returns 0 or -1. */
NBDAIO_API int nbdaio_aio_disconnect (struct nbdaio_handle *h);

/* End the connection now (for example when a command timed out: NBD has no
 * way to cancel one).  Every queued or in-flight command completes with
 * err (0 stands for ECONNABORTED); reason becomes the connection error
 * (NULL: "connection aborted by the caller").  Also while reconnecting;
 * it never reconnects.  Returns 0, or -1: EINVAL (h NULL), ENOTCONN (not
 * connected: before connecting, negotiating, or ended already). */
NBDAIO_API int nbdaio_abort (struct nbdaio_handle *h, int err,
                             const char *reason);

/* Retire a command: 1 if it completed successfully (the cookie is then
 * forgotten), 0 if still in flight, -1 if it failed (errno and message of
 * the command: for a protocol violation that failed it alone, the
 * violation, as its callback saw it; the cookie is forgotten) or the
 * cookie is unknown (EINVAL).  Errors: EINVAL (the cookie is unknown), and
 * for a failed command, its own. */
NBDAIO_API int nbdaio_aio_command_completed (struct nbdaio_handle *h,
                                             int64_t cookie);
/* Find a completed command not yet retired: its cookie, 0 if none has
 * completed yet, -1 (EINVAL) if no command is in flight or awaiting
 * retirement. */
NBDAIO_API int64_t nbdaio_aio_peek_command_completed (struct nbdaio_handle *h);
/* The number of commands issued and not yet completed (queued or sent; a
 * split command counts once, however many of its pieces are out).  Valid
 * in any state (0 before connecting and once the connection ended: every
 * command has completed then); -1 (EINVAL) only if h is NULL. */
NBDAIO_API int nbdaio_aio_in_flight (struct nbdaio_handle *h);

/* ---- event loop integration ------------------------------------------ */

/* The socket to poll, or -1 if not connected.  It changes after a
 * reconnect, and while reconnecting it is a timer descriptor (see
 * nbdaio_set_reconnect_delay): take it again after each notify call. */
NBDAIO_API int nbdaio_get_fd (struct nbdaio_handle *h);
/* Which way to poll the socket: NBDAIO_DIRECTION_READ while commands
 * await replies, | WRITE while queued bytes wait to be sent.
 * While reconnecting: READ (the timer descriptor of nbdaio_get_fd).  0 when
 * there is nothing to wait for, and when h is NULL or not connected (no
 * error is set).  Never fails. */
NBDAIO_API unsigned nbdaio_aio_get_direction (struct nbdaio_handle *h);
/* The poll timeout until the next request deadline.  How long an event
 * loop may wait for the socket (see nbdaio_set_request_timeout), in poll's
 * terms: -1 when there is no deadline (no request timeout, nothing
 * awaiting the server, not connected; no error is set), and -1 with
 * EINVAL when h is NULL (the only failure), 0 once it has passed (call
 * nbdaio_aio_notify_read: it ends the connection with ETIMEDOUT unless
 * the reply has arrived), else the milliseconds left.  While reconnecting
 * (nbdaio_set_reconnect_delay): the milliseconds until the next attempt
 * (0: call nbdaio_aio_notify_read now).  O(1). */
NBDAIO_API int nbdaio_aio_get_timeout (struct nbdaio_handle *h);
/* Send queued commands now.  They leave in as few system calls as the
 * socket allows (with auto-submit off: every command queued so far is
 * submitted, and what the socket does not take goes on with the notify calls).
 * Returns the number of commands whose request fully left, or -1. */
NBDAIO_API int nbdaio_aio_submit (struct nbdaio_handle *h);
/* Tell the handle its socket is readable: read and dispatch every reply
 * available without blocking, send what may leave (with auto-submit off: only
 * what was submitted), then check the request deadline.  Returns 0 or -1
 * (connection died, ETIMEDOUT included; commands were failed; or EBUSY: called
 * from a chunk, extent or completion callback of h while h reads replies,
 * which would re-enter the reader; nothing was read, the connection lives on).
 * A callback may issue commands and call nbdaio_aio_notify_write,
 * nbdaio_aio_submit and nbdaio_abort.  Errors: ETIMEDOUT (the request
 * timeout ended the connection), EBUSY (called from a callback of h while
 * h reads replies), and the error that ended the connection. */
NBDAIO_API int nbdaio_aio_notify_read (struct nbdaio_handle *h);
/* Tell the handle its socket is writable: continue sending, then check the
 * request deadline (without reading: when the socket is readable too, call
 * nbdaio_aio_notify_read first).  Returns 0 or -1. */
NBDAIO_API int nbdaio_aio_notify_write (struct nbdaio_handle *h);
/* Run the event loop once: submit, wait up to timeout_ms (-1 = forever) for
 * the socket and handle what arrived; the wait never passes the request
 * deadline, which is checked after reading.  Returns 1 if progress was made, 0
 * on timeout, -1 on error (ETIMEDOUT: the request timeout ended the
 * connection; EBUSY from a callback of h, as nbdaio_aio_notify_read).
 * Errors: ETIMEDOUT (the request timeout ended the connection), EBUSY
 * (called from a callback of h while h reads replies), and the error that
 * ended the connection. */
NBDAIO_API int nbdaio_poll (struct nbdaio_handle *h, int timeout_ms);

/* ---- synchronous wrappers ------------------------------------------- */

/* Run a command synchronously: each issues it and polls until it completes.
 * Return 0 or -1 with the command's (or the connection's) error.  With a
 * request timeout they return at most about that long after the command left
 * (ETIMEDOUT, the connection ended); without one they wait as long as the
 * server takes.  From a callback of h (chunk, extent, completion) they would
 * wait inside the reply reader: -1 with EBUSY, nothing issued, the free
 * function passed runs once.  Errors: those of issuing the command (see
 * nbdaio_aio_pread) or its own, ETIMEDOUT (the request timeout ended the
 * connection), EBUSY (called from a callback of h). */
NBDAIO_API int nbdaio_pread (struct nbdaio_handle *h, void *buf, size_t count,
                             uint64_t offset, uint32_t flags);
NBDAIO_API int nbdaio_pread_structured (struct nbdaio_handle *h, void *buf,
                                        size_t count, uint64_t offset,
                                        nbdaio_chunk_callback chunk,
                                        uint32_t flags);
NBDAIO_API int nbdaio_pwrite (struct nbdaio_handle *h, const void *buf,
                              size_t count, uint64_t offset, uint32_t flags);
NBDAIO_API int nbdaio_trim (struct nbdaio_handle *h, uint64_t count,
                            uint64_t offset, uint32_t flags);
NBDAIO_API int nbdaio_zero (struct nbdaio_handle *h, uint64_t count,
                            uint64_t offset, uint32_t flags);
NBDAIO_API int nbdaio_cache (struct nbdaio_handle *h, uint64_t count,
                             uint64_t offset, uint32_t flags);
NBDAIO_API int nbdaio_flush (struct nbdaio_handle *h, uint32_t flags);
NBDAIO_API int nbdaio_block_status (struct nbdaio_handle *h, uint64_t count,
                                    uint64_t offset,
                                    nbdaio_extent_callback extent,
                                    uint32_t flags);
/* Disconnect, waiting for commands in flight: drain them, send
 * NBD_CMD_DISC and close the socket.  The handle stays allocated (free it with
 * nbdaio_close).  Returns 0 or -1; EBUSY when called from a callback of h
 * while commands are in flight (it would have to wait for them inside the
 * reply reader).  The wait for the commands in flight is bounded by the
 * request timeout (then -1, ETIMEDOUT, every command failed, the connection
 * ended); without one it lasts as long as the server takes to answer them
 * (forever if it never does: set a request timeout, or use nbdaio_close, which
 * does not wait for replies).  Sending NBD_CMD_DISC itself waits at most
 * 1 s.  Errors: EBUSY (called from a callback of h while commands are in
 * flight), ETIMEDOUT (the request timeout ended the connection). */
NBDAIO_API int nbdaio_shutdown (struct nbdaio_handle *h);

/* ---- connection groups ----------------------------------------------- */

/* A group is several connections to one export with the same settings,
 * for servers that advertise multi-conn (NBD_FLAG_CAN_MULTI_CONN: every
 * connection sees every other's completed writes, and a flush on one
 * covers them all).  Each connection is an ordinary handle (issue
 * commands on it, read its stats and flags); the group picks which one
 * gets the next command, submits and waits on all of them, and makes a
 * flush that covers the earlier writes of every connection.  The calls
 * below are for one thread, as a handle's are. */
#define NBDAIO_GROUP_MAX 64
struct nbdaio_group;

/* Make a group of connections from h.  h must be connected with
 * nbdaio_connect_unix, _tcp, _uri or nbdaio_profile_connect (not _socket, not
 * in opt mode): h becomes connection 0, and h's conns setting minus one more
 * connections are opened to the same target with h's settings (TLS, export,
 * contexts, timeouts, max-in-flight, auto-submit...), each within the connect
 * timeout.  Every connection must see the same export (size, flags, extended
 * headers).  On success h belongs to the group (close it with
 * nbdaio_group_close, never nbdaio_close).  Returns the group, or NULL (h
 * untouched and still the caller's, the new connections closed):
 *   EINVAL  h NULL, not connected, in a group already, or connected with
 *           nbdaio_connect_socket (no target to connect again)
 *   ENOTSUP conns > 1 but the server does not advertise multi-conn and
 *           force-multi-conn is off
 *   EPROTO  another connection sees a different export (the message
 *           names what differs and the connection)
 *   ENOMEM, or the error of the connection that failed (its number in
 *           the message). */
NBDAIO_API struct nbdaio_group *nbdaio_group_create (struct nbdaio_handle *h);
/* Close every connection (as nbdaio_close: commands in flight fail with
 * ENOTCONN, their callbacks and frees run once; a group flush waiting for
 * writes completes with ENOTCONN) and free the group.  NULL is allowed. */
NBDAIO_API void nbdaio_group_close (struct nbdaio_group *g);
struct nbdaio_stats;
/* The counters of every connection of g added up (as nbdaio_get_stats:
 * size, versioning, return value); -1 (EINVAL) if g or out is NULL. */
NBDAIO_API int nbdaio_group_get_stats (struct nbdaio_group *g,
                                       struct nbdaio_stats *out, size_t size);
/* The number of connections in the group (0 if g is NULL). */
NBDAIO_API unsigned nbdaio_group_get_size (const struct nbdaio_group *g);
/* The handle of connection i (0 .. size - 1), or NULL (EINVAL) if g is
 * NULL or i is out of range. */
NBDAIO_API struct nbdaio_handle *nbdaio_group_get_handle
  (struct nbdaio_group *g, unsigned i);
/* The connection for the next command, and its number in *index (index
 * may be NULL): the one chosen last, until it holds its share of
 * max-in-flight (max-in-flight / size, rounded up) or is no longer
 * connected, then the least loaded connected one (one reconnecting if none
 * is).  So a burst of commands goes to one connection and leaves in one
 * system call, and the load stays even; the connections are scanned about
 * once per share, not per command.  NULL (EINVAL) only if g is NULL. */
NBDAIO_API struct nbdaio_handle *nbdaio_group_pick (struct nbdaio_group *g,
                                                    unsigned *index);
/* Submit on every connection: nbdaio_aio_submit on each with queued
 * commands.  Returns the number of commands whose request fully left, or
 * -1 (EINVAL) if g is NULL;
 * a connection that dies meanwhile fails its own commands (their
 * callbacks say so) and the others go on. */
NBDAIO_API int nbdaio_group_submit (struct nbdaio_group *g);
/* Wait for the group's commands: handle replies until want commands of the
 * group have completed in this call (0: only what is ready, never sleeping),
 * timeout_ms has passed (-1: no limit), or no submitted command is left to
 * wait for (a command not submitted yet is never waited for: submit first).
 * Reads the connections that can have replies first, polls only when that
 * found too little; finishes partial sends, runs reconnect attempts, and never
 * sleeps past a connection's request deadline, which it checks (an
 * expired connection fails its commands with ETIMEDOUT).  Returns the
 * number of commands completed in this call (a failed one included), or
 * -1: EINVAL (g NULL), EBUSY (from a callback of one of its connections
 * while it reads), or poll's error (not EINTR, which returns early).  A
 * connection that dies does not fail the call: its commands complete with
 * its error, and nbdaio_get_connection_error on it says why. */
NBDAIO_API int nbdaio_group_wait (struct nbdaio_group *g, unsigned want,
                                  int timeout_ms);
/* Flush the writes of every connection.  A flush covering every write (pwrite,
 * trim, zero) issued on any connection of g before this call: it waits until
 * those writes have completed, then sends NBD_CMD_FLUSH on one connection
 * (with multi-conn, which makes it cover all connections), or on every
 * connection (force-multi-conn without multi-conn), and completes once, after
 * the last of them, with the first error of those flushes.  Writes issued
 * after it do not delay it.  Completion is reported only through the
 * completion callback (user_data, free as for every command; free runs once,
 * also when the call fails).  flags must be 0.  Returns a cookie >= 1 unique
 * among g's flushes, or -1: EINVAL (g NULL, flags), ENOTSUP (the server does
 * not support flush), EAGAIN (max-in-flight flushes pending), ENOTCONN (no
 * connection left). */
NBDAIO_API int64_t nbdaio_group_aio_flush
  (struct nbdaio_group *g, nbdaio_completion_callback completion,
   uint32_t flags);

/* ---- statistics ------------------------------------------------------ */

/* Counters of one NBD command type.  A command the library splits into
 * several requests counts once per request. */
struct nbdaio_cmd_stats {
  uint64_t issued;              /* requests queued for the server */
  uint64_t completed;           /* of those, completed (successfully or
                                 * not, including failed with the
                                 * connection) */
  uint64_t failed;              /* of those, completed with an error */
};

/* The counters of a handle since it was created.  Bytes are those of the
 * transmission phase (the handshake is not counted), as NBD sees them
 * (over TLS: before encryption).  New fields are only ever appended. */
struct nbdaio_stats {
  struct nbdaio_cmd_stats read, write, flush, trim, zero, cache,
                          block_status;
  uint64_t bytes_sent;          /* requests: headers and write payloads,
                                 * NBD_CMD_DISC included */
  uint64_t bytes_received;      /* replies: headers, chunk payloads, read
                                 * data */
  uint64_t payload_sent;        /* write data */
  uint64_t payload_received;    /* read data (data chunks and simple read
                                 * replies; holes are not received) */
  uint64_t simple_replies;      /* simple replies received */
  uint64_t structured_chunks;   /* structured reply chunks received */
  uint64_t timeouts;            /* connections ended by the request
                                 * timeout */
  uint64_t violations;          /* connections ended by a protocol
                                 * violation of the server (EPROTO) */
  uint64_t reconnects;          /* lost connections re-established
                                 * (nbdaio_set_reconnect_delay) */
  uint64_t commands_resent;     /* requests sent again after a loss */
  uint64_t downtime_ms;         /* total time spent reconnecting, of the
                                 * reconnects that succeeded */
  uint64_t command_violations;  /* commands failed (EPROTO) by a protocol
                                 * violation that left the connection up
                                 * (nbdaio_set_reply_violations) */
};

/* Copy h's counters into out, which holds size bytes: pass sizeof (struct
 * nbdaio_stats); a program built with an older (shorter) struct gets its
 * first size bytes, a newer (longer) one gets the rest zeroed.  Returns the
 * number of bytes that hold counters (at most size), or -1 (EINVAL) when h
 * or out is NULL.  Valid at any time, also after the connection ended.
 * Counting costs no system call and no lock. */
NBDAIO_API int nbdaio_get_stats (struct nbdaio_handle *h,
                                 struct nbdaio_stats *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* NBDAIO_H */
