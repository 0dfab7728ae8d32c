"""Timers and time-event keys are safe (issue #10): a period no timer can hold is refused with
a clear error where it is given (registerTE, StreamReader duration/retry interval) instead of
aborting the server; a time-event key that could not load back is never stored; and one odd
rg_timeev value in an RDB never stops the whole RDB from loading."""

import tempfile
from pathlib import Path

import pytest
import redis
from conftest import Server, assert_alive, pyexecute

MAX_SECONDS = 2**32 - 1


def error_of(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


@pytest.mark.parametrize(
    "period, text",
    [
        ("10**30", f"time argument must be at most {MAX_SECONDS} seconds"),
        ("2**63", f"time argument must be at most {MAX_SECONDS} seconds"),
        ("2**64 + 5", f"time argument must be at most {MAX_SECONDS} seconds"),
        ("-1", "time argument must be a positive integer"),
        ("1.5", "time argument must be a long"),
        ("float('nan')", "time argument must be a long"),
        ("float('inf')", "time argument must be a long"),
        ("'5'", "time argument must be a long"),
    ],
)
@pytest.mark.parametrize("key", [None, "te_key"])
def test_register_te_refuses_periods_no_timer_can_hold(server, r, period, text, key):
    key_arg = "" if key is None else f", {key!r}"
    assert text in error_of(r, f"registerTE({period}, lambda: None{key_arg})")
    assert r.exists("te_key") == 0
    assert_alive(r, server)


def test_register_te_accepts_the_longest_period(server, r):
    assert pyexecute(r, f"execute('SET', 'ret', str(registerTE({MAX_SECONDS}, lambda: None, 'far')))") == "OK"
    assert r.get("ret") == "True"
    assert r.type("far") == "rg_timeev"
    r.execute_command("DEBUG", "RELOAD")
    assert r.type("far") == "rg_timeev"
    assert_alive(r, server)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ("duration=2**63", "duration argument must be between 0 and"),
        ("duration=-5", "duration argument must be between 0 and"),
        ("duration=10**30", "duration argument must be between 0 and"),
        ("onFailedPolicy='retry', onFailedRetryInterval=2**63", "retryInterval argument must be between"),
        ("onFailedPolicy='retry', onFailedRetryInterval=-1", "retryInterval argument must be between"),
    ],
)
def test_stream_reader_refuses_periods_no_timer_can_hold(server, r, kwargs, text):
    script = f"GB('StreamReader').register(prefix='st', batch=100, {kwargs})"
    assert text in error_of(r, script)
    assert r.execute_command("RG.DUMPREGISTRATIONS") == []
    r.xadd("st", {"a": 1})
    assert_alive(r, server)


def _resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _pickle_of_noop():
    import cloudpickle

    return cloudpickle.dumps(lambda: None)


def _server_with_files(files, server_args=()):
    """A server whose data dir holds `files` ({name: bytes}) before it starts."""
    srv = Server(server_args)
    srv.dir = Path(tempfile.mkdtemp(prefix="gearshift-e2e-"))
    for name, data in files.items():
        (srv.dir / name).write_bytes(data)
    return srv


def test_unloadable_time_event_is_never_stored():
    # RG.INNERTIMEEVENT only comes from the AOF or a master: replay it from an AOF file.
    aof = b"".join(
        [
            _resp("SELECT", "0"),
            _resp("RG.INNERTIMEEVENT", "k_huge", "9223372036854775807", _pickle_of_noop()),
            _resp("RG.INNERTIMEEVENT", "k_zero", "0", _pickle_of_noop()),
            _resp("RG.INNERTIMEEVENT", "k_garbage", "1", "x"),
            _resp("RG.INNERTIMEEVENT", "k_good", "1", _pickle_of_noop()),
            _resp("SET", "other", "1"),
        ]
    )
    srv = _server_with_files({"appendonly.aof": aof}, ["--appendonly", "yes"])
    with srv:
        c = srv.client()
        assert c.get("other") == "1"
        assert c.exists("k_huge", "k_zero", "k_garbage") == 0
        assert c.type("k_good") == "rg_timeev"
        assert c.execute_command("DEBUG", "RELOAD") == "OK"
        assert c.get("other") == "1"
        assert c.type("k_good") == "rg_timeev"
        c.execute_command("SAVE")
        srv.restart()
        c = srv.client()
        assert c.get("other") == "1"
        assert c.type("k_good") == "rg_timeev"


def _poisoned_rdb():
    """An RDB holding an rg_timeev key whose saved period no timer can hold (as an older build
    could write), plus a plain key; the checksum is zeroed (Redis then skips the check)."""
    with Server() as srv:
        c = srv.client()
        pyexecute(c, "registerTE(1, lambda: None, 'tk_poison')")
        c.set("plain", "kept")
        c.execute_command("SAVE")
        data = (srv.dir / "dump.rdb").read_bytes()
    name = b"tk_poison"
    at = data.index(name) + len(name) + 9  # key name, then the module type id (0x81 + 8 bytes)
    # The saved period: opcode UINT (2) then the RDB length encoding of 1 (one byte, 0x01);
    # 0x81 announces a 64-bit big-endian value instead.
    assert data[at : at + 2] == b"\x02\x01", data[at - 12 : at + 4]
    data = data[:at] + b"\x02\x81" + (2**63 - 1).to_bytes(8, "big") + data[at + 2 :]
    return data[:-8] + b"\x00" * 8


def test_out_of_range_value_in_rdb_does_not_stop_loading():
    srv = _server_with_files({"dump.rdb": _poisoned_rdb()})
    with srv:
        c = srv.client()
        assert c.get("plain") == "kept"
        assert c.type("tk_poison") == "rg_timeev"
        assert c.execute_command("DEBUG", "RELOAD") == "OK"
        assert c.get("plain") == "kept"
        assert "out of range; clamped" in srv.logfile.read_text()
        assert_alive(c, srv)
