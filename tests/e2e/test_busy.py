"""Runaway Python that holds the Redis lock on the main thread (issue 10): past
busy-reply-threshold the server keeps answering (-BUSY, as for a long Lua script), and
SCRIPT KILL, FUNCTION KILL or RG.ABORTEXECUTION <id> stop the callback."""

import socket
import threading
import time

import pytest
import redis

from conftest import fresh_server, holds_for, pyexecute, wait_for

SPIN = "def spin(x):\n    while True:\n        pass\n"


def busy_reply(client):
    """The error a command gets while the server is busy, or None if it ran."""
    try:
        client.ping()
        return None
    except redis.ResponseError as err:
        return str(err)


@pytest.fixture
def srv():
    with fresh_server(server_args=('--busy-reply-threshold', '300')) as s:
        yield s


def start_write(srv, key):
    """SET key from another client; returns (thread, result holder)."""
    out = {}

    def run():
        try:
            out['reply'] = srv.client().set(key, 'v')
        except redis.RedisError as err:
            out['reply'] = err

    t = threading.Thread(target=run)
    t.start()
    return t, out


def wait_busy(r):
    """Polls until the server answers BUSY (bounded); returns the error text."""
    return wait_for(lambda: busy_reply(r), timeout=10)


def test_a_spinning_sync_registration_gets_busy_replies_and_script_kill_stops_it(srv):
    r = srv.client()
    pyexecute(r, SPIN + "GB().foreach(spin).register(prefix='spin*', mode='sync')")
    t, out = start_write(srv, 'spin1')
    err = wait_busy(r)
    assert err and err.startswith('BUSY Gearshift is busy running a Python callback'), err
    # Only kill commands run meanwhile.
    with pytest.raises(redis.ResponseError, match='^BUSY'):
        r.get('spin1')
    assert r.execute_command('SCRIPT', 'KILL') == 'OK'
    t.join(10)
    assert not t.is_alive()
    assert out['reply'] is True  # the write itself went through
    assert wait_for(lambda: busy_reply(r) is None, timeout=10)
    reg = r.execute_command('RG.DUMPREGISTRATIONS')[0]
    data = dict(zip(reg[::2], reg[1::2]))['RegistrationData']
    stats = dict(zip(data[::2], data[1::2]))
    assert stats['numFailures'] == 1
    assert 'gears.forcestopped' in str(stats['lastError'])
    # Nothing is left running: a second write is killed the same way.
    t, out = start_write(srv, 'spin2')
    wait_busy(r)
    assert r.execute_command('FUNCTION', 'KILL') == 'OK'
    t.join(10)
    assert out['reply'] is True


