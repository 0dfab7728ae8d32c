"""An outsider's sweep of sessions and registration commands against RedisGears 1.2
(issue #11, REFERENCE §1.1, §1.3, §6, §9, §10): RG.PYDUMPSESSIONS in all its flag forms,
ID / UPGRADE / REPLACE_WITH / DESCRIPTION, the `python_sessions` INFO section,
RG.PAUSEREGISTRATIONS' flags, RG.CONFIGGET / RG.CONFIGSET of every key, and registrations
made in a step: replayed from the AOF and shipped between the shards of a cluster."""
import pytest
import redis

from conftest import Cluster, fresh_server, pyexecute, unregister_all, wait_for

ZEROS = '0' * 40
COUNT = "GB('CommandReader').count().register(trigger='{t}')"
# A registration whose step registers a trigger named by the call's first argument.
MAKER = ("GB('CommandReader')"
         ".foreach(lambda x: GB('CommandReader').map(lambda y: 'made ' + x[1]).register(trigger=x[1], mode='sync'))"
         ".map(lambda x: '+OK').register(trigger='mk', mode='sync')")


@pytest.fixture
def rs(r):
    yield r
    unregister_all(r)


def err(c, *args):
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command(*args)
    return str(e.value)


def raw_info(c, section):
    """INFO `section` as the server wrote it (redis-py's parsing keeps one field per name)."""
    try:
        conn = c.connection_pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = c.connection_pool.get_connection('INFO')
    try:
        conn.send_command('INFO', section)
        text = conn.read_response()
    finally:
        c.connection_pool.release(conn)
    return text.decode() if isinstance(text, bytes) else text


def triggers(c):
    return sorted(r[7][-1][1] for r in c.execute_command('RG.DUMPREGISTRATIONS'))


# ---- RG.PYDUMPSESSIONS flag forms -------------------------------------------------------

def test_dump_sessions_flag_forms(rs):
    assert pyexecute(rs, COUNT.format(t='f1'), 'ID', 'f1', 'DESCRIPTION', 'desc') == 'OK'
    row = rs.execute_command('RG.PYDUMPSESSIONS')[0]
    assert row[:-1] == ['ID', 'f1', 'sessionDescription', 'desc', 'refCount', 1, 'linked', 'primary', 'dead',
                        'false', 'requirementInstallationNeeded', 0, 'requirements', [], 'registrations']
    # Flags are case-insensitive and come before SESSIONS, which takes every name after it.
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'verbose', 'sessions', 'f1')[0][-1][0][1] == row[-1][0]
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS') == []
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD') == []
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'VERBOSE', 'DEAD') == []
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD', 'SESSIONS', 'f1')[0][1] == 'f1'
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'VERBOSE') == ['Session VERBOSE does not exists']
    assert err(rs, 'RG.PYDUMPSESSIONS', 'TS') == 'Unknown option TS'
    assert err(rs, 'RG.PYDUMPSESSIONS', 'VERBOSE', 'foo') == 'Unknown option foo'


def test_a_dead_session_is_linked_to_none(rs):
    holding = ("import time\n"
               "def hold(x):\n"
               "    execute('SET', 'holding', '1')\n"
               "    while execute('GET', 'release') is None:\n"
               "        time.sleep(0.01)\n"
               "GB().foreach(hold).register('dead:*')")
    assert pyexecute(rs, holding, 'ID', 'zombie') == 'OK'
    rs.set('dead:1', '1')
    assert wait_for(lambda: rs.get('holding') == '1')
    try:
        assert pyexecute(rs, COUNT.format(t='z'), 'ID', 'zombie', 'UPGRADE') == 'OK'
        [dead] = rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD')
        assert (dead[1], dead[7], dead[9]) == ('zombie', 'None', 'true')
        [live] = rs.execute_command('RG.PYDUMPSESSIONS')
        assert (live[1], live[7], live[9]) == ('zombie', 'primary', 'false')
        # INFO lists the live session, then the dead one, under the same name.
        text = raw_info(rs, 'rg_python_sessions')
        lines = [ln for ln in text.splitlines() if ln.startswith('rg_zombie:')]
        assert len(lines) == 2 and "'dead': false" in lines[0] and "'dead': true" in lines[1]
    finally:
        rs.set('release', '1')
    assert wait_for(lambda: rs.execute_command('RG.PYDUMPSESSIONS', 'DEAD') == [])


