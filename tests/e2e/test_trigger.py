"""CommandReader triggers and RG.TRIGGER (REFERENCE §2.3, §11 items 17, 21-25, 48)."""
import pytest
import redis

from conftest import pyexecute, unregister_all


@pytest.fixture
def rt(r):
    yield r
    unregister_all(r)


def test_trigger_record_is_the_argument_list(rt):
    assert pyexecute(rt, "GB('CommandReader').register(trigger='t')") == 'OK'
    assert rt.execute_command('RG.TRIGGER', 't', 'foo', 'bar') == ["['t', 'foo', 'bar']"]


def test_trigger_words_distinct_sorted(rt):
    pyexecute(rt, "GB('CommandReader').flatmap(lambda x: x).distinct().sort().register(trigger='t1')")
    assert rt.execute_command('RG.TRIGGER', 't1', 'this', 'is', 'a', 'test') == ['a', 'is', 't1', 'test', 'this']


def test_sync_count_trigger(rt):
    pyexecute(rt, "GB('CommandReader').count().register(trigger='t', mode='sync')")
    assert rt.execute_command('RG.TRIGGER', 't') == ['1']


def test_trigger_on_key_same_handler(rt):
    pyexecute(rt, "GB('CommandReader').map(lambda x: x[1]).register(trigger='k')")
    assert rt.execute_command('RG.TRIGGERONKEY', 'k', 'mykey', 'x') == ['mykey']


def test_trigger_errors(rt):
    with pytest.raises(redis.ResponseError, match='subcommand not found'):
        rt.execute_command('RG.TRIGGER', 'nosuch')
    pyexecute(rt, "GB('CommandReader').map(lambda x: 1/0).register(trigger='bad')")
    with pytest.raises(redis.ResponseError, match='ZeroDivisionError'):
        rt.execute_command('RG.TRIGGER', 'bad')


def test_same_trigger_twice(rt):
    pyexecute(rt, "GB('CommandReader').register(trigger='dup')")
    with pytest.raises(redis.ResponseError, match='trigger already registered'):
        pyexecute(rt, "GB('CommandReader').register(trigger='dup')")


@pytest.mark.parametrize('script, error', [
    ("GB('CommandReader').run()", 'reader do not support run'),
    ("GB('CommandReader').register('test')", 'no trigger or hook argument was given'),
    ("GB('CommandReader').register(trigger='t', hook='hset')", 'trigger argument can not be given with keyprefix or hook'),
    ("GB('CommandReader').register(trigger=1)", 'trigger argument is not string'),
    ("GB('CommandReader').register(trigger='t', inorder=1)", 'inorder argument is be boolean'),
])
def test_registration_errors(rt, script, error):
    with pytest.raises(redis.ResponseError, match=error):
        pyexecute(rt, script)


def test_dump_shows_command_reader(rt):
    pyexecute(rt, "GB('CommandReader').register(trigger='dumped', mode='async_local')")
    reg = rt.execute_command('RG.DUMPREGISTRATIONS')[0]
    assert reg[3] == 'CommandReader'
    data = reg[7]
    assert data[1] == 'async_local'
    assert data[-1] == ['trigger', 'dumped', 'inorder', 0]


def test_non_sync_trigger_inside_multi(rt):
    pyexecute(rt, "GB('CommandReader').register(trigger='m')")
    pipe = rt.pipeline(transaction=True)
    pipe.execute_command('RG.TRIGGER', 'm')
    res = pipe.execute(raise_on_error=False)
    assert 'can not run a non-sync execution inside a MULTI/LUA' in str(res[0])


def test_inorder_async_triggers_run_in_arrival_order(rt, server):
    script = """
import time, random
def f(x):
    time.sleep(random.random() / 30)
    execute('RPUSH', 'order', x[1])
    return x[1]
GB('CommandReader').map(f).register(trigger='ord', mode='async_local', inorder=True)
"""
    pyexecute(rt, script)
    import socket

    from conftest import wait_for

    def triggered():
        data = rt.execute_command('RG.DUMPREGISTRATIONS')[0][7]
        return dict(zip(data[0::2], data[1::2]))['numTriggered']

    # Twelve clients, each sending once Redis has taken the previous one's trigger (the
    # arrival order is then known; no sleeps), all waiting for their replies together.
    port = rt.connection_pool.connection_kwargs['port']
    socks = []
    for i in range(12):
        s = socket.create_connection(('127.0.0.1', port), timeout=30)
        s.sendall(b'*3\r\n$10\r\nRG.TRIGGER\r\n$3\r\nord\r\n$%d\r\n%d\r\n' % (len(str(i)), i))
        socks.append(s)
        assert wait_for(lambda: triggered() >= i + 1, timeout=10)
    for s in socks:
        assert s.recv(1024)  # every client got its reply
        s.close()
    assert rt.lrange('order', 0, -1) == [str(i) for i in range(12)]


def test_is_async_allow_in_sync_runs_only_outside_multi(rt):
    """1.2 (REFERENCE §12.5): a sync trigger may await outside MULTI/Lua, not inside."""
    pyexecute(rt, "GB('CommandReader').map(lambda x: str(isAsyncAllow())).register(trigger='s', mode='sync')")
    pyexecute(rt, "GB('CommandReader').map(lambda x: str(isAsyncAllow())).register(trigger='a')")
    assert rt.execute_command('RG.TRIGGER', 's') == ['True']
    assert rt.execute_command('RG.TRIGGER', 'a') == ['True']
    pipe = rt.pipeline(transaction=True)
    pipe.execute_command('RG.TRIGGER', 's')
    assert pipe.execute() == [['False']]
