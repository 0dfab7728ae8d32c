#!/usr/bin/env python3
"""Gearshift on a 3-master Redis Cluster vs one standalone server, side by side.

Both get the same N hashes `person:i {name, age}` (perf/loader.py). Each workload runs K
times on each, alternating, and the answers must agree (order aside). Reported: median
seconds, records/s and cluster/standalone ratio. The cluster's shards share this machine's
cores with each other, so the ratio shows the distributed path's cost as much as its
parallelism: collect and repartition move records over the Redis Cluster bus. Also reported:
the median CPU seconds the servers spent per run (user + system from /proc, summed over the
three shards); on a shared machine the wall-clock ratio shows the other processes' load as
much as the builds' work.

    python3 perf/cluster_bench.py                 # N = 1,000,000, K = 3
    python3 perf/cluster_bench.py -n 200000 -k 5
    python3 perf/cluster_bench.py -n 300000 -k 3 --parser python   # redis-py's pure-Python parser

The client is redis-py on both sides, with its C reply parser (`hiredis`, what redis-py uses
when the package is installed) unless `--parser python`: collect's wall time with the
pure-Python parser is mostly the client parsing 300,000 reply strings.
"""

import argparse
import ast
import datetime as dt
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loader  # noqa: E402
from servers import PARSERS, Cluster, Server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODULE = Path(os.environ.get("GEARSHIFT_MODULE", REPO / "target/release/libgearshift.so"))
FAMILY = "lambda x: x['value']['name'].split(' ')[1]"

WORKLOADS = {
    "count": "GB().count().run('person:*')",
    "map+avg": "GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')",
    "countby family": f"GB().countby({FAMILY}).run('person:*')",
    "aggregate max age": (
        "GB().map(lambda x: int(x['value']['age']))"
        ".aggregate(0, lambda a, x: max(a, x), lambda a, x: max(a, x)).run('person:*')"
    ),
    "groupby age (repartition every record)": (
        "GB().groupby(lambda x: x['value']['age'], lambda k, a, r: (a or 0) + 1)"
        ".map(lambda x: (x['key'], x['value'])).run('person:*')"
    ),
    "collect every key": "GB().map(lambda x: x['key']).run('person:*')",
}


def normalise(reply):
    results, errors = reply
    if errors:
        raise SystemExit(f"errors: {errors[:2]}")
    vals = []
    for r in results:
        try:
            vals.append(ast.literal_eval(r))
        except (ValueError, SyntaxError):
            vals.append(r)
    return sorted(vals, key=repr)


def cpu_seconds(pids):
    """User + system CPU seconds the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def measure(client, pids, script):
    c0, t0 = cpu_seconds(pids), time.perf_counter()
    reply = client.execute_command("RG.PYEXECUTE", script)
    return time.perf_counter() - t0, cpu_seconds(pids) - c0, reply


def add_parser_arg(ap):
    ap.add_argument("--parser", choices=sorted(PARSERS), default="hiredis",
                    help="redis-py's reply parser, the same for both sides (default hiredis, "
                    "its C parser; python: the pure-Python one)")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--module", default=str(DEFAULT_MODULE))
    add_parser_arg(ap)
    a = ap.parse_args()
    single = Server(a.module).start()
    cluster = Cluster(a.module).start()
    try:
        rows = run(a, single, cluster)
    finally:
        single.stop()
        cluster.stop()
    report(a, rows)


def run(a, single, cluster):
    _, t_single = loader.load("127.0.0.1", single.port, a.n)
    _, t_cluster = loader.load_cluster(cluster.slot_owners(), a.n)
    print(f"loaded {a.n} hashes: standalone {t_single:.1f} s, cluster {t_cluster:.1f} s")
    s, c = single.client(parser=a.parser), cluster.nodes[0].client(parser=a.parser)
    pids = {"standalone": [single.proc.pid], "cluster": [n.proc.pid for n in cluster.nodes]}
    rows = []
    for name, script in WORKLOADS.items():
        times = {"standalone": [], "cluster": []}
        cpus = {"standalone": [], "cluster": []}
        answers = {}
        for _ in range(a.k):
            for label, client in (("standalone", s), ("cluster", c)):
                t, cpu, reply = measure(client, pids[label], script)
                times[label].append(t)
                cpus[label].append(cpu)
                answers[label] = normalise(reply)
        if answers["standalone"] != answers["cluster"]:
            raise SystemExit(f"{name}: answers differ: {answers['standalone'][:3]} vs {answers['cluster'][:3]}")
        med = {k: statistics.median(v) for k, v in times.items()}
        cpu = {k: statistics.median(v) for k, v in cpus.items()}
        rows.append((name, script, med, cpu))
        print(
            f"{name:40s} standalone {med['standalone']:.3f} s  cluster {med['cluster']:.3f} s  "
            f"cluster/standalone speed {med['standalone'] / med['cluster']:.2f}x  "
            f"CPU s standalone {cpu['standalone']:.2f} cluster {cpu['cluster']:.2f}"
        )
    return rows


def module_digest(path):
    """The first 12 hex digits of the module's sha256: which build a results file measured."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def report(a, rows):
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        f"# Cluster vs standalone, {stamp}",
        "",
        f"N = {a.n} hashes, K = {a.k} runs each (alternating), medians; 3 masters on one "
        f"machine ({os.cpu_count()} cores), load average {os.getloadavg()[0]:.1f} at the end; client "
        f"redis-py with the {a.parser} reply parser on both sides. Command: "
        f"`python3 perf/cluster_bench.py -n {a.n} -k {a.k} --parser {a.parser}`; module {a.module} "
        f"(sha256 {module_digest(a.module)}).",
        "",
        "| Workload | Standalone | 3-shard cluster | Speed ratio | CPU s standalone / cluster |",
        "|---|---|---|---|---|",
    ]
    for name, _, med, cpu in rows:
        rate = lambda t: f"{t:.3f} s ({a.n / t / 1000:.0f}k rec/s)"  # noqa: E731
        lines.append(
            f"| {name} | {rate(med['standalone'])} | {rate(med['cluster'])} | "
            f"{med['standalone'] / med['cluster']:.2f}x | {cpu['standalone']:.2f} / {cpu['cluster']:.2f} |"
        )
    lines += ["", "Scripts:", ""] + [f"- {name}: `{script}`" for name, script, _, _ in rows]
    out = REPO / "perf" / "results" / f"cluster-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
