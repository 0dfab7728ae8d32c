"""Execution lifecycle commands (REFERENCE §1.1, §1.3, §8, §11 items 2-10, 34-37)."""
import pytest
import redis

from conftest import answered_while_running, assert_alive, fresh_server, pyexecute, wait_for

ZEROS = '0' * 40


def test_unblocking_returns_id_and_results_stay(r):
    r.set('x', '1')
    eid = pyexecute(r, "GB().map(lambda x: x['value']).run()", 'UNBLOCKING')
    assert eid.startswith(ZEROS + '-')
    assert r.execute_command('RG.GETRESULTSBLOCKING', eid) == [['1'], []]
    assert r.execute_command('RG.GETRESULTS', eid) == [['1'], []]
    dump = r.execute_command('RG.DUMPEXECUTIONS')
    assert ['executionId', eid, 'status', 'done', 'registered', 0] in dump


def test_blocking_runs_are_not_kept(r):
    before = len(r.execute_command('RG.DUMPEXECUTIONS'))
    pyexecute(r, "GB().run()")
    assert len(r.execute_command('RG.DUMPEXECUTIONS')) == before


def test_first_execution_id_on_a_fresh_server():
    with fresh_server() as srv:
        c = srv.client()
        assert pyexecute(c, "GB().run()", 'UNBLOCKING') == ZEROS + '-0'


def test_unknown_ids(r):
    for cmd in ('RG.GETRESULTS', 'RG.GETRESULTSBLOCKING', 'RG.GETEXECUTION', 'RG.DROPEXECUTION'):
        with pytest.raises(redis.ResponseError, match='execution plan does not exist'):
            r.execute_command(cmd, 'nosuch')
    with pytest.raises(redis.ResponseError, match='execution does not exist'):
        r.execute_command('RG.ABORTEXECUTION', 'nosuch')


def test_abort_of_finished_execution_is_ok_and_drop_removes_it(r):
    eid = pyexecute(r, "GB().run()", 'UNBLOCKING')
    r.execute_command('RG.GETRESULTSBLOCKING', eid)
    assert r.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
    assert r.execute_command('RG.DROPEXECUTION', eid) == 'OK'
    with pytest.raises(redis.ResponseError, match='execution plan does not exist'):
        r.execute_command('RG.GETRESULTS', eid)


def test_getexecution_layout(r):
    r.set('x', '1')
    eid = pyexecute(r, "GB().map(lambda x: x['key']).run()", 'UNBLOCKING')
    r.execute_command('RG.GETRESULTSBLOCKING', eid)
    res = r.execute_command('RG.GETEXECUTION', eid)
    assert res[0][0] == 'shard_id' and res[0][1] == ZEROS
    plan = res[0][3]
    assert plan[0] == 'status' and plan[1] == 'done'
    assert plan[6] == 'results' and plan[7] == 1
    assert plan[8] == 'errors' and plan[9] == []
    steps = plan[15]
    assert steps[-1][1] == 'map', 'steps are listed last step first'
    assert r.execute_command('RG.GETEXECUTION', eid, 'shard') == res
    with pytest.raises(redis.ResponseError, match='no cluster detected'):
        r.execute_command('RG.GETEXECUTION', eid, 'CLUSTER')
    with pytest.raises(redis.ResponseError, match='unknown subcommand'):
        r.execute_command('RG.GETEXECUTION', eid, 'FOO')


def test_getresults_while_running_and_blocking_wait(r, server):
    eid = pyexecute(r, "import time\nGB('ShardsIDReader').map(lambda x: time.sleep(1) or x).run()", 'UNBLOCKING')
    with pytest.raises(redis.ResponseError, match='execution is still running'):
        r.execute_command('RG.GETRESULTS', eid)
    with pytest.raises(redis.ResponseError, match='can not drop a not yet finished execution'):
        r.execute_command('RG.DROPEXECUTION', eid)
    # Redis itself is not blocked while the execution runs: PINGs are answered within a bound
    # and several replies come while it still runs.
    assert answered_while_running(server, eid) >= 5
    assert r.execute_command('RG.GETRESULTSBLOCKING', eid) == [['1'], []]


