/* proto.c - names of protocol constants for traces and messages, and the
 * mapping of NBD wire errors to errno. */
#include <errno.h>
#include <stdint.h>

#include "proto.h"

const char *
proto_option_name (uint32_t opt)
{
  switch (opt) {
  case NBD_OPT_EXPORT_NAME:       return "NBD_OPT_EXPORT_NAME";
  case NBD_OPT_ABORT:             return "NBD_OPT_ABORT";
  case NBD_OPT_LIST:              return "NBD_OPT_LIST";
  case NBD_OPT_STARTTLS:          return "NBD_OPT_STARTTLS";
  case NBD_OPT_INFO:              return "NBD_OPT_INFO";
  case NBD_OPT_GO:                return "NBD_OPT_GO";
  case NBD_OPT_STRUCTURED_REPLY:  return "NBD_OPT_STRUCTURED_REPLY";
  case NBD_OPT_LIST_META_CONTEXT: return "NBD_OPT_LIST_META_CONTEXT";
  case NBD_OPT_SET_META_CONTEXT:  return "NBD_OPT_SET_META_CONTEXT";
  case NBD_OPT_EXTENDED_HEADERS:  return "NBD_OPT_EXTENDED_HEADERS";
  default:                        return "unknown option";
  }
}

const char *
proto_reply_name (uint32_t reply)
{
  switch (reply) {
  case NBD_REP_ACK:                 return "NBD_REP_ACK";
  case NBD_REP_SERVER:              return "NBD_REP_SERVER";
  case NBD_REP_INFO:                return "NBD_REP_INFO";
  case NBD_REP_META_CONTEXT:        return "NBD_REP_META_CONTEXT";
  case NBD_REP_ERR_UNSUP:           return "NBD_REP_ERR_UNSUP (not supported)";
  case NBD_REP_ERR_POLICY:          return "NBD_REP_ERR_POLICY (forbidden by server policy)";
  case NBD_REP_ERR_INVALID:         return "NBD_REP_ERR_INVALID (invalid request)";
  case NBD_REP_ERR_PLATFORM:        return "NBD_REP_ERR_PLATFORM (not supported on the server's platform)";
  case NBD_REP_ERR_TLS_REQD:        return "NBD_REP_ERR_TLS_REQD (server requires TLS)";
  case NBD_REP_ERR_UNKNOWN:         return "NBD_REP_ERR_UNKNOWN (unknown export)";
  case NBD_REP_ERR_SHUTDOWN:        return "NBD_REP_ERR_SHUTDOWN (server is shutting down)";
  case NBD_REP_ERR_BLOCK_SIZE_REQD: return "NBD_REP_ERR_BLOCK_SIZE_REQD (server requires block size negotiation)";
  case NBD_REP_ERR_TOO_BIG:         return "NBD_REP_ERR_TOO_BIG (request too big)";
  case NBD_REP_ERR_EXT_HEADER_REQD: return "NBD_REP_ERR_EXT_HEADER_REQD (server requires extended headers)";
  default:
    return (reply & NBD_REP_FLAG_ERROR) ? "unknown error reply" : "unknown reply";
  }
}

const char *
proto_cmd_name (uint16_t type)
{
  switch (type) {
  case NBD_CMD_READ:         return "NBD_CMD_READ";
  case NBD_CMD_WRITE:        return "NBD_CMD_WRITE";
  case NBD_CMD_DISC:         return "NBD_CMD_DISC";
  case NBD_CMD_FLUSH:        return "NBD_CMD_FLUSH";
  case NBD_CMD_TRIM:         return "NBD_CMD_TRIM";
  case NBD_CMD_CACHE:        return "NBD_CMD_CACHE";
  case NBD_CMD_WRITE_ZEROES: return "NBD_CMD_WRITE_ZEROES";
  case NBD_CMD_BLOCK_STATUS: return "NBD_CMD_BLOCK_STATUS";
  default:                   return "unknown command";
  }
}

const char *
proto_chunk_name (uint16_t type)
{
  switch (type) {
  case NBD_REPLY_TYPE_NONE:         return "NBD_REPLY_TYPE_NONE";
  case NBD_REPLY_TYPE_OFFSET_DATA:  return "NBD_REPLY_TYPE_OFFSET_DATA";
  case NBD_REPLY_TYPE_OFFSET_HOLE:  return "NBD_REPLY_TYPE_OFFSET_HOLE";
  case NBD_REPLY_TYPE_BLOCK_STATUS: return "NBD_REPLY_TYPE_BLOCK_STATUS";
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: return "NBD_REPLY_TYPE_BLOCK_STATUS_EXT";
  case NBD_REPLY_TYPE_ERROR:        return "NBD_REPLY_TYPE_ERROR";
  case NBD_REPLY_TYPE_ERROR_OFFSET: return "NBD_REPLY_TYPE_ERROR_OFFSET";
  default:
    return (type & NBD_REPLY_TYPE_ERROR_BIT) ? "unknown error chunk" : "unknown chunk";
  }
}

int
proto_errno_from_wire (uint32_t err)
{
  switch (err) {
  case NBD_EPERM:     return EPERM;
  case NBD_EIO:       return EIO;
  case NBD_ENOMEM:    return ENOMEM;
  case NBD_EINVAL:    return EINVAL;
  case NBD_ENOSPC:    return ENOSPC;
  case NBD_EOVERFLOW: return EOVERFLOW;
  case NBD_ENOTSUP:   return ENOTSUP;
  case NBD_ESHUTDOWN: return ESHUTDOWN;
  default:            return EINVAL;
  }
}
