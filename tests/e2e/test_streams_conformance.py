"""StreamReader registrations as RedisGears 1.2 runs them (REFERENCE §2.2, §12.4)."""
import pytest

from conftest import HOLD, fresh_server, holds_for, pyexecute, unregister_all, wait_for


@pytest.fixture
def rs(r):
    for e in r.execute_command('RG.DUMPEXECUTIONS'):
        r.execute_command('RG.DROPEXECUTION', e[1])
    yield r
    r.set('go', 1)
    unregister_all(r)
    wait_for(lambda: 'running' not in statuses(r))
    r.delete('go')


def reg_data(r):
    regs = [x for x in r.execute_command('RG.DUMPREGISTRATIONS') if x[3] == 'StreamReader']
    data = regs[0][7]
    return dict(zip(data[0::2], data[1::2]))


def reg_id(r):
    return [x for x in r.execute_command('RG.DUMPREGISTRATIONS') if x[3] == 'StreamReader'][0][1]


def statuses(r):
    return sorted(dict(zip(e[0::2], e[1::2]))['status'] for e in r.execute_command('RG.DUMPEXECUTIONS'))


def balanced(d):
    return d['numTriggered'] == d['numSuccess'] + d['numFailures'] + d['numAborted']


# A step that waits until the key `go` exists, then counts the record (and fails if asked).
GATED = """
import time
def gated(x):
    for _ in range(1000):
        if execute('GET', 'go') is not None:
            break
        time.sleep(0.01)
    execute('RPUSH', 'seen', x['value']['i'])
    if execute('GET', 'fail') is not None:
        raise Exception('failed on purpose')
GB('StreamReader').foreach(gated).register('%s', %s)
"""


def test_first_xadd_to_a_new_stream_runs_at_once_whatever_the_batch(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'n2')).register('new2*', batch=2)")
    rs.xadd('new2a', {'a': 1})
    rs.xadd('new2a', {'a': 2})
    assert wait_for(lambda: reg_data(rs)['numSuccess'] == 2, timeout=20)
    assert holds_for(lambda: reg_data(rs)['numTriggered'] == 2, 0.3)
    assert rs.get('n2') == '2'


def test_a_late_first_scan_does_not_read_a_new_stream_again():
    # The registration's first scan of existing streams runs on an execution thread; with the
    # only one busy it runs after the XADDs, which already queued their batches (CI saw 3).
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, HOLD, 'UNBLOCKING')
        assert wait_for(lambda: c.get('holding') == '1')
        pyexecute(c, "GB('StreamReader').foreach(lambda x: execute('INCR', 'n3')).register('late*', batch=2)")
        c.xadd('late1', {'a': 1})
        c.xadd('late1', {'a': 2})
        c.set('release', '1')
        assert wait_for(lambda: reg_data(c)['numSuccess'] >= 2)
        assert holds_for(lambda: reg_data(c)['numTriggered'] == 2, 0.5)
        assert c.get('n3') == '2'


def test_first_xadd_with_batch_one_gives_two_runs(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'n1')).register('new1*')")
    rs.xadd('new1a', {'a': 1})
    assert wait_for(lambda: reg_data(rs)['numSuccess'] == 2)
    d = reg_data(rs)
    assert (d['numTriggered'], d['numSuccess'], d['numFailures']) == (2, 2, 0)
    assert rs.get('n1') == '1', 'the entry is processed once'


def test_duration_flushes_what_is_left_while_a_batch_runs(rs):
    pyexecute(rs, "import time\n"
                  "GB('StreamReader').foreach(lambda x: (time.sleep(0.05), execute('INCR', 'dn3')))"
                  ".register('dur3', batch=2, duration=1)")
    for i in range(3):
        rs.xadd('dur3', {'i': i})
    assert wait_for(lambda: rs.get('dn3') == '3')
    assert wait_for(lambda: rs.xlen('dur3') == 0)


def test_upgrade_keeps_processing_untrimmed_streams(rs):
    script = "GB('StreamReader').foreach(lambda x: execute('INCR', 'upn')).register('upg', trimStream=False)"
    rs.xadd('upg', {'a': 1})
    assert rs.execute_command('RG.PYEXECUTE', script, 'ID', 'upsess') == 'OK'
    assert wait_for(lambda: rs.get('upn') == '1')
    assert rs.execute_command('RG.PYEXECUTE', script, 'ID', 'upsess', 'UPGRADE') == 'OK'
    rs.xadd('upg', {'a': 2})
    assert wait_for(lambda: rs.get('upn') == '2')
    rs.xadd('upg', {'a': 3})
    assert wait_for(lambda: rs.get('upn') == '3')
    assert holds_for(lambda: rs.get('upn') == '3', 0.3), 'old entries are not processed again'
    assert rs.xlen('upg') == 3


