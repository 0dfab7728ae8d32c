"""Internal commands (issue #10): RG.INNERREGISTER, RG.INNERUNREGISTER and RG.INNERTIMEEVENT
carry sessions and time events to replicas and the AOF. Only the master's replication stream
and AOF loading may run them; any other caller (a client, MULTI, a Lua script) gets exactly
the reply Redis gives for an unknown command, and nothing runs."""

import struct

import pytest
import redis
from conftest import assert_alive, pyexecute

INTERNAL = ["RG.INNERREGISTER", "RG.INNERUNREGISTER", "RG.INNERTIMEEVENT"]


def _str(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def forged_blob(code):
    """A session blob in Gearshift's replication format (module/src/persist.rs) whose code
    would run on the main thread if the command accepted it."""
    return b"S\x02" + struct.pack("<I", 1) + _str("forged") + b"\x00" + _str(code) + struct.pack("<II", 0, 0)


def unknown_reply(client, name, *args):
    """What Redis answers for a command it does not know, called with these arguments."""
    with pytest.raises(redis.ResponseError) as err:
        client.execute_command(name, *args)
    return str(err.value)


CASES = [
    ("RG.INNERREGISTER", [forged_blob("execute('SET', 'pwned', '1')")]),
    ("rg.innerregister", ["x"]),
    ("RG.INNERUNREGISTER", ["{reg}"]),
    ("RG.INNERUNREGISTER", ["{reg}", "abortpending"]),
    ("RG.INNERTIMEEVENT", ["te", "1", "{pickle}"]),
    ("RG.InnerTimeEvent", []),
    ("RG.INNERREGISTER", ["a" * 200, "b"]),
]


@pytest.mark.parametrize("name, args", CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_internal_commands_look_unknown_to_clients(server, r, name, args):
    import cloudpickle

    reg = pyexecute(r, "GB().register(prefix='keep:*')")
    assert reg == "OK"
    reg_id = r.execute_command("RG.DUMPREGISTRATIONS")[0][1]
    values = {"{reg}": reg_id, "{pickle}": cloudpickle.dumps(lambda: None)}
    args = [values.get(a, a) if isinstance(a, str) else a for a in args]
    try:
        got = unknown_reply(r, name, *args)
        # The same call under a name Redis does not know, with the name spelt the same way.
        other = name[:-1] + ("Y" if name[-1] != "Y" else "Z")
        expected = unknown_reply(r, other, *args).replace(other, name)
        assert got == expected
        assert got.startswith(f"unknown command '{name}'")
        assert r.exists("pwned", "te") == 0
        assert [x[1] for x in r.execute_command("RG.DUMPREGISTRATIONS")] == [reg_id]
    finally:
        r.execute_command("RG.UNREGISTER", reg_id)
    assert_alive(r, server)


def test_internal_commands_refused_in_multi_and_lua(server, r):
    blob = forged_blob("execute('SET', 'pwned', '1')")
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("RG.INNERREGISTER", blob)
    with pytest.raises(redis.ResponseError, match="unknown command 'RG.INNERREGISTER'"):
        pipe.execute()
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.eval("return redis.call('RG.INNERREGISTER', ARGV[1])", 0, blob)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.eval("return redis.call('RG.INNERTIMEEVENT', 'te', '1', 'x')", 0)
    assert r.exists("pwned", "te") == 0
    assert r.execute_command("RG.PYDUMPSESSIONS") == []
    assert_alive(r, server)


def test_replica_still_gets_sessions_and_unregisters():
    from conftest import Server, wait_for

    with Server() as master, Server() as replica:
        m, rep = master.client(), replica.client()
        rep.execute_command("REPLICAOF", "127.0.0.1", master.port)
        assert wait_for(lambda: rep.info("replication")["master_link_status"] == "up", timeout=15)
        assert pyexecute(m, "GB().register(prefix='r:*')", "ID", "repl") == "OK"
        reg_id = m.execute_command("RG.DUMPREGISTRATIONS")[0][1]
        ids = lambda: [x[1] for x in rep.execute_command("RG.DUMPREGISTRATIONS")]  # noqa: E731
        assert wait_for(lambda: ids() == [reg_id], timeout=10)
        m.execute_command("RG.UNREGISTER", reg_id)
        assert wait_for(lambda: ids() == [], timeout=10)
