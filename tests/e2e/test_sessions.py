"""Sessions: ID / DESCRIPTION / UPGRADE / REPLACE_WITH and RG.PYDUMPSESSIONS
(REFERENCE §1.1, §1.3, §11 items 38-42)."""
import re

import pytest
import redis

from conftest import fresh_server, pyexecute, unregister_all, wait_for

ZEROS = '0' * 40
REG = "GB().register('s:*', mode='sync')"
# RG.PYPROFILE STATS with nothing profiled: pstats.Stats refuses the empty profile (as in 1.2).
EMPTY_PROFILE = re.escape("TypeError: Cannot create or construct a <class 'pstats.Stats'> object from <cProfile.Profile")


@pytest.fixture
def rs(r):
    yield r
    unregister_all(r)


def test_dump_sessions_after_one_registration():
    with fresh_server() as srv:
        c = srv.client()
        assert pyexecute(c, "GB().register()", 'ID', 'test') == 'OK'
        assert c.execute_command('RG.PYDUMPSESSIONS') == [[
            'ID', 'test', 'sessionDescription', None, 'refCount', 1, 'linked', 'primary', 'dead', 'false',
            'requirementInstallationNeeded', 0, 'requirements', [], 'registrations', [ZEROS + '-1']]]


def test_same_id_twice_needs_upgrade(rs):
    assert pyexecute(rs, REG, 'ID', 'test') == 'OK'
    with pytest.raises(redis.ResponseError, match='Session test already exists'):
        pyexecute(rs, REG, 'ID', 'test')
    old = [r[1] for r in rs.execute_command('RG.DUMPREGISTRATIONS')]
    assert pyexecute(rs, "GB().register('t:*', mode='sync')", 'ID', 'test', 'UPGRADE') == 'OK'
    regs = rs.execute_command('RG.DUMPREGISTRATIONS')
    assert len(regs) == 1 and regs[0][1] not in old, 'UPGRADE replaces the registrations'
    assert regs[0][7][-1][1] == 't:*'


def test_failed_upgrade_keeps_old_registrations(rs):
    pyexecute(rs, REG, 'ID', 'keep')
    with pytest.raises(redis.ResponseError, match='ZeroDivisionError: division by zero'):
        pyexecute(rs, "1/0", 'ID', 'keep', 'UPGRADE')
    assert len(rs.execute_command('RG.DUMPREGISTRATIONS')) == 1


def test_replace_with(rs):
    pyexecute(rs, REG, 'ID', 'old')
    with pytest.raises(redis.ResponseError, match='Can not replace with nosuch, session does not exists.'):
        pyexecute(rs, REG, 'ID', 'new', 'REPLACE_WITH', 'nosuch')
    assert pyexecute(rs, REG, 'ID', 'new', 'REPLACE_WITH', 'old') == 'OK'
    names = [s[1] for s in rs.execute_command('RG.PYDUMPSESSIONS')]
    assert names == ['new']


def test_description_and_session_filter(rs):
    pyexecute(rs, REG, 'ID', 'd1', 'DESCRIPTION', 'my session')
    dump = rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'd1', 'nosuch')
    assert dump[0][3] == 'my session'
    assert dump[1] == 'Session nosuch does not exists'
    verbose = rs.execute_command('RG.PYDUMPSESSIONS', 'VERBOSE')
    assert verbose[0][15][0][0] == 'id', 'VERBOSE lists registration dumps'


@pytest.mark.parametrize('args, error', [
    (['ID', 'test@a'], 'must be compose of'),
    (['ID', 'test', 'UNKNOWN'], 'Unknown arguments were given'),
    (['ID'], 'ID is missing'),
    (['DESCRIPTION'], 'DESCRIPTION is missing'),
    (['REPLACE_WITH'], 'REPLACE_WITH is missing'),
])
def test_argument_errors(rs, args, error):
    with pytest.raises(redis.ResponseError, match=error):
        pyexecute(rs, REG, *args)


def test_dump_sessions_unknown_option(rs):
    with pytest.raises(redis.ResponseError, match='Unknown option'):
        rs.execute_command('RG.PYDUMPSESSIONS', 'foo')


