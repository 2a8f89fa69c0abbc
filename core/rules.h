/* rules.h - the protocol rules libnbdaio enforces on what a server sends:
 * one id per rule, and the one table (rules.c) that gives each its tag, the
 * section of the NBD specification (doc/proto.md) it comes from and a
 * one-line statement.  README's "Protocol rules enforced" table is checked
 * against this table (tests/unit/test_rules.c).  Internal. */
#ifndef NBDAIO_RULES_H
#define NBDAIO_RULES_H

enum rule_id {
  RULE_NONE = -1,               /* not a violation */
  /* handshake */
  RULE_HS_MAGIC,
  RULE_HS_FLAGS,
  RULE_OPT_REPLY_MAGIC,
  RULE_OPT_REPLY_ECHO,
  RULE_OPT_REPLY_TYPE,
  RULE_OPT_REPLY_LENGTH,
  RULE_INFO_LENGTH,
  RULE_INFO_MISSING_EXPORT,
  RULE_INFO_SIZE,
  RULE_META_CONTEXT_NAME,
  RULE_META_CONTEXT_LENGTH,
  RULE_REP_SERVER_LENGTH,
  RULE_STRING_LENGTH,
  RULE_STRING_NUL,
  RULE_TFLAGS_HAS_FLAGS,
  RULE_TFLAGS_DF,
  RULE_TFLAGS_FAST_ZERO,
  RULE_BLOCK_SIZE,
  /* transmission */
  RULE_REPLY_MAGIC,
  RULE_REPLY_COOKIE,
  RULE_REPLY_AFTER_DONE,
  RULE_SIMPLE_REPLY_READ,
  RULE_CHUNK_BOUNDS,
  RULE_CHUNK_OVERLAP,
  RULE_CHUNK_COVERAGE,
  RULE_CHUNK_COMMAND,
  RULE_CHUNK_DF,
  RULE_CHUNK_NONE,
  RULE_CHUNK_LENGTH,
  RULE_CHUNK_UNKNOWN,
  RULE_CHUNK_ERROR_ZERO,
  RULE_CHUNK_ERROR_LENGTH,
  RULE_BS_CONTEXT,
  RULE_BS_EXTENT,
  /* extended headers */
  RULE_EXT_GO,
  RULE_EXT_REPLY_MAGIC,
  RULE_EXT_OFFSET,
  RULE_EXT_LENGTH,
  RULE_EXT_BS_TYPE,
  RULE_EXT_BS_COUNT,
  RULE_EXT_BS_STATUS,
  RULE_BS_FILTER,
  RULE_COUNT
};

struct rule {
  const char *tag;              /* "chunk-overlap": names it in messages */
  const char *section;          /* heading of doc/proto.md that states it */
  const char *text;             /* the rule in one line */
};

/* The entry of id (0 <= id < RULE_COUNT), or NULL for any other value. */
const struct rule *rule_get (enum rule_id id);

#endif /* NBDAIO_RULES_H */
