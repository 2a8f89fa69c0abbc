/* proto.h - the NBD wire format: the protocol constants under the
 * specification's names, the fixed message sizes and big-endian load/store
 * helpers.  Internal.  Each number is written once in the project: here, or,
 * for what crosses the API (handshake and transmission flags, options,
 * option reply types, command flags), in nbdaio.h as NBDAIO_*, which the
 * NBD_* names below stand for. */
#ifndef NBDAIO_PROTO_H
#define NBDAIO_PROTO_H

#include <stdint.h>
#include <string.h>
#include <endian.h>

#include "nbdaio.h"

/* handshake magics */
#define NBD_MAGIC_INIT          UINT64_C(0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_MAGIC_OPT           UINT64_C(0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_MAGIC_OLDSTYLE      UINT64_C(0x0000420281861253)
#define NBD_MAGIC_OPT_REPLY     UINT64_C(0x0003e889045565a9)

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE    NBDAIO_HANDSHAKE_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_NO_ZEROES         NBDAIO_HANDSHAKE_FLAG_NO_ZEROES
#define NBD_HANDSHAKE_FLAGS_KNOWN (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS         NBDAIO_FLAG_HAS_FLAGS
#define NBD_FLAG_READ_ONLY         NBDAIO_FLAG_READ_ONLY
#define NBD_FLAG_SEND_FLUSH        NBDAIO_FLAG_SEND_FLUSH
#define NBD_FLAG_SEND_FUA          NBDAIO_FLAG_SEND_FUA
#define NBD_FLAG_ROTATIONAL        NBDAIO_FLAG_ROTATIONAL
#define NBD_FLAG_SEND_TRIM         NBDAIO_FLAG_SEND_TRIM
#define NBD_FLAG_SEND_WRITE_ZEROES NBDAIO_FLAG_SEND_WRITE_ZEROES
#define NBD_FLAG_SEND_DF           NBDAIO_FLAG_SEND_DF
#define NBD_FLAG_CAN_MULTI_CONN    NBDAIO_FLAG_CAN_MULTI_CONN
#define NBD_FLAG_SEND_RESIZE       NBDAIO_FLAG_SEND_RESIZE
#define NBD_FLAG_SEND_CACHE        NBDAIO_FLAG_SEND_CACHE
#define NBD_FLAG_SEND_FAST_ZERO    NBDAIO_FLAG_SEND_FAST_ZERO
#define NBD_FLAG_BLOCK_STATUS_PAYLOAD NBDAIO_FLAG_BLOCK_STATUS_PAYLOAD

/* options */
#define NBD_OPT_EXPORT_NAME        NBDAIO_OPT_EXPORT_NAME
#define NBD_OPT_ABORT              NBDAIO_OPT_ABORT
#define NBD_OPT_LIST               NBDAIO_OPT_LIST
#define NBD_OPT_STARTTLS           NBDAIO_OPT_STARTTLS
#define NBD_OPT_INFO               NBDAIO_OPT_INFO
#define NBD_OPT_GO                 NBDAIO_OPT_GO
#define NBD_OPT_STRUCTURED_REPLY   NBDAIO_OPT_STRUCTURED_REPLY
#define NBD_OPT_LIST_META_CONTEXT  NBDAIO_OPT_LIST_META_CONTEXT
#define NBD_OPT_SET_META_CONTEXT   NBDAIO_OPT_SET_META_CONTEXT
#define NBD_OPT_EXTENDED_HEADERS   NBDAIO_OPT_EXTENDED_HEADERS

/* option reply types */
#define NBD_REP_ACK                NBDAIO_REP_ACK
#define NBD_REP_SERVER             NBDAIO_REP_SERVER
#define NBD_REP_INFO               NBDAIO_REP_INFO
#define NBD_REP_META_CONTEXT       NBDAIO_REP_META_CONTEXT
#define NBD_REP_FLAG_ERROR         NBDAIO_REP_FLAG_ERROR
#define NBD_REP_ERR_UNSUP          NBDAIO_REP_ERR_UNSUP
#define NBD_REP_ERR_POLICY         NBDAIO_REP_ERR_POLICY
#define NBD_REP_ERR_INVALID        NBDAIO_REP_ERR_INVALID
#define NBD_REP_ERR_PLATFORM       NBDAIO_REP_ERR_PLATFORM
#define NBD_REP_ERR_TLS_REQD       NBDAIO_REP_ERR_TLS_REQD
#define NBD_REP_ERR_UNKNOWN        NBDAIO_REP_ERR_UNKNOWN
#define NBD_REP_ERR_SHUTDOWN       NBDAIO_REP_ERR_SHUTDOWN
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBDAIO_REP_ERR_BLOCK_SIZE_REQD
#define NBD_REP_ERR_TOO_BIG        NBDAIO_REP_ERR_TOO_BIG
#define NBD_REP_ERR_EXT_HEADER_REQD NBDAIO_REP_ERR_EXT_HEADER_REQD

