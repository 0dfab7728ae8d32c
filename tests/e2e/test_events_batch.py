"""Keyspace events drained in batches (issue 5, DESIGN §6): every event is still one
execution with 1.2's accounting (REFERENCE §2.1, §8), in trigger order, under bursts."""
import pytest
import redis

from conftest import assert_alive, burst, fresh_server, holds_for, pyexecute, steady, unregister_all, wait_for as _wait_for

ZEROS = '0' * 40


def eid(n):
    return f'{ZEROS}-{n}'


def ev(i):
    """The id of the i-th event after one registering RG.PYEXECUTE on a fresh server: the
    script took id 0 (1.2 installs registrations with an execution)."""
    return eid(i + 1)


def wait_for(fn, timeout=20.0):
    """conftest.wait_for with this module's longer bound (bursts of 20k events)."""
    return _wait_for(fn, timeout, interval=0.01)


def reg_stats(c, i=0):
    data = c.execute_command('RG.DUMPREGISTRATIONS')[i][7]
    return dict(zip(data[0::2], data[1::2]))


def settled(c, n, i=0):
    """Waits until registration i finished n executions; returns its stats."""
    def done():
        s = reg_stats(c, i)
        return s if s['numSuccess'] + s['numFailures'] + s['numAborted'] >= n else None
    return wait_for(done) or reg_stats(c, i)


def registered_ids(c):
    return [e[1] for e in c.execute_command('RG.DUMPEXECUTIONS') if e[5] == 1]


@pytest.fixture
def srv():
    with fresh_server() as s:
        yield s


def test_pipelined_burst_counts_every_event(srv):
    c = srv.client()
    assert pyexecute(c, "GB().foreach(lambda x: execute('INCR', 'seen')).register('ev:*')") == 'OK'
    n = 20000
    burst(c, 'ev:', n)
    s = settled(c, n)
    assert (s['numTriggered'], s['numSuccess'], s['numFailures']) == (n, n, 0)
    assert s['lastError'] is None
    assert c.get('seen') == str(n)
    assert holds_for(lambda: c.get('seen') == str(n), 0.5), 'every event exactly once'
    info = c.info('rg')
    assert info['rg_gearshift_events_triggered'] == n
    assert info['rg_gearshift_events_dropped'] == 0
    assert_alive(c, srv)


def test_each_event_is_its_own_kept_execution(srv):
    c = srv.client()
    assert pyexecute(c, "GB().map(lambda x: x['key'] + '=' + x['value']).register('k:*')") == 'OK'
    n = 300
    burst(c, 'k:', n)
    settled(c, n)
    # One id per event, in trigger order; the newest 100 (MaxExecutionsPerRegistration) kept.
    assert registered_ids(c) == [ev(i) for i in reversed(range(n - 100, n))]
    for i in (n - 1, n - 50, n - 100):
        assert c.execute_command('RG.GETRESULTS', ev(i)) == [[f'k:{i}=v{i}'], []]
    with pytest.raises(redis.ResponseError, match='does not exist'):
        c.execute_command('RG.GETRESULTS', ev(n - 101))
    # The next execution of any kind takes the next id.
    assert pyexecute(c, 'GB().run()', 'UNBLOCKING') == ev(n)


def test_failures_are_counted_per_event(srv):
    c = srv.client()
    script = "GB().map(lambda x: 1 // (int(x['value']) % 3 - 2) and x['value']).register('f:*')"
    assert pyexecute(c, script) == 'OK'
    n = 30  # values with i % 3 == 2 fail, the last one (29) among them
    burst(c, 'f:', n, value=str)
    s = settled(c, n)
    assert (s['numTriggered'], s['numSuccess'], s['numFailures']) == (n, 20, 10)
    assert 'ZeroDivisionError' in s['lastError']
    failed = c.execute_command('RG.GETRESULTS', ev(29))
    assert failed[0] == [] and 'ZeroDivisionError' in failed[1][0]
    assert c.execute_command('RG.GETRESULTS', ev(28)) == [['28'], []]
    # A success clears lastError (1.2).
    c.set('f:x', '1')
    assert wait_for(lambda: reg_stats(c)['numSuccess'] == 21)
    assert reg_stats(c)['lastError'] is None


