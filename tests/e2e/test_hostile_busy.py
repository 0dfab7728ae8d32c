"""Runaway main-thread Python reached where the busy mechanism (docs/security.md) had not
been tried: a sync registration fired from a Lua script, a Function or MULTI/EXEC (Redis
asserts that none runs while it serves a client, so letting clients in there killed the
server), and a KeysReader `commands=` registration (SCRIPT KILL answered NOTBUSY there).
Every wait is bounded; servers are killed on teardown."""

import socket
import threading
import time

import pytest
import redis

from conftest import fresh_server, pyexecute, wait_for
from test_busy import SPIN, busy_reply, wait_busy
BUSY_MS = 300
STOPPED_LOG = "it was stopped"

LIBRARY = "#!lua name=hostile\nredis.register_function('setit', function(keys) return redis.call('SET', keys[1], 'x') end)"


@pytest.fixture
def srv():
    with fresh_server(server_args=("--busy-reply-threshold", str(BUSY_MS))) as s:
        yield s


def in_lua(c):
    return c.eval("return redis.call('SET', KEYS[1], 'x')", 1, "spin:1")


def in_function(c):
    c.function_load(LIBRARY)
    return c.fcall("setit", 1, "spin:1")


def in_multi(c):
    pipe = c.pipeline(transaction=True)
    pipe.set("spin:1", "x")
    return pipe.execute()


def registration_stats(r):
    reg = r.execute_command("RG.DUMPREGISTRATIONS")[0]
    data = dict(zip(reg[::2], reg[1::2]))["RegistrationData"]
    return dict(zip(data[::2], data[1::2]))


@pytest.mark.parametrize("write", [in_lua, in_function, in_multi], ids=["lua", "function", "multi"])
def test_a_runaway_sync_callback_inside_a_script_or_transaction_is_stopped(srv, write):
    r = srv.client()
    pyexecute(r, SPIN + "GB().foreach(spin).register(prefix='spin:*', mode='sync')")
    out = {}
    t = threading.Thread(target=lambda c=srv.client(): out.setdefault("reply", write(c)))
    t.start()
    # No client can be answered -BUSY (nor send a kill) there: past the threshold the
    # callback is stopped, and the script or transaction finishes. Another client's
    # command meanwhile must not take the server down (Redis asserted serving it).
    time.sleep(3 * BUSY_MS / 1000)
    probe = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=5)
    try:
        assert probe.ping() is True
    except redis.ConnectionError as err:
        pytest.fail(f"server died: {err}\n{srv.log_tail()}", pytrace=False)
    t.join(10)
    assert not t.is_alive(), "the write never returned"
    assert srv.alive(), srv.log_tail()
    assert out["reply"] in ("OK", True, [True]), out
    assert r.get("spin:1") == "x"
    stats = wait_for(lambda: (s := registration_stats(r))["numFailures"] == 1 and s)
    assert "forcestopped" in str(stats["lastError"]), stats
    assert STOPPED_LOG in srv.logfile.read_text(errors="replace")


def test_script_kill_stops_a_runaway_keys_reader_commands_registration(srv):
    r = srv.client()
    pyexecute(r, SPIN + "GB().map(spin).register(prefix='g*', commands=['get'], mode='sync')")
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$2\r\ng1\r\n")
        probe = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=5)
        assert (wait_busy(probe) or "").startswith("BUSY"), "never busy"
        assert probe.execute_command("SCRIPT", "KILL") == b"OK"
        assert wait_for(lambda: busy_reply(probe) is None, timeout=5), "still busy"
        assert sock.recv(1024).startswith((b"$", b"-", b"*")), "the GET got no reply"
    finally:
        sock.close()
    assert r.ping() is True


LISTED = {
    "commands=": (SPIN + "GB().map(spin).register(prefix='g*', commands=['get'], mode='sync')",
                  b"*2\r\n$3\r\nGET\r\n$2\r\ng1\r\n"),
    "stream batch": (SPIN + "GB('StreamReader').foreach(spin).register(prefix='st*', mode='sync')",
                     b"*5\r\n$4\r\nXADD\r\n$3\r\nst1\r\n$1\r\n*\r\n$1\r\na\r\n$1\r\n1\r\n"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LISTED))
def test_rg_abortexecution_of_the_listed_id_stops_a_busy_run(srv, case):
    # RG.ABORTEXECUTION answered OK for these ids, and the run went on spinning.
    script, command = LISTED[case]
    r = srv.client()
    pyexecute(r, script)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        sock.sendall(command)
        probe = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=5,
                            decode_responses=True)  # fmt: skip
        assert (wait_busy(probe) or "").startswith("BUSY"), "never busy"
        running = [e[1] for e in probe.execute_command("RG.DUMPEXECUTIONS") if e[3] == "running"]
        assert len(running) == 1, probe.execute_command("RG.DUMPEXECUTIONS")
        assert probe.execute_command("RG.ABORTEXECUTION", running[0]) == "OK"
        assert wait_for(lambda: busy_reply(probe) is None, timeout=5), "still busy"
    finally:
        sock.close()