def test_rg_abortexecution_stops_a_listed_sync_execution(srv):
    r = srv.client()
    pyexecute(r, SPIN + "GB().foreach(spin).accumulate(lambda a, x: 1).register(prefix='acc*', mode='sync')")
    t, _ = start_write(srv, 'acc1')
    wait_busy(r)
    running = [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running']
    assert len(running) == 1, r.execute_command('RG.DUMPEXECUTIONS')
    assert r.execute_command('RG.ABORTEXECUTION', running[0]) == 'OK'
    t.join(10)
    assert not t.is_alive()
    assert wait_for(lambda: busy_reply(r) is None, timeout=10)


def test_script_kill_without_a_busy_callback_keeps_redis_reply(srv):
    r = srv.client()
    with pytest.raises(redis.ResponseError, match='NOTBUSY'):
        r.execute_command('SCRIPT', 'KILL')


def test_a_spinning_time_event_is_killable(srv):
    r = srv.client()
    pyexecute(r, """
def tick():
    execute('INCR', 'ticks')
    while True:
        pass
registerTE(1, tick)
""")
    wait_busy(r)
    assert r.execute_command('SCRIPT', 'KILL') == 'OK'
    # The kill lands at the callback's next bytecode; commands sent meanwhile still get BUSY.
    assert wait_for(lambda: busy_reply(r) is None, timeout=10)
    # As when its callback raises (1.2), the killed time event stops: one tick, no more.
    assert r.get('ticks') == '1'
    assert holds_for(lambda: r.get('ticks') == '1', 1.5), 'a live 1 s timer would tick again'


def test_a_quick_sync_callback_never_sees_busy(srv):
    r = srv.client()
    pyexecute(r, "GB().foreach(lambda x: execute('INCR', 'n')).register(prefix='q*', mode='sync')")
    t0 = time.monotonic()
    for i in range(200):
        r.set(f'q{i}', 'v')
    assert r.get('n') == '200'
    assert time.monotonic() - t0 < 60  # liveness bound, not a speed check


def test_a_blocking_run_whose_client_left_is_listed_and_abortable(srv):
    r = srv.client()
    # A client that sends one blocking run and leaves (raw socket: no client-side retries).
    script = (SPIN + "GB('ShardsIDReader').map(spin).run()").encode()
    cmd = b'*2\r\n$12\r\nRG.PYEXECUTE\r\n$%d\r\n%s\r\n' % (len(script), script)
    with socket.create_connection(('127.0.0.1', srv.port), timeout=5) as sock:
        sock.sendall(cmd)
        running = wait_for(lambda: [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running'])
    assert len(running) == 1
    assert r.execute_command('RG.ABORTEXECUTION', running[0]) == 'OK'
    # It ends, and like every blocking run it is dropped once it has (tried to) reply.
    assert wait_for(lambda: r.execute_command('RG.DUMPEXECUTIONS') == [], timeout=10)
    assert pyexecute(r, "GB('ShardsIDReader').count().run()") == [['1'], []]


def test_a_finished_blocking_run_is_not_listed(srv):
    r = srv.client()
    assert pyexecute(r, "GB('ShardsIDReader').count().run()") == [['1'], []]
    assert r.execute_command('RG.DUMPEXECUTIONS') == []


def test_a_spinning_async_registration_is_listed_and_abortable(srv):
    r = srv.client()
    pyexecute(r, """
def f(x):
    if x['key'] == 'as1':
        while True:
            pass
    execute('INCR', 'done')
GB().foreach(f).register(prefix='as*', mode='async')""")
    r.set('as1', 'x')
    running = wait_for(lambda: [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running'])
    assert len(running) == 1, r.execute_command('RG.DUMPEXECUTIONS')
    assert r.execute_command('RG.ABORTEXECUTION', running[0]) == 'OK'
    # The registration goes on with later events; the aborted one failed with forcestopped.
    r.set('as2', 'x')
    assert wait_for(lambda: r.get('done') == '1', timeout=10)
    res = r.execute_command('RG.GETRESULTS', running[0])
    assert 'forcestopped' in str(res[1]), res
    assert [e[3] for e in r.execute_command('RG.DUMPEXECUTIONS')] == ['done', 'done']


def test_shutdown_nosave_works_while_busy(srv):
    r = srv.client()
    pyexecute(r, SPIN + "GB().foreach(spin).register(prefix='spin*', mode='sync')")
    start_write(srv, 'spin1')
    wait_busy(r)
    with pytest.raises(redis.ConnectionError):
        r.execute_command('SHUTDOWN', 'NOSAVE')
    assert wait_for(lambda: not srv.alive(), timeout=10)


def test_a_spinning_trigger_run_is_listed_and_abortable(srv):
    r = srv.client()
    pyexecute(r, SPIN + "GB('CommandReader').map(spin).register(trigger='spin', mode='async')")
    blocked = srv.client()
    res = {}
    th = threading.Thread(target=lambda: res.setdefault('r', _trigger(blocked)))
    th.start()
    running = wait_for(lambda: [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running'])
    assert len(running) == 1
    assert r.execute_command('RG.ABORTEXECUTION', running[0]) == 'OK'
    th.join(10)
    assert not th.is_alive()
    # The blocked client is answered (the aborted run's results: none).
    assert res['r'] == [] or 'forcestopped' in str(res['r']), res
    # Trigger runs are dropped once they replied (1.2).
    assert wait_for(lambda: r.execute_command('RG.DUMPEXECUTIONS') == [], timeout=10)


def _trigger(c):
    try:
        return c.execute_command('RG.TRIGGER', 'spin')
    except redis.RedisError as err:
        return err


def test_a_runaway_atomic_block_on_a_worker_is_stopped_past_the_threshold(srv):
    # Redis cannot answer -BUSY while a worker holds its lock, so the block is stopped
    # (gears.forcestopped) once it passes busy-reply-threshold, instead of hanging the server.
    r = srv.client()
    out = pyexecute(r, "def f(x):\n    with atomic():\n        while True:\n            pass\n"
                       "GB('ShardsIDReader').foreach(f).run()")
    assert out[0] == [] and 'forcestopped' in str(out[1]), out
    assert r.ping() is True
    assert pyexecute(r, "with atomic():\n    execute('INCR', 'n')") == 'OK'
    assert r.get('n') == '1'
