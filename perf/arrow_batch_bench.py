#!/usr/bin/env python3
"""Side-by-side timing of the arrow-format batch steps on two module builds (issue #13).

Starts one redis-server per build, loads N hashes `person:<i> {name, age}` into each, then
runs every flow on every build in alternation (ROUNDS rounds after a warm-up), timing each
blocking RG.PYEXECUTE at the client, and prints the medians and the ratio.

    python3 perf/arrow_batch_bench.py OLD.so NEW.so [--n 200000] [--rounds 7]
"""

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import redis

PA = "import pyarrow as pa, pyarrow.compute as pc\n"
AGE = "pc.cast(pc.map_lookup(rb['value'], 'age', 'first'), pa.int64())"
FLOWS = {
    "identity -> count": PA + "GB().mapBatch(lambda rb: rb, format='arrow').count().run('person:*')",
    "pc filter -> count": PA + "GB().mapBatch(lambda rb: rb.filter(pc.greater_equal(" + AGE + ", 18)), format='arrow').count().run('person:*')",
    "ages -> avg": PA + "GB().mapBatch(lambda rb: " + AGE + ", format='arrow').avg().run('person:*')",
}
NEW_ONLY = {
    "filterBatch -> count": PA + "GB().filterBatch(lambda rb: pc.greater_equal(" + AGE + ", 18), format='arrow').count().run('person:*')",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(module, n):
    d = tempfile.mkdtemp(prefix="arrowbench-")
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", d, "--logfile", d + "/log", "--loadmodule", module]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    r = redis.Redis(port=port, socket_timeout=600)
    for _ in range(200):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    pipe = r.pipeline(transaction=False)
    families = ["Smith", "Sanchez", "Pibbles", "Jones", "Lee", "Kim", "Diaz", "Ng", "Roe", "Poe"]
    for i in range(n):
        pipe.hset(f"person:{i}", mapping={"name": f"P{i} {families[i % 10]}", "age": i % 100})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return proc, r, d


def timed(r, script):
    t = time.perf_counter()
    res = r.execute_command("RG.PYEXECUTE", script)
    dt = time.perf_counter() - t
    assert not res[1], res[1][:1]
    return dt, res[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    servers = {"old": start(a.old, a.n), "new": start(a.new, a.n)}
    try:
        flows = [(name, s, ["old", "new"]) for name, s in FLOWS.items()]
        flows += [(name, s, ["new"]) for name, s in NEW_ONLY.items()]
        times = {(f, b): [] for f, _, builds in flows for b in builds}
        answers = {}
        for rnd in range(a.rounds + 1):
            for f, script, builds in flows:
                for b in builds if rnd % 2 == 0 else reversed(builds):
                    dt, res = timed(servers[b][1], script)
                    answers.setdefault(f, set()).add(str(res))
                    if rnd > 0:
                        times[(f, b)].append(dt)
        for f, _, builds in flows:
            med = {b: statistics.median(times[(f, b)]) * 1000 for b in builds}
            line = "  ".join(f"{b} {m:7.1f} ms" for b, m in med.items())
            ratio = f"  old/new {med['old'] / med['new']:.2f}x" if "old" in med else ""
            print(f"{f:22s} {line}{ratio}   answers {sorted(answers[f])}")
    finally:
        for proc, r, d in servers.values():
            proc.terminate()
            proc.wait()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
