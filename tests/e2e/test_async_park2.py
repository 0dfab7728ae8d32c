"""No await holds a worker (REFERENCE §5, §12.5; issue 11 §3/§5), second part: the awaits
that still waited on their worker now park their stage too — a wave of several records
through leading `async def` steps, a step run at the end of input (after an accumulation),
a stage holding batch steps — and a `sync` registration of any shape that awaits goes on
in the background as 1.2's async_local does (not inside MULTI/Lua).

With `ExecutionThreads 1`, an await that held the only worker would leave the execution
that opens its gate (an `async` trigger, which needs a worker) queued for ever: every such
test bounds its waits, so a held worker fails it instead of hanging it."""

import threading

import pytest
import redis

from conftest import fresh_server, parse, pyexecute, unregister_all, wait_for

# The gate: an async trigger (it runs on a worker) sets 'gate'; awaiting callbacks poll it
# on the gears loop, which needs no worker.
GATE = """
import asyncio
GB('CommandReader').foreach(lambda x: execute('SET', 'gate', '1')).register(trigger='open', mode='async')
async def gated(x):
    execute('INCR', 'waiting')
    while execute('GET', 'gate') != '1':
        await asyncio.sleep(0.01)
    return x
"""


def open_gate(srv, trigger="open"):
    """Triggers `trigger` (an async run: it needs a free worker) with a bounded wait."""
    t = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=10)
    try:
        return t.execute_command("RG.TRIGGER", trigger)
    except redis.TimeoutError:
        pytest.fail(f"the {trigger!r} gate's execution never got a worker (an await held it)",
                    pytrace=False)
    finally:
        t.close()


def run_gated(flow, waiting=1):
    """Runs `flow` (UNBLOCKING) on one execution thread; once it awaits, opens the gate
    from another execution; returns the run's [results, errors]."""
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        eid = pyexecute(c, GATE + flow, "UNBLOCKING")
        assert wait_for(lambda: int(c.get("waiting") or 0) >= waiting), c.get("waiting")
        open_gate(srv)
        res = c.execute_command("RG.GETRESULTSBLOCKING", eid)
        return res


def test_a_wave_of_records_through_an_async_step_parks():
    out = run_gated("GB('PythonReader').map(gated).map(lambda x: x * 10).run(lambda: iter(range(3)))\n", 3)
    assert out == [["0", "10", "20"], []]


def test_a_wave_through_async_filter_and_flatmap_keeps_order():
    flow = """
async def keep(x):
    await gated(x)
    return x % 2 == 0
async def spread(x):
    await gated(x)
    return [x, x + 100]
GB('PythonReader').filter(keep).flatmap(spread).run(lambda: iter(range(5)))
"""
    out = run_gated(flow, 3)
    # flatmap emits a list last-first (1.2).
    assert out == [["100", "0", "102", "2", "104", "4"], []]


def test_an_error_in_a_parked_wave_stops_the_run_there():
    flow = """
async def boom(x):
    await gated(x)
    if x == 1:
        raise Exception('bad one')
    return x
GB('PythonReader').map(boom).run(lambda: iter(range(3)))
"""
    results, errors = run_gated(flow, 3)
    assert results == ["0"] and errors == ["bad one"]


def test_an_await_after_accumulate_parks_at_the_end_of_input():
    flow = "GB('PythonReader').accumulate(lambda a, x: (a or 0) + x).map(gated).run(lambda: iter(range(4)))\n"
    assert run_gated(flow) == [["6"], []]


def test_an_await_after_groupby_parks_for_each_group():
    flow = """
GB('PythonReader').groupby(lambda x: x % 2, lambda k, a, x: (a or 0) + x).map(gated).map(lambda r: '%s=%s' % (r['key'], r['value'])).run(lambda: iter(range(5)))
"""
    results, errors = run_gated(flow)
    assert errors == [] and sorted(results) == ["0=6", "1=4"]


def test_an_await_after_aggregate_then_more_accumulation():
    # The end of input reaches an awaiting step, then another accumulation after it.
    flow = """
GB('PythonReader').aggregate(0, lambda a, x: a + x, lambda a, x: a + x).map(gated).accumulate(lambda a, x: (a or 0) + x + 1).run(lambda: iter(range(4)))
"""
    assert run_gated(flow) == [["7"], []]


def test_a_stage_with_a_batch_step_parks_on_a_single_record():
    flow = "GB('PythonReader').map(gated).mapBatch(lambda rs: [r + 1 for r in rs]).run(lambda: iter([41]))\n"
    assert run_gated(flow) == [["42"], []]


