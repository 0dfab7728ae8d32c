"""KeysReader register(commands=[…]) and override_reply (REFERENCE §2.1, §5, §11 item 30)."""
import pytest
import redis

from conftest import assert_alive, pyexecute, unregister_all


@pytest.fixture
def rc(r):
    yield r
    unregister_all(r)


def test_override_reply_with_an_error(rc):
    assert pyexecute(rc, "GB().foreach(lambda x: override_reply('-no allowed')).register(commands=['set'])") == 'OK'
    with pytest.raises(redis.ResponseError, match='no allowed'):
        rc.execute_command('SET', 'x', '1')
    assert rc.get('x') == '1', 'the command itself ran'


def test_real_reply_when_not_overridden(rc):
    pyexecute(rc, "GB().foreach(lambda x: execute('INCR', 'seen')).register(commands=['hset'])")
    assert rc.execute_command('HSET', 'h', 'f', 'v') == 1
    assert rc.get('seen') == '1', 'the client waited for the execution'


def test_only_listed_commands_trigger(rc):
    pyexecute(rc, "GB().foreach(lambda x: execute('INCR', 'n')).register(commands=['lpush'])")
    rc.rpush('l', 'a')
    rc.lpush('l', 'b')
    assert rc.get('n') == '1'


def test_override_only_once_and_sync_mode(rc):
    script = """
def f(x):
    override_reply('+first')
    try:
        override_reply('+second')
    except Exception as e:
        execute('SET', 'second_error', str(e))
GB().foreach(f).register(commands=['hset'], mode='sync')
"""
    pyexecute(rc, script)
    assert rc.execute_command('HSET', 'h2', 'f', 'v') == 'first'
    assert 'Can only override reply once' in rc.get('second_error')


def test_get_command_in_linked_execution(rc):
    pyexecute(rc, "GB().foreach(lambda x: execute('SET', 'cmd', str(get_command()))).register('k*', commands=['set'])")
    rc.execute_command('SET', 'k1', 'v')
    assert rc.get('cmd').lower() == "['set', 'k1', 'v']"


def test_override_reply_outside_a_command(rc):
    res = pyexecute(rc, "GB('ShardsIDReader').map(lambda x: override_reply('x')).run()")
    assert 'Can not get command ctx' in res[1][0]
    assert_alive(rc)


@pytest.mark.parametrize('commands, error', [
    (['nosuchcommand'], 'bad reply on COMMAND command'),
    (['set', 'multi'], 'Can not hook a command which are not allowed inside a script'),
    (['exec'], 'Can not hook a command which are not allowed inside a script'),
    (['eval'], 'Can not hook a command which are not allowed inside a script'),
    (['xread'], 'Can not hook a command with moveable keys by key prefix'),
    (['ping'], 'Can not hook a command by key prefix with none positive first key'),
])
def test_commands_are_validated_at_registration(rc, commands, error):
    # REFERENCE §12.6: the prefix (default '*') always counts as a key prefix.
    with pytest.raises(redis.ResponseError) as e:
        pyexecute(rc, "GB().foreach(lambda x: x).register(commands=%r)" % (commands,))
    assert str(e.value) == error
    assert rc.execute_command('RG.DUMPREGISTRATIONS') == []
    assert rc.execute_command('RG.PYDUMPSESSIONS') == []
