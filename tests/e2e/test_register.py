"""register() on keyspace events (REFERENCE §2.1, §4.2, §11 items 29, 44; seed "Event Processing")."""

import pytest
import redis

from conftest import assert_alive, fresh_server, holds_for, parse, pyexecute, steady, unregister_all, wait_for
from seed_scripts import CAS, REGISTERED_MAXIMUM

ZEROS = '0' * 40




@pytest.fixture
def rr(r):
    yield r
    unregister_all(r)


def test_seed_registered_maximum():
    with fresh_server() as srv:
        c = srv.client()
        assert pyexecute(c, "GB().run()", 'UNBLOCKING') == ZEROS + '-0'
        assert pyexecute(c, REGISTERED_MAXIMUM) == 'OK'
        assert c.hset('person:3', mapping={'name': 'Summer Smith', 'age': 17}) == 2
        dump = wait_for(lambda: [e for e in c.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'done' and e[1] != ZEROS + '-0'])
        # -1 went to the registering RG.PYEXECUTE (1.2 installs registrations with an execution).
        assert dump[0][1] == ZEROS + '-2'
        # 1.2 stringifies registered results too (convertToStr defaults to True).
        assert c.execute_command('RG.GETRESULTS', ZEROS + '-2') == [['17'], []]


def test_seed_event_driven_maximum(rr):
    assert pyexecute(rr, CAS) == 'OK'
    assert rr.get('age:maximum') is None
    rr.hset('person:4', mapping={'name': 'Beth Smith', 'age': 35})
    assert wait_for(lambda: rr.get('age:maximum')) == '35'
    rr.hset('person:5', mapping={'name': 'Shrimply Pibbles', 'age': 87})
    assert wait_for(lambda: rr.get('age:maximum') == '87')


def test_sync_mode_runs_inside_the_writing_command(rr):
    assert pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'seen')).register('s:*', mode='sync')") == 'OK'
    rr.set('s:1', 'a')
    assert rr.get('seen') == '1', 'sync registrations finish before the write returns'
    rr.set('other', 'a')
    assert rr.get('seen') == '1'


def test_event_field_and_read_value_false(rr):
    pyexecute(rr, "GB().foreach(lambda x: execute('SET', 'last', str(x))).register('ev:*', readValue=False, mode='sync')")
    rr.set('ev:1', 'v')
    assert parse([rr.get('last')]) == [{'key': 'ev:1', 'event': 'set'}]


def test_event_and_key_type_filters(rr):
    pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'n')).register('*', eventTypes=['hset'], mode='sync')")
    rr.set('a', '1')
    rr.hset('h', 'f', 'v')
    assert rr.get('n') == '1'
    unregister_all(rr)
    pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'm')).register('k*', keyTypes=['list'], mode='sync')")
    rr.set('k1', '1')
    rr.lpush('k2', 'x')
    assert rr.get('m') == '1'


def test_prefix_without_star_is_exact(rr):
    pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'c')).register('exact', mode='sync')")
    rr.set('exact', '1')
    rr.set('exactly', '1')
    assert rr.get('c') == '1'


def test_dumpregistrations_layout(rr):
    assert pyexecute(rr, "GB().register()") == 'OK'
    regs = rr.execute_command('RG.DUMPREGISTRATIONS')
    assert len(regs) == 1
    reg = regs[0]
    assert reg[0] == 'id' and reg[2:4] == ['reader', 'KeysReader']
    assert reg[10:12] == ['ExecutionThreadPool', 'DefaultPool']
    data = reg[7]
    assert data[0:2] == ['mode', 'async']
    assert data[-1] == ['regex', '*', 'eventTypes', None, 'keyTypes', None, 'hookCommands', None]


