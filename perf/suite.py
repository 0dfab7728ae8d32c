"""The runner: Suite runs the workloads with every method against one server and records,
per workload and method, the timings, the answers and any failure.

Scan workloads (W1-W5, W7) run the methods interleaved rep by rep and check every answer
against the ground truth of the generated data; W6 measures events per second for the
client-side subscriber and for a Gearshift registration. A server crash raises ServerDied.
"""

import contextlib
import multiprocessing
import time
import traceback

import redis

import loader
from answers import WrongAnswer, describe, diff_dicts, error_text, parse_gearshift, parse_lua, same, short
from methods import CLIENT_FUNCS, Unsupported, gearshift_exec, probe_gearshift, w6_subscriber
from report import fmt_rate
from workloads import LUA_DIR, METHOD_LABEL, METHODS, PATTERN, WORKLOADS


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
        self.gearshift_only = False  # the mimalloc pass (perf/mimalloc.py) times Gearshift alone

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

    def check_alive(self):
        if not self.srv.alive():
            raise ServerDied(self.srv.log_tail())

    # ---- scan workloads (W1-W5, W7)

    def run_scan_workload(self, w):
        spec = WORKLOADS[w]
        kind = spec["kind"]
        expected = self.truth[spec["truth"]]
        methods = ["gearshift"] if "base" in spec or self.gearshift_only else METHODS
        callers = {}
        script = spec["gearshift"]
        self.scripts[w] = {"gearshift": script}
        if "probe" in spec:
            try:
                probe_gearshift(self.r, spec["probe"], "probe " + short(spec["probe"], 80))
            except Unsupported as err:
                # The batch API exists: a refused probe is a regression, not a missing feature.
                self.error(w, "gearshift", f"probe failed: {err}")
                return
        callers["gearshift"] = lambda: parse_gearshift(kind, gearshift_exec(self.r, script))
        if "lua" in methods:
            lua_src = (LUA_DIR / spec["lua"]).read_text()
            self.scripts[w]["lua"] = f"perf/lua/{spec['lua']}"
            callers["lua"] = lambda: parse_lua(kind, self.r.eval(lua_src, 0, PATTERN))
        if "client" in methods:
            self.scripts[w]["client"] = f"perf/methods.py:{CLIENT_FUNCS[w].__name__}"
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
            "client": "perf/methods.py:w6_subscriber (PSUBSCRIBE __keyspace@0__:ev:* + INCR per event)",
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
            self.error(w, "gearshift", f"register(): {error_text(err)}")
            return
        if reply not in ("OK", b"OK"):
            self.error(w, "gearshift", f"register() replied {short(reply)}")
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
    """redis-server is gone (a Gearshift crash?); the message is its log tail."""


def unregister_all(r):
    """Drop every registration W6 left behind."""
    try:
        regs = r.execute_command("RG.DUMPREGISTRATIONS")
        for reg in regs or []:
            with contextlib.suppress(redis.ResponseError):
                r.execute_command("RG.UNREGISTER", reg[1])
    except redis.ResponseError as err:
        print(f"  (could not unregister the W6 registration: {err})", flush=True)
