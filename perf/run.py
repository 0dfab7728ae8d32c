#!/usr/bin/env python3
"""Gearshift throughput suite: Gearshift vs a Lua EVAL vs a client-side redis-py script.

Starts its own redis-server with the Gearshift module loaded (own temp dir, own free port,
killed at exit), loads N hashes person:i {name, age} (perf/loader.py), then runs every workload
with every method K times, checks that all methods return the same answer as the ground truth
of the generated data, and writes a Markdown report, a PNG chart and a ledger line.

    python3 perf/run.py              # full run: N = 1,000,000, K = 3  (several minutes)
    python3 perf/run.py --quick      # N = 20,000, K = 1: answers + gross regression guard (CI)

Exit status: 0 all answers right; 1 a wrong answer, an error, a server crash, or (--quick) a
failed regression guard; 2 a setup problem (missing package, module, redis-server).
See perf/README.md.
"""

import argparse
import ast
import contextlib
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

PERF = Path(__file__).resolve().parent
REPO = PERF.parent
LUA_DIR = PERF / "lua"
RESULTS = PERF / "results"
sys.path.insert(0, str(PERF))

import loader  # noqa: E402

try:
    import redis
except ImportError:
    sys.exit(
        "perf/run.py needs redis-py: python3 -m pip install redis matplotlib\n"
        "(matplotlib is only needed for the chart; --no-plot skips it)"
    )

PATTERN = "person:*"
PROBE_PATTERN = "gearshift-perf-probe-nomatch:*"
SOCKET_TIMEOUT = 1800  # a blocking EVAL/RG.PYEXECUTE over 1M keys may take a while on 2 busy cores

METHODS = ["gearshift", "lua", "client"]
METHOD_LABEL = {"gearshift": "Gearshift", "lua": "Lua EVAL", "client": "client redis-py"}

# RedisGears 1.2 and Lua EVAL on 1,000,000 hashes, measured by an earlier session on this machine
# kind (issue #6). Static reference only: not measured in this run.
RG12_REFERENCE = {"W1": 71e3, "W2": 28e3, "W3": 33e3, "W4": 39e3, "W5": 74e3, "W6": 18.3e3}
LUA_REFERENCE_TEXT = "Lua EVAL then: W1-W4 330-440k/s, W5 840k/s"
TARGETS = {"W1": 1e6, "W2": 5e5, "W3": 5e5, "W4": 5e5, "W5": 1e6}
QUICK_GUARD_RATIO = 3.0  # --quick: Gearshift W1 must beat client-side W1 by this factor

# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------

W7A_SCRIPT = (
    "GB().mapBatch(lambda b: [(sum(int(r['value']['age']) for r in b), len(b))])"
    ".aggregate((0, 0), lambda a, r: (a[0] + r[0], a[1] + r[1]), lambda a, r: (a[0] + r[0], a[1] + r[1]))"
    ".map(lambda a: a[0] / a[1])"
    ".run('person:*')"
)
W7B_SCRIPT = """import collections
def family_counts(batch):
    return list(collections.Counter(r['value']['name'].split(' ')[1] for r in batch).items())
GB().mapBatch(family_counts).aggregateby(lambda kv: kv[0], 0, lambda k, a, kv: a + kv[1], lambda k, a, v: a + v).run('person:*')
"""
W7C_SCRIPT = (
    "GB().filterBatch(lambda b: [int(r['value']['age']) > 50 for r in b]).count().run('person:*')"
)

