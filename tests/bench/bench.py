#!/usr/bin/env python3
"""tests/bench/bench.py - the work behind bench.sh (run that instead: it
installs the tools and builds the plugin).

Compares nbdaio.so with the NBD clients a user would pick, on a private
nbdkit memory export (the same server process for every client of a
transport): fio 3.33's built-in `nbd` engine (libnbd 1.14, this machine),
and from the Debian trixie root of tests/interop/make-root.sh (skipped, and
said so, where it is missing) fio 3.39's `nbd` engine with libnbd 1.22 and
qemu 10's NBD client, driven by `qemu-img bench` and, where that cannot go,
by `qemu-img convert`.  Transports: unix socket, TCP loopback, TLS with PSK
and with x509 certificates (keys made by tests/tls/make-creds.sh); the fio
engines cannot reach the TLS servers and qemu-img bench cannot be given TLS
keys (each shown as n/a with the reason).  Prints, per case, the medians of every
client and nbdaio's ratio against each (nbdaio / anchor) for: IOPS, MiB/s,
p50 / p99 completion latency, p50 total latency, client CPU per IO, server
CPU per IO, context switches per IO and system calls per IO (strace and
perf stat, unix socket only); then the issue-5 and issue-15 targets as
PASS / FAIL, each with the measurement that bounds it where the server or
the kernel does.  Writes CSVs, the raw output and a gnuplot PNG under --out.

How each number is obtained:
  IOPS, MiB/s      fio JSON, "mixed" block (--unified_rw_reporting=both), so
                   mixed read/write jobs count both directions.
  p50, p99 clat    fio's completion latency (clat_ns) percentiles of "mixed".
                   fio stamps a request's issue time after ->queue returns
                   for the built-in engine (libnbd has sent it by then);
                   nbdaio.so sets FIO_ASYNCIO_SETS_ISSUE_TIME and stamps in
                   ->commit after its sendmsg: the same interval.
  p50 lat          fio's total latency (lat_ns = slat + clat, with
                   --lat_percentiles=1): the same interval for both engines.
  client CPU/IO    fio measures the job's own CPU time with getrusage (ms
                   resolution) and prints it as usr_cpu/sys_cpu percent of
                   job_runtime; so CPU us = (usr_cpu + sys_cpu) / 100 *
                   job_runtime_ms * 1000, divided by the IOs (with
                   numjobs>1 and group_reporting fio sums both times, so the
                   formula stays exact).
  server CPU/IO    nbdkit's utime + stime (/proc/PID/stat, all threads,
                   clock-tick resolution) read before and after each fio
                   run, divided by the IOs of that run (the window includes
                   the connect; no ramp time is used).
  ctx/IO           fio's "ctx" (voluntary + involuntary context switches of
                   the job) divided by the IOs.
  syscalls/IO      `strace -f -c` of the whole fio process tree on two
  strace           fixed-count runs (number_ios=N and 2N) of the same job;
                   per IO = (calls(2N) - calls(N)) / (IOs(2N) - IOs(N)), so
                   start-up and shutdown cancel out; all system calls are
                   counted, and listed by name (with failed calls, mostly
                   EAGAIN) in syscalls.csv.  ptrace slows fio down a lot,
                   which changes how many replies one read finds, so:
  syscalls/IO      the same N / 2N runs counted by `perf stat` on the
  perf             raw_syscalls:sys_enter tracepoint (all calls) and the
                   per-name syscalls:sys_enter_* tracepoints of the I/O
                   calls (syscalls-perf.csv); skipped if perf cannot.
  socket floor     tests/bench/socket-floor.c (built here with cc -O2):
                   the bytes of 4k reads (28-byte requests, 4124-byte
                   structured replies) through a unix socket between two
                   processes pinned like fio and nbdkit, with the cheapest
                   batched syscall pattern and no NBD logic; its client CPU
                   per IO (getrusage) is a floor no NBD client can beat
                   here, printed next to the client CPU target.  Run twice:
                   with the peer as fast as it goes, and paced (busy-spin
                   per reply) to nbdaio's measured 4k QD32 randread IOPS:
                   a client faster than its server sleeps and wakes for
                   replies, and that cost is part of the floor too.
  qemu-img bench   one process per run inside the trixie root (chroot):
                   IOPS = its count / the run time it prints; client CPU =
                   the process's rusage minus that of a 1-IO run (start-up
                   and connect), per IO.  It has no latency percentiles,
                   issues offsets sequentially (the memory plugin does not
                   care), does one direction and one connection, and its
                   NBD client keeps at most 16 requests in flight.
  qemu-img convert (qemu10cv) the same client given TLS keys with --object
                   tls-creds-*, which qemu-img bench does not take: it
                   copies a window of COUNT blocks to null-co through a
                   raw window over blkdebug with max-transfer = the block
                   size, so each NBD read is one block, with the case's
                   depth as coroutines (-m, at most 16; -W); IOPS = COUNT /
                   wall time, both time and CPU less those of a 1-block
                   run.  Read cases only; on the plain transports it also
                   runs 4k QD32, beside qemu-img bench, as its calibration.
  server busy      server CPU/IO x IOPS: the fraction of nbdkit's one
                   (pinned) CPU the run kept busy; near 100% the server
                   bounds the IOPS whatever the client does (the connect
                   and TLS handshake are in the CPU time, so short runs
                   can show a little over 100%).
  1M floor         socket-floor.c with 1 MiB replies at QD8 on a unix socket
                   pair, default and 2 MiB socket buffers: what the kernel
                   moves with no NBD logic (bound of the 1M target).
  heap             valgrind memcheck's "total heap usage" of a 10k- and a
                   100k-IO run (fio --thread), with --xtree-memory to
                   attribute allocations to functions: fio's helper thread
                   mallocs one ETA buffer every 250 ms of wall time
                   (get_jobs_eta, whatever the output format), which is
                   subtracted and shown.
"""
import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# --------------------------------------------------------------------------
# the cases

CASES = [
    # id, description, fio options (fio engines), conns for nbdaio,
    # qemu-img bench's (block size, depth, write) where it can run the case
    dict(id="randread-4k-qd1", desc="4k randread QD1",
         fio=["--rw=randread", "--bs=4k", "--iodepth=1"], qemu=(4096, 1, 0)),
    dict(id="randread-4k-qd32", desc="4k randread QD32",
         fio=["--rw=randread", "--bs=4k", "--iodepth=32"],
         qemu=(4096, 32, 0)),
    dict(id="randread-4k-qd128", desc="4k randread QD128",
         fio=["--rw=randread", "--bs=4k", "--iodepth=128"],
         qemu=(4096, 128, 0)),
    dict(id="randwrite-4k-qd32", desc="4k randwrite QD32",
         fio=["--rw=randwrite", "--bs=4k", "--iodepth=32"],
         qemu=(4096, 32, 1)),
    dict(id="randrw-4k-qd32-b16",
         desc="4k randrw QD32 iodepth_batch_submit=16 "
              "iodepth_batch_complete_min=16",
         fio=["--rw=randrw", "--bs=4k", "--iodepth=32",
              "--iodepth_batch_submit=16", "--iodepth_batch_complete_min=16"]),
    dict(id="read-1m-qd8", desc="1M sequential read QD8",
         fio=["--rw=read", "--bs=1m", "--iodepth=8"], qemu=(1 << 20, 8, 0)),
    dict(id="randread-4k-qd32-c2",
         desc="4k randread QD32 total over 2 connections "
              "(nbdaio: conns=2 iodepth=32; builtin: numjobs=2 iodepth=16)",
         fio=["--rw=randread", "--bs=4k"], conns=2, qd=32),
    dict(id="randread-4k-qd32-c4",
         desc="4k randread QD32 total over 4 connections "
              "(nbdaio: conns=4 iodepth=32; builtin: numjobs=4 iodepth=8)",
         fio=["--rw=randread", "--bs=4k"], conns=4, qd=32),
]
CASE_IDS = [c["id"] for c in CASES]

# transports; the cases each runs (None: all).  A case's id is its CASES id
# on the unix socket (as in earlier results) and "TRANSPORT:ID" elsewhere.
FEW = ["randread-4k-qd1", "randread-4k-qd32", "read-1m-qd8"]
TRANSPORTS = [
    dict(id="unix", desc="unix socket", cases=None),
    dict(id="tcp", desc="TCP loopback (127.0.0.1)",
         cases=FEW[:2] + ["randread-4k-qd128", "randwrite-4k-qd32", FEW[2]]),
    dict(id="tls-psk", desc="TLS (PSK) over TCP loopback", cases=FEW),
    dict(id="tls-x509", desc="TLS (x509 certificates) over TCP loopback", cases=FEW),
]
TRANSPORT_IDS = [t["id"] for t in TRANSPORTS]

# metric key, label, unit, lower is better
METRICS = [
    ("iops", "IOPS", "", False),
    ("mibs", "MiB/s", "", False),
    ("p50_us", "p50 clat", "us", True),
    ("p99_us", "p99 clat", "us", True),
    ("lat50_us", "p50 total lat", "us", True),
    ("cpu_cli_us", "client CPU/IO", "us", True),
    ("cpu_srv_us", "server CPU/IO", "us", True),
    ("ctx_io", "ctx switches/IO", "", True),
    ("sys_io", "syscalls/IO strace", "", True),
    ("sys_io_perf", "syscalls/IO perf", "", True),
    ("srv_busy", "server busy", "%", None),
]

BUILTIN = "builtin"           # fio 3.33 + libnbd 1.14 (this machine)
OURS = "nbdaio"
LIBNBD = "libnbd122"          # fio 3.39 + libnbd 1.22 (trixie root)
QEMU = "qemu10"               # qemu-img bench, qemu 10 (trixie root)
QEMUCV = "qemu10cv"           # qemu-img convert, qemu 10 (trixie root)
ANCHORS = [BUILTIN, LIBNBD, QEMU, QEMUCV]
ANCHOR_DESC = {BUILTIN: "fio 3.33 nbd engine + libnbd 1.14",
               LIBNBD: "fio 3.39 nbd engine + libnbd 1.22",
               QEMU: "qemu-img bench, qemu 10's NBD client",
               QEMUCV: "qemu-img convert to null-co, qemu 10's NBD client, "
                       "reads of the case's size (blkdebug max-transfer), "
                       "QD = coroutines (at most 16)"}
