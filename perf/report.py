"""Reporting: the machine description and the run's report.

machine_info() describes the box, the software and the module under test (CPU, memory, OS,
redis-server, redis-py, git commit, module size and hash, load average). stats() and
summarize() reduce the timings to medians and ranges (the ledger's payload); markdown() writes
the report's tables, answers, machine and scripts; plot() draws the PNG chart; fmt_rate(),
rate_cell() and ratio() format the figures.
"""

import contextlib
import datetime as dt
import hashlib
import os
import platform
import statistics
import subprocess
from pathlib import Path

import redis

import loader
from workloads import LUA_REFERENCE_TEXT, METHOD_LABEL, METHODS, REPO, RG12_REFERENCE, TARGETS, WORKLOADS


def machine_info(server_client, module_path):
    info = {"nproc": os.cpu_count()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    with contextlib.suppress(OSError):
        info["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    info["kernel"] = platform.release()
    info["os"] = _os_name()
    info["python"] = platform.python_version()
    info["redis_py"] = redis.__version__
    try:
        import hiredis  # noqa: F401

        info["hiredis"] = True
    except ImportError:
        info["hiredis"] = False
    srv = server_client.info("server")
    info["redis_server"] = srv.get("redis_version")
    with contextlib.suppress(redis.ResponseError):
        info["modules"] = [
            f"{m.get('name')} {m.get('ver')}" for m in server_client.execute_command("MODULE", "LIST")
        ]
    info["git_commit"] = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    info["git_dirty"] = bool(dirty)
    p = Path(module_path)
    with contextlib.suppress(OSError):
        st = p.stat()
        info["module"] = {
            "path": str(p),
            "size": st.st_size,
            "mtime": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat(timespec="seconds"),
            "sha256_12": hashlib.sha256(p.read_bytes()).hexdigest()[:12],
        }
    return info


def _os_name():
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def _git(*args):
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def fmt_rate(x):
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.0f}k" if x >= 1e5 else f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def stats(cell):
    if not cell or not cell["rate"] or cell["status"] != "ok":
        return None
    rates = cell["rate"]
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "median_seconds": statistics.median(cell["seconds"]),
        "runs": len(rates),
    }


def rate_cell(cell):
    if cell is None:
        return "—"
    st = stats(cell)
    if st is None:
        return {
            "unsupported": "not supported yet",
            "n/a": "n/a",
            "wrong": "**WRONG**",
            "error": "**ERROR**",
        }.get(cell["status"], cell["status"])
    if st["runs"] == 1:
        return f"{fmt_rate(st['median'])}/s"
    return f"{fmt_rate(st['median'])}/s ({fmt_rate(st['min'])}–{fmt_rate(st['max'])})"


def ratio(a, b):
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.1f}x" if a / b < 100 else f"{a / b:.0f}x"


def summarize(suite, workloads):
    """Per-workload summary dict (the ledger's payload)."""
    out = {}
    for w in workloads:
        row = {}
        for m, cell in suite.results.get(w, {}).items():
            st = stats(cell)
            row[m] = {"status": cell["status"], **(st or {})}
            if cell["message"]:
                row[m]["message"] = cell["message"]
        if w == "W6" and getattr(suite, "w6_writer", None):
            row["writer_set_per_s"] = {
                k: statistics.median(v) for k, v in suite.w6_writer.items() if v
            }
        out[w] = row
    return out


def w1_ratio_table(suite, workloads):
    """Issue #13's targets are rates relative to W1 in the same run: W2-W4 >= 0.8, W7 >= 0.95."""
    w1 = stats(suite.results.get("W1", {}).get("gearshift"))
    rows = [w for w in workloads if w not in ("W1", "W6")]
    if not w1 or not rows:
        return []
    out = ["Gearshift rate ÷ Gearshift W1 rate, same run (issue #13: W2-W4 ≥ 0.80, W7 arrow ≥ 0.95):\n",
           "| Workload | ÷ W1 |", "|---|---|"]
    for w in rows:
        st = stats(suite.results.get(w, {}).get("gearshift"))
        out.append(f"| {w} | {st['median'] / w1['median']:.2f} |" if st else f"| {w} | — |")
    out.append("")
    return out


