"""Values too big for the memory left under `maxmemory`, handed to Python by execute(), a
reader or a hooked command: the refused allocation is the execution's MemoryError with the
bound's text (docs/security.md, Memory), never a Rust panic reported as an internal error."""

import time

import pytest
import redis

from conftest import assert_alive, fresh_server, pyexecute, steady

MB = 1 << 20
BIG = 40 * MB
REFUSED = "would take used memory past 'maxmemory'"

# Each copies one BIG value into a Python object: str for text, bytearray otherwise.
COPIES = {
    "execute() text": "GB('ShardsIDReader').map(lambda x: len(execute('GET', 'big'))).run()",
    "execute() binary": "GB('ShardsIDReader').map(lambda x: len(execute('GET', 'bigb'))).run()",
    "execute() list": "GB('ShardsIDReader').map(lambda x: len(execute('LRANGE', 'bigl', 0, -1))).run()",
    "KeysReader text": "GB().map(lambda x: len(x['value'])).run('big')",
    "KeysReader binary": "GB().map(lambda x: len(x['value'])).run('bigb')",
    "KeysReader hash": "GB().map(lambda x: len(x['value'])).run('bigh')",
}


@pytest.fixture(scope="module")
def tight():
    """A server holding four BIG values, with `maxmemory` half a BIG above what it uses."""
    with fresh_server(server_args=("--maxmemory-policy", "noeviction")) as srv:
        r = srv.client()
        # Built in the server: a value SET from a client may keep its query buffer's spare
        # room, which a cron trims later, so used_memory would move under the test.
        r.setrange("big", BIG - 1, "x")  # zero bytes and an 'x': text
        r.setrange("bigb", BIG - 1, "\xff")  # ends in a byte that is not UTF-8
        r.eval("redis.call('RPUSH', 'bigl', redis.call('GET', 'big'))"
               "redis.call('HSET', 'bigh', 'f', redis.call('GET', 'big'))", 0)  # fmt: skip
        used = steady(lambda: r.info("memory")["used_memory"] // MB, quiet=1.0, timeout=20)
        assert used, "used_memory did not settle"
        r.config_set("maxmemory", used * MB + BIG // 2)
        time.sleep(0.3)  # Gearshift reads the headroom every 100 ms
        yield srv, r


@pytest.mark.parametrize("case", sorted(COPIES))
def test_a_value_bigger_than_the_memory_left_is_a_memory_error(tight, case):
    srv, r = tight
    res = pyexecute(r, COPIES[case])
    assert res[0] == [] and res[1], res
    assert REFUSED in res[1][0], res[1]
    # A limits refresh that saw the engine's copy may stop the run too; nothing else.
    assert all(REFUSED in e or e.startswith("OOM execution stopped") for e in res[1]), res[1]
    assert_alive(r, srv)
    time.sleep(0.3)  # the copy is freed: the next refresh sees the headroom again
    assert pyexecute(r, "GB('ShardsIDReader').count().run()") == [["1"], []]


def test_a_script_body_reading_a_value_too_big_gets_the_memory_error(tight):
    srv, r = tight
    with pytest.raises(redis.ResponseError, match=REFUSED):
        pyexecute(r, "x = execute('GET', 'big')")
    assert_alive(r, srv)