def test_stats_count_success_and_failure(rr):
    pyexecute(rr, "GB().map(lambda x: 1/0 if x['key'] == 'f:bad' else x).register('f:*', mode='sync')")
    rr.set('f:ok', '1')
    rr.set('f:bad', '1')
    data = rr.execute_command('RG.DUMPREGISTRATIONS')[0][7]
    stats = dict(zip(data[0::2], data[1::2]))
    assert stats['numTriggered'] == 2
    assert stats['numSuccess'] == 1
    assert stats['numFailures'] == 1
    assert 'ZeroDivisionError' in stats['lastError']


def test_unregister(rr):
    pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'u')).register('u:*', mode='sync')")
    reg_id = rr.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    rr.set('u:1', 'x')
    assert rr.execute_command('RG.UNREGISTER', reg_id) == 'OK'
    rr.set('u:1', 'y')
    assert rr.get('u') == '1'
    with pytest.raises(redis.ResponseError, match='execution is not registered'):
        rr.execute_command('RG.UNREGISTER', reg_id)


SLOW_FLOW = """
import time
def slow(x):
    time.sleep(0.05)
    execute('INCR', 'slow:done')
GB().foreach(slow){tail}.register('job:*', mode='async_local')
"""

# A record-local flow (batched drain) and one that runs an engine execution per event.
SLOW_TAILS = pytest.mark.parametrize('tail', ['', '.count()'], ids=['batched', 'engine'])


def _queue_slow_jobs(client, tail, n):
    assert pyexecute(client, SLOW_FLOW.format(tail=tail)) == 'OK'
    reg_id = client.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f'job:{i}', 'v')
    pipe.execute()
    return reg_id


@SLOW_TAILS
def test_unregister_runs_queued_events(rr, tail):
    # 1.2 runs the executions an unregistered registration already has pending.
    n = 20
    reg_id = _queue_slow_jobs(rr, tail, n)
    assert rr.execute_command('RG.UNREGISTER', reg_id) == 'OK'
    assert rr.execute_command('RG.DUMPREGISTRATIONS') == []
    assert wait_for(lambda: rr.get('slow:done') == str(n), timeout=15), rr.get('slow:done')
    # Nothing new fires once it is gone.
    rr.set('job:new', 'v')
    assert holds_for(lambda: rr.get('slow:done') == str(n), 0.5)
    assert_alive(rr)


@SLOW_TAILS
def test_unregister_abortpending_drops_queued_events(rr, tail):
    n = 20
    reg_id = _queue_slow_jobs(rr, tail, n)
    assert rr.execute_command('RG.UNREGISTER', reg_id, 'abortpending') == 'OK'
    # Queued jobs would move the counter every 50 ms; it settles with only the one(s) already
    # running finished.
    done = steady(lambda: int(rr.get('slow:done') or 0), quiet=0.5)
    assert done is not None and done < n // 2, done
    assert_alive(rr)


def test_async_events_all_counted(rr):
    pyexecute(rr, "GB().foreach(lambda x: execute('INCR', 'events:seen')).register('ev:*')")
    pipe = rr.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f'ev:{i}', 'v')
    pipe.execute()
    assert wait_for(lambda: rr.get('events:seen') == '2000', timeout=30), rr.get('events:seen')
    assert_alive(rr)


@pytest.mark.parametrize('script, error', [
    ("GB().register(mode='nope')", 'unknown execution mode'),
    ("GB().register(mode=1)", 'execution mode must be a string'),
    ("GB().register(eventTypes=1)", 'given eventTypes is not iterable'),
    ("GB().register(eventTypes=[1])", 'given event type is not string'),
    ("GB().register(keyTypes=['nope'])", 'unknown key type'),
    ("GB().register(readValue=1)", 'readValue is not boolean'),
    ("GB().register(onRegistered=1)", 'OnRegistered argument must be a function'),
    ("GB().register(1)", 'regex argument must be a string'),
    ("GB('ShardsIDReader').register()", 'does not support register'),
])
def test_register_argument_errors(rr, script, error):
    with pytest.raises(redis.ResponseError, match=error):
        pyexecute(rr, script)
    assert rr.execute_command('RG.DUMPREGISTRATIONS') == []


