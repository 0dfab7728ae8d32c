"""Executions waiting for a worker, aborting them, execution ids of registering scripts and
SLOWLOG entries of blocked clients (REFERENCE §1.1 RG.PYEXECUTE / RG.ABORTEXECUTION, §8,
§12 item 7)."""
import threading

import pytest
import redis

from conftest import HOLD, fresh_server, pyexecute, wait_for

ZEROS = '0' * 40


def status(c, eid):
    found = [e[3] for e in c.execute_command('RG.DUMPEXECUTIONS') if e[1] == eid]
    return found[0] if found else None


def short_client(srv, timeout=5):
    """A client whose commands fail after `timeout` s instead of waiting for a busy pool."""
    return redis.Redis(host='127.0.0.1', port=srv.port, decode_responses=True, socket_timeout=timeout)


@pytest.fixture
def one_thread():
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        busy = pyexecute(c, HOLD, 'UNBLOCKING')
        assert wait_for(lambda: c.get('holding') == '1'), 'the execution thread is busy'
        yield srv, c, busy
        c.set('release', '1')


def test_script_runs_while_every_execution_thread_is_busy(one_thread):
    srv, c, busy = one_thread
    quick = short_client(srv)
    # The script itself runs at once (its top-level code writes a key); its run waits.
    eid = pyexecute(quick, "execute('SET', 'script_ran', '1')\nGB('ShardsIDReader').run()", 'UNBLOCKING')
    assert eid.startswith(ZEROS + '-')
    assert c.get('script_ran') == '1'
    assert status(c, eid) == 'created'
    assert status(c, busy) == 'running'
    c.set('release', '1')
    assert c.execute_command('RG.GETRESULTSBLOCKING', eid) == [['1'], []]
    assert status(c, eid) == 'done'


def test_blocking_script_runs_while_every_execution_thread_is_busy(one_thread):
    srv, c, busy = one_thread
    got = {}
    blocked = srv.client()

    def call():
        got['reply'] = pyexecute(blocked, "execute('SET', 'script_ran', '1')\nGB('ShardsIDReader').run()")

    t = threading.Thread(target=call)
    t.start()
    assert wait_for(lambda: c.get('script_ran') == '1'), 'the script ran while the thread was busy'
    waiting = wait_for(lambda: [e for e in c.execute_command('RG.DUMPEXECUTIONS') if e[1] != busy])
    assert [e[3] for e in waiting] == ['created']
    c.set('release', '1')
    t.join(30)
    assert got['reply'] == [['1'], []]


def test_abort_a_created_execution(one_thread):
    srv, c, busy = one_thread
    eid = pyexecute(short_client(srv),
                    "GB('ShardsIDReader').foreach(lambda x: execute('SET', 'queued_ran', '1')).run()",
                    'UNBLOCKING')
    assert status(c, eid) == 'created'
    assert c.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
    assert status(c, eid) == 'aborted'
    c.set('release', '1')
    assert c.execute_command('RG.GETRESULTSBLOCKING', busy) == [['1'], []]
    # Whatever was queued behind the busy execution has had its turn by the time a new one ends.
    assert pyexecute(c, "GB('ShardsIDReader').run()") == [['1'], []]
    assert c.get('queued_ran') is None, 'an aborted execution never runs'
    assert status(c, eid) == 'aborted'
    assert c.execute_command('RG.GETRESULTS', eid) == [[], []]


def test_abort_a_created_blocking_execution_answers_its_client_at_once(one_thread):
    srv, c, busy = one_thread
    got = {}
    blocked = short_client(srv)

    def call():
        got['reply'] = pyexecute(blocked, "GB('ShardsIDReader').run()")

    t = threading.Thread(target=call)
    t.start()
    waiting = wait_for(lambda: [e[1] for e in c.execute_command('RG.DUMPEXECUTIONS') if e[1] != busy])
    assert c.execute_command('RG.ABORTEXECUTION', waiting[0]) == 'OK'
    # Answered while the only execution thread is still busy (`release` is not set yet).
    t.join(10)
    assert got.get('reply') == [[], []], got
    assert status(c, busy) == 'running'


