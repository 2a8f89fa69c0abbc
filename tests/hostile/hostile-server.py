#!/usr/bin/env python3
# tests/hostile/hostile-server.py - a scripted misbehaving NBD server.
#
# Serves one MODE on a unix socket: a correct fixed-newstyle handshake and
# correct replies (structured replies, base:allocation, a 1 MiB export that
# stores what is written, initialised to pattern()), except where the mode
# breaks the protocol.  Every request is answered as the spec asks: writes
# stored, trim and write zeroes zero their range, flush and cache succeed,
# block status extents describe the data (NBD_STATE_ZERO only where it is
# all zeros), and requests past the end, of length 0, with a flag that is
# unknown or not applicable, or a block status without a negotiated meta
# context get an error (EINVAL; ENOSPC for writes and zeroes past the end).
# Transmission modes answer the first GOOD valid requests correctly and
# misbehave once, on the next valid request of the kind their COMMANDS
# names, while the client still has commands in flight; the count is the
# server's, over all its connections, so a client that connects many times
# (nbdaio-check) meets the misbehaviour once and the next connections are
# served correctly (with --every: each valid request of that kind after
# the first GOOD is misbehaved on).  Extended headers (NBD_OPT_EXTENDED_HEADERS) are
# negotiated only by the ext-* modes (Mode.ext); they then read 32-byte
# requests and send every reply in the 32-byte extended header.  Every connection is served in a forked child, so a
# client can connect again (fio connects once in its parent, then in the
# job); the export's storage is shared by all of them (a shared mapping
# made before forking).
#
# MODES below is the one list of modes: `--list` prints, one line each,
#   NAME EXPECT COMMANDS  description
# where EXPECT is the rule tag (core/rules.c) the client's error must
# name, or: ok (must succeed), eof (connection lost: ENOTCONN), timeout (the
# client must give up by itself), errno:NAME (some commands fail with that
# errno, the connection lives on), shutdown (ESHUTDOWN, then a clean soft
# disconnect).  COMMANDS says what the client should issue (read, sread,
# dfread, write, bs, bs-one, bs-filter (a block status filtered to
# base:allocation, with qemu:dirty-bitmap:hostile negotiated too), mixed; opt: connect in opt mode, call list,
# info, list_meta_context and an unknown raw option, then go and read) and
# which requests a transmission mode acts on: a read (read, sread, opt;
# dfread: one with NBD_CMD_FLAG_DF), a write, a block status (bs; bs-one:
# one with NBD_CMD_FLAG_REQ_ONE), any (mixed).
#
# usage: hostile-server.py --mode NAME [--every] SOCKET
#        hostile-server.py --list
#
# Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.

import argparse
import fcntl
import mmap
import os
import random
import select
import signal
import socket
import struct
import sys
import tempfile
import termios
import time

# ---- wire constants ---------------------------------------------------

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OLDSTYLE_MAGIC = 0x0000420281861253
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668E33EF
EXT_REQUEST_MAGIC = 0x21E41C71
EXT_REPLY_MAGIC = 0x6E8A278C

HS_FIXED_NEWSTYLE, HS_NO_ZEROES = 1, 2

TF_HAS_FLAGS, TF_SEND_FLUSH, TF_SEND_FUA = 1 << 0, 1 << 2, 1 << 3
TF_SEND_TRIM, TF_SEND_WRITE_ZEROES, TF_SEND_DF = 1 << 5, 1 << 6, 1 << 7
TF_CAN_MULTI_CONN, TF_SEND_CACHE, TF_SEND_FAST_ZERO = 1 << 8, 1 << 10, 1 << 11
TF_BLOCK_STATUS_PAYLOAD = 1 << 12    # extended headers: filtered block status
TFLAGS = (TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM
          | TF_SEND_WRITE_ZEROES | TF_SEND_DF | TF_CAN_MULTI_CONN
          | TF_SEND_CACHE | TF_SEND_FAST_ZERO)

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 9, 10
OPT_EXTENDED_HEADERS = 11
# the options the spec defines; any other is unknown
KNOWN_OPTIONS = range(OPT_EXPORT_NAME, OPT_EXTENDED_HEADERS + 1)

REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR_UNSUP = (1 << 31) | 1
REP_ERR_INVALID = (1 << 31) | 3
REP_ERR_POLICY = (1 << 31) | 2
REP_ERR_EXT_HEADER_REQD = (1 << 31) | 10

INFO_EXPORT, INFO_NAME, INFO_BLOCK_SIZE = 0, 1, 3
INFO_DESCRIPTION = 2

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, CMD_FLAG_DF = 1 << 0, 1 << 1, 1 << 2
CMD_FLAG_REQ_ONE, CMD_FLAG_FAST_ZERO = 1 << 3, 1 << 4
CMD_FLAG_PAYLOAD_LEN = 1 << 5    # extended headers: a payload follows
# per command: the transmission flag advertising it (0: always there) and
# the command flags that apply to it, each with the transmission flag that
# must advertise it (FUA is valid on every command once advertised)
COMMANDS = {
    CMD_READ: (0, {CMD_FLAG_DF: TF_SEND_DF}),
    CMD_WRITE: (0, {}),
    CMD_FLUSH: (TF_SEND_FLUSH, {}),
    CMD_TRIM: (TF_SEND_TRIM, {}),
    CMD_CACHE: (TF_SEND_CACHE, {}),
    CMD_WRITE_ZEROES: (TF_SEND_WRITE_ZEROES, {
        CMD_FLAG_NO_HOLE: 0, CMD_FLAG_FAST_ZERO: TF_SEND_FAST_ZERO}),
    CMD_BLOCK_STATUS: (0, {CMD_FLAG_REQ_ONE: 0}),
}

FLAG_DONE = 1
T_NONE, T_DATA, T_HOLE, T_BLOCK_STATUS = 0, 1, 2, 5
T_BLOCK_STATUS_EXT = 6
T_ERROR, T_ERROR_OFFSET = (1 << 15) | 1, (1 << 15) | 2

EIO, EINVAL, ENOSPC, ESHUTDOWN = 5, 22, 28, 108

EXPORT_SIZE = 1 << 20
META_CONTEXT = b"base:allocation"
META_ID = 7
# what NBD_OPT_LIST answers: (name, description)
EXPORTS = [(b"", b"the default export"), (b"second", b"")]
# what NBD_OPT_LIST_META_CONTEXT knows: (name, id)
CONTEXTS = [(META_CONTEXT, META_ID), (b"qemu:dirty-bitmap:hostile", 9)]
GOOD = 3                 # correct replies (of the mode's kind) before a
                         # transmission mode acts
LIFETIME = 120           # seconds; a forgotten server ends by itself
DRAIN_SECONDS = 30       # how long we wait for the client to hang up


def make_pattern(size):
    """pattern() of the whole export, a block at a time: byte o of 1 KiB
    block b is ((o * 7 + b * 13) & 0xFF) | 1, which depends on o % 256."""
    row = bytes((i * 7) & 0xFF for i in range(1024))
    ids = bytes(range(256))
    odd = bytes(x | 1 for x in range(256))
    blocks = []
    for b in range(size >> 10):
        k = (b * 13) & 0xFF
        blocks.append(bytes(1024) if b % 4 == 3 else
                      row.translate(ids[k:] + ids[:k]).translate(odd))
    return b"".join(blocks)


PATTERN = make_pattern(EXPORT_SIZE)


def pattern(off, n):
    """The export's initial contents: 1 KiB blocks, every fourth one zero,
    the others never zero.  hostile-client.c computes the same."""
    return PATTERN[off:off + n]


# The export: EXPORT_SIZE bytes shared by every connection (run() makes it
# a MAP_SHARED anonymous mapping before forking).
STORE = bytearray(PATTERN)


