"""Random RG.* commands for the command fuzzer (test_command_fuzz.py).

Every command the module registers (module/src/lib.rs) has a generator here. Most draws follow
the command's grammar, so the fuzzer gets past argument parsing into the handlers; the rest
are random arities of random values. Values mix the shapes that break parsers and reply
paths: empty strings, huge and negative numbers, non-ASCII text, invalid UTF-8, NUL bytes,
very long arguments, and ids that look valid (real execution, registration and session ids
read back from the server, and well-formed ones that do not exist).

Scripts sent with RG.PYEXECUTE always terminate: a runaway is a hostile case with its own
explicit test (test_hostile.py), never something the fuzzer should stumble on.

Known crashes (found by this harness, not fixed yet) are left out unless
`known_crashes=True`, so that the fuzzer guards everything else in CI today; the strict-xfail
test that sets it reminds us to put them back once the fixes land.
"""

import random

# Every command the module registers, public and internal (module/src/lib.rs).
COMMANDS = [
    "RG.PYEXECUTE", "RG.GETRESULTS", "RG.GETRESULTSBLOCKING", "RG.DUMPEXECUTIONS",
    "RG.DROPEXECUTION", "RG.ABORTEXECUTION", "RG.GETEXECUTION", "RG.CONFIGGET",
    "RG.CONFIGSET", "RG.INFOCLUSTER", "RG.REFRESHCLUSTER", "RG.NETWORKTEST",
    "RG.DUMPPLUGINS", "RG.PYEXECUTEREMOTE", "RG.PYFREEINTERPRETER", "RG.DUMPREGISTRATIONS",
    "RG.UNREGISTER", "RG.PYDUMPSESSIONS", "RG.PYPROFILE", "RG.TRIGGER", "RG.TRIGGERONKEY",
    "RG.CLEARREGISTRATIONSSTATS", "RG.PAUSEREGISTRATIONS", "RG.UNPAUSEREGISTRATIONS",
    "RG.PYSTATS", "RG.PYDUMPREQS", "RG.INNERREGISTER", "RG.INNERUNREGISTER",
    "RG.INNERTIMEEVENT", "RG.PYEXPORTREQ", "RG.PYIMPORTREQ", "RG.PYIMPORTRETINTERNAL",
]  # fmt: skip

# PYEXECUTE and TRIGGER reach the most code (scripts, executions, registrations, hooks);
# the id-taking commands need executions and registrations to exist to get past lookup.
WEIGHTS = [
    {"RG.PYEXECUTE": 30, "RG.TRIGGER": 6, "RG.TRIGGERONKEY": 3}.get(c, 2) for c in COMMANDS
]

CONFIG_KEYS = [
    "MaxExecutions", "MaxExecutionsPerRegistration", "ProfileExecutions", "ExecutionThreads",
    "ExecutionMaxIdleTime", "SendMsgRetries", "Plugin", "PythonAttemptTraceback",
    "OverridePythonAllocators", "PythonInstallReqMaxIdleTime", "CreateVenv", "DownloadDeps",
    "ForeceDownloadDepsOnEnterprise", "DependenciesUrl", "PythonInstallationDir", "PythonHome",
]  # fmt: skip

PYEXECUTE_FLAGS = ["UNBLOCKING", "UPGRADE", "FORCE_REINSTALL_REQUIREMENTS"]
PYEXECUTE_VALUED = ["ID", "DESCRIPTION", "REPLACE_WITH"]

