"""Hostile or careless scripts (issue 10): each ends with an error reply or an execution
error, never a crash of redis-server."""

import pytest
import redis

from conftest import assert_alive, pyexecute

NESTED = """
import sys
sys.setrecursionlimit(10**7)
nested = []
for _ in range(200000):
    nested = [nested]
"""


def test_a_huge_recursion_limit_cannot_overflow_a_worker_stack(r, server):
    out = pyexecute(r, NESTED + "GB('ShardsIDReader').map(lambda x: len(repr(nested))).run()")
    assert out[0] == [] and 'RecursionError' in str(out[1])
    assert pyexecute(r, "import sys\nsys.setrecursionlimit(10**7)\n"
                        "GB('ShardsIDReader').map(lambda x: sys.getrecursionlimit()).run()") == [['10000'], []]
    assert_alive(r, server)


def test_a_huge_recursion_limit_cannot_overflow_the_main_thread(r, server):
    # The nesting is built by the callback: a registration's callbacks must pickle, and
    # pickling one that holds it already recurses too deep (REFERENCE §12.7).
    script = """
import sys
sys.setrecursionlimit(10**7)
def deep(x):
    nested = []
    for _ in range(200000):
        nested = [nested]
    return repr(nested)
GB().foreach(deep).register(prefix='deep*', mode='sync')
"""
    pyexecute(r, script)
    try:
        r.set('deep1', 'x')
        assert_alive(r, server)
        reg = r.execute_command('RG.DUMPREGISTRATIONS')[0]
        assert 'RecursionError' in str(reg)
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])


@pytest.mark.parametrize('stmt, text', [
    ('import sys; sys.exit(3)', 'SystemExit: 3'),
    ('raise KeyboardInterrupt', 'KeyboardInterrupt'),
    ('raise GeneratorExit', 'GeneratorExit'),
])
def test_base_exceptions_are_errors(r, server, stmt, text):
    with pytest.raises(redis.ResponseError, match=text):
        pyexecute(r, stmt)
    out = pyexecute(r, "def f(x):\n    " + stmt + "\nGB('ShardsIDReader').map(f).run()")
    assert out[0] == [] and text in str(out[1])
    assert_alive(r, server)


def test_a_thread_the_script_starts_cannot_call_redis_unchecked(r, server):
    # A thread outside any execution has no ACL user: its calls are refused, not run as
    # superuser, and nothing crashes.
    out = pyexecute(r, """
import threading
res = []
t = threading.Thread(target=lambda: res.append(execute('SET', 'from_thread', '1')))
t.start(); t.join(10)
GB('ShardsIDReader').map(lambda x: 'done').run()""")
    assert out == [['done'], []]
    assert r.get('from_thread') is None
    assert_alive(r, server)


@pytest.mark.parametrize('args', [
    "'WAIT', '1', '0'",          # asserted on a blocked client inside RM_Call (crash)
    "'PSYNC', '?', '-1'",        # dereferenced NULL (crash)
    "'SYNC'",
    "'MULTI'",
    "'DEBUG', 'SLEEP', '0'",
    "'SHUTDOWN'",
    "'CLIENT', 'KILL', 'TYPE', 'normal'",
])
def test_commands_not_allowed_in_scripts_are_refused_by_execute(r, server, args):
    name = args.split("'")[1].lower()
    out = pyexecute(r, f"GB('ShardsIDReader').map(lambda x: execute({args})).run()")
    assert out[0] == []
    assert f"is not allowed on script mode" in str(out[1]) and name in str(out[1])
    assert_alive(r, server)


def test_config_get_stays_allowed_through_execute(r):
    out = pyexecute(r, "GB('ShardsIDReader').map(lambda x: execute('CONFIG', 'GET', 'maxmemory')[0]).run()")
    assert out == [['maxmemory'], []]


@pytest.mark.parametrize('script', [
    "a = atomic()\na.__enter__()",
    "GB('ShardsIDReader').map(lambda x: atomic().__enter__() and 1).run()",
    "GB('ShardsIDReader').map(lambda x: [atomic().__enter__(), execute('SET', 'z', '1')] and 1).run()",
])
def test_an_atomic_block_left_open_does_not_keep_the_redis_lock(r, server, script):
    # Entering atomic() without leaving it held the Redis lock on a worker for good.
    pyexecute(r, script)
    assert_alive(r, server)
    assert r.set('after', '1')
    assert pyexecute(r, "with atomic():\n    execute('INCR', 'n')") == 'OK'
    assert r.get('n') == '1'
    r.delete('n')


def test_an_atomic_block_left_open_by_an_event_does_not_keep_the_lock(r, server):
    pyexecute(r, "GB().foreach(lambda x: atomic().__enter__()).register(prefix='at*')")
    try:
        r.set('at1', 'x')
        for _ in range(20):
            assert_alive(r, server)
        assert r.set('after', '1')
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])


@pytest.mark.parametrize('reader', ["GB().run()", "GB().map(lambda x: execute('GET', x['key'])).run()"])
def test_reading_a_key_linked_to_commands_does_not_crash(r, server, reader):
    # Found by tests/reliability's command fuzzer: a KeysReader read (RM_Call GET) of a key
    # with a commands=['get'] registration reached RG.TRIGGER on a client without a user,
    # and asking for that user's name segfaulted.
    pyexecute(r, "GB().map(lambda x: x).register(prefix='fuzz:*', commands=['get'])")
    try:
        r.set('fuzz:a', '1')
        out = pyexecute(r, reader)
        assert_alive(r, server)
        assert out[1] == [], out
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])