class Tally:
    """How many valid requests the server answered correctly, and whether
    the mode acted yet: shared by every connection (a shared mapping made
    before forking), under a lock (lockf on a file made before forking:
    record locks exclude between processes)."""

    def __init__(self):
        self.mem = mmap.mmap(-1, 16, flags=mmap.MAP_SHARED)
        self.lockfile = tempfile.TemporaryFile()

    def __enter__(self):
        fcntl.lockf(self.lockfile, fcntl.LOCK_EX)

    def __exit__(self, *_exc):
        fcntl.lockf(self.lockfile, fcntl.LOCK_UN)

    def get(self):
        return struct.unpack("=QQ", self.mem[:16])

    def set(self, good, acted):
        self.mem[:16] = struct.pack("=QQ", good, acted)


TALLY = None


def contents(off, n):
    """n bytes of the export at off (zeros where a misbehaving mode asks
    for bytes outside it)."""
    lo, hi = max(off, 0), max(min(off + n, len(STORE)), 0)
    if lo >= hi:
        return bytes(n)
    return bytes(lo - off) + STORE[lo:hi] + bytes(off + n - hi)


def is_zero(off, n):
    return STORE[off:off + n].count(0) == n


class HangUp(Exception):
    """End the connection: half-close, then wait for the client to close."""


class Stall(Exception):
    """Send nothing more; wait until the client gives up and closes."""


