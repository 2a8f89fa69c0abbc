/* internal.h - the handle and command-slot structures shared by the files
 * of engine/, and the functions they call in each other.  Internal. */
#ifndef NBDAIO_INTERNAL_H
#define NBDAIO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nbdaio.h"
#include "handshake.h"
#include "proto.h"
#include "rules.h"
#include "transport.h"

/* A cookie is (sequence << CMD_SLOT_BITS) | slot index: unique per handle,
 * >= 1, and its slot is found in O(1).  The slots are the caller's
 * (max-in-flight of them, at most CMD_MAX_SLOTS), then the piece slots of
 * split commands (split.c), between CMD_PIECE_SLOTS_MIN and _MAX: as many
 * as the caller's, unless split is off (none). */
#define CMD_SLOT_BITS 17
#define CMD_SLOT_MASK ((UINT64_C(1) << CMD_SLOT_BITS) - 1)
#define CMD_MAX_SLOTS (1u << 16)        /* the most max-in-flight */
#define CMD_PIECE_SLOTS_MIN 8
#define CMD_PIECE_SLOTS_MAX 1024
#define CMD_INLINE_RUNS 4       /* disjoint chunk runs kept without malloc;
                                 * a more fragmented reply uses a bitmap */
#define CMD_NONE UINT32_MAX     /* end of the done list */
#define CMD_VIOLATION_MAX 256   /* a kept violation message at most */
#define SEND_IOV_MAX 1024       /* iovecs per sendmsg */
#define RBUF_SIZE (256 * 1024)  /* reply stream buffer; it grows (while a
                                 * larger block status chunk arrives) only
                                 * as bytes arrive, and shrinks back after */
/* Extents in one block status chunk at most: the spec's "SHOULD NOT send
 * more than 2^20" (and the request's own bound, reply.c bs_max_extents). */
#define BS_MAX_EXTENTS (1u << 20)
/* The payload of a filtered block status at most: the effect length and
 * one id per context (nbdaio_aio_block_status_filter). */
#define CMD_FILTER_MAX (NBD_BS_FILTER_HEAD_LEN + 4 * NBDAIO_MAX_META_CONTEXTS)
/* Statistics are kept per NBD command type, NBD_CMD_READ (0) to
 * NBD_CMD_BLOCK_STATUS (7). */
#define STATS_CMD_TYPES (NBD_CMD_BLOCK_STATUS + 1)

/* CMD_SPLIT: a command issued and not completed that never goes on the
 * wire: its pieces do (split.c). */
enum cmd_state { CMD_FREE = 0, CMD_QUEUED, CMD_SENT, CMD_DONE, CMD_SPLIT };

/* The pieces of a split command. */
/* The lists of command slots (completed, sent, waiting for piece slots)
 * are doubly linked through the slots: a head and tail index in the
 * handle, a prev and next index in each slot, CMD_NONE at the ends. */
struct slot_link { uint32_t prev, next; };
struct slot_list { uint32_t head, tail; };

struct cmd_split {
  uint64_t next;                /* export offset of the next piece */
  uint64_t left;                /* bytes not issued yet */
  uint32_t piece;               /* bytes per piece (the last may be less) */
  uint32_t out;                 /* pieces issued and not completed */
  struct slot_link wait;        /* FIFO of commands waiting for slots */
  bool waiting;                 /* on that FIFO (pieces are left) */
};

