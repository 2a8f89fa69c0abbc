/* handshake.h - NBD option negotiation: oldstyle, newstyle and fixed
 * newstyle, structured replies, meta context, NBD_OPT_GO with fallback to
 * NBD_OPT_EXPORT_NAME.  Internal. */
#ifndef NBDAIO_HANDSHAKE_H
#define NBDAIO_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "tls.h"
#include "transport.h"

enum protocol { PROTO_OLDSTYLE, PROTO_NEWSTYLE, PROTO_NEWSTYLE_FIXED };

struct handshake_opts {
  const char *export_name;     /* never NULL */
  bool structured;             /* ask for structured replies */
  const char *meta_context;    /* context to ask for, or NULL */
  bool debug;
  int64_t deadline;            /* transport_now_ms () value, 0 = none */
  const struct tls_config *tls;
  const char *host;            /* TCP host (for TLS), NULL for unix */
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
  bool structured;
  bool tls;                    /* running over TLS */
  char *meta_context;          /* negotiated context, or NULL */
  uint32_t meta_context_id;
};

/* Run the whole handshake on t, with NBD_OPT_STARTTLS first when TLS is
 * wanted (tls->mode REQUIRE never continues without TLS: nothing but
 * NBD_OPT_ABORT is sent in plaintext after a refusal).  Returns 0 with
 * *info filled, or -1 with a message naming the cause (option error
 * replies, TLS failures, EOF, timeouts, protocol violations "[rule]").  *info needs export_info_free either way. */
int handshake_run (struct transport *t, const struct handshake_opts *o,
                   struct export_info *info);

void export_info_free (struct export_info *info);

#endif