def test_trigger_order_is_kept(srv):
    c = srv.client()
    assert pyexecute(c, "GB().foreach(lambda x: execute('RPUSH', 'order', x['key'])).register('o:*')") == 'OK'
    n = 5000
    burst(c, 'o:', n)
    assert wait_for(lambda: c.llen('order') == n)
    assert c.lrange('order', 0, -1) == [f'o:{i}' for i in range(n)]


def test_values_are_read_after_earlier_events_wrote_them(srv):
    """An event sees what the executions before it wrote, as with one execution at a time."""
    c = srv.client()
    script = """
def touch(x):
    if x['key'] == 'w:a':
        execute('SET', 'w:b', 'changed')
GB().foreach(touch).map(lambda x: x['key'] + '=' + x['value']).register('w:*', eventTypes=['set'])
"""
    assert pyexecute(c, script) == 'OK'
    p = c.pipeline(transaction=True)  # both notifications fire before any execution runs
    p.set('w:a', '1')
    p.set('w:b', '1')
    p.execute()
    settled(c, 3)  # w:a, w:b, and w:b again from the write
    assert c.execute_command('RG.GETRESULTS', ev(0)) == [['w:a=1'], []]
    assert c.execute_command('RG.GETRESULTS', ev(1)) == [['w:b=changed'], []]
    assert c.execute_command('RG.GETRESULTS', ev(2)) == [['w:b=changed'], []]


@pytest.mark.parametrize('per_reg,total,kept', [(7, 1000, 7), (100, 5, 5)])
def test_kept_executions_are_capped(per_reg, total, kept):
    with fresh_server(MaxExecutionsPerRegistration=per_reg, MaxExecutions=total) as s:
        c = s.client()
        assert pyexecute(c, "GB().map(lambda x: x['value']).register('c:*')") == 'OK'
        n = 1000
        burst(c, 'c:', n)
        settled(c, n)
        ids = registered_ids(c)
        assert ids == [ev(i) for i in reversed(range(n - kept, n))]
        assert len(c.execute_command('RG.DUMPEXECUTIONS')) == kept
        for i in range(n - kept, n):
            assert c.execute_command('RG.GETRESULTS', ev(i)) == [[f'v{i}'], []]


def test_accumulate_flows_still_run_one_execution_per_event(srv):
    c = srv.client()
    assert pyexecute(c, "GB().accumulate(lambda a, x: (a or 0) + 1).register('a:*')") == 'OK'
    n = 50
    burst(c, 'a:', n)
    s = settled(c, n)
    assert (s['numTriggered'], s['numSuccess']) == (n, n)
    # Each execution accumulated its own single record.
    for i in range(n - 5, n):
        assert c.execute_command('RG.GETRESULTS', ev(i)) == [['1'], []]


def test_two_registrations_each_count_every_event(srv):
    c = srv.client()
    assert pyexecute(c, "GB().foreach(lambda x: execute('INCR', 'one')).register('t:*')") == 'OK'
    assert pyexecute(c, "GB().foreach(lambda x: execute('INCR', 'two')).register('t:*', mode='async_local')") == 'OK'
    n = 5000
    burst(c, 't:', n)
    settled(c, n, 0)
    settled(c, n, 1)
    assert (c.get('one'), c.get('two')) == (str(n), str(n))


def test_unregister_abortpending_drops_queued_events(srv):
    # Without abortpending the queued events still run (test_register.py).
    c = srv.client()
    assert pyexecute(c, "import time\nGB().foreach(lambda x: time.sleep(0.005)).foreach(lambda x: execute('INCR', 'ran')).register('u:*')") == 'OK'
    burst(c, 'u:', 300)
    reg_id = c.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert c.execute_command('RG.UNREGISTER', reg_id, 'abortpending') == 'OK'
    ran = int(c.get('ran') or 0)
    # Queued events would move the counter every 5 ms: it must settle at once.
    after = steady(lambda: int(c.get('ran') or 0), quiet=0.3)
    assert after is not None and after <= ran + 1, ('at most the running event finishes', ran, after)
    assert after < 300


def tricky_values():
    return {
        'n:plain': 'hello',
        "n:q'uote": 'it\'s "quoted"',
        'n:only\'single': "it's",
        'n:esc': 'tab\there\nnl\\bs\x01\x7f',
        'n:uni': 'caf\u00e9 \u2603',
        'n:empty': '',
    }


# Not `keymiss`: reading a deleted key raises one, which an async flow would see again.
EVENTS = "eventTypes=['set', 'hset', 'rpush', 'del']"