struct nbdaio_cmd {
  uint64_t cookie;
  uint64_t last_cookie;         /* cookie this slot retired last */
  uint64_t offset;
  void *buf;
  uint64_t count;               /* the length (64-bit: an effect length
                                 * with extended headers; reads and writes
                                 * never above UINT32_MAX, issue.c) */
  uint16_t type;
  uint16_t flags;
  uint8_t state;                /* enum cmd_state */
  uint8_t got_block_status;     /* bit i: the chunk for info.metas[i] */
  uint8_t bs_want;              /* block status: bit i, a chunk for
                                 * info.metas[i] is due (all of them, or
                                 * the filter's) */
  bool bs_filter;               /* nbdaio_aio_block_status_filter: the
                                 * request carries the ids of bs_want */
  uint8_t hdr_extra;            /* payload bytes after the header in hdr
                                 * (the filter's; 0 for every other) */
  uint32_t group_epoch;         /* a write of a group's handle: its flush
                                 * epoch's counter + 1 (group.c); else 0 */
  int error;                    /* first error, errno value */
  enum rule_id violation;       /* the rule whose violation failed it
                                 * alone (cmd_keep_violation), else
                                 * RULE_NONE */
  uint64_t covered;             /* bytes covered by data/hole chunks */
  /* Byte ranges (relative to offset) covered by data/hole chunks, sorted,
   * disjoint and merged, while there are at most CMD_INLINE_RUNS; a more
   * fragmented reply switches to bits: one bit per byte of the request
   * (malloc'd, freed at completion). */
  struct cmd_run { uint32_t start, end; } runs[CMD_INLINE_RUNS];
  uint32_t nruns;
  uint64_t *bits;               /* NULL while runs suffice */
  nbdaio_chunk_callback chunk;
  nbdaio_extent_callback extent;
  /* nbdaio_aio_block_status_64: its callback (user_data and free are in
   * extent, whose callback is then NULL) */
  int (*extent64) (void *user_data, const char *metacontext, uint64_t offset,
                   nbdaio_extent64 *entries, size_t nr_entries, int *error);
  nbdaio_completion_callback completion;
  struct slot_link done;        /* list of completed, unretired commands */
  struct slot_link sent;        /* list of sent, unanswered commands, in
                                 * the order they left (deadline.c) */
  int64_t sent_ms;              /* with a request timeout: when it began to
                                 * leave (coarse clock, deadline.c) */
  uint32_t parent;              /* a piece: the slot of its split command;
                                 * else CMD_NONE */
  struct cmd_split split;       /* state CMD_SPLIT */
  uint8_t hdr[NBD_EXT_REQUEST_LEN + CMD_FILTER_MAX];
                                /* the encoded request (h->req_len bytes
                                 * of it, then hdr_extra: cmd_hdr_len) */
};

/* H_NEGOTIATING: opt mode, between the connect call and nbdaio_opt_go /
 * nbdaio_opt_abort (the socket is open, no command may be issued). */
/* H_RECONNECTING: the connection was lost and reconnect.c is
 * re-establishing it; commands may be issued (they queue). */
enum handle_state { H_NEW, H_CONNECTED, H_DEAD, H_NEGOTIATING,
                    H_RECONNECTING };

/* The states a public call is permitted in, as it declares them to
 * handle_check_state (states.c): IN_* bits or'd, and NOT_IN_CALLBACK for a
 * call that a callback of the handle may not make (it would re-enter the
 * reply reader). */
#define IN_STATE(s)      (1u << (s))
#define IN_NEW           IN_STATE (H_NEW)
#define IN_NEGOTIATING   IN_STATE (H_NEGOTIATING)
#define IN_CONNECTED     IN_STATE (H_CONNECTED)
#define IN_RECONNECTING  IN_STATE (H_RECONNECTING)
#define IN_DEAD          IN_STATE (H_DEAD)
#define IN_ANY_STATE     (IN_NEW | IN_NEGOTIATING | IN_CONNECTED | \
                          IN_RECONNECTING | IN_DEAD)
#define NOT_IN_CALLBACK  (1u << 31)
_Static_assert (IN_ANY_STATE < (1u << 8), "the IN_* bits fit below the "
                "KNOWING_EXPORT bits");
/* KNOWING_EXPORT (states): those states, but only once the handle knows
 * an export (h->info.name: after nbdaio_opt_info or the handshake; it
 * stays known after the connection ended).  EXPORT_KNOWN: any state past
 * IN_NEW that knows one. */
