#!/usr/bin/env python3
"""Gearshift throughput suite: Gearshift vs a Lua EVAL vs a client-side redis-py script.

Starts its own redis-server with the Gearshift module loaded (own temp dir, own free port,
killed at exit), loads N hashes person:i {name, age} (perf/loader.py), then runs every workload
with every method K times, checks that all methods return the same answer as the ground truth
of the generated data, and writes a Markdown report, a PNG chart and a ledger line.

    python3 perf/run.py              # full run: N = 1,000,000, K = 3  (several minutes)
    python3 perf/run.py --quick      # N = 20,000, K = 3: answers + regression guard vs Lua (CI)

A full run also builds the module with its opt-in `mimalloc` feature (target/mimalloc) and
runs the scan workloads once more with it, Gearshift only, reporting the difference
(perf/mimalloc.py; --no-mimalloc skips it, --quick never runs it).

Exit status: 0 all answers right; 1 a wrong answer, an error (a refused W6 register() or W7
probe included), a server crash, or (--quick) a failed regression guard; 2 a setup problem
(missing package, module, redis-server).
See perf/README.md.

Modules: workloads.py (constants, the workload table), answers.py (parsing and comparing
answers), methods.py (Gearshift and client-side methods), suite.py (the runner), report.py
(machine description, Markdown report, chart), servers.py (the redis-server under test),
loader.py (the data); this file holds the command line.
"""

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if importlib.util.find_spec("redis") is None:  # before the perf modules, which import it
    sys.exit(
        "perf/run.py needs redis-py: python3 -m pip install redis matplotlib\n"
        "(matplotlib is only needed for the chart; --no-plot skips it)"
    )

