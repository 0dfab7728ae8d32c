"""The Python runtime API every session sees (REFERENCE §5, §10, §11.45): execute, log,
configGet/gearsConfigGet, hashtag, flat_error, isAsyncAllow, GearsBuilder(desc=...), sessions'
globals, and the error texts of a failing script or step."""

import ast
import threading

import pytest
import redis
from conftest import assert_alive, fresh_server, holds_for, parse, pyexecute, unregister_all, wait_for


def one(client, expr, setup=""):
    """Evaluates `expr` inside a step of a one-record run and returns its str()."""
    script = f"{setup}\nGB('ShardsIDReader').map(lambda _: {expr}).run()"
    results, errors = pyexecute(client, script)
    assert errors == [], errors
    (value,) = results
    return value


def run_error(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


def wait_for_log(srv, text, timeout=5):
    def log():
        text_now = srv.logfile.read_text(errors="replace")
        return text_now if text in text_now else None

    found = wait_for(log, timeout, interval=0.05)
    if not found:
        pytest.fail(f"{text!r} not in the Redis log:\n{srv.log_tail()}")
    return found


# -- execute ---------------------------------------------------------------------------------


def test_execute_reply_mapping(r):
    r.set("s", "v")
    r.rpush("l", "a", "b")
    r.set("bin", b"\xff")
    assert one(r, "repr(execute('SET', 'x', '1'))") == "'OK'"
    assert one(r, "repr(execute('GET', 's'))") == "'v'"
    assert one(r, "repr(execute('INCR', 'n'))") == "1"
    assert one(r, "repr(execute('LRANGE', 'l', 0, -1))") == "['a', 'b']"
    assert one(r, "repr(execute('GET', 'nosuch'))") == "None"
    assert one(r, "repr(execute('GET', 'bin'))") == "bytearray(b'\\xff')"


def test_execute_replies_of_every_shape_and_arity(r):
    # Calls of up to 4 arguments pass them as buffers, longer ones through module strings:
    # the same replies either way (nested arrays, nil elements, integers, errors, binary).
    r.delete("h", "z", "st")
    assert one(r, "repr(execute('PING'))") == "'PONG'"
    assert one(r, "repr(execute('HSET', 'h', 'a', '1', 'b', '2'))") == "2"  # 5 arguments
    assert one(r, "repr(execute('HMGET', 'h', 'a', 'nosuch', 'b'))") == "['1', None, '2']"
    assert one(r, "repr(execute('HMGET', 'h', 'a', 'b', 'a', 'nosuch', 'b'))") == (
        "['1', '2', '1', None, '2']")
    assert one(r, "repr(execute('ZADD', 'z', 1, 'm'))") == "1"
    assert one(r, "repr(execute('ZRANGE', 'z', 0, -1, 'WITHSCORES'))") == "['m', '1']"
    one(r, "execute('XADD', 'st', '1-1', 'f', 'v')")
    assert one(r, "repr(execute('XRANGE', 'st', '-', '+'))") == "[['1-1', ['f', 'v']]]"
    one(r, "execute('SET', 'k\\x00', b'\\x00\\xff')")  # binary, NULs included
    assert one(r, "repr(execute('GET', 'k\\x00'))") == "bytearray(b'\\x00\\xff')"
    setup = """
def err(*a):
    try:
        execute(*a)
    except Exception as e:
        return str(e)
"""
    assert one(r, "err('NOSUCHCMD', 'a')", setup).startswith("ERR unknown command 'NOSUCHCMD'")
    assert one(r, "err('GET')", setup).startswith("ERR wrong number of arguments for 'get'")
    assert one(r, "err('SET', 'a', 'b', 'c', 'd', 'e')", setup) == "ERR syntax error"


def test_execute_arguments_are_str_or_raw_bytes(r):
    assert one(r, "execute('SET', 'num', 42) and execute('GET', 'num')") == "42"
    one(r, "execute('SET', b'raw', bytearray(b'\\x00\\x01'))")
    assert r.get("raw") == "\x00\x01"


def test_execute_error_reply_raises(r):
    r.set("foo", "bar")
    setup = """
def attempt():
    try:
        execute('LPUSH', 'foo', 'x')
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
"""
    got = one(r, "attempt()", setup)
    assert got.startswith("error: WRONGTYPE")


def test_execute_command_must_be_a_string(r):
    results, errors = pyexecute(r, "GB('ShardsIDReader').map(lambda _: execute(1)).run()")
    assert results == [] and "the given command must be a string" in errors[0]


def test_execute_at_top_level_of_a_script(r):
    assert pyexecute(r, "execute('SET', 'top', 'level')") == "OK"
    assert r.get("top") == "level"


# -- log -------------------------------------------------------------------------------------


def test_log_lines_have_the_gears_prefix():
    with fresh_server() as srv:
        r = srv.client()
        assert pyexecute(r, "log('hello notice')") == "OK"
        assert pyexecute(r, "log('hello warning', level='warning')") == "OK"
        assert pyexecute(r, "GB('ShardsIDReader').foreach(lambda _: log('from a step')).run()") == [["1"], []]
        assert pyexecute(r, "log('warning', 'legacy form')") == "OK"
        log = wait_for_log(srv, "GEARS: legacy form")
        assert "GEARS: hello notice" in log
        assert "GEARS: hello warning" in log
        assert "GEARS: from a step" in log
        assert "is depricated" in log
        # debug is below the default loglevel (notice)
        assert pyexecute(r, "log('quiet', level='debug')") == "OK"
        assert pyexecute(r, "log('marker')") == "OK"
        log = wait_for_log(srv, "GEARS: marker")
        assert "GEARS: quiet" not in log


def test_log_errors(r):
    assert "Log message must be a string" in run_error(r, "log(1)")
    assert "Log level should be one of the following" in run_error(r, "log('x', level='loud')")
    assert "Log level must be a sting" in run_error(r, "log('x', level=3)")
    assert "log function must get a log message as input" in run_error(r, "log()")
    assert_alive(r)


def test_deprecated_aliases_still_work():
    with fresh_server(extraKey="extraValue") as srv:
        r = srv.client()
        assert pyexecute(r, "Log('old style')") == "OK"
        assert one(r, "ConfigGet('extraKey')") == "extraValue"
        log = wait_for_log(srv, "GEARS: old style")
        assert "Log is deprecated, use log instead" in log


# -- configGet, hashtag, flat_error, isAsyncAllow --------------------------------------------


def test_config_get_reads_module_arguments():
    with fresh_server(myKey="myValue") as srv:
        r = srv.client()
        assert one(r, "configGet('myKey')") == "myValue"
        assert one(r, "gearsConfigGet('myKey', 'dflt')") == "myValue"
        assert one(r, "gearsConfigGet('noKey', 'dflt')") == "dflt"
        assert one(r, "repr(configGet('noKey'))") == "None"
        # built-in settings are not in the extra dictionary (⚠ 1.2 doc says otherwise)
        assert one(r, "repr(configGet('MaxExecutions'))") == "None"


def test_hashtag(r):
    assert one(r, "hashtag()") == "06S"


def test_flat_error_is_the_bare_message(r):
    r.set("k", "v")
    setup = "def boom(x):\n    raise flat_error('just this text')\n"
    results, errors = pyexecute(r, setup + "GB().map(boom).run()")
    assert (results, errors) == ([], ["just this text"])


def test_flat_error_at_top_level(r):
    assert run_error(r, "raise flat_error('top text')") == "top text"


def test_calling_flat_error_raises_it(r):
    # REFERENCE §12.7: flat_error(msg) itself raises an error whose text is exactly msg.
    assert run_error(r, "flat_error('called text')") == "called text"
    r.set("k", "v")
    setup = "def boom(x):\n    flat_error('step text')\n    return x\n"
    assert pyexecute(r, setup + "GB().map(boom).run()") == [[], ["step text"]]
    assert run_error(r, "import redisgears\nredisgears.flatError('native name')") == "native name"


def test_is_async_allow(r):
    assert one(r, "str((outside, isAsyncAllow()))", "outside = isAsyncAllow()") == "(False, True)"


def test_gears_builder_desc(r):
    r.set("k", "v")
    script = "gb = GB(desc='my flow')\ngb.map(lambda x: gb.desc).run()"
    assert pyexecute(r, script) == [["my flow"], []]
    assert pyexecute(r, "GearsBuilder('KeysReader', '*', 'other').map(lambda x: x['key']).run()") == [["k"], []]


def test_hook_helpers_outside_a_hook(r):
    # §11.31
    results, errors = pyexecute(r, "GB('ShardsIDReader').map(lambda r: call_next(r)).run()")
    assert results == [] and "Can not get CommandHook ctx" in errors[0]
    assert "Can not get CommandHook ctx" in run_error(r, "call_next()")
    assert "Can not get command ctx" in run_error(r, "override_reply('x')")


# -- sessions --------------------------------------------------------------------------------


def test_globals_are_per_session(r):
    assert pyexecute(r, "leaked = 5") == "OK"
    assert one(r, "str('leaked' in globals())") == "False"


def test_imported_modules_are_shared(r):
    assert pyexecute(r, "import json\njson.gearshift_marker = 7") == "OK"
    assert one(r, "json.gearshift_marker", "import json") == "7"


def test_functions_see_their_own_session_globals(r):
    script = "factor = 3\nGB('ShardsIDReader').map(lambda x: int(x) * factor).run()"
    assert pyexecute(r, script) == [["3"], []]
    script = "factor = 4\nGB('ShardsIDReader').map(lambda x: int(x) * factor).run()"
    assert pyexecute(r, script) == [["4"], []]


# -- script-level behaviour ------------------------------------------------------------------


def test_script_without_run_replies_ok(r):
    # §11.3
    assert pyexecute(r, "x = 1") == "OK"


def test_two_runs_in_one_script(r):
    # §11.27
    assert "Can not run more then 1 executions in a single script" in run_error(r, "GB().run()\nGB().run()")


def test_unknown_pyexecute_argument(r):
    with pytest.raises(redis.ResponseError) as err:
        r.execute_command("RG.PYEXECUTE", "GB().run()", "FOO")
    assert "Unknown arguments were given: FOO" in str(err.value)


def test_empty_run_on_empty_db(r):
    # §11.1
    assert pyexecute(r, "GB().run()") == [[], []]


def test_traceback_errors_by_default(r):
    r.set("x", "1")
    results, errors = pyexecute(r, "GB().map(lambda x: notexists).run()")
    assert results == []
    assert errors[0].startswith("['Traceback (most recent call last):")
    assert "name 'notexists' is not defined" in errors[0]


def test_no_traceback_errors_with_python_attempt_traceback_0():
    # §11.45
    with fresh_server(PythonAttemptTraceback=0) as srv:
        r = srv.client()
        r.set("x", "1")
        results, errors = pyexecute(r, "GB().map(lambda x: notexists).run()")
        assert results == []
        assert errors == ["Error type: <class 'NameError'>, Value: name 'notexists' is not defined"]
        err = run_error(r, "1/0")
        assert err == "Error type: <class 'ZeroDivisionError'>, Value: division by zero"
        results, errors = pyexecute(r, "GB().map(lambda x: execute('LPUSH', 'x', 'y')).run()")
        assert errors[0].startswith("Error type: <class 'gears.error'>, Value: WRONGTYPE")


def test_records_after_an_error_are_not_read(r):
    # Error records stop the reader: far fewer than all records are processed.
    r.mset({f"k{i}": str(i) for i in range(5000)})
    script = "GB().map(lambda x: 1/0).run()"
    results, errors = pyexecute(r, script)
    assert results == [] and len(errors) == 1


def test_results_parse_back(r):
    r.hset("h", mapping={"a": "1"})
    results, errors = pyexecute(r, "GB().run()")
    assert parse(results) == [{"key": "h", "value": {"a": "1"}, "type": "hash", "event": None}]


ATOMIC_RACE = """
import time
def f(x):
    torn, raced = [], 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with {block}:
            execute('SET', 'a', '1')
            execute('INCR', 'a')
            v = execute('GET', 'a')
        if v != '2':
            torn.append(v)
        if execute('GET', 'a') == '100':  # the competing writer got in between two blocks
            raced += 1
            if raced >= 20:
                break
    return (torn, raced)
GB('ShardsIDReader').map(f).run()
"""


def atomic_race(server, block):
    """Runs ATOMIC_RACE while another client SETs `a` to '100' in a loop; returns (the values
    the block saw that were not its own, how often the writer's value showed between blocks)."""
    stop = threading.Event()
    writes = []

    def writer():
        w = server.client()
        while not stop.is_set():
            writes.append(w.set('a', '100'))
        w.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert wait_for(lambda: len(writes) >= 10)
        c = server.client()
        res, errors = pyexecute(c, ATOMIC_RACE.format(block=block))
        c.close()
    finally:
        stop.set()
        t.join(10)
    assert errors == [], errors
    return ast.literal_eval(res[0])


def test_atomic_block_runs_execute_under_one_lock(r, server):
    torn, raced = atomic_race(server, 'atomic()')
    assert raced >= 20, 'the writer ran between the blocks'
    assert torn == [], 'no write of the competing client landed inside an atomic block'
    assert r.ping()


def test_without_atomic_the_competing_writer_gets_in():
    # What the test above would see without the lock: the check can fail.
    with fresh_server() as srv:
        torn, raced = atomic_race(srv, "__import__('contextlib').nullcontext()")
        assert raced >= 20 and torn, (torn, raced)


def test_atomic_nesting_is_an_error(r):
    script = """
def f(x):
    with atomic():
        with atomic():
            pass
GB('ShardsIDReader').map(f).run()
"""
    res = pyexecute(r, script)
    assert res[0] == [] and 'Already inside an atomic block' in res[1][0]
    assert r.ping(), 'the lock was released after the error'


def test_atomic_in_sync_registration_is_allowed(r):
    pyexecute(r, "def f(x):\n    with atomic():\n        execute('INCR', 'n')\nGB().foreach(f).register('at:*', mode='sync')")
    try:
        r.set('at:1', 'x')
        assert r.get('n') == '1'
    finally:
        unregister_all(r)


def test_register_time_event_repeats_until_it_raises(r):
    script = """
def tick():
    n = execute('INCR', 'te:ticks')
    if n >= 2:
        raise Exception('enough')
registerTE(1, tick)
"""
    assert pyexecute(r, script) == 'OK'
    assert wait_for(lambda: r.get('te:ticks') == '2'), r.get('te:ticks')
    # A live 1 s timer would tick again within 1.5 s.
    assert holds_for(lambda: r.get('te:ticks') == '2', 1.5), 'the time event stopped when its callback raised'


# -- gc ----------------------------------------------------------------------------------------


def test_user_code_sees_the_collector_as_the_script_left_it(r):
    # Records are built with the cyclic collector paused (python/src/gc_pause.rs); a step
    # never runs inside that pause, and a collector a script turned off stays off.
    with r.pipeline() as p:
        for i in range(2500):
            p.hset(f"gcrec:{i}", mapping={"a": str(i), "b": "x"})
        p.execute()
    on = "GB().map(lambda x: __import__('gc').isenabled()).run('gcrec:*')"
    results, errors = pyexecute(r, on)
    assert errors == [] and len(results) == 2500 and set(results) == {"True"}
    try:
        results, errors = pyexecute(r, "import gc\ngc.disable()\n" + on)
        assert errors == [] and set(results) == {"False"}
        assert one(r, "__import__('gc').isenabled()") == "False"
    finally:
        pyexecute(r, "import gc\ngc.enable()\nGB('ShardsIDReader').run()")
    assert one(r, "__import__('gc').isenabled()") == "True"
    # Cycles made by steps are still collected: none is left after a run and a collection.
    script = """
import sys, weakref
class Node:
    pass
sys.gcrefs = []
def cyc(x):
    n = Node(); n.me = n; n.rec = x; sys.gcrefs.append(weakref.ref(n))
    return x['key']
GB().map(cyc).count().run('gcrec:*')
"""
    assert pyexecute(r, script) == [["2500"], []]
    # The collector ran by itself during the run (its young generation is 700 objects)...
    alive = "import sys\nGB('ShardsIDReader').map(lambda _: sum(w() is not None for w in sys.gcrefs)).run()"
    (left,), errors = pyexecute(r, alive)
    assert errors == [] and int(left) < 1000, left
    # ... and a collection frees the rest.
    assert pyexecute(r, "import gc\ngc.collect()\n" + alive) == [["0"], []]
    r.delete(*[f"gcrec:{i}" for i in range(2500)])


def test_a_script_replacing_gc_functions_never_runs_inside_a_record_build():
    # The module looks gc's functions up at start-up (python/src/gc_pause.rs), so a script
    # that replaces them before the first run does not get them called by the module.
    with fresh_server() as srv:
        c = srv.client()
        c.hset("h:1", mapping={"a": "1"})
        patch = """
import gc, sys
sys.gc_calls = []
def spy(name, f):
    return lambda *a: (sys.gc_calls.append(name), f(*a))[1]
for name in ('isenabled', 'disable', 'enable'):
    setattr(gc, name, spy(name, getattr(gc, name)))
GB().map(lambda x: x['key']).run('h:*')
"""
        assert pyexecute(c, patch) == [["h:1"], []]
        calls = "import sys\nGB('ShardsIDReader').map(lambda _: len(sys.gc_calls)).run()"
        assert pyexecute(c, calls) == [["0"], []]