#define KNOWING_EXPORT(states) ((states) << 8)
#define EXPORT_KNOWN     KNOWING_EXPORT (IN_NEGOTIATING | IN_CONNECTED | \
                                         IN_RECONNECTING | IN_DEAD)
_Static_assert (KNOWING_EXPORT (IN_ANY_STATE) < NOT_IN_CALLBACK,
                "KNOWING_EXPORT stays below NOT_IN_CALLBACK");

/* How the handle connected, for a reconnect (reconnect.c). */
enum rc_target { RC_NONE, RC_UNIX, RC_TCP };

struct reconnect {
  unsigned delay_ms;            /* reconnect-delay, 0 = off */
  enum rc_target kind;          /* RC_NONE: cannot reconnect (an adopted
                                 * socket) */
  char *path, *host, *port;     /* unix path; TCP host and port */
  int err;                      /* what commands fail with on giving up */
  char *reason;                 /* why the connection was lost */
  int64_t since, deadline, next_try; /* transport_now_ms values */
  int64_t outage;               /* when the outage began: a loss with no
                                 * command completed since the last
                                 * reconnect continues it */
  bool progress;                /* a command succeeded since then */
  uint64_t requeued;            /* sent commands put back on the queue,
                                 * counted as resent once reconnected */
  unsigned backoff_ms;
  int timer_fd;                 /* while reconnecting: nbdaio_get_fd's
                                 * descriptor, readable at next_try */
};

enum rx_state {
  RX_HEADER,                    /* waiting for a reply header */
  RX_PAYLOAD,                   /* waiting for rx.need bytes in the buffer */
  RX_DATA,                      /* copying read data into rx.dest */
};

struct rx {
  enum rx_state state;
  struct nbdaio_cmd *cmd;
  bool in_chunk;                /* the current reply is a structured chunk */
  uint16_t chunk_flags;
  uint16_t chunk_type;
  uint32_t length;              /* chunk payload length */
  uint32_t need;                /* RX_PAYLOAD: bytes wanted */
  uint8_t *dest;                /* RX_DATA: where the next byte goes */
  uint32_t remaining;           /* RX_DATA: bytes still to come */
  uint64_t data_offset;         /* RX_DATA: export offset of the chunk */
  uint32_t data_len;
  bool simple_read;             /* current reply is a simple reply to a
                                 * read under structured replies, kept in
                                 * sync (reply-violations=command) */
  uint32_t simple_error;        /* ... and its wire error */
};

struct nbdaio_handle {
  enum handle_state state;

  /* settings */
  char *export_name;
  bool export_name_explicit;    /* set by nbdaio_set_export_name: a URI
                                   may not name another export */
  char *meta_context_wanted;
  char *meta_more[NBDAIO_MAX_META_CONTEXTS]; /* nbdaio_add_meta_context's
                                 * after the first (NULL-terminated) */
  bool ask_structured_replies;  /* nbdaio_set_request_structured_replies */
  bool extended_off;            /* nbdaio_set_request_extended_headers (h, 0) */
  bool debug;
  unsigned connect_timeout_ms;
  unsigned request_timeout_ms;  /* 0 = none (deadline.c) */
  unsigned max_in_flight;
  unsigned strict;
  bool split_off;               /* nbdaio_set_split (h, 0) */
  bool violations_close;        /* nbdaio_set_reply_violations CLOSE */
  unsigned conns;               /* connections nbdaio_group_create opens */
  bool force_multi_conn;        /* ... even without the server's multi-conn */
  struct nbdaio_group *group;   /* the group h belongs to, or NULL */
  struct tls_config tls;

  struct transport t;
  struct export_info info;
  uint64_t max_payload;
  uint32_t req_len;             /* request header: NBD_REQUEST_LEN, or
                                 * NBD_EXT_REQUEST_LEN (extended headers) */
  uint32_t align;               /* minimum block size, 1 if none */

