"""Bad input (issue #10): data that is not UTF-8 reaches Python unaltered (1.2's `bytearray`
where 1.2 gives one, `bytes` where a hashable value is needed or 1.2 is silent), and misuse of
`execute()` raises instead of silently answering."""

import pytest
import redis
from conftest import assert_alive


@pytest.fixture
def rb(server, r):
    """A client that keeps replies as bytes (r flushed the database)."""
    c = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=30)
    yield c
    c.close()


def test_keysreader_over_non_utf8_hash_fields_runs(rb):
    rb.hset(b"h\xff", mapping={b"f\xff": b"v\xfe", b"ok": b"\xfe"})
    rb.set(b"plain", b"x")
    results, errors = rb.execute_command(
        "RG.PYEXECUTE",
        "GB().map(lambda x: repr((x['key'], x['value']))).run()",
    )
    assert errors == []
    got = sorted(results)
    assert got == sorted(
        [
            b"(bytearray(b'h\\xff'), {b'f\\xff': bytearray(b'v\\xfe'), 'ok': bytearray(b'\\xfe')})",
            b"('plain', 'x')",
        ]
    )


def test_non_utf8_key_and_value_round_trip(rb):
    rb.set(b"k\xff\x00", b"v\xfe\x00")
    results, errors = rb.execute_command(
        "RG.PYEXECUTE",
        "GB().foreach(lambda x: execute('SET', bytes(x['key']) + b'-copy', x['value']))"
        ".map(lambda x: bytes(x['key'])).run(convertToStr=False)",
    )
    assert errors == []
    assert results == [b"k\xff\x00"]
    assert rb.get(b"k\xff\x00-copy") == b"v\xfe\x00"


def test_trigger_arguments_keep_their_bytes(rb):
    rb.execute_command(
        "RG.PYEXECUTE",
        "GB('CommandReader').map(lambda a: repr(a)).register(trigger='raw_args')",
    )
    try:
        reply = rb.execute_command("RG.TRIGGER", "raw_args", b"a\xff", "é".encode(), b"\x00")
        assert reply == [b"['raw_args', b'a\\xff', '\\xc3\\xa9', '\\x00']".replace(
            b"'\\xc3\\xa9'", "'é'".encode()
        )]
        # The bytes go back out unchanged.
        rb.execute_command(
            "RG.PYEXECUTE",
            "GB('CommandReader').map(lambda a: a[1]).register(trigger='echo_arg', convertToStr=False)",
        )
        assert rb.execute_command("RG.TRIGGER", "echo_arg", b"\xff\xfe\x00") == [b"\xff\xfe\x00"]
    finally:
        for reg in rb.execute_command("RG.DUMPREGISTRATIONS"):
            rb.execute_command("RG.UNREGISTER", reg[1])


def test_execute_without_arguments_raises(r):
    script = (
        "def f():\n"
        "    try:\n"
        "        execute()\n"
        "    except Exception as e:\n"
        "        return str(e)\n"
        "    return 'no error'\n"
        "GB('ShardsIDReader').map(lambda x: f()).run()"
    )
    results, errors = r.execute_command("RG.PYEXECUTE", script)
    assert errors == []
    assert results == ["wrong number of arguments for 'execute' command"]


def test_execute_with_nul_in_command_name_is_an_error_reply(server, r):
    script = (
        "def f():\n"
        "    try:\n"
        "        return execute('GE\\x00T', 'x')\n"
        "    except Exception as e:\n"
        "        return str(e)\n"
        "GB('ShardsIDReader').map(lambda x: f()).run()"
    )
    results, errors = r.execute_command("RG.PYEXECUTE", script)
    assert errors == []
    assert results[0].startswith("ERR unknown command")
    assert_alive(r, server)


def test_hooked_command_arguments_keep_their_bytes(rb):
    rb.execute_command(
        "RG.PYEXECUTE",
        "GB('CommandReader').map(lambda a: call_next(*a[1:]))"
        ".register(hook='set', mode='sync', convertToStr=False)",
    )
    try:
        assert rb.set(b"hk\xff", b"hv\xfe\x00") is True
    finally:
        for reg in rb.execute_command("RG.DUMPREGISTRATIONS"):
            rb.execute_command("RG.UNREGISTER", reg[1])
    assert rb.get(b"hk\xff") == b"hv\xfe\x00"
    assert rb.keys() == [b"hk\xff"]
