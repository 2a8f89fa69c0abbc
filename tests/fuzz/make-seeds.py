#!/usr/bin/env python3
"""make-seeds.py - write the seed corpus of the libFuzzer targets.

    python3 tests/fuzz/make-seeds.py

rewrites tests/fuzz/corpus/handshake/ and tests/fuzz/corpus/reply/ (every
file in them is generated here, except the regress-* inputs fuzzing found,
which are kept).  The input formats are described at the top
of fuzz_handshake.c and fuzz_reply.c; the command table and the cookie rule
below must agree with fuzz_reply.c and engine/cmd.c (cookie = sequence <<
CMD_SLOT_BITS | slot, both counted from the first command issued; the bits
are read from engine/internal.h).
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LEN = 8192          # run-fuzz.sh's -max_len: larger seeds would be cut

# ---- protocol constants (core/proto.h) ----
NBD_MAGIC_INIT = 0x4E42444D41474943
NBD_MAGIC_OPT = 0x49484156454F5054
NBD_MAGIC_OLDSTYLE = 0x0000420281861253
NBD_MAGIC_OPT_REPLY = 0x0003E889045565A9
NBD_MAGIC_SIMPLE = 0x67446698
NBD_MAGIC_STRUCTURED = 0x668E33EF
NBD_MAGIC_EXT_REPLY = 0x6E8A278C

FIXED_NEWSTYLE, NO_ZEROES = 1, 2
HAS_FLAGS, READ_ONLY, SEND_FLUSH, SEND_FUA = 1, 2, 4, 8
SEND_TRIM, SEND_WRITE_ZEROES, SEND_DF, SEND_CACHE = 32, 64, 128, 1024
SEND_FAST_ZERO = 2048

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO = 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
OPT_EXTENDED_HEADERS = 11
OPT_RAW_UNKNOWN = 0x4242          # what fuzz_handshake.c sends raw
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_UNKNOWN = REP_ERR | 1, REP_ERR | 2, REP_ERR | 6
REP_ERR_EXT_HEADER_REQD = REP_ERR | 10
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3

DONE = 1
T_NONE, T_DATA, T_HOLE, T_BS, T_BS_EXT = 0, 1, 2, 5, 6
T_ERROR, T_ERROR_OFFSET = 0x8001, 0x8002
EPERM, EIO, EINVAL, ENOTSUP, ESHUTDOWN = 1, 5, 22, 95, 108

ALL_TFLAGS = (HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES
              | SEND_CACHE | SEND_FAST_ZERO)


def be(fmt, *v):
    return struct.pack(">" + fmt, *v)


def slot_bits():
    """CMD_SLOT_BITS of engine/internal.h (the one place it is defined):
    a cookie is sequence << CMD_SLOT_BITS | slot."""
    path = os.path.join(HERE, "..", "..", "engine", "internal.h")
    with open(path) as f:
        for line in f:
            if line.startswith("#define CMD_SLOT_BITS "):
                return int(line.split()[2])
    sys.exit(f"{path}: no CMD_SLOT_BITS")


SLOT_BITS = slot_bits()


def cookie(n):
    """The cookie of the n-th command a fresh handle issues (from 0)."""
    return (n + 1) << SLOT_BITS | n


# ---- handshake pieces ----
def greeting(hflags=FIXED_NEWSTYLE | NO_ZEROES):
    return be("QQH", NBD_MAGIC_INIT, NBD_MAGIC_OPT, hflags)


def opt_reply(opt, rtype, payload=b""):
    return be("QIII", NBD_MAGIC_OPT_REPLY, opt, rtype, len(payload)) + payload


def info_export(size=1 << 20, tflags=ALL_TFLAGS, opt=OPT_GO):
    return opt_reply(opt, REP_INFO, be("HQH", INFO_EXPORT, size, tflags))


def info_string(kind, s):
    return opt_reply(OPT_GO, REP_INFO, be("H", kind) + s.encode())


def info_block_size(lo, pref, hi):
    return opt_reply(OPT_GO, REP_INFO, be("HIII", INFO_BLOCK_SIZE, lo, pref, hi))


def ext_refused():
    """The handle asks for extended headers first (with structured
    replies): the refusal that makes it fall back."""
    return opt_reply(OPT_EXTENDED_HEADERS, REP_ERR_UNSUP)


def sr_ack():
    return ext_refused() + opt_reply(OPT_STRUCTURED_REPLY, REP_ACK)


def ext_ack():
    return opt_reply(OPT_EXTENDED_HEADERS, REP_ACK)


def meta(ctx_id=5, name="base:allocation"):
    return (opt_reply(OPT_SET_META_CONTEXT, REP_META_CONTEXT,
                      be("I", ctx_id) + name.encode())
            + opt_reply(OPT_SET_META_CONTEXT, REP_ACK))


def rep_server(name, desc=b""):
    return opt_reply(OPT_LIST, REP_SERVER, be("I", len(name)) + name + desc)


def list_context(ctx_id, name):
    return opt_reply(OPT_LIST_META_CONTEXT, REP_META_CONTEXT,
                     be("I", ctx_id) + name)


def go_ack():
    return opt_reply(OPT_GO, REP_ACK)


def oldstyle(size=1 << 20, flags=HAS_FLAGS | SEND_FLUSH):
    return be("QQQI", NBD_MAGIC_INIT, NBD_MAGIC_OLDSTYLE, size, flags) + bytes(124)


# ---- transmission pieces ----
def simple(ck, err=0, data=b""):
    return be("IIQ", NBD_MAGIC_SIMPLE, err, ck) + data


def chunk(ck, ctype, payload=b"", flags=DONE):
    return be("IHHQI", NBD_MAGIC_STRUCTURED, flags, ctype, ck, len(payload)) + payload


def ext_chunk(ck, req_off, ctype, payload=b"", flags=DONE):
    """A chunk in the 32-byte extended header (req_off: the offset of the
    request it answers)."""
    return (be("IHHQQQ", NBD_MAGIC_EXT_REPLY, flags, ctype, ck, req_off,
               len(payload)) + payload)


def data_chunk(ck, off, n, flags=DONE):
    return chunk(ck, T_DATA, be("Q", off) + bytes([0x5A]) * n, flags)


def hole_chunk(ck, off, n, flags=DONE):
    return chunk(ck, T_HOLE, be("QI", off, n), flags)


def error_chunk(ck, err, msg=b"", flags=DONE, off=None):
    if off is None:
        return chunk(ck, T_ERROR, be("IH", err, len(msg)) + msg, flags)
    return chunk(ck, T_ERROR_OFFSET, be("IH", err, len(msg)) + msg + be("Q", off), flags)


def bs_chunk(ck, extents, ctx=5, flags=DONE):
    return chunk(ck, T_BS, be("I", ctx) + b"".join(be("II", l, f) for l, f in extents), flags)


# ---- the reply target's commands (fuzz_reply.c) ----
C0_STRUCTURED, C0_META, C0_BLOCK_SIZE, C0_READ_ONLY = 0x01, 0x02, 0x04, 0x08
C0_RECORDS, C0_RETIRE, C0_FOLLOWUP, C0_CHUNK_FAIL = 0x10, 0x20, 0x40, 0x80
C1_FEW_SLOTS, C1_DF, C1_RETIRE_IN_CB = 0x01, 0x02, 0x04
C1_ABORT_IN_CB, C1_ABORT_IN_CHUNK = 0x08, 0x10


def pieces(i):
    """Byte 1 bits: the stream arrives in pieces (fuzz_reply.c's
    piece_sizes[i]: 1, 3, 16, 100, 1000, 4096, 40000 for i = 1..7)."""
    return i << 5
MIB = 1 << 20

COMMANDS = [  # name, offset, count
    ("pread", 0, 512),
    ("pread_sr", 4096, 4096),
    ("pread_sr", 65536, 8192),
    ("pread_sr", 131072, 65536),
    ("bs", 0, MIB),
    ("bs_req_one", 8192, 4096),
    ("pwrite", 0, 4096),
    ("flush", 0, 0),
    ("trim", 0, 4096),
    ("zero", 4096, 4096),
    ("cache", 0, 512),
    ("pread", MIB - 512, 512),
]


def is_ext(c0):
    """C0_META without C0_STRUCTURED: extended headers (fuzz_reply.c)."""
    return c0 & (C0_STRUCTURED | C0_META) == C0_META


def issued(c0, c1):
    """{command index: cookie} of the commands the handle accepts."""
    sr = bool(c0 & C0_STRUCTURED) or is_ext(c0)
    has_meta = sr and bool(c0 & C0_META)
    ro = bool(c0 & C0_READ_ONLY)
    slots = 4 if c1 & C1_FEW_SLOTS else 256
    out = {}
    for i, (name, _, _) in enumerate(COMMANDS):
        if name.startswith("bs") and not has_meta:
            continue
        if name in ("pwrite", "trim", "zero") and ro:
            continue
        if i == 1 and c1 & C1_DF and not sr:
            continue
        if len(out) == slots:
            continue
        out[i] = cookie(len(out))
    return out


def answer(i, ck, sr):
    """A plain successful reply to command i."""
    name, off, count = COMMANDS[i]
    if name.startswith("pread"):
        # seeds stay small (see write): large reads get a hole, or in
        # simple mode no reply (they fail at EOF)
        if count > 4096:
            return hole_chunk(ck, off, count) if sr else b""
        return data_chunk(ck, off, count) if sr else simple(ck, 0, bytes([0x5A]) * count)
    if name == "bs":
        return bs_chunk(ck, [(MIB // 2, 0), (MIB // 2, 3)])
    if name == "bs_req_one":
        return bs_chunk(ck, [(4096, 0)])
    return simple(ck)


def answer_ext(i, ck):
    """answer(), in extended headers."""
    name, off, count = COMMANDS[i]
    if name.startswith("pread"):
        if count > 4096:
            return ext_chunk(ck, off, T_HOLE, be("QI", off, count))
        return ext_chunk(ck, off, T_DATA, be("Q", off) + bytes([0x5A]) * count)
    if name == "bs":
        return ext_chunk(ck, off, T_BS_EXT, be("IIQQQQ", 5, 2, MIB // 2, 0,
                                               MIB // 2, 3))
    if name == "bs_req_one":
        return ext_chunk(ck, off, T_BS_EXT, be("IIQQ", 5, 1, 4096, 0))
    return ext_chunk(ck, off, T_NONE)


def all_answered(c0, c1=0, special=None):
    special = special or {}
    sr = bool(c0 & C0_STRUCTURED)
    out = b""
    for i, ck in issued(c0, c1).items():
        if i in special:
            out += special[i](ck)
        else:
            out += answer_ext(i, ck) if is_ext(c0) else answer(i, ck, sr)
    return out


def rec(op, sel, *fields):
    """A record of the reply target's record mode: fields are (format,
    value) pairs."""
    out = bytes([op, sel])
    for fmt, v in fields:
        out += be(fmt, v)
    return out


def handshake_seeds():
    sr_meta_go = sr_ack() + meta() + info_export() + go_ack()
    read0 = cookie(0)
    s = {}
    s["oldstyle"] = b"\x00" + oldstyle() + simple(read0, 0, bytes(512))
    s["oldstyle-df-violation"] = b"\x00" + oldstyle(flags=HAS_FLAGS | SEND_DF)
    s["newstyle-no-zeroes"] = (b"\x00" + greeting(NO_ZEROES)
                               + be("QH", 1 << 20, HAS_FLAGS | READ_ONLY))
    s["newstyle-zeroes"] = (b"\x00" + greeting(0) + be("QH", 4096, HAS_FLAGS)
                            + bytes(124) + simple(read0, EIO))
    s["fixed-go"] = b"\x00" + greeting() + sr_meta_go + data_chunk(read0, 0, 512)
    s["fixed-go-info"] = (b"\x00" + greeting() + sr_ack() + meta()
                          + info_string(INFO_NAME, "disk")
                          + info_string(INFO_DESCRIPTION, "a fuzzed disk")
                          + info_block_size(4096, 65536, 1 << 22)
                          + info_export() + go_ack()
                          + hole_chunk(read0, 0, 4096))
    s["fixed-go-bad-block-size"] = (b"\x00" + greeting() + sr_ack() + meta()
                                    + info_block_size(3, 512, 1024)
                                    + info_export() + go_ack())
    s["fixed-export-name-fallback"] = (b"\x00" + greeting() + sr_ack() + meta()
                                       + opt_reply(OPT_GO, REP_ERR_UNSUP)
                                       + be("QH", 1 << 20, ALL_TFLAGS | SEND_DF)
                                       + data_chunk(read0, 0, 256, 0)
                                       + hole_chunk(read0, 256, 256))
    s["fixed-go-zeroes"] = (b"\x00" + greeting(FIXED_NEWSTYLE) + sr_ack() + meta()
                            + opt_reply(OPT_GO, REP_ERR_UNSUP)
                            + be("QH", 1 << 20, HAS_FLAGS) + bytes(124)
                            + error_chunk(read0, EIO, b"disk on fire"))
    s["fixed-sr-refused"] = (b"\x00" + greeting() + ext_refused()
                             + opt_reply(OPT_STRUCTURED_REPLY, REP_ERR_UNSUP)
                             + info_export() + go_ack() + simple(read0, 0, bytes(512)))
    s["fixed-meta-refused"] = (b"\x00" + greeting() + sr_ack()
                               + opt_reply(OPT_SET_META_CONTEXT, REP_ERR_UNSUP)
                               + info_export() + go_ack())
    # (found by fuzzing) the message of this refusal was
    # read after it was freed
    s["fixed-sr-tls-required"] = (b"\x00" + greeting()
                                  + opt_reply(OPT_EXTENDED_HEADERS, REP_ERR | 5, b"\x00"))
    # extended headers: the read answered in a 32-byte extended chunk
    s["fixed-ext-go"] = (b"\x00" + greeting() + ext_ack() + meta()
                         + info_export(tflags=ALL_TFLAGS | SEND_DF) + go_ack()
                         + ext_chunk(read0, 0, T_DATA, be("Q", 0) + bytes(512)))
    s["fixed-ext-go-pieces"] = (b"\x00" + greeting() + ext_ack() + meta()
                                + info_export() + go_ack()
                                + ext_chunk(read0, 0, T_HOLE, be("QI", 0, 256), 0)
                                + ext_chunk(read0, 0, T_DATA,
                                            be("Q", 256) + bytes(256)))
    s["fixed-ext-go-unsupported"] = (b"\x00" + greeting() + ext_ack() + meta()
                                     + opt_reply(OPT_GO, REP_ERR_UNSUP))
    s["fixed-ext-simple-reply"] = (b"\x00" + greeting() + ext_ack() + meta()
                                   + info_export() + go_ack()
                                   + simple(read0, 0, bytes(512)))
    s["fixed-ext-required"] = (b"\x00" + greeting() + sr_ack() + meta()
                               + opt_reply(OPT_GO, REP_ERR_EXT_HEADER_REQD))
    s["fixed-meta-tls-required"] = (b"\x00" + greeting() + sr_ack()
                                    + opt_reply(OPT_SET_META_CONTEXT, REP_ERR | 5,
                                                b"use TLS"))
    s["fixed-meta-wrong-name"] = (b"\x00" + greeting() + sr_ack()
                                  + meta(name="qemu:dirty-bitmap:x"))
    s["fixed-no-sr-no-meta"] = (b"\x0c" + greeting() + info_export() + go_ack()
                                + simple(read0, 0, bytes(512)))
    s["fixed-go-unknown-export"] = (b"\x10" + greeting() + sr_ack() + meta()
                                    + opt_reply(OPT_GO, REP_ERR_UNKNOWN, b"no such export"))
    s["fixed-go-name"] = (b"\x10" + greeting() + sr_ack() + meta()
                          + info_string(INFO_NAME, "fuzz") + info_export() + go_ack())
    s["tls-allow-refused"] = (b"\x01" + greeting()
                              + opt_reply(OPT_STARTTLS, REP_ERR_POLICY)
                              + sr_meta_go + error_chunk(read0, EIO, b"x", off=100))
    s["tls-require-refused"] = b"\x02" + greeting() + opt_reply(OPT_STARTTLS, REP_ERR_UNSUP)
    s["tls-require-oldstyle"] = b"\x02" + oldstyle()
    # STARTTLS accepted, then a TLS alert record instead of a ServerHello
    s["tls-allow-ack"] = (b"\x01" + greeting() + opt_reply(OPT_STARTTLS, REP_ACK)
                          + bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))
    # opt mode (0x20): list, info, list_meta_context, raw, then go
    opt_answers = (rep_server(b"", b"the default") + rep_server(b"two")
                   + opt_reply(OPT_LIST, REP_ACK)
                   + opt_reply(OPT_INFO, REP_INFO, be("H", INFO_NAME) + b"x")
                   + info_export(opt=OPT_INFO) + opt_reply(OPT_INFO, REP_ACK)
                   + list_context(1, b"base:allocation")
                   + list_context(2, b"qemu:dirty-bitmap:b")
                   + opt_reply(OPT_LIST_META_CONTEXT, REP_ACK)
                   + opt_reply(OPT_RAW_UNKNOWN, REP_ERR_UNSUP, b"what?"))
    s["opt-all-go"] = (b"\x20" + greeting() + sr_ack() + opt_answers
                       + sr_meta_go[len(sr_ack()):] + data_chunk(read0, 0, 512))
    s["opt-query-abort"] = (b"\xe0" + greeting() + sr_ack() + opt_answers
                            + opt_reply(OPT_ABORT, REP_ACK))
    s["opt-errors"] = (b"\x20" + greeting() + sr_ack()
                       + rep_server(b"dropped")
                       + opt_reply(OPT_LIST, REP_ERR_POLICY, b"no list")
                       + opt_reply(OPT_INFO, REP_ERR_UNKNOWN)
                       + opt_reply(OPT_LIST_META_CONTEXT, REP_ERR | 3)
                       + opt_reply(OPT_RAW_UNKNOWN, REP_ACK)
                       + meta() + opt_reply(OPT_GO, REP_ERR_UNKNOWN, b"gone"))
    s["opt-rep-server-length"] = (b"\x20" + greeting() + sr_ack()
                                  + opt_reply(OPT_LIST, REP_SERVER,
                                              be("I", 9) + b"abc"))
    s["opt-no-sr-info-only"] = (b"\x24" + greeting()
                                + opt_reply(OPT_LIST, REP_ACK)
                                + info_export(opt=OPT_INFO, tflags=HAS_FLAGS)
                                + opt_reply(OPT_INFO, REP_ACK)
                                + opt_reply(OPT_LIST_META_CONTEXT, REP_ERR | 3)
                                + opt_reply(OPT_RAW_UNKNOWN, REP_ERR_UNSUP)
                                + opt_reply(OPT_GO, REP_ERR_UNSUP)
                                + be("QH", 1 << 20, HAS_FLAGS)
                                + simple(read0, 0, bytes(512)))
    return s


def reply_seeds():
    SRM = C0_STRUCTURED | C0_META
    s = {}
    s["sr-all-ok"] = bytes([SRM, 0]) + all_answered(SRM)
    s["simple-all-ok"] = bytes([0, 0]) + all_answered(0)
    s["simple-read-only-bs"] = (bytes([C0_READ_ONLY | C0_BLOCK_SIZE, 0])
                                + all_answered(C0_READ_ONLY | C0_BLOCK_SIZE))
    s["sr-mixed-chunks"] = bytes([SRM | C0_BLOCK_SIZE, C1_DF]) + all_answered(
        SRM | C0_BLOCK_SIZE, C1_DF, {
            1: lambda ck: data_chunk(ck, 4096, 2048, 0) + hole_chunk(ck, 6144, 2048),
            2: lambda ck: error_chunk(ck, EIO, b"bad sector", 0, 65536 + 512)
            + hole_chunk(ck, 65536, 8192, 0) + chunk(ck, T_NONE),
            3: lambda ck: hole_chunk(ck, 131072 + 1024, 65536 - 1024, 0)
            + data_chunk(ck, 131072, 1024),
            9: lambda ck: error_chunk(ck, ENOTSUP, b"no fast zero"),
        })
    # replies in reverse order
    rev = issued(SRM, 0)
    s["sr-reversed"] = bytes([SRM, 0]) + b"".join(
        answer(i, rev[i], True) for i in sorted(rev, reverse=True))
    s["sr-eshutdown"] = bytes([SRM, 0]) + error_chunk(cookie(0), ESHUTDOWN, b"going away")
    s["sr-unknown-error-chunk"] = bytes([SRM, 0]) + chunk(
        cookie(7), 0x8123, be("IH", EPERM, 0)) + all_answered(SRM)
    s["sr-unknown-chunk-type"] = bytes([SRM, 0]) + chunk(cookie(0), 77, b"xyz")
    s["sr-simple-read-violation"] = bytes([SRM, 0]) + simple(cookie(0), 0, bytes(512))
    s["bad-magic"] = bytes([SRM, 0]) + be("IIQ", 0x12345678, 0, cookie(0))
    s["few-slots"] = bytes([SRM, C1_FEW_SLOTS]) + all_answered(SRM, C1_FEW_SLOTS)
    s["simple-errors"] = bytes([0, 0]) + b"".join(
        simple(ck, e) for ck, e in zip(issued(0, 0).values(),
                                       [EIO, EPERM, EINVAL, 300, ENOTSUP, 0, 0, 0]))
    # behaviours: auto-retire, a follow-up command, failing chunk callbacks
    b0 = SRM | C0_RETIRE | C0_FOLLOWUP | C0_CHUNK_FAIL
    n = len(issued(b0, 0))
    s["behaviours"] = (bytes([b0, C1_RETIRE_IN_CB]) + all_answered(b0)
                       + data_chunk(cookie(n), 512, 512))
    s["abort-in-completion"] = bytes([SRM, C1_ABORT_IN_CB]) + all_answered(SRM)
    # the same replies, split across reads
    s["sr-all-ok-bytewise"] = bytes([SRM, pieces(1)]) + all_answered(SRM)
    s["sr-all-ok-pieces-100"] = bytes([SRM, pieces(4)]) + all_answered(SRM)
    s["simple-all-ok-pieces-16"] = bytes([0, pieces(3)]) + all_answered(0)
    # the follow-up command is sent before its reply arrives
    s["behaviours-pieces"] = (bytes([b0, pieces(5)]) + all_answered(b0)
                              + data_chunk(cookie(n), 512, 512))

    # record mode: one record per issued command, by index
    R = SRM | C0_RECORDS
    recs = (rec(0x82, 0, ("H", 0), ("H", 0))            # read 0: data, DONE
            + rec(0x02, 1, ("H", 0), ("H", 1024))       # read 1: data, then hole
            + rec(0x83, 1, ("H", 1024), ("H", 0))
            + rec(0x85, 2, ("B", 2), ("B", 4), ("H", 8))  # read 2: error offset
            + rec(0x83, 3, ("H", 0), ("H", 0))          # read 3: one hole
            + rec(0x86, 4, ("B", 0), ("B", 2), ("H", 1024), ("B", 0),
                  ("H", 1024), ("B", 3))                # bs: two extents
            + rec(0x86, 5, ("B", 0), ("B", 1), ("H", 8), ("B", 1))
            + rec(0x00, 6, ("B", 0))                    # write: simple ok
            + rec(0x81, 7)                              # flush: NONE
            + rec(0x84, 8, ("B", 2), ("B", 3))          # trim: error
            + rec(0x00, 9, ("B", 8))                    # zero: simple ESHUTDOWN
            + rec(0x00, 10, ("B", 0))
            + rec(0x82, 11, ("H", 0), ("H", 0)))
    s["rec-all"] = bytes([R, 0]) + recs
    s["rec-simple"] = bytes([C0_RECORDS, 0]) + b"".join(
        rec(0x00, i, ("B", 0)) for i in range(10))
    s["rec-violations"] = bytes([R, 0]) + (
        rec(0xC2, 0, ("b", -3), ("H", 0), ("H", 0))     # length delta
        + rec(0x82, 1, ("H", 4000), ("H", 1000))        # outside the request
        + rec(0x88, 0, ("B", 4)) + b"\x67\x44\x66\x98"  # raw bytes
        + rec(0x87, 2, ("H", 0x0042), ("B", 3)) + b"abc")
    s["rec-stale-cookies"] = bytes([R, 0]) + (
        rec(0x81, 20) + rec(0x81, 31) + rec(0x81, 30, ("Q", 0xFFFFFFFFFFFFFFFF)))
    s["rec-behaviours"] = bytes([R | C0_FOLLOWUP | C0_CHUNK_FAIL, C1_ABORT_IN_CHUNK]) + recs
    s["rec-all-pieces-3"] = bytes([R, pieces(2)]) + recs
    # two block status chunks for one request (only one context was asked)
    # extended headers (C0_META alone)
    X = C0_META
    s["ext-all-ok"] = bytes([X, 0]) + all_answered(X)
    s["ext-all-ok-bytewise"] = bytes([X, pieces(1)]) + all_answered(X)
    s["ext-df-few-slots"] = (bytes([X | C0_BLOCK_SIZE, C1_DF | C1_FEW_SLOTS])
                             + all_answered(X | C0_BLOCK_SIZE,
                                            C1_DF | C1_FEW_SLOTS))
    s["ext-compact-chunk"] = bytes([X, 0]) + data_chunk(cookie(0), 0, 512)
    s["ext-wrong-offset"] = bytes([X, 0]) + ext_chunk(
        cookie(0), 512, T_DATA, be("Q", 0) + bytes(512))
    s["ext-bs-count"] = bytes([X, 0]) + ext_chunk(
        cookie(4), 0, T_BS_EXT, be("IIQQ", 5, 2, MIB, 0))
    s["rec-ext-all"] = bytes([X | C0_RECORDS, 0]) + recs
    s["rec-ext-pieces-3"] = bytes([X | C0_RECORDS | C0_FOLLOWUP, pieces(2)]) + recs
    s["rec-two-block-status"] = bytes([R, 0]) + (
        rec(0x06, 4, ("B", 0), ("B", 1), ("H", 8), ("B", 0))
        + rec(0x86, 4, ("B", 0), ("B", 1), ("H", 8), ("B", 0)))
    return s


def write(dirname, seeds):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    # regress-*: inputs found by fuzzing that once broke a promise, kept
    # as they were found (not generated here)
    for f in os.listdir(d):
        if not f.startswith("regress-"):
            os.unlink(os.path.join(d, f))
    for name, data in sorted(seeds.items()):
        assert len(data) <= MAX_LEN, name
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{d}: {len(seeds)} seeds")


def main():
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    write("handshake", handshake_seeds())
    write("reply", reply_seeds())


if __name__ == "__main__":
    main()
