"""RG.CONFIGGET / RG.CONFIGSET and module arguments (REFERENCE §6, §11 items 34-36)."""
import pytest
import redis

from conftest import fresh_server, pyexecute


def test_defaults(r):
    assert r.execute_command('RG.CONFIGGET', 'ProfileExecutions') == [0]
    assert r.execute_command('RG.CONFIGGET', 'ExecutionMaxIdleTime') == [5000]
    assert r.execute_command('RG.CONFIGGET', 'MaxExecutions') == [1000]
    assert r.execute_command('RG.CONFIGGET', 'PythonInstallationDir') == ['/var/opt/redislabs/modules/rg']


def test_unknown_key_and_extra_dictionary(r):
    assert r.execute_command('RG.CONFIGGET', 'nosuchkey') == ['(error) Unsupported config parameter: nosuchkey']
    assert r.execute_command('RG.CONFIGSET', 'foo', 'bar') == ['OK - value was saved in extra config dictionary']
    assert r.execute_command('RG.CONFIGGET', 'foo') == ['bar']
    assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: configGet('foo')).run()") == [['bar'], []]
    assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: str(configGet('MaxExecutions'))).run()") == [['None'], []]


def test_runtime_rules(r):
    assert r.execute_command('RG.CONFIGSET', 'ExecutionThreads', '4') == [
        '(error) Config value ExecutionThreads not modifiable at runtime']
    assert r.execute_command('RG.CONFIGSET', 'MaxExecutions', '10') == ['OK']
    assert r.execute_command('RG.CONFIGGET', 'MaxExecutions') == [10]
    assert r.execute_command('RG.CONFIGSET', 'MaxExecutions', 'abc') == [
        '(error) Failed setting config value MaxExecutions']
    assert r.execute_command('RG.CONFIGSET', 'MaxExecutions', '1000') == ['OK']
    assert r.execute_command('RG.CONFIGSET', 'MaxExecutions') == ['(error) Value was not given to MaxExecutions']
    assert r.execute_command('RG.CONFIGGET', 'maxexecutions') == [
        '(error) Unsupported config parameter: maxexecutions'], 'CONFIGGET names are case-sensitive'


def test_module_arguments_any_order_unknown_kept():
    with fresh_server(MaxExecutions='7', myExtraKey='hello', executionthreads='2') as srv:
        c = srv.client()
        assert c.execute_command('RG.CONFIGGET', 'MaxExecutions', 'ExecutionThreads') == [7, 2]
        assert pyexecute(c, "GB('ShardsIDReader').map(lambda x: configGet('myExtraKey')).run()") == [['hello'], []]


def test_traceback_off_gives_error_type_text():
    with fresh_server(PythonAttemptTraceback='0') as srv:
        c = srv.client()
        c.set('x', '1')
        res = pyexecute(c, "GB().map(lambda x: notexists).run()")
        assert res[0] == []
        assert res[1][0].startswith('Error type:'), res
        assert "name 'notexists' is not defined" in res[1][0]


def test_redis7_module_configs(r):
    cfg = r.config_get('rg.*')
    assert cfg['rg.max-executions'] == '1000'
    assert cfg['rg.execution-threads'] == '3'
    r.config_set('rg.max-executions', 7)
    try:
        assert r.execute_command('RG.CONFIGGET', 'MaxExecutions') == [7]
        r.execute_command('RG.CONFIGSET', 'MaxExecutions', '9')
        assert r.config_get('rg.max-executions')['rg.max-executions'] == '9'
    finally:
        r.execute_command('RG.CONFIGSET', 'MaxExecutions', '1000')
    with pytest.raises(redis.ResponseError, match='immutable'):
        r.config_set('rg.execution-threads', 5)


def test_module_loadex_configs_and_args():
    from conftest import MODULE, Server
    with Server(server_args=['--enable-module-command', 'yes'], load_module=False) as srv:
        c = srv.client()
        assert c.execute_command('MODULE', 'LOADEX', str(MODULE), 'CONFIG', 'rg.execution-threads', '5',
                                 'ARGS', 'MaxExecutions', '3') == 'OK'
        assert c.execute_command('RG.CONFIGGET', 'ExecutionThreads', 'MaxExecutions') == [5, 3]
        assert pyexecute(c, "GB().run()") == [[], []]