# ---- ID / UPGRADE / REPLACE_WITH / DESCRIPTION ------------------------------------------

def test_session_argument_combinations(rs):
    # UPGRADE of a session that does not exist just creates it; every allowed character.
    assert pyexecute(rs, COUNT.format(t='u1'), 'ID', 'Test_1-1', 'UPGRADE') == 'OK'
    assert rs.execute_command('RG.TRIGGER', 'u1') == ['1']
    assert pyexecute(rs, COUNT.format(t='u2'), 'ID', 'other') == 'OK'
    assert err(rs, 'RG.PYEXECUTE', COUNT.format(t='u3'), 'ID', 'Test_1-1', 'REPLACE_WITH', 'other') == \
        'Can not replace an existing session Test_1-1 with other'
    assert err(rs, 'RG.PYEXECUTE', 'GB()', 'ID', 'x', 'UNKNOWN', 'doo') == 'Unknown arguments were given: UNKNOWN'
    # REPLACE_WITH moves the trigger to the new session (the old one's registration goes).
    script = "GB('CommandReader').map(lambda x: 'new').register(trigger='u2', mode='sync')"
    assert pyexecute(rs, script, 'ID', 'renamed', 'REPLACE_WITH', 'other', 'DESCRIPTION', 'd2') == 'OK'
    assert rs.execute_command('RG.TRIGGER', 'u2') == ['new']
    names = {s[1]: s[3] for s in rs.execute_command('RG.PYDUMPSESSIONS')}
    assert names == {'Test_1-1': None, 'renamed': 'd2'}
    # REQUIREMENTS with no requirement after it is ignored.
    assert pyexecute(rs, COUNT.format(t='u4'), 'ID', 'noreq', 'REQUIREMENTS') == 'OK'
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'noreq')[0][13] == []


def test_a_failing_script_leaves_no_session_and_no_registration(rs):
    script = "GB('CommandReader').count().register(trigger='r1')\nGB('CommandReader').count().register(trigger='r2')\nfailure()"
    assert 'is not defined' in err(rs, 'RG.PYEXECUTE', script, 'ID', 'rb', 'DESCRIPTION', 'desc')
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS') == []
    assert rs.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'rb') == ['Session rb does not exists']
    assert rs.execute_command('RG.DUMPREGISTRATIONS') == []


def test_register_inside_register_joins_the_session(rs):
    assert pyexecute(rs, MAKER, 'ID', 'maker', 'DESCRIPTION', 'desc') == 'OK'
    assert len(rs.execute_command('RG.PYDUMPSESSIONS')[0][-1]) == 1
    assert rs.execute_command('RG.TRIGGER', 'mk', 'made1') == ['OK']
    assert len(rs.execute_command('RG.PYDUMPSESSIONS')[0][-1]) == 2
    assert rs.execute_command('RG.TRIGGER', 'made1') == ['made made1']


# ---- INFO python_sessions ---------------------------------------------------------------

def test_info_python_sessions_describes_each_session(rs):
    assert pyexecute(rs, COUNT.format(t='i1'), 'ID', 'infosess', 'DESCRIPTION', 'my desc') == 'OK'
    reg = rs.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    [line] = [ln for ln in raw_info(rs, 'rg_python_sessions').splitlines() if ln.startswith('rg_infosess:')]
    # 1.2: the session's description string (as in RG.DUMPREGISTRATIONS' PD), not a dict.
    value = line[len('rg_infosess:'):]
    assert value.startswith("{'sessionName':'infosess', 'sessionDescription':'my desc', 'refCount': 1, "
                            "'linkedTo': primary, 'dead': false, 'isInstallationNeeded':0, ")
    assert f"'registrationsList':['{reg}']" in value and value.endswith("'depsList':[]}")


