"""`gearsFuture()` and async rules (REFERENCE §5, §12.5): 1.2's texts and outcomes."""
import redis

from conftest import parse, pyexecute, unregister_all, wait_for

THREE = "run(lambda: iter(range(3)))"


def run_one(r, steps, setup=""):
    """Runs `GB('PythonReader')<steps>` over one record (0); returns [results, errors]."""
    return pyexecute(r, setup + "\nGB('PythonReader')" + steps + ".run(lambda: iter([0]))")


def test_second_future_in_one_call_fails(r):
    script = """
def f(x):
    first = gearsFuture()
    try:
        gearsFuture()
    except Exception as e:
        return str(e)
    return 'created twice'
"""
    assert run_one(r, ".map(f)", script) == [['Can not create async record twice on the same step'], []]


def test_each_call_may_create_its_own_future(r):
    script = """
import threading
def f(x):
    fut = gearsFuture()
    threading.Timer(0.01, lambda: fut.continueRun(x * 10)).start()
    return fut
"""
    res = pyexecute(r, script + "GB('PythonReader').map(f)." + THREE)
    assert sorted(res[0]) == ['0', '10', '20'] and res[1] == []


def test_continue_before_the_callback_returned_fails(r):
    script = """
def f(x):
    fut = gearsFuture()
    out = []
    for go in (lambda: fut.continueRun(1), lambda: fut.continueFailed('x')):
        try:
            go()
        except Exception as e:
            out.append(str(e))
    return out
"""
    res = run_one(r, ".flatmap(f)", script)
    assert res == [['Can not handle future untill it returned from the callback'] * 2, []]


def test_future_from_a_repartition_extractor_is_refused(r):
    res = run_one(r, ".repartition(lambda x: gearsFuture())")
    assert res == [[], ['Step does not support async']]


def test_future_from_a_batchgroupby_reducer_is_refused(r):
    res = run_one(r, ".batchgroupby(lambda x: 'k', lambda k, l: gearsFuture())")
    assert res == [[], ['Step does not support async']]


def test_dropped_future_fails_at_once(r):
    res = run_one(r, ".map(lambda x: gearsFuture())")
    assert res == [[], ['Async record did not called continue']]


def test_future_dropped_later_fails_then(r):
    script = """
import threading
held = []
def f(x):
    fut = gearsFuture()
    held.append(fut)
    threading.Timer(0.05, held.clear).start()
    return fut
"""
    assert run_one(r, ".map(f)", script) == [[], ['Async record did not called continue']]


def test_future_not_returned_map_filter_flatmap_use_the_value(r):
    script = """
def make(v):
    def f(x):
        fut = gearsFuture()
        return v
    return f
"""
    steps = ".map(make('m')).filter(make(True)).flatmap(make(['a', 'b'])).foreach(make(None))"
    assert run_one(r, steps, script) == [['b', 'a'], []]


def test_future_not_returned_gives_accumulators_none(r):
    script = """
def acc(a, x):
    fut = gearsFuture()
    return (a or 0) + 1
def by_key(k, a, x):
    fut = gearsFuture()
    return (a or 0) + 1
"""
    res = pyexecute(r, script + "GB('PythonReader').accumulate(acc)." + THREE)
    assert res == [['None'], []]
    res = pyexecute(r, script + "GB('PythonReader').localgroupby(lambda x: 'k', by_key)." + THREE)
    assert parse(res[0]) == [{'key': 'k', 'value': None}] and res[1] == []


def test_future_not_returned_cannot_be_continued_later(r):
    script = """
kept = []
def f(x):
    kept.append(gearsFuture())
    return 'v'
def later(x):
    try:
        kept[0].continueRun(1)
    except Exception as e:
        return str(e)
"""
    res = run_one(r, ".map(f).map(later)", script)
    assert res == [['Can not continue with the same future twice'], []]


def test_exception_after_creating_a_future_is_ignored(r):
    script = """
import threading
def f(x):
    fut = gearsFuture()
    threading.Timer(0.05, lambda: fut.continueRun('late')).start()
    raise Exception('ignored')
"""
    assert run_one(r, ".map(f)", script) == [['late'], []]


def test_continue_failed_gives_str_of_its_argument(r):
    script = """
import threading
def fail_with(v):
    def f(x):
        fut = gearsFuture()
        threading.Timer(0.01, lambda: fut.continueFailed(v)).start()
        return fut
    return f
"""
    assert run_one(r, ".map(fail_with('boom'))", script) == [[], ['boom']]
    assert run_one(r, ".map(fail_with(ValueError('bad value')))", script) == [[], ['bad value']]
    assert run_one(r, ".map(fail_with(42))", script) == [[], ['42']]


def test_coroutine_exception_gives_str_of_it(r):
    script = """
import asyncio
async def boom(x):
    await asyncio.sleep(0.01)
    raise ValueError('coro boom')
def returns_coroutine(x):
    return boom(x)
"""
    assert run_one(r, ".map(boom)", script) == [[], ['coro boom']]
    assert run_one(r, ".map(returns_coroutine)", script) == [[], ['coro boom']]


