"""registerTE(seconds, fn, keyName): time events stored in keys of type rg_timeev
(REFERENCE §5, §9, §11 item 51)."""

import pytest
import redis

from conftest import Server, assert_alive, fresh_server, holds_for, pyexecute, steady, wait_for

TICKER = """
STEP = 1
def tick():
    execute('INCRBY', 'te:count', STEP)
execute('SET', 'te:ret', str(registerTE(1, tick, 'timeEvent')))
"""


def count(c):
    return int(c.get('te:count') or 0)


def stopped(c):
    """The counter once it stops moving for 2.2 s (two periods), or None if it keeps moving."""
    return steady(lambda: count(c), quiet=2.2, timeout=8)


def rising(c, timeout=5):
    """The counter goes up within `timeout` seconds."""
    start = count(c)
    return wait_for(lambda: count(c) > start, timeout=timeout)


@pytest.fixture
def c():
    with fresh_server() as srv:
        client = srv.client()
        yield client
        assert_alive(client, srv)


def test_key_is_created_and_the_timer_runs(c):
    assert pyexecute(c, TICKER) == 'OK'
    assert c.get('te:ret') == 'True'
    assert c.type('timeEvent') == 'rg_timeev'
    assert rising(c)


def test_second_register_with_the_same_key_returns_false(c):
    assert pyexecute(c, TICKER) == 'OK'
    assert pyexecute(c, TICKER) == 'OK'
    assert c.get('te:ret') == 'False'
    # Only the first timer runs: one tick per second, not two (two would pass 4 within 3 s).
    start = count(c)
    assert holds_for(lambda: count(c) - start <= 4, 3), count(c) - start
    c.set('plain', 'x')
    script = "execute('SET', 'te:ret', str(registerTE(1, lambda: None, 'plain')))"
    assert pyexecute(c, script) == 'OK'
    assert c.get('te:ret') == 'False'
    assert c.type('plain') == 'string'


def test_del_stops_the_timer(c):
    assert pyexecute(c, TICKER) == 'OK'
    assert rising(c)
    assert c.delete('timeEvent') == 1
    # A tick already due may still land; then the counter stays put (a live 1 s timer would
    # move it within any 2.2 s).
    assert stopped(c) is not None, 'the timer still ticks after DEL'


def test_survives_debug_reload(c):
    # The callback reads a script global (STEP): it is stored with the function.
    script = TICKER.replace("STEP = 1", "STEP = 10")
    assert pyexecute(c, script) == 'OK'
    assert rising(c)
    assert c.execute_command('DEBUG', 'RELOAD') == 'OK'
    assert c.type('timeEvent') == 'rg_timeev'
    assert rising(c)
    assert count(c) % 10 == 0
    # The reloaded timer stops on DEL too, and only one timer runs after the reload.
    start = count(c)
    assert holds_for(lambda: count(c) - start <= 40, 3), count(c) - start
    c.delete('timeEvent')
    assert stopped(c) is not None, 'the timer still ticks after DEL'


def test_survives_restart_and_replaces_the_session_registrations():
    with fresh_server() as srv:
        c = srv.client()
        script = TICKER + "GB().foreach(lambda r: execute('INCR', 'te:events')).register('ev:*')\n"
        assert pyexecute(c, script) == 'OK'
        assert rising(c)
        c.execute_command('SAVE')
        srv.restart()
        c = srv.client()
        assert c.type('timeEvent') == 'rg_timeev'
        assert rising(c)
        c.set('ev:1', 'x')
        assert wait_for(lambda: c.get('te:events') == '1')


def test_survives_aof_rewrite_without_preamble():
    args = ['--appendonly', 'yes', '--aof-use-rdb-preamble', 'no']
    with fresh_server(server_args=args) as srv:
        c = srv.client()
        assert pyexecute(c, TICKER) == 'OK'
        c.execute_command('BGREWRITEAOF')
        assert wait_for(lambda: c.info('persistence')['aof_rewrite_in_progress'] == 0
                        and c.info('persistence')['aof_rewrite_scheduled'] == 0)
        srv.restart()
        c = srv.client()
        assert c.type('timeEvent') == 'rg_timeev'
        assert rising(c)


def test_replica_gets_the_key_but_only_the_master_ticks():
    with Server() as master, Server() as replica:
        m, r = master.client(), replica.client()
        r.execute_command('REPLICAOF', '127.0.0.1', master.port)
        assert wait_for(lambda: r.info('replication')['master_link_status'] == 'up', timeout=15)
        assert pyexecute(m, TICKER) == 'OK'
        assert wait_for(lambda: r.type('timeEvent') == 'rg_timeev', timeout=10)
        assert rising(m)
        # The replica's count follows the master's (replicated INCRBY), never ahead of it
        # (the replica is read first: the master's count only grows).
        assert holds_for(lambda: int(r.get('te:count') or 0) <= count(m), 1.5)
        m.delete('timeEvent')
        assert wait_for(lambda: r.exists('timeEvent') == 0, timeout=10)
        assert stopped(m) is not None, "the master's timer still ticks after DEL"
        assert wait_for(lambda: r.get('te:count') == m.get('te:count'), timeout=10), \
            (r.get('te:count'), m.get('te:count'))


def test_bad_arguments(c):
    with pytest.raises(redis.ResponseError, match='key name must be a string'):
        pyexecute(c, "registerTE(1, lambda: None, 5)")
    with pytest.raises(redis.ResponseError, match='time argument must be a positive integer'):
        pyexecute(c, "registerTE(0, lambda: None, 'k')")
    assert c.exists('k') == 0