class Conn:
    def __init__(self, sock, mode):
        self.sock = sock
        self.mode = mode
        self.trickle = mode.trickle
        self.sr = False
        self.ext = False         # extended headers negotiated
        self.offsets = {}        # cookie -> request offset (extended)
        self.meta = False        # a meta context was negotiated
        self.ctx_ids = []        # the ids of the negotiated contexts
        self.no_zeroes = False
        self.size = min(mode.size, len(STORE))

    # -- raw I/O --
    def send(self, data):
        if not self.trickle:
            self.sock.sendall(data)
            return
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            self.wait_consumed()

    def wait_consumed(self):
        """Byte-at-a-time: wait (bounded) until the client read what we
        sent, so that every byte arrives in a read of its own."""
        deadline = time.monotonic() + 1.0
        buf = bytearray(4)
        while time.monotonic() < deadline:
            fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, buf)
            if struct.unpack("i", buf)[0] == 0:
                return
            time.sleep(0.00002)
        self.trickle = False     # the client stopped reading

    def recv_exact(self, n):
        """n bytes, or None on EOF before the first one."""
        data = b""
        while len(data) < n:
            got = self.sock.recv(n - len(data))
            if not got:
                if data:
                    raise HangUp()
                return None
            data += got
        return data

    def need(self, n):
        data = self.recv_exact(n)
        if data is None:
            raise HangUp()
        return data

    # -- handshake messages --
    def opt_reply(self, opt, rtype, payload=b"", magic=OPT_REPLY_MAGIC,
                  length=None):
        n = len(payload) if length is None else length
        self.send(struct.pack(">QIII", magic, opt, rtype, n) + payload)

    def ack(self, opt):
        self.opt_reply(opt, REP_ACK)

    def info_export(self, opt, extra=b""):
        self.opt_reply(opt, REP_INFO, struct.pack(
            ">HQH", INFO_EXPORT, self.mode.size, self.mode.tflags) + extra)

    # -- transmission messages --
    def simple(self, cookie, error=0, data=b"", magic=SIMPLE_MAGIC,
               compact=False):
        """A simple reply; with extended headers (unless compact) the
        reply allowed there instead: an error chunk, or NONE."""
        if self.ext and not compact:
            if error:
                self.error(cookie, error)
            else:
                self.none(cookie)
            return
        self.send(struct.pack(">IIQ", magic, error, cookie) + data)

    def chunk(self, cookie, ctype, payload=b"", flags=FLAG_DONE, length=None,
              magic=STRUCTURED_MAGIC, compact=False, offset=None):
        """A structured chunk; with extended headers (unless compact) in
        the 32-byte header whose offset is the request's (or offset)."""
        n = len(payload) if length is None else length
        if self.ext and not compact:
            off = self.offsets.get(cookie, 0) if offset is None else offset
            self.send(struct.pack(">IHHQQQ", EXT_REPLY_MAGIC, flags, ctype,
                                  cookie, off, n) + payload)
            return
        self.send(struct.pack(">IHHQI", magic, flags, ctype, cookie, n)
                  + payload)

    def data(self, cookie, off, n, flags=FLAG_DONE):
        self.chunk(cookie, T_DATA, struct.pack(">Q", off) + contents(off, n),
                   flags)

    def hole(self, cookie, off, n, flags=FLAG_DONE):
        self.chunk(cookie, T_HOLE, struct.pack(">QI", off, n), flags)

    def none(self, cookie, flags=FLAG_DONE, length=0):
        self.chunk(cookie, T_NONE, b"\0" * length, flags)

    def error(self, cookie, err, msg=b"hostile", ctype=T_ERROR,
              flags=FLAG_DONE, msglen=None, offset=None):
        payload = struct.pack(">IH", err, len(msg) if msglen is None
                              else msglen) + msg
        if offset is not None:
            payload += struct.pack(">Q", offset)
        self.chunk(cookie, ctype, payload, flags)

    def block_status(self, cookie, extents, ctx=META_ID, flags=FLAG_DONE,
                     ext=None, count=None):
        """NBD_REPLY_TYPE_BLOCK_STATUS, or _EXT (64-bit; count: the
        descriptor count field) with extended headers or if ext says so."""
        if self.ext if ext is None else ext:
            payload = struct.pack(">II", ctx, len(extents) if count is None
                                  else count)
            for length, state in extents:
                payload += struct.pack(">QQ", length, state)
            self.chunk(cookie, T_BLOCK_STATUS_EXT, payload, flags)
            return
        payload = struct.pack(">I", ctx)
        for length, state in extents:
            payload += struct.pack(">II", length, state)
        self.chunk(cookie, T_BLOCK_STATUS, payload, flags)

    # -- correct behaviour --
    def handshake(self):
        """Returns True once the transmission phase is reached."""
        m = self.mode
        if m.oldstyle:
            self.send(struct.pack(">QQQI", NBDMAGIC, OLDSTYLE_MAGIC, m.size,
                                  m.tflags) + b"\0" * 124)
            return True
        if m.greeting is not None:
            self.send(m.greeting)
            if len(m.greeting) < 18:     # a truncated greeting: hang up
                raise HangUp()
        else:
            self.send(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, m.hflags))
        cflags = struct.unpack(">I", self.need(4))[0]
        self.no_zeroes = bool(cflags & m.hflags & HS_NO_ZEROES)
        while True:
            magic, opt, n = struct.unpack(">QII", self.need(16))
            data = self.need(n) if n else b""
            if magic != IHAVEOPT:
                raise HangUp()
            if m.opt and m.opt(self, opt, data):
                continue
            if opt == OPT_EXPORT_NAME:
                self.send(struct.pack(">QH", m.size, m.tflags)
                          + (b"" if self.no_zeroes else b"\0" * 124))
                return True
            if opt == OPT_EXTENDED_HEADERS and m.ext and not data:
                self.ext = self.sr = True
                self.ack(opt)
            elif opt == OPT_EXTENDED_HEADERS and m.ext:
                self.opt_reply(opt, REP_ERR_INVALID)    # it takes no data
            elif opt == OPT_STRUCTURED_REPLY and self.ext:
                self.opt_reply(opt, REP_ERR_EXT_HEADER_REQD)
            elif opt == OPT_STRUCTURED_REPLY:
                self.sr = m.sr
                self.opt_reply(opt, REP_ACK if m.sr else REP_ERR_UNSUP)
            elif opt == OPT_SET_META_CONTEXT:
                self.set_meta_context(opt, data)
            elif opt == OPT_LIST:
                self.list_exports(opt, data)
            elif opt == OPT_LIST_META_CONTEXT:
                self.list_meta_context(opt, data)
            elif opt in (OPT_GO, OPT_INFO):
                if (m.go or Conn.go)(self, opt) and opt == OPT_GO:
                    return True
            elif opt == OPT_ABORT:
                self.ack(opt)
                return False
            else:
                self.opt_reply(opt, REP_ERR_UNSUP)

    def list_exports(self, opt, data):
        if data:
            self.opt_reply(opt, REP_ERR_INVALID)
            return
        for name, desc in EXPORTS:
            self.opt_reply(opt, REP_SERVER,
                           struct.pack(">I", len(name)) + name + desc)
        self.ack(opt)

    def list_meta_context(self, opt, data):
        """Every context for no query, else those a query names exactly
        or by its namespace ("qemu:")."""
        if not self.sr:
            self.opt_reply(opt, REP_ERR_INVALID)
            return
        queries = parse_meta_queries(data)
        for name, ctx_id in CONTEXTS:
            if not queries or any(name == q or (q.endswith(b":") and
                                                name.startswith(q))
                                  for q in queries):
                self.opt_reply(opt, REP_META_CONTEXT,
                               struct.pack(">I", ctx_id) + name)
        self.ack(opt)

    def set_meta_context(self, opt, data):
        self.meta = False
        if not self.sr:
            self.opt_reply(opt, REP_ERR_INVALID)
            return
        self.ctx_ids = []
        for query in parse_meta_queries(data):
            if query == META_CONTEXT:
                self.opt_reply(opt, REP_META_CONTEXT, struct.pack(
                    ">I", META_ID) + self.mode.meta_name)
                self.meta = True
                self.ctx_ids.append(META_ID)
            elif self.mode.tflags & TF_BLOCK_STATUS_PAYLOAD and \
                    query == CONTEXTS[1][0]:
                # the filtering modes select the bitmap too
                self.opt_reply(opt, REP_META_CONTEXT, struct.pack(
                    ">I", CONTEXTS[1][1]) + query)
                self.ctx_ids.append(CONTEXTS[1][1])
        self.ack(opt)

    def go(self, opt):
        """Answer NBD_OPT_GO / INFO; True if the export was given (a GO
        answer of a mode returns False when it refused)."""
        if self.mode.block_size:
            self.opt_reply(opt, REP_INFO, struct.pack(
                ">HIII", INFO_BLOCK_SIZE, *self.mode.block_size))
        self.info_export(opt)
        self.ack(opt)
        return True

    def read_request(self):
        if self.ext:
            return self.read_ext_request()
        hdr = self.recv_exact(28)
        if hdr is None:
            return None
        magic, flags, ctype, cookie, off, n = struct.unpack(">IHHQQI", hdr)
        if magic != REQUEST_MAGIC:
            raise HangUp()
        payload = self.need(n) if ctype == CMD_WRITE and n else b""
        return Request(flags, ctype, cookie, off, n, payload)

    def read_ext_request(self):
        """The 32-byte request of extended headers: a write carries
        NBD_CMD_FLAG_PAYLOAD_LEN (else the server hangs up), which is then
        taken off the flags."""
        hdr = self.recv_exact(32)
        if hdr is None:
            return None
        magic, flags, ctype, cookie, off, n = struct.unpack(">IHHQQQ", hdr)
        has_payload = bool(flags & CMD_FLAG_PAYLOAD_LEN)
        filtered = (has_payload and ctype == CMD_BLOCK_STATUS and
                    self.mode.tflags & TF_BLOCK_STATUS_PAYLOAD)
        if magic != EXT_REQUEST_MAGIC or \
                has_payload != (ctype == CMD_WRITE or bool(filtered)):
            raise HangUp()
        payload = self.need(n) if has_payload and n else b""
        self.offsets[cookie] = off
        r = Request(flags & ~CMD_FLAG_PAYLOAD_LEN, ctype, cookie, off, n,
                    payload)
        if filtered:
            # the filter: effect length, then the context ids asked for
            r.count = struct.unpack(">Q", payload[:8])[0]
            r.ids = list(struct.unpack(">%dI" % ((n - 8) // 4), payload[8:]))
            r.payload = b""
        return r

    def refusal(self, r):
        """(errno, message) the request must be refused with, or None."""
        tflags = self.mode.tflags
        if r.type not in COMMANDS:
            return EINVAL, b"unknown command"
        needed, applicable = COMMANDS[r.type]
        if needed and not tflags & needed:
            return EINVAL, b"command not advertised"
        for bit in range(16):
            f = r.flags & (1 << bit)
            if not f or (f == CMD_FLAG_FUA and tflags & TF_SEND_FUA):
                continue
            if f not in applicable or (applicable[f] and
                                       not tflags & applicable[f]):
                return EINVAL, b"flag not applicable or not advertised"
        if r.type == CMD_READ and r.flags & CMD_FLAG_DF and not self.sr:
            return EINVAL, b"DF without structured replies"
        if r.type == CMD_FLUSH:
            return None
        if r.count == 0:
            return EINVAL, b"length 0"
        if r.offset + r.count > self.size:
            if r.type in (CMD_WRITE, CMD_WRITE_ZEROES):
                return ENOSPC, b"past the end of the export"
            return EINVAL, b"past the end of the export"
        minimum = self.mode.block_size[0] if self.mode.block_size else 1
        if minimum > 1 and (r.offset % minimum or r.count % minimum):
            return EINVAL, b"not aligned to the minimum block size"
        if r.type == CMD_BLOCK_STATUS and not (self.sr and self.meta):
            return EINVAL, b"no meta context negotiated"
        return None

    def fail(self, r, err, msg):
        """An error reply in the negotiated form."""
        if self.sr:
            self.error(r.cookie, err, msg)
        else:
            self.simple(r.cookie, err)

    def answer(self, r):
        why = self.refusal(r)
        if why:
            self.fail(r, *why)
        elif r.type == CMD_READ:
            if not self.sr:
                self.simple(r.cookie, 0, contents(r.offset, r.count))
            elif self.mode.fragment and not r.flags & CMD_FLAG_DF:
                self.fragmented_read(r, *self.mode.fragment)
            else:
                self.data(r.cookie, r.offset, r.count)
        elif r.type == CMD_BLOCK_STATUS:
            self.block_status_all(r, r.ids or self.ctx_ids)
        else:
            if r.type == CMD_WRITE:
                STORE[r.offset:r.offset + r.count] = r.payload
            elif r.type in (CMD_TRIM, CMD_WRITE_ZEROES):
                STORE[r.offset:r.offset + r.count] = bytes(r.count)
            self.simple(r.cookie)

    def fragmented_read(self, r, size, order):
        """Data and hole chunks of at most size bytes (never crossing a
        size boundary; a hole where the piece is all zeros), in the given
        order ("reverse": last first; "interleave": every other piece,
        then the rest), then NONE."""
        pieces = split(r, size)
        if order == "reverse":
            pieces.reverse()
        else:
            pieces = pieces[0::2] + pieces[1::2]
        for off, n in pieces:
            if is_zero(off, n):
                self.hole(r.cookie, off, n, flags=0)
            else:
                self.data(r.cookie, off, n, flags=0)
        self.none(r.cookie)

    def pending(self, first):
        """first, and every request that follows within 0.2 s."""
        reqs = [first]
        while select.select([self.sock], [], [], 0.2)[0]:
            r = self.read_request()
            if r is None or r.type == CMD_DISC:
                raise HangUp()
            reqs.append(r)
        return reqs

    def block_status_all(self, r, ids):
        """A block status chunk (the same extents) for each context id,
        DONE on the last."""
        ids = ids or [META_ID]
        for i, ctx in enumerate(ids):
            self.block_status(r.cookie, extents(r), ctx=ctx,
                              flags=FLAG_DONE if i == len(ids) - 1 else 0)

    def acts_on(self, r):
        """Is r a request of the kind the mode misbehaves on?"""
        kind = self.mode.cmds
        if kind == "mixed":
            return True
        if kind == "bs-filter":
            return r.type == CMD_BLOCK_STATUS and bool(r.ids)
        if kind == "write":
            return r.type == CMD_WRITE
        if kind == "bs":
            return r.type == CMD_BLOCK_STATUS
        if kind == "bs-one":
            return (r.type == CMD_BLOCK_STATUS and
                    bool(r.flags & CMD_FLAG_REQ_ONE))
        if kind == "dfread":
            return r.type == CMD_READ and bool(r.flags & CMD_FLAG_DF)
        return r.type == CMD_READ        # read, sread, opt

    def claim(self, r):
        """Is r the request to misbehave on: the first valid one of the
        mode's kind once GOOD valid requests were answered correctly,
        counted over every connection of the server (once per run; with
        Mode.every each one from then on)?"""
        if not self.mode.tx:
            return False
        with TALLY:
            good, acted = TALLY.get()
            if (acted and not self.mode.every) or self.refusal(r):
                return False
            if good >= self.mode.good and self.acts_on(r):
                TALLY.set(good, 1)
                return True
            TALLY.set(good + 1, 0)
            return False

    def transmission(self):
        while True:
            r = self.read_request()
            if r is None or r.type == CMD_DISC:
                return
            if self.claim(r):
                if self.mode.tx(self, r) != "serve":
                    raise HangUp()
            else:
                self.answer(r)

    def drain(self):
        """Read until the client closes (bounded)."""
        self.sock.settimeout(DRAIN_SECONDS)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass

    def serve(self):
        try:
            if self.handshake():
                self.transmission()
        except HangUp:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.drain()
        except Stall:
            self.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass


class Request:
    def __init__(self, flags, ctype, cookie, offset, count, payload=b""):
        self.flags, self.type, self.cookie = flags, ctype, cookie
        self.offset, self.count, self.payload = offset, count, payload
        self.ids = []            # a filtered block status: its context ids


def parse_meta_queries(data):
    """The queries of a (LIST|SET)_META_CONTEXT option."""
    pos = 4 + struct.unpack(">I", data[:4])[0]
    count = struct.unpack(">I", data[pos:pos + 4])[0]
    pos += 4
    out = []
    for _ in range(count):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def split(r, size):
    """The request's range cut at multiples of size: [(offset, length)]."""
    out = []
    off, end = r.offset, r.offset + r.count
    while off < end:
        n = min(end, (off // size + 1) * size) - off
        out.append((off, n))
        off += n
    return out


def extents(r):
    """base:allocation extents of the request, from the data: state 3
    (hole, zero) for the 1 KiB pieces that are all zeros, 0 for the others,
    neighbours of one state merged; only the first with REQ_ONE."""
    out = []
    for off, n in split(r, 1024):
        state = 3 if is_zero(off, n) else 0
        if out and out[-1][1] == state:
            out[-1] = (out[-1][0] + n, state)
        else:
            out.append((n, state))
    return out[:1] if r.flags & CMD_FLAG_REQ_ONE else out


# ---- the modes ---------------------------------------------------------

class Mode:
    """One way of (mis)behaving.  Handshake: greeting (raw bytes; shorter
    than a greeting means hang up after it), hflags, oldstyle, sr (accept
    structured replies), ext (accept extended headers: 32-byte requests
    and replies; the other modes refuse them), meta_name (the context name sent back), block_size
    (min, preferred, max; None: no NBD_INFO_BLOCK_SIZE), size, tflags,
    opt(conn, opt, data) (sees each option first; True if it answered),
    go(conn, opt) (answers NBD_OPT_GO; True once the export was given).
    Transmission: once `good` valid requests were answered correctly (over
    all connections), tx(conn, request) acts, once, on the next valid
    request of the kind cmds names (Conn.acts_on), or with every (the
    option --every) on each one from then on; it returns "serve" to go on
    serving, else the server hangs up.  trickle:
    every byte in its own read; fragment: (size, order) chunking of reads
    (see Conn.fragmented_read)."""

    def __init__(self, name, expect, cmds, text, tx=None, opt=None, go=None,
                 greeting=None, hflags=HS_FIXED_NEWSTYLE | HS_NO_ZEROES,
                 tflags=TFLAGS, size=EXPORT_SIZE,
                 block_size=(1, 4096, 1 << 25),
                 sr=True, meta_name=META_CONTEXT, trickle=False,
                 fragment=None, good=GOOD, oldstyle=False, ext=False):
        self.name, self.expect, self.cmds, self.text = name, expect, cmds, text
        self.tx, self.opt, self.go, self.greeting = tx, opt, go, greeting
        self.hflags, self.tflags, self.size = hflags, tflags, size
        self.block_size, self.sr, self.meta_name = block_size, sr, meta_name
        self.trickle, self.fragment, self.good = trickle, fragment, good
        self.oldstyle = oldstyle
        self.ext = ext
        self.every = False


def on_option(which, action):
    """An option hook: run action(conn, opt) for option `which`."""
    def hook(c, opt, _data):
        if opt != which:
            return False
        action(c, opt)
        raise HangUp()
    return hook


def go_unsupported(c, opt):
    c.opt_reply(opt, REP_ERR_UNSUP)
    return False


def go_unknown_info(c, opt):
    c.opt_reply(opt, REP_INFO, struct.pack(">H", 99) + b"hostile!")
    return c.go(opt)


# Server text a client must never print raw: an OSC setting the window
# title, BEL, a clear-screen CSI, a stray C1 CSI byte, the same as UTF-8,
# an invalid byte and a backslash (tests/hostile/test-escape.sh).
EVIL = b"evil\x1b]0;pwned\x07\x1b[2J\x9b\xc2\x9b\xff\\end"


def go_evil(c, opt):
    """GO: NBD_INFO_NAME and NBD_INFO_DESCRIPTION carrying EVIL."""
    for itype in (INFO_NAME, INFO_DESCRIPTION):
        c.opt_reply(opt, REP_INFO, struct.pack(">H", itype) + EVIL)
    return c.go(opt)


def opt_evil(c, opt, _data):
    """LIST: one export named and described EVIL; INFO refused with EVIL
    as the message."""
    if opt == OPT_LIST:
        c.opt_reply(opt, REP_SERVER,
                    struct.pack(">I", len(EVIL)) + EVIL + EVIL)
        c.ack(opt)
    elif opt == OPT_INFO:
        c.opt_reply(opt, REP_ERR_POLICY, EVIL)
    else:
        return False
    return True


def interleave(c, r):
    """The reads pending: first halves (last read first), then second
    halves; other requests (and DF reads, which must come in one chunk)
    answered in between."""
    reqs, others = [], []
    for q in c.pending(r):
        if (q.type == CMD_READ and not q.flags & CMD_FLAG_DF and
                q.count >= 2 and not c.refusal(q)):
            reqs.append(q)
        else:
            others.append(q)
    for q in reversed(reqs):
        c.data(q.cookie, q.offset, q.count // 2, flags=0)
    for q in others:
        c.answer(q)
    for q in reqs:
        half = q.count // 2
        c.data(q.cookie, q.offset + half, q.count - half)


def long_export_info(c, opt):
    c.info_export(opt, extra=b"\0")
    c.ack(opt)
    return True


def bad_go(*infos):
    """A GO answer: the given (type, payload) infos, then ACK."""
    def go(c, opt):
        for itype, payload in infos:
            c.opt_reply(opt, REP_INFO, struct.pack(">H", itype) + payload)
        c.ack(opt)
        return True
    return go


def then_serve(action):
    """A non-fatal transmission mode: act, then go on serving."""
    def tx(c, r):
        action(c, r)
        return "serve"
    return tx


def stall(*_args):
    """A transmission or option hook that goes silent."""
    raise Stall()


def half_data_chunk(c, r):
    """The first half of a correct data chunk."""
    c.send(struct.pack(">IHHQIQ", STRUCTURED_MAGIC, FLAG_DONE, T_DATA,
                       r.cookie, 8 + r.count, r.offset)
           + contents(r.offset, r.count // 2))


def garbage(c, _r):
    rnd = random.Random(6)
    junk = bytes(rnd.randrange(256) for _ in range(256))
    c.send(b"\xde\xad" + junk)


def reset(c, _r):
    """Close with the client's requests unread: the client sees a reset."""
    c.sock.close()
    os._exit(0)


def overlap_fragmented(c, r):
    """16-byte chunks with gaps, then one across a gap into a chunk (a DF
    read may have one content chunk: one, then one into it)."""
    n = 1 if r.flags & CMD_FLAG_DF else 8
    for k in range(n):
        c.data(r.cookie, r.offset + 32 * k, 16, flags=0)
    c.data(r.cookie, r.offset + (8 if n == 1 else 24), 32)


def error_midway(c, r):
    """Data, an error chunk at the middle, then the rest of the data (a DF
    read may have one content chunk: all the data, then the error)."""
    half = r.count // 2
    if r.flags & CMD_FLAG_DF:
        c.data(r.cookie, r.offset, r.count, flags=0)
        c.error(r.cookie, EIO, ctype=T_ERROR_OFFSET, offset=r.offset + half)
        return
    c.data(r.cookie, r.offset, half, flags=0)
    c.error(r.cookie, EIO, ctype=T_ERROR_OFFSET, flags=0,
            offset=r.offset + half)
    c.data(r.cookie, r.offset + half, r.count - half)


def go_ext_reqd(c, opt):
    """GO refused with NBD_REP_ERR_EXT_HEADER_REQD: a violation once
    extended headers were negotiated, else the server requiring them."""
    if c.ext:
        c.opt_reply(opt, REP_ERR_EXT_HEADER_REQD)
        return False
    return c.go(opt)


def go_needs_ext(c, opt):
    """A server that requires extended headers (and serves them)."""
    if not c.ext:
        c.opt_reply(opt, REP_ERR_EXT_HEADER_REQD)
        return False
    return c.go(opt)


def opt_reqd_unless_ext(c, opt, _data):
    """NBD_OPT_LIST_META_CONTEXT refused with NBD_REP_ERR_EXT_HEADER_REQD
    to a client without extended headers, even for "base:" (a MUST NOT)."""
    if opt == OPT_LIST_META_CONTEXT and c.sr and not c.ext:
        c.opt_reply(opt, REP_ERR_EXT_HEADER_REQD)
        return True
    return False


def opt_sr_after_ext(c, opt, _data):
    """NBD_OPT_STRUCTURED_REPLY after extended headers acknowledged (the
    spec names NBD_REP_ERR_EXT_HEADER_REQD for it); replies stay
    extended."""
    if opt == OPT_STRUCTURED_REPLY and c.ext:
        c.ack(opt)
        return True
    return False


def bs_second_chunk(c, r):
    c.block_status(r.cookie, [(r.count, 0)], flags=0)
    c.block_status(r.cookie, [(r.count, 0)])


def df_two_chunks(c, r):
    """A DF read in two data chunks (each correct, together complete)."""
    half = r.count // 2
    c.data(r.cookie, r.offset, half, flags=0)
    c.data(r.cookie, r.offset + half, r.count - half)


M = Mode
H = HS_FIXED_NEWSTYLE | HS_NO_ZEROES
MODES = [
    # -- correct servers: the client must succeed --
    M("good", "ok", "mixed", "a correct server"),
    M("fragmented", "ok", "sread",
      "reads answered with 1 KiB data and hole chunks, last first, then NONE",
      fragment=(1024, "reverse")),
    M("byte-at-a-time", "ok", "mixed",
      "every byte of the handshake and the replies in its own read",
      trickle=True, fragment=(1024, "reverse")),
    M("fragmented-interleaved", "ok", "sread",
      "reads in 16-byte chunks: every other one, then the gaps",
      fragment=(16, "interleave")),
    M("out-of-order", "ok", "mixed", "replies in reverse order", good=0,
      tx=then_serve(lambda c, r: [c.answer(q) for q in
                                  reversed(c.pending(r))])),
    M("interleaved", "ok", "sread",
      "the chunks of all reads interleaved: first halves, then second halves",
      good=0, tx=then_serve(interleave)),
    M("oldstyle", "ok", "read", "the oldstyle handshake", oldstyle=True,
      tflags=TFLAGS & ~TF_SEND_DF, sr=False),
    M("newstyle-unfixed", "ok", "read",
      "newstyle without NBD_FLAG_FIXED_NEWSTYLE: NBD_OPT_EXPORT_NAME only",
      hflags=HS_NO_ZEROES, tflags=TFLAGS & ~TF_SEND_DF),
    M("info-unknown", "ok", "read", "an NBD_REP_INFO of unknown type 99",
      go=go_unknown_info),
    M("simple-replies", "ok", "mixed",
      "structured replies refused: simple replies only", sr=False,
      tflags=TFLAGS & ~TF_SEND_DF),
    M("opt-good", "ok", "opt",
      "opt mode: LIST (two exports), INFO, LIST_META_CONTEXT, an unknown "
      "option (NBD_REP_ERR_UNSUP), then GO"),
    M("export-name-fallback", "ok", "read",
      "NBD_OPT_GO unsupported: the client falls back to NBD_OPT_EXPORT_NAME",
      go=go_unsupported),

    # -- handshake --
    M("hs-magic", "hs-magic", "read", "greeting starts with NBDMAGIX",
      greeting=b"NBDMAGIX" + struct.pack(">QH", IHAVEOPT, H)),
    M("hs-magic-second", "hs-magic", "read",
      "second greeting magic is neither IHAVEOPT nor oldstyle",
      greeting=struct.pack(">QQH", NBDMAGIC, 0x1122334455667788, H)),
    M("hs-garbage", "hs-magic", "read", "random bytes instead of a greeting",
      greeting=bytes(random.Random(1).randrange(256) for _ in range(64))),
    M("oldstyle-flags", "tflags-has-flags", "read",
      "oldstyle greeting whose flags lack NBD_FLAG_HAS_FLAGS", oldstyle=True,
      tflags=0, sr=False),
    M("hs-flags", "hs-flags", "read", "handshake flag bit 8 set",
      hflags=H | 0x100),
    M("opt-reply-magic", "opt-reply-magic", "read",
      "reply to NBD_OPT_STRUCTURED_REPLY with a wrong magic",
      opt=on_option(OPT_STRUCTURED_REPLY, lambda c, o: c.opt_reply(
          o, REP_ACK, magic=OPT_REPLY_MAGIC ^ 1))),
    M("opt-garbage", "opt-reply-magic", "read",
      "random bytes in answer to NBD_OPT_STRUCTURED_REPLY",
      opt=on_option(OPT_STRUCTURED_REPLY, lambda c, o: c.send(
          bytes(random.Random(2).randrange(256) for _ in range(40))))),
    M("opt-reply-echo", "opt-reply-echo", "read",
      "ACK to NBD_OPT_STRUCTURED_REPLY naming NBD_OPT_GO",
      opt=on_option(OPT_STRUCTURED_REPLY, lambda c, o: c.ack(OPT_GO))),
    M("opt-reply-type", "opt-reply-type", "read",
      "NBD_REP_SERVER in answer to NBD_OPT_GO",
      opt=on_option(OPT_GO, lambda c, o: c.opt_reply(
          o, REP_SERVER, struct.pack(">I", 0)))),
    M("opt-reply-type-info", "opt-reply-type", "read",
      "NBD_REP_INFO in answer to NBD_OPT_STRUCTURED_REPLY",
      opt=on_option(OPT_STRUCTURED_REPLY, lambda c, o: c.opt_reply(
          o, REP_INFO, struct.pack(">H", INFO_NAME)))),
    M("opt-reply-length-ack", "opt-reply-length", "read",
      "NBD_REP_ACK carrying 4 bytes",
      opt=on_option(OPT_STRUCTURED_REPLY, lambda c, o: c.opt_reply(
          o, REP_ACK, b"\0\0\0\0"))),
    M("opt-reply-length-huge", "opt-reply-length", "read",
      "NBD_REP_INFO announcing 16 MiB (never sent)",
      opt=on_option(OPT_GO, lambda c, o: c.opt_reply(
          o, REP_INFO, length=16 << 20))),
    M("meta-context-name", "meta-context-name", "bs",
      "NBD_REP_META_CONTEXT names a context that was not asked for",
      meta_name=b"qemu:dirty-bitmap:x"),
    M("info-short", "info-length", "read", "NBD_REP_INFO of 1 byte",
      opt=on_option(OPT_GO, lambda c, o: c.opt_reply(o, REP_INFO, b"\0"))),
    M("info-export-length", "info-length", "read",
      "NBD_INFO_EXPORT of 13 bytes",
      go=long_export_info),
    M("info-block-size-length", "info-length", "read",
      "NBD_INFO_BLOCK_SIZE of 12 bytes",
      go=bad_go((INFO_BLOCK_SIZE, struct.pack(">IIH", 1, 4096, 0)))),
    M("info-missing-export", "info-missing-export", "read",
      "NBD_REP_ACK to NBD_OPT_GO after only NBD_INFO_NAME",
      go=bad_go((INFO_NAME, b"hostile"))),
    M("info-size", "info-size", "read", "export size 2^63", size=1 << 63),
    M("tflags-has-flags", "tflags-has-flags", "read",
      "transmission flags without NBD_FLAG_HAS_FLAGS",
      tflags=TFLAGS & ~TF_HAS_FLAGS),
    M("tflags-has-flags-export-name", "tflags-has-flags", "read",
      "the same through the NBD_OPT_EXPORT_NAME fallback",
      go=go_unsupported, tflags=TFLAGS & ~TF_HAS_FLAGS),
    M("tflags-df", "tflags-df", "read",
      "NBD_FLAG_SEND_DF although structured replies were refused", sr=False),
    M("tflags-fast-zero", "tflags-fast-zero", "read",
      "NBD_FLAG_SEND_FAST_ZERO without NBD_FLAG_SEND_WRITE_ZEROES",
      tflags=TFLAGS & ~TF_SEND_WRITE_ZEROES),
    M("block-size-zero", "block-size", "read",
      "NBD_INFO_BLOCK_SIZE with all three sizes 0", block_size=(0, 0, 0)),
    M("block-size-min", "block-size", "read", "minimum block size 3",
      block_size=(3, 4096, 1 << 20)),
    M("block-size-min-big", "block-size", "read",
      "minimum block size 128 KiB",
      block_size=(128 << 10, 128 << 10, 1 << 20)),
    M("block-size-pref-small", "block-size", "read",
      "preferred block size 256", block_size=(1, 256, 1 << 20)),
    M("block-size-pref-pow2", "block-size", "read",
      "preferred block size 6144", block_size=(512, 6144, 1 << 20)),
    M("block-size-max", "block-size", "read",
      "maximum block size below the preferred", block_size=(512, 8192, 4096)),
    M("block-size-max-multiple", "block-size", "read",
      "maximum block size not a multiple of the minimum",
      block_size=(4096, 4096, 10000)),

    # -- opt mode: the client calls list, info, list_meta_context, raw --
    M("rep-server-length", "rep-server-length", "opt",
      "NBD_REP_SERVER whose name length runs past its payload",
      opt=on_option(OPT_LIST, lambda c, o: c.opt_reply(
          o, REP_SERVER, struct.pack(">I", 9) + b"abcd"))),
    M("rep-server-short", "rep-server-length", "opt",
      "NBD_REP_SERVER of 2 bytes",
      opt=on_option(OPT_LIST, lambda c, o: c.opt_reply(
          o, REP_SERVER, b"\0\0"))),
    M("string-nul", "string-nul", "opt",
      "an export name with a NUL byte in NBD_REP_SERVER",
      opt=on_option(OPT_LIST, lambda c, o: c.opt_reply(
          o, REP_SERVER, struct.pack(">I", 3) + b"a\0b"))),
    M("string-length", "string-length", "opt",
      "an export description of 5000 bytes in NBD_REP_SERVER",
      opt=on_option(OPT_LIST, lambda c, o: c.opt_reply(
          o, REP_SERVER, struct.pack(">I", 1) + b"a" + b"d" * 5000))),
    M("meta-context-length", "meta-context-length", "opt",
      "NBD_REP_META_CONTEXT of 4 bytes (an id, no name) to LIST_META_CONTEXT",
      opt=on_option(OPT_LIST_META_CONTEXT, lambda c, o: c.opt_reply(
          o, REP_META_CONTEXT, struct.pack(">I", 1)))),
    M("opt-list-reply-type", "opt-reply-type", "opt",
      "NBD_REP_INFO in answer to NBD_OPT_LIST",
      opt=on_option(OPT_LIST, lambda c, o: c.info_export(o))),
    M("opt-info-missing-export", "info-missing-export", "opt",
      "NBD_REP_ACK to NBD_OPT_INFO after only NBD_INFO_NAME",
      opt=on_option(OPT_INFO, lambda c, o: (c.opt_reply(
          o, REP_INFO, struct.pack(">H", INFO_NAME) + b"x"), c.ack(o)))),
    M("opt-raw-stall", "timeout", "opt",
      "silence after an unknown option (NBD_OPT_LIST and the others are "
      "answered)",
      opt=lambda c, o, d: o not in KNOWN_OPTIONS and stall()),
    M("hs-truncated", "eof", "read", "half a greeting, then EOF",
      greeting=struct.pack(">Q", NBDMAGIC)[:5]),
    M("hs-truncated-info", "eof", "read",
      "NBD_INFO_EXPORT cut after 5 of 12 bytes, then EOF",
      opt=on_option(OPT_GO, lambda c, o: c.opt_reply(
          o, REP_INFO, struct.pack(">HQ", INFO_EXPORT, EXPORT_SIZE)[:5],
          length=12))),
    M("hs-stall", "timeout", "read",
      "greeting, then silence during option haggling",
      opt=stall),

    # -- transmission: magics, cookies, final replies --
    M("reply-magic", "reply-magic", "read", "reply magic 0x12345678",
      tx=lambda c, r: c.simple(r.cookie, magic=0x12345678)),
    M("reply-magic-structured", "reply-magic", "read",
      "a structured chunk although structured replies were refused",
      sr=False, tflags=TFLAGS & ~TF_SEND_DF,
      tx=lambda c, r: c.none(r.cookie)),
    M("reply-cookie", "reply-cookie", "read",
      "a reply for a cookie that was never issued",
      tx=lambda c, r: c.data(r.cookie + (1 << 40), r.offset, r.count)),
    M("reply-cookie-zero", "reply-cookie", "write",
      "a simple reply for cookie 0", tx=lambda c, r: c.simple(0)),
    M("reply-after-done", "reply-after-done", "read",
      "a NONE chunk after the final chunk of a read",
      tx=lambda c, r: (c.answer(r), c.none(r.cookie))),
    M("reply-after-done-simple", "reply-after-done", "write",
      "a second simple reply to a write",
      tx=lambda c, r: (c.answer(r), c.simple(r.cookie))),
    M("simple-reply-read", "simple-reply-read", "sread",
      "a simple reply to a structured read",
      tx=lambda c, r: c.simple(r.cookie, 0, contents(r.offset, r.count))),
    M("simple-reply-read-in-sync", "errno:EPROTO", "sread",
      "a simple reply with data to a structured read: only that read fails "
      "(the library's default reply-violations=command)",
      tx=then_serve(lambda c, r: c.simple(r.cookie, 0,
                                          contents(r.offset, r.count)))),
    M("simple-reply-read-error", "errno:EPROTO", "sread",
      "a simple EIO reply to a structured read, as nbd-server 3.26 answers "
      "a read that fails: only that read fails",
      tx=then_serve(lambda c, r: c.simple(r.cookie, EIO))),

    # -- data and hole chunks --
    M("chunk-bounds-before", "chunk-bounds", "read",
      "data chunk starting 512 bytes before the request",
      tx=lambda c, r: c.data(r.cookie, r.offset - 512, r.count)),
    M("chunk-bounds-after", "chunk-bounds", "read",
      "data chunk running past the end of the request",
      tx=lambda c, r: c.data(r.cookie, r.offset + r.count // 2, r.count)),
    M("chunk-bounds-hole", "chunk-bounds", "sread",
      "hole chunk after the end of the request",
      tx=lambda c, r: c.hole(r.cookie, r.offset + r.count, 512)),
    M("chunk-bounds-error-offset", "chunk-bounds", "read",
      "NBD_REPLY_TYPE_ERROR_OFFSET pointing past the request",
      tx=lambda c, r: c.error(r.cookie, EIO, ctype=T_ERROR_OFFSET,
                              offset=r.offset + r.count)),
    M("chunk-overlap", "chunk-overlap", "read",
      "data chunks [0, 2K) and [1K, 3K) of a request",
      tx=lambda c, r: (c.data(r.cookie, r.offset, 2048, flags=0),
                       c.data(r.cookie, r.offset + 1024, 2048))),
    M("chunk-overlap-hole", "chunk-overlap", "sread",
      "the whole request as data, then a hole over its first KiB",
      tx=lambda c, r: (c.data(r.cookie, r.offset, r.count, flags=0),
                       c.hole(r.cookie, r.offset, 1024))),
    M("chunk-overlap-fragmented", "chunk-overlap", "read",
      "16-byte chunks with gaps, then one across a gap into a chunk",
      tx=overlap_fragmented),
    M("chunk-coverage", "chunk-coverage", "read",
      "half of a read, then DONE",
      tx=lambda c, r: c.data(r.cookie, r.offset, r.count // 2)),
    M("chunk-coverage-none", "chunk-coverage", "read",
      "NBD_REPLY_TYPE_NONE alone as a successful read's reply",
      tx=lambda c, r: c.none(r.cookie)),
    M("chunk-df", "chunk-df", "dfread",
      "a read with NBD_CMD_FLAG_DF answered in two data chunks",
      tx=df_two_chunks),
    M("chunk-command-write", "chunk-command", "write",
      "a data chunk in reply to a write",
      tx=lambda c, r: c.data(r.cookie, r.offset, r.count)),
    M("chunk-command-hole-bs", "chunk-command", "bs",
      "a hole chunk in reply to a block status",
      tx=lambda c, r: c.hole(r.cookie, r.offset, r.count)),
    M("chunk-command-bs-read", "chunk-command", "read",
      "a block status chunk in reply to a read",
      tx=lambda c, r: c.block_status(r.cookie, [(r.count, 0)])),

    # -- chunk types and lengths --
    M("chunk-none-not-done", "chunk-none", "read",
      "NBD_REPLY_TYPE_NONE without the DONE flag",
      tx=lambda c, r: c.none(r.cookie, flags=0)),
    M("chunk-none-length", "chunk-none", "write",
      "NBD_REPLY_TYPE_NONE of length 4", tx=lambda c, r: c.none(r.cookie,
                                                                length=4)),
    M("chunk-length-hole", "chunk-length", "read", "hole chunk of length 8",
      tx=lambda c, r: c.chunk(r.cookie, T_HOLE, struct.pack(">Q", r.offset))),
    M("chunk-length-hole-zero", "chunk-length", "read",
      "hole chunk covering 0 bytes", tx=lambda c, r: c.hole(r.cookie,
                                                            r.offset, 0)),
    M("chunk-length-data", "chunk-length", "read",
      "data chunk of length 8 (an offset, no data)",
      tx=lambda c, r: c.chunk(r.cookie, T_DATA, struct.pack(">Q", r.offset))),
    M("chunk-length-bs", "chunk-length", "bs",
      "block status chunk of length 10",
      tx=lambda c, r: c.chunk(r.cookie, T_BLOCK_STATUS, b"\0" * 10)),
    M("chunk-length-bs-huge", "chunk-length", "bs",
      "block status chunk announcing 2^20 + 1 extents (never sent): more "
      "than any request may get",
      tx=lambda c, r: c.chunk(r.cookie, T_BLOCK_STATUS,
                              length=4 + 8 * ((1 << 20) + 1))),
    M("chunk-unknown", "chunk-unknown", "read",
      "chunk type 3 (unknown, not an error type)",
      tx=lambda c, r: c.chunk(r.cookie, 3, b"\0" * 4)),
    M("chunk-unknown-huge", "chunk-unknown", "read",
      "chunk type 0x7fff announcing 4 GiB (never sent)",
      tx=lambda c, r: c.chunk(r.cookie, 0x7FFF, length=0xFFFFFFFF)),
    M("chunk-error-zero", "chunk-error-zero", "read",
      "error chunk with error 0", tx=lambda c, r: c.error(r.cookie, 0)),
    M("chunk-error-overlong", "chunk-error-length", "read",
      "error chunk whose message length exceeds the chunk",
      tx=lambda c, r: c.error(r.cookie, EIO, msglen=200)),
    M("chunk-error-short-message", "chunk-error-length", "write",
      "error chunk with bytes after its message",
      tx=lambda c, r: c.error(r.cookie, EIO, msglen=3)),
    M("chunk-error-msglen-le", "errno:EPROTO", "read",
      "final error chunk whose message length is little-endian, as "
      "nbd-server 3.26 sends: only that read fails (reply-violations="
      "command)",
      tx=then_serve(lambda c, r: c.error(r.cookie, EIO, msg=b"read failed!",
                                         msglen=12 << 8))),
    M("chunk-error-tiny", "chunk-error-length", "read",
      "error chunk of length 4",
      tx=lambda c, r: c.chunk(r.cookie, T_ERROR, struct.pack(">I", EIO))),
    M("chunk-error-huge", "chunk-error-length", "read",
      "error chunk announcing 100000 bytes (never sent)",
      tx=lambda c, r: c.chunk(r.cookie, T_ERROR, length=100000)),

    # -- block status --
    M("bs-context", "bs-context", "bs",
      "block status for context id 99 (7 was negotiated)",
      tx=lambda c, r: c.block_status(r.cookie, extents(r), ctx=99)),
    M("bs-extent-zero", "bs-extent", "bs", "an extent of length 0",
      tx=lambda c, r: c.block_status(r.cookie, [(0, 0)] + extents(r))),
    M("bs-twice", "bs-extent", "bs",
      "two block status chunks for one context", tx=bs_second_chunk),
    M("bs-req-one", "bs-extent", "bs-one",
      "two extents in reply to NBD_CMD_FLAG_REQ_ONE",
      tx=lambda c, r: c.block_status(r.cookie, [(512, 0), (512, 3)])),
    M("bs-missing", "bs-extent", "bs",
      "NONE as a successful block status's only reply",
      tx=lambda c, r: c.none(r.cookie)),
    M("bs-simple", "bs-extent", "bs",
      "a simple reply without error to a block status",
      tx=lambda c, r: c.simple(r.cookie)),

    # -- extended headers (NBD_OPT_EXTENDED_HEADERS) --
    M("ext-good", "ok", "mixed",
      "extended headers: 32-byte requests and replies, BLOCK_STATUS_EXT",
      ext=True),
    M("ext-required", "ok", "mixed",
      "GO refused with NBD_REP_ERR_EXT_HEADER_REQD unless extended headers "
      "were negotiated", ext=True, go=go_needs_ext),
    M("ext-payload-flag-compact", "ok", "mixed",
      "NBD_FLAG_BLOCK_STATUS_PAYLOAD advertised without extended headers "
      "(a MUST NOT no client is hurt by: nbdaio-check "
      "xhdr.payload-flag-compact)", tflags=TFLAGS | TF_BLOCK_STATUS_PAYLOAD),
    M("ext-reqd-base-list", "ok", "opt",
      "NBD_OPT_LIST_META_CONTEXT of base: refused with "
      "NBD_REP_ERR_EXT_HEADER_REQD without extended headers (nbdaio-check "
      "xhdr.ext-header-reqd)", ext=True, opt=opt_reqd_unless_ext),
    M("ext-sr-after-ack", "ok", "opt",
      "NBD_OPT_STRUCTURED_REPLY after extended headers acknowledged "
      "(nbdaio-check xhdr.sr-after: WARN)", ext=True, opt=opt_sr_after_ext),
    M("ext-go", "ext-go", "read",
      "extended headers acknowledged, then GO refused with "
      "NBD_REP_ERR_EXT_HEADER_REQD", ext=True, go=go_ext_reqd),
    M("ext-reply-magic", "ext-reply-magic", "read",
      "a compact structured data chunk once extended headers are on",
      ext=True, tx=lambda c, r: c.chunk(
          r.cookie, T_DATA, struct.pack(">Q", r.offset)
          + contents(r.offset, r.count), compact=True)),
    M("ext-reply-magic-simple", "ext-reply-magic", "write",
      "a simple reply to a write once extended headers are on", ext=True,
      tx=lambda c, r: c.simple(r.cookie, compact=True)),
    M("ext-offset", "ext-offset", "read",
      "an extended reply header whose offset is not the request's",
      ext=True, tx=lambda c, r: c.chunk(
          r.cookie, T_DATA, struct.pack(">Q", r.offset)
          + contents(r.offset, r.count), offset=r.offset + 512)),
    M("ext-length", "ext-length", "read",
      "an extended reply header announcing 2^32 + 8 bytes (never sent)",
      ext=True, tx=lambda c, r: c.chunk(r.cookie, T_DATA,
                                        length=(1 << 32) + 8)),
    M("ext-bs-type", "ext-bs-type", "bs",
      "NBD_REPLY_TYPE_BLOCK_STATUS (32-bit) once extended headers are on",
      ext=True, tx=lambda c, r: c.block_status(r.cookie, extents(r),
                                               ext=False)),
    M("ext-bs-type-compact", "ext-bs-type", "bs",
      "NBD_REPLY_TYPE_BLOCK_STATUS_EXT without extended headers",
      tx=lambda c, r: c.block_status(r.cookie, extents(r), ext=True)),
    M("ext-bs-count", "ext-bs-count", "bs",
      "BLOCK_STATUS_EXT whose descriptor count is one more than it holds",
      ext=True, tx=lambda c, r: c.block_status(
          r.cookie, extents(r), count=len(extents(r)) + 1)),
    M("ext-bs-status", "ext-bs-status", "bs",
      "BLOCK_STATUS_EXT with a status above 32 bits in base:allocation",
      ext=True, tx=lambda c, r: c.block_status(r.cookie,
                                               [(r.count, 1 << 32)])),
    M("bs-filter", "bs-filter", "bs-filter",
      "NBD_FLAG_BLOCK_STATUS_PAYLOAD and two contexts; a block status "
      "filtered to one gets a chunk for each", ext=True,
      tflags=TFLAGS | TF_BLOCK_STATUS_PAYLOAD,
      tx=lambda c, r: c.block_status_all(r, c.ctx_ids)),

    # -- not fatal: one command fails, the connection lives on --
    M("error-type-unknown", "errno:EIO", "read",
      "error chunk of unknown type 0x8064 (EIO): fails only its command",
      tx=then_serve(lambda c, r: c.error(r.cookie, EIO, ctype=0x8064))),
    M("error-midway", "errno:EIO", "sread",
      "data, an error chunk at the middle, then the rest of the data",
      tx=then_serve(error_midway)),
    M("error-value-unknown", "errno:EINVAL", "read",
      "error chunk with error 9999, read as EINVAL",
      tx=then_serve(lambda c, r: c.error(r.cookie, 9999))),
    M("error-value-unknown-simple", "errno:EINVAL", "write",
      "simple reply with error 4242, read as EINVAL",
      tx=then_serve(lambda c, r: c.simple(r.cookie, 4242))),
    M("eshutdown", "shutdown", "read",
      "ESHUTDOWN for one read: the client disconnects softly",
      tx=then_serve(lambda c, r: c.error(r.cookie, ESHUTDOWN))),
    M("escape-text", "errno:EIO", "read",
      "terminal escape sequences in the export name and description, a "
      "LIST entry, the refusal of NBD_OPT_INFO and an error chunk (EIO)",
      opt=opt_evil, go=go_evil,
      tx=then_serve(lambda c, r: c.error(r.cookie, EIO, msg=EVIL))),

    # -- truncated replies, lost connections, garbage, stalls --
    M("trunc-header", "eof", "read", "10 bytes of a chunk header, then EOF",
      tx=lambda c, r: c.send(struct.pack(">IHHQI", STRUCTURED_MAGIC,
                                         FLAG_DONE, T_DATA, r.cookie,
                                         8 + r.count)[:10])),
    M("trunc-data", "eof", "read", "a data chunk cut in half, then EOF",
      tx=half_data_chunk),
    M("trunc-simple", "eof", "read",
      "a simple read reply cut in half, then EOF", sr=False,
      tflags=TFLAGS & ~TF_SEND_DF,
      tx=lambda c, r: c.send(struct.pack(">IIQ", SIMPLE_MAGIC, 0, r.cookie)
                             + contents(r.offset, r.count // 2))),
    M("trunc-bs", "eof", "bs", "a block status chunk cut short, then EOF",
      tx=lambda c, r: c.send(struct.pack(">IHHQII", STRUCTURED_MAGIC,
                                         FLAG_DONE, T_BLOCK_STATUS, r.cookie,
                                         12, META_ID))),
    M("eof-in-flight", "eof", "write",
      "EOF with writes in flight", tx=lambda c, r: None),
    M("reset", "eof", "write",
      "close with requests unread: the client sees a reset", tx=reset),
    M("garbage", "reply-magic", "read", "random bytes instead of a reply",
      tx=garbage),
    M("stall", "timeout", "read", "no reply after the first three",
      tx=stall),
    M("stall-mid-chunk", "timeout", "read",
      "half a data chunk, then silence",
      tx=lambda c, r: stall(half_data_chunk(c, r))),
    M("stall-any", "timeout", "mixed",
      "no reply after the first three, whatever the request (a flush too)",
      tx=stall),
]


# ---- the server ----------------------------------------------------------

def listen(path):
    """A listening socket at path, which appears only once it accepts."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(tmp):
        os.unlink(tmp)
    sock.bind(tmp)
    sock.listen(16)
    os.rename(tmp, path)
    return sock


def run(mode, path):
    global STORE, TALLY
    children = set()
    STORE = mmap.mmap(-1, EXPORT_SIZE, flags=mmap.MAP_SHARED)
    STORE[:] = PATTERN
    TALLY = Tally()
    lsock = listen(path)

    def stop(_sig, _frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(LIFETIME)
    accept_log = os.environ.get("HOSTILE_ACCEPT_LOG")
    while True:
        conn, _ = lsock.accept()
        if accept_log:           # one line per connection (reconnect tests)
            with open(accept_log, "a") as f:
                f.write("accept\n")
        pid = os.fork()
        if pid == 0:
            lsock.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(LIFETIME)
            Conn(conn, mode).serve()
            conn.close()
            os._exit(0)
        conn.close()
        children.add(pid)
        while children:          # reap the children that are done
            done, _ = os.waitpid(-1, os.WNOHANG)
            if not done:
                break
            children.discard(done)


def main():
    ap = argparse.ArgumentParser(description="a scripted misbehaving NBD "
                                 "server (one mode per run)")
    ap.add_argument("--list", action="store_true",
                    help="print NAME EXPECT COMMANDS description per mode")
    ap.add_argument("--mode", help="the mode to serve")
    ap.add_argument("--every", action="store_true",
                    help="misbehave on every request of the mode's kind "
                    "after the first good ones, not once")
    ap.add_argument("socket", nargs="?", help="unix socket path")
    args = ap.parse_args()
    if args.list:
        for m in MODES:
            print("%-30s %-20s %-6s %s" % (m.name, m.expect, m.cmds, m.text))
        return 0
    modes = {m.name: m for m in MODES}
    if not args.socket or args.mode not in modes:
        ap.error("need --mode NAME (one of --list) and a socket path")
    modes[args.mode].every = args.every
    run(modes[args.mode], args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
