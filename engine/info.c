/* info.c - what the handshake found, as the public getters expose it (also
 * while negotiating in opt mode: the connection facts at once, the export
 * facts after a successful nbdaio_opt_info). */
#include <errno.h>

#include "error.h"
#include "internal.h"

/* The export facts are known once connected (and stay readable after the
 * connection ended), or while negotiating once NBD_OPT_INFO answered. */
static int
check_info (struct nbdaio_handle *h)
{
  if (!h)
    return set_error (EINVAL, "handle is NULL");
  if (h->state == H_NEGOTIATING && !h->info.name)
    return set_error (EINVAL, "handle is negotiating and knows no export "
                      "yet (call nbdaio_opt_info or nbdaio_opt_go)");
  if (h->state == H_NEW || !h->info.name)
    return set_error (EINVAL, "handle has not connected yet");
  return 0;
}

/* The connection facts (protocol, handshake flags, structured replies,
 * TLS) are known from the greeting on: also while negotiating. */
static int
check_conn_info (struct nbdaio_handle *h)
{
  if (h && h->state == H_NEGOTIATING)
    return 0;
  return check_info (h);
}

static int
tflag (struct nbdaio_handle *h, uint16_t flag)
{
  if (check_info (h) == -1)
    return -1;
  return (h->info.tflags & flag) != 0;
}

int64_t
nbdaio_get_size (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? -1 : (int64_t) h->info.size;
}

const char *
nbdaio_get_export_name (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? NULL : h->info.name;
}

const char *
nbdaio_get_export_description (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? NULL : h->info.description;
}

const char *
nbdaio_get_protocol (struct nbdaio_handle *h)
{
  if (check_conn_info (h) == -1)
    return NULL;
  switch (h->info.protocol) {
  case PROTO_OLDSTYLE: return "oldstyle";
  case PROTO_NEWSTYLE: return "newstyle";
  default:             return "newstyle-fixed";
  }
}

int nbdaio_is_read_only (struct nbdaio_handle *h)  { return tflag (h, NBD_FLAG_READ_ONLY); }
int nbdaio_can_flush (struct nbdaio_handle *h)     { return tflag (h, NBD_FLAG_SEND_FLUSH); }
int nbdaio_can_fua (struct nbdaio_handle *h)       { return tflag (h, NBD_FLAG_SEND_FUA); }
int nbdaio_can_trim (struct nbdaio_handle *h)      { return tflag (h, NBD_FLAG_SEND_TRIM); }
int nbdaio_can_zero (struct nbdaio_handle *h)      { return tflag (h, NBD_FLAG_SEND_WRITE_ZEROES); }
int nbdaio_can_fast_zero (struct nbdaio_handle *h) { return tflag (h, NBD_FLAG_SEND_FAST_ZERO); }
int nbdaio_can_cache (struct nbdaio_handle *h)     { return tflag (h, NBD_FLAG_SEND_CACHE); }
int nbdaio_can_df (struct nbdaio_handle *h)        { return tflag (h, NBD_FLAG_SEND_DF); }
int nbdaio_can_multi_conn (struct nbdaio_handle *h) { return tflag (h, NBD_FLAG_CAN_MULTI_CONN); }
int nbdaio_is_rotational (struct nbdaio_handle *h) { return tflag (h, NBD_FLAG_ROTATIONAL); }

int
nbdaio_can_write (struct nbdaio_handle *h)
{
  int ro = nbdaio_is_read_only (h);

  return ro == -1 ? -1 : !ro;
}

int
nbdaio_can_block_status (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? -1 : h->info.meta_context != NULL;
}

int
nbdaio_can_block_status_payload (struct nbdaio_handle *h)
{
  int r = tflag (h, NBD_FLAG_BLOCK_STATUS_PAYLOAD);

  return r == 1 ? h->info.extended : r;
}

int64_t
nbdaio_get_block_size (struct nbdaio_handle *h, int which)
{
  if (check_info (h) == -1)
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
  if (check_info (h) == -1)
    return -1;
  if (h->state == H_NEGOTIATING)   /* what nbdaio_opt_go would make of it */
    return h->info.bs_max ? h->info.bs_max : NBD_DEFAULT_MAX_PAYLOAD;
  return (int64_t) h->max_payload;
}

int
nbdaio_get_structured_replies_negotiated (struct nbdaio_handle *h)
{
  return check_conn_info (h) == -1 ? -1 : h->info.structured_replies;
}

int
nbdaio_get_extended_headers (struct nbdaio_handle *h)
{
  return check_conn_info (h) == -1 ? -1 : h->info.extended;
}

int
nbdaio_get_tls_negotiated (struct nbdaio_handle *h)
{
  return check_conn_info (h) == -1 ? -1 : h->info.tls;
}

const char *
nbdaio_get_meta_context (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? NULL : h->info.meta_context;
}

int
nbdaio_get_nr_meta_contexts (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? -1 : (int) h->info.nmetas;
}

int
nbdaio_can_meta_context (struct nbdaio_handle *h, const char *name)
{
  if (check_info (h) == -1)
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
  return check_conn_info (h) == -1 ? -1 : h->info.hflags;
}

int
nbdaio_get_transmission_flags (struct nbdaio_handle *h)
{
  return check_info (h) == -1 ? -1 : h->info.tflags;
}

int
nbdaio_is_connected (struct nbdaio_handle *h)
{
  return h && h->state == H_CONNECTED;
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