def test_abort_a_running_execution_leaves_it_done_with_one_error(r):
    eid = pyexecute(r, "def spin(x):\n    execute('SET', 'spinning', '1')\n    while True:\n        pass\n"
                       "GB('ShardsIDReader').map(spin).run()", 'UNBLOCKING')
    assert wait_for(lambda: r.get('spinning') == '1')
    assert r.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
    res = r.execute_command('RG.GETRESULTSBLOCKING', eid)
    assert res[0] == [] and len(res[1]) == 1, res
    assert status(r, eid) == 'done'


def test_abort_a_running_blocking_execution_replies_with_one_error(r, server):
    got = {}
    blocked = server.client()

    def call():
        got['reply'] = pyexecute(blocked, "def spin(x):\n    execute('SET', 'spinning', '1')\n"
                                          "    while True:\n        pass\n"
                                          "GB('ShardsIDReader').map(spin).run()")

    t = threading.Thread(target=call)
    t.start()
    assert wait_for(lambda: r.get('spinning') == '1')
    [eid] = [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running']
    assert r.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
    t.join(30)
    assert got['reply'][0] == [] and len(got['reply'][1]) == 1, got


def test_queued_keysreader_events_are_listed_as_created(one_thread):
    srv, c, busy = one_thread
    pyexecute(c, "GB().foreach(lambda x: None).register('q:*')")
    c.set('q:1', '1')
    c.set('q:2', '1')
    waiting = wait_for(lambda: [e for e in c.execute_command('RG.DUMPEXECUTIONS') if e[1] != busy])
    assert [e[3] for e in waiting] == ['created', 'created']
    assert [e[5] for e in waiting] == [1, 1], 'registered executions'
    plan = c.execute_command('RG.GETEXECUTION', waiting[0][1])[0][3]
    assert plan[0] == 'status' and plan[1] == 'created'


def event_number(eid):
    return int(eid.rsplit('-', 1)[1])


# A record-local flow (batched drain) and one that is not (one engine execution per event).
EVENT_FLOWS = ["GB().map(lambda x: x['key']).register('q:*')",
               "GB().map(lambda x: x['key']).limit(5).register('q:*')"]


@pytest.mark.parametrize('flow', EVENT_FLOWS, ids=['batched', 'per-event'])
def test_queued_events_take_ids_in_event_order_then_run_done(one_thread, flow):
    srv, c, busy = one_thread
    pyexecute(c, flow)
    keys = [f'q:{i}' for i in range(4)]
    for k in keys:
        c.set(k, '1')
    waiting = wait_for(lambda: [e[1] for e in c.execute_command('RG.DUMPEXECUTIONS')
                                if e[3] == 'created'])
    assert len(waiting) == 4
    ids = sorted(waiting, key=event_number)
    assert ids == waiting[::-1], 'listed newest first'
    assert event_number(ids[0]) > event_number(busy)
    with pytest.raises(redis.ResponseError, match='execution is still running'):
        c.execute_command('RG.GETRESULTS', ids[1])
    with pytest.raises(redis.ResponseError, match='can not drop a not yet finished execution'):
        c.execute_command('RG.DROPEXECUTION', ids[1])
    got = {}
    blocked = short_client(srv, timeout=30)
    t = threading.Thread(target=lambda: got.update(
        reply=blocked.execute_command('RG.GETRESULTSBLOCKING', ids[2])))
    t.start()
    c.set('release', '1')
    t.join(30)
    assert got.get('reply') == [[keys[2]], []], got
    assert wait_for(lambda: all(status(c, i) == 'done' for i in ids)), \
        [status(c, i) for i in ids]
    # The execution created for the i-th event ran the i-th event.
    assert [c.execute_command('RG.GETRESULTS', i) for i in ids] == [[[k], []] for k in keys]


@pytest.mark.parametrize('flow', EVENT_FLOWS, ids=['batched', 'per-event'])
def test_abort_a_created_event_execution_never_runs_it(one_thread, flow):
    srv, c, busy = one_thread
    pyexecute(c, flow.replace("map(lambda x: x['key'])",
                              "map(lambda x: execute('SET', 'ran:' + x['key'], '1') and x['key'])"))
    for k in ('q:1', 'q:2', 'q:3'):
        c.set(k, '1')
    waiting = wait_for(lambda: sorted((e[1] for e in c.execute_command('RG.DUMPEXECUTIONS')
                                       if e[3] == 'created'), key=event_number))
    assert len(waiting) == 3
    first, second, third = waiting
    assert c.execute_command('RG.ABORTEXECUTION', second) == 'OK'
    assert status(c, second) == 'aborted'
    assert c.execute_command('RG.GETRESULTS', second) == [[], []]
    plan = c.execute_command('RG.GETEXECUTION', second)[0][3]
    assert plan[1] == 'aborted'
    c.set('release', '1')
    assert wait_for(lambda: status(c, third) == 'done')
    assert status(c, first) == 'done' and status(c, second) == 'aborted'
    assert (c.get('ran:q:1'), c.get('ran:q:2'), c.get('ran:q:3')) == ('1', None, '1')
    data = c.execute_command('RG.DUMPREGISTRATIONS')[0][7]
    stats = dict(zip(data[0::2], data[1::2]))
    assert (stats['numTriggered'], stats['numSuccess'], stats['numAborted']) == (3, 2, 1)


def registered_rows(c):
    return [(e[1], e[3]) for e in c.execute_command('RG.DUMPEXECUTIONS') if e[5] == 1]


@pytest.fixture
def capped():
    """One execution thread and `MaxExecutionsPerRegistration 2`; `hold()` occupies the thread."""
    with fresh_server(ExecutionThreads=1, MaxExecutionsPerRegistration=2) as srv:
        c = srv.client()

        def hold():
            pyexecute(c, HOLD, 'UNBLOCKING')
            assert wait_for(lambda: c.get('holding') == '1'), 'the execution thread is busy'
        yield srv, c, hold
        c.set('release', '1')


@pytest.mark.parametrize('flow', EVENT_FLOWS, ids=['batched', 'per-event'])
def test_queued_events_count_in_max_executions_per_registration(capped, flow):
    srv, c, hold = capped
    pyexecute(c, flow)
    c.set('q:0', '1')
    c.set('q:1', '1')
    done = wait_for(lambda: [i for i, st in registered_rows(c) if st == 'done'][1:])
    assert done, registered_rows(c)
    old = [i for i, _ in registered_rows(c)]
    hold()
    for i in (2, 3, 4):
        c.set(f'q:{i}', '1')
    # The registration lists its 2 newest executions: the last two queued events; its
    # done ones are dropped (1.2 drops the oldest as each event's execution is created).
    rows = registered_rows(c)
    assert [st for _, st in rows] == ['created', 'created'], rows
    queued = [i for i, _ in rows]
    assert sorted(queued, key=event_number) == queued[::-1]
    for i in old:
        with pytest.raises(redis.ResponseError, match='execution plan does not exist'):
            c.execute_command('RG.GETEXECUTION', i)
    c.set('release', '1')
    assert wait_for(lambda: [st for _, st in registered_rows(c)] == ['done', 'done']), registered_rows(c)
    assert [i for i, _ in registered_rows(c)] == queued
    assert [c.execute_command('RG.GETRESULTS', i) for i in queued] == [[['q:4'], []], [['q:3'], []]]


def blocked_clients(c):
    return c.info('clients')['blocked_clients']


def block_on(srv, eid, got):
    blocked = short_client(srv, timeout=30)
    t = threading.Thread(target=lambda: got.update(
        reply=blocked.execute_command('RG.GETRESULTSBLOCKING', eid)))
    t.start()
    return t


@pytest.mark.parametrize('flow', EVENT_FLOWS, ids=['batched', 'per-event'])
def test_getresultsblocking_on_a_queued_event_gets_its_result_even_if_dropped(capped, flow):
    srv, c, hold = capped
    pyexecute(c, flow)
    hold()
    c.set('q:1', '1')
    c.set('q:2', '1')
    first = sorted((i for i, _ in registered_rows(c)), key=event_number)[0]
    got = {}
    t = block_on(srv, first, got)
    assert wait_for(lambda: blocked_clients(c) == 1)
    # Two more events push it out of the registration's list: its execution is dropped
    # once done, but the client waiting for it gets its result when it runs.
    c.set('q:3', '1')
    c.set('q:4', '1')
    c.set('release', '1')
    t.join(30)
    assert got.get('reply') == [['q:1'], []], got


def test_getresultsblocking_on_a_discarded_event_is_answered(one_thread):
    srv, c, busy = one_thread
    pyexecute(c, "GB().foreach(lambda x: None).register('q:*')")
    c.set('q:1', '1')
    [eid] = [i for i, _ in registered_rows(c)]
    got = {}
    t = block_on(srv, eid, got)
    assert wait_for(lambda: blocked_clients(c) == 1)
    rid = c.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert c.execute_command('RG.UNREGISTER', rid, 'abortpending') == 'OK'
    t.join(30)
    assert got.get('reply') == [[], []], got


def test_unregister_abortpending_drops_created_event_executions(one_thread):
    srv, c, busy = one_thread
    pyexecute(c, "GB().foreach(lambda x: execute('SET', 'ran', '1')).register('q:*')")
    c.set('q:1', '1')
    c.set('q:2', '1')
    assert wait_for(lambda: [e for e in c.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'created'])
    rid = c.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert c.execute_command('RG.UNREGISTER', rid, 'abortpending') == 'OK'
    assert [e for e in c.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'created'] == []
    c.set('release', '1')
    assert wait_for(lambda: status(c, busy) == 'done')
    assert c.get('ran') is None


def test_a_registering_script_uses_one_execution_id():
    with fresh_server(MaxExecutions=3) as srv:
        c = srv.client()
        assert pyexecute(c, "GB().foreach(lambda x: None).register('e:*', mode='sync')") == 'OK'
        for i in range(3):
            c.set(f'e:{i}', '1')
        ids = sorted(e[1] for e in c.execute_command('RG.DUMPEXECUTIONS'))
        assert ids == [f'{ZEROS}-{n}' for n in (1, 2, 3)]
        c.set('e:3', '1')
        ids = sorted(e[1] for e in c.execute_command('RG.DUMPEXECUTIONS'))
        assert ids == [f'{ZEROS}-{n}' for n in (2, 3, 4)]


@pytest.fixture
def slowlog(r):
    old = r.config_get('slowlog-log-slower-than')['slowlog-log-slower-than']
    r.config_set('slowlog-log-slower-than', 100000)  # 100 ms
    r.execute_command('SLOWLOG', 'RESET')
    yield r
    r.config_set('slowlog-log-slower-than', old)
    r.execute_command('SLOWLOG', 'RESET')


def slow_commands(c):
    return [e[3] for e in c.execute_command('SLOWLOG', 'GET', 100)]


SLOW = "import time\nGB('ShardsIDReader').map(lambda x: time.sleep(0.3) or x).run()"


def test_a_slow_blocking_pyexecute_is_in_the_slowlog(slowlog):
    assert pyexecute(slowlog, SLOW) == [['1'], []]
    assert ['RG.PYEXECUTE', SLOW] in slow_commands(slowlog)


def test_a_slow_trigger_is_in_the_slowlog(slowlog):
    assert pyexecute(slowlog, "import time\nGB('CommandReader').map(lambda x: time.sleep(0.3) or 'slept')"
                              ".register(trigger='sleepy')") == 'OK'
    try:
        assert slowlog.execute_command('RG.TRIGGER', 'sleepy', 'a') == ['slept']
        assert ['RG.TRIGGER', 'sleepy', 'a'] in slow_commands(slowlog)
    finally:
        for reg in slowlog.execute_command('RG.DUMPREGISTRATIONS'):
            slowlog.execute_command('RG.UNREGISTER', reg[1])


def test_a_fast_pyexecute_is_not_in_the_slowlog(slowlog):
    assert pyexecute(slowlog, "GB('ShardsIDReader').run()") == [['1'], []]
    assert not [a for a in slow_commands(slowlog) if a[0] == 'RG.PYEXECUTE']