  /* command slots (cmd.c) */
  struct nbdaio_cmd *cmds;
  uint32_t ncmds;
  uint32_t *free_stack;
  uint32_t nfree;
  uint64_t next_seq;
  uint32_t in_flight;           /* issued by the caller and not completed
                                 * (a split command counts once) */
  struct slot_list done;
  uint32_t *piece_stack;        /* free piece slots (split.c) */
  uint32_t npiece_free;
  struct slot_list split_queue; /* split commands waiting for piece slots */

  /* send queue (send.c): ring of slot indices in issue order */
  uint32_t *sendq;
  uint32_t sq_mask;
  uint32_t sq_head, sq_len;
  uint32_t sq_go;               /* auto-submit off: queue entries (from the
                                 * head) submitted, which may leave */
  bool auto_submit_off;         /* nbdaio_set_auto_submit (h, 0) */
  size_t sq_sent;               /* bytes of the head command already sent */
  struct iovec *iov;
  bool disc_wanted;             /* nbdaio_aio_disconnect or ESHUTDOWN */
  bool disc_sent;
  bool server_shutdown;         /* server answered ESHUTDOWN */

  /* reply stream (reply.c) */
  uint8_t *rbuf;
  size_t rcap, rpos, rlen;
  struct rx rx;
  bool reading;                 /* reply_read runs: its callbacks may not
                                 * re-enter it (EBUSY) */
  uint32_t *extents;
  size_t extents_cap;
  nbdaio_extent64 *extents64;   /* every block status chunk is parsed here */
  size_t extents64_cap;

  /* per caller slot, the message of the violation that failed its
   * command alone (cmd_keep_violation); made at the first one */
  char (*violation_msgs)[CMD_VIOLATION_MAX];
  char *conn_error;             /* why the connection ended */
  enum rule_id conn_rule;       /* the rule it broke, or RULE_NONE */
  int64_t connect_deadline;     /* during a connect call: when it must
                                 * have finished (0 = none; handle.c) */

  /* request deadlines (deadline.c): the sent list is in send order, so
   * its head is the oldest unanswered command */
  struct slot_list sent;
  uint32_t nsent;               /* commands on the sent list */
  uint64_t nleft;               /* commands that have left, ever (group.c:
                                 * which replies cannot be back yet) */
  int64_t sq_head_ms;           /* when the send queue's head first failed
                                 * to leave whole, -1 if it has not */
  int64_t send_ms;              /* the coarse stamp of this send batch */

  /* statistics (stats.c): plain counters on paths that run anyway */
  struct handle_stats {
    uint64_t issued[STATS_CMD_TYPES], completed[STATS_CMD_TYPES];
    uint64_t failed[STATS_CMD_TYPES];
    uint64_t bytes_sent, bytes_received, payload_sent, payload_received;
    uint64_t simple_replies, chunks, timeouts, violations;
    uint64_t reconnects, resent, downtime_ms;
    uint64_t command_violations;
  } st;

  struct reconnect rc;          /* reconnect.c */

  /* opt mode (opt.c) */
  bool opt_mode;                /* nbdaio_set_opt_mode */
  uint32_t opt_reply_type;      /* last final option reply, 0 = none */
};

/* handle.c */
/* The handshake options for one exchange of h: settings, a deadline of the
 * connect timeout from now, keep_negotiating (opt mode: error replies
 * leave the connection negotiating). */
void handle_hs_opts (struct nbdaio_handle *h, struct handshake_opts *o,
                     bool keep_negotiating);
/* The end of the handshake, shared by a connect and nbdaio_opt_go:
 * handshake_finish, then the command slots, queues and limits; the handle
 * is then H_CONNECTED.  Returns HS_OK, HS_REFUSED (opt mode: error reply,
 * still negotiating) or HS_FAILED (the handle is dead, handle_failed was
 * called). */
