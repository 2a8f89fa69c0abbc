/* info.c - what the handshake found, as the public getters expose it (also
 * while negotiating in opt mode: the connection facts at once, the export
 * facts after a successful nbdaio_opt_info). */
#include <errno.h>

#include "error.h"
#include "internal.h"

/* Each getter declares the states it answers in: the export's facts
 * EXPORT_KNOWN (once connected, and still after the connection ended, or
 * while negotiating once NBD_OPT_INFO answered), the connection's
 * (protocol, handshake flags, structured replies, TLS) also IN_NEGOTIATING
 * (known from the greeting on). */

static int
tflag (struct nbdaio_handle *h, uint16_t flag, const char *call)
{
  if (handle_check_state (h, EXPORT_KNOWN, call) == -1)
    return -1;
  return (h->info.tflags & flag) != 0;
}

int64_t
nbdaio_get_size (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  return (int64_t) h->info.size;
}

const char *
nbdaio_get_export_name (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return NULL;
  return h->info.name;
}

const char *
nbdaio_get_export_description (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return NULL;
  return h->info.description;
}

const char *
nbdaio_get_protocol (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING | EXPORT_KNOWN, __func__) == -1)
    return NULL;
  switch (h->info.protocol) {
  case PROTO_OLDSTYLE: return "oldstyle";
  case PROTO_NEWSTYLE: return "newstyle";
  default:             return "newstyle-fixed";
  }
}

#define TFLAG_GETTER(name, flag) \
  int name (struct nbdaio_handle *h) { return tflag (h, flag, __func__); }
TFLAG_GETTER (nbdaio_is_read_only, NBD_FLAG_READ_ONLY)
TFLAG_GETTER (nbdaio_can_flush, NBD_FLAG_SEND_FLUSH)
TFLAG_GETTER (nbdaio_can_fua, NBD_FLAG_SEND_FUA)
TFLAG_GETTER (nbdaio_can_trim, NBD_FLAG_SEND_TRIM)
TFLAG_GETTER (nbdaio_can_zero, NBD_FLAG_SEND_WRITE_ZEROES)
TFLAG_GETTER (nbdaio_can_fast_zero, NBD_FLAG_SEND_FAST_ZERO)
TFLAG_GETTER (nbdaio_can_cache, NBD_FLAG_SEND_CACHE)
TFLAG_GETTER (nbdaio_can_df, NBD_FLAG_SEND_DF)
TFLAG_GETTER (nbdaio_can_multi_conn, NBD_FLAG_CAN_MULTI_CONN)
TFLAG_GETTER (nbdaio_is_rotational, NBD_FLAG_ROTATIONAL)

int
nbdaio_can_write (struct nbdaio_handle *h)
{
  int ro = tflag (h, NBD_FLAG_READ_ONLY, __func__);

  return ro == -1 ? -1 : !ro;
}

int
nbdaio_can_block_status (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.meta_context != NULL;
}

int
nbdaio_can_block_status_payload (struct nbdaio_handle *h)
{
  int r = tflag (h, NBD_FLAG_BLOCK_STATUS_PAYLOAD, __func__);

  return r == 1 ? h->info.extended : r;
}

int64_t
nbdaio_get_block_size (struct nbdaio_handle *h, int which)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  switch (which) {
  case NBDAIO_SIZE_MINIMUM:   return h->info.bs_min;
  case NBDAIO_SIZE_PREFERRED: return h->info.bs_pref;
  case NBDAIO_SIZE_MAXIMUM:   return h->info.bs_max;
  default:
    return set_error (EINVAL, "unknown block size selector %d", which);
  }
}

int64_t
nbdaio_get_max_payload (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  if (handle_in (h, IN_NEGOTIATING))  /* what nbdaio_opt_go would make of it */
    return h->info.bs_max ? h->info.bs_max : NBD_DEFAULT_MAX_PAYLOAD;
  return (int64_t) h->max_payload;
}

int
nbdaio_get_structured_replies_negotiated (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING | EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.structured_replies;
}

int
nbdaio_get_extended_headers_negotiated (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING | EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.extended;
}

int
nbdaio_get_tls_negotiated (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING | EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.tls;
}

const char *
nbdaio_get_meta_context (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return NULL;
  return h->info.meta_context;
}

int
nbdaio_get_nr_meta_contexts (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  return (int) h->info.nmetas;
}

int
nbdaio_can_meta_context (struct nbdaio_handle *h, const char *name)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  if (!name)
    return set_error (EINVAL, "meta context name is NULL");
  for (uint32_t i = 0; i < h->info.nmetas; i++)
    if (strcmp (h->info.metas[i].name, name) == 0)
      return 1;
  return 0;
}

int
nbdaio_get_handshake_flags (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_NEGOTIATING | EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.hflags;
}

int
nbdaio_get_transmission_flags (struct nbdaio_handle *h)
{
  if (handle_check_state (h, EXPORT_KNOWN, __func__) == -1)
    return -1;
  return h->info.tflags;
}

int
nbdaio_is_connected (struct nbdaio_handle *h)
{
  return handle_in (h, IN_CONNECTED);
}

const char *
nbdaio_get_connection_error (struct nbdaio_handle *h)
{
  return h ? h->conn_error : NULL;
}

const char *
nbdaio_get_connection_violation (struct nbdaio_handle *h)
{
  const struct rule *r = h && h->conn_error ? rule_get (h->conn_rule) : NULL;

  return r ? r->tag : NULL;
}
