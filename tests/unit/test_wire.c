/* test_wire.c - unit tests of the wire helpers in proto.h: big-endian
 * load/store round trips, the wire-error to errno mapping, the name
 * functions used for tracing and the public nbdaio_*_name lookups. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "nbdaio.h"
#include "proto.h"

static void
test_put_get_16 (void **state)
{
  (void) state;
  uint8_t b[8];
  memset (b, 0xee, sizeof b);
  wire_put16 (b + 1, 0x1234);   /* unaligned on purpose */
  assert_int_equal (b[0], 0xee);
  assert_int_equal (b[1], 0x12);
  assert_int_equal (b[2], 0x34);
  assert_int_equal (b[3], 0xee);
  assert_int_equal (wire_get16 (b + 1), 0x1234);

  static const uint16_t vals[] = { 0, 1, 0x00ff, 0xff00, 0x8000, 0xffff };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    wire_put16 (b + 3, vals[i]);
    assert_int_equal (wire_get16 (b + 3), vals[i]);
    assert_int_equal (b[3], vals[i] >> 8);
    assert_int_equal (b[4], vals[i] & 0xff);
  }
}

static void
test_put_get_32 (void **state)
{
  (void) state;
  uint8_t b[12];
  memset (b, 0xee, sizeof b);
  wire_put32 (b + 3, UINT32_C (0x25609513));
  static const uint8_t want[4] = { 0x25, 0x60, 0x95, 0x13 };
  assert_memory_equal (b + 3, want, 4);
  assert_int_equal (b[2], 0xee);
  assert_int_equal (b[7], 0xee);
  assert_int_equal (wire_get32 (b + 3), UINT32_C (0x25609513));

  static const uint32_t vals[] = { 0, 1, 0xff, 0x80000000u, 0xffffffffu,
                                   0x01020304u };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    wire_put32 (b + 5, vals[i]);
    assert_int_equal (wire_get32 (b + 5), vals[i]);
    assert_int_equal (b[5], vals[i] >> 24);
    assert_int_equal (b[8], vals[i] & 0xff);
  }
}

static void
test_put_get_64 (void **state)
{
  (void) state;
  uint8_t b[20];
  memset (b, 0xee, sizeof b);
  wire_put64 (b + 1, NBD_MAGIC_INIT);
  assert_memory_equal (b + 1, "NBDMAGIC", 8);
  assert_int_equal (b[0], 0xee);
  assert_int_equal (b[9], 0xee);
  assert_true (wire_get64 (b + 1) == NBD_MAGIC_INIT);

  wire_put64 (b + 7, NBD_MAGIC_OPT);
  assert_memory_equal (b + 7, "IHAVEOPT", 8);

  static const uint64_t vals[] = {
    0, 1, UINT64_C (0xffffffffffffffff), UINT64_C (0x8000000000000000),
    UINT64_C (0x0102030405060708), UINT64_C (0x00000000ffffffff)
  };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    wire_put64 (b + 3, vals[i]);
    assert_true (wire_get64 (b + 3) == vals[i]);
    assert_int_equal (b[3], (uint8_t) (vals[i] >> 56));
    assert_int_equal (b[10], (uint8_t) (vals[i] & 0xff));
  }
}

/* A whole request header laid out by hand, then parsed back. */
static void
test_request_layout (void **state)
{
  (void) state;
  uint8_t b[NBD_REQUEST_LEN];
  wire_put32 (b, NBD_MAGIC_REQUEST);
  wire_put16 (b + 4, 0x0005);
  wire_put16 (b + 6, NBD_CMD_WRITE);
  wire_put64 (b + 8, UINT64_C (0x1122334455667788));
  wire_put64 (b + 16, UINT64_C (4096));
  wire_put32 (b + 24, 512);
  static const uint8_t want[NBD_REQUEST_LEN] = {
    0x25, 0x60, 0x95, 0x13, 0x00, 0x05, 0x00, 0x01,
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    0, 0, 0, 0, 0, 0, 0x10, 0x00,
    0, 0, 0x02, 0x00
  };
  assert_memory_equal (b, want, sizeof want);
  assert_int_equal (wire_get16 (b + 6), NBD_CMD_WRITE);
  assert_true (wire_get64 (b + 8) == UINT64_C (0x1122334455667788));
}

