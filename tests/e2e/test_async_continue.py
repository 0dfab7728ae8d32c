"""Continuation instead of waiting (REFERENCE §5, §12.3, §12.5; issue 11): an execution
whose step awaits (a `gearsFuture`, a coroutine, a nested `run()`) parks and frees its
worker, and resumes when the awaited value is set. So an `async_local` registration runs
later events while one event's execution awaits, whatever follows the awaiting step
(accumulate, groupby, count...), and each event's result is its own; and an execution
awaiting a nested run does not hold a worker that the nested run's progress needs."""

import pytest
import redis

from conftest import fresh_server, pyexecute, unregister_all, wait_for

HOLD = """
held = []
def hold(value):
    fut = gearsFuture()
    held.append((fut, value))
    execute('INCR', 'held')
    return fut
def release(x):
    fut, value = held.pop(0)
    fut.continueRun(value)
GB('CommandReader').foreach(release).register(trigger='go')
"""

# Flows after an awaiting map step; each event's record is its key name, the slow one's
# is 'slow' once continued. Each pushes what its event produced to the list 'log'.
TAILS = {
    "accumulate": (
        ".accumulate(lambda a, x: (a or []) + [x])"
        ".foreach(lambda a: execute('RPUSH', 'log', ','.join(a)))",
        ["ac:fast", "slow"],
    ),
    "count": (
        ".count().foreach(lambda n: execute('RPUSH', 'log', str(n)))",
        ["1", "1"],
    ),
    "countby": (
        ".countby(lambda x: x)"
        ".foreach(lambda r: execute('RPUSH', 'log', '%s=%s' % (r['key'], r['value'])))",
        ["ac:fast=1", "slow=1"],
    ),
    "aggregateby": (
        ".aggregateby(lambda x: x, 0, lambda k, a, x: a + 1, lambda k, a, x: a + x)"
        ".foreach(lambda r: execute('RPUSH', 'log', '%s=%s' % (r['key'], r['value'])))",
        ["ac:fast=1", "slow=1"],
    ),
    "groupby": (
        ".groupby(lambda x: x, lambda k, a, x: (a or 0) + 1)"
        ".foreach(lambda r: execute('RPUSH', 'log', '%s=%s' % (r['key'], r['value'])))",
        ["ac:fast=1", "slow=1"],
    ),
}


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_async_local_flow_with_accumulating_steps_runs_later_events(r, tail):
    steps, expected = TAILS[tail]
    script = HOLD + """
def f(x):
    if x['key'] == 'ac:slow':
        return hold('slow')
    return x['key']
GB().map(f)%s.register('ac:*', mode='async_local')
""" % steps
    pyexecute(r, script)
    try:
        r.set("ac:slow", "1")
        assert wait_for(lambda: r.get("held") == "1")
        r.set("ac:fast", "1")
        # The later event ran while the first one's execution still awaits.
        assert wait_for(lambda: r.lrange("log", 0, -1) == expected[:1]), r.lrange("log", 0, -1)
        r.execute_command("RG.TRIGGER", "go")
        assert wait_for(lambda: r.lrange("log", 0, -1) == expected), r.lrange("log", 0, -1)
        # Both executions ended well.
        assert wait_for(lambda: sorted(e[3] for e in r.execute_command("RG.DUMPEXECUTIONS") if e[5] == 1) == ["done", "done"])
    finally:
        unregister_all(r)


def test_async_local_reducer_awaiting_a_future_lets_later_events_run(r):
    script = HOLD + """
def acc(a, x):
    if x['key'] == 'ar:slow':
        return hold(41)
    return (a or 0) + 1
GB().accumulate(acc).foreach(lambda a: execute('RPUSH', 'log', str(a))).register('ar:*', mode='async_local')
"""
    pyexecute(r, script)
    try:
        r.set("ar:slow", "1")
        assert wait_for(lambda: r.get("held") == "1")
        r.set("ar:fast", "1")
        assert wait_for(lambda: r.lrange("log", 0, -1) == ["1"]), r.lrange("log", 0, -1)
        r.execute_command("RG.TRIGGER", "go")
        assert wait_for(lambda: r.lrange("log", 0, -1) == ["1", "41"]), r.lrange("log", 0, -1)
    finally:
        unregister_all(r)