def test_await_inside_atomic_fails(r):
    script = """
import asyncio
async def f(x):
    with atomic():
        execute('SET', 'in_atomic', '1')
        await asyncio.sleep(0.01)
    return 'awaited'
"""
    assert run_one(r, ".map(f)", script) == [[], ['await is not allow inside atomic block']]
    assert r.get('in_atomic') == '1' and r.ping()  # the block ended: the lock is free


def test_atomic_block_without_await_in_a_coroutine_works(r):
    script = """
import asyncio
async def f(x):
    await asyncio.sleep(0.01)
    with atomic():
        execute('INCR', 'n')
    return execute('GET', 'n')
"""
    assert run_one(r, ".map(f)", script) == [['1'], []]


# -- where a run may wait ------------------------------------------------------------------

SYNC_TRIGGER = """
import asyncio
import threading
def later(x):
    fut = gearsFuture()
    threading.Timer(0.05, lambda: fut.continueRun('future:' + x[1])).start()
    return fut
async def coro(x):
    await asyncio.sleep(0.05)
    return 'coro:' + x[1]
GB('CommandReader').map(lambda x: execute('INCR', 'before') and x).map(later).register(trigger='fut', mode='sync')
GB('CommandReader').map(coro).register(trigger='coro', mode='sync')
"""


def test_sync_trigger_that_awaits_replies_later(r):
    pyexecute(r, SYNC_TRIGGER)
    try:
        assert r.execute_command('RG.TRIGGER', 'fut', 'a') == ['future:a']
        assert r.execute_command('RG.TRIGGER', 'coro', 'b') == ['coro:b']
        assert r.get('before') == '1'  # the steps before the await ran once
        stats = {}
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            data = dict(zip(reg[7][0::2], reg[7][1::2]))
            stats[data['args'][1]] = (data['numTriggered'], data['numSuccess'], data['numFailures'])
        assert stats == {'fut': (1, 1, 0), 'coro': (1, 1, 0)}
    finally:
        unregister_all(r)


def test_sync_trigger_that_awaits_inside_multi_is_refused(r):
    pyexecute(r, SYNC_TRIGGER)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.execute_command('RG.TRIGGER', 'coro', 'b')
        pipe.execute_command('RG.TRIGGER', 'fut', 'a')
        coro, fut = pipe.execute(raise_on_error=False)
        assert isinstance(coro, redis.ResponseError) and 'Creating async record is not allow' in str(coro)
        assert isinstance(fut, redis.ResponseError)
        assert 'Future object can only be created inside certain execution steps' in str(fut)
    finally:
        unregister_all(r)


def test_async_local_registration_runs_later_events_while_one_awaits(r):
    script = """
held = []
def f(x):
    if x['key'] == 'al:slow':
        fut = gearsFuture()
        held.append(fut)
        return fut
    return x['key']
GB().map(f).foreach(lambda x: execute('RPUSH', 'log', x)).register('al:*', mode='async_local')
GB('CommandReader').foreach(lambda x: held.pop().continueRun('al:slow done')).register(trigger='go')
"""
    pyexecute(r, script)
    try:
        r.set('al:slow', '1')
        r.set('al:fast', '1')
        # The later event ran while the first one's execution still waits.
        assert wait_for(lambda: r.lrange('log', 0, -1)) == ['al:fast']
        listed = {e[1]: e[3] for e in r.execute_command('RG.DUMPEXECUTIONS') if e[5] == 1}
        assert sorted(listed.values()) == ['done', 'running']
        r.execute_command('RG.TRIGGER', 'go')
        assert wait_for(lambda: len(r.lrange('log', 0, -1)) == 2)
        assert r.lrange('log', 0, -1) == ['al:fast', 'al:slow done']
        slow = [eid for eid, status in listed.items() if status == 'running'][0]
        assert wait_for(lambda: r.execute_command('RG.GETRESULTS', slow) == [['al:slow done'], []])
    finally:
        unregister_all(r)


def test_sync_hook_that_awaits_replies_later(r):
    script = """
import threading
def later(x):
    fut = gearsFuture()
    threading.Timer(0.05, lambda: fut.continueRun('hooked:' + x[1])).start()
    return fut
GB('CommandReader').map(later).map(lambda x: x + ':' + get_command()[1]).register(hook='echo', mode='sync')
GB('CommandReader').map(lambda x: str(isAsyncAllow())).register(hook='get', mode='sync')
"""
    pyexecute(r, script)
    try:
        assert r.execute_command('ECHO', 'hi') == 'hooked:hi:hi'
        assert r.execute_command('GET', 'x') == 'True'
        pipe = r.pipeline(transaction=True)
        pipe.execute_command('GET', 'x')
        assert pipe.execute() == ['False']
    finally:
        unregister_all(r)