def markdown(suite, workloads, meta, summary):
    n = suite.n
    lines = []
    title = "quick" if meta["quick"] else "full"
    lines.append(f"# Gearshift perf suite — {meta['timestamp']} ({title} run)\n")
    lines.append(
        f"N = {n:,} hashes `person:i` {{name, age}} (seed {loader.SEED}), K = {meta['k']} runs per "
        f"workload and method; loaded in {meta['load_seconds']:.2f}s "
        f"({fmt_rate(n / meta['load_seconds'])} hashes/s), used_memory {meta['used_memory']}. "
        f"Rates are records (hashes) scanned per second of wall time seen by the client, "
        f"median (min–max); W6 is events processed per second.\n"
    )
    lines.append(f"Command: `{meta['command']}`\n")
    lines.append(
        "| Workload | Gearshift | Lua EVAL | client redis-py | GS ÷ Lua | GS ÷ client "
        "| RedisGears 1.2 ‡ | GS ÷ RG 1.2 | target | meets |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        spec = WORKLOADS[w]
        res = suite.results.get(w, {})
        base = spec.get("base")
        gs = stats(res.get("gearshift"))
        gs_rate = gs["median"] if gs else None
        if base:
            bres = suite.results.get(base, {})
            lua_cell = f"= {base}: {rate_cell(bres.get('lua'))}" if bres.get("lua") else "—"
            cli_cell = f"= {base}: {rate_cell(bres.get('client'))}" if bres.get("client") else "—"
            lua_st, cli_st = stats(bres.get("lua")), stats(bres.get("client"))
        else:
            lua_cell, cli_cell = rate_cell(res.get("lua")), rate_cell(res.get("client"))
            lua_st, cli_st = stats(res.get("lua")), stats(res.get("client"))
        ref = RG12_REFERENCE.get(w) or RG12_REFERENCE.get(base)
        target = TARGETS.get(w)
        meets = "—"
        if target and gs_rate is not None:
            meets = "yes" if gs_rate >= target else "no"
        name = f"{w} {spec['title']}"
        lines.append(
            f"| {name} | {rate_cell(res.get('gearshift'))} | {lua_cell} | {cli_cell} "
            f"| {ratio(gs_rate, lua_st and lua_st['median'])} "
            f"| {ratio(gs_rate, cli_st and cli_st['median'])} "
            f"| {fmt_rate(ref) + '/s' if ref else '—'} | {ratio(gs_rate, ref)} "
            f"| {fmt_rate(target) + '/s' if target else '—'} | {meets} |"
        )
    lines.append("")
    lines.append(
        "‡ RedisGears 1.2 on 1,000,000 hashes, measured on this machine kind by an earlier session "
        f"(issue #6), **not in this run**; {LUA_REFERENCE_TEXT}. Rows W7a-f compare with the Lua and "
        "client figures of the workload they vectorise. Targets (issue #6): W1, W5 ≥ 1M/s; "
        "W2-W4 ≥ 500k/s (meant for N = 1,000,000).\n"
    )
    if "W6" in summary and summary["W6"].get("writer_set_per_s"):
        ws = summary["W6"]["writer_set_per_s"]
        lines.append(f"W6 pipelined writer ({suite.args.events:,} SETs per run, raw RESP, 1,000 per chunk), median SET/s:\n")
        lines.append("| writer alone | with client-side subscriber (notifications on) | with Gearshift registration |")
        lines.append("|---|---|---|")
        lines.append(
            f"| {fmt_rate(ws.get('none'))}/s | {fmt_rate(ws.get('client'))}/s | "
            f"{fmt_rate(ws.get('gearshift')) + '/s' if ws.get('gearshift') else 'not run'} |"
        )
        lines.append("")
    lines.extend(w1_ratio_table(suite, workloads))
    lines.append("Median seconds per run:\n")
    lines.append("| Workload | Gearshift | Lua EVAL | client redis-py |")
    lines.append("|---|---|---|---|")
    for w in workloads:
        res = suite.results.get(w, {})
        cells = []
        for m in METHODS:
            st = stats(res.get(m))
            cells.append(f"{st['median_seconds']:.3f}" if st else "—")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("## Answers\n")
    if suite.problems:
        lines.append("**FAILED** — wrong answers or errors:\n")
        lines.extend(f"- {p}" for p in suite.problems)
    else:
        lines.append(
            "Every method that ran returned the same answer, equal to the ground truth computed "
            "from the generated data (floats compared with a relative tolerance of 1e-9)."
        )
    if suite.notes:
        lines.append("\nSkipped (not failed):\n")
        lines.extend(f"- {x}" for x in suite.notes)
    if meta.get("guard"):
        lines.append(f"\nQuick-mode regression guard: {meta['guard']}")
    lines.append("\n## Machine\n")
    mi = meta["machine"]
    for k in ("cpu", "nproc", "memory_gib", "os", "kernel", "redis_server", "modules", "python",
              "redis_py", "hiredis", "git_commit", "git_dirty", "module", "loadavg_start",
              "loadavg_end"):
        if k in mi:
            lines.append(f"- {k}: {mi[k]}")
    lines.append("\n## Scripts\n")
    for w in workloads:
        for m, s in suite.scripts.get(w, {}).items():
            s1 = s.strip().replace("\n", " ⏎ ")
            lines.append(f"- {w} {METHOD_LABEL[m]}: `{s1}`")
    return "\n".join(lines) + "\n"


def plot(suite, workloads, path, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        ("gearshift", "Gearshift", "#d62728"),
        ("lua", "Lua EVAL", "#1f77b4"),
        ("client", "client redis-py", "#2ca02c"),
        ("rg12", "RedisGears 1.2 (earlier session, ref.)", "#999999"),
    ]
    width = 0.2
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(workloads) + 3), 5.5))
    for i, (key, label, color) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for j, w in enumerate(workloads):
            res = suite.results.get(w, {})
            if key == "rg12":
                val = RG12_REFERENCE.get(w)
                if val is None:
                    continue
                xs.append(j + (i - 1.5) * width)
                ys.append(val)
                lo.append(0)
                hi.append(0)
                continue
            st = stats(res.get(key))
            if st is None:
                cell = res.get(key)
                if cell is not None:
                    txt = {"unsupported": "not\nsupported\nyet", "wrong": "WRONG", "error": "ERROR"}.get(
                        cell["status"], cell["status"])
                    ax.text(j + (i - 1.5) * width, 1.1e3, txt, ha="center", va="bottom", fontsize=7,
                            color=color, rotation=0)
                continue
            xs.append(j + (i - 1.5) * width)
            ys.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        if not xs:
            continue
        hatch = "//" if key == "rg12" else None
        ax.bar(xs, ys, width, label=label, color=color, hatch=hatch,
               yerr=[lo, hi] if key != "rg12" else None, capsize=2, edgecolor="black", linewidth=0.4)
        for x, y, h in zip(xs, ys, hi):
            ax.text(x, (y + h) * 1.1, fmt_rate(y), ha="center", va="bottom", fontsize=6, rotation=90)
    for j, w in enumerate(workloads):
        t = TARGETS.get(w)
        if t:
            ax.hlines(t, j - 2 * width, j + 2 * width, colors="black", linestyles="dashed", linewidth=1)
    ax.set_yscale("log")
    top = max([1e6] + [p.get_height() for p in ax.patches])
    ax.set_ylim(1e3, top * 5)  # headroom for the value labels
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([w + ("\n(events/s)" if w == "W6" else "") for w in workloads])
    ax.set_ylabel("records/s (log scale), median; bars = min–max")
    mi = meta["machine"]
    ax.set_title(
        f"Gearshift perf, N={suite.n:,}, K={meta['k']} — {meta['timestamp']}\n"
        f"{mi.get('cpu', '?')}, {mi.get('nproc')} cores, redis {mi.get('redis_server')}, "
        f"commit {(mi.get('git_commit') or '?')[:10]}{'+dirty' if mi.get('git_dirty') else ''}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper right")
    ax.text(0.01, 0.98, "dashed: target", transform=ax.transAxes, fontsize=7, va="top")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