static void
test_errno_mapping (void **state)
{
  (void) state;
  assert_int_equal (proto_errno_from_wire (NBD_EPERM), EPERM);
  assert_int_equal (proto_errno_from_wire (NBD_EIO), EIO);
  assert_int_equal (proto_errno_from_wire (NBD_ENOMEM), ENOMEM);
  assert_int_equal (proto_errno_from_wire (NBD_EINVAL), EINVAL);
  assert_int_equal (proto_errno_from_wire (NBD_ENOSPC), ENOSPC);
  assert_int_equal (proto_errno_from_wire (NBD_EOVERFLOW), EOVERFLOW);
  assert_int_equal (proto_errno_from_wire (NBD_ENOTSUP), ENOTSUP);
  assert_int_equal (proto_errno_from_wire (NBD_ESHUTDOWN), ESHUTDOWN);
  /* the wire numbers are the spec's, equal to Linux's */
  assert_int_equal (NBD_EPERM, 1);
  assert_int_equal (NBD_EIO, 5);
  assert_int_equal (NBD_ENOMEM, 12);
  assert_int_equal (NBD_EINVAL, 22);
  assert_int_equal (NBD_ENOSPC, 28);
  assert_int_equal (NBD_EOVERFLOW, 75);
  assert_int_equal (NBD_ENOTSUP, 95);
  assert_int_equal (NBD_ESHUTDOWN, 108);
}

static void
test_errno_unknown (void **state)
{
  (void) state;
  static const uint32_t odd[] = {
    2, 4, 13, 16, 17, 27, 61, 99, 107, 109, 1000, 0x7fffffffu, 0xffffffffu
  };
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
    assert_int_equal (proto_errno_from_wire (odd[i]), EINVAL);
}

static void
test_names_never_null (void **state)
{
  (void) state;
  for (uint32_t v = 0; v < 64; v++) {
    assert_non_null (proto_option_name (v));
    assert_non_null (proto_reply_name (v));
    assert_non_null (proto_reply_name (NBD_REP_FLAG_ERROR | v));
    assert_non_null (proto_cmd_name ((uint16_t) v));
    assert_non_null (proto_chunk_name ((uint16_t) v));
    assert_non_null (proto_chunk_name ((uint16_t) (NBD_REPLY_TYPE_ERROR_BIT
                                                   | v)));
  }
  assert_non_null (proto_option_name (0xffffffffu));
  assert_non_null (proto_reply_name (0xffffffffu));
  assert_non_null (proto_reply_name (0x7fffffffu));
  assert_non_null (proto_cmd_name (0xffff));
  assert_non_null (proto_chunk_name (0xffff));
  assert_non_null (proto_chunk_name (0x7fff));
}

static void
test_names_meaningful (void **state)
{
  (void) state;
  assert_non_null (strstr (proto_option_name (NBD_OPT_GO), "GO"));
  assert_non_null (strstr (proto_option_name (NBD_OPT_STRUCTURED_REPLY),
                           "STRUCTURED"));
  assert_non_null (strstr (proto_option_name (NBD_OPT_SET_META_CONTEXT),
                           "META"));
  assert_non_null (strstr (proto_reply_name (NBD_REP_ACK), "ACK"));
  assert_non_null (strstr (proto_reply_name (NBD_REP_ERR_UNSUP), "UNSUP"));
  assert_non_null (strstr (proto_reply_name (NBD_REP_ERR_TLS_REQD), "TLS"));
  assert_non_null (strstr (proto_cmd_name (NBD_CMD_READ), "READ"));
  assert_non_null (strstr (proto_cmd_name (NBD_CMD_BLOCK_STATUS), "BLOCK"));
  assert_non_null (strstr (proto_chunk_name (NBD_REPLY_TYPE_OFFSET_DATA),
                           "DATA"));
  assert_non_null (strstr (proto_chunk_name (NBD_REPLY_TYPE_OFFSET_HOLE),
                           "HOLE"));
  assert_non_null (strstr (proto_chunk_name (NBD_REPLY_TYPE_ERROR),
                           "ERROR"));
  /* distinct values get distinct names */
  assert_string_not_equal (proto_cmd_name (NBD_CMD_READ),
                           proto_cmd_name (NBD_CMD_WRITE));
  assert_string_not_equal (proto_option_name (NBD_OPT_GO),
                           proto_option_name (NBD_OPT_INFO));
}