enum hs_result handle_finish_handshake (struct nbdaio_handle *h,
                                        bool keep_negotiating);
/* The connection failed during the handshake or negotiation: close it,
 * keep the last error as the reason, the handle is dead.  Returns -1. */
int handle_failed (struct nbdaio_handle *h);

/* Connect a new transport to the remembered target within timeout_ms and
 * run the whole handshake (opt mode or not) into a fresh export info that
 * replaces h->info.  Returns 0, or -1 (the transport is closed). */
int handle_reconnect (struct nbdaio_handle *h, unsigned timeout_ms);

/* states.c */
/* 0 when h is non-NULL and in one of the permitted states (IN_* and
 * KNOWING_EXPORT bits; with NOT_IN_CALLBACK also not inside a callback of
 * its reply reader), else -1 with the error the refusal table gives:
 * EINVAL (NULL handle, a setting made too late, an opt call while not
 * negotiating, no export known yet, a group from a handle not connected),
 * EBUSY (from a callback, naming call) or ENOTCONN (not connected, naming
 * why). */
int handle_check_state (const struct nbdaio_handle *h, unsigned permitted,
                        const char *call);
/* h is non-NULL and in one of states (IN_* bits), without an error: for
 * the calls that answer by the state (nbdaio_is_connected, ...). */
static inline bool
handle_in (const struct nbdaio_handle *h, unsigned states)
{
  return h && (states & IN_STATE (h->state));
}

/* settings.c */
/* Forget the meta contexts nbdaio_add_meta_context added after the first. */
void settings_clear_meta_more (struct nbdaio_handle *h);
/* Replace *dst with a copy of src (NULL allowed); what names it in errors
 * (longer than NBD_MAX_STRING is EINVAL). */
int settings_replace_string (char **dst, const char *src, const char *what);

/* cmd.c */
int cmd_slots_init (struct nbdaio_handle *h);
void cmd_slots_free (struct nbdaio_handle *h);
/* Append slot idx to list l, or take it off, in O(1); off is the offset
 * of the list's struct slot_link in struct nbdaio_cmd (SLOT_LINK). */
#define SLOT_LINK(member) offsetof (struct nbdaio_cmd, member)

static inline struct slot_link *
slot_link_of (struct nbdaio_handle *h, uint32_t idx, size_t off)
{
  return (struct slot_link *) ((char *) &h->cmds[idx] + off);
}

static inline void
slot_list_append (struct nbdaio_handle *h, struct slot_list *l, size_t off,
                  uint32_t idx)
{
  struct slot_link *k = slot_link_of (h, idx, off);

  k->next = CMD_NONE;
  k->prev = l->tail;
  if (l->tail != CMD_NONE)
    slot_link_of (h, l->tail, off)->next = idx;
  else
    l->head = idx;
  l->tail = idx;
}

static inline void
slot_list_remove (struct nbdaio_handle *h, struct slot_list *l, size_t off,
                  uint32_t idx)
{
  struct slot_link *k = slot_link_of (h, idx, off);

  if (k->prev != CMD_NONE)
    slot_link_of (h, k->prev, off)->next = k->next;
  else
    l->head = k->next;
  if (k->next != CMD_NONE)
    slot_link_of (h, k->next, off)->prev = k->prev;
  else
    l->tail = k->prev;
}
struct nbdaio_cmd *cmd_alloc (struct nbdaio_handle *h);
/* A free piece slot (for split.c), or NULL when all are taken. */
struct nbdaio_cmd *cmd_alloc_piece (struct nbdaio_handle *h);
void cmd_set_error (struct nbdaio_cmd *cmd, int err);
/* Record [start, start+len) of the request as covered by a chunk.  Returns
 * 0, or -1 with a violation if it overlaps what is covered already. */
