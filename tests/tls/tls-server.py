#!/usr/bin/env python3
"""tests/tls/tls-server.py - a scripted NBD server over TLS (x509) for the
two TLS behaviours no real server shows on demand.

usage: tls-server.py MODE SOCKET PKI-DIR RESULT-FILE

It serves one client on the unix socket SOCKET: fixed newstyle, STARTTLS
with PKI-DIR's server-cert.pem / server-key.pem (TLS 1.3 through OpenSSL,
which sends session tickets after the handshake), then NBD_OPT_GO of a
1 MiB export with simple replies (every other option is refused with
NBD_REP_ERR_UNSUP).  TLS runs over memory buffers, so what reaches the
socket and when is the script's choice: the session tickets leave in one
write with the first reply after the handshake, as they do whenever a
client is slower than the server.  In transmission:

  bad-record    the first request is answered with a TLS application-data
                record that does not decrypt, written past the TLS layer
                onto the socket: the client's error must carry gnutls' text.
  close-notify  a 1 MiB disk in memory (reads, writes, flushes); after
                NBD_CMD_DISC the server reads on and writes to RESULT-FILE
                "close_notify" if the client ended the TLS session cleanly,
                "eof-without-close_notify" if it only closed the socket.
"""
import importlib.util
import os
import socket
import ssl
import struct
import sys

# the protocol's numbers, written once for the test servers: in
# tests/hostile/hostile-server.py
_spec = importlib.util.spec_from_file_location(
    "hostile_server", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "..", "hostile", "hostile-server.py"))
P = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(P)
SIZE = 1 << 20


class MemoryTLS:
    """A TLS server session on a socket through memory BIOs: records reach
    the socket only when sendall sends (or the handshake needs them)."""

    def __init__(self, sock, pki):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3    # session tickets
        ctx.load_cert_chain(os.path.join(pki, "server-cert.pem"),
                            os.path.join(pki, "server-key.pem"))
        self.sock, self.inc, self.out = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        while True:
            try:
                self.obj.do_handshake()
                break          # the session tickets stay in self.out
            except ssl.SSLWantReadError:
                self.flush()
                self.pull()

    def fileno(self):
        return self.sock.fileno()

    def flush(self):
        self.sock.sendall(self.out.read())

    def pull(self):
        data = self.sock.recv(65536)
        if not data:
            raise ssl.SSLEOFError("EOF without close_notify")
        self.inc.write(data)

    def recv(self, n):
        """Up to n bytes; b"" once the client sent close_notify."""
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLWantReadError:
                self.pull()

    def sendall(self, data):
        self.obj.write(data)
        self.flush()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            raise EOFError("client closed the connection")
        buf += part
    return buf


def opt_reply(s, opt, rtype, data=b""):
    s.sendall(struct.pack(">QIII", P.OPT_REPLY_MAGIC, opt, rtype, len(data))
              + data)


def negotiate(conn, pki):
    """Fixed newstyle up to GO; returns the TLS socket."""
    conn.sendall(struct.pack(">QQH", P.NBDMAGIC, P.IHAVEOPT,
                             P.HS_FIXED_NEWSTYLE | P.HS_NO_ZEROES))
    recv_exact(conn, 4)                              # client flags
    s = conn
    while True:
        magic, opt, length = struct.unpack(">QII", recv_exact(s, 16))
        if magic != P.IHAVEOPT:
            raise ValueError("bad option magic %#x" % magic)
        recv_exact(s, length)
        if opt == P.OPT_STARTTLS and s is conn:
            opt_reply(s, opt, P.REP_ACK)
            s = MemoryTLS(conn, pki)
        elif opt == P.OPT_GO and s is not conn:
            info = struct.pack(">HQH", 0, SIZE,
                               P.TF_HAS_FLAGS | P.TF_SEND_FLUSH)
            opt_reply(s, opt, P.REP_INFO, info)
            opt_reply(s, opt, P.REP_ACK)
            return s
        else:
            opt_reply(s, opt, P.REP_ERR_UNSUP)


def serve(s, mode, result):
    disk = bytearray(SIZE)
    while True:
        magic, _flags, cmd, cookie, off, length = struct.unpack(
            ">IHHQQI", recv_exact(s, 28))
        if magic != P.REQUEST_MAGIC:
            raise ValueError("bad request magic %#x" % magic)
        if mode == "bad-record":
            # a well-formed record header, 32 bytes that decrypt to nothing
            os.write(s.fileno(), b"\x17\x03\x03\x00\x20" + os.urandom(32))
            return
        if cmd == P.CMD_DISC:
            break
        data = b""
        if cmd == P.CMD_WRITE:
            disk[off:off + length] = recv_exact(s, length)
        elif cmd == P.CMD_READ:
            data = bytes(disk[off:off + length])
        s.sendall(struct.pack(">IIQ", P.SIMPLE_MAGIC, 0, cookie) + data)
    try:
        verdict = "close_notify" if s.recv(1) == b"" else "data after DISC"
    except ssl.SSLEOFError:
        verdict = "eof-without-close_notify"
    with open(result, "w") as f:
        f.write(verdict + "\n")


def main():
    mode, path, pki, result = sys.argv[1:5]
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    conn, _ = lsock.accept()
    lsock.close()
    try:
        serve(negotiate(conn, pki), mode, result)
    except (EOFError, ssl.SSLError, OSError) as e:
        with open(result, "w") as f:
            f.write("server: %s\n" % e)


if __name__ == "__main__":
    main()
