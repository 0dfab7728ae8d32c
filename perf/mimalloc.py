"""The mimalloc column of a full run: the module built with its opt-in `mimalloc` feature
(`cargo build --release -p gearshift --features mimalloc`, into target/mimalloc so the main
build stays as it is) runs the same scan workloads on a second server with the same data,
Gearshift only, K runs each; the report gets a table of both medians and the difference.

Skipped with --quick (CI) and with --no-mimalloc. W6 (events) is not repeated: it measures the
event path and the subscriber client, which the allocator barely touches.
"""

import os
import subprocess
import time

import loader
from report import fmt_rate, stats
from servers import Server
from suite import ServerDied, Suite
from workloads import REPO

TARGET = REPO / "target" / "mimalloc"


def build():
    """Builds the mimalloc module; returns its path, or raises RuntimeError with cargo's tail."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    cmd = ["cargo", "build", "--release", "-p", "gearshift", "--features", "mimalloc"]
    print(f"\n== mimalloc: {' '.join(cmd)} (CARGO_TARGET_DIR={TARGET})", flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("mimalloc build failed:\n" + "\n".join(p.stderr.splitlines()[-20:]))
    print(f"   built in {time.perf_counter() - t0:.0f}s", flush=True)
    return TARGET / "release" / "libgearshift.so"


def run(args, truth):
    """Runs the scan workloads with the mimalloc build; returns its Suite (or raises)."""
    module = build()
    server = Server(module, None)
    try:
        server.start()
        loaded, _ = loader.load("127.0.0.1", server.port, args.n)
        if loaded != truth:
            raise RuntimeError("the mimalloc server's data differs from the main run's")
        suite = Suite(args, server, truth)
        suite.gearshift_only = True
        try:
            suite.run([w for w in args.workloads if w != "W6"])
        except ServerDied as err:
            suite.problems.append(f"redis-server (mimalloc build) died. Log tail:\n```\n{err}\n```")
        return suite
    finally:
        server.stop()


def compare(main_suite, mi_suite, workloads):
    """Per workload: Gearshift's median rate with the system allocator and with mimalloc."""
    rows = {}
    for w in workloads:
        a = stats(main_suite.results.get(w, {}).get("gearshift"))
        b = stats(mi_suite.results.get(w, {}).get("gearshift"))
        if a and b:
            rows[w] = {
                "system": a["median"],
                "mimalloc": b["median"],
                "change_percent": round(100.0 * (b["median"] / a["median"] - 1.0), 1),
            }
    return rows


def markdown(rows, problems):
    lines = [
        "\n## mimalloc (opt-in feature) vs the system allocator\n",
        "Gearshift only, same data and K; median records/s. Built with "
        "`cargo build --release -p gearshift --features mimalloc` (target/mimalloc).\n",
        "| Workload | system allocator | mimalloc | difference |",
        "|---|---|---|---|",
    ]
    for w, r in rows.items():
        lines.append(
            f"| {w} | {fmt_rate(r['system'])}/s | {fmt_rate(r['mimalloc'])}/s | "
            f"{r['change_percent']:+.1f}% |"
        )
    lines.extend(f"\n- {p}" for p in problems)
    return "\n".join(lines) + "\n"
