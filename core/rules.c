/* rules.c - the table of protocol rules: for each rule id its tag, the
 * section of the NBD specification that states it and the rule in one
 * line.  Sections are headings of the specification's doc/proto.md; the
 * rules of extended headers come from its extension-ext-header branch. */
#include <stddef.h>

#include "rules.h"

#define EXT_HEADERS "Experimental extensions: EXTENDED_HEADER"

static const struct rule rules[RULE_COUNT] = {
  [RULE_HS_MAGIC] = { "hs-magic", "Newstyle negotiation",
    "the greeting starts with NBDMAGIC, then IHAVEOPT (or the oldstyle "
    "magic)" },
  [RULE_HS_FLAGS] = { "hs-flags", "Handshake flags",
    "only handshake flag bits 0-1 are set" },
  [RULE_OPT_REPLY_MAGIC] = { "opt-reply-magic", "Fixed newstyle negotiation",
    "every option reply starts with the option reply magic" },
  [RULE_OPT_REPLY_ECHO] = { "opt-reply-echo", "Fixed newstyle negotiation",
    "an option reply names the option it answers" },
  [RULE_OPT_REPLY_TYPE] = { "opt-reply-type", "Option reply types",
    "an option is answered only with reply types legal for it" },
  [RULE_OPT_REPLY_LENGTH] = { "opt-reply-length", "Option reply types",
    "an option reply has the length its type allows (ACK carries no data)" },
  [RULE_INFO_LENGTH] = { "info-length", "Option reply types",
    "NBD_REP_INFO is at least 2 bytes, NBD_INFO_EXPORT 12, "
    "NBD_INFO_BLOCK_SIZE 14" },
  [RULE_INFO_MISSING_EXPORT] = { "info-missing-export", "Option types",
    "NBD_OPT_INFO and NBD_OPT_GO end in NBD_REP_ACK only after an "
    "NBD_INFO_EXPORT" },
  [RULE_INFO_SIZE] = { "info-size", "Size constraints",
    "the export size is at most 2^63 - 1" },
  [RULE_META_CONTEXT_NAME] = { "meta-context-name", "Option reply types",
    "NBD_REP_META_CONTEXT names a context that was asked for" },
  [RULE_META_CONTEXT_LENGTH] = { "meta-context-length", "Option reply types",
    "NBD_REP_META_CONTEXT carries a context id and a name" },
  [RULE_REP_SERVER_LENGTH] = { "rep-server-length", "Option reply types",
    "the export name length of NBD_REP_SERVER fits in its reply" },
  [RULE_STRING_LENGTH] = { "string-length", "Conventions",
    "names, descriptions and messages are at most 4096 bytes" },
  [RULE_STRING_NUL] = { "string-nul", "Conventions",
    "names, descriptions and messages hold no NUL byte" },
  [RULE_TFLAGS_HAS_FLAGS] = { "tflags-has-flags", "Transmission flags",
    "transmission flag bit 0 (NBD_FLAG_HAS_FLAGS) is set" },
  [RULE_TFLAGS_DF] = { "tflags-df", "Transmission flags",
    "NBD_FLAG_SEND_DF only with structured replies" },
  [RULE_TFLAGS_FAST_ZERO] = { "tflags-fast-zero", "Transmission flags",
    "NBD_FLAG_SEND_FAST_ZERO only with NBD_FLAG_SEND_WRITE_ZEROES" },
  [RULE_BLOCK_SIZE] = { "block-size", "Size constraints",
    "minimum block size a power of two at most 64 KiB, preferred a power of "
    "two at least max(minimum, 512), maximum at least preferred and a "
    "multiple of the minimum" },
  [RULE_REPLY_MAGIC] = { "reply-magic", "Transmission",
    "a reply's magic matches the negotiated reply mode" },
  [RULE_REPLY_COOKIE] = { "reply-cookie", "Transmission",
    "a reply names a cookie (handle) that is in flight" },
  [RULE_REPLY_AFTER_DONE] = { "reply-after-done",
    "Structured reply chunk message",
    "nothing follows the final reply of a command" },
  [RULE_SIMPLE_REPLY_READ] = { "simple-reply-read", "Simple reply message",
    "no simple reply to NBD_CMD_READ once structured replies are on" },
  [RULE_CHUNK_BOUNDS] = { "chunk-bounds", "Request types",
    "data and hole chunks lie inside the read they answer" },
  [RULE_CHUNK_OVERLAP] = { "chunk-overlap", "Request types",
    "the data and hole chunks of a read do not overlap" },
  [RULE_CHUNK_COVERAGE] = { "chunk-coverage", "Request types",
    "the chunks of a successful read cover all of it" },
  [RULE_CHUNK_COMMAND] = { "chunk-command", "Structured reply types",
    "data and hole chunks answer only NBD_CMD_READ" },
  [RULE_CHUNK_DF] = { "chunk-df", "Request types",
    "a read with NBD_CMD_FLAG_DF gets at most one data or hole chunk" },
  [RULE_CHUNK_NONE] = { "chunk-none", "Structured reply types",
    "NBD_REPLY_TYPE_NONE has length 0 and the DONE flag" },
  [RULE_CHUNK_LENGTH] = { "chunk-length", "Structured reply types",
    "a chunk's length fits its type; a block status chunk holds at most one "
    "extent per byte requested, and 2^20 (checked on the header, before any "
    "payload is buffered)" },
  [RULE_CHUNK_UNKNOWN] = { "chunk-unknown", "Structured reply types",
    "a chunk type the client does not know is fatal unless it is an error "
    "type" },
  [RULE_CHUNK_ERROR_ZERO] = { "chunk-error-zero", "Structured reply types",
    "an error chunk carries a non-zero error" },
  [RULE_CHUNK_ERROR_LENGTH] = { "chunk-error-length", "Structured reply types",
    "an error chunk's message fits in it (at most 4096 bytes)" },
  [RULE_BS_CONTEXT] = { "bs-context", "Structured reply types",
    "block status chunks name a negotiated context id" },
  [RULE_BS_EXTENT] = { "bs-extent", "Request types",
    "block status answers only NBD_CMD_BLOCK_STATUS: extents of non-zero "
    "length, one with REQ_ONE, exactly one chunk per negotiated context" },
  [RULE_EXT_GO] = { "ext-go", EXT_HEADERS,
    "once extended headers are acknowledged, NBD_OPT_GO is neither "
    "unsupported nor refused with NBD_REP_ERR_EXT_HEADER_REQD" },
  [RULE_EXT_REPLY_MAGIC] = { "ext-reply-magic", EXT_HEADERS,
    "with extended headers every reply is an extended reply, without them "
    "none is" },
  [RULE_EXT_OFFSET] = { "ext-offset", EXT_HEADERS,
    "an extended reply header's offset is that of the request it answers" },
  [RULE_EXT_LENGTH] = { "ext-length", EXT_HEADERS,
    "an extended reply header's length fits 32 bits (checked before anything "
    "is buffered)" },
  [RULE_EXT_BS_TYPE] = { "ext-bs-type", EXT_HEADERS,
    "block status chunks are NBD_REPLY_TYPE_BLOCK_STATUS_EXT with extended "
    "headers and NBD_REPLY_TYPE_BLOCK_STATUS without" },
  [RULE_EXT_BS_COUNT] = { "ext-bs-count", EXT_HEADERS,
    "NBD_REPLY_TYPE_BLOCK_STATUS_EXT's descriptor count is the number of "
    "descriptors its length holds (8 + 16n bytes, n >= 1)" },
  [RULE_EXT_BS_STATUS] = { "ext-bs-status", EXT_HEADERS,
    "in a base: context the high 32 bits of a 64-bit status are zero" },
  [RULE_BS_FILTER] = { "bs-filter", EXT_HEADERS,
    "a block status filtered with NBD_CMD_FLAG_PAYLOAD_LEN gets exactly one "
    "chunk per context id of its payload, none for another" },
};

const struct rule *
rule_get (enum rule_id id)
{
  if (id < 0 || id >= RULE_COUNT)
    return NULL;
  return &rules[id];
}
