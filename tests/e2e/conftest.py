"""End-to-end fixtures: real redis-server processes with the Gearshift module loaded.

Every server gets its own free port and temp dir and is killed on teardown. Every client has a
socket timeout, so a hung module fails a test instead of hanging the suite.

Tests import the plain helpers directly: `from conftest import parse, fresh_server`.
"""

import ast
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO = Path(__file__).resolve().parents[2]
MODULE = Path(os.environ.get("GEARSHIFT_MODULE", REPO / "target/release/libgearshift.so"))
START_TIMEOUT = 10  # seconds until a new server must answer PING
STOP_TIMEOUT = 10  # seconds a server gets to exit after SIGTERM
SOCKET_TIMEOUT = 30  # seconds any single command may take

MISSING_MODULE = (
    f"Gearshift module not found at {MODULE}; build it first with "
    "`cargo build --release -p gearshift` (or run scripts/test.sh)"
)


def pytest_sessionstart(session):
    # Say it once instead of once per test; a missing build is a failure, never a skip.
    if not MODULE.is_file():
        pytest.exit(MISSING_MODULE, returncode=1)


def parse(records):
    """Evaluate str()-converted records back into Python values.

    Reader dicts print in hash-table order (REFERENCE §10), so compare parsed values, not text.
    """
    return [ast.literal_eval(rec) for rec in records]


def pyexecute(client, script, *args):
    """RG.PYEXECUTE <script> [args...] and return the raw reply."""
    return client.execute_command("RG.PYEXECUTE", script, *args)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_cluster_port():
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = _free_port()
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    pytest.fail("no free port pair for a cluster node", pytrace=False)


class Server:
    """One redis-server child process with Gearshift loaded."""

    def __init__(self, server_args=(), load_module=True, **module_args):
        self.server_args = list(server_args)
        self.load_module = load_module
        self.module_args = module_args
        self.dir = None
        self.proc = None
        self.port = None
        self.cluster_node = "--cluster-enabled" in self.server_args

    @property
    def logfile(self):
        return self.dir / "redis.log"

    def start(self):
        if not MODULE.is_file():
            pytest.fail(MISSING_MODULE, pytrace=False)
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="gearshift-e2e-"))
        # Another process may grab the free port before redis binds it; retry on a new one.
        for _ in range(3):
            self.port = _free_cluster_port() if self.cluster_node else _free_port()
            self.proc = subprocess.Popen(self._argv(), cwd=self.dir, stdin=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            if "Address already in use" not in self.log_tail():
                break
        log = self.log_tail()
        self.cleanup()
        pytest.fail(f"redis-server did not start:\n{log}", pytrace=False)

    def _argv(self):
        module_args = [str(x) for kv in self.module_args.items() for x in kv]
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.logfile),
            "--enable-debug-command", "yes",
            *self.server_args,
        ] + (["--loadmodule", str(MODULE), *module_args] if self.load_module else [])  # fmt: skip

    def _wait_ready(self):
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if probe.ping():
                        return True
                time.sleep(0.05)
            return False
        finally:
            probe.close()

    def client(self):
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=5,
        )

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=40):
        if self.dir is None:
            return "(no log)"
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


@contextlib.contextmanager
def fresh_server(server_args=(), **module_args):
    """A server of its own, for tests that need a pristine one (e.g. ids counting from 0).

    Keyword arguments become module arguments: fresh_server(MaxExecutions=3); server_args are
    extra redis-server arguments.
    """
    with Server(server_args, **module_args) as srv:
        yield srv


def burst(c, prefix, n, value=lambda i: f"v{i}", chunk=1000):
    """Pipelined SETs prefix0..prefix{n-1}, in order (sync events run inside each SET)."""
    for start in range(0, n, chunk):
        p = c.pipeline(transaction=False)
        for i in range(start, min(n, start + chunk)):
            p.set(f"{prefix}{i}", value(i))
        p.execute()


