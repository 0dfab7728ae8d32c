"""A hostile RG.PYEXECUTE body that never ends: it is stopped when its client disconnects
(again every 20 ms, so a bare `except` around pure-Python work cannot keep it alive), and
while it runs it does not hold up other clients' scripts, even when there are more such
bodies than script threads."""
import os
import socket
import threading

import redis
from conftest import fresh_server, pyexecute, steady, wait_for

# Counts its turns in `{key}` until stopped.
SPINNER = """
while True:
    execute('INCR', '{key}')
"""

# Catches what it can around pure-Python work, as a bare `except` does.
CATCHER = """
execute('SET', '{key}', 'started')
while True:
    try:
        n = sum(range(1000))
    except BaseException:
        pass
"""


def send_raw(port, script):
    """Sends RG.PYEXECUTE `script` on a raw socket of its own, without reading a reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    parts = [b"RG.PYEXECUTE", script.encode()]
    cmd = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    s.sendall(cmd)
    return s


def hang_up(s):
    s.shutdown(socket.SHUT_RDWR)
    s.close()


def send_and_hang_up(port, script, after=0.5):
    """Sends RG.PYEXECUTE `script` and hangs up `after` seconds later, without reading a
    reply (a client that gave up)."""
    threading.Timer(after, hang_up, [send_raw(port, script)]).start()


def ticks(c, key):
    return int(c.get(key) or 0)


def test_a_body_that_never_ends_stops_when_its_client_goes():
    with fresh_server() as srv:
        c = srv.client()
        send_and_hang_up(srv.port, SPINNER.format(key="ticks"))
        assert wait_for(lambda: ticks(c, "ticks") > 0), "the body never ran"
        # Still counting before the hang-up would be fine; after it the count must settle.
        assert steady(lambda: ticks(c, "ticks"), quiet=1.0, timeout=15) is not None, \
            "the body kept running after its client disconnected"
        assert pyexecute(c, "GB('ShardsIDReader').count().run()") == [["1"], []]


def test_more_endless_bodies_than_script_threads_do_not_block_other_scripts():
    with fresh_server() as srv:
        c = srv.client()
        hogs = [send_raw(srv.port, SPINNER.format(key=f"hog{i}")) for i in range(3)]
        try:
            assert wait_for(lambda: all(ticks(c, f"hog{i}") > 0 for i in range(3)), timeout=10), \
                "the three endless bodies did not all start"
            quick = redis.Redis(host="127.0.0.1", port=srv.port, decode_responses=True,
                                socket_timeout=10)
            assert quick.execute_command("RG.PYEXECUTE", "GB('ShardsIDReader').count().run()") \
                == [["1"], []]
        finally:
            for h in hogs:
                hang_up(h)
        for i in range(3):
            assert steady(lambda i=i: ticks(c, f"hog{i}"), quiet=1.0, timeout=15) is not None


def test_a_bare_except_does_not_keep_a_body_alive_after_its_client_goes():
    with fresh_server() as srv:
        c = srv.client()
        send_and_hang_up(srv.port, CATCHER.format(key="catcher"), after=0.5)
        assert wait_for(lambda: c.get("catcher") == "started")
        # A body still spinning holds the GIL between switches: the CPU time of the
        # server's threads keeps growing. Stopped, a script that needs the GIL runs freely;
        # the server's CPU settles.
        assert steady(lambda: round(server_cpu_seconds(srv), 1), quiet=1.0, timeout=15) is not None


def server_cpu_seconds(srv):
    with open(f"/proc/{srv.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
