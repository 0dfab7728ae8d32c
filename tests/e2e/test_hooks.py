"""CommandReader command hooks (REFERENCE §2.3, §11 items 31-33)."""
import pytest
import redis

from conftest import assert_alive, pyexecute, unregister_all


@pytest.fixture
def rh(r):
    yield r
    unregister_all(r)


def test_hook_replaces_the_command_and_call_next_runs_it(rh):
    script = """
def f(x):
    execute('INCR', 'hooked')
    return call_next(*x[1:])
GB('CommandReader').map(f).register(hook='hset', mode='sync')
"""
    assert pyexecute(rh, script) == 'OK'
    assert rh.execute_command('HSET', 'h', 'f', 'v') == '1'  # the hook's record, stringified
    assert rh.hget('h', 'f') == 'v'
    assert rh.get('hooked') == '1'


def test_hook_can_refuse_a_command(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: '-not allowed').register(hook='set', mode='sync')")
    with pytest.raises(redis.ResponseError, match='not allowed'):
        rh.set('x', '1')
    assert rh.get('x') is None


def test_hook_must_return_one_record(rh):
    pyexecute(rh, "GB('CommandReader').flatmap(lambda x: x).register(hook='hset', mode='sync')")
    with pytest.raises(redis.ResponseError, match='Command hook must return exactly one result'):
        rh.hset('h', 'f', 'v')


def test_hooks_stack_newest_first(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('RPUSH', 'order', 'old') and call_next(*x[1:])).register(hook='incr', mode='sync')")
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('RPUSH', 'order', 'new') and call_next(*x[1:])).register(hook='incr', mode='sync')")
    rh.execute_command('INCR', 'n')
    assert rh.lrange('order', 0, -1) == ['new', 'old']
    assert rh.get('n') == '1'


def test_keyprefix_only_hooks_matching_keys(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: '+hooked').register(hook='rpush', keyprefix='p:', mode='sync')")
    assert rh.execute_command('RPUSH', 'p:1', 'v') == 'hooked'
    assert rh.execute_command('RPUSH', 'other', 'v') == 1
    assert rh.llen('p:1') == 0 and rh.llen('other') == 1


def test_async_hook_blocks_only_the_client(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset')")
    assert rh.execute_command('HSET', 'ah', 'f', 'v') == '1'
    assert rh.hget('ah', 'f') == 'v'


def test_get_command_inside_a_hook(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: str(get_command())).register(hook='echo', mode='sync')")
    assert rh.execute_command('ECHO', 'hi').lower() == "['echo', 'hi']"


@pytest.mark.parametrize('script, error', [
    ("GB('CommandReader').register(hook='nosuchcommand')", 'Can not override an unexisting command'),
    ("GB('CommandReader').register(hook='multi')", 'Can not override a command which are not allowed inside a script'),
])
def test_hook_validation(rh, script, error):
    with pytest.raises(redis.ResponseError, match=error):
        pyexecute(rh, script)


def test_cannot_stack_over_a_non_sync_hook(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset')")
    with pytest.raises(redis.ResponseError, match='Can not override a none sync registration'):
        pyexecute(rh, "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')")


def test_call_next_outside_a_hook(rh):
    res = pyexecute(rh, "GB('ShardsIDReader').map(lambda r: call_next(r)).run()")
    assert res[0] == [] and 'Can not get CommandHook ctx' in res[1][0]
    with pytest.raises(redis.ResponseError, match='Can not get CommandHook ctx'):
        pyexecute(rh, "call_next()")
    assert_alive(rh)


def test_unregistered_hook_stops_hooking(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: '+hooked').register(hook='set', mode='sync')")
    reg = rh.execute_command('RG.DUMPREGISTRATIONS')[0][1]
    rh.execute_command('RG.UNREGISTER', reg)
    assert rh.set('x', '1') is True


NOT_SYNC = ('can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) '
            'or on loading.')


def test_call_next_of_an_async_hook_runs_the_hook_once(rh):
    # REFERENCE §12.6: call_next never runs the hooks again (it ran twice when the hook ran
    # in the background, where the real command went through the command filter again).
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('INCR', 'runs') and call_next(*x[1:])).register(hook='hset')")
    assert rh.execute_command('HSET', 'h', 'f', 'v') == '1'
    assert rh.get('runs') == '1'
    assert rh.hget('h', 'f') == 'v'


def test_execute_from_a_background_run_goes_through_a_sync_hook(rh):
    pyexecute(rh, "GB('CommandReader').map(lambda x: '+hooked').register(hook='hset', mode='sync')")
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('HSET', 'bg', 'f', 'v')).register(trigger='bg')")
    assert rh.execute_command('RG.TRIGGER', 'bg') == ['hooked']
    assert rh.exists('bg') == 0


def test_a_non_sync_hook_where_the_client_cannot_block(rh):
    # REFERENCE §12.6: background execute(), MULTI and Lua reach the hook with a client
    # that cannot block.
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('INCR', 'runs') and call_next(*x[1:])).register(hook='hset')")
    pyexecute(rh, "GB('CommandReader').map(lambda x: execute('HSET', 'bg', 'f', 'v')).register(trigger='bg')")
    with pytest.raises(redis.ResponseError) as e:
        rh.execute_command('RG.TRIGGER', 'bg')
    assert NOT_SYNC in str(e.value)
    pipe = rh.pipeline(transaction=True)
    pipe.hset('m', 'f', 'v')
    pipe.set('after', '1')
    res = pipe.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError) and str(res[0]) == NOT_SYNC
    assert res[1] is True
    with pytest.raises(redis.ResponseError) as e:
        rh.eval("return redis.call('HSET', 'l', 'f', 'v')", 0)
    assert NOT_SYNC in str(e.value)
    assert rh.exists('bg', 'm', 'l') == 0
    assert rh.get('runs') is None
    assert rh.execute_command('HSET', 'ok', 'f', 'v') == '1'  # a client that can block
    assert rh.get('runs') == '1'


def test_a_second_hook_after_a_non_sync_one_in_one_script(rh):
    script = """
GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset')
GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')
"""
    with pytest.raises(redis.ResponseError) as e:
        pyexecute(rh, script)
    assert str(e.value) == 'Can not override a none sync registration which already created on this session'
    assert rh.execute_command('RG.DUMPREGISTRATIONS') == []
    # A sync hook first, then a non-sync one over it: allowed.
    pyexecute(rh, """
GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')
GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset')
""")
    assert len(rh.execute_command('RG.DUMPREGISTRATIONS')) == 2