/* NBD_OPT_INFO / NBD_OPT_GO information types */
#define NBD_INFO_EXPORT           0
#define NBD_INFO_NAME             1
#define NBD_INFO_DESCRIPTION      2
#define NBD_INFO_BLOCK_SIZE       3

/* commands */
#define NBD_CMD_READ              0
#define NBD_CMD_WRITE             1
#define NBD_CMD_DISC              2
#define NBD_CMD_FLUSH             3
#define NBD_CMD_TRIM              4
#define NBD_CMD_CACHE             5
#define NBD_CMD_WRITE_ZEROES      6
#define NBD_CMD_BLOCK_STATUS      7

/* transmission magics */
#define NBD_MAGIC_REQUEST         UINT32_C(0x25609513)
#define NBD_MAGIC_SIMPLE_REPLY    UINT32_C(0x67446698)
#define NBD_MAGIC_STRUCTURED_REPLY UINT32_C(0x668e33ef)
#define NBD_MAGIC_EXT_REQUEST     UINT32_C(0x21e41c71)
#define NBD_MAGIC_EXT_REPLY       UINT32_C(0x6e8a278c)

/* command flag only the wire format sets (extended headers: a payload
 * follows the request; every NBD_CMD_WRITE carries it) */
#define NBD_CMD_FLAG_PAYLOAD_LEN  (1u << 5)

/* structured reply flags and chunk types */
#define NBD_REPLY_FLAG_DONE       (1u << 0)
#define NBD_REPLY_TYPE_NONE       0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR_BIT  (1u << 15)
#define NBD_REPLY_TYPE_ERROR      (NBD_REPLY_TYPE_ERROR_BIT | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET (NBD_REPLY_TYPE_ERROR_BIT | 2)

/* error values on the wire */
#define NBD_EPERM      1
#define NBD_EIO        5
#define NBD_ENOMEM     12
#define NBD_EINVAL     22
#define NBD_ENOSPC     28
#define NBD_EOVERFLOW  75
#define NBD_ENOTSUP    95
#define NBD_ESHUTDOWN  108

/* sizes */
#define NBD_OLDSTYLE_REST_LEN     (8 + 4 + 124)  /* after the two magics */
#define NBD_EXPORT_NAME_REPLY_LEN (8 + 2)        /* then 124 zeroes */
#define NBD_ZEROES_LEN            124
#define NBD_OPT_HDR_LEN           16             /* magic, option, length */
#define NBD_OPT_REPLY_HDR_LEN     20             /* magic, opt, type, len */
#define NBD_REQUEST_LEN           28
#define NBD_EXT_REQUEST_LEN       32             /* extended headers */
#define NBD_EXT_REPLY_LEN         32
#define NBD_SIMPLE_REPLY_LEN      16
#define NBD_STRUCTURED_REPLY_LEN  20
#define NBD_INFO_EXPORT_LEN       12
#define NBD_INFO_BLOCK_SIZE_LEN   14
#define NBD_BS_FILTER_HEAD_LEN    8              /* a filtered block status
                                                  * payload: effect length,
                                                  * then 32-bit context ids */
#define NBD_MAX_STRING            4096           /* names, descriptions */
#define NBD_DEFAULT_MAX_PAYLOAD   (32u * 1024 * 1024)
#define NBD_MAX_BLOCK_SIZE_MINIMUM (64u * 1024)
#define NBD_DEFAULT_PORT          "10809"

/* big-endian loads and stores on unaligned bytes */
static inline uint16_t wire_get16 (const void *p)
{ uint16_t v; memcpy (&v, p, 2); return be16toh (v); }
static inline uint32_t wire_get32 (const void *p)
{ uint32_t v; memcpy (&v, p, 4); return be32toh (v); }
static inline uint64_t wire_get64 (const void *p)
{ uint64_t v; memcpy (&v, p, 8); return be64toh (v); }
static inline void wire_put16 (void *p, uint16_t v)
{ v = htobe16 (v); memcpy (p, &v, 2); }
static inline void wire_put32 (void *p, uint32_t v)
{ v = htobe32 (v); memcpy (p, &v, 4); }
static inline void wire_put64 (void *p, uint64_t v)
{ v = htobe64 (v); memcpy (p, &v, 8); }

/* Names for tracing and error messages ("NBD_OPT_GO", ...); never NULL. */
const char *proto_option_name (uint32_t opt);
const char *proto_reply_name (uint32_t reply);
const char *proto_cmd_name (uint16_t type);
const char *proto_chunk_name (uint16_t type);
/* Map an NBD wire error to errno; values outside the spec become EINVAL. */
int proto_errno_from_wire (uint32_t err);

#endif /* NBDAIO_PROTO_H */