import loader  # noqa: E402
import mimalloc  # noqa: E402
from methods import Unsupported, probe_gearshift  # noqa: E402
from report import fmt_rate, machine_info, markdown, plot, stats, summarize  # noqa: E402
from servers import Server  # noqa: E402
from suite import ServerDied, Suite  # noqa: E402
from workloads import ALL_WORKLOADS, PROBE_PATTERN, QUICK_GUARD_VS_LUA, QUICK_K, REPO, RESULTS  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Gearshift vs Lua EVAL vs client-side redis-py throughput suite (perf/README.md)."
    )
    ap.add_argument("--quick", action="store_true",
                    help=f"N=20,000, K={QUICK_K}, no ledger, report to a temp dir; checks answers and "
                         "that Gearshift's median rate is at least a floor times Lua EVAL's in the same "
                         "run: " + ", ".join(f"{w} {f:g}x" for w, f in QUICK_GUARD_VS_LUA.items()) + " (CI)")
    ap.add_argument("-n", type=int, default=None, help="hashes to load (default 1,000,000; quick 20,000)")
    ap.add_argument("-k", type=int, default=None, help=f"runs per workload and method (default 3; quick {QUICK_K})")
    ap.add_argument("--events", type=int, default=None,
                    help="W6 SETs per run (default max(5,000, N/5))")
    ap.add_argument("--port", type=int, default=None, help="port for our own redis-server (default: a free one)")
    ap.add_argument("--module", default=os.environ.get("GEARSHIFT_MODULE", str(REPO / "target/release/libgearshift.so")),
                    help="module to load (default target/release/libgearshift.so or $GEARSHIFT_MODULE)")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG chart (no matplotlib needed)")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                    help="comma-separated subset, e.g. W1,W2,W7 (W7 = W7a-W7f); default all")
    ap.add_argument("--out", default=None,
                    help="report directory (default perf/results; quick: a temp dir)")
    ap.add_argument("--ledger", dest="ledger", action="store_true", default=None,
                    help="append to perf/results/ledger.jsonl (default on, off with --quick)")
    ap.add_argument("--no-ledger", dest="ledger", action="store_false")
    ap.add_argument("--no-mimalloc", action="store_true",
                    help="skip the mimalloc column (a second build and server; never run with --quick)")
    args = ap.parse_args(argv)
    args.n = args.n if args.n is not None else (20_000 if args.quick else 1_000_000)
    args.k = args.k if args.k is not None else (QUICK_K if args.quick else 3)
    args.events = args.events if args.events is not None else max(5_000, args.n // 5)
    if args.ledger is None:
        args.ledger = not args.quick
    if args.n < 1 or args.k < 1 or args.events < 1:
        ap.error("-n, -k and --events must be positive")
    wanted = []
    for w in (x.strip() for x in args.workloads.split(",") if x.strip()):
        match = [x for x in ALL_WORKLOADS if x.upper() == w.upper()] or [
            x for x in ALL_WORKLOADS if x.upper().startswith(w.upper()) and w.upper() == "W7"
        ]
        if not match:
            ap.error(f"unknown workload {w!r}; choose from {', '.join(ALL_WORKLOADS)} (or W7)")
        wanted.extend(x for x in match if x not in wanted)
    args.workloads = [w for w in ALL_WORKLOADS if w in wanted]
    return args


def check_setup(args):
    problems = []
    if not shutil.which("redis-server"):
        problems.append("redis-server not found on PATH (apt-get install redis-server)")
    if not Path(args.module).is_file():
        problems.append(
            f"Gearshift module not found at {args.module}; build it with "
            "`cargo build --release -p gearshift` (or pass --module PATH)"
        )
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            problems.append("matplotlib is missing: python3 -m pip install matplotlib (or use --no-plot)")
    if problems:
        for p in problems:
            print(f"perf/run.py: {p}", file=sys.stderr)
        sys.exit(2)


def closing_line(suite, meta):
    """A plain 'N passed, N failed, N skipped' line: one check per workload and method run."""
    passed = failed = skipped = 0
    for cells in suite.results.values():
        for cell in cells.values():
            if cell["status"] == "ok":
                passed += 1
            elif cell["status"] in ("wrong", "error"):
                failed += 1
            elif cell["status"] == "unsupported":
                skipped += 1
    if meta.get("guard"):
        if meta["guard"].startswith("passed"):
            passed += 1
        else:
            failed += 1
    # A crash or cross-method disagreement is a problem without a failed cell: count it too.
    failed = max(failed, 1) if suite.problems else failed
    return f"perf: {passed} passed, {failed} failed, {skipped} skipped"


def guard_vs_lua(suite, workloads, meta):
    """Sets meta["guard"]; a workload below its floor (or without timings) is a problem."""
    parts, ok = [], True
    for w, floor in QUICK_GUARD_VS_LUA.items():
        if w not in workloads:
            continue
        gs = stats(suite.results.get(w, {}).get("gearshift"))
        lua = stats(suite.results.get(w, {}).get("lua"))
        if not (gs and lua):
            parts.append(f"{w} has no correct timing for both Gearshift and Lua EVAL")
            ok = False
            continue
        ratio = gs["median"] / lua["median"]
        ok = ok and ratio >= floor
        parts.append(
            f"{w} {fmt_rate(gs['median'])}/s vs Lua {fmt_rate(lua['median'])}/s = {ratio:.2f}x "
            f"({'>=' if ratio >= floor else 'BELOW'} {floor:g}x)"
        )
    if not parts:
        return
    meta["guard"] = f"{'passed' if ok else 'FAILED'}: " + "; ".join(parts)
    if not ok:
        suite.problems.append("quick-mode regression guard " + meta["guard"])


def run_mimalloc(args, suite, truth, meta):
    """The mimalloc column of a full run (meta["mimalloc"]); returns its report section."""
    if args.quick or args.no_mimalloc:
        return ""
    try:
        mi_suite = mimalloc.run(args, truth)
    except (RuntimeError, OSError, ServerDied) as err:
        suite.problems.append(f"mimalloc column: {err}")
        return mimalloc.markdown({}, [f"not measured: {err}"])
    suite.problems.extend(f"mimalloc build: {p}" for p in mi_suite.problems)
    rows = mimalloc.compare(suite, mi_suite, args.workloads)
    meta["mimalloc"] = rows
    for w, r in rows.items():
        print(f"  mimalloc {w}: {r['change_percent']:+.1f}% vs the system allocator", flush=True)
    return mimalloc.markdown(rows, mi_suite.problems)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    check_setup(args)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    now = dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) if args.out else (
        Path(tempfile.gettempdir()) / "gearshift-perf-quick" if args.quick else RESULTS
    )
    out_dir.mkdir(parents=True, exist_ok=True)

    server = Server(args.module, args.port)
    exit_code = 0
    suite = None
    meta = {
        "timestamp": stamp,
        "quick": args.quick,
        "n": args.n,
        "k": args.k,
        "events": args.events,
        "command": " ".join(["python3 perf/run.py", *(sys.argv[1:] if argv is None else argv)]),
    }
    try:
        server.start()
        print(f"redis-server with Gearshift on 127.0.0.1:{server.port} (dir {server.dir})", flush=True)
        r = server.client()
        meta["machine"] = machine_info(r, args.module)
        try:
            probe_gearshift(r, f"GB().count().run('{PROBE_PATTERN}')", "RG.PYEXECUTE sanity probe")
        except Unsupported as err:
            print(f"perf/run.py: the module does not answer RG.PYEXECUTE: {err}", file=sys.stderr)
            return 1
        print(f"loading {args.n:,} hashes ...", flush=True)
        truth, load_secs = loader.load("127.0.0.1", server.port, args.n)
        dbsize = r.dbsize()
        if dbsize != args.n:
            print(f"perf/run.py: DBSIZE is {dbsize} after loading {args.n}", file=sys.stderr)
            return 1
        meta["load_seconds"] = load_secs
        meta["used_memory"] = r.info("memory").get("used_memory_human")
        print(f"loaded in {load_secs:.2f}s ({fmt_rate(args.n / load_secs)} hashes/s)", flush=True)

        suite = Suite(args, server, truth)
        try:
            suite.run(args.workloads)
        except ServerDied as err:
            suite.problems.append(f"redis-server died (Gearshift crash?). Log tail:\n```\n{err}\n```")
            print(f"\n!! redis-server died. Log tail:\n{err}", flush=True)

        with contextlib.suppress(OSError):
            meta["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

        # Quick-mode regression guard: Gearshift vs Lua EVAL, medians of this same run.
        if args.quick:
            guard_vs_lua(suite, args.workloads, meta)

        mi_section = run_mimalloc(args, suite, truth, meta)
        summary = summarize(suite, args.workloads)
        report = markdown(suite, args.workloads, meta, summary) + mi_section
        md_path = out_dir / f"{stamp}{'-quick' if args.quick else ''}.md"
        md_path.write_text(report)
        png_path = None
        if not args.no_plot:
            png_path = md_path.with_suffix(".png")
            try:
                plot(suite, args.workloads, png_path, meta)
                report = report.replace(
                    "\n## Answers", f"\n![chart]({png_path.name})\n\n## Answers", 1
                )
                md_path.write_text(report)
            except Exception as err:  # noqa: BLE001 - a chart problem must not hide the results
                print(f"perf/run.py: could not draw the chart: {err}", file=sys.stderr)
                png_path = None
        if args.ledger:
            RESULTS.mkdir(parents=True, exist_ok=True)
            entry = {
                **{k: v for k, v in meta.items() if k != "machine"},
                "machine": meta["machine"],
                "ok": not suite.problems,
                "problems": suite.problems,
                "results": summary,
                "report": str(md_path.relative_to(REPO)) if md_path.is_relative_to(REPO) else str(md_path),
            }
            with open(RESULTS / "ledger.jsonl", "a") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")

        print("\n" + report)
        print(f"report: {md_path}" + (f"\nchart:  {png_path}" if png_path else ""))
        if args.ledger:
            print(f"ledger: {RESULTS / 'ledger.jsonl'}")
        if suite.problems:
            print("\nFAILED:", *suite.problems, sep="\n- ", file=sys.stderr)
            exit_code = 1
        else:
            print("\nperf suite: all answers correct" + (f"; guard {meta['guard']}" if meta.get("guard") else ""))
        sys.stderr.flush()
        print(closing_line(suite, meta), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping redis-server", file=sys.stderr)
        exit_code = 130
    finally:
        server.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
