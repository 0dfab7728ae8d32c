#!/usr/bin/env python3
"""Events benchmark (issue 5): keyspace-event registrations under a pipelined writer.

Starts its own redis-server (free port, temp dir, a snapshot copy of the module) and measures,
each K times (median reported):

1. writer alone: N `SET ev:<rep>:<i> <i>` sent as raw RESP in pipelines of P (send P commands,
   read P replies, repeat), no registration -> SET/s;
2. with `GB().foreach(lambda x: execute('INCR', 'events:seen')).register('ev:*')`: the same
   writer -> SET/s, and events processed/s = N / (seconds from the first SET sent until
   `events:seen` == N; bounded wait). After a settle the counter must still be exactly N and
   numTriggered == numSuccess == N per run (every event counted, none dropped);
3. server time per SET (INFO commandstats `usec_per_call` of `set`, after CONFIG RESETSTAT)
   without a registration and with a `sync` no-op registration, for two no-ops:
   `GB().register('ev:*', mode='sync')` (no user code) and
   `GB().foreach(lambda x: None).register('ev:*', mode='sync')` (an empty Python callback).

In 3. it also reports the main thread's CPU time per SET (from /proc schedstat): sync
registrations run there, and CPU time moves less than `usec_per_call` (wall clock inside the
command) when other processes load the machine.

In 2. it also reports the server's CPU time per event (all redis-server threads: main plus
Gearshift's workers, from /proc, minus nothing): less sensitive to other load on the machine
than the rates, which are wall-clock.

Several `--module`s (e.g. `--module OLD.so --module NEW.so`): one server per build, started
together, each measurement's runs alternated between them (rep 1 of A, rep 1 of B, rep 2 of
A, ...), so the builds see the same machine load; one table column per build.

Usage: python3 perf/events_bench.py [-n 100000] [-k 3] [--pipeline 1000] [--module PATH ...]
Exit status: 0 ok, 1 a wrong count or a dead server, 2 a setup problem.
"""

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import Server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODULE = Path(os.environ.get("GEARSHIFT_MODULE", REPO / "target/release/libgearshift.so"))

ASYNC_REG = "GB().foreach(lambda x: execute('INCR', 'events:seen')).register('ev:*')"
SYNC_NOOPS = {
    "sync GB().register()": "GB().register('ev:*', mode='sync')",
    "sync foreach(lambda x: None)": "GB().foreach(lambda x: None).register('ev:*', mode='sync')",
}
COUNTER = "events:seen"


def set_chunks(prefix, n, per):
    """Raw RESP `SET <prefix><i> <i>`, in chunks of `per` commands."""
    out = []
    pre = prefix.encode()
    for start in range(0, n, per):
        parts = []
        for i in range(start, min(n, start + per)):
            k = b"%s%d" % (pre, i)
            v = b"%d" % i
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
        out.append((b"".join(parts), len(parts)))
    return out


def write(port, chunks):
    """Sends each chunk and reads its replies before the next one; returns seconds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        t0 = time.perf_counter()
        buf = b""
        for data, count in chunks:
            sock.sendall(data)
            seen = 0
            while seen < count:
                got = sock.recv(1 << 16)
                if not got:
                    raise RuntimeError("connection closed")
                buf += got
                lines = buf.count(b"\r\n")
                if lines >= count - seen:
                    if b"-" in buf[:1] or b"\r\n-" in buf:
                        raise RuntimeError(f"error reply: {buf[:200]!r}")
                    # Replies are single lines (+OK); keep any partial tail.
                    cut = 0
                    for _ in range(count - seen):
                        cut = buf.index(b"\r\n", cut) + 2
                    buf = buf[cut:]
                    seen = count
        return time.perf_counter() - t0
    finally:
        sock.close()


def wait_counter(r, n, t0, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = int(r.get(COUNTER) or 0)
        if v >= n:
            return time.perf_counter() - t0, v
        time.sleep(0.001)
    return None, int(r.get(COUNTER) or 0)


def unregister_all(r):
    for reg in r.execute_command("RG.DUMPREGISTRATIONS"):
        r.execute_command("RG.UNREGISTER", reg[1])


def reg_stats(r):
    regs = r.execute_command("RG.DUMPREGISTRATIONS")
    data = regs[0][7]
    return dict(zip(data[0:18:2], data[1:18:2]))


def set_usec(r):
    return float(r.info("commandstats")["cmdstat_set"]["usec_per_call"])


def fmt(x):
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def cpu_seconds(pid):
    """CPU seconds (user + system) used so far by every thread of process `pid`."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # the thread ended
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / tck