int cmd_cover (struct nbdaio_cmd *cmd, uint32_t start, uint32_t len);
void cmd_complete (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* The last error is a violation in cmd's final reply that fails cmd alone
 * (reply-violations=command): keep it with the command the caller issued
 * (cmd, or the split command cmd is a piece of unless an earlier piece
 * failed it), for its callback and nbdaio_aio_command_completed. */
void cmd_keep_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* Make the violation kept for cmd (a caller's command) the last error,
 * its message naming the rule's section of the NBD specification.
 * Returns -1. */
int cmd_raise_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
void cmd_fail_all (struct nbdaio_handle *h, int err);
void callbacks_release (nbdaio_chunk_callback *chunk,
                        nbdaio_extent_callback *extent,
                        nbdaio_completion_callback *completion);

/* issue.c */
/* Write one request header into hdr: 28 bytes, or 32 with extended
 * headers (ext), whose length field is 64 bits wide. */
void request_header_put (uint8_t *hdr, bool ext, uint16_t flags,
                         uint16_t type, uint64_t cookie, uint64_t offset,
                         uint64_t length);
/* Encode the request of cmd (allocated, its type, flags, offset, count,
 * buf, bs_want and bs_filter set) and put it on the send queue (state
 * CMD_QUEUED). */
void cmd_queue (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* Whether cmd (a wire command) is still allowed by what the server now
 * advertises (after a reconnect): the checks of issuing, under h's strict
 * flags; if so its request is encoded again for the new connection (its
 * header format, its filter's context ids).  Returns 0, or -1 with the
 * error issuing would give. */
int cmd_recheck (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* The bytes of cmd's request that come from cmd->hdr (send.c). */
static inline size_t
cmd_hdr_len (const struct nbdaio_handle *h, const struct nbdaio_cmd *cmd)
{
  return h->req_len + cmd->hdr_extra;
}

/* split.c */
/* Whether a command of this type and length is sent as pieces: split is
 * on and count exceeds what one request of the type may carry (READ and
 * WRITE: the maximum payload; TRIM, WRITE_ZEROES, CACHE: the 32-bit wire
 * length, in multiples of the preferred block size, unless extended
 * headers carry any 64-bit effect length in one request). */
bool split_needed (const struct nbdaio_handle *h, uint16_t type,
                   uint64_t count);
/* p (allocated, its fields and callbacks set, counted in in_flight)
 * becomes a split command of count bytes; its pieces are issued as piece
 * slots allow. */
void split_start (struct nbdaio_handle *h, struct nbdaio_cmd *p,
                  uint64_t count);
/* A piece of p completed with err (its slot is free again): record the
 * first error, issue waiting pieces, complete p after its last piece. */
void split_piece_done (struct nbdaio_handle *h, struct nbdaio_cmd *p,
                       int err);
/* Issue pieces of the waiting split commands into free piece slots (after
 * a reconnect). */
void split_pump (struct nbdaio_handle *h);
/* The connection died (its wire commands were failed): complete with err
 * every split command still waiting for piece slots. */
void split_fail_all (struct nbdaio_handle *h, int err);

/* deadline.c */
/* CLOCK_MONOTONIC_COARSE in milliseconds: one cheap stamp per send batch
 * or notify call, never per command. */
int64_t deadline_clock (void);
/* cmd (the head of the send queue) has left whole at the batch stamp: it
 * joins the end of the sent list. */
void deadline_sent (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* cmd (state CMD_SENT) got its final reply or failed: off the list. */
void deadline_unsent (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* A send batch left the queue non-empty: its head's clock starts. */
void deadline_send_blocked (struct nbdaio_handle *h);
/* The poll timeout for waiting up to timeout_ms (-1 = forever) without
 * passing the next request deadline. */
int deadline_poll_ms (struct nbdaio_handle *h, int timeout_ms);
/* End the connection if the oldest unanswered command is past the request
 * timeout: every command in flight completes with ETIMEDOUT.  Returns 0,
 * or -1 (ETIMEDOUT, the message naming the command and the timeout). */
int deadline_check (struct nbdaio_handle *h);

/* group.c */
/* A command of a group's handle was issued: a write (WRITE, TRIM,
 * WRITE_ZEROES) counts in the group's current flush epoch. */
void group_cmd_issued (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
/* ... and completed: counted; flushes waiting for a write's epoch may
 * go. */
void group_cmd_done (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);

/* settings.c */
/* Copy every setting of src into dst (a new handle).  Returns 0 or -1
 * (ENOMEM). */
int settings_copy (struct nbdaio_handle *dst, const struct nbdaio_handle *src);

/* stats.c */
/* Copy the first size bytes of *s to out (a caller's struct of size
 * bytes: a longer one gets the rest zeroed).  Returns the bytes that hold
 * counters. */
int stats_copy_out (const struct nbdaio_stats *s, struct nbdaio_stats *out,
                    size_t size);

/* send.c */
int send_init (struct nbdaio_handle *h);
void send_enqueue (struct nbdaio_handle *h, struct nbdaio_cmd *cmd);
int send_flush (struct nbdaio_handle *h);
/* With auto-submit off: the command queued last counts as submitted (a
 * group flush released by the completion of its writes: group.c). */
void send_submit_last (struct nbdaio_handle *h);
/* Queued commands that may leave now: all of them with auto-submit on,
 * else the submitted ones (send.c). */
static inline uint32_t
send_ready (const struct nbdaio_handle *h)
{
  if (!h->auto_submit_off)
    return h->sq_len;
  return h->sq_go < h->sq_len ? h->sq_go : h->sq_len;
}
/* Submit everything queued (nbdaio_aio_submit after its state check):
 * what send_flush returns. */
static inline int
send_submit_all (struct nbdaio_handle *h)
{
  h->sq_go = h->sq_len;
  return send_flush (h);
}
int send_disconnect (struct nbdaio_handle *h);

/* reply.c */
int reply_init (struct nbdaio_handle *h);
/* Read and dispatch what the socket has.  Sets h->reading meanwhile. */
int reply_read (struct nbdaio_handle *h);
/* The connection is dead: free the reply buffer and the extents array. */
void reply_release (struct nbdaio_handle *h);

/* reconnect.c */
/* Remember the target of a connect call (kind, path or host and port) so
 * that a lost connection can be re-established.  Returns 0 or -1
 * (ENOMEM). */
int reconnect_remember (struct nbdaio_handle *h, enum rc_target kind,
                        const char *where, const char *port);
/* The connection of h (H_CONNECTED) was lost with err: if reconnect is on
 * and err is a loss (not a violation, a shutdown or an abort), close it,
 * put every sent command back on the send queue in send order and make h
 * H_RECONNECTING.  Returns true if so. */
bool reconnect_begin (struct nbdaio_handle *h, int err);
/* Try to reconnect if an attempt is due, waiting up to wait_ms (-1: until
 * it succeeds or gives up) for attempts.  Returns 1 (connected again, the
 * queue resent as the socket allows), 0 (still reconnecting), or -1 (gave
 * up: every command failed with the original error). */
int reconnect_run (struct nbdaio_handle *h, int wait_ms);
/* ms until the next attempt (0 when due). */
int reconnect_timeout (struct nbdaio_handle *h);
/* Free what reconnect.c holds (the target, the timer). */
void reconnect_free (struct nbdaio_handle *h);

/* loop.c */
/* End the connection: keep the current error message as the reason, fail
 * every command with err, close the socket.  With reconnect on and err a
 * lost connection (reconnect_begin), it is re-established instead and 0
 * is returned; otherwise -1 with the reason as the last error. */
int conn_die (struct nbdaio_handle *h, int err);
/* conn_die without a reconnect (abort, close, giving up). */
int conn_end (struct nbdaio_handle *h, int err);
/* Send NBD_CMD_DISC when a disconnect is wanted and nothing is in flight. */
void conn_maybe_disconnect (struct nbdaio_handle *h);


#endif
