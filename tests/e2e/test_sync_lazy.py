"""Sync event executions are kept lazily, in batches (issue #13, `run::events::lazy`), and
settled before anything looks: every listing and stat must come out as if each had been kept
at once, as 1.2 does (REFERENCE §2.1, §8) — DUMPEXECUTIONS ids, order and states, GETRESULTS
of each, numTriggered/numSuccess/numFailures/lastError, MaxExecutionsPerRegistration and
MaxExecutions trimming, across registrations and other executions."""
import pytest
import redis

from conftest import assert_alive, burst, fresh_server, pyexecute

ZEROS = '0' * 40


def eid(n):
    return f'{ZEROS}-{n}'


def reg_stats(c, i=0):
    data = c.execute_command('RG.DUMPREGISTRATIONS')[i][7]
    return dict(zip(data[0::2], data[1::2]))


def listed(c):
    """(id, status) of every kept execution, newest first, as DUMPEXECUTIONS lists them."""
    return [(e[1], e[3]) for e in c.execute_command('RG.DUMPEXECUTIONS')]


def record(c, id_):
    res, errs = c.execute_command('RG.GETRESULTS', id_)
    assert errs == []
    assert len(res) == 1
    rec = eval(res[0])  # a record's repr: {'key': ..., 'value': ..., 'event': ..., 'type': ...}
    return rec['key'], rec['value']


@pytest.mark.parametrize('n', [50, 3000])  # under and over one batch (1024)
def test_burst_lists_the_newest_per_registration(n):
    with fresh_server() as s:
        c = s.client()
        assert pyexecute(c, "GB().register('k:*', mode='sync')") == 'OK'  # id 0
        burst(c, 'k:', n)
        kept = min(n, 100)  # MaxExecutionsPerRegistration
        assert c.info('rg')['rg_nexecutions'] == kept  # INFO first: it settles on its own
        want = [(eid(i + 1), 'done') for i in reversed(range(n - kept, n))]
        assert listed(c) == want
        for i in (n - 1, n - kept // 2, n - kept):
            assert record(c, eid(i + 1)) == (f'k:{i}', f'v{i}')
        if n > kept:
            with pytest.raises(redis.ResponseError, match='does not exist'):
                c.execute_command('RG.GETRESULTS', eid(n - kept))
        s_ = reg_stats(c)
        assert (s_['numTriggered'], s_['numSuccess'], s_['numFailures']) == (n, n, 0)
        # The next execution of any kind takes the next id, and lists first.
        assert pyexecute(c, 'GB().run()', 'UNBLOCKING') == eid(n + 1)
        assert listed(c)[0][0] == eid(n + 1)
        assert listed(c)[1:] == want
        assert_alive(c, s)


def test_stats_are_settled_before_every_read():
    with fresh_server() as s:
        c = s.client()
        script = "GB().map(lambda x: 1 // (int(x['value']) % 3 - 2) and x['value']).register('f:*', mode='sync')"
        assert pyexecute(c, script) == 'OK'
        burst(c, 'f:', 30, value=str)  # i % 3 == 2 fails; 29 is the last, and fails
        s_ = reg_stats(c)
        assert (s_['numTriggered'], s_['numSuccess'], s_['numFailures']) == (30, 20, 10)
        assert 'ZeroDivisionError' in s_['lastError']
        failed = c.execute_command('RG.GETRESULTS', eid(30))
        assert failed[0] == [] and 'ZeroDivisionError' in failed[1][0]
        assert c.execute_command('RG.GETRESULTS', eid(29)) == [['28'], []]
        c.set('f:x', '1')  # a success clears lastError (1.2), seen at once
        s_ = reg_stats(c)
        assert (s_['numSuccess'], s_['lastError']) == (21, None)


def test_two_registrations_interleave_ids_and_trim_each_list():
    with fresh_server(MaxExecutionsPerRegistration=3, MaxExecutions=1000) as s:
        c = s.client()
        assert pyexecute(c, "GB().register('k:*', mode='sync')") == 'OK'  # id 0
        assert pyexecute(c, "GB().map(lambda x: x['key']).register('k:*', mode='sync')") == 'OK'  # id 1
        n = 40
        burst(c, 'k:', n)
        # Event i runs the first registration as id 2 + 2i and the second as 3 + 2i.
        want = []
        for i in reversed(range(n - 3, n)):
            want += [(eid(3 + 2 * i), 'done'), (eid(2 + 2 * i), 'done')]
        assert listed(c) == want
        assert record(c, eid(2 + 2 * (n - 1))) == (f'k:{n - 1}', f'v{n - 1}')
        assert c.execute_command('RG.GETRESULTS', eid(3 + 2 * (n - 1))) == [[f'k:{n - 1}'], []]
        for i in range(2):
            s_ = reg_stats(c, i)
            assert (s_['numTriggered'], s_['numSuccess']) == (n, n)


def test_max_executions_evicts_in_id_order_across_kinds():
    with fresh_server(MaxExecutionsPerRegistration=100, MaxExecutions=5) as s:
        c = s.client()
        assert pyexecute(c, "GB().register('k:*', mode='sync')") == 'OK'  # id 0
        burst(c, 'k:', 3)  # ids 1..3
        assert pyexecute(c, 'GB().run()', 'UNBLOCKING') == eid(4)
        burst(c, 'm:', 2)  # no match: no execution
        burst(c, 'k:', 4)  # ids 5..8
        assert [i for i, _ in listed(c)] == [eid(k) for k in (8, 7, 6, 5, 4)]
        # Lowering the cap at run time trims at the next keep, as before.
        c.execute_command('RG.CONFIGSET', 'MaxExecutions', '2')
        c.set('k:x', 'y')  # id 9
        assert [i for i, _ in listed(c)] == [eid(9), eid(8)]


def test_a_sync_flow_that_lists_executions_sees_the_earlier_ones():
    with fresh_server() as s:
        c = s.client()
        script = """
def look(x):
    return len(execute('RG.DUMPEXECUTIONS'))
GB().map(look).register('k:*', mode='sync')
"""
        assert pyexecute(c, script) == 'OK'  # id 0 (a blocking run: not kept)
        burst(c, 'k:', 5)
        # Event i ran while the i events before it were kept (its own is kept after it ends).
        for i in range(5):
            assert c.execute_command('RG.GETRESULTS', eid(i + 1)) == [[str(i)], []]


def test_unregister_right_after_a_burst_drops_its_executions():
    with fresh_server() as s:
        c = s.client()
        assert pyexecute(c, "GB().register('k:*', mode='sync')") == 'OK'
        burst(c, 'k:', 500)
        reg_id = c.execute_command('RG.DUMPREGISTRATIONS')[0][1]
        assert c.execute_command('RG.UNREGISTER', reg_id) == 'OK'
        assert listed(c) == []
        c.set('k:after', '1')
        assert listed(c) == []
        assert pyexecute(c, 'GB().run()', 'UNBLOCKING') == eid(501)