# ---- RG.PAUSEREGISTRATIONS / RG.UNPAUSEREGISTRATIONS flags --------------------------------

def test_pause_flags(rs):
    # Every argument after the flags is an id: a flag alone leaves none (1.2's text).
    assert err(rs, 'RG.PAUSEREGISTRATIONS', 'ABORTPENDING') == 'no registration to pause'
    assert err(rs, 'RG.PAUSEREGISTRATIONS', 'abortpending') == 'no registration to pause'
    # UNPAUSE has no flags: the word is an id.
    assert err(rs, 'RG.UNPAUSEREGISTRATIONS', 'ABORTPENDING') == \
        f'Execution ABORTPENDING does not exists on shard {ZEROS}'
    pyexecute(rs, "GB('StreamReader').register('pst')", 'ID', 'pst')
    reg = rs.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    assert rs.execute_command('RG.PAUSEREGISTRATIONS', 'ABORTPENDING', reg) == 'OK'
    assert 'PAUSED' in str(rs.execute_command('RG.DUMPREGISTRATIONS')[0])
    assert rs.execute_command('RG.UNPAUSEREGISTRATIONS', reg) == 'OK'


# ---- RG.CONFIGGET / RG.CONFIGSET of every key (REFERENCE §6) -------------------------------

DEFAULTS = {
    'MaxExecutions': 1000, 'MaxExecutionsPerRegistration': 100, 'ProfileExecutions': 0, 'ExecutionThreads': 3,
    'ExecutionMaxIdleTime': 5000, 'SendMsgRetries': 3, 'PythonAttemptTraceback': 1,
    'OverridePythonAllocators': 1, 'PythonInstallReqMaxIdleTime': 30000, 'CreateVenv': 0, 'DownloadDeps': 0,
    'ForeceDownloadDepsOnEnterprise': 0, 'PythonInstallationDir': '/var/opt/redislabs/modules/rg',
}
PLUGIN_READ_ONLY = ['OverridePythonAllocators', 'CreateVenv', 'DownloadDeps', 'ForeceDownloadDepsOnEnterprise',
                    'DependenciesUrl', 'DependenciesSha256', 'PythonInstallationDir']


def test_every_config_key_reads_its_default():
    with fresh_server() as s:
        c = s.client()
        got = c.execute_command('RG.CONFIGGET', *DEFAULTS)
        assert dict(zip(DEFAULTS, got)) == DEFAULTS
        assert c.execute_command('RG.CONFIGGET', 'Plugin') == [[]]


def test_runtime_settable_keys_and_read_only_ones():
    with fresh_server() as s:
        c = s.client()
        for key, value in [('MaxExecutionsPerRegistration', 5), ('ProfileExecutions', 1),
                           ('ExecutionMaxIdleTime', 100), ('SendMsgRetries', 2)]:
            assert c.execute_command('RG.CONFIGSET', key, value) == ['OK']
            assert c.execute_command('RG.CONFIGGET', key) == [value]
        # Plugin keys settable at runtime go to the plugin and the extra dictionary.
        assert c.execute_command('RG.CONFIGSET', 'PythonInstallReqMaxIdleTime', '100') == [
            'OK - value was saved in extra config dictionary']
        assert c.execute_command('RG.CONFIGGET', 'PythonInstallReqMaxIdleTime') == [100]
        assert c.execute_command('RG.CONFIGSET', 'Plugin', 'x') == [
            '(error) Config value Plugin not modifiable at runtime']
        for key in PLUGIN_READ_ONLY:
            assert c.execute_command('RG.CONFIGSET', key, '1') == [f'(error) {key} is not configurable at runtime']
        assert c.execute_command('RG.CONFIGSET', 'ExecutionMaxIdleTime', '0') == [
            '(error) Failed setting config value ExecutionMaxIdleTime']
        # Names are case-insensitive in CONFIGSET; a key without value is its own error.
        assert c.execute_command('RG.CONFIGSET', 'maxexecutions', '10', 'foo') == [
            'OK', '(error) Value was not given to foo']
        assert c.execute_command('RG.CONFIGGET', 'MaxExecutions') == [10]


