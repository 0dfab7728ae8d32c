"""StreamReader register() (REFERENCE §2.2, §4.2, §11 item 50)."""
import pytest
import redis

from conftest import assert_alive, holds_for, pyexecute, unregister_all, wait_for


@pytest.fixture
def rs(r):
    yield r
    unregister_all(r)


def reg_data(r, reader='StreamReader'):
    regs = [x for x in r.execute_command('RG.DUMPREGISTRATIONS') if x[3] == reader]
    data = regs[0][7]
    return dict(zip(data[0::2], data[1::2]))


def test_batch_of_three_is_processed_and_trimmed(rs):
    assert pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'n')).register(regex='stream', batch=3)") == 'OK'
    for i in range(3):
        rs.xadd('stream', {'f': i})
    assert wait_for(lambda: rs.get('n') == '3')
    assert wait_for(lambda: rs.xlen('stream') == 0), 'trimStream (default) removes processed entries'
    # 1.2: the first entry of a stream the registration has not seen runs at once (reading
    # what the stream holds), then every third entry makes one more batch.
    assert wait_for(lambda: reg_data(rs)['numSuccess'] == 2)
    d = reg_data(rs)
    assert d['numTriggered'] == 2 and d['status'] == 'OK'


def test_records_shape_and_order(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('RPUSH', 'recs', str(x))).register('ord*')")
    ids = [rs.xadd('ord1', {'v': i}) for i in range(5)]
    assert wait_for(lambda: rs.llen('recs') == 5)
    import ast
    recs = [ast.literal_eval(x) for x in rs.lrange('recs', 0, -1)]
    assert [r['id'] for r in recs] == ids
    assert recs[0] == {'key': 'ord1', 'id': ids[0], 'value': {'v': '0'}}


def test_existing_entries_are_processed_on_registration(rs):
    rs.xadd('old', {'a': 1})
    rs.xadd('old', {'a': 2})
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'oldn')).register('old', trimStream=False)")
    assert wait_for(lambda: rs.get('oldn') == '2')
    assert rs.xlen('old') == 2, 'trimStream=False keeps entries'


def test_duration_runs_a_partial_batch(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'dn')).register('dur', batch=100, duration=200)")
    rs.xadd('dur', {'a': 1})
    assert wait_for(lambda: rs.get('dn') == '1', timeout=3)


def test_abort_policy_stops_the_registration(rs):
    pyexecute(rs, "GB('StreamReader').map(lambda x: 1/0).register('ab', onFailedPolicy='abort')")
    rs.xadd('ab', {'a': 1})
    assert wait_for(lambda: reg_data(rs)['status'] == 'ABORTED')
    d = reg_data(rs)
    assert d['numFailures'] == 1 and 'ZeroDivisionError' in d['lastError']


def test_retry_policy_reprocesses_after_failure(rs):
    script = """
def f(x):
    if execute('INCR', 'attempts') < 2:
        raise Exception('transient')
    execute('SET', 'done', x['value']['a'])
GB('StreamReader').foreach(f).register('rt', onFailedPolicy='retry', onFailedRetryInterval=1)
"""
    pyexecute(rs, script)
    rs.xadd('rt', {'a': 'payload'})
    assert wait_for(lambda: reg_data(rs)['status'] == 'WAITING_FOR_RETRY_ON_FAILURE', timeout=3)
    assert wait_for(lambda: rs.get('done') == 'payload', timeout=5), 'the unacked entry is read again'
    assert wait_for(lambda: reg_data(rs)['status'] == 'OK')


def test_pause_and_unpause(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'pn')).register('ps')")
    reg = rs.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert rs.execute_command('RG.PAUSEREGISTRATIONS', reg) == 'OK'
    rs.xadd('ps', {'a': 1})
    assert holds_for(lambda: rs.get('pn') is None and reg_data(rs)['status'] == 'PAUSED', 0.5)
    assert rs.execute_command('RG.UNPAUSEREGISTRATIONS', reg) == 'OK'
    assert wait_for(lambda: rs.get('pn') == '1')


def test_sync_mode(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'sn')).register('sy', mode='sync')")
    rs.xadd('sy', {'a': 1})
    assert rs.get('sn') == '1', 'sync runs inside XADD'


@pytest.mark.parametrize('kwargs, error', [
    ("batch='x'", 'batch argument must be a number'),
    ("duration='x'", 'duration argument must be a number'),
    ("onFailedPolicy='nope'", 'onFailedPolicy must be Continue/Abort/Retry'),
    ("onFailedRetryInterval='x'", 'retryInterval argument must be a number'),
    ("trimStream=1", 'pyTrimmStream argument must be a boolean'),
    ("mode='sync', onFailedPolicy='retry'", 'ExecutionMode sync can only be combined with OnFailedPolicy Continue'),
])
def test_argument_errors(rs, kwargs, error):
    with pytest.raises(redis.ResponseError, match=error):
        pyexecute(rs, f"GB('StreamReader').register('x', {kwargs})")


def test_unregister_stream_registration(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'unn')).register('un')")
    reg = rs.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert rs.execute_command('RG.UNREGISTER', reg) == 'OK'
    rs.xadd('un', {'a': 1})
    assert holds_for(lambda: rs.get('unn') is None, 0.5)
    assert_alive(rs)


def test_stream_registration_survives_reload(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'rl')).register('rel')")
    rs.execute_command('DEBUG', 'RELOAD')
    assert reg_data(rs)['status'] == 'OK'
    rs.xadd('rel', {'a': 1})
    assert wait_for(lambda: rs.get('rl') == '1')
