#!/usr/bin/env python3
"""A/B of two builds on 3-master clusters (issue #13): wall and CPU seconds per run.

Starts one cluster per build (OLD, NEW) and one standalone server per build, loads the same
N hashes into each, then runs every workload K rounds, alternating OLD and NEW (cluster,
then standalone). Per run it records the wall time and the CPU seconds (user + system, from
/proc/<pid>/stat) the servers spent: the sum over the three shards for a cluster. On a shared
2-core box the wall time mostly shows the other processes' load; the CPU seconds show the
work a build does per run. Prints medians.

    python3 perf/cluster_ab.py OLD.so NEW.so -n 300000 -k 7
    python3 perf/cluster_ab.py OLD.so NEW.so -w groupby -w collect
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loader  # noqa: E402
from cluster_bench import WORKLOADS, add_parser_arg, cpu_seconds  # noqa: E402
from servers import Cluster, Server  # noqa: E402

SHORT = {"groupby": "groupby age (repartition every record)", "collect": "collect every key"}


def timed(client, pids, script):
    c0, t0 = cpu_seconds(pids), time.perf_counter()
    results, errors = client.execute_command("RG.PYEXECUTE", script)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pids) - c0
    if errors:
        raise SystemExit(f"errors: {errors[:2]}")
    return wall, cpu, len(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("-n", type=int, default=300_000)
    ap.add_argument("-k", type=int, default=7)
    ap.add_argument("-w", action="append", help="workload (groupby, collect or a cluster_bench name)")
    ap.add_argument("--no-standalone", action="store_true")
    add_parser_arg(ap)
    a = ap.parse_args()
    names = [SHORT.get(w, w) for w in (a.w or ["groupby", "collect"])]
    targets = {}  # label -> (client, pids)
    started = []
    try:
        for build, so in (("old", a.old), ("new", a.new)):
            cl = Cluster(so).start()
            started.append(cl)
            loader.load_cluster(cl.slot_owners(), a.n)
            targets[f"{build} cluster"] = (cl.nodes[0].client(parser=a.parser), [n.proc.pid for n in cl.nodes])
            if not a.no_standalone:
                s = Server(so).start()
                started.append(s)
                loader.load("127.0.0.1", s.port, a.n)
                targets[f"{build} standalone"] = (s.client(parser=a.parser), [s.proc.pid])
        print(f"N = {a.n}, K = {a.k} rounds alternated, {a.parser} reply parser; "
              "medians of wall s / CPU s of the servers")  # fmt: skip
        for name in names:
            runs = {label: [] for label in targets}
            for _ in range(a.k):
                for label, (client, pids) in targets.items():
                    runs[label].append(timed(client, pids, WORKLOADS[name]))
            counts = {label: r[0][2] for label, r in runs.items()}
            if len(set(counts.values())) != 1:
                raise SystemExit(f"{name}: result counts differ: {counts}")
            print(f"\n{name}  (load average {os.getloadavg()[0]:.1f})")
            for label, r in runs.items():
                wall = statistics.median(x[0] for x in r)
                cpu = statistics.median(x[1] for x in r)
                print(f"  {label:16s} wall {wall:6.3f} s  CPU {cpu:6.3f} s   "
                      f"(CPU runs: {' '.join(f'{x[1]:.2f}' for x in r)})")
    finally:
        for s in started:
            s.stop()


if __name__ == "__main__":
    main()