def main_thread_ns(pid):
    """CPU nanoseconds used so far by the main thread of process `pid` (schedstat: finer
    than the clock ticks of `stat`). Sync registrations run there, inside the SET."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


class Build:
    """One build under test: its server, client and measurements."""

    def __init__(self, module):
        self.name = Path(module).name
        self.srv = Server(module).start()
        self.r = self.srv.client()
        self.r.execute_command("RG.CONFIGSET", "MaxExecutions", "1000")
        self.alone, self.with_reg, self.ev_rate, self.cpu = [], [], [], []
        self.usec = {}
        self.main_cpu = {}
        self.failures = []

    def writer_alone(self, rep, n, pipeline):
        self.r.flushall()
        self.alone.append(n / write(self.srv.port, set_chunks(f"ev:{rep}:", n, pipeline)))
        print(f"{self.name}: writer alone      rep {rep + 1}: {fmt(self.alone[-1])} SET/s", flush=True)

    def with_registration(self, rep, n, pipeline, timeout):
        """One run of 2.; False once events went missing (no further runs)."""
        r = self.r
        r.flushall()
        r.execute_command("RG.CLEARREGISTRATIONSSTATS")
        chunks = set_chunks(f"ev:{rep}:", n, pipeline)
        cpu0 = cpu_seconds(self.srv.proc.pid)
        t0 = time.perf_counter()
        secs = write(self.srv.port, chunks)
        t_done, got = wait_counter(r, n, t0, timeout)
        if t_done is None:
            self.failures.append(f"rep {rep + 1}: only {got} of {n} events after {timeout:.0f}s")
            print(self.failures[-1], flush=True)
            return False
        cpu = cpu_seconds(self.srv.proc.pid) - cpu0
        time.sleep(0.3)
        got = int(r.get(COUNTER) or 0)
        st = reg_stats(r)
        if got != n or st["numTriggered"] != n or st["numSuccess"] != n:
            self.failures.append(f"rep {rep + 1}: events:seen={got} stats={st}")
        self.with_reg.append(n / secs)
        self.ev_rate.append(n / t_done)
        self.cpu.append(cpu / n * 1e6)
        print(
            f"{self.name}: with registration rep {rep + 1}: writer {fmt(self.with_reg[-1])} SET/s, "
            f"{n} events in {t_done:.3f}s = {fmt(self.ev_rate[-1])} events/s, "
            f"server CPU {self.cpu[-1]:.2f} us/event "
            f"(numTriggered={st['numTriggered']} numSuccess={st['numSuccess']} "
            f"numFailures={st['numFailures']})",
            flush=True,
        )
        return True

    def usec_run(self, label, rep, n, pipeline):
        r = self.r
        r.flushall()
        r.config_resetstat()
        chunks = set_chunks(f"ev:{rep}:", n, pipeline)
        ns0 = main_thread_ns(self.srv.proc.pid)
        write(self.srv.port, chunks)
        main_us = (main_thread_ns(self.srv.proc.pid) - ns0) / n / 1000
        self.usec.setdefault(label, []).append(set_usec(r))
        self.main_cpu.setdefault(label, []).append(main_us)
        print(
            f"{self.name}: {label:<30} rep {rep + 1}: SET {self.usec[label][-1]:.3f} usec/call, "
            f"main thread CPU {main_us:.3f} us/SET",
            flush=True,
        )

    def close(self):
        if not self.srv.alive():
            self.failures.append("server died")
        self.r.close()
        self.srv.stop()


def table(builds, n, k, pipeline, modules):
    med = statistics.median
    cmd = f"python3 perf/events_bench.py -n {n} -k {k} --pipeline {pipeline}"
    if len(modules) > 1:
        cmd += "".join(f" --module {m}" for m in modules)
    print()
    print(f"Command: `{cmd}`")
    print(f"N = {n:,} SETs per run, pipelines of {pipeline}, median of {k}\n")
    print("| measurement | " + " | ".join(f"{b.name} median (runs)" for b in builds) + " |")
    print("|---|" + "---|" * len(builds))

    def row(label, cell):
        print(f"| {label} | " + " | ".join(cell(b) for b in builds) + " |")

    def runs(vals, f=fmt):
        return f"{f(med(vals))} ({', '.join(f(x) for x in vals)})" if vals else "-"

    row("writer alone, SET/s", lambda b: runs(b.alone))
    row("writer with async registration, SET/s", lambda b: runs(b.with_reg))
    row("writer ratio (with / alone)", lambda b: f"{med(b.with_reg) / med(b.alone):.1%}" if b.with_reg else "-")
    row("events processed/s (async foreach INCR)", lambda b: runs(b.ev_rate))
    row("events/s ÷ writer-alone SET/s", lambda b: f"{med(b.ev_rate) / med(b.alone):.2f}" if b.ev_rate else "-")
    row("server CPU per event, us (async foreach INCR)", lambda b: runs(b.cpu, lambda x: f"{x:.2f}"))
    for what, name in [("usec", "SET usec_per_call"), ("main_cpu", "main-thread CPU per SET, us")]:
        for label in getattr(builds[0], what):

            def cell(b, label=label, what=what):
                got = getattr(b, what)
                vals = got.get(label, [])
                if not vals:
                    return "-"
                base = med(got["no registration"])
                extra = "" if label == "no registration" else f" (+{med(vals) - base:.2f} us)"
                return f"{med(vals):.3f}{extra} ({', '.join(f'{v:.3f}' for v in vals)})"

            row(f"{name}, {label}", cell)
    if len(builds) == 2 and all(b.ev_rate for b in builds):
        a, b = builds
        print(
            f"\n{b.name} / {a.name}: events/s x{med(b.ev_rate) / med(a.ev_rate):.2f}, "
            f"server CPU per event x{med(b.cpu) / med(a.cpu):.2f}"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="SETs per run (default 100000)")
    ap.add_argument("-k", type=int, default=3, help="runs per measurement (median; default 3)")
    ap.add_argument("--pipeline", type=int, default=1000, help="commands per pipeline (1000)")
    ap.add_argument("--module", action="append", help="a build to measure (repeatable; default: target/release)")
    ap.add_argument("--timeout", type=float, default=120.0, help="max seconds to wait for events")
    args = ap.parse_args()
    modules = args.module or [str(DEFAULT_MODULE)]
    for m in modules:
        if not Path(m).is_file():
            print(f"module not found: {m} (cargo build --release -p gearshift)")
            return 2
    n, k, pipe = args.n, args.k, args.pipeline
    builds = []
    try:
        builds = [Build(m) for m in modules]
        # 1. Writer alone.
        for rep in range(k):
            for b in builds:
                b.writer_alone(rep, n, pipe)
        # 2. Async registration counting every event.
        for b in builds:
            assert b.r.execute_command("RG.PYEXECUTE", ASYNC_REG) == "OK"
        going = list(builds)
        for rep in range(k):
            going = [b for b in going if b.with_registration(rep, n, pipe, args.timeout)]
        for b in builds:
            unregister_all(b.r)
        # 3. Server time per SET, without and with a sync no-op registration.
        for label, script in [("no registration", None), *SYNC_NOOPS.items()]:
            for b in builds:
                if script:
                    assert b.r.execute_command("RG.PYEXECUTE", script) == "OK"
            for rep in range(k):
                for b in builds:
                    b.usec_run(label, rep, n, pipe)
            for b in builds:
                unregister_all(b.r)
    finally:
        for b in builds:
            b.close()
    table(builds, n, k, pipe, modules)
    failures = [f"{b.name}: {f}" for b in builds for f in b.failures]
    if failures:
        print("\nFAILURES:\n" + "\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