/* the public lookups spell each known value as its constant in proto.h
 * and know nothing else */
static void
test_public_names (void **state)
{
  (void) state;
  assert_string_equal (nbdaio_option_name (NBD_OPT_EXPORT_NAME),
                       "NBD_OPT_EXPORT_NAME");
  assert_string_equal (nbdaio_option_name (NBD_OPT_EXTENDED_HEADERS),
                       "NBD_OPT_EXTENDED_HEADERS");
  assert_null (nbdaio_option_name (0));
  assert_null (nbdaio_option_name (4));       /* NBD_OPT_PEEK_EXPORT, gone */
  assert_null (nbdaio_option_name (NBD_OPT_EXTENDED_HEADERS + 1));
  assert_null (nbdaio_option_name (0xffffffffu));

  assert_string_equal (nbdaio_option_reply_name (NBD_REP_ACK), "NBD_REP_ACK");
  assert_string_equal (nbdaio_option_reply_name (NBD_REP_META_CONTEXT),
                       "NBD_REP_META_CONTEXT");
  assert_string_equal (nbdaio_option_reply_name (NBD_REP_ERR_UNSUP),
                       "NBD_REP_ERR_UNSUP");
  assert_string_equal (nbdaio_option_reply_name (NBD_REP_ERR_EXT_HEADER_REQD),
                       "NBD_REP_ERR_EXT_HEADER_REQD");
  assert_null (nbdaio_option_reply_name (0));
  assert_null (nbdaio_option_reply_name (NBD_REP_FLAG_ERROR));
  assert_null (nbdaio_option_reply_name (NBD_REP_FLAG_ERROR | 11));
  /* the error bit tells NBD_REP_ERR_UNSUP (bit | 1) from NBD_REP_ACK (1) */
  assert_string_equal (nbdaio_option_reply_name (NBD_REP_ERR_UNSUP &
                                                 ~NBD_REP_FLAG_ERROR),
                       "NBD_REP_ACK");
  /* messages keep the meaning after the name */
  assert_string_equal (proto_reply_name (NBD_REP_ERR_TLS_REQD),
                       "NBD_REP_ERR_TLS_REQD (server requires TLS)");
  assert_string_equal (proto_reply_name (NBD_REP_FLAG_ERROR | 99),
                       "unknown error reply");

  assert_string_equal (nbdaio_command_name (NBD_CMD_READ), "NBD_CMD_READ");
  assert_string_equal (nbdaio_command_name (NBD_CMD_BLOCK_STATUS),
                       "NBD_CMD_BLOCK_STATUS");
  assert_null (nbdaio_command_name (NBD_CMD_BLOCK_STATUS + 1));

  assert_string_equal (nbdaio_reply_type_name (NBD_REPLY_TYPE_NONE),
                       "NBD_REPLY_TYPE_NONE");
  assert_string_equal (nbdaio_reply_type_name (NBD_REPLY_TYPE_ERROR_OFFSET),
                       "NBD_REPLY_TYPE_ERROR_OFFSET");
  assert_null (nbdaio_reply_type_name (3));
  assert_null (nbdaio_reply_type_name (NBD_REPLY_TYPE_ERROR_BIT));
  assert_null (nbdaio_reply_type_name (NBD_REPLY_TYPE_ERROR_BIT | 3));

  assert_string_equal (nbdaio_error_name (NBD_EIO), "NBD_EIO");
  assert_string_equal (nbdaio_error_name (NBD_ESHUTDOWN), "NBD_ESHUTDOWN");
  assert_null (nbdaio_error_name (0));
  assert_null (nbdaio_error_name (2));
  assert_null (nbdaio_error_name (NBD_ESHUTDOWN + 1));
}

