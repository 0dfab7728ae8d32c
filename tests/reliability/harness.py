"""Shared helpers of the reliability suite.

The server and cluster fixtures are the e2e ones (tests/e2e/conftest.py), loaded by path under
a name of their own: both directories have a `conftest.py`, and pytest drops a rootless
`conftest` from sys.modules between directories, so `from conftest import ...` would be fragile
here. Everything the e2e tests rely on is used unchanged.

Mode: quick by default (what CI runs, about a minute); `GEARSHIFT_RELIABILITY=full` selects the
full mode (20,000+ fuzzed commands, the 4 GB allocation). `GEARSHIFT_FUZZ_SEED` replays a seed.
"""

import contextlib
import importlib.util
import os
import signal
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_E2E = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
_spec = importlib.util.spec_from_file_location("gearshift_e2e_fixtures", _E2E)
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

Server = e2e.Server
Cluster = e2e.Cluster
MODULE = e2e.MODULE

FULL = os.environ.get("GEARSHIFT_RELIABILITY", "quick").lower() == "full"

# How long a live server may take to answer PING. Generous: the machine is shared with
# compilers, and a hang is minutes, not seconds.
PING_BOUND = 5.0


def client(srv, timeout=PING_BOUND, decode=True, protocol=2):
    """A client whose every command is bounded by `timeout` seconds. redis-py retries a timed
    out command three times by default (reconnecting each time), which turns a 3 s bound into
    more than 30 s: no retries. `protocol=3` speaks RESP3 (HELLO 3)."""
    return redis.Redis(
        host="127.0.0.1",
        port=srv.port,
        decode_responses=decode,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        protocol=protocol,
    )


def answers_ping(srv, bound=PING_BOUND):
    """True if the server process lives and answers PING within `bound` seconds."""
    if not srv.alive():
        return False
    c = client(srv, timeout=bound)
    try:
        return c.ping() is True
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        c.close()


def kill_hard(srv):
    """SIGKILL a server that may be hung (a stuck main thread never handles SIGTERM, and the
    e2e stop() would wait its full timeout for it), then remove its files."""
    if srv.proc is not None and srv.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
    srv.proc = None
    srv.cleanup()


@contextlib.contextmanager
def server(server_args=(), **module_args):
    """A fresh server that is SIGKILLed (never waited on) when the test ends."""
    srv = Server(server_args, **module_args).start()
    try:
        yield srv
    finally:
        kill_hard(srv)


def fake_venv(srv_dir, argv_log=None):
    """A stand-in for the server's requirements venv (`gearshift-venv` in its dir) whose
    python never installs anything: it records its arguments in `argv_log` (what pip would
    have been told) and fails like a pip that finds nothing, offline and in milliseconds."""
    venv = Path(srv_dir) / "gearshift-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3" / "site-packages").mkdir(parents=True)
    log = f'printf "%s\\n" "$@" >> "{argv_log}"\n' if argv_log else ""
    fake = venv / "bin" / "python"
    fake.write_text(f"#!/bin/sh\n{log}echo 'stand-in pip: no index' >&2\nexit 1\n")
    fake.chmod(0o755)


def info_int(c, section, field):
    """One integer field of INFO <section>."""
    return int(c.info(section)[field])


def poll(fn, timeout, interval=0.05):
    """Calls fn() until it returns something truthy or `timeout` seconds pass; returns the
    last value. A bound for liveness, never a speed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
