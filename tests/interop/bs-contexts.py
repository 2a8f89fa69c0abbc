#!/usr/bin/env python3
# tests/interop/bs-contexts.py - block status of several meta contexts at
# once through libnbdaio (ctypes): asks for every CONTEXT given, checks that
# the server selected them all, runs nbdaio_aio_block_status_64 over
# [0, LENGTH) and prints one line per chunk:
#   CONTEXT OFFSET:LENGTH:FLAGS ...
# (extents as the server sent them, merged with nothing) and, with --ext,
# fails unless extended headers were negotiated.
#
# usage: bs-contexts.py LIBNBDAIO.SO URI LENGTH [--ext] CONTEXT...
#
# Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.

import ctypes as C
import sys


class Extent64(C.Structure):
    _fields_ = [("length", C.c_uint64), ("flags", C.c_uint64)]


EXTENT_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_char_p, C.c_uint64,
                        C.POINTER(Extent64), C.c_size_t,
                        C.POINTER(C.c_int))
DONE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(C.c_int))
FREE_FN = C.CFUNCTYPE(None, C.c_void_p)


class ExtentCb(C.Structure):
    _fields_ = [("callback", EXTENT_FN), ("user_data", C.c_void_p),
                ("free", FREE_FN)]


class DoneCb(C.Structure):
    _fields_ = [("callback", DONE_FN), ("user_data", C.c_void_p),
                ("free", FREE_FN)]


def main():
    args = sys.argv[1:]
    ext = "--ext" in args
    args = [a for a in args if a != "--ext"]
    if len(args) < 4:
        sys.exit(__doc__ if __doc__ else "usage: see the comment")
    lib = C.CDLL(args[0])
    uri, length, contexts = args[1].encode(), int(args[2]), args[3:]
    lib.nbdaio_create.restype = C.c_void_p
    lib.nbdaio_get_error.restype = C.c_char_p
    lib.nbdaio_aio_block_status_64.restype = C.c_int64
    lib.nbdaio_aio_block_status_64.argtypes = [
        C.c_void_p, C.c_uint64, C.c_uint64, ExtentCb, DoneCb, C.c_uint32]
    for name in ("nbdaio_set_meta_context", "nbdaio_add_meta_context",
                 "nbdaio_connect_uri", "nbdaio_can_meta_context"):
        getattr(lib, name).argtypes = [C.c_void_p, C.c_char_p]
    for name in ("nbdaio_get_nr_meta_contexts", "nbdaio_get_extended_headers",
                 "nbdaio_close"):
        getattr(lib, name).argtypes = [C.c_void_p]
    lib.nbdaio_poll.argtypes = [C.c_void_p, C.c_int]

    def die(what):
        sys.exit("bs-contexts: %s: %s" % (what, lib.nbdaio_get_error().decode()))

    h = lib.nbdaio_create()
    if lib.nbdaio_set_meta_context(h, contexts[0].encode()) == -1:
        die("set_meta_context")
    for ctx in contexts[1:]:
        if lib.nbdaio_add_meta_context(h, ctx.encode()) == -1:
            die("add_meta_context " + ctx)
    if lib.nbdaio_connect_uri(h, uri) == -1:
        die("connect")
    xhdr = lib.nbdaio_get_extended_headers(h)
    print("extended_headers %d" % xhdr)
    if ext and xhdr != 1:
        sys.exit("bs-contexts: extended headers were not negotiated")
    if lib.nbdaio_get_nr_meta_contexts(h) != len(contexts):
        sys.exit("bs-contexts: %d contexts selected, %d asked" %
                 (lib.nbdaio_get_nr_meta_contexts(h), len(contexts)))
    for ctx in contexts:
        if lib.nbdaio_can_meta_context(h, ctx.encode()) != 1:
            sys.exit("bs-contexts: %s not selected" % ctx)

    seen, result = {}, {}

    @EXTENT_FN
    def on_extents(_ud, ctx, offset, entries, n, _err):
        name = ctx.decode()
        if name in seen:
            print("bs-contexts: a second chunk for %s" % name, file=sys.stderr)
            return -1
        off, out = offset, []
        for i in range(n):
            out.append("%d:%d:%d" % (off, entries[i].length, entries[i].flags))
            off += entries[i].length
        seen[name] = out
        return 0

    @DONE_FN
    def on_done(_ud, err):
        result["error"] = err[0]
        return 1

    no_free = FREE_FN()
    cookie = lib.nbdaio_aio_block_status_64(
        h, length, 0, ExtentCb(on_extents, None, no_free),
        DoneCb(on_done, None, no_free), 0)
    if cookie < 1:
        die("aio_block_status_64")
    while "error" not in result:
        if lib.nbdaio_poll(h, 10000) == -1:
            die("poll")
    if result["error"]:
        sys.exit("bs-contexts: block status failed: errno %d" % result["error"])
    for ctx in contexts:
        if ctx not in seen:
            sys.exit("bs-contexts: no chunk for %s" % ctx)
        print(ctx, " ".join(seen[ctx]))
    lib.nbdaio_close(h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
