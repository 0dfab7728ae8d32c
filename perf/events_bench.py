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

Usage: python3 perf/events_bench.py [-n 100000] [-k 3] [--pipeline 1000] [--module PATH]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="SETs per run (default 100000)")
    ap.add_argument("-k", type=int, default=3, help="runs per measurement (median; default 3)")
    ap.add_argument("--pipeline", type=int, default=1000, help="commands per pipeline (1000)")
    ap.add_argument("--module", default=str(DEFAULT_MODULE))
    ap.add_argument("--timeout", type=float, default=120.0, help="max seconds to wait for events")
    args = ap.parse_args()
    if not Path(args.module).is_file():
        print(f"module not found: {args.module} (cargo build --release -p gearshift)")
        return 2
    n, k = args.n, args.k
    srv = Server(args.module).start()
    r = srv.client()
    failures = []
    try:
        r.execute_command("RG.CONFIGSET", "MaxExecutions", "1000")
        # 1. Writer alone.
        alone = []
        for rep in range(k):
            r.flushall()
            alone.append(n / write(srv.port, set_chunks(f"ev:{rep}:", n, args.pipeline)))
            print(f"writer alone      rep {rep + 1}: {fmt(alone[-1])} SET/s", flush=True)

        # 2. Async registration counting every event.
        assert r.execute_command("RG.PYEXECUTE", ASYNC_REG) == "OK"
        with_reg, ev_rate = [], []
        for rep in range(k):
            r.flushall()
            r.execute_command("RG.CLEARREGISTRATIONSSTATS")
            chunks = set_chunks(f"ev:{rep}:", n, args.pipeline)
            t0 = time.perf_counter()
            secs = write(srv.port, chunks)
            t_done, got = wait_counter(r, n, t0, args.timeout)
            if t_done is None:
                failures.append(f"rep {rep + 1}: only {got} of {n} events after {args.timeout:.0f}s")
                print(failures[-1], flush=True)
                break
            time.sleep(0.3)
            got = int(r.get(COUNTER) or 0)
            st = reg_stats(r)
            if got != n or st["numTriggered"] != n or st["numSuccess"] != n:
                failures.append(f"rep {rep + 1}: events:seen={got} stats={st}")
            with_reg.append(n / secs)
            ev_rate.append(n / t_done)
            print(
                f"with registration rep {rep + 1}: writer {fmt(with_reg[-1])} SET/s, "
                f"{n} events in {t_done:.3f}s = {fmt(ev_rate[-1])} events/s "
                f"(numTriggered={st['numTriggered']} numSuccess={st['numSuccess']} "
                f"numFailures={st['numFailures']})",
                flush=True,
            )
        unregister_all(r)

        # 3. Server time per SET, without and with a sync no-op registration.
        def usec_runs(label):
            vals = []
            for rep in range(k):
                r.flushall()
                r.config_resetstat()
                write(srv.port, set_chunks(f"ev:{rep}:", n, args.pipeline))
                vals.append(set_usec(r))
                print(f"{label:<30} rep {rep + 1}: SET {vals[-1]:.3f} usec/call", flush=True)
            return vals

        usec = {"no registration": usec_runs("no registration")}
        for label, script in SYNC_NOOPS.items():
            assert r.execute_command("RG.PYEXECUTE", script) == "OK"
            usec[label] = usec_runs(label)
            unregister_all(r)
        if not srv.alive():
            failures.append("server died")
    finally:
        r.close()
        srv.stop()

    med = statistics.median
    print()
    print(f"Command: `python3 perf/events_bench.py -n {n} -k {k} --pipeline {args.pipeline}`")
    print(f"N = {n:,} SETs per run, pipelines of {args.pipeline}, median of {k}\n")
    print("| measurement | median | runs |")
    print("|---|---|---|")
    print(f"| writer alone, SET/s | {fmt(med(alone))} | {', '.join(fmt(x) for x in alone)} |")
    if with_reg:
        print(f"| writer with async registration, SET/s | {fmt(med(with_reg))} | {', '.join(fmt(x) for x in with_reg)} |")
        print(f"| writer ratio (with / alone) | {med(with_reg) / med(alone):.1%} | |")
        print(f"| events processed/s (async foreach INCR) | {fmt(med(ev_rate))} | {', '.join(fmt(x) for x in ev_rate)} |")
    base = med(usec["no registration"])
    for label, vals in usec.items():
        extra = "" if label == "no registration" else f" (+{med(vals) - base:.2f} us)"
        print(f"| SET usec_per_call, {label} | {med(vals):.3f}{extra} | {', '.join(f'{v:.3f}' for v in vals)} |")
    if failures:
        print("\nFAILURES:\n" + "\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
