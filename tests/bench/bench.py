#!/usr/bin/env python3
"""tests/bench/bench.py - the work behind bench.sh (run that instead: it
installs the tools and builds the plugin).

Compares fio's built-in `nbd` engine (libnbd) with nbdaio.so on a private
nbdkit memory export and prints, per case, the medians of both engines and
their ratio (nbdaio / builtin) for: IOPS, MiB/s, p50 / p99 completion
latency, p50 total latency, client CPU per IO, server CPU per IO, context
switches per IO and system calls per IO (strace and perf stat); then the
issue-5 targets as PASS / FAIL.  Writes CSVs, the raw fio output and a
gnuplot PNG under --out.

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
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# --------------------------------------------------------------------------
# the cases

CASES = [
    # id, description, fio options (both engines), conns for nbdaio
    dict(id="randread-4k-qd1", desc="4k randread QD1",
         fio=["--rw=randread", "--bs=4k", "--iodepth=1"]),
    dict(id="randread-4k-qd32", desc="4k randread QD32",
         fio=["--rw=randread", "--bs=4k", "--iodepth=32"]),
    dict(id="randread-4k-qd128", desc="4k randread QD128",
         fio=["--rw=randread", "--bs=4k", "--iodepth=128"]),
    dict(id="randwrite-4k-qd32", desc="4k randwrite QD32",
         fio=["--rw=randwrite", "--bs=4k", "--iodepth=32"]),
    dict(id="randrw-4k-qd32-b16",
         desc="4k randrw QD32 iodepth_batch_submit=16 "
              "iodepth_batch_complete_min=16",
         fio=["--rw=randrw", "--bs=4k", "--iodepth=32",
              "--iodepth_batch_submit=16", "--iodepth_batch_complete_min=16"]),
    dict(id="read-1m-qd8", desc="1M sequential read QD8",
         fio=["--rw=read", "--bs=1m", "--iodepth=8"]),
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
]

BUILTIN = "builtin"
OURS = "nbdaio"


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

class Server:
    def __init__(self, args, tmpdir):
        self.sock = os.path.join(tmpdir, "nbd.sock")
        self.uri = f"nbd+unix:///?socket={self.sock}"
        argv = ["nbdkit", "--exit-with-parent", "-f", "-U", self.sock,
                "memory", args.export_size]
        if not args.unpinned:
            argv = ["taskset", "-c", str(args.server_cpu)] + argv
        self.argv = argv
        self.log = open(os.path.join(tmpdir, "nbdkit.log"), "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            if self.p.poll() is not None:
                raise BenchError(f"nbdkit exited at start ({self.p.returncode})")
            time.sleep(0.05)
        else:
            raise BenchError("nbdkit did not create its socket within 10 s")
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
        self.engines = [BUILTIN, OURS] + [v[0] for v in args.variants]
        self.variant_opts = {v[0]: v[1] for v in args.variants}
        self.runs = []           # dicts: case, engine, rep, metrics...
        self.sysc = {}           # (case, engine) -> {name: per IO}
        self.sysc_err = {}       # (case, engine) -> {name: failed calls per IO}
        self.psysc = {}          # the same counted by perf stat tracepoints
        self.heap = {}           # engine -> dict
        self.floor = []          # socket-floor client CPU us per IO, per rep
        self.floor_paced = []    # the same at nbdaio's QD32 randread pace
        self.server = None
        self.seq = 0

    # which engines run a case
    def engines_for(self, case):
        vc = self.args.variant_cases
        return [e for e in self.engines
                if e in (BUILTIN, OURS) or not vc or case["id"] in vc]

    def engine_argv(self, engine, case):
        conns = case.get("conns", 1)
        qd = case.get("qd")
        if engine == BUILTIN:
            argv = ["--ioengine=nbd", f"--uri={self.server.uri}"]
            if conns > 1:        # no conns option: one handle per job
                argv += [f"--numjobs={conns}", f"--iodepth={qd // conns}",
                         "--group_reporting"]
            elif qd:
                argv += [f"--iodepth={qd}"]
            return argv
        argv = [f"--ioengine=external:{self.plugin}", f"--uri={self.server.uri}"]
        if qd:
            argv += [f"--iodepth={qd}"]
        if conns > 1:
            argv += [f"--conns={conns}"]
        argv += self.args.nbdaio_opts
        if engine != OURS:
            argv += self.variant_opts[engine]
        return argv

    def fio_argv(self, engine, case, extra):
        argv = ["fio", f"--name={case['id']}"] + self.engine_argv(engine, case)
        argv += case["fio"] + ["--unified_rw_reporting=both",
                               "--lat_percentiles=1",
                               "--output-format=json"] + extra
        return argv

    def pin(self, argv):
        if self.args.unpinned:
            return argv
        return ["taskset", "-c", str(self.args.client_cpu)] + argv

    def run_fio(self, argv, tag, timeout):
        """Run fio; returns (parsed JSON, stdout text).  Saves the output."""
        self.seq += 1
        base = os.path.join(self.rawdir, f"{self.seq:03d}-{tag}")
        with open(base + ".cmd", "w") as f:
            f.write(" ".join(argv) + "\n")
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
    def prefill(self):
        argv = self.pin(["fio", "--name=prefill", "--ioengine=nbd",
                         f"--uri={self.server.uri}", "--rw=write", "--bs=1m",
                         "--iodepth=8", "--output-format=json"])
        t = time.time()
        j, _ = self.run_fio(argv, "prefill", 300)
        mib = j["jobs"][0]["write"]["io_bytes"] / 2**20
        log(f"prefill: wrote {mib:.0f} MiB through the built-in engine "
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
        extra = ["--time_based", f"--runtime={self.args.runtime}"]
        argv = self.pin(self.fio_argv(engine, case, extra))
        tag = f"{case['id']}-{engine}-r{rep}"
        s0 = self.server.cpu()
        j, _ = self.run_fio(argv, tag, 120 + self.args.runtime_s * 2)
        s1 = self.server.cpu()
        m = self.metrics_from(j["jobs"][0])
        m["cpu_srv_us"] = (s1 - s0) * 1e6 / m["ios"]
        m.update(case=case["id"], engine=engine, rep=rep)
        self.runs.append(m)
        log(f"  {tag:34s} {fmt(m['iops']):>8s} IOPS  p50 {fmt(m['p50_us'])} us"
            f"  p99 {fmt(m['p99_us'])} us  cli {fmt(m['cpu_cli_us'])} us/IO"
            f"  srv {fmt(m['cpu_srv_us'])} us/IO")

    def run_cases(self):
        for case in self.cases:
            engines = self.engines_for(case)
            log(f"case {case['id']}: {case['desc']}")
            for rep in range(self.args.reps):
                # alternate the order so drift hits both engines alike
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
        per_job = n if engine != BUILTIN or conns == 1 else n // conns
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
        per_job = n if engine != BUILTIN or conns == 1 else n // conns
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
        """Cases of the strace / perf stat steps: all, except in smoke mode,
        where two prove the pipeline (one with the builtin's numjobs)."""
        if not self.args.smoke:
            return self.cases
        pick = [c for c in self.cases
                if c["id"] in ("randread-4k-qd32", "randread-4k-qd32-c2")]
        return pick or self.cases[:1]

    def run_perf_syscalls(self):
        events = self.perf_events()
        if not events:
            log("  perf stat syscall tracepoints unavailable: skipped")
            return
        n1 = self.args.strace_ios
        for case in self.count_cases():
            n = n1 if "1m" not in case["id"] else min(max(n1 // 50, 50), 400)
            for engine in self.engines_for(case):
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
                log(f"  perf   {case['id']:22s} {engine:8s} {total:6.2f} "
                    "syscalls/IO: " + ", ".join(f"{k} {v:.2f}" for k, v in top))

    def run_strace(self):
        n1 = self.args.strace_ios
        for case in self.count_cases():
            # a 1M sequential pass over 1 GiB ends after 1024 IOs
            n = n1 if "1m" not in case["id"] else min(max(n1 // 50, 50), 400)
            for engine in self.engines_for(case):
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
                log(f"  strace {case['id']:22s} {engine:8s} "
                    f"{sum(per.values()):6.2f} syscalls/IO: " +
                    ", ".join(f"{k} {v:.2f}" +
                              (f" ({errs[k]:.2f} failed)" if errs.get(k, 0) >= 0.005
                               else "") for k, v in top))

    # ------------------------------------------------------------------
    # valgrind: heap allocations that grow with the IO count
    def heap_run(self, engine, n):
        case = dict(id="heap", fio=["--rw=randread", "--bs=4k"], qd=32)
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
            log(f"  {engine:8s} heap summary: {a['allocs']} allocs at "
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
        case = next(c for c in CASES if c["id"] == "randread-4k-qd32")
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

    def print_tables(self, med):
        for case in self.cases:
            engines = self.engines_for(case)
            log()
            log(f"== {case['id']}: {case['desc']}")
            hdr = f"{'metric':20s} {'builtin':>9s} {'(sprd)':>7s} " \
                  f"{'nbdaio':>9s} {'(sprd)':>7s} {'ratio':>7s}"
            for v in engines[2:]:
                hdr += f" {v:>9s} {'ratio':>7s}"
            log(hdr)
            for key, label, unit, lower in METRICS:
                b, bs = med[(case["id"], BUILTIN, key)]
                a, as_ = med[(case["id"], OURS, key)]
                r = ratio(a, b)
                mark = ""
                if not math.isnan(r) and abs(r - 1) >= 0.02:
                    mark = "+" if (r < 1) == lower else "-"
                name = label + (f" ({unit})" if unit else "")
                sb = f"{bs:.0f}%" if not math.isnan(bs) else "-"
                sa = f"{as_:.0f}%" if not math.isnan(as_) else "-"
                line = f"{name:20s} {fmt(b):>9s} {sb:>7s} {fmt(a):>9s} " \
                       f"{sa:>7s} {fmt(r, 'x'):>6s}{mark or ' '}"
                for v in engines[2:]:
                    x, _ = med[(case["id"], v, key)]
                    line += f" {fmt(x):>9s} {fmt(ratio(x, b), 'x'):>7s}"
                log(line)
            if case.get("conns", 1) > 1:
                base = "randread-4k-qd32"
                if (base, OURS, "iops") in med:
                    a = med[(case["id"], OURS, "iops")][0]
                    log(f"  (builtin ran numjobs={case['conns']} x iodepth="
                        f"{case['qd'] // case['conns']}; nbdaio conns="
                        f"{case['conns']} vs its own conns=1 QD32: IOPS "
                        f"{fmt(ratio(a, med[(base, OURS, 'iops')][0]), 'x')}, "
                        f"vs builtin 1-job QD32: "
                        f"{fmt(ratio(a, med[(base, BUILTIN, 'iops')][0]), 'x')}; "
                        f"latency is not comparable: each builtin job has only "
                        f"{case['qd'] // case['conns']} in flight)")
        log()
        log("ratio = nbdaio / builtin (medians); '+' nbdaio better, '-' worse "
            "(by 2% or more); sprd = (max - min) / median over the reps")

    def targets(self, med):
        rows = []

        def get(case, engine, key):
            return med.get((case, engine, key), (float("nan"),))[0]

        def add(name, status, detail):
            rows.append((name, status, detail))

        q1 = "randread-4k-qd1"
        if (q1, OURS, "p50_us") in med:
            b, a = get(q1, BUILTIN, "p50_us"), get(q1, OURS, "p50_us")
            r = ratio(a, b)
            lb, la = get(q1, BUILTIN, "lat50_us"), get(q1, OURS, "lat50_us")
            add("QD1 p50 latency <= 1.0x", "PASS" if r <= 1.0 else
                ("FAIL" if not math.isnan(r) else "NO DATA"),
                f"clat nbdaio {fmt(a)} us / builtin {fmt(b)} us = "
                f"{fmt(r, 'x')} (total lat p50 {fmt(la)} / {fmt(lb)} = "
                f"{fmt(ratio(la, lb), 'x')})")
            variants = [v for v in self.engines[2:]
                        if (q1, v, "p50_us") in med]
            # the busy-poll target is judged on variants that say "poll"
            polls = [v for v in variants
                     if "poll" in (v + " ".join(self.variant_opts[v])).lower()]
            if not polls:
                add("busy-poll QD1 p50 <= 0.75x", "NOT RUN",
                    "no busy-poll variant given (e.g. --variant "
                    "poll50:busy_poll=50; judged on variants whose name or "
                    "options contain 'poll')")
            for v in variants:
                x = get(q1, v, "p50_us")
                r = ratio(x, b)
                status = ("PASS" if r <= 0.75 else "FAIL") \
                    if not math.isnan(r) else "NO DATA"
                add(f"{'busy-poll QD1 p50 <= 0.75x' if v in polls else 'variant QD1 p50 (info)'}"
                    f" [{v}: {' '.join(self.variant_opts[v])}]",
                    status if v in polls else "INFO",
                    f"{v} {fmt(x)} us / builtin {fmt(b)} us = {fmt(r, 'x')}")
        for c, what in (("randread-4k-qd32", "randread"),
                        ("randwrite-4k-qd32", "randwrite")):
            if (c, OURS, "iops") not in med:
                continue
            b, a = get(c, BUILTIN, "iops"), get(c, OURS, "iops")
            r = ratio(a, b)
            name = f"4k QD32 {what} IOPS >= 1.15x unpinned"
            detail = f"nbdaio {fmt(a)} / builtin {fmt(b)} = {fmt(r, 'x')}"
            if self.args.unpinned:
                add(name, "PASS" if r >= 1.15 else
                    ("FAIL" if not math.isnan(r) else "NO DATA"), detail)
            else:
                add(name, "NOT EVALUATED",
                    detail + " pinned (run with --unpinned to judge)")
        # client CPU per 4k IO at QD32 <= 0.35x, with the socket floor
        floor = median(self.floor) if self.floor else float("nan")
        for c in ("randread-4k-qd32", "randwrite-4k-qd32"):
            if (c, OURS, "cpu_cli_us") not in med or not self.runs:
                continue
            b, a = get(c, BUILTIN, "cpu_cli_us"), get(c, OURS, "cpu_cli_us")
            r = ratio(a, b)
            detail = f"nbdaio {fmt(a)} us / builtin {fmt(b)} us = {fmt(r, 'x')}"
            if c == "randread-4k-qd32" and not math.isnan(floor):
                fr = ratio(floor, b)
                detail += (f"; socket floor {fmt(floor)} us = {fmt(fr, 'x')} of "
                           f"builtin" + (" (above 0.35x: the target is "
                                         "physically impossible here)"
                                         if fr > 0.35 else ""))
                if self.floor_paced:
                    fp = median(self.floor_paced)
                    detail += (f"; floor paced to nbdaio's IOPS {fmt(fp)} us "
                               f"= {fmt(ratio(fp, b), 'x')} of builtin (nbdaio "
                               f"spends {fmt(ratio(a, fp), 'x')} the paced "
                               "floor)")
            add(f"client CPU per 4k IO {c} <= 0.35x", "PASS" if r <= 0.35 else
                ("FAIL" if not math.isnan(r) else "NO DATA"), detail)
        # system calls per IO (the issue counts them with strace -c; the
        # perf stat count, without ptrace slowing fio down, is shown too)
        for c, limit in (("randread-4k-qd32", 1.2), ("randwrite-4k-qd32", 1.2),
                         ("randrw-4k-qd32-b16", 0.2)):
            if (c, OURS, "sys_io") not in med:
                continue
            a, p_ = get(c, OURS, "sys_io"), get(c, OURS, "sys_io_perf")
            add(f"syscalls/IO {c} <= {limit}",
                "PASS" if a <= limit else
                ("FAIL" if not math.isnan(a) else "NO DATA"),
                f"strace {fmt(a)} (builtin {fmt(get(c, BUILTIN, 'sys_io'))}); "
                f"perf stat {fmt(p_)} (builtin "
                f"{fmt(get(c, BUILTIN, 'sys_io_perf'))})")
        if self.runs:
            for case in self.cases:
                c = case["id"]
                key = "mibs" if c == "read-1m-qd8" else "iops"
                b, a = get(c, BUILTIN, key), get(c, OURS, key)
                r = ratio(a, b)
                what = "1M read bandwidth" if key == "mibs" else f"IOPS {c}"
                add(f"{what} >= 1.0x", "PASS" if r >= 1.0 else
                    ("FAIL" if not math.isnan(r) else "NO DATA"),
                    f"nbdaio {fmt(a)} / builtin {fmt(b)} = {fmt(r, 'x')}")
            base = get("randread-4k-qd32", OURS, "iops")
            for c in ("randread-4k-qd32-c2", "randread-4k-qd32-c4"):
                if (c, OURS, "iops") not in med:
                    continue
                a = get(c, OURS, "iops")
                r = ratio(a, base)
                add(f"{c}: no IOPS lost against conns=1", "PASS" if r >= 1.0
                    else ("FAIL" if not math.isnan(r) else "NO DATA"),
                    f"nbdaio conns>1 {fmt(a)} / conns=1 {fmt(base)} = "
                    f"{fmt(r, 'x')} (server CPU/IO {fmt(get(c, OURS, 'cpu_srv_us'))}"
                    f" vs {fmt(get('randread-4k-qd32', OURS, 'cpu_srv_us'))} us:"
                    " with the server pinned and saturated, its own cost per "
                    "connection decides)")
        if OURS in self.heap:
            h = self.heap[OURS]
            d = h["steady"]
            add(f"no heap allocation per IO ({h['small']['ios']} vs "
                f"{h['large']['ios']} IOs differ by < 10)",
                "PASS" if abs(d) < 10 else "FAIL",
                f"heap summary {h['small']['allocs']} vs "
                f"{h['large']['allocs']} allocs: difference {h['diff']}, of "
                f"which {h['eta']} are fio's timer-driven ETA buffer "
                f"(get_jobs_eta, every 250 ms of wall time): {d} remain")
        log()
        log("== issue-5 targets" +
            (" (smoke mode: numbers meaningless)" if self.args.smoke else ""))
        for name, status, detail in rows:
            log(f"  {status:13s} {name}: {detail}")
        with open(os.path.join(self.out, "targets.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["target", "status", "detail"])
            w.writerows(rows)

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
                        "ratio_vs_builtin"])
            for case in self.cases:
                for key, *_ in METRICS:
                    b = med[(case["id"], BUILTIN, key)][0]
                    for e in self.engines_for(case):
                        v, s = med[(case["id"], e, key)]
                        w.writerow([case["id"], key, e, f"{v:.6g}", f"{s:.3g}",
                                    "" if e == BUILTIN else
                                    f"{ratio(v, b):.4g}"])
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
        keys = [m for m in METRICS if m[0] not in ("mibs", "ctx_io", "sys_io")]
        with open(dat, "w") as f:
            f.write("# case " + " ".join(f"ratio_{k[0]}" for k in keys) +
                    " kiops_builtin kiops_nbdaio\n")
            for case in self.cases:
                vals = []
                for key, *_ in keys:
                    r = ratio(med[(case["id"], OURS, key)][0],
                              med[(case["id"], BUILTIN, key)][0])
                    vals.append("?" if math.isnan(r) else f"{min(r, 3):.4f}")
                for e in (BUILTIN, OURS):
                    v = med[(case["id"], e, "iops")][0]
                    vals.append("?" if math.isnan(v) else f"{v / 1000:.3f}")
                f.write(f"\"{case['id']}\" " + " ".join(vals) + "\n")
        png = os.path.join(self.out, "chart.png")
        ncase = len(self.cases)
        mode = "unpinned" if self.args.unpinned else \
            f"nbdkit on CPU {self.args.server_cpu}, fio on CPU {self.args.client_cpu}"
        term = "pngcairo size 1400,1000 font 'sans,10'"
        t = subprocess.run(["gnuplot", "-e", "set terminal"],
                           capture_output=True, text=True)
        if "pngcairo" not in t.stdout + t.stderr:
            term = "png size 1400,1000"
        plots = ", ".join(
            f"'{dat}' using {i + 2}{':xtic(1)' if i == 0 else ''} "
            f"title '{label}'"
            for i, (key, label, unit, lower) in enumerate(keys))
        gp = f"""
set terminal {term}
set output '{png}'
set datafile missing '?'
set multiplot layout 2,1 title "nbdaio.so vs fio built-in nbd engine - {mode}, {self.args.reps} rep(s) x {self.args.runtime}, medians"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -20 nomirror
set grid ytics
set key outside right top
set ylabel 'nbdaio / builtin'
set title 'ratios (IOPS: higher is better; latency, CPU, syscalls: lower is better; clipped at 3)'
set yrange [0:3]
set arrow 1 from -0.5,1 to {ncase - 0.5},1 nohead lw 2 dt 2 front
plot {plots}
unset arrow 1
set title 'IOPS (thousands, log scale)'
set ylabel 'kIOPS'
set logscale y
set yrange [*:*]
plot '{dat}' using {len(keys) + 2}:xtic(1) title 'builtin', '' using {len(keys) + 3} title 'nbdaio'
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
    # socket floor: the kernel's unix-socket cost of the same bytes
    def run_floor(self):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "socket-floor.c")
        exe = os.path.join(self.rawdir, "socket-floor")
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            fail("socket floor: no C compiler (cc)")
            return
        r = subprocess.run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra",
                            "-o", exe, src], capture_output=True, text=True)
        if r.returncode:
            fail(f"socket floor: build failed: {r.stderr.strip()[:300]}")
            return
        pins = ["-c", "-1", "-p", "-1"] if self.args.unpinned else \
            ["-c", str(self.args.client_cpu), "-p", str(self.args.server_cpu)]
        n = 20000 if self.args.smoke else 1000000
        ours = [r["iops"] for r in self.runs
                if r["case"] == "randread-4k-qd32" and r["engine"] == OURS]
        pace = None

        def one(pace_ns, tag):
            r = subprocess.run([exe, "-n", str(n), "-q", "32", "-b", "16",
                                "-d", str(pace_ns)] + pins,
                               capture_output=True, text=True, timeout=600)
            m = re.search(r"cpu_us_per_io=([0-9.]+) syscalls_per_io=([0-9.]+) "
                          r"iops=([0-9.]+)", r.stdout)
            if r.returncode or not m:
                fail(f"socket floor: {r.stdout.strip()} {r.stderr.strip()}"[:300])
                return None
            v = [float(x) for x in m.groups()]
            log(f"  socket-floor {tag}: {v[0]:.2f} us client CPU/IO, "
                f"{v[1]:.3f} syscalls/IO, {v[2]:.0f} IOPS (4k reads' bytes, "
                f"QD32, no NBD logic{f', peer paced {pace_ns} ns/reply' if pace_ns else ''})")
            return v
        for rep in range(max(1, self.args.reps)):
            v = one(0, f"r{rep} free ")
            if not v:
                return
            self.floor.append(v[0])
            if pace is None and ours:
                # spin so that the peer answers at nbdaio's QD32 pace (none
                # if nbdaio ran as fast as the free-running floor)
                pace = max(0, int(1e9 / median(ours) - 1e9 / v[2]))
            if pace:
                w = one(pace, f"r{rep} paced")
                if not w:
                    return
                self.floor_paced.append(w[0])

    def header(self):
        a = self.args
        st = os.stat(self.plugin)
        log("nbdaio benchmark (issue 5)" + ("  [SMOKE MODE]" if a.smoke else ""))
        log(f"  date        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
        log(f"  host        {platform.node()}, kernel {platform.release()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        log(f"  fio         {cmd_version(['fio', '--version'])} "
            f"(libnbd {dpkg_version('libnbd0')})")
        log(f"  nbdkit      {cmd_version(['nbdkit', '--version'])}, memory "
            f"{a.export_size}, unix socket")
        log(f"  plugin      {self.plugin} ({st.st_size} bytes, built "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))})")
        if a.unpinned:
            log("  pinning     none (both processes free on all CPUs)")
        else:
            log(f"  pinning     nbdkit CPU {a.server_cpu} "
                f"(affinity {self.server.affinity}), fio CPU {a.client_cpu}")
        if not a.heap_only:
            log(f"  runs        {a.reps} rep(s) x {a.runtime} per case and "
                "engine, engines alternating (order flipped every rep), no ramp")
        if a.nbdaio_opts:
            log(f"  nbdaio opts {' '.join(a.nbdaio_opts)}")
        for v in self.engines[2:]:
            log(f"  variant     {v}: nbdaio + {' '.join(self.variant_opts[v])}")
        if not a.heap_only:
            log(f"  strace      number_ios={a.strace_ios} and 2x (1M case: /50, at most 400)"
                if not a.no_strace else "  strace      skipped")
        if not a.no_heap:
            log(f"  valgrind    number_ios={a.heap_ios[0]} and {a.heap_ios[1]}"
                + (", both engines" if a.heap_builtin else ", nbdaio"))
        log(f"  out         {self.out}")
        log()

    # ------------------------------------------------------------------
    def main(self):
        a = self.args
        self.cases = [c for c in CASES if not a.cases or c["id"] in a.cases]
        tmp = tempfile.mkdtemp(prefix="nbdaio-bench-")
        try:
            self.server = Server(a, tmp)
            self.header()
            t0 = time.time()

            def step(what):
                nonlocal t0
                log(f"  [{what}: {time.time() - t0:.0f} s]")
                t0 = time.time()
            if not a.heap_only:
                self.prefill()
                self.run_cases()
                step("timed runs")
                if not a.no_strace:
                    log("system calls per IO (strace -f -c, difference of an "
                        "N and a 2N IO run):")
                    self.run_strace()
                    step("strace")
                    log("system calls per IO (perf stat on the syscall "
                        "tracepoints, same runs without ptrace):")
                    self.run_perf_syscalls()
                    step("perf stat")
            if not a.heap_only:
                log("socket floor (tests/bench/socket-floor.c):")
                self.run_floor()
                step("socket floor")
            if not a.no_heap:
                self.run_heap()
                step("valgrind")
            if a.perf:
                self.run_perf()
                step("perf record")
        except BenchError as e:
            fail(str(e))
        finally:
            if self.server:
                self.server.stop()
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
            "syscalls.csv, syscalls-perf.csv, heap.csv, targets.csv, chart.png, raw/)")
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
    p.add_argument("--export-size", default="1G")
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
        a.runtime = "1s"
        a.strace_ios = min(a.strace_ios, 500)
        a.heap_ios = [1000, 3000]
        a.heap_builtin = False
        a.out = a.out if a.out != "/tmp/nbdaio-bench" else "/tmp/nbdaio-bench-smoke"
    elif not a.no_heap_builtin:
        a.heap_builtin = True
    if a.no_heap_builtin:
        a.heap_builtin = False
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