def test_max_executions_evicts_oldest(r):
    r.execute_command('RG.CONFIGSET', 'MaxExecutions', '3')
    try:
        ids = [pyexecute(r, "GB().run()", 'UNBLOCKING') for _ in range(4)]
        for i in ids[1:]:
            r.execute_command('RG.GETRESULTSBLOCKING', i)
        kept = [e[1] for e in r.execute_command('RG.DUMPEXECUTIONS')]
        assert sorted(kept) == sorted(ids[1:])
    finally:
        r.execute_command('RG.CONFIGSET', 'MaxExecutions', '1000')


def test_many_unblocking_runs_complete(r):
    for i in range(50):
        r.set(f'k{i}', i)
    ids = [pyexecute(r, "GB().count().run()", 'UNBLOCKING') for _ in range(30)]
    for i in ids:
        assert r.execute_command('RG.GETRESULTSBLOCKING', i) == [['50'], []]
    assert_alive(r)


def test_legacy_and_info_commands(r):
    assert r.execute_command('RG.INFOCLUSTER') == 'no cluster mode'
    assert r.execute_command('RG.PYEXECUTEREMOTE') == 'Execute remote is not longer supported'
    assert r.execute_command('RG.PYFREEINTERPRETER') == 'Free interpreter is not longer supported'
    assert r.execute_command('RG.DUMPPLUGINS') == [['GearsPythonPlugin', 10000]]


def test_info_rg_sections(r):
    r.set('x', '1')
    pyexecute(r, "GB().count().run()")
    info = r.info('rg')
    # The executions RG.DUMPEXECUTIONS lists (blocking runs are not kept); an UNBLOCKING one adds one.
    kept = len(r.execute_command('RG.DUMPEXECUTIONS'))
    assert info['rg_nexecutions'] == kept
    eid = pyexecute(r, "GB().count().run()", 'UNBLOCKING')
    r.execute_command('RG.GETRESULTSBLOCKING', eid)
    assert r.info('rg')['rg_nexecutions'] == kept + 1
    assert 'rg_nregistrations' in info
    assert info['rg_gearshift_executions_finished'] >= 1
    assert info['rg_gearshift_stage_records'] >= 1
    for field in ('rg_gearshift_gil_holds', 'rg_gearshift_gil_wait_us', 'rg_gearshift_events_pending',
                  'rg_gearshift_executions_running', 'rg_gearshift_events_dropped'):
        assert field in info
    everything = r.info('everything')
    assert everything['rg_GearsPythonPlugin'] == {'version': 10000}
    for field in ('rg_TotalAllocated', 'rg_PeakAllocated', 'rg_CurrAllocated'):
        assert everything[field] > 0  # Python's allocator is Redis's (OverridePythonAllocators)


def test_abort_stops_a_runaway_python_loop(r):
    eid = pyexecute(r, "def spin(x):\n    execute('SET', 'spinning', '1')\n    while True:\n        pass\n"
                       "GB('ShardsIDReader').map(spin).run()", 'UNBLOCKING')
    assert wait_for(lambda: r.get('spinning') == '1'), 'the step started'
    assert [e[3] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[1] == eid] == ['running']
    assert r.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
    # The loop never ends by itself: the execution ending at all is the abort taking effect
    # (GETRESULTSBLOCKING is bounded by the client's socket timeout).
    res = r.execute_command('RG.GETRESULTSBLOCKING', eid)
    status = [e[3] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[1] == eid][0]
    assert status in ('aborted', 'done')
    assert res[0] == []
    assert_alive(r)
    # The worker is free again: new executions still run.
    r.set('x', '1')
    assert pyexecute(r, "GB().count().run('x')") == [['1'], []]


def test_profile_executions_fills_step_durations(r):
    r.execute_command('RG.CONFIGSET', 'ProfileExecutions', '1')
    try:
        eid = pyexecute(r, "import time\nGB('ShardsIDReader').map(lambda x: time.sleep(0.05) or x).run()", 'UNBLOCKING')
        r.execute_command('RG.GETRESULTSBLOCKING', eid)
        plan = r.execute_command('RG.GETEXECUTION', eid)[0][3]
        assert plan[10] == 'total_duration' and plan[11] >= 50
        durations = [step[3] for step in plan[15]]
        assert max(durations) >= 50, plan[15]
    finally:
        r.execute_command('RG.CONFIGSET', 'ProfileExecutions', '0')