WORKLOADS = {
    "W1": dict(
        title="count records",
        kind="int",
        truth="count",
        gearshift="GB().count().run('person:*')",
        lua="w1_count.lua",
    ),
    "W2": dict(
        title="map(age) + avg()",
        kind="float",
        truth="avg_age",
        gearshift="GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')",
        lua="w2_avg_age.lua",
    ),
    "W3": dict(
        title="countby(family name)",
        kind="dict",
        truth="count_by_family",
        gearshift="GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')",
        lua="w3_countby_family.lua",
    ),
    "W4": dict(
        title="filter(age > 50) + count()",
        kind="int",
        truth="count_age_over_50",
        gearshift="GB().filter(lambda x: int(x['value']['age']) > 50).count().run('person:*')",
        lua="w4_count_age_over_50.lua",
    ),
    "W5": dict(
        title="KeysOnlyReader count",
        kind="int",
        truth="count",
        gearshift="GB('KeysOnlyReader').count().run('person:*')",
        lua="w5_count_keys.lua",
    ),
    "W6": dict(
        title="events: foreach(INCR) on ev:*",
        kind="events",
        gearshift=(
            "GB().foreach(lambda x: execute('INCR', 'perf:w6:processed'))"
            ".register(prefix='ev:*', eventTypes=['set'])"
        ),
    ),
    "W7a": dict(
        title="mapBatch: avg age (vectorised W2)",
        kind="float",
        truth="avg_age",
        base="W2",
        gearshift=W7A_SCRIPT,
        probe="GB().mapBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
    "W7b": dict(
        title="mapBatch: countby family (vectorised W3)",
        kind="dict",
        truth="count_by_family",
        base="W3",
        gearshift=W7B_SCRIPT,
        probe="GB().mapBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
    "W7c": dict(
        title="filterBatch: count age > 50 (vectorised W4)",
        kind="int",
        truth="count_age_over_50",
        base="W4",
        gearshift=W7C_SCRIPT,
        probe="GB().filterBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
}
ALL_WORKLOADS = list(WORKLOADS)


class Unsupported(Exception):
    """The server does not support what the workload needs yet (reported, not failed)."""


class WrongAnswer(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The redis-server under test
# --------------------------------------------------------------------------------------------


from servers import Server  # noqa: E402


# --------------------------------------------------------------------------------------------
# Answers: parsing and comparing
# --------------------------------------------------------------------------------------------


def parse_gearshift(kind, reply):
    """RG.PYEXECUTE run() reply [[results...], [errors...]] -> normalized answer."""
    if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], list)):
        raise WrongAnswer(f"unexpected reply shape: {short(reply)}")
    results, errors = reply
    if errors:
        raise WrongAnswer(f"execution reported {len(errors)} error(s), first: {error_text(errors[0])}")
    if kind == "int":
        if not results:
            return 0  # count() on empty input gives no record (REFERENCE §3)
        if len(results) != 1:
            raise WrongAnswer(f"expected one record, got {len(results)}: {short(results)}")
        return int(results[0])
    if kind == "float":
        if not results:
            return None
        if len(results) != 1:
            raise WrongAnswer(f"expected one record, got {len(results)}: {short(results)}")
        return float(results[0])
    if kind == "dict":
        out = {}
        for rec in results:
            d = ast.literal_eval(rec)
            key, value = d["key"], int(d["value"])
            if key in out:
                raise WrongAnswer(f"key {key!r} appears twice in the results")
            out[key] = value
        return out
    raise ValueError(kind)


def parse_lua(kind, reply):
    if kind == "int":
        return int(reply)
    if kind == "float":
        return None if reply is None else float(reply)
    if kind == "dict":
        return {reply[i]: int(reply[i + 1]) for i in range(0, len(reply), 2)}
    raise ValueError(kind)


def same(kind, a, b):
    if kind == "float":
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def describe(kind, answer):
    if kind == "dict" and isinstance(answer, dict):
        total = sum(answer.values())
        top = sorted(answer.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return f"{len(answer)} keys, total {total}, top {top}"
    return repr(answer)


def diff_dicts(a, b, limit=5):
    keys = sorted(set(a) | set(b))
    out = [f"{k}: {a.get(k)} != {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(out[:limit]) + (f" (+{len(out) - limit} more)" if len(out) > limit else "")


def short(x, n=300):
    s = repr(x) if not isinstance(x, str) else x
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def gearshift_exec(r, script):
    return r.execute_command("RG.PYEXECUTE", script)


def error_text(err):
    """The useful line of an error reply: the last line of a formatted traceback.

    Gearshift (like RedisGears) sends a Python exception as str() of the list of traceback lines.
    """
    text = str(err).strip()
    if text.startswith("["):
        with contextlib.suppress(ValueError, SyntaxError):
            lines = ast.literal_eval(text)
            if isinstance(lines, list) and lines:
                return str(lines[-1]).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else text


def probe_gearshift(r, script, what):
    """Run a probe script; raise Unsupported if the server rejects it."""
    try:
        reply = gearshift_exec(r, script)
    except redis.ResponseError as err:
        raise Unsupported(f"{what}: {error_text(err)}") from None
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list) and reply[1]:
        raise Unsupported(f"{what}: {error_text(reply[1][0])}")
    return reply


def client_scan_batches(r, batch=1000):
    keys = []
    for key in r.scan_iter(match=PATTERN, count=1000):
        keys.append(key)
        if len(keys) == batch:
            yield keys
            keys = []
    if keys:
        yield keys


def client_hgetall_batches(r):
    for keys in client_scan_batches(r):
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        yield pipe.execute()


def client_w1(r):
    return sum(1 for hashes in client_hgetall_batches(r) for h in hashes if h)


def client_w2(r):
    total = n = 0
    for hashes in client_hgetall_batches(r):
        for h in hashes:
            total += int(h["age"])
            n += 1
    return total / n if n else None


def client_w3(r):
    counts = {}
    for hashes in client_hgetall_batches(r):
        for h in hashes:
            family = h["name"].split(" ")[1]
            counts[family] = counts.get(family, 0) + 1
    return counts


def client_w4(r):
    return sum(1 for hashes in client_hgetall_batches(r) for h in hashes if int(h["age"]) > 50)


def client_w5(r):
    return sum(len(keys) for keys in client_scan_batches(r))


CLIENT_FUNCS = {"W1": client_w1, "W2": client_w2, "W3": client_w3, "W4": client_w4, "W5": client_w5}


# --------------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------------


class Suite:
    def __init__(self, args, server, truth):
        self.args = args
        self.srv = server
        self.r = server.client()
        self.truth = truth
        self.n = args.n
        self.results = {}  # workload -> method -> dict
        self.problems = []  # human-readable failures (wrong answers, errors, crashes)
        self.notes = []  # unsupported features and other non-failures
        self.scripts = {}

    # ---- bookkeeping

    def cell(self, w, m):
        return self.results.setdefault(w, {}).setdefault(
            m, {"status": "pending", "seconds": [], "rate": [], "answer": None, "message": ""}
        )

    def fail(self, w, m, msg):
        c = self.cell(w, m)
        c["status"] = "wrong" if c["status"] != "error" else "error"
        c["message"] = c["message"] or msg
        self.problems.append(f"{w} {METHOD_LABEL.get(m, m)}: {msg}")
        print(f"  !! {w} {m}: {msg}", flush=True)

    def error(self, w, m, msg):
        c = self.cell(w, m)
        c["status"] = "error"
        c["message"] = msg
        self.problems.append(f"{w} {METHOD_LABEL.get(m, m)}: {msg}")
        print(f"  !! {w} {m}: {msg}", flush=True)

    def unsupported(self, w, m, msg):
        c = self.cell(w, m)
        c["status"] = "unsupported"
        c["message"] = msg
        self.notes.append(f"{w} {METHOD_LABEL.get(m, m)} not supported yet, skipped: {msg}")
        print(f"  -- {w} {m}: not supported, skipped ({msg})", flush=True)

    def check_alive(self):
        if not self.srv.alive():
            raise ServerDied(self.srv.log_tail())

    # ---- scan workloads (W1-W5, W7)

    def run_scan_workload(self, w):
        spec = WORKLOADS[w]
        kind = spec["kind"]
        expected = self.truth[spec["truth"]]
        methods = ["gearshift"] if "base" in spec else METHODS
        callers = {}
        script = spec["gearshift"]
        self.scripts[w] = {"gearshift": script}
        if "probe" in spec:
            try:
                probe_gearshift(self.r, spec["probe"], "probe " + short(spec["probe"], 80))
            except Unsupported as err:
                self.unsupported(w, "gearshift", str(err))
                return
        callers["gearshift"] = lambda: parse_gearshift(kind, gearshift_exec(self.r, script))
        if "lua" in methods:
            lua_src = (LUA_DIR / spec["lua"]).read_text()
            self.scripts[w]["lua"] = f"perf/lua/{spec['lua']}"
            callers["lua"] = lambda: parse_lua(kind, self.r.eval(lua_src, 0, PATTERN))
        if "client" in methods:
            self.scripts[w]["client"] = f"perf/run.py:{CLIENT_FUNCS[w].__name__}"
            callers["client"] = lambda: CLIENT_FUNCS[w](self.r)

        for m in methods:
            self.cell(w, m)["status"] = "ok"
        # Interleave methods rep by rep so a noisy neighbour on the box hurts all of them alike.
        for rep in range(self.args.k):
            for m in methods:
                c = self.cell(w, m)
                if c["status"] != "ok":
                    continue
                t0 = time.perf_counter()
                try:
                    answer = callers[m]()
                except WrongAnswer as err:
                    self.fail(w, m, str(err))
                    self.check_alive()
                    continue
                except redis.ResponseError as err:
                    self.error(w, m, f"error reply: {error_text(err)}")
                    continue
                except (redis.ConnectionError, redis.TimeoutError) as err:
                    self.check_alive()
                    self.error(w, m, f"{type(err).__name__}: {err}")
                    continue
                secs = time.perf_counter() - t0
                c["seconds"].append(secs)
                c["rate"].append(self.n / secs)
                c["answer"] = answer
                ok = same(kind, answer, expected)
                print(
                    f"  {w} {m:<9} rep {rep + 1}/{self.args.k}: {secs:8.3f}s "
                    f"{fmt_rate(self.n / secs):>8} records/s  answer {'ok' if ok else 'WRONG'}",
                    flush=True,
                )
                if not ok:
                    detail = (
                        diff_dicts(answer, expected)
                        if kind == "dict" and isinstance(answer, dict)
                        else f"got {describe(kind, answer)}, expected {describe(kind, expected)}"
                    )
                    self.fail(w, m, f"wrong answer: {detail}")
        # Cross-method agreement is implied by every method matching the ground truth; say so
        # explicitly when they disagree among themselves too.
        answers = {m: self.cell(w, m)["answer"] for m in methods if self.cell(w, m)["seconds"]}
        ms = list(answers)
        for a, b in zip(ms, ms[1:]):
            if not same(kind, answers[a], answers[b]):
                self.problems.append(
                    f"{w}: {METHOD_LABEL[a]} and {METHOD_LABEL[b]} disagree: "
                    f"{describe(kind, answers[a])} vs {describe(kind, answers[b])}"
                )

    # ---- W6: events

    def run_w6(self):
        w = "W6"
        m_events = self.args.events
        host, port = "127.0.0.1", self.srv.port
        timeout = max(60.0, m_events / 2000.0)
        self.scripts[w] = {
            "gearshift": WORKLOADS[w]["gearshift"],
            "client": "perf/run.py:w6_subscriber (PSUBSCRIBE __keyspace@0__:ev:* + INCR per event)",
        }
        self.w6_writer = {}  # label -> list of SET/s
        counter = "perf:w6:processed"

        def write(label, rep):
            chunks = loader.set_commands(f"ev:{label}{rep}:", m_events)
            secs = loader.pipe(host, port, chunks)
            self.w6_writer.setdefault(label, []).append(m_events / secs)
            return secs

        def wait_counter(t0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                v = int(self.r.get(counter) or 0)
                if v >= m_events:
                    return time.perf_counter() - t0, v
                time.sleep(0.002)
            return None, int(self.r.get(counter) or 0)

        def settle_and_check(method, rep, t_done):
            c = self.cell(w, method)
            if t_done is None:
                got = int(self.r.get(counter) or 0)
                self.fail(w, method, f"rep {rep + 1}: only {got} of {m_events} events processed after {timeout:.0f}s")
                return
            time.sleep(0.2)
            got = int(self.r.get(counter) or 0)
            if got != m_events:
                self.fail(w, method, f"rep {rep + 1}: {got} events processed for {m_events} SETs")
                return
            c["seconds"].append(t_done)
            c["rate"].append(m_events / t_done)
            c["answer"] = got
            print(
                f"  W6 {method:<9} rep {rep + 1}/{self.args.k}: {m_events} events in {t_done:7.3f}s "
                f"{fmt_rate(m_events / t_done):>8} events/s, writer "
                f"{fmt_rate(self.w6_writer[method][-1]):>8} SET/s",
                flush=True,
            )

        # 1. Writer alone: no registration, no keyspace notifications.
        self.r.config_set("notify-keyspace-events", "")
        for rep in range(self.args.k):
            write("none", rep)
            print(f"  W6 writer alone rep {rep + 1}/{self.args.k}: {fmt_rate(self.w6_writer['none'][-1])} SET/s", flush=True)

        # 2. Client side: keyspace notifications + a subscriber process that INCRs per event.
        self.cell(w, "client")["status"] = "ok"
        self.cell(w, "lua")["status"] = "n/a"
        self.cell(w, "lua")["message"] = "Lua has no event trigger"
        self.r.config_set("notify-keyspace-events", "K$")
        ctx = multiprocessing.get_context("fork")
        try:
            for rep in range(self.args.k):
                self.r.delete(counter)
                ready = ctx.Event()
                sub = ctx.Process(
                    target=w6_subscriber,
                    args=(port, "ev:*", counter, m_events, ready, timeout),
                    daemon=True,
                )
                sub.start()
                try:
                    if not ready.wait(15):
                        self.error(w, "client", "subscriber did not subscribe within 15s")
                        break
                    t0 = time.perf_counter()
                    write("client", rep)
                    t_done, _ = wait_counter(t0)
                    settle_and_check("client", rep, t_done)
                finally:
                    sub.join(5)
                    if sub.is_alive():
                        sub.kill()
                        sub.join(5)
                if self.cell(w, "client")["status"] != "ok":
                    break
        finally:
            self.r.config_set("notify-keyspace-events", "")
        self.check_alive()

        # 3. Gearshift: register foreach(INCR) on ev:* (probe = the registration itself).
        self.r.delete(counter)
        try:
            reply = gearshift_exec(self.r, WORKLOADS[w]["gearshift"])
        except redis.ResponseError as err:
            self.unsupported(w, "gearshift", f"register(): {error_text(err)}")
            return
        if reply not in ("OK", b"OK"):
            self.unsupported(w, "gearshift", f"register() replied {short(reply)}")
            return
        self.cell(w, "gearshift")["status"] = "ok"
        try:
            for rep in range(self.args.k):
                self.r.delete(counter)
                t0 = time.perf_counter()
                write("gearshift", rep)
                t_done, _ = wait_counter(t0)
                self.check_alive()
                settle_and_check("gearshift", rep, t_done)
                if self.cell(w, "gearshift")["status"] != "ok":
                    break
        finally:
            if self.srv.alive():
                unregister_all(self.r)

    # ---- everything

    def run(self, workloads):
        # W6 writes keys and leaves registration state behind: run it last so it cannot
        # slow the scan workloads measured after it (the table keeps W1..W7 order).
        for w in sorted(workloads, key=lambda w: w == "W6"):
            print(f"\n== {w}: {WORKLOADS[w]['title']}", flush=True)
            try:
                if w == "W6":
                    self.run_w6()
                else:
                    self.run_scan_workload(w)
            except ServerDied:
                raise
            except Exception as err:  # noqa: BLE001 - a suite bug or an unexpected reply
                self.check_alive()
                self.error(w, "gearshift", f"{type(err).__name__}: {err}")
                traceback.print_exc()
            self.check_alive()


class ServerDied(Exception):
    pass


def w6_subscriber(port, pattern, counter, n, ready, timeout):
    """Client-side W6: what a user does without Gearshift (runs in its own process)."""
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    p = r.pubsub()
    p.psubscribe(f"__keyspace@0__:{pattern}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        msg = p.get_message(timeout=1.0)
        if msg and msg["type"] == "psubscribe":
            break
    ready.set()
    seen = 0
    deadline = time.monotonic() + timeout + 15
    while seen < n and time.monotonic() < deadline:
        msg = p.get_message(timeout=1.0)
        if msg and msg["type"] == "pmessage" and msg["data"] == "set":
            r.incr(counter)
            seen += 1
    p.close()
    r.close()


def unregister_all(r):
    try:
        regs = r.execute_command("RG.DUMPREGISTRATIONS")
        for reg in regs or []:
            with contextlib.suppress(redis.ResponseError):
                r.execute_command("RG.UNREGISTER", reg[1])
    except redis.ResponseError as err:
        print(f"  (could not unregister the W6 registration: {err})", flush=True)


# --------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


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
        f"(issue #6), **not in this run**; {LUA_REFERENCE_TEXT}. Rows W7a-c compare with the Lua and "
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


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Gearshift vs Lua EVAL vs client-side redis-py throughput suite (perf/README.md)."
    )
    ap.add_argument("--quick", action="store_true",
                    help="N=20,000, K=1, no ledger, report to a temp dir; checks answers and that "
                         f"Gearshift W1 is >= {QUICK_GUARD_RATIO:g}x client-side (CI)")
    ap.add_argument("-n", type=int, default=None, help="hashes to load (default 1,000,000; quick 20,000)")
    ap.add_argument("-k", type=int, default=None, help="runs per workload and method (default 3; quick 1)")
    ap.add_argument("--events", type=int, default=None,
                    help="W6 SETs per run (default max(5,000, N/5))")
    ap.add_argument("--port", type=int, default=None, help="port for our own redis-server (default: a free one)")
    ap.add_argument("--module", default=os.environ.get("GEARSHIFT_MODULE", str(REPO / "target/release/libgearshift.so")),
                    help="module to load (default target/release/libgearshift.so or $GEARSHIFT_MODULE)")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG chart (no matplotlib needed)")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                    help="comma-separated subset, e.g. W1,W2,W7 (W7 = W7a,W7b,W7c); default all")
    ap.add_argument("--out", default=None,
                    help="report directory (default perf/results; quick: a temp dir)")
    ap.add_argument("--ledger", dest="ledger", action="store_true", default=None,
                    help="append to perf/results/ledger.jsonl (default on, off with --quick)")
    ap.add_argument("--no-ledger", dest="ledger", action="store_false")
    args = ap.parse_args(argv)
    args.n = args.n if args.n is not None else (20_000 if args.quick else 1_000_000)
    args.k = args.k if args.k is not None else (1 if args.quick else 3)
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

        # Quick-mode gross regression guard.
        if args.quick and "W1" in args.workloads:
            gs = stats(suite.results.get("W1", {}).get("gearshift"))
            cl = stats(suite.results.get("W1", {}).get("client"))
            if gs and cl:
                ok = gs["median"] >= QUICK_GUARD_RATIO * cl["median"]
                meta["guard"] = (
                    f"{'passed' if ok else 'FAILED'}: Gearshift W1 {fmt_rate(gs['median'])}/s vs client-side "
                    f"{fmt_rate(cl['median'])}/s = {gs['median'] / cl['median']:.1f}x "
                    f"(must be >= {QUICK_GUARD_RATIO:g}x)"
                )
                if not ok:
                    suite.problems.append("quick-mode regression guard " + meta["guard"])
            else:
                meta["guard"] = "FAILED: W1 has no correct timing for both Gearshift and client-side"
                suite.problems.append(meta["guard"])

        summary = summarize(suite, args.workloads)
        report = markdown(suite, args.workloads, meta, summary)
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