/* The public protocol constants of nbdaio.h are the values the library
 * names as the specification does, and every option or reply type the
 * library names has a public constant. */
#define PUBLIC(prefix, x) { NBDAIO_##prefix##x, "NBD_" #prefix #x }
static const struct { uint32_t value; const char *name; } public_opts[] = {
  PUBLIC (OPT_, EXPORT_NAME), PUBLIC (OPT_, ABORT), PUBLIC (OPT_, LIST),
  PUBLIC (OPT_, STARTTLS), PUBLIC (OPT_, INFO), PUBLIC (OPT_, GO),
  PUBLIC (OPT_, STRUCTURED_REPLY), PUBLIC (OPT_, LIST_META_CONTEXT),
  PUBLIC (OPT_, SET_META_CONTEXT), PUBLIC (OPT_, EXTENDED_HEADERS),
}, public_reps[] = {
  PUBLIC (REP_, ACK), PUBLIC (REP_, SERVER), PUBLIC (REP_, INFO),
  PUBLIC (REP_, META_CONTEXT), PUBLIC (REP_, ERR_UNSUP),
  PUBLIC (REP_, ERR_POLICY), PUBLIC (REP_, ERR_INVALID),
  PUBLIC (REP_, ERR_PLATFORM), PUBLIC (REP_, ERR_TLS_REQD),
  PUBLIC (REP_, ERR_UNKNOWN), PUBLIC (REP_, ERR_SHUTDOWN),
  PUBLIC (REP_, ERR_BLOCK_SIZE_REQD), PUBLIC (REP_, ERR_TOO_BIG),
  PUBLIC (REP_, ERR_EXT_HEADER_REQD),
};

static int
public_has (uint32_t value, int reps)
{
  size_t n = reps ? sizeof public_reps / sizeof public_reps[0]
                  : sizeof public_opts / sizeof public_opts[0];
  for (size_t i = 0; i < n; i++)
    if ((reps ? public_reps : public_opts)[i].value == value)
      return 1;
  return 0;
}

static void
test_public_constants (void **state)
{
  (void) state;
  for (size_t i = 0; i < sizeof public_opts / sizeof public_opts[0]; i++)
    assert_string_equal (nbdaio_option_name (public_opts[i].value),
                         public_opts[i].name);
  for (size_t i = 0; i < sizeof public_reps / sizeof public_reps[0]; i++)
    assert_string_equal (nbdaio_option_reply_name (public_reps[i].value),
                         public_reps[i].name);
  for (uint32_t v = 0; v < 256; v++) {
    if (nbdaio_option_name (v))
      assert_true (public_has (v, 0));
    if (nbdaio_option_reply_name (v))
      assert_true (public_has (v, 1));
    if (nbdaio_option_reply_name (NBDAIO_REP_FLAG_ERROR | v))
      assert_true (public_has (NBDAIO_REP_FLAG_ERROR | v, 1));
  }
  /* the error bit is the one the API documents */
  assert_int_equal (NBDAIO_REP_ERR_UNSUP & ~NBDAIO_REP_FLAG_ERROR,
                    NBDAIO_REP_ACK);
  assert_true (NBDAIO_REP_ERR_UNSUP > INT32_MAX);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_put_get_16),
    cmocka_unit_test (test_put_get_32),
    cmocka_unit_test (test_put_get_64),
    cmocka_unit_test (test_request_layout),
    cmocka_unit_test (test_errno_mapping),
    cmocka_unit_test (test_errno_unknown),
    cmocka_unit_test (test_names_never_null),
    cmocka_unit_test (test_names_meaningful),
    cmocka_unit_test (test_public_names),
    cmocka_unit_test (test_public_constants),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