# ---- registrations made in a step: AOF replay and cluster --------------------------------

def resp_commands(data):
    """The commands of an AOF file (RESP arrays of bulk strings), each with its raw bytes."""
    out, i = [], 0
    while i < len(data):
        start = i
        assert data[i:i + 1] == b'*', data[i:i + 20]
        end = data.index(b'\r\n', i)
        n, i = int(data[i + 1:end]), end + 2
        args = []
        for _ in range(n):
            end = data.index(b'\r\n', i)
            size, i = int(data[i + 1:end]), end + 2
            args.append(data[i:i + size])
            i += size + 2
        out.append((args, data[start:i]))
    return out


def test_a_late_session_blob_does_not_bring_back_an_unregistered_step_registration():
    with fresh_server(server_args=['--appendonly', 'yes', '--aof-use-rdb-preamble', 'no']) as s:
        c = s.client()
        assert pyexecute(c, MAKER, 'ID', 'maker') == 'OK'
        c.execute_command('RG.TRIGGER', 'mk', 't1')
        c.execute_command('RG.TRIGGER', 'mk', 't2')
        ids = {r[7][-1][1]: r[1] for r in c.execute_command('RG.DUMPREGISTRATIONS')}
        assert c.execute_command('RG.UNREGISTER', ids['t1']) == 'OK'
        assert triggers(c) == ['mk', 't2']
        s.stop()
        # The AOF now holds the session with t1 and t2, then the unregister of t1. Replay
        # that session once more after it, as a shard that had not heard of the unregister
        # would send it.
        [incr] = list((s.dir / 'appendonlydir').glob('*.incr.aof'))
        blobs = [raw for args, raw in resp_commands(incr.read_bytes()) if args[0].upper() == b'RG.INNERREGISTER']
        assert len(blobs) >= 3
        with open(incr, 'ab') as f:
            f.write(blobs[-1])
        s.start()
        c = s.client()
        assert triggers(c) == ['mk', 't2']
        assert len(c.execute_command('RG.PYDUMPSESSIONS')[0][-1]) == 2


@pytest.fixture(scope='module')
def cluster():
    with Cluster() as cl:
        yield cl


def test_step_registrations_and_unregister_reach_every_shard_from_any_shard(cluster):
    c0 = cluster.client(0)
    assert pyexecute(c0, MAKER, 'ID', 'maker') == 'OK'
    assert cluster.each(triggers) == [['mk']] * 3
    # Made on shard 1 and unregistered from shard 2: neither ran a script.
    assert cluster.client(1).execute_command('RG.TRIGGER', 'mk', 'c1') == ['OK']
    assert wait_for(lambda: cluster.each(triggers) == [['c1', 'mk']] * 3)
    reg = {r[7][-1][1]: r[1] for r in c0.execute_command('RG.DUMPREGISTRATIONS')}['c1']
    assert cluster.client(2).execute_command('RG.UNREGISTER', reg) == 'OK'
    assert wait_for(lambda: cluster.each(triggers) == [['mk']] * 3)
    assert cluster.client(2).execute_command('RG.TRIGGER', 'mk', 'c2') == ['OK']
    assert wait_for(lambda: cluster.each(triggers) == [['c2', 'mk']] * 3)
    sessions = cluster.each(lambda c: c.execute_command('RG.PYDUMPSESSIONS'))
    assert all(len(s) == 1 and s[0][1] == 'maker' and len(s[0][-1]) == 2 for s in sessions)
    assert cluster.each(lambda c: c.execute_command('RG.TRIGGER', 'c2')) == [['made c2']] * 3