def test_a_stage_with_a_batch_step_parks_on_a_wave():
    flow = "GB('PythonReader').map(gated).filterBatch(lambda rs: [r != 1 for r in rs]).map(lambda x: x * 2).run(lambda: iter(range(3)))\n"
    assert run_gated(flow, 3) == [["0", "4"], []]


@pytest.mark.parametrize("step", ["mapBatch", "filterBatch"])
def test_a_batch_step_returning_a_coroutine_gets_an_error(r, step):
    script = """
async def f(rs):
    return rs
GB('PythonReader').%s(f).run(lambda: iter(range(2)))
""" % step
    results, errors = pyexecute(r, script)
    assert results == [] and len(errors) == 1
    assert "coroutine are not allow on %s" % step in errors[0], errors


@pytest.mark.parametrize("step", ["mapBatch", "filterBatch"])
def test_a_batch_step_returning_a_gears_future_gets_an_error(r, step):
    script = """
def f(rs):
    return gearsFuture()
GB('PythonReader').%s(f).run(lambda: iter(range(2)))
""" % step
    results, errors = pyexecute(r, script)
    assert results == [] and errors == ["Step does not support async"], errors


# -- sync registrations that are not record-local ----------------------------------------

def reg_stats(c, prefix):
    for reg in c.execute_command("RG.DUMPREGISTRATIONS"):
        data = dict(zip(reg[7][0::2], reg[7][1::2]))
        if data["args"][1] == prefix:
            return data
    return None


SYNC_TAILS = {
    "accumulate": (".accumulate(lambda a, x: (a or 0) + 1)", ["1"]),
    "count": (".count()", ["1"]),
    "groupby": (".groupby(lambda x: 'k', lambda k, a, x: (a or 0) + 1).map(lambda r: r['value'])", ["1"]),
    "aggregate": (".aggregate(0, lambda a, x: a + 1, lambda a, x: a + x)", ["1"]),
}


@pytest.mark.parametrize("tail", sorted(SYNC_TAILS))
def test_a_sync_registration_of_any_shape_that_awaits_continues_in_background(tail):
    steps, expected = SYNC_TAILS[tail]
    flow = """
GB().foreach(lambda x: execute('INCR', 'before')).map(gated)%s.foreach(lambda x: execute('RPUSH', 'log', str(x))).register('sr:*', mode='sync')
""" % steps
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, GATE + flow)
        assert c.set("sr:1", "x") is True  # returns: the await goes on in the background
        assert c.get("before") == "1"
        assert wait_for(lambda: c.get("waiting") == "1")
        running = [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[5] == 1]
        assert [e[3] for e in running] == ["running"]
        open_gate(srv)
        assert wait_for(lambda: c.lrange("log", 0, -1) == expected), c.lrange("log", 0, -1)
        assert wait_for(lambda: reg_stats(c, "sr:*")["numSuccess"] == 1)
        stats = reg_stats(c, "sr:*")
        assert (stats["numTriggered"], stats["numFailures"], stats["lastError"]) == (1, 0, None)
        results, errors = c.execute_command("RG.GETRESULTS", running[0][1])
        assert errors == [] and results == expected


def test_a_sync_accumulating_registration_awaiting_a_gears_future():
    script = """
held = []
def hold(x):
    f = gearsFuture()
    held.append(f)
    return f
GB('CommandReader').foreach(lambda x: held.pop(0).continueRun(7)).register(trigger='go')
GB().map(hold).accumulate(lambda a, x: (a or 0) + x).foreach(lambda x: execute('SET', 'total', str(x))).register('sf:*', mode='sync')
"""
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, script)
        assert c.set("sf:1", "x") is True
        t = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=10)
        try:
            t.execute_command("RG.TRIGGER", "go")
        finally:
            t.close()
        assert wait_for(lambda: c.get("total") == "7")
        assert wait_for(lambda: reg_stats(c, "sf:*")["numSuccess"] == 1)


def test_a_sync_accumulating_registration_awaiting_inside_multi_is_refused(r):
    script = """
async def f(x):
    execute('INCR', 'n')
    return x
GB().map(f).count().register('sm:*', mode='sync')
"""
    pyexecute(r, script)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set("sm:1", "x")
        pipe.execute()  # returns: the coroutine is refused, never awaited under the lock
        stats = reg_stats(r, "sm:*")
        assert stats["numFailures"] == 1 and "Creating async record is not allow" in stats["lastError"]
        assert r.get("n") is None and r.ping()
    finally:
        unregister_all(r)


