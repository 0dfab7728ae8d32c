"""`run()` anywhere returns an awaitable (REFERENCE §4.1, §12.3): from a step, a coroutine or a
`registerTE` callback it starts an execution at once and returns a `GearsFuture`; awaiting it
gives `[results, errors]`; not awaited, the run still runs and is dropped when done. At top
level the script's run is still the reply, and `run()` returns its `GearsFuture` too."""

import redis

from conftest import fresh_server, pyexecute, wait_for

COUNT_NESTED = """
async def f(x):
    res = await GB('ShardsIDReader').count().run()
    return res
"""


def dumped_ids(c):
    return [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS")]


def test_awaited_nested_run_gives_results_and_errors(r):
    script = COUNT_NESTED + "GB('ShardsIDReader').map(f).run()"
    assert pyexecute(r, script) == [["[['1'], []]"], []]


def test_awaited_nested_run_lists_the_nested_flows_errors(r):
    script = """
async def f(x):
    res = await GB('ShardsIDReader').map(lambda x: 1 / 0).run()
    return [len(res[0]), len(res[1]), 'division by zero' in res[1][0]]
GB('ShardsIDReader').map(f).run()
"""
    assert pyexecute(r, script) == [["[0, 1, True]"], []]


def test_nested_run_without_convert_keeps_native_values(r):
    script = """
async def f(x):
    res = await GB('ShardsIDReader').map(lambda x: 7).run(convertToStr=False)
    return res[0][0] + 1
GB('ShardsIDReader').map(f).run()
"""
    assert pyexecute(r, script) == [["8"], []]


def test_nested_run_without_convert_gives_the_python_objects(r):
    script = """
def gen():
    yield {'a': 1}
    yield None
    yield 'boom'
def check(x):
    if x == 'boom':
        raise Exception('bad record')
    return x
async def f(x):
    res = await GB('PythonReader').map(check).run(gen, convertToStr=False)
    return [res[0], [('bad record' in e) for e in res[1]]]
GB('ShardsIDReader').map(f).run()
"""
    assert pyexecute(r, script) == [["[[{'a': 1}, None], [True]]"], []]


def test_nested_run_not_awaited_still_runs_and_is_dropped():
    with fresh_server() as srv:
        c = srv.client()
        script = """
def f(x):
    GB('ShardsIDReader').foreach(lambda x: execute('SET', 'side', 'effect')).run()
    return 'started'
GB('ShardsIDReader').map(f).run()
"""
        assert pyexecute(c, script) == [["started"], []]
        assert wait_for(lambda: c.get("side") == "effect")
        # The blocking run was dropped after its reply; the nested one once done.
        assert wait_for(lambda: dumped_ids(c) == []), dumped_ids(c)


def test_nested_run_returns_an_awaitable(r):
    script = """
def f(x):
    fut = GB('ShardsIDReader').run()
    return [type(fut).__name__, hasattr(fut, '__await__')]
GB('ShardsIDReader').map(f).run()
"""
    assert pyexecute(r, script) == [["['GearsFuture', True]"], []]


def test_nested_runs_nest_and_await_each_other(r):
    script = """
async def inner(x):
    res = await GB('ShardsIDReader').count().run()
    return res[0][0]
async def outer(x):
    res = await GB('ShardsIDReader').map(inner).run()
    return res
GB('ShardsIDReader').map(outer).run()
"""
    assert pyexecute(r, script) == [["[['1'], []]"], []]


def test_nested_run_from_a_time_event_callback():
    with fresh_server() as srv:
        c = srv.client()
        script = """
async def report():
    res = await GB('ShardsIDReader').count().run()
    execute('SET', 'te:awaited', str(res))
def tick():
    GB('ShardsIDReader').foreach(lambda x: execute('INCR', 'te:plain')).run()
    runCoroutine(report())
registerTE(1, tick, 'te:key')
"""
        assert pyexecute(c, script) == "OK"
        assert wait_for(lambda: c.get("te:awaited") == "[['1'], []]", timeout=10)
        assert wait_for(lambda: int(c.get("te:plain") or 0) >= 1)
        c.delete("te:key")


def test_many_concurrent_nested_runs_do_not_deadlock():
    with fresh_server(ExecutionThreads=2) as srv:
        c = srv.client()
        script = COUNT_NESTED + """
def gen():
    yield from range(20)
GB('PythonReader').map(f).map(lambda r: r[0][0]).run(gen)
"""
        assert pyexecute(c, script) == [["1"] * 20, []]


def test_more_waiting_executions_than_threads_do_not_deadlock():
    with fresh_server(ExecutionThreads=2) as srv:
        c = srv.client()
        script = COUNT_NESTED + "GB('ShardsIDReader').map(f).run()"
        ids = [pyexecute(c, script, "UNBLOCKING") for _ in range(8)]
        for eid in ids:
            out = c.execute_command("RG.GETRESULTSBLOCKING", eid)
            assert out == [["[['1'], []]"], []], (eid, out)


def test_recursive_nesting_fails_with_an_error_not_a_hang(r):
    script = """
async def f(x):
    return await GB('ShardsIDReader').map(f).run()
GB('ShardsIDReader').map(f).run()
"""
    res = pyexecute(r, script)
    assert "run() nested too deep" in str(res), res
    assert wait_for(lambda: dumped_ids(r) == []), dumped_ids(r)


def test_nested_run_runs_as_the_parents_acl_user():
    with fresh_server() as srv:
        admin = srv.client()
        admin.execute_command("ACL", "SETUSER", "u", "reset", "on", ">pw", "~allowed:*", "+@all")
        admin.set("secret:1", "s")
        admin.set("allowed:1", "a")
        u = redis.Redis(host="127.0.0.1", port=srv.port, username="u", password="pw",
                        decode_responses=True, socket_timeout=30)
        script = """
async def f(x):
    res = await GB().map(lambda r: r['key']).run()
    return sorted(res[0])
GB('ShardsIDReader').map(f).run()
"""
        assert pyexecute(u, script) == [["['allowed:1']"], []]
        assert pyexecute(admin, script) == [["['allowed:1', 'secret:1']"], []]


def test_top_level_run_returns_its_future_and_still_replies(r):
    script = """
fut = GB('ShardsIDReader').run()
execute('SET', 'top:type', type(fut).__name__)
async def report():
    execute('SET', 'top:awaited', str(await fut))
runCoroutine(report())
"""
    assert pyexecute(r, script) == [["1"], []]
    assert r.get("top:type") == "GearsFuture"
    assert wait_for(lambda: r.get("top:awaited") == "[['1'], []]")


def test_top_level_run_is_still_one_per_script(r):
    try:
        pyexecute(r, "GB().run()\nGB().run()")
        raise AssertionError("second run() accepted")
    except redis.ResponseError as e:
        assert "Can not run more then 1 executions in a single script" in str(e)


def test_run_in_a_sync_registration_fired_by_the_script_is_nested():
    with fresh_server() as srv:
        c = srv.client()
        reg = ("GB().foreach(lambda x: GB('ShardsIDReader')"
               ".foreach(lambda y: execute('INCR', 'from_sync')).run())"
               ".register('trig:*', mode='sync')")
        assert pyexecute(c, reg) == "OK"
        c.set("trig:0", "x")  # fired on the main thread
        assert wait_for(lambda: c.get("from_sync") == "1")
        script = "execute('SET', 'trig:1', 'x')\nGB('ShardsIDReader').run()"
        assert pyexecute(c, script) == [["1"], []]
        assert wait_for(lambda: c.get("from_sync") == "2")


def test_a_running_nested_run_is_listed_and_can_be_aborted():
    with fresh_server() as srv:
        c = srv.client()
        script = """
def spin(x):
    execute('SET', 'spinning', '1')
    while True:
        pass
async def report():
    res = await GB('ShardsIDReader').map(spin).run()
    execute('SET', 'nested:out', str(len(res[0])))
def start(x):
    runCoroutine(report())
    return 'started'
GB('ShardsIDReader').map(start).run()
"""
        assert pyexecute(c, script) == [["started"], []]
        assert wait_for(lambda: c.get("spinning") == "1")
        running = wait_for(lambda: [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS")
                                    if e[3] == "running"])
        assert len(running) == 1, running
        assert c.execute_command("RG.ABORTEXECUTION", running[0]) == "OK"
        # The loop never ends by itself: its awaiter waking at all is the abort; no results.
        assert wait_for(lambda: c.get("nested:out") == "0", timeout=10)
        assert wait_for(lambda: dumped_ids(c) == []), dumped_ids(c)