NA_TLS = ("n/a: libnbd takes TLS keys only as URI parameters (tls-psk-file, "
          "tls-certificates), which it refuses unless the program calls "
          "nbd_set_uri_allow_local_file; fio's nbd engine does not")
NA_QEMU = "n/a: qemu-img bench does one direction over one connection"
NA_QEMU_TLS = ("n/a: qemu-img bench takes no --object, so it cannot be given "
               "TLS keys (qemu 10); qemu10cv drives the same client with "
               "--object tls-creds-*")
NA_QEMUCV = "n/a: qemu-img convert only reads, over one connection"
# qemu-img convert runs these on the plain transports too, to calibrate it
# against qemu-img bench
QEMUCV_PLAIN = ["randread-4k-qd32"]
PSK_USER = "alice"            # tests/tls/make-creds.sh's user


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# small helpers

def log(msg=""):
    print(msg, flush=True)
    if REPORT is not None:
        REPORT.write(msg + "\n")
        REPORT.flush()


REPORT = None
FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    log("ERROR: " + msg)


def cmd_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=20).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def dpkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                              capture_output=True, text=True,
                              timeout=20).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def parse_fio_json(text):
    """fio's JSON, after whatever the engines printed before it (the
    built-in engine says "fio: connected to NBD server" on stdout)."""
    m = re.search(r"^\{", text, re.M)
    if not m:
        raise BenchError("no JSON object in fio's output")
    try:
        return json.loads(text[m.start():])
    except json.JSONDecodeError as e:
        raise BenchError(f"fio JSON does not parse: {e}")


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMGT]?)", s.strip().upper())
    if not m:
        raise BenchError(f"size {s}: want e.g. 1G")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2) or " "))


def sysctl(name):
    try:
        with open(f"/proc/sys/{name}") as f:
            return " ".join(f.read().split())
    except OSError:
        return "?"


