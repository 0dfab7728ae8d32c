"""redis-server processes for the perf scripts: one server, or a 3-master Redis Cluster, each
with a snapshot copy of the module (a rebuild during a run cannot race) and killed if the
script dies. Shared by run.py, events_bench.py, foundation.py and cluster_bench.py."""

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redis.connection

# The reply parser a client uses: redis-py's C one (the `hiredis` package, what redis-py picks
# when it is installed) or its pure-Python one. Parsing a 300,000-string reply in pure Python
# takes longer than the server's work, so the cluster benches name the parser they used.
PARSERS = {"hiredis": "_HiredisParser", "python": "_RESP2Parser"}


def parser_class(name):
    """redis-py's parser class called `name` (`hiredis` or `python`), or exit if unavailable."""
    if name == "hiredis":
        try:
            import hiredis  # noqa: F401
        except ImportError:
            raise SystemExit("the hiredis parser needs `python3 -m pip install hiredis` (scripts/lib.sh installs it)")
    # With RESP3 (redis-py's default protocol) redis-py swaps the RESP2 parser for its RESP3 one.
    return getattr(redis.connection, PARSERS[name])

START_TIMEOUT = 20  # seconds until a new server must answer PING
CLIENT_TIMEOUT = 1800  # a blocking call over 1M keys may take a while on 2 busy cores


def free_port(bus=False):
    """A free port; with `bus`, one whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as sock, contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port + 10000))
                return port
    raise SystemExit("no free port")


def _die_with_parent():
    """In the child before exec: SIGKILL redis-server if this script dies without cleaning up."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """One redis-server with Gearshift loaded (`module`), on `port` or a free one."""

    def __init__(self, module, port=None, extra_args=()):
        self.module_src = Path(module)
        self.port = port
        self.extra_args = list(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="gearshift-perf-"))
        self.module = self.dir / "libgearshift.so"
        self.log = self.dir / "redis.log"
        self.proc = None

    def start(self):
        shutil.copy2(self.module_src, self.module)
        bus = "--cluster-enabled" in self.extra_args
        for _ in range(3):
            port = self.port or free_port(bus)
            argv = [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--logfile", str(self.log),
                # A scanning EVAL blocks the server for seconds: only a benchmark, so no BUSY.
                "--lua-time-limit", "600000",
                # W6 client-side: the keyspace-notification subscriber may lag behind the writer.
                "--client-output-buffer-limit", "pubsub 0 0 0",
                *self.extra_args,
                "--loadmodule", str(self.module),
            ]  # fmt: skip
            # Own session: a Ctrl-C in the terminal reaches us, and we stop the server ourselves.
            self.proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            if self._wait_ready(port):
                self.port = port
                return self
            if self.port is not None or "Address already in use" not in self.log_tail():
                break
        raise SystemExit(f"redis-server did not start:\n{self.log_tail()}")

    def _wait_ready(self, port):
        deadline = time.monotonic() + START_TIMEOUT
        probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
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

    def client(self, decode=True, timeout=CLIENT_TIMEOUT, parser=None):
        """A redis-py client; `parser` (`hiredis` or `python`) picks its reply parser, else
        redis-py's default (hiredis when installed)."""
        kwargs = dict(host="127.0.0.1", port=self.port, decode_responses=decode,
                      socket_timeout=timeout, socket_connect_timeout=5)  # fmt: skip
        if parser is None:
            return redis.Redis(**kwargs)
        pool = redis.ConnectionPool(parser_class=parser_class(parser), **kwargs)
        return redis.Redis(connection_pool=pool)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """A 3-master Redis Cluster (no replicas) of `Server`s."""

    def __init__(self, module, masters=3):
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        self.nodes = [Server(module, extra_args=args) for _ in range(masters)]

    def start(self):
        for n in self.nodes:
            n.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._formed():
            if time.monotonic() > deadline:
                raise SystemExit("cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    def _formed(self):
        for n in self.nodes:
            c = n.client()
            try:
                if "cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                    return False
                if len({r[2][2] for r in c.execute_command("CLUSTER", "SLOTS")}) != len(self.nodes):
                    return False
            finally:
                c.close()
        return True

    def slot_owners(self):
        """[(first_slot, last_slot, port)] of the masters."""
        c = self.nodes[0].client()
        try:
            return [(r[0], r[1], int(r[2][1])) for r in c.execute_command("CLUSTER", "SLOTS")]
        finally:
            c.close()

    def stop(self):
        for n in self.nodes:
            n.stop()