def test_unregistering_last_registration_drops_session(rs):
    pyexecute(rs, REG, 'ID', 'gone')
    reg = rs.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    rs.execute_command('RG.UNREGISTER', reg)
    assert rs.execute_command('RG.PYDUMPSESSIONS') == []


def test_pyprofile_errors(rs):
    with pytest.raises(redis.ResponseError, match='Wrong subcommand given to RG.PYPROFILE'):
        rs.execute_command('RG.PYPROFILE', 'FOO', 'x')
    with pytest.raises(redis.ResponseError, match='session does not exists'):
        rs.execute_command('RG.PYPROFILE', 'STATS', 'nosuch')
    pyexecute(rs, REG, 'ID', 'prof')
    assert rs.execute_command('RG.PYPROFILE', 'RESET', 'prof') == 'OK'
    with pytest.raises(redis.ResponseError, match=EMPTY_PROFILE):
        rs.execute_command('RG.PYPROFILE', 'STATS', 'prof')


def test_pyprofile_stats_after_profiled_runs(rs):
    rs.execute_command('RG.CONFIGSET', 'ProfileExecutions', '1')
    try:
        script = "def my_profiled_step(x):\n    return x\nGB().map(my_profiled_step).register('pp:*', mode='sync')"
        pyexecute(rs, script, 'ID', 'profiled')
        rs.set('pp:1', 'x')
        rs.set('pp:2', 'y')
        stats = rs.execute_command('RG.PYPROFILE', 'STATS', 'profiled')
        assert 'my_profiled_step' in stats
        assert 'function calls' in stats
        assert rs.execute_command('RG.PYPROFILE', 'RESET', 'profiled') == 'OK'
        with pytest.raises(redis.ResponseError, match=EMPTY_PROFILE):
            rs.execute_command('RG.PYPROFILE', 'STATS', 'profiled')
    finally:
        rs.execute_command('RG.CONFIGSET', 'ProfileExecutions', '0')


def test_a_script_that_registers_and_runs_keeps_both(rs):
    rs.set('x', '1')
    script = "GB().register('both:*', mode='sync')\nGB().map(lambda r: r['key']).run('x')"
    assert pyexecute(rs, script, 'ID', 'both') == [['x'], []]
    regs = rs.execute_command('RG.DUMPREGISTRATIONS')
    assert len(regs) == 1 and regs[0][7][-1][1] == 'both:*'
    assert [s[1] for s in rs.execute_command('RG.PYDUMPSESSIONS')] == ['both']


def test_a_script_that_registers_and_runs_unblocking_replies_with_the_id(rs):
    script = "GB().register('both2:*', mode='sync')\nGB('ShardsIDReader').run()"
    eid = pyexecute(rs, script, 'UNBLOCKING')
    assert eid.startswith(ZEROS + '-')
    assert rs.execute_command('RG.GETRESULTSBLOCKING', eid) == [['1'], []]
    assert len(rs.execute_command('RG.DUMPREGISTRATIONS')) == 1


# A registration whose executions wait until the key `release` exists.
HOLDING = ("import time\n"
           "def hold(x):\n"
           "    execute('SET', 'holding', '1')\n"
           "    while execute('GET', 'release') is None:\n"
           "        time.sleep(0.01)\n"
           "GB().foreach(hold).register('dead:*')")


def test_an_upgraded_session_is_dead_while_its_execution_runs(rs):
    assert pyexecute(rs, HOLDING, 'ID', 'phoenix') == 'OK'
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD') == []
    rs.set('dead:1', '1')
    assert wait_for(lambda: rs.get('holding') == '1')
    try:
        assert pyexecute(rs, REG, 'ID', 'phoenix', 'UPGRADE') == 'OK'
        live = rs.execute_command('RG.PYDUMPSESSIONS')
        assert [(s[1], s[9]) for s in live] == [('phoenix', 'false')]
        dead = rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD')
        assert [(s[1], s[9]) for s in dead] == [('phoenix', 'true')]
    finally:
        rs.set('release', '1')
    assert wait_for(lambda: rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD') == [])