def test_on_registered_runs(rr):
    pyexecute(rr, "def f():\n    execute('SET', 'installed', '1')\nGB().register('x:*', onRegistered=f)")
    assert rr.get('installed') == '1'


def test_clear_stats_and_pause_errors(rr):
    pyexecute(rr, "GB().register('p:*', mode='sync')")
    reg = rr.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    rr.set('p:1', 'x')
    assert rr.execute_command('RG.CLEARREGISTRATIONSSTATS') == 'OK'
    data = rr.execute_command('RG.DUMPREGISTRATIONS')[0][7]
    stats = dict(zip(data[0::2], data[1::2]))
    assert stats['numTriggered'] == 0 and stats['numSuccess'] == 0
    with pytest.raises(redis.ResponseError, match='Reader KeysReader does not support pause'):
        rr.execute_command('RG.PAUSEREGISTRATIONS', reg)
    with pytest.raises(redis.ResponseError, match='does not exists on shard'):
        rr.execute_command('RG.PAUSEREGISTRATIONS', 'nosuch')
    with pytest.raises(redis.ResponseError, match='does not support unpause'):
        rr.execute_command('RG.UNPAUSEREGISTRATIONS', reg)


def test_pystats_and_reqs(rr):
    stats = rr.execute_command('RG.PYSTATS')
    assert stats[0::2] == ['TotalAllocated', 'PeakAllocated', 'CurrAllocated']
    total, peak, current = stats[1::2]
    assert total >= peak >= current > 0  # Python's memory goes through Redis's allocator
    assert rr.execute_command('RG.PYDUMPREQS') == []


UNPICKLABLE = """
import threading
lock = threading.Lock()
def holds_a_lock(x):
    return str(lock)
"""
NOT_SERIALIZED = ("Error occured when serialized a python callback, callback={} "
                  "error=cannot pickle '_thread.lock' object")


@pytest.mark.parametrize('flow, name', [
    ("GB().map(holds_a_lock).register()", 'holds_a_lock'),
    ("GB('KeysReader').register(commands=['set'], onRegistered=holds_a_lock)", 'holds_a_lock'),
    ("GB('StreamReader').foreach(holds_a_lock).register('s*')", 'holds_a_lock'),
    ("GB('CommandReader').map(holds_a_lock).register(trigger='t')", 'holds_a_lock'),
    ("GB('CommandReader').map(holds_a_lock).register(hook='hset', mode='sync')", 'holds_a_lock'),
    # 1.2 wraps aggregateby's callbacks in lambdas too.
    ("GB().aggregateby(holds_a_lock, 0, lambda k, a, r: a, lambda k, a, r: a).register()", '<lambda>'),
])
def test_a_callback_that_cannot_be_pickled_fails_registration(rr, flow, name):
    # REFERENCE §12.7: 1.2 pickles a registration's callbacks when it registers.
    with pytest.raises(redis.ResponseError) as e:
        pyexecute(rr, UNPICKLABLE + flow)
    assert NOT_SERIALIZED.format(name) in str(e.value)
    assert rr.execute_command('RG.DUMPREGISTRATIONS') == []
    assert rr.execute_command('RG.PYDUMPSESSIONS') == []


def _session(client, sid):
    for s in client.execute_command('RG.PYDUMPSESSIONS'):
        if s[1] == sid:
            return dict(zip(s[::2], s[1::2]))
    return None


def test_register_from_a_running_step_joins_that_steps_session(rr):
    # REFERENCE §12.7: a registered flow's step registers another flow.
    script = """
def add_flow(x):
    return GB().foreach(lambda r: execute('INCR', 'seen')).register('new:*', mode='sync')
GB('CommandReader').map(add_flow).register(trigger='add')
"""
    pyexecute(rr, script, 'ID', 'grower')
    [first] = _session(rr, 'grower')['registrations']
    [new_id] = rr.execute_command('RG.TRIGGER', 'add')
    assert new_id.startswith(ZEROS + '-') and new_id != first
    assert _session(rr, 'grower')['registrations'] == [first, new_id]
    assert sorted(reg[1] for reg in rr.execute_command('RG.DUMPREGISTRATIONS')) == sorted([first, new_id])
    rr.set('new:1', 'x')
    assert rr.get('seen') == '1'


