/* handshake.h - NBD option negotiation: oldstyle, newstyle and fixed
 * newstyle, structured replies, meta context, NBD_OPT_GO with fallback to
 * NBD_OPT_EXPORT_NAME, and the single option exchanges of opt mode (LIST,
 * INFO, LIST_META_CONTEXT, raw options, ABORT).  Internal. */
#ifndef NBDAIO_HANDSHAKE_H
#define NBDAIO_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "nbdaio.h"
#include "tls.h"
#include "transport.h"

enum protocol { PROTO_OLDSTYLE, PROTO_NEWSTYLE, PROTO_NEWSTYLE_FIXED };

struct handshake_opts {
  const char *export_name;     /* never NULL */
  bool ask_structured_replies; /* NBD_OPT_STRUCTURED_REPLY */
  bool ask_extended_headers;   /* with ask_structured_replies: ask for
                                * NBD_OPT_EXTENDED_HEADERS first */
  const char *meta_context;    /* context to ask for, or NULL */
  const char *const *meta_more; /* with meta_context: more to ask for
                                 * (NULL-terminated; NULL: none) */
  bool debug;
  int64_t deadline;            /* transport_now_ms () value, 0 = none */
  const struct tls_config *tls;
  const char *host;            /* TCP host (for TLS), NULL for unix */
  /* opt mode: an error reply to an option leaves the connection
   * negotiating (no NBD_OPT_ABORT is sent; the call returns HS_REFUSED) */
  bool keep_negotiating;
  uint32_t *reply_type;        /* if set: the type of each final reply
                                * (NBD_REP_ACK or an error) read */
};

/* How a handshake step ended.  HS_FAILED is -1, so a set_error or
 * set_violation result can be returned as it is. */
enum hs_result {
  HS_FAILED = -1,              /* the connection is unusable; the last
                                * error says why */
  HS_OK = 0,
  HS_REFUSED,                  /* only with o->keep_negotiating: the server
                                * answered with an error reply (the last
                                * error says which); the connection goes on
                                * negotiating */
  HS_UNSUPPORTED,              /* inside handshake.c: the server does not
                                * know the option; ask the older one */
};

/* What the handshake found. */
struct export_info {
  enum protocol protocol;
  uint16_t hflags;             /* handshake flags (0 for oldstyle) */
  uint16_t tflags;             /* transmission flags */
  uint64_t size;
  char *name;                  /* from NBD_INFO_NAME, else as asked */
  char *description;           /* from NBD_INFO_DESCRIPTION, or NULL */
  uint32_t bs_min, bs_pref, bs_max;   /* 0 when not advertised */
  bool bs_given;               /* NBD_INFO_BLOCK_SIZE arrived */
  bool structured_replies;     /* structured replies negotiated */
  bool extended;               /* extended headers negotiated (implies
                                * structured) */
  bool tls;                    /* running over TLS */
  char *meta_context;          /* negotiated context (the first of metas,
                                * the same string), or NULL */
  uint32_t meta_context_id;
  struct meta_ctx {
    char *name;
    uint32_t id;
  } metas[NBDAIO_MAX_META_CONTEXTS]; /* every negotiated context, in the
                                      * order the server named them */
  uint32_t nmetas;
};

/* Run the whole handshake on t, with NBD_OPT_STARTTLS first when TLS is
 * wanted (tls->mode REQUIRE never continues without TLS: nothing but
 * NBD_OPT_ABORT is sent in plaintext after a refusal).  Returns HS_OK with
 * *info filled, or HS_FAILED with a message naming the cause (option
 * error replies, TLS failures, EOF, timeouts, protocol violations
 * "[rule]").  *info needs export_info_free either way.  handshake_start
 * followed by handshake_finish. */
enum hs_result handshake_run (struct transport *t,
                              const struct handshake_opts *o,
                              struct export_info *info);

/* The first part: greeting, client flags, NBD_OPT_STARTTLS and
 * NBD_OPT_EXTENDED_HEADERS (refused: NBD_OPT_STRUCTURED_REPLY) as o asks
 * (fixed newstyle only).  Fills the connection facts of *info (protocol,
 * hflags, structured_replies, extended, tls; size and tflags for
 * oldstyle).
 * Returns HS_OK or HS_FAILED. */
enum hs_result handshake_start (struct transport *t,
                                const struct handshake_opts *o,
                                struct export_info *info);
/* After handshake_start: may options be exchanged (fixed newstyle)? */
bool handshake_can_negotiate (const struct export_info *info);
/* The second part: NBD_OPT_SET_META_CONTEXT (with structured replies and
 * o->meta_context) and NBD_OPT_GO, falling back to NBD_OPT_EXPORT_NAME;
 * NBD_OPT_EXPORT_NAME alone for non-fixed newstyle; nothing for oldstyle.
 * Then the rules on flags and block sizes.  On success *info is replaced
 * by what this exchange found (HS_OK); else it is left as it was
 * (HS_FAILED, or HS_REFUSED with o->keep_negotiating). */
enum hs_result handshake_finish (struct transport *t,
                                 const struct handshake_opts *o,
                                 struct export_info *info);

/* Single option exchanges on a negotiating connection (fixed newstyle,
 * after handshake_start).  Each returns HS_OK (with what it says it
 * gives), HS_FAILED (connection unusable) or HS_REFUSED (error reply;
 * only with o->keep_negotiating). */
/* NBD_OPT_LIST: *count exports; cb (may be NULL) runs for each once the
 * final NBD_REP_ACK arrived. */
enum hs_result handshake_opt_list (struct transport *t,
                                   const struct handshake_opts *o,
                                   nbdaio_list_callback cb, void *user_data,
                                   int *count);
/* NBD_OPT_INFO for o->export_name: on success the export facts of *info
 * (name, description, size, tflags, block sizes) are replaced. */
enum hs_result handshake_opt_info (struct transport *t,
                                   const struct handshake_opts *o,
                                   struct export_info *info);
/* NBD_OPT_LIST_META_CONTEXT for o->export_name with the NULL-terminated
 * queries (NULL: none): *count contexts; cb as for LIST. */
enum hs_result handshake_opt_list_meta_context (struct transport *t,
                                                const struct handshake_opts *o,
                                                const char *const *queries,
                                                nbdaio_context_callback cb,
                                                void *user_data, int *count);
/* Any option: *reply_type is the type of the final reply (an error reply
 * too: this never returns HS_REFUSED).  An NBD_REP_ACK to
 * NBD_OPT_STRUCTURED_REPLY sets info->structured_replies, one to
 * NBD_OPT_EXTENDED_HEADERS info->extended (and structured). */
enum hs_result handshake_opt_raw (struct transport *t,
                                  const struct handshake_opts *o,
                                  struct export_info *info, uint32_t option,
                                  const void *data, uint32_t len,
                                  uint32_t *reply_type);
/* NBD_OPT_ABORT, then wait briefly for the (optional) reply.  Never
 * fails; the caller closes t. */
void handshake_opt_abort (struct transport *t,
                          const struct handshake_opts *o);

void export_info_free (struct export_info *info);

#endif
