"""`async def` callbacks run on the gears asyncio loop (REFERENCE §3, §5)."""
import pytest
import redis

from conftest import pyexecute, unregister_all


def test_async_map_results_in_order(r):
    for i in range(20):
        r.set(f'a:{i:02d}', i)
    script = """
import asyncio
async def slow_double(x):
    await asyncio.sleep(0.001)
    return int(x['value']) * 2
GB().map(slow_double).sort().run('a:*')
"""
    res = pyexecute(r, script)
    assert res[1] == []
    assert res[0] == [str(i * 2) for i in range(20)]


def test_async_filter_and_foreach(r):
    r.set('b:1', '1')
    r.set('b:2', '2')
    script = """
async def keep(x):
    return x['value'] == '2'
async def touch(x):
    execute('INCR', 'touched')
GB().filter(keep).foreach(touch).map(lambda x: x['key']).run('b:*')
"""
    assert pyexecute(r, script) == [['b:2'], []]
    assert r.get('touched') == '1'


def test_async_in_registration(r):
    pyexecute(r, "async def f(x):\n    execute('INCR', 'areg')\nGB().foreach(f).register('ar:*', eventTypes=['set'])")
    try:
        r.set('ar:1', 'x')
        import time
        deadline = time.time() + 5
        while time.time() < deadline and r.get('areg') != '1':
            time.sleep(0.02)
        assert r.get('areg') == '1'
    finally:
        unregister_all(r)


def test_coroutine_extractor_is_refused(r):
    r.set('c:1', 'x')
    res = pyexecute(r, "async def e(x):\n    return 'k'\nGB().countby(e).run('c:*')")
    assert res[0] == [] and 'coroutine are not allow on extractor' in res[1][0]


def test_async_callback_in_sync_registration_is_refused_not_deadlocked(r):
    pyexecute(r, "async def f(x):\n    execute('INCR', 'n')\nGB().foreach(f).register('sy:*', mode='sync')")
    try:
        r.set('sy:1', 'x')  # must return: the coroutine is refused, not awaited under the lock
        data = r.execute_command('RG.DUMPREGISTRATIONS')[0][7]
        stats = dict(zip(data[0::2], data[1::2]))
        assert stats['numFailures'] == 1 and 'Creating async record is not allowed' in stats['lastError']
        assert r.ping()
    finally:
        unregister_all(r)


def test_gears_future_continued_from_another_thread(r):
    r.set('f:1', '5')
    script = """
import threading
def later(x):
    f = gearsFuture()
    threading.Timer(0.05, lambda: f.continueRun(int(x['value']) + 1)).start()
    return f
GB().map(later).run('f:*')
"""
    assert pyexecute(r, script) == [['6'], []]


def test_gears_future_failed_and_twice(r):
    r.set('g:1', '1')
    script = """
def failing(x):
    f = gearsFuture()
    f.continueFailed('boom')
    try:
        f.continueRun(1)
    except Exception as e:
        execute('SET', 'twice', str(e))
    return f
GB().map(failing).run('g:*')
"""
    res = pyexecute(r, script)
    assert res[0] == [] and 'boom' in res[1][0]
    assert r.get('twice') == 'Can not continue with the same future twice'


def test_gears_future_outside_an_execution(r):
    with pytest.raises(redis.ResponseError, match='Future object can only be created inside certain execution steps'):
        pyexecute(r, "gearsFuture()")


def test_asyncio_helpers_complete_a_future(r):
    r.set('h:1', '3')
    script = """
import asyncio
async def f(x):
    fut = createFuture()
    async def produce():
        return int(x['value']) * 10
    runCoroutine(produce(), fut, delay=0.01)
    return await fut
GB().map(f).run('h:*')
"""
    assert pyexecute(r, script) == [['30'], []]


def test_set_future_results_from_another_thread(r):
    r.set('h:2', '4')
    script = """
import threading
async def f(x):
    fut = createFuture()
    threading.Timer(0.02, lambda: setFutureResults(fut, x['value'] + '!')).start()
    return await fut
GB().map(f).run('h:2')
"""
    assert pyexecute(r, script) == [['4!'], []]