@pytest.mark.parametrize('flow', [
    f"GB().register('n:*', mode='sync', {EVENTS})",
    f"GB().map(lambda x: x).register('n:*', mode='sync', {EVENTS})",
    f"GB().register('n:*', {EVENTS})",
    f"GB().map(lambda x: x).register('n:*', {EVENTS})",
])
def test_records_print_as_python_str(srv, flow):
    """Records rendered without Python (GB().register()) print exactly as str() would."""
    c = srv.client()
    assert pyexecute(c, flow) == 'OK'
    expected = []
    for k, v in tricky_values().items():
        c.set(k, v)
        expected.append(str({'key': k, 'value': v, 'type': 'string', 'event': 'set'}))
    c.hset('n:hash', mapping={'f': 'x', "g'": 'y\n'})
    expected.append(str({'key': 'n:hash', 'value': {'f': 'x', "g'": 'y\n'}, 'type': 'hash', 'event': 'hset'}))
    c.rpush('n:list', 'a', "b'")
    expected.append(str({'key': 'n:list', 'value': ['a', "b'"], 'type': 'list', 'event': 'rpush'}))
    # An async flow reads a key when its event runs: let the writes above be read before
    # the delete, or n:plain's set event may find it gone.
    settled(c, len(expected))
    c.delete('n:plain')
    expected.append(str({'key': 'n:plain', 'value': None, 'type': 'empty', 'event': 'del'}))
    settled(c, len(expected))
    got = [c.execute_command('RG.GETRESULTS', ev(i))[0] for i in range(len(expected))]
    assert got == [[e] for e in expected]


def test_sync_flow_records_and_ids(srv):
    c = srv.client()
    assert pyexecute(c, "GB().map(lambda x: {'k': x['key'], 'ok': True, 'n': None}).register('s:*', mode='sync')") == 'OK'
    for i in range(3):
        c.set(f's:{i}', 'v')
        # Finished before the write returns.
        assert c.execute_command('RG.GETRESULTS', ev(i)) == [[str({'k': f's:{i}', 'ok': True, 'n': None})], []]
    s = reg_stats(c)
    assert (s['numTriggered'], s['numSuccess']) == (3, 3)


def test_deleting_a_key_does_not_retrigger_forever(r):
    """Reading a deleted key must not raise `keymiss` (which would trigger again)."""
    pyexecute(r, "GB().foreach(lambda x: None).register('*')")
    try:
        r.set('loop:k', '1')
        r.delete('loop:k')
        # A retrigger loop would keep numTriggered moving; it settles at the two events.
        triggered = steady(lambda: reg_stats(r)['numTriggered'], quiet=0.5)
        assert triggered is not None and triggered <= 3, triggered
    finally:
        unregister_all(r)


def test_batched_reads_of_mixed_types_match_reads_one_by_one(r):
    # A drain reads the string values of a batch with one MGET and opens the other keys
    # (missing, hashes, lists, sets) one by one: every record must be what a sync flow,
    # which reads each key as its event fires, makes of it. Each key is written once.
    try:
        r.set('m:gone', 'x')
        for mode, out in (('async', 'out:async'), ('sync', 'out:sync')):
            assert pyexecute(r, f"GB().foreach(lambda x: execute('RPUSH', '{out}', str(x)))"
                                f".register(prefix='m:*', mode='{mode}')") == 'OK'
        p = r.pipeline(transaction=False)
        for i in range(40):
            kind = i % 8
            if kind == 0:
                p.set(f'm:{i}', i)  # an int-encoded string
            elif kind == 1:
                p.set(f'm:{i}', f'short {i}')
            elif kind == 2:
                p.set(f'm:{i}', 'long value ' * 8 + str(i))  # a raw string (over 44 bytes)
            elif kind == 3:
                p.hset(f'm:{i}', mapping={'a': i, 'b': 'x'})
            elif kind == 4:
                p.rpush(f'm:{i}', 'a', i)
            elif kind == 5:
                p.sadd(f'm:{i}', 'a')
            elif kind == 6:
                p.set(f'm:{i}', b'\xff\x00bin')
            else:
                p.set(f'm:{i}', '')
        p.delete('m:gone')
        p.execute()
        assert wait_for(lambda: r.llen('out:async') == 41)
        assert r.lrange('out:async', 0, -1) == r.lrange('out:sync', 0, -1)
    finally:
        unregister_all(r)