def test_awaiting_coroutine_then_accumulate_keeps_each_events_result(r):
    script = """
import asyncio
async def f(x):
    if x['key'] == 'co:slow':
        while execute('GET', 'gate') != '1':
            await asyncio.sleep(0.01)
    return x['key']
GB().map(f).accumulate(lambda a, x: (a or []) + [x]).foreach(lambda a: execute('RPUSH', 'log', ','.join(a))).register('co:*', mode='async_local')
"""
    pyexecute(r, script)
    try:
        r.set("co:slow", "1")
        r.set("co:fast", "1")
        assert wait_for(lambda: r.lrange("log", 0, -1) == ["co:fast"]), r.lrange("log", 0, -1)
        r.set("gate", "1")
        assert wait_for(lambda: r.lrange("log", 0, -1) == ["co:fast", "co:slow"]), r.lrange("log", 0, -1)
    finally:
        unregister_all(r)


def test_run_over_many_records_with_a_parked_reducer_keeps_order(r):
    # A run (not an event): the records behind an awaiting reducer wait, in order.
    script = """
import threading
def acc(a, x):
    a = a or []
    if x == 2:
        fut = gearsFuture()
        threading.Timer(0.05, lambda: fut.continueRun(a + ['two'])).start()
        return fut
    return a + [x]
GB('PythonReader').accumulate(acc).run(lambda: iter(range(5)))
"""
    assert pyexecute(r, script) == [["[0, 1, 'two', 3, 4]"], []]


def test_awaited_nested_run_frees_the_worker_it_waits_on():
    # One execution thread: the top-level run awaits a nested run, which awaits a future
    # that only a later top-level execution (the trigger) continues. Waiting on the worker
    # would leave the trigger's execution queued for ever.
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        script = HOLD + """
def wait_here(x):
    execute('SET', 'nested:waiting', '1')
    return hold('nested done')
async def outer(x):
    res = await GB('ShardsIDReader').map(wait_here).run()
    return res
GB('ShardsIDReader').map(outer).run()
"""
        eid = pyexecute(c, script, "UNBLOCKING")
        assert wait_for(lambda: c.get("nested:waiting") == "1")
        t = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=20)
        try:
            t.execute_command("RG.TRIGGER", "go")
        finally:
            t.close()
        out = c.execute_command("RG.GETRESULTSBLOCKING", eid)
        assert out == [["[['nested done'], []]"], []], out


def test_many_awaiting_nested_runs_on_one_thread_finish():
    # More awaiting executions than threads at every depth: each parks instead of holding
    # its worker, so all of them finish.
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        script = """
async def inner(x):
    res = await GB('ShardsIDReader').count().run()
    return res[0][0]
async def outer(x):
    res = await GB('ShardsIDReader').map(inner).run()
    return res[0][0]
GB('ShardsIDReader').map(outer).run()
"""
        ids = [pyexecute(c, script, "UNBLOCKING") for _ in range(6)]
        for eid in ids:
            assert c.execute_command("RG.GETRESULTSBLOCKING", eid) == [["1"], []]


def test_aborting_a_run_parked_on_a_future_leaves_it_done_with_one_error():
    """1.2's rule for aborting a running execution holds for one parked on a held future:
    `done`, exactly one error, and nothing left waiting."""
    script = (
        "held = []\n"
        "def f(r):\n"
        "    fut = gearsFuture()\n"
        "    held.append(fut)\n"
        "    return fut\n"
        "GB('ShardsIDReader').map(f).run()\n"
    )
    with fresh_server() as srv:
        c = srv.client()
        eid = c.execute_command("RG.PYEXECUTE", script, "UNBLOCKING")

        def status():
            return {e[1]: e[3] for e in c.execute_command("RG.DUMPEXECUTIONS")}.get(eid)

        assert wait_for(lambda: status() == "running")
        assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"
        assert wait_for(lambda: status() == "done")
        results, errors = c.execute_command("RG.GETRESULTS", eid)
        assert results == [] and len(errors) == 1 and "aborted" in errors[0]