def wait_for(fn, timeout=5.0, interval=0.02):
    """Polls fn() until it returns something truthy (async work finishes soon after), at
    most `timeout` seconds; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()


def steady(fn, quiet, timeout=10.0, interval=0.05):
    """Polls fn() until its value has not changed for `quiet` seconds, at most `timeout`
    seconds; returns that value, or None if it kept changing. For "nothing more happens":
    e.g. a stopped timer's counter, which a still-running timer would move within `quiet`."""
    deadline = time.monotonic() + timeout
    last, since = fn(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(interval)
        v = fn()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return v
    return None


def holds_for(fn, seconds, interval=0.05):
    """Polls fn() for `seconds`: True if it stayed truthy throughout, else False at the first
    falsy value. For "nothing more happened" after an action that must have no effect."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not fn():
            return False
        time.sleep(interval)
    return bool(fn())


PING_BOUND = 2.0  # seconds a PING may take while a job runs: generous, but a blocked server fails


def answered_while_running(srv, eid, bound=PING_BOUND, interval=0.005, timeout=120):
    """While execution `eid` runs, a second client (socket timeout `bound`) sends PING and
    RG.DUMPEXECUTIONS in a loop; each must be answered within `bound` seconds. Returns how many
    RG.DUMPEXECUTIONS replies said the execution was still running: each was answered *during*
    the job (a server the job blocks answers only after it, and then says `done`), so callers
    assert it is several. Fails the test on a PING that is late or not PONG."""
    probe = redis.Redis(host="127.0.0.1", port=srv.port, decode_responses=True,
                        socket_timeout=bound, socket_connect_timeout=5,
                        retry=Retry(NoBackoff(), 0))  # fmt: skip  (a late reply is a failure, not a retry)
    running = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                pong = probe.ping()
                took = time.monotonic() - t0
                dump = probe.execute_command("RG.DUMPEXECUTIONS")
            except (redis.TimeoutError, redis.ResponseError) as err:
                pytest.fail(f"not answered within {bound}s while {eid} ran "
                            f"(after {running} answers): {type(err).__name__}: {err}", pytrace=False)  # fmt: skip
            if pong is not True or took >= bound:
                pytest.fail(f"PING not answered within {bound}s while {eid} ran: {pong!r} after {took:.2f}s",
                            pytrace=False)  # fmt: skip
            status = [e[3] for e in dump if e[1] == eid]
            if status != ["running"]:
                return running
            running += 1
            time.sleep(interval)
        pytest.fail(f"execution {eid} still running after {timeout}s", pytrace=False)
    finally:
        probe.close()


def unregister_all(client):
    """Drops every registration (tests that register clean up after themselves)."""
    for reg in client.execute_command("RG.DUMPREGISTRATIONS"):
        client.execute_command("RG.UNREGISTER", reg[1])


def assert_alive(client, srv=None):
    """The server must still answer PING (bad input must never take it down)."""
    try:
        assert client.ping() is True
    except redis.ConnectionError as err:
        log = srv.log_tail() if srv else ""
        pytest.fail(f"server no longer answers PING: {err}\n{log}", pytrace=False)


class Cluster:
    """A real 3-master Redis Cluster (no replicas), Gearshift loaded on every node."""

    def __init__(self, masters=3, **module_args):
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        self.nodes = [Server(args, **module_args) for _ in range(masters)]

    def start(self):
        for n in self.nodes:
            n.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        out = subprocess.run(
            ["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if out.returncode != 0:
            self.cleanup()
            pytest.fail(f"redis-cli --cluster create failed:\n{out.stdout}\n{out.stderr}", pytrace=False)
        if not wait_for(self._formed, timeout=30, interval=0.1):
            self.cleanup()
            pytest.fail("cluster did not reach cluster_state:ok on every node", pytrace=False)
        return self

    def _formed(self):
        for n in self.nodes:
            c = n.client()
            try:
                if "cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                    return False
                masters = {tuple(r[2][:2]) for r in c.execute_command("CLUSTER", "SLOTS")}
                if len(masters) != len(self.nodes):
                    return False
            finally:
                c.close()
        return True

    def client(self, i=0):
        return self.nodes[i].client()

    def each(self, fn):
        """`fn(client)` on every node in order, each with its own connection; the results."""
        out = []
        for i in range(len(self.nodes)):
            c = self.client(i)
            try:
                out.append(fn(c))
            finally:
                c.close()
        return out

    def cluster_client(self):
        """A cluster-aware client (follows MOVED), for loading data and reading results."""
        from redis.cluster import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def alive(self):
        return all(n.alive() for n in self.nodes)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class ClusterFront:
    """A client for a whole cluster as the walkthrough's `redis-cli -c -p 30001` is: RG.*
    commands go to shard A (the initiator), data commands to the key's owner."""

    def __init__(self, cluster):
        self.node = cluster.client(0)
        self.cc = cluster.cluster_client()

    def execute_command(self, *args):
        if str(args[0]).upper().startswith("RG."):
            return self.node.execute_command(*args)
        return self.cc.execute_command(*args)

    def flushall(self):
        for node in self.cc.get_primaries():
            self.cc.flushall(target_nodes=node)

    def __getattr__(self, name):
        return getattr(self.cc, name)

    def close(self):
        self.node.close()
        self.cc.close()


@pytest.fixture(scope="module")
def server():
    """One server shared by every test in a test module."""
    with Server() as srv:
        yield srv


@pytest.fixture
def r(server):
    """A client on the shared server with an empty database.

    If an earlier test crashed the server, start a new one so later tests still mean something;
    if this test crashes it, fail this test with the server log.
    """
    if not server.alive():
        server.restart()
    client = server.client()
    client.flushall()
    yield client
    client.close()
    if not server.alive():
        pytest.fail(f"redis-server died during this test:\n{server.log_tail()}", pytrace=False)


# CI installs pyarrow (scripts/lib.sh ensure_pip_packages): there a missing pyarrow is a failure,
# never a silent skip of every Arrow test.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def arrow(r):
    try:
        pyexecute(r, "import pyarrow")
    except redis.ResponseError as err:
        if IN_CI:
            pytest.fail(f"pyarrow does not import in the server's Python under CI: {err}", pytrace=False)
        pytest.skip("pyarrow is not installed for the server's Python")
    return r


# Occupies the (single) execution thread until the key `release` exists.
HOLD = ("import time\n"
        "def hold(x):\n"
        "    execute('SET', 'holding', '1')\n"
        "    while execute('GET', 'release') is None:\n"
        "        time.sleep(0.01)\n"
        "    return x\n"
        "GB('ShardsIDReader').map(hold).run()")
