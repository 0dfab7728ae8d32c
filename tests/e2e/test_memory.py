"""Memory bounds (issue 10): Python's memory is Redis's (used_memory, maxmemory and the
python stats see it), one execution is bounded by ExecutionMemoryLimit, executions stop when
the server is at maxmemory, and a dropped execution frees what it held."""

import threading

import pytest
import redis

from conftest import assert_alive, fresh_server, pyexecute, wait_for

MB = 1 << 20


def used(r):
    return r.info('memory')['used_memory']


def holding_script(seconds):
    # One million distinct strings held by the script while it sleeps.
    return f"import time\nheld = [str(i) * 3 for i in range(1000000)]\ntime.sleep({seconds})"


def test_python_allocations_count_in_used_memory_and_pystats():
    with fresh_server() as srv:
        r = srv.client()
        base = used(r)
        t = threading.Thread(target=pyexecute, args=(srv.client(), holding_script(3)))
        t.start()
        try:
            peak = wait_for(lambda: used(r) > base + 40 * MB and used(r), timeout=10)
            assert peak > base + 40 * MB, f'used_memory {base} -> {used(r)}: Python is invisible'
            stats = dict(zip(*[iter(r.execute_command('RG.PYSTATS'))] * 2))
            assert stats['CurrAllocated'] > 40 * MB
            assert stats['PeakAllocated'] >= stats['CurrAllocated']
            assert stats['TotalAllocated'] >= stats['PeakAllocated']
            info = r.info('everything')
            assert info['rg_CurrAllocated'] > 40 * MB
        finally:
            t.join(20)
        # Freed with the script's globals.
        assert wait_for(lambda: used(r) < base + 20 * MB, timeout=5), used(r)


def test_a_huge_string_under_maxmemory_is_refused_not_allocated():
    with fresh_server(server_args=('--maxmemory', '100mb')) as srv:
        r = srv.client()
        res = pyexecute(r, "GB('ShardsIDReader').map(lambda r: len('x' * 4_000_000_000)).run()")
        assert res[0] == []
        assert len(res[1]) == 1
        assert "past 'maxmemory'" in res[1][0], res[1]
        assert used(r) < 100 * MB
        # At top level too, as the script's error.
        with pytest.raises(redis.ResponseError, match="MemoryError: OOM allocating 4000000049 bytes would take used memory past 'maxmemory'"):
            pyexecute(r, "x = 'x' * 4_000_000_000")
        assert_alive(r, srv)
        assert pyexecute(r, "GB('ShardsIDReader').count().run()") == [['1'], []]


def test_execution_memory_limit_fails_the_execution_with_a_clear_error(r):
    r.execute_command('RG.CONFIGSET', 'ExecutionMemoryLimit', str(20 * MB))
    try:
        res = pyexecute(r, "GB('ShardsIDReader').map(lambda r: len([str(i) for i in range(3000000)])).run()")
        assert res[0] == []
        assert res[1] == [
            f'MemoryError: the execution passed its memory limit of {20 * MB} bytes (ExecutionMemoryLimit)'
        ]
        # Under the limit, the same kind of work runs.
        assert pyexecute(r, "GB('ShardsIDReader').map(lambda r: len('x' * 5_000_000)).run()") == [['5000000'], []]
    finally:
        r.execute_command('RG.CONFIGSET', 'ExecutionMemoryLimit', str(2 << 30))
    assert r.execute_command('RG.CONFIGGET', 'ExecutionMemoryLimit') == [2 << 30]


ENDLESS = """
def gen():
    i = 0
    while True:
        i += 1
        yield str(i) * 10
GB('PythonReader').run(gen)
"""


def test_an_endless_generator_stops_at_maxmemory():
    with fresh_server(server_args=('--maxmemory', '100mb')) as srv:
        r = srv.client()
        eid = pyexecute(r, ENDLESS, 'UNBLOCKING')
        res = r.execute_command('RG.GETRESULTSBLOCKING', eid)
        assert res[1] == ["OOM execution stopped: used memory is above 'maxmemory' (the server refuses to grow it)"]
        assert used(r) < 200 * MB
        assert r.execute_command('RG.DROPEXECUTION', eid) == 'OK'
        assert wait_for(lambda: used(r) < 50 * MB, timeout=5), used(r)
        assert r.set('k', 'v')


def test_abort_and_drop_of_a_generator_run_frees_its_memory():
    with fresh_server() as srv:
        r = srv.client()
        base = used(r)
        for _ in range(3):
            eid = pyexecute(r, ENDLESS, 'UNBLOCKING')
            assert wait_for(lambda: used(r) > base + 50 * MB, timeout=10)
            assert r.execute_command('RG.ABORTEXECUTION', eid) == 'OK'
            r.execute_command('RG.GETRESULTSBLOCKING', eid)
            assert r.execute_command('RG.DROPEXECUTION', eid) == 'OK'
        assert wait_for(lambda: used(r) < base + 20 * MB, timeout=5), f'{base} -> {used(r)}'