def test_a_sync_trigger_of_any_shape_that_awaits_replies_later():
    flow = """
GB('CommandReader').map(lambda x: execute('INCR', 'before') and x).map(gated).count().register(trigger='cnt', mode='sync')
"""
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, GATE + flow)
        t = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=20)
        try:
            pending = t.connection_pool.get_connection("RG.TRIGGER")
            pending.send_command("RG.TRIGGER", "cnt", "a")
            assert wait_for(lambda: c.get("waiting") == "1")
            assert c.get("before") == "1"
            open_gate(srv)
            assert pending.read_response() == ["1"]
            t.connection_pool.release(pending)
        finally:
            t.close()
        stats = reg_stats(c, "cnt")
        assert (stats["numTriggered"], stats["numSuccess"], stats["numFailures"]) == (1, 1, 0)


def test_a_sync_trigger_of_any_shape_inside_multi_is_refused(r):
    script = """
async def f(x):
    return x
GB('CommandReader').map(f).count().register(trigger='cm', mode='sync')
"""
    pyexecute(r, script)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.execute_command("RG.TRIGGER", "cm")
        (out,) = pipe.execute(raise_on_error=False)
        assert isinstance(out, redis.ResponseError) and "Creating async record is not allow" in str(out)
    finally:
        unregister_all(r)


# -- record-local event flows with a second await ---------------------------------------

SECOND_GATE = """
GB('CommandReader').foreach(lambda x: execute('SET', 'gate2', '1')).register(trigger='open2', mode='async')
async def gated2(x):
    execute('INCR', 'waiting2')
    while execute('GET', 'gate2') != '1':
        await asyncio.sleep(0.01)
    return x
"""


@pytest.mark.parametrize("mode", ["sync", "async_local"])
def test_a_second_await_in_an_event_flow_does_not_hold_a_worker(mode):
    flow = """
GB().map(gated).map(gated2).foreach(lambda x: execute('RPUSH', 'log', x['key'])).register('tw:*', mode='%s')
""" % mode
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, GATE + SECOND_GATE + flow)
        c.set("tw:1", "x")
        assert wait_for(lambda: c.get("waiting") == "1")
        open_gate(srv)
        assert wait_for(lambda: c.get("waiting2") == "1")
        open_gate(srv, "open2")
        assert wait_for(lambda: c.lrange("log", 0, -1) == ["tw:1"]), c.lrange("log", 0, -1)
        assert wait_for(lambda: reg_stats(c, "tw:*")["numSuccess"] == 1)


def test_a_second_await_in_a_sync_hook_does_not_hold_a_worker():
    # The hook's rest goes on in the background after its first await; at its second, the
    # one execution thread must be free again for the run that opens the second gate.
    flow = """
GB('CommandReader').map(gated).map(gated2).map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')
"""
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, GATE + SECOND_GATE + flow)
        replies = []
        writer = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=30)
        th = threading.Thread(target=lambda: replies.append(writer.hset("hk", "f", "v")), daemon=True)
        th.start()
        assert wait_for(lambda: c.get("waiting") == "1")
        open_gate(srv)
        assert wait_for(lambda: c.get("waiting2") == "1")
        open_gate(srv, "open2")
        th.join(20)
        assert replies == ["1"]  # a hook replies call_next's integer as 1.2 does here (test_hooks)
        assert c.hget("hk", "f") == "v"


# -- aborting a parked registration event ------------------------------------------------

def test_aborting_a_parked_async_local_event_ends_done_with_one_error():
    script = """
held = []
def hold(x):
    f = gearsFuture()
    held.append(f)
    execute('INCR', 'held')
    return f
GB().map(hold).register('ab:*', mode='async_local')
"""
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, script)
        c.set("ab:1", "x")
        assert wait_for(lambda: c.get("held") == "1")
        mine = [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[5] == 1]
        assert [e[3] for e in mine] == ["running"]
        eid = mine[0][1]
        assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"

        def status():
            return {e[1]: e[3] for e in c.execute_command("RG.DUMPEXECUTIONS")}.get(eid)

        assert wait_for(lambda: status() == "done"), status()
        results, errors = c.execute_command("RG.GETRESULTS", eid)
        assert results == [] and len(errors) == 1 and "aborted" in errors[0], errors
        stats = reg_stats(c, "ab:*")
        assert wait_for(lambda: reg_stats(c, "ab:*")["numFailures"] == 1), stats
        stats = reg_stats(c, "ab:*")
        assert (stats["numTriggered"], stats["numSuccess"], stats["numAborted"]) == (1, 0, 0)
        assert "aborted" in stats["lastError"]
        # The registration goes on: a later event runs.
        c.set("ab:2", "y")
        assert wait_for(lambda: c.get("held") == "2")