# Text that stresses encoders: Latin-1, CJK, emoji, RTL, combining marks. Characters whose
# code point is a multiple of 256 (U+0100 'Ā', U+4E00 '一', U+1F600) and NUL were issue 10's
# reply crash (redis-module turned each char into a byte).
UNICODE = ["é", "ß", "Ā", "ā", "一", "丁", "😀", "😃", "עברית", "e\u0301", "\u202e", "ǅ", "€"]
BAD_UTF8 = [b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80", b"\xf4\x90\x80\x80", b"a\xffb"]
NUMBERS = [
    "0", "1", "-1", "2", "100", "-100", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "18446744073709551615", "18446744073709551616", "1e308", "-1e308",
    "1.5", "nan", "inf", "-inf", "0x10", "007", " 1", "1 ", "+1", "99999999999999999999999999",
]  # fmt: skip
FAKE_IDS = [
    "0000000000000000000000000000000000000000-0",
    "0000000000000000000000000000000000000000-1",
    "ffffffffffffffffffffffffffffffffffffffff-18446744073709551615",
    "0000000000000000000000000000000000000000--1",
    "-1", "a-b", "-", "0-0",
]  # fmt: skip
WORDS = ["", "x", "key", "abortpending", "ABORTPENDING", "SHARD", "CLUSTER", "VERBOSE", "DEAD",
         "SESSIONS", "STATS", "RESET", "tottime", "fuzz:k", "fuzz:s", "{fuzz}:1"]  # fmt: skip

# Terminating scripts: runs, registrations (pure callbacks, so events never cascade), errors.
P = "fuzz:"
SCRIPTS = [
    # A write inside atomic() firing a sync registration (a harness finding, fixed).
    "with atomic(): execute('SET', 'fuzz:a', '1')",
    "GB().run()",
    f"GB().map(lambda x: x['key']).run('{P}*')",
    f"GB().count().run('{P}*')",
    f"GB().filter(lambda x: x['type'] == 'string').countby(lambda x: x['value']).run('{P}*')",
    "GB('ShardsIDReader').run()",
    "GB('PythonReader').run(lambda: iter(range(50)))",
    "GB('PythonReader').flatmap(lambda x: [x] * 3).aggregate(0, lambda a, x: a + x, lambda a, x: a + x).run(lambda: iter(range(20)))",
    "GB('KeysOnlyReader').collect().run()",
    f"GB().foreach(lambda x: execute('SET', '{P}out', 'v')).run('{P}s*')",
    f"execute('SET', '{P}s1', 'Ā一😀\\u00e9')",
    f"execute('HSET', '{P}h', 'a', '1')",
    f"execute('RPUSH', '{P}l', 'a', 'b')",
    "execute('PING')",
    "execute()",
    "execute('NOSUCHCOMMAND')",
    "log('fuzz')",
    "configGet('MaxExecutions')",
    "GB().map(lambda x: 1/0).run()",
    f"GB().register(prefix='{P}r*')",
    f"GB().map(lambda x: x['key']).register(prefix='{P}*', mode='async_local')",
    f"GB().filter(lambda x: True).register(prefix='{P}*', mode='sync')",
    f"GB().count().register(prefix='{P}*', mode='async', batch=3)",
    "GB('CommandReader').map(lambda x: x[1:]).register(trigger='fuzztrig')",
    "GB('CommandReader').register(trigger='fuzztrig2', mode='sync')",
    f"GB('StreamReader').register('{P}st')",
    f"GB('StreamReader').register(prefix='{P}st', batch=2, duration=50)",
    f"GB('KeysReader').register(prefix='{P}*', eventTypes=['set'], readValue=False)",
    "GB(",
    "def f(:",
    "raise Exception('fuzz')",
    "import os",
    "GB().run()\nGB().run()",
    "GB().limit(-1).run()",
    "GB().limit('x').run()",
    "GB().map(1).run()",
    "GB('nosuch').run()",
    "GB().register(prefix=1)",
    "GB().register(mode='bogus')",
    "GB('CommandReader').register()",
    "GB('StreamReader').register(batch=-1)",
    "atomic",
    f"GB().map(lambda x: x).register(prefix='{P}*', commands=['get'])",
    "x = 'Ā' * 10",
    "'\\x00'",
    # Hooks, linked commands, futures, coroutines and timers (the second sweep's shapes).
    "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')",
    "GB('CommandReader').map(lambda x: 'no').register(hook='rpush', mode='sync', keyprefix='fuzz:l')",
    f"GB().foreach(lambda x: override_reply('over')).register(prefix='{P}o*', commands=['get'], mode='sync')",
    "def f(x):\n    fu = gearsFuture()\n    fu.continueRun('later')\n    return fu\n"
    "GB('CommandReader').map(f).register(trigger='fuzztrig', mode='async_local')",
    "async def f(x):\n    return x\nGB('ShardsIDReader').map(f).run()",
    "import asyncio\nasync def f(x):\n    await asyncio.sleep(0.01)\n    return x\n"
    "GB('CommandReader').map(f).register(trigger='fuzztrig2')",
    "def f(x):\n    with atomic():\n        execute('INCR', 'fuzz:n')\n    return x\n"
    "GB('ShardsIDReader').foreach(f).run()",
    f"registerTE(1, lambda: execute('INCR', '{P}te'), '{P}tekey')",
    "registerTE(0, lambda: None)",
    "GB('ShardsIDReader').map(lambda x: execute('RG.DUMPEXECUTIONS')).run()",
    "GB('ShardsIDReader').map(lambda x: execute('RG.TRIGGER', 'fuzztrig')).run()",
    f"GB('StreamReader').map(lambda x: x['id']).run('{P}st')",
    "GB('PythonReader').batchgroupby(lambda x: x % 3, lambda k, l: len(l)).run(lambda: iter(range(30)))",
    "GB('ShardsIDReader').map(lambda x: 'Ā\\x00' * 100000).run()",
]  # fmt: skip


class Generator:
    """Draws commands from a seeded RNG; ids seen on the server feed back into the draws."""

    def __init__(self, seed, known_crashes=False):
        self.rng = random.Random(seed)
        self.known_crashes = known_crashes
        self.exec_ids = []
        self.reg_ids = []
        self.session_ids = []
        self.blobs = []

    # --- values -------------------------------------------------------------------------

    def text(self):
        rng = self.rng
        parts = [rng.choice(UNICODE + WORDS + NUMBERS) for _ in range(rng.randint(1, 3))]
        return "".join(parts)

    def value(self) -> bytes:
        """One argument of any shape."""
        rng = self.rng
        kind = rng.randrange(12)
        if kind == 0:
            return b""
        if kind == 1:
            return rng.choice(NUMBERS).encode()
        if kind == 2:
            return str(rng.randint(-(2**70), 2**70)).encode()
        if kind == 3:
            return self.text().encode()
        if kind == 4:
            return rng.choice(BAD_UTF8) + self.text().encode()
        if kind == 5:
            return b"a\x00" + self.text().encode() + b"\x00"
        if kind == 6:
            # Very long: mostly 10 KB, now and then 1 MB.
            n = 1_000_000 if rng.random() < 0.05 else 10_000
            return (rng.choice(["a", "Ā", "\xff"]) * n).encode("utf-8", "surrogateescape")
        if kind == 7:
            return self.some_id().encode()
        if kind == 8:
            return rng.choice(WORDS).encode()
        if kind == 9:
            return bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        if kind == 10:
            return rng.choice(CONFIG_KEYS + PYEXECUTE_FLAGS + PYEXECUTE_VALUED).encode()
        return rng.choice(["Ā", "一", "😀", "é", "\x00"]).encode()

    def some_id(self):
        pools = [self.exec_ids, self.reg_ids, self.session_ids, FAKE_IDS]
        pool = self.rng.choice([p for p in pools if p])
        ident = self.rng.choice(pool)
        if self.rng.random() < 0.1:
            ident = ident[: self.rng.randint(0, len(ident))]  # truncated: almost valid
        return ident

    def values(self, lo=0, hi=4):
        return [self.value() for _ in range(self.rng.randint(lo, hi))]

    # --- per-command grammars -----------------------------------------------------------

    def pyexecute(self):
        rng = self.rng
        script = rng.choice(SCRIPTS + (KNOWN_CRASH_SCRIPTS if self.known_crashes else []))
        if rng.random() < 0.1:
            script = script.replace("fuzz:", self.text())
        args = [script.encode("utf-8", "surrogateescape")]
        if rng.random() < 0.4:
            args.append(b"UNBLOCKING")  # the execution is kept: its id feeds other commands
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
            opt = rng.choice(PYEXECUTE_FLAGS + PYEXECUTE_VALUED)
            args.append((opt if rng.random() < 0.8 else opt.lower()).encode())
            if opt in PYEXECUTE_VALUED and rng.random() < 0.95:
                good_id = rng.choice(["fuzzsession", "fz-1", "fz_2"] + self.session_ids)
                args.append(good_id.encode() if rng.random() < 0.6 else self.value())
        if rng.random() < 0.004:
            # The fuzzer's server has a stand-in venv (and PIP_NO_INDEX=1): installing
            # fails fast and offline, after the option parsing and bookkeeping ran.
            args += [b"REQUIREMENTS"] + self.values(0, 2)
        return args

    def grammar(self, cmd):
        rng = self.rng
        ident = lambda: self.some_id().encode()  # noqa: E731
        if cmd == "RG.PYEXECUTE":
            return self.pyexecute()
        if cmd in ("RG.GETRESULTS", "RG.GETRESULTSBLOCKING", "RG.DROPEXECUTION",
                   "RG.ABORTEXECUTION"):  # fmt: skip
            return [ident()]
        if cmd == "RG.GETEXECUTION":
            return [ident()] + ([rng.choice([b"SHARD", b"CLUSTER", b"shard"])] if rng.random() < 0.5 else [])
        if cmd == "RG.CONFIGGET":
            return [rng.choice(CONFIG_KEYS).encode() for _ in range(rng.randint(1, 3))]
        if cmd == "RG.CONFIGSET":
            args = []
            for _ in range(rng.randint(1, 2)):
                # ExecutionThreads is not runtime, PythonInstallationDir moves the venv:
                # both are refused or harmless; values are anything.
                args += [rng.choice(CONFIG_KEYS + ["fuzzextra"]).encode(), self.value()]
            return args
        if cmd in ("RG.UNREGISTER", "RG.INNERUNREGISTER"):
            return [ident()] + ([b"abortpending"] if rng.random() < 0.3 else [])
        if cmd in ("RG.PAUSEREGISTRATIONS", "RG.UNPAUSEREGISTRATIONS"):
            return ([b"ABORTPENDING"] if rng.random() < 0.2 else []) + [ident()]
        if cmd == "RG.PYDUMPSESSIONS":
            opts = [rng.choice([b"VERBOSE", b"DEAD"]) for _ in range(rng.randint(0, 2))]
            if rng.random() < 0.5:
                opts += [b"SESSIONS"] + [ident() for _ in range(rng.randint(0, 3))]
            return opts
        if cmd == "RG.PYPROFILE":
            return [rng.choice([b"STATS", b"RESET", b"stats"]), ident()] + self.values(0, 1)
        if cmd == "RG.TRIGGER":
            return [rng.choice([b"fuzztrig", b"fuzztrig2", b"nosuch"])] + self.values(0, 3)
        if cmd == "RG.TRIGGERONKEY":
            return [rng.choice([b"fuzztrig", b"fuzztrig2"]), b"fuzz:tk"] + self.values(0, 2)
        if cmd == "RG.INNERREGISTER":
            return [self.blob()]
        if cmd in ("RG.PYIMPORTREQ", "RG.PYIMPORTRETINTERNAL"):
            return ([b"WORKERS"] if rng.random() < 0.1 else []) + [self.requirement()]
        if cmd == "RG.PYEXPORTREQ":
            return [rng.choice([b"fuzzreq", b"fuzzreq==1.0", self.value()])]
        if cmd == "RG.INNERTIMEEVENT":
            # Out-of-range periods once stored keys that failed every RDB load (issue 10);
            # the DEBUG RELOAD probe catches that.
            period = str(rng.choice([0, 1, 2, 3600, 86400 * 365]))
            if rng.random() < 0.3:
                period = rng.choice(["9223372036854775807", "18446744073709551615",
                                     str(2**63 // 1000 + 1), "-1", "x", "", "1.5"])  # fmt: skip
            return [b"fuzz:te:" + str(rng.randrange(20)).encode(), period.encode(), self.value()]
        return self.values(0, 2)  # commands without arguments: any extra is noise

    def blob(self):
        """A sessions blob for RG.INNERREGISTER: well formed (persist.rs's layout), mutated
        or random."""
        rng = self.rng
        r = rng.random()
        if r < 0.3 and self.blobs:
            b = bytearray(rng.choice(self.blobs))
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            return bytes(b)
        if r < 0.6:
            return self.value()
        code = rng.choice([s for s in SCRIPTS if "register(" in s])
        return session_blob(f"fz{rng.randrange(5)}", code, [])

    def requirement(self):
        """An RG.PYIMPORTREQ payload (engine::wire::requirements): well formed with a wheel
        that is not a zip, mutated, or random."""
        rng = self.rng
        f = lambda b: len(b).to_bytes(4, "little") + b  # noqa: E731
        wheel = f(b"fuzzreq-1.0-py3-none-any.whl") + f(self.value())
        blob = b"R\x01" + f(b"fuzzreq") + f(b"linux-x86_64") + (1).to_bytes(4, "little") + wheel
        r = rng.random()
        if r < 0.4:
            return blob
        if r < 0.7:
            b = bytearray(blob)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            return bytes(b)
        return self.value()

    def wrapping(self):
        """How the fuzzer sends the next command: plainly, or from Lua, in MULTI, or on a
        RESP3 connection (each a different reply path into the server)."""
        r = self.rng.random()
        return "plain" if r < 0.85 else "lua" if r < 0.9 else "multi" if r < 0.95 else "resp3"

    def command(self):
        """One command as a list of bytes, the first being its name."""
        rng = self.rng
        cmd = rng.choices(COMMANDS, WEIGHTS)[0]
        args = self.grammar(cmd) if rng.random() < 0.8 else self.values(0, 5)
        name = cmd if rng.random() < 0.9 else cmd.lower()
        out = [name.encode()] + args
        return out


# Scripts that crash the server today (harness findings, with minimal reproducers in
# test_findings.py): drawn only with `known_crashes=True`.
KNOWN_CRASH_SCRIPTS = []


def session_blob(sid, code, reg_ids, desc=None, requirements=()):
    """persist.rs's sessions blob for one session (layout in its module doc)."""

    def s(x):
        b = x.encode() if isinstance(x, str) else x
        return len(b).to_bytes(4, "little") + b

    out = b"S\x02" + (1).to_bytes(4, "little") + s(sid)
    out += (b"\x01" + s(desc)) if desc is not None else b"\x00"
    out += s(code) + len(reg_ids).to_bytes(4, "little") + b"".join(s(r) for r in reg_ids)
    out += len(requirements).to_bytes(4, "little") + b"".join(s(r) for r in requirements)
    return out