def test_register_from_a_sync_step_and_from_a_run(rr):
    # From a sync registration's step, on the main thread inside the writing command.
    pyexecute(rr, "GB().foreach(lambda x: GB().foreach(lambda r: execute('INCR', 'seen')).register('n2:*', mode='sync')).register('mk:*', mode='sync')", 'ID', 'inline')
    rr.set('mk:1', 'x')
    assert len(_session(rr, 'inline')['registrations']) == 2
    rr.set('n2:1', 'x')
    assert rr.get('seen') == '1'
    # From a run's step: the script keeps no session, so the registration gets one.
    [[new_id], []] = pyexecute(rr, "GB('ShardsIDReader').map(lambda x: GB().register('n3:*')).run()")
    assert [s for s in rr.execute_command('RG.PYDUMPSESSIONS') if s[-1] == [new_id]]
    # The checks of a script's registrations apply.
    pyexecute(rr, "GB('CommandReader').map(lambda x: GB('CommandReader').register(trigger='mk2')).register(trigger='mk2')", 'ID', 'dup')
    with pytest.raises(redis.ResponseError, match='trigger already registered'):
        rr.execute_command('RG.TRIGGER', 'mk2')


def _registration_ids(c):
    return sorted(reg[1] for reg in c.execute_command('RG.DUMPREGISTRATIONS'))


# A step registers another flow: into the step's session (a registered trigger), and
# into a new session of its own (a script that only ran).
GROWER = """
def add_flow(x):
    return GB().foreach(lambda r: execute('INCR', 'seen:' + r['key'])).register('new:*', mode='sync')
GB('CommandReader').map(add_flow).register(trigger='add')
"""
ONLY_RAN = "GB('ShardsIDReader').map(lambda x: GB().foreach(lambda r: execute('INCR', 'seen:' + r['key'])).register('ran:*', mode='sync')).run()"


def test_registrations_made_from_steps_survive_a_reload_and_a_restart():
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, GROWER, 'ID', 'grower')
        c.execute_command('RG.TRIGGER', 'add')
        pyexecute(c, ONLY_RAN)
        before = _registration_ids(c)
        assert len(before) == 3
        assert c.execute_command('DEBUG', 'RELOAD') == 'OK'
        assert _registration_ids(c) == before
        assert len(_session(c, 'grower')['registrations']) == 2
        c.set('new:1', 'x')
        c.set('ran:1', 'x')
        assert (c.get('seen:new:1'), c.get('seen:ran:1')) == ('1', '1')
        c.execute_command('SAVE')
        srv.restart()
        c = srv.client()
        assert _registration_ids(c) == before
        c.set('new:2', 'x')
        assert c.get('seen:new:2') == '1'


def test_registrations_made_from_steps_reach_the_replica():
    with fresh_server() as master, fresh_server() as replica:
        m, r = master.client(), replica.client()
        r.execute_command('REPLICAOF', '127.0.0.1', master.port)
        assert wait_for(lambda: r.info('replication').get('master_link_status') == 'up', timeout=10)
        pyexecute(m, GROWER, 'ID', 'grower')
        m.execute_command('RG.TRIGGER', 'add')
        pyexecute(m, ONLY_RAN)
        assert len(_registration_ids(m)) == 3
        assert wait_for(lambda: _registration_ids(r) == _registration_ids(m), timeout=10), \
            (_registration_ids(r), _registration_ids(m))
        # Promoted, the replica's copies fire.
        r.execute_command('REPLICAOF', 'NO', 'ONE')
        r.set('new:1', 'x')
        r.set('ran:1', 'x')
        assert (r.get('seen:new:1'), r.get('seen:ran:1')) == ('1', '1')
