/* proto.c - the names of protocol constants: one table per kind, indexed
 * by value and built from proto.h's macros (so a name is always spelled as
 * its constant), behind the public nbdaio_*_name calls and the internal
 * proto_*_name of traces and messages; and the mapping of NBD wire errors
 * to errno. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "nbdaio.h"
#include "proto.h"

#define NAME(c) [c] = #c
#define N_OF(a) (sizeof (a) / sizeof (a)[0])

static const char *const option_names[] = {
  NAME (NBD_OPT_EXPORT_NAME),
  NAME (NBD_OPT_ABORT),
  NAME (NBD_OPT_LIST),
  NAME (NBD_OPT_STARTTLS),
  NAME (NBD_OPT_INFO),
  NAME (NBD_OPT_GO),
  NAME (NBD_OPT_STRUCTURED_REPLY),
  NAME (NBD_OPT_LIST_META_CONTEXT),
  NAME (NBD_OPT_SET_META_CONTEXT),
  NAME (NBD_OPT_EXTENDED_HEADERS),
};

static const char *const rep_names[] = {
  NAME (NBD_REP_ACK),
  NAME (NBD_REP_SERVER),
  NAME (NBD_REP_INFO),
  NAME (NBD_REP_META_CONTEXT),
};

/* error replies, indexed without NBD_REP_FLAG_ERROR; messages say what
 * the error means after its name */
struct rep_err {
  const char *name;
  const char *described;        /* "NBD_REP_ERR_UNSUP (not supported)" */
};
#define REP_ERR(c, why) [(c) & ~NBD_REP_FLAG_ERROR] = { #c, #c " (" why ")" }
static const struct rep_err rep_err_names[] = {
  REP_ERR (NBD_REP_ERR_UNSUP, "not supported"),
  REP_ERR (NBD_REP_ERR_POLICY, "forbidden by server policy"),
  REP_ERR (NBD_REP_ERR_INVALID, "invalid request"),
  REP_ERR (NBD_REP_ERR_PLATFORM, "not supported on the server's platform"),
  REP_ERR (NBD_REP_ERR_TLS_REQD, "server requires TLS"),
  REP_ERR (NBD_REP_ERR_UNKNOWN, "unknown export"),
  REP_ERR (NBD_REP_ERR_SHUTDOWN, "server is shutting down"),
  REP_ERR (NBD_REP_ERR_BLOCK_SIZE_REQD,
           "server requires block size negotiation"),
  REP_ERR (NBD_REP_ERR_TOO_BIG, "request too big"),
  REP_ERR (NBD_REP_ERR_EXT_HEADER_REQD, "server requires extended headers"),
};

static const char *const cmd_names[] = {
  NAME (NBD_CMD_READ),
  NAME (NBD_CMD_WRITE),
  NAME (NBD_CMD_DISC),
  NAME (NBD_CMD_FLUSH),
  NAME (NBD_CMD_TRIM),
  NAME (NBD_CMD_CACHE),
  NAME (NBD_CMD_WRITE_ZEROES),
  NAME (NBD_CMD_BLOCK_STATUS),
};

static const char *const chunk_names[] = {
  NAME (NBD_REPLY_TYPE_NONE),
  NAME (NBD_REPLY_TYPE_OFFSET_DATA),
  NAME (NBD_REPLY_TYPE_OFFSET_HOLE),
  NAME (NBD_REPLY_TYPE_BLOCK_STATUS),
  NAME (NBD_REPLY_TYPE_BLOCK_STATUS_EXT),
};

/* error chunk types, indexed without NBD_REPLY_TYPE_ERROR_BIT */
#define ERROR_CHUNK(c) [(c) & ~NBD_REPLY_TYPE_ERROR_BIT] = #c
static const char *const error_chunk_names[] = {
  ERROR_CHUNK (NBD_REPLY_TYPE_ERROR),
  ERROR_CHUNK (NBD_REPLY_TYPE_ERROR_OFFSET),
};

/* wire errors: name and the errno they map to */
struct wire_error {
  const char *name;
  int errnum;
};
#define WIRE_ERROR(c, e) [c] = { #c, e }
static const struct wire_error wire_errors[] = {
  WIRE_ERROR (NBD_EPERM, EPERM),
  WIRE_ERROR (NBD_EIO, EIO),
  WIRE_ERROR (NBD_ENOMEM, ENOMEM),
  WIRE_ERROR (NBD_EINVAL, EINVAL),
  WIRE_ERROR (NBD_ENOSPC, ENOSPC),
  WIRE_ERROR (NBD_EOVERFLOW, EOVERFLOW),
  WIRE_ERROR (NBD_ENOTSUP, ENOTSUP),
  WIRE_ERROR (NBD_ESHUTDOWN, ESHUTDOWN),
};

/* names[v] of a table of n names, or NULL (a gap or past the end) */
static const char *
lookup (const char *const *names, size_t n, uint32_t v)
{
  return v < n ? names[v] : NULL;
}

static const struct rep_err *
rep_err (uint32_t reply)
{
  uint32_t i = reply & ~NBD_REP_FLAG_ERROR;

  if (!(reply & NBD_REP_FLAG_ERROR) || i >= N_OF (rep_err_names) ||
      !rep_err_names[i].name)
    return NULL;
  return &rep_err_names[i];
}

static const struct wire_error *
wire_error (uint32_t err)
{
  if (err >= N_OF (wire_errors) || !wire_errors[err].name)
    return NULL;
  return &wire_errors[err];
}

const char *
nbdaio_option_name (uint32_t option)
{
  return lookup (option_names, N_OF (option_names), option);
}

const char *
nbdaio_option_reply_name (uint32_t reply)
{
  const struct rep_err *e = rep_err (reply);

  if (reply & NBD_REP_FLAG_ERROR)
    return e ? e->name : NULL;
  return lookup (rep_names, N_OF (rep_names), reply);
}

const char *
nbdaio_command_name (uint16_t type)
{
  return lookup (cmd_names, N_OF (cmd_names), type);
}

const char *
nbdaio_reply_type_name (uint16_t type)
{
  if (type & NBD_REPLY_TYPE_ERROR_BIT)
    return lookup (error_chunk_names, N_OF (error_chunk_names),
                   type & ~NBD_REPLY_TYPE_ERROR_BIT);
  return lookup (chunk_names, N_OF (chunk_names), type);
}

const char *
nbdaio_error_name (uint32_t err)
{
  const struct wire_error *e = wire_error (err);

  return e ? e->name : NULL;
}

const char *
proto_option_name (uint32_t opt)
{
  const char *name = nbdaio_option_name (opt);

  return name ? name : "unknown option";
}

const char *
proto_reply_name (uint32_t reply)
{
  const struct rep_err *e = rep_err (reply);
  const char *name = nbdaio_option_reply_name (reply);

  if (e)
    return e->described;
  if (name)
    return name;
  return (reply & NBD_REP_FLAG_ERROR) ? "unknown error reply" : "unknown reply";
}

const char *
proto_cmd_name (uint16_t type)
{
  const char *name = nbdaio_command_name (type);

  return name ? name : "unknown command";
}

const char *
proto_chunk_name (uint16_t type)
{
  const char *name = nbdaio_reply_type_name (type);

  if (name)
    return name;
  return (type & NBD_REPLY_TYPE_ERROR_BIT) ? "unknown error chunk"
                                           : "unknown chunk";
}

int
proto_errno_from_wire (uint32_t err)
{
  const struct wire_error *e = wire_error (err);

  return e ? e->errnum : EINVAL;
}
