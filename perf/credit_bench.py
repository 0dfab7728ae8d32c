#!/usr/bin/env python3
"""The shuffle's credit window (`ShuffleCreditWindow`) on a 3-master Redis Cluster: the
two workloads of `cluster_bench.py` that move every record over the bus, run K times with
the window at W and at 0 (unlimited, no flow control), alternating, on the same loaded
cluster. Reported: median seconds for each and their ratio, so a default window can be
chosen that does not slow the shuffle down.

    python3 perf/credit_bench.py                  # N = 1,000,000, K = 5, W = 16
    python3 perf/credit_bench.py -n 200000 -k 7 -w 4
"""

import argparse
import datetime as dt
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loader  # noqa: E402
from cluster_bench import DEFAULT_MODULE, REPO, WORKLOADS, measure  # noqa: E402
from servers import Cluster  # noqa: E402

SHUFFLES = ["groupby age (repartition every record)", "collect every key"]


def canonical(reply):
    """The reply's records as sorted strings (a cheap check that both windows agree)."""
    results, errors = reply
    if errors:
        raise SystemExit(f"errors: {errors[:2]}")
    return sorted(results)


def set_window(cluster, w):
    for n in cluster.nodes:
        c = n.client()
        assert c.execute_command("RG.CONFIGSET", "ShuffleCreditWindow", str(w)) == ["OK"]
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("-w", type=int, default=16)
    ap.add_argument("--module", default=str(DEFAULT_MODULE))
    ap.add_argument("--only", choices=SHUFFLES, help="run this workload only")
    a = ap.parse_args()
    cluster = Cluster(a.module).start()
    try:
        _, t = loader.load_cluster(cluster.slot_owners(), a.n)
        print(f"loaded {a.n} hashes in {t:.1f} s")
        c = cluster.nodes[0].client()
        rows = []
        for name in [a.only] if a.only else SHUFFLES:
            times = {a.w: [], 0: []}
            answers = {}
            for _ in range(a.k):
                for w in (a.w, 0):
                    set_window(cluster, w)
                    secs, reply = measure(c, WORKLOADS[name])
                    times[w].append(secs)
                    answers[w] = canonical(reply)
            if answers[a.w] != answers[0]:
                raise SystemExit(f"{name}: answers differ between windows")
            med = {w: statistics.median(v) for w, v in times.items()}
            rows.append((name, med, times))
            print(f"{name:40s} window {a.w}: {med[a.w]:.3f} s  window 0: {med[0]:.3f} s  "
                  f"ratio {med[0] / med[a.w]:.3f}")
    finally:
        cluster.stop()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        f"# Shuffle credit window {a.w} vs 0 (unlimited), {stamp}",
        "",
        f"N = {a.n} hashes, K = {a.k} runs each (alternating), medians; 3 masters on one machine "
        f"({os.cpu_count()} cores). Command: `python3 perf/credit_bench.py -n {a.n} -k {a.k} -w {a.w}`",
        "",
        f"| Workload | window {a.w} | window 0 | speed (window {a.w} / window 0) | runs {a.w} | runs 0 |",
        "|---|---|---|---|---|---|",
    ]
    for name, med, times in rows:
        fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
        lines.append(f"| {name} | {med[a.w]:.3f} s | {med[0]:.3f} s | {med[0] / med[a.w]:.3f}x | "
                     f"{fmt(times[a.w])} | {fmt(times[0])} |")
    out = REPO / "perf" / "results" / f"credit-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