def _queue_three(rs, prefix, kwargs='batch=1'):
    """Registers GATED on `prefix*`; stream `prefix0` holds an entry, three more streams
    exist, empty, so each XADD to one of them is one batch. (A stream has one batch queued
    or running at a time, as in 1.2: its entries added meanwhile make its next batch.)"""
    rs.xadd(prefix + '0', {'i': 0})
    for i in range(1, 4):
        rs.xgroup_create(prefix + str(i), 'other', mkstream=True)
    pyexecute(rs, GATED % (prefix + '*', kwargs))
    assert wait_for(lambda: statuses(rs) == ['running'])
    for i in range(1, 4):
        rs.xadd(prefix + str(i), {'i': i})
    assert wait_for(lambda: statuses(rs) == ['created'] * 3 + ['running'])


def test_batches_queue_and_run_in_order(rs):
    rs.delete('seen')
    _queue_three(rs, 'qord')
    assert holds_for(lambda: statuses(rs) == ['created'] * 3 + ['running'], 0.3)
    rs.set('go', 1)
    assert wait_for(lambda: statuses(rs) == ['done'] * 4)
    assert rs.lrange('seen', 0, -1) == ['0', '1', '2', '3']
    d = reg_data(rs)
    assert (d['numTriggered'], d['numSuccess'], d['numAborted']) == (4, 4, 0)


def test_pause_aborts_the_batches_not_started(rs):
    rs.delete('seen')
    _queue_three(rs, 'qpause')
    assert rs.execute_command('RG.PAUSEREGISTRATIONS', reg_id(rs)) == 'OK'
    rs.set('go', 1)
    assert wait_for(lambda: reg_data(rs)['numSuccess'] == 1)
    d = reg_data(rs)
    assert (d['numTriggered'], d['numAborted'], d['status']) == (4, 3, 'PAUSED')
    assert balanced(d)
    assert wait_for(lambda: statuses(rs) == ['done'])
    assert rs.lrange('seen', 0, -1) == ['0']
    assert rs.execute_command('RG.UNPAUSEREGISTRATIONS', reg_id(rs)) == 'OK'
    assert wait_for(lambda: rs.llen('seen') == 4), 'unpause processes what the stream still holds'


def test_unregister_aborts_the_batches_not_started(rs):
    rs.delete('seen')
    _queue_three(rs, 'qunreg')
    assert rs.execute_command('RG.UNREGISTER', reg_id(rs)) == 'OK'
    rs.set('go', 1)
    assert wait_for(lambda: rs.llen('seen') == 1)
    assert wait_for(lambda: rs.execute_command('RG.DUMPEXECUTIONS') == [])
    assert holds_for(lambda: rs.llen('seen') == 1, 0.3)


@pytest.mark.parametrize('policy, status', [
    ('abort', 'ABORTED'),
    ('retry', 'WAITING_FOR_RETRY_ON_FAILURE'),
])
def test_failure_aborts_the_batches_not_started(rs, policy, status):
    rs.delete('seen')
    rs.set('fail', 1)
    try:
        _queue_three(rs, 'qf' + policy, f"onFailedPolicy='{policy}', onFailedRetryInterval=100")
        rs.set('go', 1)
        assert wait_for(lambda: reg_data(rs)['numFailures'] == 1)
        d = reg_data(rs)
        assert (d['numTriggered'], d['numAborted'], d['status']) == (4, 3, status)
        assert balanced(d)
        assert wait_for(lambda: statuses(rs) == ['done'])
        assert rs.lrange('seen', 0, -1) == ['0']
    finally:
        rs.delete('fail')


def test_clear_stats_resets_stream_registrations(rs):
    pyexecute(rs, "import time\n"
                  "def f(x):\n"
                  "    time.sleep(0.02)\n"
                  "    raise Exception('boom')\n"
                  "GB('StreamReader').foreach(f).register('clr')")
    rs.xadd('clr', {'a': 1})
    assert wait_for(lambda: reg_data(rs)['numFailures'] >= 1 and balanced(reg_data(rs)))
    assert reg_data(rs)['lastEstimatedLagMS'] > 0
    assert rs.execute_command('RG.CLEARREGISTRATIONSSTATS') == 'OK'
    d = reg_data(rs)
    assert {k: d[k] for k in ('numTriggered', 'numSuccess', 'numFailures', 'numAborted', 'lastRunDurationMS',
                              'totalRunDurationMS', 'avgRunDurationMS', 'lastEstimatedLagMS',
                              'avgEstimatedLagMS', 'lastError')} == {
        'numTriggered': 0, 'numSuccess': 0, 'numFailures': 0, 'numAborted': 0, 'lastRunDurationMS': 0,
        'totalRunDurationMS': 0, 'avgRunDurationMS': 0.0, 'lastEstimatedLagMS': 0,
        'avgEstimatedLagMS': 0.0, 'lastError': None}  # fmt: skip


