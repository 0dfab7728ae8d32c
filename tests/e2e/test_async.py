"""`async def` callbacks run on the gears asyncio loop (REFERENCE §3, §5)."""
import pytest
import redis

from conftest import parse, pyexecute, unregister_all, wait_for


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
        assert wait_for(lambda: r.get('areg') == '1'), r.get('areg')
        # The event's execution ends after its coroutine (one still running when the
        # registration goes stays listed).
        assert wait_for(lambda: reg_stats(r)['numSuccess'] == 1)
    finally:
        unregister_all(r)


def test_coroutine_extractor_is_refused(r):
    r.set('c:1', 'x')
    res = pyexecute(r, "async def e(x):\n    return 'k'\nGB().countby(e).run('c:*')")
    assert res[0] == [] and 'coroutine are not allow on extractor' in res[1][0]


def reg_stats(r):
    data = r.execute_command('RG.DUMPREGISTRATIONS')[0][7]
    return dict(zip(data[0::2], data[1::2]))


def test_sync_registration_that_awaits_continues_in_background(r):
    # 1.2: the sync run goes on as async_local; steps before the await ran inline.
    script = """
import asyncio
async def slow(x):
    await asyncio.sleep(0.3)
    execute('INCR', 'n')
GB().foreach(lambda x: execute('INCR', 'before')).foreach(slow).register('sy:*', mode='sync')
"""
    pyexecute(r, script)
    try:
        r.set('sy:1', 'x')  # returns at once: nothing is awaited under the Redis lock
        assert r.get('before') == '1' and r.get('n') is None
        running = [e for e in r.execute_command('RG.DUMPEXECUTIONS') if e[5] == 1]
        assert [e[3] for e in running] == ['running']
        assert wait_for(lambda: r.get('n') == '1')
        assert wait_for(lambda: reg_stats(r)['numSuccess'] == 1)
        stats = reg_stats(r)
        assert (stats['numTriggered'], stats['numFailures'], stats['lastError']) == (1, 0, None)
        results, errors = r.execute_command('RG.GETRESULTS', running[0][1])
        assert errors == []
        assert parse(results) == [{'key': 'sy:1', 'value': 'x', 'type': 'string', 'event': 'set'}]
    finally:
        unregister_all(r)


def test_sync_await_keeps_the_rest_of_the_event_in_order(r):
    script = """
import asyncio
async def double(x):
    await asyncio.sleep(0.01)
    return x * 2
GB().flatmap(lambda x: [1, 2, 3]).map(double).register('fl:*', mode='sync')
"""
    pyexecute(r, script)
    try:
        r.set('fl:1', 'x')
        done = wait_for(lambda: [e for e in r.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'done'])
        # flatmap emits a list last-first (1.2); the deferred rest keeps that order.
        assert r.execute_command('RG.GETRESULTS', done[0][1]) == [['6', '4', '2'], []]
    finally:
        unregister_all(r)


def test_sync_gears_future_continues_in_background(r):
    script = """
import threading
def later(x):
    f = gearsFuture()
    allowed = isAsyncAllow()
    threading.Timer(0.05, lambda: f.continueRun(str(allowed))).start()
    return f
GB().map(later).foreach(lambda x: execute('SET', 'fut', x)).register('gf:*', mode='sync')
"""
    pyexecute(r, script)
    try:
        r.set('gf:1', 'x')
        assert wait_for(lambda: r.get('fut') == 'True')
        assert wait_for(lambda: reg_stats(r)['numSuccess'] == 1)
    finally:
        unregister_all(r)


def test_sync_await_inside_multi_is_refused_not_deadlocked(r):
    pyexecute(r, "async def f(x):\n    execute('INCR', 'n')\nGB().foreach(f).register('sy:*', mode='sync')")
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set('sy:1', 'x')
        pipe.execute()  # must return: the coroutine is refused, not awaited under the lock
        stats = reg_stats(r)
        assert stats['numFailures'] == 1 and 'Creating async record is not allowed' in stats['lastError']
        assert r.get('n') is None
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
import threading
def failing(x):
    f = gearsFuture()
    threading.Timer(0.01, lambda: f.continueFailed('boom')).start()
    return f
GB().map(failing).run('g:*')
"""
    assert pyexecute(r, script) == [[], ['boom']]


def test_gears_future_continued_twice(r):
    script = """
import threading
seen = []
done = threading.Event()
def f(x):
    if x == 1:
        done.wait(10)  # the continuing thread may still be between its two calls
        return seen[0]
    fut = gearsFuture()
    def later():
        fut.continueRun('first')
        try:
            fut.continueFailed('second')
        except Exception as e:
            seen.append(str(e))
        done.set()
    threading.Timer(0.01, later).start()
    return fut
GB('PythonReader').map(f).run(lambda: iter([0, 1]))
"""
    assert pyexecute(r, script) == [['first', 'Can not continue with the same future twice'], []]


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


IN_FLIGHT = """
import asyncio
state = {'now': 0, 'max': 0}

async def f(x):
    state['now'] += 1
    state['max'] = max(state['max'], state['now'])
    for _ in range(50):  # yield to the loop: every coroutine of the chunk starts meanwhile
        await asyncio.sleep(0)
    state['now'] -= 1
    return x

GB('PythonReader').map(f).map(lambda x: state['max']).run(lambda: iter(range(N)))
"""


def test_coroutines_of_a_step_are_in_flight_together(r):
    """1.2 keeps up to 1000 coroutines in flight per map/filter/foreach step."""
    res, errs = pyexecute(r, IN_FLIGHT.replace("N", "50"))
    assert errs == [] and set(res) == {"50"}


def test_no_more_than_1000_in_flight(r):
    res, errs = pyexecute(r, IN_FLIGHT.replace("N", "1500"))
    assert errs == [] and max(int(x) for x in res) == 1000


def test_records_before_a_failing_coroutine_are_kept_in_order(r):
    script = """
import asyncio
async def f(x):
    await asyncio.sleep(0.001 * (5 - x % 5))
    if x == 7:
        raise Exception('seven')
    return x
GB('PythonReader').map(f).map(lambda x: x + 1).run(lambda: iter(range(10)))
"""
    res, errs = pyexecute(r, script)
    assert res == [str(i) for i in range(1, 8)]
    assert errs == ["seven"]  # 1.2: str(e) of a coroutine's exception


def test_plain_steps_keep_record_order_of_side_effects(r):
    """Without an async step, each record goes through every step before the next."""
    script = """
seen = []
GB('PythonReader').map(lambda x: seen.append(('m', x)) or x).foreach(lambda x: seen.append(('f', x))).collect().accumulate(lambda a, x: seen).flatmap(lambda s: [str(s)]).run(lambda: iter(range(3)))
"""
    res, errs = pyexecute(r, script)
    assert errs == []
    assert res == ["[('m', 0), ('f', 0), ('m', 1), ('f', 1), ('m', 2), ('f', 2)]"]
