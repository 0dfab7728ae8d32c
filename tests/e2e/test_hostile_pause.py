"""Gearshift writing while clients are paused (`CLIENT PAUSE`, `FAILOVER`, a cluster manual
failover). Redis 7.0 asserts that nothing propagates to replicas or the AOF during a pause, so
a write from user code (a worker's execute(), a timer) or Gearshift's own replication (a
session or time event a script body made) killed the server. Writes from user code are
refused with an error during the pause; Gearshift's own replication is held and sent when
the pause ends. Every wait is bounded."""

import socket
import time

import redis

from conftest import Server, assert_alive, fresh_server, pyexecute, wait_for

PAUSED = "writes are paused"

WORKER_WRITE = """
import time
def f(x):
    time.sleep(0.5)
    return execute('INCR', 'n')
GB('ShardsIDReader').map(f).run()
"""

# The body outlives the pause's start: what it registers replicates during the pause.
LATE_BODY = """
import time
time.sleep(1)
registerTE(1000, lambda: None, 'tekey')
GB().foreach(lambda x: None).register(prefix='late:*')
"""


def send(port, *args):
    """Sends one command on a socket of its own; the socket, for its reply."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    sock.sendall(b"".join(parts))
    return sock


def test_a_worker_write_during_a_pause_is_an_error_not_a_crash():
    with fresh_server(server_args=("--appendonly", "yes")) as srv:
        r = srv.client()
        eid = pyexecute(r, WORKER_WRITE, "UNBLOCKING")
        assert r.execute_command("CLIENT", "PAUSE", "2000", "WRITE") == "OK"
        time.sleep(1)
        assert srv.alive(), srv.log_tail()
        res, errors = r.execute_command("RG.GETRESULTS", eid)
        assert res == [] and PAUSED in str(errors), errors
        r.execute_command("CLIENT", "UNPAUSE")
        assert_alive(r, srv)
        assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: execute('INCR', 'n')).run()") == [
            ["1"],
            [],
        ]


def test_replication_made_during_a_pause_reaches_the_replica_after_it():
    with fresh_server() as master, Server() as replica:
        m, rep = master.client(), replica.client()
        rep.execute_command("REPLICAOF", "127.0.0.1", master.port)
        assert wait_for(lambda: rep.info("replication")["master_link_status"] == "up", timeout=20)
        sock = send(master.port, "RG.PYEXECUTE", LATE_BODY)
        try:
            assert m.execute_command("CLIENT", "PAUSE", "1500", "WRITE") == "OK"
            assert sock.recv(64).startswith(b"+OK"), "the script failed"
        finally:
            sock.close()
        assert master.alive(), master.log_tail()
        # Held during the pause, sent after it.
        assert wait_for(lambda: rep.type("tekey") == "rg_timeev", timeout=10), rep.keys()
        regs = wait_for(lambda: rep.execute_command("RG.DUMPREGISTRATIONS"), timeout=10)
        assert len(regs) == 1, regs
        assert_alive(m, master)
