"""Command flags and ACL categories (issue #10, docs/security.md): each RG command is flagged
for what it does, so read-only replicas, read-only scripts and ACL rules treat it truthfully.

Redis 7.0 gives module commands no ACL category at all (RedisModule_SetCommandACLCategories
arrived in 7.2), so there `-@dangerous` cannot cover RG.PYEXECUTE: the documented recipe
names the commands; the category tests run only on Redis >= 7.2."""

import pytest
import redis
from conftest import Server, pyexecute, wait_for

FLAGS = {
    "rg.pyexecute": {"write", "denyoom"},
    "rg.unregister": {"write"},
    "rg.abortexecution": {"allow_busy"},
    "rg.configset": {"admin"},
    "rg.refreshcluster": {"admin"},
    "rg.pauseregistrations": {"admin"},
    "rg.unpauseregistrations": {"admin"},
    "rg.clearregistrationsstats": {"admin"},
    "rg.pyfreeinterpreter": {"admin"},
    "rg.dumpexecutions": {"readonly"},
    "rg.getresults": {"readonly"},
    "rg.dumpregistrations": {"readonly"},
    "rg.configget": {"readonly"},
}

CODE_RUNNING = ["rg.pyexecute", "rg.pyexecuteremote"]


def server_version(client):
    return tuple(int(x) for x in client.info("server")["redis_version"].split(".")[:2])


def command_flags(client, name):
    info = client.execute_command("COMMAND", "INFO", name)
    return set(info[name]["flags"]) if isinstance(info, dict) else set(info[0][2])


@pytest.mark.parametrize("name, flags", sorted(FLAGS.items()))
def test_command_info_shows_truthful_flags(r, name, flags):
    got = command_flags(r, name)
    assert flags <= got, got
    if "readonly" not in flags:
        assert "readonly" not in got


def test_user_without_code_execution_gets_noperm(server, r):
    # The recipe docs/security.md gives, which works on every supported Redis.
    r.execute_command(
        "ACL", "SETUSER", "nocode", "on", ">pw", "~*", "&*", "+@all", "-@dangerous",
        "-rg.pyexecute", "-rg.pyexecuteremote", "-rg.trigger", "-rg.triggeronkey",
    )  # fmt: skip
    u = redis.Redis(host="127.0.0.1", port=server.port, username="nocode", password="pw",
                    decode_responses=True)  # fmt: skip
    try:
        with pytest.raises(redis.exceptions.NoPermissionError, match="rg.pyexecute"):
            u.execute_command("RG.PYEXECUTE", "GB().run()")
        assert u.execute_command("RG.DUMPEXECUTIONS") == []
    finally:
        u.close()
        r.execute_command("ACL", "DELUSER", "nocode")


def test_code_running_commands_are_listed_in_their_categories(server, r):
    if server_version(r) < (7, 2):
        pytest.skip("Redis 7.0 has no RedisModule_SetCommandACLCategories (docs/security.md)")
    for name in CODE_RUNNING:
        assert name in r.execute_command("ACL", "CAT", "dangerous")
        assert name in r.execute_command("ACL", "CAT", "scripting")


@pytest.mark.parametrize("rules, allowed", [
    (["+@all", "-@dangerous"], False),
    (["+@all", "-@scripting"], False),
    (["+@all", "-@write"], False),
    (["+@all", "-@dangerous", "-rg.pyexecute"], False),
    (["-@all", "+rg.pyexecute"], True),
    (["+@all", "-@read"], True),
])
def test_categories_taken_away_take_code_execution_away(server, r, rules, allowed):
    # On 7.0 Gearshift replays the rules with the categories 7.2 would give the command
    # (7.0 keeps rules as a normalised description, so a `+rg.pyexecute` after a category
    # that already allowed it is not kept: see docs/security.md).
    r.execute_command("ACL", "SETUSER", "cats", "reset", "on", ">pw", "~*", *rules)
    u = redis.Redis(host="127.0.0.1", port=server.port, username="cats", password="pw",
                    decode_responses=True)  # fmt: skip
    try:
        if allowed:
            assert u.execute_command("RG.PYEXECUTE", "GB('ShardsIDReader').count().run()") == [["1"], []]
        else:
            with pytest.raises(redis.exceptions.NoPermissionError,
                               match="this user has no permissions to run the 'rg.pyexecute' command"):
                u.execute_command("RG.PYEXECUTE", "GB().run()")
    finally:
        u.close()
        r.execute_command("ACL", "DELUSER", "cats")


def test_read_only_scripts_cannot_run_code(r):
    pyexecute(r, "GB('CommandReader').register(trigger='ro_t', mode='sync')")
    try:
        for call in ["redis.call('RG.PYEXECUTE', 'GB().run()')", "redis.call('RG.TRIGGER', 'ro_t')"]:
            with pytest.raises(redis.ResponseError, match="Write commands are not allowed"):
                r.execute_command("EVAL_RO", f"return {call}", 0)
        assert r.execute_command("EVAL_RO", "return redis.call('RG.DUMPEXECUTIONS')", 0) == []
    finally:
        for reg in r.execute_command("RG.DUMPREGISTRATIONS"):
            r.execute_command("RG.UNREGISTER", reg[1])


def test_read_only_replica_answers_reads_and_refuses_writes():
    with Server() as master, Server() as replica:
        m, rep = master.client(), replica.client()
        rep.execute_command("REPLICAOF", "127.0.0.1", master.port)
        assert wait_for(lambda: rep.info("replication")["master_link_status"] == "up", timeout=15)
        # A hook replicates to the replica; a hooked read there still answers (RG.TRIGGER,
        # which carries it, is may-replicate, not write).
        pyexecute(m, "GB('CommandReader').map(lambda a: call_next(*a[1:])).register(hook='get', mode='sync')")
        m.set("k", "v")
        assert wait_for(lambda: len(rep.execute_command("RG.DUMPREGISTRATIONS")) == 1, timeout=10)
        assert wait_for(lambda: rep.get("k") == "v", timeout=10)
        assert rep.execute_command("RG.DUMPEXECUTIONS") == []
        assert rep.execute_command("RG.PYDUMPSESSIONS")
        with pytest.raises(redis.ResponseError, match="read only replica"):
            rep.execute_command("RG.PYEXECUTE", "GB().run()")
        with pytest.raises(redis.ResponseError, match="read only replica"):
            rep.execute_command("RG.UNREGISTER", "x")