def test_pause_while_a_retry_batch_fails_stays_paused(rs):
    rs.set('fail', 1)
    try:
        rs.xadd('prt', {'i': 0})
        pyexecute(rs, GATED % ('prt', "onFailedPolicy='retry', onFailedRetryInterval=1"))
        assert wait_for(lambda: statuses(rs) == ['running'])
        assert rs.execute_command('RG.PAUSEREGISTRATIONS', reg_id(rs)) == 'OK'
        rs.set('go', 1)
        assert wait_for(lambda: reg_data(rs)['numFailures'] == 1)
        assert holds_for(lambda: reg_data(rs)['status'] == 'PAUSED' and reg_data(rs)['numFailures'] == 1, 1.5)
    finally:
        rs.delete('fail')


def test_error_starting_with_pause_pauses_the_registration(rs):
    pyexecute(rs, "def f(x):\n"
                  "    if execute('GET', 'ok') is None:\n"
                  "        raise flat_error('PAUSE not now')\n"
                  "    execute('INCR', 'pzn')\n"
                  "GB('StreamReader').foreach(f).register('pz')")
    rs.xadd('pz', {'a': 1})
    assert wait_for(lambda: reg_data(rs)['status'] == 'PAUSED')
    assert reg_data(rs)['lastError'] == 'PAUSE not now'
    assert rs.xlen('pz') == 1, 'the entry is left for after unpause'
    rs.set('ok', 1)
    try:
        assert rs.execute_command('RG.UNPAUSEREGISTRATIONS', reg_id(rs)) == 'OK'
        assert wait_for(lambda: rs.get('pzn') == '1')
        assert wait_for(lambda: rs.xlen('pz') == 0)
    finally:
        rs.delete('ok')


def _replica_of(master, replica):
    m, r = master.client(), replica.client()
    r.execute_command('REPLICAOF', '127.0.0.1', master.port)
    assert wait_for(lambda: r.info('replication').get('master_link_status') == 'up', timeout=10)
    return m, r


def test_replica_runs_no_stream_work_and_resumes_when_promoted():
    with fresh_server() as master, fresh_server() as replica:
        m, r = _replica_of(master, replica)
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'rn')).register('rep')")
        assert wait_for(lambda: r.execute_command('RG.DUMPREGISTRATIONS'), timeout=10)
        m.xadd('rep', {'a': 1})
        m.xadd('rep', {'a': 2})
        assert wait_for(lambda: m.get('rn') == '2' and m.xlen('rep') == 0)
        assert m.execute_command('WAIT', 1, 2000) == 1
        assert wait_for(lambda: r.xlen('rep') == 0), 'acks and trims replicate'
        assert [g['name'] for g in r.xinfo_groups('rep')] == ['__gears_consumer_group__']
        assert r.get('rn') == '2'
        # Entries the master leaves alone stay on the replica, untouched, until it is promoted.
        assert m.execute_command('RG.PAUSEREGISTRATIONS', reg_id(m)) == 'OK'
        m.xadd('rep', {'a': 3})
        m.xadd('rep', {'a': 4})
        assert m.execute_command('WAIT', 1, 2000) == 1
        assert holds_for(lambda: r.xlen('rep') == 2 and reg_data(r)['numTriggered'] == 0, 0.5)
        assert r.execute_command('SLAVEOF', 'NO', 'ONE')
        assert wait_for(lambda: r.get('rn') == '4', timeout=10)
        assert wait_for(lambda: r.xlen('rep') == 0)


def test_replica_runs_no_retries_and_retries_when_promoted():
    with fresh_server() as master, fresh_server() as replica:
        m, r = _replica_of(master, replica)
        pyexecute(m, "def f(x):\n"
                     "    if execute('GET', 'ok') is None:\n"
                     "        raise Exception('not yet')\n"
                     "    execute('INCR', 'rdone')\n"
                     "GB('StreamReader').foreach(f).register('rret', onFailedPolicy='retry', onFailedRetryInterval=1)")
        assert wait_for(lambda: r.execute_command('RG.DUMPREGISTRATIONS'), timeout=10)
        m.xadd('rret', {'a': 1})
        assert wait_for(lambda: reg_data(m)['numFailures'] >= 2, timeout=10), 'the master retries'
        assert m.execute_command('WAIT', 1, 2000) == 1
        d = reg_data(r)
        assert (d['numTriggered'], d['status']) == (0, 'OK')
        assert r.xlen('rret') == 1
        assert r.xpending('rret', '__gears_consumer_group__')['pending'] == 1, 'the read replicated'
        r.execute_command('REPLICAOF', 'NO', 'ONE')
        r.set('ok', 1)
        assert wait_for(lambda: r.get('rdone') == '1', timeout=10)
        assert wait_for(lambda: r.xlen('rret') == 0)