def proc_cpu_seconds(pid):
    """utime + stime of a whole process (all threads, dead ones too)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def median(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if len(xs) < 2:
        return float("nan")
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m * 100 if m else float("nan")


def ratio(a, b):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return float("nan")
    return a / b


def fmt(x, unit=""):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    ax = abs(x)
    if unit == "x":
        return f"{x:.2f}x"
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x / 1e3:.1f}k"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1 or x == 0:
        return f"{x:.2f}"
    return f"{x:.3f}"


# --------------------------------------------------------------------------
# the server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Server:
    """nbdkit memory on one transport: unix socket (self.sock) or TCP
    loopback (self.port), TLS required for tls-psk / tls-x509 (keys from
    make-creds.sh in creds)."""

    def __init__(self, args, tmpdir, tp, creds):
        self.tp = tp
        self.sock = self.port = None
        argv = ["nbdkit", "--exit-with-parent", "-f"]
        if tp == "unix":
            self.sock = os.path.join(tmpdir, "nbd.sock")
            argv += ["-U", self.sock]
        else:
            self.port = free_port()
            argv += ["-i", "127.0.0.1", "-p", str(self.port)]
        if tp == "tls-psk":
            argv += ["--tls=require", f"--tls-psk={creds}/psk/keys.psk"]
        elif tp == "tls-x509":
            argv += ["--tls=require", f"--tls-certificates={creds}/pki"]
        argv += ["memory", args.export_size]
        if not args.unpinned:
            argv = ["taskset", "-c", str(args.server_cpu)] + argv
        self.argv = argv
        self.log = open(os.path.join(tmpdir, f"nbdkit-{tp}.log"), "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        for _ in range(200):
            if (os.path.exists(self.sock) if self.sock else
                    tcp_open(self.port)):
                break
            if self.p.poll() is not None:
                raise BenchError(f"nbdkit exited at start ({self.p.returncode})")
            time.sleep(0.05)
        else:
            raise BenchError("nbdkit did not start listening within 10 s")
        self.pid = self.p.pid          # taskset execs nbdkit: same pid
        self.affinity = sorted(os.sched_getaffinity(self.pid))

    def cpu(self):
        if self.p.poll() is not None:
            raise BenchError(f"nbdkit died (exit {self.p.returncode})")
        return proc_cpu_seconds(self.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


# --------------------------------------------------------------------------
# fio command lines

class Bench:
    def __init__(self, args):
        self.args = args
        self.plugin = os.path.abspath(args.plugin)
        self.out = args.out
        self.rawdir = os.path.join(self.out, "raw")
        shutil.rmtree(self.rawdir, ignore_errors=True)
        os.makedirs(self.rawdir)
        # the trixie root and bench.sh's runner for it (make-root.sh and
        # test-trixie.sh's IN_ROOT), or why there is none
        self.root = os.path.abspath(args.trixie_root) if args.in_root else None
        self.in_root = shlex.split(args.in_root) if args.in_root else None
        self.trixie_skip = args.trixie_skip or \
            "no trixie root (run through bench.sh, which finds or builds it)"
        self.engines = [OURS] + ANCHORS + [v[0] for v in args.variants]
        self.variant_opts = {v[0]: v[1] for v in args.variants}
        self.runs = []           # dicts: case, engine, rep, metrics...
        self.sysc = {}           # (case, engine) -> {name: per IO}
        self.sysc_err = {}       # (case, engine) -> {name: failed calls per IO}
        self.psysc = {}          # the same counted by perf stat tracepoints
        self.heap = {}           # engine -> dict
        self.floor = {}          # transport -> socket-floor client CPU us/IO
        self.floor_paced = {}    # the same at nbdaio's QD32 randread pace
        self.floor1m = {}        # (transport, buffers) -> (MiB/s, CPU us/IO)
        self.qemu_rate = {}      # case id -> IOPS of the last qemu run
        self.qemu_start = {}     # transport -> CPU s of a 1-IO qemu run
        self.creds = None
        self.server = None
        self.seq = 0

    # which clients run a case, and why the others do not
    def na_reason(self, case, engine):
        tls = case["transport"].startswith("tls")
        if engine in (LIBNBD, QEMU, QEMUCV) and not self.in_root:
            return "skipped: " + self.trixie_skip
        if engine in (BUILTIN, LIBNBD) and tls:
            return NA_TLS
        if engine == QEMU and not case.get("qemu"):
            return NA_QEMU
        if engine == QEMU and tls:
            return NA_QEMU_TLS
        if engine == QEMUCV and (not case.get("qemu") or case["qemu"][2]):
            return NA_QEMUCV
        if engine == QEMUCV and not tls and case["base"] not in QEMUCV_PLAIN:
            return "quiet: qemu-img bench is the qemu anchor here"
        return None

    def engines_for(self, case):
        vc = self.args.variant_cases
        return [e for e in self.engines
                if not self.na_reason(case, e) and
                (e in ANCHORS or e == OURS or not vc or case["id"] in vc or
                 case["base"] in vc)]

    def inner(self, path):
        """A path under the trixie root as its programs see it."""
        if self.root and path.startswith(self.root + "/"):
            return path[len(self.root):]
        return path

    def uri(self, engine):
        srv = self.server
        if srv.sock:
            sock = self.inner(srv.sock) if engine == LIBNBD else srv.sock
            return f"nbd+unix:///?socket={sock}"
        tls = srv.tp.startswith("tls")
        user = PSK_USER + "@" if srv.tp == "tls-psk" else ""
        return f"nbd{'s' if tls else ''}://{user}127.0.0.1:{srv.port}/"

    def tls_opts(self):
        if self.server.tp == "tls-psk":
            return [f"--tls_psk_file={self.creds}/psk/keys.psk"]
        if self.server.tp == "tls-x509":
            return [f"--tls_certificates={self.creds}/client"]
        return []

    def engine_argv(self, engine, case):
        conns = case.get("conns", 1)
        qd = case.get("qd")
        if engine in (BUILTIN, LIBNBD):
            argv = ["--ioengine=nbd", f"--uri={self.uri(engine)}"]
            if conns > 1:        # no conns option: one handle per job
                argv += [f"--numjobs={conns}", f"--iodepth={qd // conns}",
                         "--group_reporting"]
            elif qd:
                argv += [f"--iodepth={qd}"]
            return argv
        argv = [f"--ioengine=external:{self.plugin}",
                f"--uri={self.uri(engine)}"] + self.tls_opts()
        if qd:
            argv += [f"--iodepth={qd}"]
        if conns > 1:
            argv += [f"--conns={conns}"]
        argv += self.args.nbdaio_opts
        if engine != OURS:
            argv += self.variant_opts[engine]
        return argv

    def fio_argv(self, engine, case, extra):
        argv = (self.in_root if engine == LIBNBD else []) + \
            ["fio", f"--name={case['base']}"] + self.engine_argv(engine, case)
        argv += case["fio"] + ["--unified_rw_reporting=both",
                               "--lat_percentiles=1",
                               "--output-format=json"] + extra
        return argv

    def pin(self, argv):
        if self.args.unpinned:
            return argv
        return ["taskset", "-c", str(self.args.client_cpu)] + argv

    def raw_base(self, tag, argv):
        self.seq += 1
        base = os.path.join(self.rawdir, f"{self.seq:03d}-{tag}")
        with open(base + ".cmd", "w") as f:
            f.write(" ".join(argv) + "\n")
        return base

    def run_fio(self, argv, tag, timeout):
        """Run fio; returns (parsed JSON, stdout text).  Saves the output."""
        base = self.raw_base(tag, argv)
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{tag}: fio did not finish within {timeout} s")
        with open(base + ".json", "w") as f:
            f.write(p.stdout)
        if p.stderr:
            with open(base + ".err", "w") as f:
                f.write(p.stderr)
        if p.returncode != 0:
            raise BenchError(f"{tag}: fio exited {p.returncode}: "
                             f"{p.stderr.strip()[-400:]}")
        j = parse_fio_json(p.stdout)
        if not j.get("jobs"):
            raise BenchError(f"{tag}: fio JSON has no jobs")
        job = j["jobs"][0]
        if job.get("error"):
            raise BenchError(f"{tag}: fio job error {job['error']}")
        return j, p.stdout

    # ------------------------------------------------------------------
    # qemu-img bench (qemu 10's NBD client) in the trixie root
    def qemu_nbd_opts(self):
        """(--object arguments, the nbd driver's options) for this server."""
        srv = self.server
        if srv.sock:
            opts = f"driver=nbd,server.type=unix,server.path={self.inner(srv.sock)}"
        else:
            opts = ("driver=nbd,server.type=inet,server.host=127.0.0.1,"
                    f"server.port={srv.port}")
        obj = []
        if srv.tp == "tls-psk":
            obj = ["--object", "tls-creds-psk,id=tls0,endpoint=client,"
                   f"dir={self.inner(self.creds)}/psk,username={PSK_USER}"]
        elif srv.tp == "tls-x509":
            obj = ["--object", "tls-creds-x509,id=tls0,endpoint=client,"
                   f"dir={self.inner(self.creds)}/client"]
        if obj:
            opts += ",tls-creds=tls0"
        return obj, opts

    def qemu_argv(self, case, count):
        bs, depth, write = case["qemu"]
        obj, opts = self.qemu_nbd_opts()
        return self.in_root + ["qemu-img", "bench"] + obj + \
            ["--image-opts", "-c", str(count), "-d", str(depth), "-s",
             str(bs)] + (["-w"] if write else []) + [opts]

    def qemucv_argv(self, case, count):
        """qemu-img convert of COUNT blocks of the case's size to null-co:
        a raw window of that size over blkdebug (max-transfer = the block
        size, so each NBD read is one block) over the NBD client, with as
        many coroutines as the case's depth (at most 16)."""
        bs, depth, _ = case["qemu"]
        obj, nbd = self.qemu_nbd_opts()
        size = count * bs
        src = (f"driver=raw,size={size},file.driver=blkdebug,"
               f"file.max-transfer={bs}," +
               ",".join("file.image." + o for o in nbd.split(",")))
        return self.in_root + ["qemu-img", "convert", "-n", "-W", "-m",
                               str(min(depth, 16))] + obj + \
            ["--image-opts", src, "--target-image-opts",
             f"driver=null-co,size={size}"]

    def run_qemu(self, case, count, tag, timeout=600, engine=QEMU):
        """One qemu-img run: (seconds, CPU s, ctx).  bench prints its run
        time; for convert it is the wall time of the process."""
        argv = self.pin(self.qemu_argv(case, count) if engine == QEMU else
                        self.qemucv_argv(case, count))
        base = self.raw_base(tag, argv)
        t0 = time.monotonic()
        with open(base + ".out", "w") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        end = time.time() + timeout
        while True:              # taskset, env and chroot exec: one pid
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.time() > end:
                p.kill()
                p.wait()
                raise BenchError(f"{tag}: qemu-img did not finish within "
                                 f"{timeout} s")
            time.sleep(0.002)
        wall = time.monotonic() - t0
        text = open(base + ".out").read()
        m = re.search(r"Run completed in ([\d.]+) seconds", text)
        if p.returncode != 0 or (engine == QEMU and not m):
            raise BenchError(f"{tag}: qemu-img exited {p.returncode}: "
                             f"{text.strip()[-400:]}")
        secs = float(m.group(1)) if engine == QEMU else wall
        return (max(secs, 1e-3), ru.ru_utime + ru.ru_stime,
                ru.ru_nvcsw + ru.ru_nivcsw)

    def qemu_startup(self, tp, engine):
        """CPU (and for convert wall time) of a 1-IO run: start-up and
        connect, taken out of each run."""
        case = dict(id=f"{tp}:start", qemu=(4096, 1, 0))
        secs, cpu, _ = self.run_qemu(case, 1, f"{tp}-{engine}-start",
                                     engine=engine)
        self.qemu_start[(tp, engine)] = (secs if engine == QEMUCV else 0, cpu)
        log(f"  {engine} start-up + connect: {cpu * 1e3:.1f} ms CPU"
            + (f", {secs * 1e3:.1f} ms" if engine == QEMUCV else "") +
            " (subtracted from each run)")

    def qemu_metrics(self, case, engine, tag):
        bs = case["qemu"][0]
        # convert reads a window of the export: at most all of it
        most = (2**62 if engine == QEMU else
                parse_size(self.args.export_size) // bs)
        count = self.qemu_rate.get((case["id"], engine))
        if self.args.smoke:
            count = 4000 if bs == 4096 else 200
        else:
            if count is None:    # calibrate: about 0.3 s
                n = min(20000 if bs == 4096 else 500, most)
                secs, _, _ = self.run_qemu(case, n, tag + "-cal",
                                           engine=engine)
                count = n / secs
            count = max(1000, int(count * self.args.runtime_s))
        count = min(count, most)
        secs, cpu, ctx = self.run_qemu(case, count, tag, engine=engine)
        s0, c0 = self.qemu_start.get((case["transport"], engine), (0, 0))
        secs, cpu = max(secs - s0, 1e-3), max(cpu - c0, 0)
        self.qemu_rate[(case["id"], engine)] = count / secs
        nan = float("nan")
        return dict(ios=count, iops=count / secs,
                    mibs=count * bs / secs / 2**20, p50_us=nan, p99_us=nan,
                    lat50_us=nan, cpu_cli_us=cpu * 1e6 / count,
                    ctx_io=ctx / count, runtime_ms=secs * 1000)

    # ------------------------------------------------------------------
    def prefill(self):
        # through the built-in engine, or nbdaio where it cannot reach
        engine = OURS if self.server.tp.startswith("tls") else BUILTIN
        case = dict(base="prefill", fio=["--rw=write", "--bs=1m",
                                         "--iodepth=8"])
        argv = self.pin(self.fio_argv(engine, case, []))
        t = time.time()
        j, _ = self.run_fio(argv, f"{self.server.tp}-prefill", 300)
        mib = j["jobs"][0]["mixed"]["io_bytes"] / 2**20
        log(f"prefill: wrote {mib:.0f} MiB through {engine} "
            f"in {time.time() - t:.1f} s")

    @staticmethod
    def metrics_from(job):
        mx = job["mixed"]
        ios = mx["total_ios"]
        if not ios:
            raise BenchError("fio reports 0 IOs")
        pct = mx["clat_ns"].get("percentile", {})
        try:
            p50 = pct["50.000000"] / 1000
            p99 = pct["99.000000"] / 1000
        except KeyError:
            raise BenchError("fio JSON lacks clat percentiles 50 / 99")
        lat50 = mx.get("lat_ns", {}).get("percentile", {}).get("50.000000")
        lat50 = lat50 / 1000 if lat50 is not None else float("nan")
        runtime_ms = job["job_runtime"]
        cpu_ms = (job["usr_cpu"] + job["sys_cpu"]) / 100 * runtime_ms
        return dict(ios=ios, iops=mx["iops"], mibs=mx["bw_bytes"] / 2**20,
                    p50_us=p50, p99_us=p99, lat50_us=lat50,
                    cpu_cli_us=cpu_ms * 1000 / ios, ctx_io=job["ctx"] / ios,
                    runtime_ms=runtime_ms)

    def timed_run(self, case, engine, rep):
        tag = f"{case['id'].replace(':', '-')}-{engine}-r{rep}"
        s0 = self.server.cpu()
        if engine in (QEMU, QEMUCV):
            m = self.qemu_metrics(case, engine, tag)
        else:
            extra = ["--time_based", f"--runtime={self.args.runtime}"]
            argv = self.pin(self.fio_argv(engine, case, extra))
            j, _ = self.run_fio(argv, tag, 120 + self.args.runtime_s * 2)
            m = self.metrics_from(j["jobs"][0])
        s1 = self.server.cpu()
        m["cpu_srv_us"] = (s1 - s0) * 1e6 / m["ios"]
        m["srv_busy"] = m["cpu_srv_us"] * m["iops"] / 1e4
        m.update(case=case["id"], engine=engine, rep=rep)
        self.runs.append(m)
        log(f"  {tag:40s} {fmt(m['iops']):>8s} IOPS  p50 {fmt(m['p50_us'])} us"
            f"  p99 {fmt(m['p99_us'])} us  cli {fmt(m['cpu_cli_us'])} us/IO"
            f"  srv {fmt(m['cpu_srv_us'])} us/IO")

    def run_cases(self, cases):
        for case in cases:
            engines = self.engines_for(case)
            log(f"case {case['id']}: {case['desc']}")
            for e in ANCHORS:
                r = self.na_reason(case, e)
                if r and not r.startswith("quiet"):
                    log(f"  {e}: {r}")
            for rep in range(self.args.reps):
                # alternate the order so drift hits all engines alike
                order = engines if rep % 2 == 0 else engines[::-1]
                for engine in order:
                    try:
                        self.timed_run(case, engine, rep)
                    except BenchError as e:
                        fail(str(e))

    # ------------------------------------------------------------------
    # strace: system calls per IO
    def strace_counts(self, case, engine, n, tag):
        fd, path = tempfile.mkstemp(prefix="strace-", dir=self.rawdir)
        os.close(fd)
        conns = case.get("conns", 1)
        per_job = n if engine == OURS or conns == 1 else n // conns
        fio = self.fio_argv(engine, case, [f"--number_ios={per_job}"])
        # strace itself is not pinned; taskset pins the fio it execs
        argv = ["strace", "-f", "-c", "-o", path] + self.pin(fio)
        j, _ = self.run_fio(argv, tag, 600)
        ios = j["jobs"][0]["mixed"]["total_ios"]
        calls = {}
        with open(path) as f:
            for line in f:
                parts = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(parts) in (5, 6) and re.fullmatch(r"[\d.]+", parts[0]) \
                        and parts[-1] != "total":
                    try:
                        calls[parts[-1]] = int(parts[3])
                        if len(parts) == 6:
                            calls[parts[-1] + "!err"] = int(parts[4])
                    except ValueError:
                        continue
        os.rename(path, os.path.join(self.rawdir, f"{tag}.strace"))
        if not calls:
            raise BenchError(f"{tag}: no strace -c table")
        return ios, calls

    # perf stat: the same count through the syscall tracepoints, which do
    # not slow the traced process down the way ptrace does (strace changes
    # the timing, and with it how many replies one read finds)
    PERF_SYSCALLS = ["read", "readv", "recvfrom", "recvmsg", "write", "writev",
                     "sendto", "sendmsg", "poll", "ppoll", "epoll_wait",
                     "epoll_pwait", "select", "pselect6", "futex",
                     "clock_nanosleep", "nanosleep", "io_uring_enter"]

    def perf_events(self):
        if not shutil.which("perf"):
            return None
        have = []
        for name in self.PERF_SYSCALLS:
            for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
                if os.path.isdir(f"{root}/events/syscalls/sys_enter_{name}"):
                    have.append(f"syscalls:sys_enter_{name}")
                    break
        if not have:
            return None
        probe = subprocess.run(["perf", "stat", "-x,", "-e",
                                "raw_syscalls:sys_enter", "--", "true"],
                               capture_output=True, text=True)
        if probe.returncode != 0 or "not supported" in probe.stderr:
            return None
        return ["raw_syscalls:sys_enter"] + have

    def perf_counts(self, case, engine, n, tag, events):
        out = os.path.join(self.rawdir, f"{tag}.perfstat")
        conns = case.get("conns", 1)
        per_job = n if engine == OURS or conns == 1 else n // conns
        fio = self.fio_argv(engine, case, [f"--number_ios={per_job}"])
        argv = ["perf", "stat", "-x,", "-o", out, "-e", ",".join(events),
                "--"] + self.pin(fio)
        j, _ = self.run_fio(argv, tag, 600)
        ios = j["jobs"][0]["mixed"]["total_ios"]
        calls = {}
        for line in open(out):
            parts = line.strip().split(",")
            if len(parts) > 2 and re.fullmatch(r"\d+", parts[0]):
                ev = parts[2]
                name = "total" if ev == "raw_syscalls:sys_enter" else \
                    ev.split("sys_enter_", 1)[-1]
                calls[name] = int(parts[0])
        if "total" not in calls:
            raise BenchError(f"{tag}: no perf stat counts in {out}")
        return ios, calls

    def count_cases(self):
        """Cases of the strace / perf stat steps: the unix socket's, except
        in smoke mode, where two prove the pipeline (one with numjobs)."""
        cases = [c for c in self.cases if c["transport"] == "unix"]
        if not self.args.smoke:
            return cases
        pick = [c for c in cases
                if c["id"] in ("randread-4k-qd32", "randread-4k-qd32-c2")]
        return pick or cases[:1]

    def count_engines(self, case):
        """The fio clients (qemu-img is not run under strace / perf)."""
        return [e for e in self.engines_for(case) if e not in (QEMU, QEMUCV)]

    def run_perf_syscalls(self):
        events = self.perf_events()
        if not events:
            log("  perf stat syscall tracepoints unavailable: skipped")
            return
        n1 = self.args.strace_ios
        for case in self.count_cases():
            n = n1 if "1m" not in case["id"] else min(max(n1 // 50, 50), 400)
            for engine in self.count_engines(case):
                try:
                    io1, c1 = self.perf_counts(case, engine, n, f"perfstat-"
                                               f"{case['id']}-{engine}-n1", events)
                    io2, c2 = self.perf_counts(case, engine, 2 * n, f"perfstat-"
                                               f"{case['id']}-{engine}-n2", events)
                except BenchError as e:
                    fail(str(e))
                    continue
                if io2 <= io1:
                    fail(f"perf stat {case['id']} {engine}: IO counts "
                         f"{io1} / {io2}")
                    continue
                per = {k: (c2.get(k, 0) - c1.get(k, 0)) / (io2 - io1)
                       for k in set(c1) | set(c2)}
                total = per.pop("total")
                per = {k: v for k, v in per.items() if abs(v) >= 0.0005}
                per["(other)"] = total - sum(per.values())
                self.psysc[(case["id"], engine)] = per
                top = sorted(per.items(), key=lambda kv: -kv[1])[:6]
                log(f"  perf   {case['id']:22s} {engine:9s} {total:6.2f} "
                    "syscalls/IO: " + ", ".join(f"{k} {v:.2f}" for k, v in top))

    def run_strace(self):
        n1 = self.args.strace_ios
        for case in self.count_cases():
            # a 1M sequential pass over 1 GiB ends after 1024 IOs
            n = n1 if "1m" not in case["id"] else min(max(n1 // 50, 50), 400)
            for engine in self.count_engines(case):
                try:
                    io1, c1 = self.strace_counts(case, engine, n,
                                                 f"strace-{case['id']}-{engine}-n1")
                    io2, c2 = self.strace_counts(case, engine, 2 * n,
                                                 f"strace-{case['id']}-{engine}-n2")
                except BenchError as e:
                    fail(str(e))
                    continue
                if io2 <= io1:
                    fail(f"strace {case['id']} {engine}: IO counts {io1} / {io2}")
                    continue
                allp = {k: (c2.get(k, 0) - c1.get(k, 0)) / (io2 - io1)
                        for k in set(c1) | set(c2)}
                per = {k: v for k, v in allp.items()
                       if abs(v) >= 0.0005 and not k.endswith("!err")}
                self.sysc[(case["id"], engine)] = per
                self.sysc_err[(case["id"], engine)] = {
                    k[:-4]: v for k, v in allp.items()
                    if k.endswith("!err") and abs(v) >= 0.0005}
                errs = self.sysc_err[(case["id"], engine)]
                top = sorted(per.items(), key=lambda kv: -kv[1])[:6]
                log(f"  strace {case['id']:22s} {engine:9s} "
                    f"{sum(per.values()):6.2f} syscalls/IO: " +
                    ", ".join(f"{k} {v:.2f}" +
                              (f" ({errs[k]:.2f} failed)" if errs.get(k, 0) >= 0.005
                               else "") for k, v in top))

    # ------------------------------------------------------------------
    # valgrind: heap allocations that grow with the IO count
    def heap_run(self, engine, n):
        case = dict(id="heap", base="heap", fio=["--rw=randread", "--bs=4k"],
                    qd=32)
        logf = os.path.join(self.rawdir, f"heap-{engine}-{n}.vg")
        xt = os.path.join(self.rawdir, f"heap-{engine}-{n}.xtree")
        fio = self.fio_argv(engine, case, [f"--number_ios={n}", "--thread"])
        argv = ["valgrind", "--tool=memcheck", "--leak-check=no",
                "--xtree-memory=full", f"--xtree-memory-file={xt}",
                f"--log-file={logf}"] + fio
        j, _ = self.run_fio(self.pin(argv), f"heap-{engine}-{n}", 1800)
        ios = j["jobs"][0]["mixed"]["total_ios"]
        text = open(logf).read()
        m = re.findall(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, "
                       r"([\d,]+) bytes allocated", text)
        if not m:
            raise BenchError(f"no valgrind heap summary in {logf}")
        allocs, frees, nbytes = (int(x.replace(",", "")) for x in m[-1])
        # allocations per function, inclusive (callers include callees)
        p = subprocess.run(["callgrind_annotate", "--threshold=100",
                            "--inclusive=yes",
                            "--show=totBk", "--sort=totBk", xt],
                           capture_output=True, text=True)
        byfn = {}
        for line in p.stdout.splitlines():
            mm = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
            if mm and ":" in mm.group(2) and "PROGRAM TOTALS" not in line:
                fn = mm.group(2).split(":", 1)[1]
                byfn[fn] = byfn.get(fn, 0) + int(mm.group(1).replace(",", ""))
        if not byfn:
            raise BenchError(f"callgrind_annotate could not read {xt}")
        return dict(ios=ios, allocs=allocs, frees=frees, bytes=nbytes,
                    byfn=byfn)

    def run_heap(self):
        small, large = self.args.heap_ios
        engines = [OURS] + ([BUILTIN] if self.args.heap_builtin else [])
        log(f"heap check: valgrind memcheck (xtree), 4k randread QD32, fio "
            f"--thread, number_ios={small} and {large}")
        for engine in engines:
            try:
                a = self.heap_run(engine, small)
                b = self.heap_run(engine, large)
            except BenchError as e:
                fail(f"heap check {engine}: {e}")
                continue
            d = b["allocs"] - a["allocs"]
            # fio's helper thread mallocs (and frees) one ETA buffer every
            # 250 ms whatever the output format (get_jobs_eta): that grows
            # with the wall time under valgrind, not with the IOs.
            eta = b["byfn"].get("get_jobs_eta", 0) - \
                a["byfn"].get("get_jobs_eta", 0)
            grew = sorted(((fn, b["byfn"][fn] - a["byfn"].get(fn, 0))
                           for fn in b["byfn"]), key=lambda kv: -kv[1])
            grew = [(fn, k) for fn, k in grew if k >= 5][:8]
            self.heap[engine] = dict(small=a, large=b, diff=d, eta=eta,
                                     steady=d - eta, grew=grew)
            log(f"  {engine:9s} heap summary: {a['allocs']} allocs at "
                f"{a['ios']} IOs, {b['allocs']} at {b['ios']} IOs: "
                f"difference {d}; fio's periodic ETA buffer (get_jobs_eta) "
                f"{eta}; without it {d - eta} "
                f"({(d - eta) / max(b['ios'] - a['ios'], 1):.4f} per extra IO)")
            if grew:
                log("           grew (inclusive allocs by function): " +
                    ", ".join(f"{fn} +{k}" for fn, k in grew))

    # ------------------------------------------------------------------
    # perf: where the client CPU goes (optional)
    def run_perf(self):
        if not shutil.which("perf"):
            log("perf: not installed (apt-get install linux-perf); skipped")
            return
        case = dict(next(c for c in CASES if c["id"] == "randread-4k-qd32"),
                    base="randread-4k-qd32")
        data = os.path.join(self.out, "perf.data")
        fio = self.fio_argv(OURS, case, ["--time_based",
                                         f"--runtime={self.args.runtime}"])
        argv = ["perf", "record", "-q", "-g", "-o", data, "--"] + self.pin(fio)
        try:
            self.run_fio(argv, "perf-randread-4k-qd32-nbdaio", 300)
        except BenchError as e:
            fail(f"perf: {e}")
            return
        rep = os.path.join(self.out, "perf-report.txt")
        for name, extra in (
                ("perf-report.txt", ["--no-children", "--sort", "dso,symbol",
                                     "--fields", "overhead,dso,symbol"]),
                ("perf-report-children.txt",
                 ["--children", "--sort", "dso,symbol",
                  "--fields", "children,self,dso,symbol"]),
                ("perf-report-dso.txt", ["--no-children", "--sort", "dso",
                                         "--fields", "overhead,dso"])):
            with open(os.path.join(self.out, name), "w") as f:
                subprocess.run(["perf", "report", "-i", data, "--stdio",
                                "-g", "none", "--percent-limit", "0.3"] + extra,
                               stdout=f, stderr=subprocess.DEVNULL)
        log(f"perf: {rep} (also perf-report-children.txt, perf-report-dso.txt)")

    # ------------------------------------------------------------------
    # results
    def medians(self):
        med = {}
        for case in self.cases:
            for engine in self.engines_for(case):
                rs = [r for r in self.runs
                      if r["case"] == case["id"] and r["engine"] == engine]
                for key, *_ in METRICS:
                    if key in ("sys_io", "sys_io_perf"):
                        per = (self.sysc if key == "sys_io" else
                               self.psysc).get((case["id"], engine))
                        v = sum(per.values()) if per else float("nan")
                        med[(case["id"], engine, key)] = (v, float("nan"))
                    else:
                        xs = [r[key] for r in rs]
                        med[(case["id"], engine, key)] = (median(xs), spread(xs))
        return med

    @staticmethod
    def get(med, case, engine, key):
        return med.get((case, engine, key), (float("nan"), float("nan")))

    def print_tables(self, med):
        for case in self.cases:
            c = case["id"]
            engines = self.engines_for(case)
            anchors = [e for e in ANCHORS if e in engines]
            variants = [e for e in engines if e != OURS and e not in ANCHORS]
            ref = anchors[0] if anchors else None
            log()
            log(f"== {c}: {case['desc']} [{case['transport']}]")
            hdr = f"{'metric':20s} {OURS:>9s} {'(sprd)':>6s}"
            for e in anchors:
                hdr += f" {e:>9s} {'(sprd)':>6s} {'ratio':>7s}"
            for v in variants:
                hdr += f" {v:>9s} {'/' + (ref or '-'):>11s}"
            log(hdr)
            for key, label, unit, lower in METRICS:
                a, as_ = self.get(med, c, OURS, key)
                name = label + (f" ({unit})" if unit else "")
                sa = f"{as_:.0f}%" if not math.isnan(as_) else "-"
                line = f"{name:20s} {fmt(a):>9s} {sa:>6s}"
                for e in anchors:
                    b, bs = self.get(med, c, e, key)
                    r = ratio(a, b)
                    mark = ""
                    if lower is not None and not math.isnan(r) and \
                            abs(r - 1) >= 0.02:
                        mark = "+" if (r < 1) == lower else "-"
                    sb = f"{bs:.0f}%" if not math.isnan(bs) else "-"
                    line += f" {fmt(b):>9s} {sb:>6s} {fmt(r, 'x'):>6s}" \
                            f"{mark or ' '}"
                for v in variants:
                    x, _ = self.get(med, c, v, key)
                    line += f" {fmt(x):>9s} " \
                            f"{fmt(ratio(x, self.get(med, c, ref, key)[0]), 'x'):>11s}"
                log(line)
            for e in ANCHORS:
                r = self.na_reason(case, e)
                if r and not r.startswith("quiet"):
                    log(f"  {e}: {r}")
            if QEMU in anchors or QEMUCV in anchors:
                log(f"  {QEMU}: no latency percentiles; sequential offsets; "
                    "its NBD client keeps at most 16 requests in flight")
            if case.get("conns", 1) > 1:
                log(f"  (fio engines ran numjobs={case['conns']} x iodepth="
                    f"{case['qd'] // case['conns']}; nbdaio conns="
                    f"{case['conns']} iodepth={case['qd']}; latency is not "
                    "comparable)")
        log()
        log("ratio = nbdaio / that client (medians); '+' nbdaio better, '-' "
            "worse (by 2% or more); sprd = (max - min) / median over the "
            "reps; variants: variant / the first anchor; server busy = "
            "server CPU/IO x IOPS (100% = nbdkit's pinned CPU is full)")
        for e in ANCHORS:
            log(f"  {e:9s} = {ANCHOR_DESC[e]}")

    def read_baseline(self):
        """The ratios of the previous committed run (summary.csv)."""
        path = self.args.baseline
        self.baseline = {}
        if not path or not os.path.isfile(path):
            return
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("engine") == OURS and row.get("ratio_vs_builtin"):
                    try:
                        self.baseline[(row["case"], row["metric"])] = \
                            float(row["ratio_vs_builtin"])
                    except ValueError:
                        pass

    def targets(self, med):
        rows = []
        self.med = med

        def get(case, engine, key):
            return self.get(med, case, engine, key)[0]

        def add(name, status, detail):
            rows.append((name, status, detail))

        def judge(r, ok):
            return "NO DATA" if math.isnan(r) else ("PASS" if ok else "FAIL")

        def busy(c, e):
            return get(c, e, "srv_busy")

        def bound(c, e):
            return (f"server busy {fmt(busy(c, OURS))}% with nbdaio, "
                    f"{fmt(busy(c, e))}% with {e}")

        self.issue5_targets(med, get, add, judge)
        # issue 15: IOPS >= 1.0x every anchor in every case, 1.3x at 4k
        # QD >= 32, 1.2x for the 1M sequential read
        for case in self.cases:
            c, base = case["id"], case["base"]
            big = base == "read-1m-qd8"
            qd = case.get("qd") or int(next(
                o.split("=")[1] for o in case["fio"] if "iodepth=" in o))
            limit = 1.2 if big else (1.3 if qd >= 32 else 1.0)
            key = "mibs" if big else "iops"
            for e in ANCHORS:
                name = f"[15] {c}: {'MiB/s' if big else 'IOPS'} >= " \
                       f"{limit}x {e}"
                why = self.na_reason(case, e)
                if why and why.startswith("quiet"):
                    continue
                if why:
                    add(name, "SKIPPED" if why.startswith("skipped") else
                        "N/A", why)
                    continue
                if (c, e, key) not in med:
                    continue
                a, b = get(c, OURS, key), get(c, e, key)
                r = ratio(a, b)
                detail = (f"nbdaio {fmt(a)} / {e} {fmt(b)} = {fmt(r, 'x')}; "
                          + bound(c, e))
                if big:
                    detail += self.floor1m_detail(case["transport"])
                add(name, judge(r, r >= limit), detail)
        # client CPU per 4k IO at QD32 against libnbd 1.22
        for tp, limit in (("unix", 0.5), ("tcp", 0.35)):
            for base in ("randread-4k-qd32", "randwrite-4k-qd32"):
                case = next((x for x in self.cases if x["transport"] == tp
                             and x["base"] == base), None)
                if not case:
                    continue
                c = case["id"]
                name = f"[15] {c}: client CPU/IO <= {limit}x {LIBNBD}"
                why = self.na_reason(case, LIBNBD)
                if why:
                    add(name, "SKIPPED", why)
                    continue
                a, b = get(c, OURS, "cpu_cli_us"), get(c, LIBNBD, "cpu_cli_us")
                r = ratio(a, b)
                detail = f"nbdaio {fmt(a)} us / {LIBNBD} {fmt(b)} us = " \
                         f"{fmt(r, 'x')}"
                if base == "randread-4k-qd32" and self.floor.get(tp):
                    fl = median(self.floor[tp])
                    detail += (f"; socket floor ({tp}, no NBD logic, peer "
                               f"free) {fmt(fl)} us = {fmt(ratio(fl, b), 'x')}")
                    if self.floor_paced.get(tp):
                        fp = median(self.floor_paced[tp])
                        detail += (f"; paced to nbdaio's IOPS {fmt(fp)} us = "
                                   f"{fmt(ratio(fp, b), 'x')} (nbdaio spends "
                                   f"{fmt(ratio(a, fp), 'x')} the paced floor)")
                add(name, judge(r, r <= limit), detail)
        # busy_poll at QD1 against the fio anchors (qemu-img has no p50)
        for case in self.cases:
            if case["base"] != "randread-4k-qd1":
                continue
            c = case["id"]
            polls = [v for v in self.engines_for(case)
                     if v not in ANCHORS and v != OURS and "poll" in
                     (v + " ".join(self.variant_opts[v])).lower()]
            for e in (BUILTIN, LIBNBD):
                if (c, e, "p50_us") not in med:
                    continue
                name = f"[15] {c}: busy-poll p50 <= 0.75x {e}"
                if not polls:
                    add(name, "NOT RUN", "no busy-poll variant given (e.g. "
                        "--variant poll50:busy_poll=50 --variant-cases "
                        "randread-4k-qd1)")
                for v in polls:
                    x, b = get(c, v, "p50_us"), get(c, e, "p50_us")
                    r = ratio(x, b)
                    srv = get(c, v, "cpu_srv_us")
                    add(f"{name} [{v}]", judge(r, r <= 0.75),
                        f"{v} {fmt(x)} us / {e} {fmt(b)} us = {fmt(r, 'x')}; "
                        f"nbdkit's own CPU per IO {fmt(srv)} us is on the "
                        f"critical path: {fmt(ratio(srv, b), 'x')} of {e}'s "
                        "p50 before any client or kernel work")
        # TLS 4k QD32 IOPS >= 1.5x qemu's TLS client
        for tp in ("tls-psk", "tls-x509"):
            case = next((x for x in self.cases if x["transport"] == tp and
                         x["base"] == "randread-4k-qd32"), None)
            if not case:
                continue
            c = case["id"]
            q = QEMU if not self.na_reason(case, QEMU) else QEMUCV
            name = f"[15] {c}: IOPS >= 1.5x qemu's TLS client ({q})"
            why = self.na_reason(case, q)
            if why:
                add(name, "SKIPPED", why)
                continue
            a, b = get(c, OURS, "iops"), get(c, q, "iops")
            r = ratio(a, b)
            add(name, judge(r, r >= 1.5),
                f"nbdaio {fmt(a)} / {q} {fmt(b)} = {fmt(r, 'x')}; "
                + bound(c, q) + self.qemucv_calibration())
        # issue 15 item 4: the hot path kept its ratios (previous run's
        # summary.csv, unix socket, against fio 3.33)
        for case in self.cases:
            c = case["id"]
            for key, better in (("iops", 1), ("cpu_cli_us", -1)):
                old = self.baseline.get((c, key))
                if old is None or (c, BUILTIN, key) not in med:
                    continue
                new = ratio(get(c, OURS, key), get(c, BUILTIN, key))
                sp = self.get(med, c, OURS, key)[1]
                add(f"[15.4] {c}: {key} ratio vs {BUILTIN} not worse than "
                    "the previous run", judge(new, (new - old) * better >= 0),
                    f"now {fmt(new, 'x')}, before {fmt(old, 'x')} (nbdaio's "
                    f"spread now {fmt(sp)}%)")
        log()
        log("== targets: [5] issue 5, [15] issue 15" +
            (" (smoke mode: numbers meaningless)" if self.args.smoke else ""))
        for name, status, detail in rows:
            log(f"  {status:13s} {name}: {detail}")
        with open(os.path.join(self.out, "targets.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["target", "status", "detail"])
            w.writerows(rows)

    def qemucv_calibration(self):
        """How qemu-img convert compares with qemu-img bench where both
        ran (same client, same case, plain transports)."""
        out = []
        for case in self.cases:
            c = case["id"]
            if case["transport"].startswith("tls") or \
                    (c, QEMU, "iops") not in self.med or \
                    (c, QEMUCV, "iops") not in self.med:
                continue
            out.append(f"{c}: {QEMUCV}/{QEMU} IOPS "
                       f"{fmt(ratio(self.med[(c, QEMUCV, 'iops')][0], self.med[(c, QEMU, 'iops')][0]), 'x')}"
                       f", CPU/IO {fmt(ratio(self.med[(c, QEMUCV, 'cpu_cli_us')][0], self.med[(c, QEMU, 'cpu_cli_us')][0]), 'x')}")
        return ("; calibration " + "; ".join(out)) if out else ""

    def floor1m_detail(self, tp):
        got = [(k[1], v) for k, v in self.floor1m.items() if k[0] == tp]
        if not got:
            return ""
        why = (f"net.core.wmem_default {sysctl('net/core/wmem_default')}; "
               "a unix socket queues against the sender's send buffer, here "
               "nbdkit's, which a client cannot set") if tp == "unix" else \
            f"net.ipv4.tcp_rmem {sysctl('net/ipv4/tcp_rmem')}, tcp_wmem " \
            f"{sysctl('net/ipv4/tcp_wmem')}"
        return f"; kernel floor (socket-floor, 1 MiB replies, QD8, {tp}, " \
            "no NBD logic): " + ", ".join(
                f"{k} {fmt(v[0])} MiB/s" for k, v in got) + f" ({why})"

    def issue5_targets(self, med, get, add, judge):
        q1 = "randread-4k-qd1"
        if (q1, OURS, "p50_us") in med and (q1, BUILTIN, "p50_us") in med:
            b, a = get(q1, BUILTIN, "p50_us"), get(q1, OURS, "p50_us")
            r = ratio(a, b)
            lb, la = get(q1, BUILTIN, "lat50_us"), get(q1, OURS, "lat50_us")
            add("[5] QD1 p50 latency <= 1.0x builtin", judge(r, r <= 1.0),
                f"clat nbdaio {fmt(a)} us / builtin {fmt(b)} us = "
                f"{fmt(r, 'x')} (total lat p50 {fmt(la)} / {fmt(lb)} = "
                f"{fmt(ratio(la, lb), 'x')})")
        for c, what in (("randread-4k-qd32", "randread"),
                        ("randwrite-4k-qd32", "randwrite")):
            if (c, OURS, "iops") not in med or (c, BUILTIN, "iops") not in med:
                continue
            b, a = get(c, BUILTIN, "iops"), get(c, OURS, "iops")
            r = ratio(a, b)
            name = f"[5] 4k QD32 {what} IOPS >= 1.15x builtin unpinned"
            detail = f"nbdaio {fmt(a)} / builtin {fmt(b)} = {fmt(r, 'x')}"
            if self.args.unpinned:
                add(name, judge(r, r >= 1.15), detail)
            else:
                add(name, "NOT EVALUATED",
                    detail + " pinned (run with --unpinned to judge)")
        floor = median(self.floor.get("unix", []))
        for c in ("randread-4k-qd32", "randwrite-4k-qd32"):
            if (c, OURS, "cpu_cli_us") not in med or \
                    (c, BUILTIN, "cpu_cli_us") not in med:
                continue
            b, a = get(c, BUILTIN, "cpu_cli_us"), get(c, OURS, "cpu_cli_us")
            r = ratio(a, b)
            detail = f"nbdaio {fmt(a)} us / builtin {fmt(b)} us = {fmt(r, 'x')}"
            if c == "randread-4k-qd32" and not math.isnan(floor):
                detail += (f"; socket floor {fmt(floor)} us = "
                           f"{fmt(ratio(floor, b), 'x')} of builtin")
                if self.floor_paced.get("unix"):
                    fp = median(self.floor_paced["unix"])
                    detail += (f"; floor paced to nbdaio's IOPS {fmt(fp)} us "
                               f"= {fmt(ratio(fp, b), 'x')} of builtin")
            add(f"[5] client CPU per 4k IO {c} <= 0.35x builtin",
                judge(r, r <= 0.35), detail)
        for c, limit in (("randread-4k-qd32", 1.2), ("randwrite-4k-qd32", 1.2),
                         ("randrw-4k-qd32-b16", 0.2)):
            if (c, OURS, "sys_io") not in med:
                continue
            a, p_ = get(c, OURS, "sys_io"), get(c, OURS, "sys_io_perf")
            add(f"[5] syscalls/IO {c} <= {limit}", judge(a, a <= limit),
                f"strace {fmt(a)} (builtin {fmt(get(c, BUILTIN, 'sys_io'))}, "
                f"{LIBNBD} {fmt(get(c, LIBNBD, 'sys_io'))}); perf stat "
                f"{fmt(p_)} (builtin {fmt(get(c, BUILTIN, 'sys_io_perf'))}, "
                f"{LIBNBD} {fmt(get(c, LIBNBD, 'sys_io_perf'))})")
        if self.runs:
            base = get("randread-4k-qd32", OURS, "iops")
            for c in ("randread-4k-qd32-c2", "randread-4k-qd32-c4"):
                if (c, OURS, "iops") not in med:
                    continue
                a = get(c, OURS, "iops")
                r = ratio(a, base)
                add(f"[5] {c}: no IOPS lost against conns=1", judge(r, r >= 1.0),
                    f"nbdaio conns>1 {fmt(a)} / conns=1 {fmt(base)} = "
                    f"{fmt(r, 'x')} (server busy {fmt(get(c, OURS, 'srv_busy'))}%"
                    f" vs {fmt(get('randread-4k-qd32', OURS, 'srv_busy'))}%; "
                    f"server CPU/IO {fmt(get(c, OURS, 'cpu_srv_us'))} vs "
                    f"{fmt(get('randread-4k-qd32', OURS, 'cpu_srv_us'))} us)")
        if OURS in self.heap:
            h = self.heap[OURS]
            d = h["steady"]
            add(f"[5] no heap allocation per IO ({h['small']['ios']} vs "
                f"{h['large']['ios']} IOs differ by < 10)",
                "PASS" if abs(d) < 10 else "FAIL",
                f"heap summary {h['small']['allocs']} vs "
                f"{h['large']['allocs']} allocs: difference {h['diff']}, of "
                f"which {h['eta']} are fio's timer-driven ETA buffer "
                f"(get_jobs_eta, every 250 ms of wall time): {d} remain")

    def write_csv(self, med):
        if self.heap:
            with open(os.path.join(self.out, "heap.csv"), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["engine", "ios_small", "allocs_small", "ios_large",
                            "allocs_large", "difference", "fio_eta_allocs",
                            "difference_without_eta"])
                for e, h in self.heap.items():
                    w.writerow([e, h["small"]["ios"], h["small"]["allocs"],
                                h["large"]["ios"], h["large"]["allocs"],
                                h["diff"], h["eta"], h["steady"]])
        if not med:
            return
        keys = ["case", "engine", "rep", "ios", "runtime_ms"] + \
               [m[0] for m in METRICS if not m[0].startswith("sys_io")]
        with open(os.path.join(self.out, "runs.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, keys, extrasaction="ignore")
            w.writeheader()
            for r in self.runs:
                w.writerow(r)
        with open(os.path.join(self.out, "summary.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "metric", "engine", "median", "spread_pct",
                        "ratio_vs_builtin", "nbdaio_over_engine", "note"])
            for case in self.cases:
                c = case["id"]
                for e in ANCHORS:
                    why = self.na_reason(case, e)
                    if why and not why.startswith("quiet"):
                        w.writerow([c, "-", e, "", "", "", "", why])
                for key, *_ in METRICS:
                    b = self.get(med, c, BUILTIN, key)[0]
                    a = self.get(med, c, OURS, key)[0]
                    for e in self.engines_for(case):
                        v, s = med[(c, e, key)]
                        w.writerow([c, key, e, f"{v:.6g}", f"{s:.3g}",
                                    "" if e == BUILTIN else
                                    f"{ratio(v, b):.4g}",
                                    "" if e == OURS else f"{ratio(a, v):.4g}",
                                    ""])
        with open(os.path.join(self.out, "floor.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["floor", "transport", "cpu_us_per_io_median",
                        "mibs"])
            for tp, xs in self.floor.items():
                w.writerow(["4k-qd32-free", tp, f"{median(xs):.4g}", ""])
            for tp, xs in self.floor_paced.items():
                w.writerow(["4k-qd32-paced", tp, f"{median(xs):.4g}", ""])
            for (tp, k), (mibs, cpu) in self.floor1m.items():
                w.writerow([f"1m-qd8 {k}", tp, f"{cpu:.4g}", f"{mibs:.4g}"])
        with open(os.path.join(self.out, "syscalls.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "engine", "syscall", "calls_per_io",
                        "failed_per_io"])
            for (c, e), per in self.sysc.items():
                errs = self.sysc_err.get((c, e), {})
                for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
                    w.writerow([c, e, k, f"{v:.4f}", f"{errs.get(k, 0):.4f}"])
        with open(os.path.join(self.out, "syscalls-perf.csv"), "w",
                  newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "engine", "syscall", "calls_per_io"])
            for (c, e), per in self.psysc.items():
                for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
                    w.writerow([c, e, k, f"{v:.4f}"])

    def chart(self, med):
        dat = os.path.join(self.out, "chart.dat")
        cols = [("iops", e) for e in ANCHORS] + \
               [("cpu_cli_us", e) for e in ANCHORS]
        with open(dat, "w") as f:
            f.write("# case " + " ".join(f"{k}_nbdaio_over_{e}"
                                         for k, e in cols) +
                    " " + " ".join(f"kiops_{e}" for e in [OURS] + ANCHORS) +
                    "\n")
            for case in self.cases:
                c = case["id"]
                vals = []
                for key, e in cols:
                    r = ratio(self.get(med, c, OURS, key)[0],
                              self.get(med, c, e, key)[0])
                    vals.append("?" if math.isnan(r) else f"{min(r, 4):.4f}")
                for e in [OURS] + ANCHORS:
                    v = self.get(med, c, e, "iops")[0]
                    vals.append("?" if math.isnan(v) else f"{v / 1000:.3f}")
                f.write(f"\"{c}\" " + " ".join(vals) + "\n")
        png = os.path.join(self.out, "chart.png")
        ncase = len(self.cases)
        mode = "unpinned" if self.args.unpinned else \
            f"nbdkit on CPU {self.args.server_cpu}, clients on CPU {self.args.client_cpu}"
        term = "pngcairo size 1600,1400 font 'sans,10'"
        t = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True)
        if "pngcairo" not in t.stdout + t.stderr:
            term = "png size 1600,1400"

        color = {OURS: "#d62728", BUILTIN: "#9467bd", LIBNBD: "#2ca02c",
                 QEMU: "#56b4e9", QEMUCV: "#e69f00"}

        def plot(first, names):
            return ", ".join(
                f"'{dat}' using {first + i}{':xtic(1)' if i == 0 else ''} "
                f"title '{n}' lc rgb '{color.get(n, 'gray')}'"
                for i, n in enumerate(names))
        n = len(ANCHORS)
        anchors = list(ANCHORS)     # (the report explains the names)
        gp = f"""
set terminal {term}
set output '{png}'
set datafile missing '?'
set multiplot layout 3,1 title "nbdaio.so vs {', '.join(ANCHORS)} - {mode}, {self.args.reps} rep(s) x {self.args.runtime}, medians"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25 nomirror font ',8'
set grid ytics
set key outside right top
set ylabel 'nbdaio / client'
set title 'IOPS ratio nbdaio / client (higher is better; clipped at 4; missing: n/a)'
set yrange [0:4]
set arrow 1 from -0.5,1 to {ncase - 0.5},1 nohead lw 2 dt 2 front
plot {plot(2, anchors)}
set title 'client CPU per IO ratio nbdaio / client (lower is better)'
set yrange [0:2]
plot {plot(2 + n, anchors)}
unset arrow 1
set title 'IOPS (thousands, log scale)'
set ylabel 'kIOPS'
set logscale y
set yrange [*:*]
plot {plot(2 + 2 * n, [OURS] + ANCHORS)}
unset multiplot
"""
        with open(os.path.join(self.out, "chart.gp"), "w") as f:
            f.write(gp)
        p = subprocess.run(["gnuplot", os.path.join(self.out, "chart.gp")],
                           capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(png) or \
                os.path.getsize(png) == 0:
            fail(f"gnuplot failed: {p.stderr.strip()[-400:]}")
        else:
            log(f"chart: {png}")

    # ------------------------------------------------------------------
    # socket floor: the kernel's cost of the same bytes, no NBD logic
    def build_floor(self):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "socket-floor.c")
        exe = os.path.join(self.rawdir, "socket-floor")
        if os.path.exists(exe):
            return exe
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            fail("socket floor: no C compiler (cc)")
            return None
        r = subprocess.run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra",
                            "-o", exe, src], capture_output=True, text=True)
        if r.returncode:
            fail(f"socket floor: build failed: {r.stderr.strip()[:300]}")
            return None
        return exe

    def floor_run(self, exe, opts, tag):
        pins = ["-c", "-1", "-p", "-1"] if self.args.unpinned else \
            ["-c", str(self.args.client_cpu), "-p", str(self.args.server_cpu)]
        r = subprocess.run([exe] + opts + pins, capture_output=True, text=True,
                           timeout=600)
        m = re.search(r"cpu_us_per_io=([0-9.]+) syscalls_per_io=([0-9.]+) "
                      r"iops=([0-9.]+)", r.stdout)
        if r.returncode or not m:
            fail(f"socket floor {tag}: {r.stdout.strip()} {r.stderr.strip()}"[:300])
            return None
        return [float(x) for x in m.groups()]

    def run_floor(self, tp):
        exe = self.build_floor()
        if not exe:
            return
        n = 20000 if self.args.smoke else (1000000 if tp == "unix" else 200000)
        c = "randread-4k-qd32" if tp == "unix" else f"{tp}:randread-4k-qd32"
        ours = [r["iops"] for r in self.runs
                if r["case"] == c and r["engine"] == OURS]
        pace = None
        base = ["-n", str(n), "-q", "32", "-b", "16"] + \
            (["-t"] if tp == "tcp" else [])

        def one(pace_ns, tag):
            v = self.floor_run(exe, base + ["-d", str(pace_ns)], tag)
            if v:
                log(f"  socket-floor {tp} {tag}: {v[0]:.2f} us client CPU/IO, "
                    f"{v[1]:.3f} syscalls/IO, {v[2]:.0f} IOPS (4k reads' "
                    f"bytes, QD32, no NBD logic"
                    f"{f', peer paced {pace_ns} ns/reply' if pace_ns else ''})")
            return v
        for rep in range(max(1, self.args.reps)):
            v = one(0, f"r{rep} free ")
            if not v:
                return
            self.floor.setdefault(tp, []).append(v[0])
            if pace is None and ours:
                # spin so that the peer answers at nbdaio's QD32 pace (none
                # if nbdaio ran as fast as the free-running floor)
                pace = max(0, int(1e9 / median(ours) - 1e9 / v[2]))
            if pace:
                w = one(pace, f"r{rep} paced")
                if not w:
                    return
                self.floor_paced.setdefault(tp, []).append(w[0])

    def run_floor_1m(self, tp):
        """1 MiB replies at QD8 through a unix socket pair (or TCP loopback),
        with the default socket buffers and with 2 MiB ones on the client
        and on both ends: what the kernel moves, and what a client can
        change alone."""
        exe = self.build_floor()
        if not exe:
            return
        n = 300 if self.args.smoke else 3000
        for label, opt in (("default buffers", []),
                           ("2 MiB buffers on the client only",
                            ["-C", str(2 << 20)]),
                           ("2 MiB buffers on both ends",
                            ["-s", str(2 << 20)])):
            v = self.floor_run(exe, ["-n", str(n), "-q", "8", "-b", "1",
                                     "-r", str((1 << 20) + 28)] + opt +
                               (["-t"] if tp == "tcp" else []), label)
            if not v:
                return
            self.floor1m[(tp, label)] = (v[2], v[0])
            log(f"  socket-floor {tp} 1M {label}: {v[2]:.0f} MiB/s, "
                f"{v[0]:.1f} us client CPU/IO, {v[1]:.1f} syscalls/IO "
                "(1 MiB replies, QD8, no NBD logic)")

    def header(self):
        a = self.args
        st = os.stat(self.plugin)
        log("nbdaio benchmark (issues 5 and 15)" +
            ("  [SMOKE MODE]" if a.smoke else ""))
        log(f"  date        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
        log(f"  host        {platform.node()}, kernel {platform.release()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        log(f"  builtin     {cmd_version(['fio', '--version'])} nbd engine "
            f"(libnbd {dpkg_version('libnbd0')})")
        if self.in_root:
            ir = self.in_root
            log(f"  {LIBNBD:11s} {cmd_version(ir + ['fio', '--version'])} nbd "
                f"engine (libnbd {cmd_version(ir + ['dpkg-query', '-W', '-f=${Version}', 'libnbd0'])}),"
                f" in {self.root}")
            log(f"  {QEMU:11s} {cmd_version(ir + ['qemu-img', '--version'])}"
                ", qemu-img bench")
        else:
            log(f"  {LIBNBD}, {QEMU}, {QEMUCV}: SKIPPED: {self.trixie_skip}")
        log(f"  nbdkit      {cmd_version(['nbdkit', '--version'])}, memory "
            f"{a.export_size}, one server per transport: "
            + ", ".join(a.transports))
        log(f"  plugin      {self.plugin} ({st.st_size} bytes, built "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))})")
        if a.unpinned:
            log("  pinning     none (both processes free on all CPUs)")
        else:
            log(f"  pinning     nbdkit CPU {a.server_cpu} "
                f"(affinity {self.server.affinity}), clients CPU {a.client_cpu}")
        if not a.heap_only:
            log(f"  runs        {a.reps} rep(s) x {a.runtime} per case and "
                "client, clients alternating (order flipped every rep), no ramp")
        if a.nbdaio_opts:
            log(f"  nbdaio opts {' '.join(a.nbdaio_opts)}")
        for v in self.engines[1 + len(ANCHORS):]:
            log(f"  variant     {v}: nbdaio + {' '.join(self.variant_opts[v])}")
        if not a.heap_only:
            log(f"  strace      number_ios={a.strace_ios} and 2x (1M case: /50, "
                "at most 400), unix socket" if not a.no_strace else
                "  strace      skipped")
        if not a.no_heap:
            log(f"  valgrind    number_ios={a.heap_ios[0]} and {a.heap_ios[1]}"
                + (", both engines" if a.heap_builtin else ", nbdaio"))
        if self.baseline:
            log(f"  baseline    {a.baseline} (ratios of the previous run)")
        log(f"  out         {self.out}")
        log()

    def make_creds(self, tmp):
        """TLS keys as the TLS tests make them (tests/tls/make-creds.sh)."""
        here = os.path.dirname(os.path.abspath(__file__))
        self.creds = os.path.join(tmp, "creds")
        r = subprocess.run(["bash", os.path.join(here, "..", "tls",
                                                 "make-creds.sh"), self.creds],
                           capture_output=True, text=True)
        if r.returncode:
            raise BenchError("make-creds.sh failed: " + r.stderr.strip()[-300:])

    # ------------------------------------------------------------------
    def run_transport(self, tp, tmp, step):
        a = self.args
        cases = [c for c in self.cases if c["transport"] == tp]
        self.server = Server(a, tmp, tp, self.creds)
        if self.seq == 0:
            self.header()
        desc = next(t["desc"] for t in TRANSPORTS if t["id"] == tp)
        log(f"=== transport {tp}: {desc}; server: {' '.join(self.server.argv)}")
        try:
            if not a.heap_only:
                self.prefill()
                for q in (QEMU, QEMUCV):
                    if any(q in self.engines_for(c) for c in cases):
                        self.qemu_startup(tp, q)
                self.run_cases(cases)
                step(f"timed runs {tp}")
            if tp == "unix" and not a.heap_only and not a.no_strace:
                log("system calls per IO (strace -f -c, difference of an "
                    "N and a 2N IO run):")
                self.run_strace()
                step("strace")
                log("system calls per IO (perf stat on the syscall "
                    "tracepoints, same runs without ptrace):")
                self.run_perf_syscalls()
                step("perf stat")
            if tp in ("unix", "tcp") and not a.heap_only:
                log(f"socket floor (tests/bench/socket-floor.c, {tp}):")
                self.run_floor(tp)
                self.run_floor_1m(tp)
                step("socket floor")
            if tp == "unix" and not a.no_heap:
                self.run_heap()
                step("valgrind")
            if tp == "unix" and a.perf:
                self.run_perf()
                step("perf record")
        finally:
            self.server.stop()

    def main(self):
        a = self.args
        self.read_baseline()
        self.cases = []
        for t in TRANSPORTS:
            if t["id"] not in a.transports:
                continue
            # smoke: one case per transport beyond the unix socket
            few = ["randread-4k-qd32"] if a.smoke and t["cases"] else \
                t["cases"]
            for c in CASES:
                if (a.cases and c["id"] not in a.cases) or \
                        (few and c["id"] not in few):
                    continue
                self.cases.append(dict(
                    c, base=c["id"], transport=t["id"],
                    id=c["id"] if t["id"] == "unix" else f"{t['id']}:{c['id']}"))
        tps = [t for t in a.transports
               if any(c["transport"] == t for c in self.cases)] or ["unix"]
        # inside the trixie root when there is one, so its clients see the
        # unix socket and the keys at the same path under the root
        tmp = tempfile.mkdtemp(prefix="nbdaio-bench-",
                               dir=os.path.join(self.root, "tmp")
                               if self.root else None)
        t0 = time.time()

        def step(what):
            nonlocal t0
            log(f"  [{what}: {time.time() - t0:.0f} s]")
            t0 = time.time()
        try:
            if any(t.startswith("tls") for t in tps):
                self.make_creds(tmp)
            for tp in tps:
                try:
                    self.run_transport(tp, tmp, step)
                except BenchError as e:
                    fail(f"{tp}: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not a.heap_only and (self.runs or self.sysc or self.psysc):
            med = self.medians()
            self.print_tables(med)
            self.write_csv(med)
            if self.runs:
                self.chart(med)
            self.targets(med)
        elif a.heap_only:
            self.write_csv({})
            self.targets({})
        log()
        log(f"results: {self.out} (report.txt, runs.csv, summary.csv, "
            "floor.csv, syscalls.csv, syscalls-perf.csv, heap.csv, "
            "targets.csv, chart.png, raw/)")
        if a.smoke:
            log("smoke mode: pipeline check only; the numbers mean nothing")
        if not a.smoke and not a.heap_only:
            log("note: this machine is shared; treat single runs as "
                "preliminary and compare spreads")
        if FAILURES:
            log(f"{len(FAILURES)} step(s) FAILED:")
            for f_ in FAILURES:
                log(f"  - {f_}")
            return 1
        return 0


# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench.sh",
        description="fio built-in nbd engine vs nbdaio.so (issue 5).",
        epilog="Environment: NBDAIO_BENCH_OPTS adds nbdaio engine options "
               "(like --nbdaio-opts); NBDAIO_BENCH_VARIANT=NAME:OPTS adds a "
               "variant (like --variant).  Cases: " + ", ".join(CASE_IDS))
    p.add_argument("--plugin", required=True,
                   help="path of nbdaio.so (bench.sh: default "
                        "build-bench/fio-plugin/nbdaio.so, built if needed)")
    p.add_argument("--no-build", action="store_true",
                   help="(bench.sh) use build-bench/ as it is")
    p.add_argument("--out", default="/tmp/nbdaio-bench",
                   help="results directory (default %(default)s)")
    p.add_argument("--reps", type=int, default=3,
                   help="repetitions of the timed runs (0: only the counting "
                        "steps)")
    p.add_argument("--runtime", default="5s",
                   help="fio runtime per run (fio syntax, e.g. 5s, 800ms)")
    p.add_argument("--cases", default="",
                   help="comma-separated case ids (default: all)")
    p.add_argument("--smoke", action="store_true",
                   help="every step once on tiny counts (CI)")
    p.add_argument("--unpinned", action="store_true",
                   help="no CPU pinning (both processes free on all CPUs)")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--client-cpu", type=int, default=0)
    p.add_argument("--export-size", default="",
                   help="nbdkit memory size (default 1G; --smoke 256M)")
    p.add_argument("--transports", default=",".join(TRANSPORT_IDS),
                   help="comma-separated transports (default: all: "
                        "%(default)s)")
    p.add_argument("--trixie-root", default="",
                   help="(bench.sh) the trixie root of tests/interop/"
                        "make-root.sh")
    p.add_argument("--in-root", default="",
                   help="(bench.sh) the command that runs a program in it "
                        "(test-trixie.sh's IN_ROOT, shell-quoted)")
    p.add_argument("--trixie-skip", default="",
                   help="(bench.sh) why there is no trixie root")
    p.add_argument("--baseline",
                   default=os.path.join(os.path.dirname(
                       os.path.abspath(__file__)), "results", "summary.csv"),
                   help="summary.csv of a previous run: issue 15 item 4 "
                        "compares nbdaio's ratios with it (default "
                        "%(default)s; '' for none)")
    p.add_argument("--nbdaio-opts", default=os.environ.get("NBDAIO_BENCH_OPTS", ""),
                   help="extra nbdaio engine options for every nbdaio run, "
                        "e.g. 'strict=0' (comma or space separated)")
    p.add_argument("--variant", action="append", default=[],
                   metavar="NAME:OPTS",
                   help="also run nbdaio with extra engine options as a third "
                        "engine column, e.g. poll50:busy_poll=50 (repeatable)")
    p.add_argument("--variant-cases", default="",
                   help="cases the variants run (default: all selected)")
    p.add_argument("--strace-ios", type=int, default=20000,
                   help="IOs of the smaller strace run (default %(default)s)")
    p.add_argument("--no-strace", action="store_true",
                   help="skip the syscall counting (strace and perf stat)")
    p.add_argument("--no-heap", action="store_true",
                   help="skip the valgrind heap check")
    p.add_argument("--heap-check", dest="heap_only", action="store_true",
                   help="only the valgrind heap check")
    p.add_argument("--heap-ios", default="10000,100000",
                   help="IO counts of the two valgrind runs")
    p.add_argument("--heap-builtin", action="store_true",
                   help="also run the built-in engine under valgrind "
                        "(reference; default in full and --heap-check mode)")
    p.add_argument("--no-heap-builtin", action="store_true")
    p.add_argument("--perf", action="store_true",
                   help="perf record -g of nbdaio at 4k randread QD32")
    a = p.parse_args(argv)

    def opts(s):
        return ["--" + o.lstrip("-") for o in re.split(r"[,\s]+", s) if o]

    a.cases = [c for c in a.cases.split(",") if c]
    a.transports = [t for t in a.transports.split(",") if t]
    for t in a.transports:
        if t not in TRANSPORT_IDS:
            p.error(f"unknown transport {t}; known: {', '.join(TRANSPORT_IDS)}")
    if a.heap_only:
        a.transports = ["unix"]
    for c in a.cases:
        if c not in CASE_IDS:
            p.error(f"unknown case {c}; known: {', '.join(CASE_IDS)}")
    a.variant_cases = [c for c in a.variant_cases.split(",") if c]
    a.nbdaio_opts = opts(a.nbdaio_opts)
    if os.environ.get("NBDAIO_BENCH_VARIANT"):
        a.variant.append(os.environ["NBDAIO_BENCH_VARIANT"])
    a.variants = []
    for v in a.variant:
        name, sep, o = v.partition(":")
        if not sep or not name or not o or name in (BUILTIN, OURS):
            p.error(f"--variant {v}: want NAME:OPTS, e.g. poll50:busy_poll=50")
        a.variants.append((name, opts(o)))
    a.heap_ios = [int(x) for x in a.heap_ios.split(",")]
    if a.smoke:
        a.reps = 1
        a.runtime = "500ms"
        a.export_size = a.export_size or "256M"
        a.strace_ios = min(a.strace_ios, 500)
        a.heap_ios = [1000, 3000]
        a.heap_builtin = False
        if not a.variants:       # exercise the busy-poll target once
            a.variants = [("poll50", ["--busy_poll=50"])]
            a.variant_cases = a.variant_cases or ["randread-4k-qd1"]
        a.out = a.out if a.out != "/tmp/nbdaio-bench" else "/tmp/nbdaio-bench-smoke"
    elif not a.no_heap_builtin:
        a.heap_builtin = True
    if a.no_heap_builtin:
        a.heap_builtin = False
    a.export_size = a.export_size or "1G"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", a.runtime)
    if not m:
        p.error("--runtime: want e.g. 5s or 800ms")
    a.runtime_s = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    if not a.unpinned and (os.cpu_count() or 1) < 2:
        if not a.smoke:
            p.error("pinning needs 2 CPUs; use --unpinned")
        a.unpinned = True
    return a


def main():
    global REPORT
    a = parse_args(sys.argv[1:])
    if not os.path.isfile(a.plugin):
        print(f"bench: {a.plugin}: no such plugin (build it: ninja -C "
              "build-bench)", file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    REPORT = open(os.path.join(a.out, "report.txt"), "w")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return Bench(a).main()


if __name__ == "__main__":
    sys.exit(main())
