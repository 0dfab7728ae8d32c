"""Hooks on Gearshift's own commands: a registration that hooks RG.PYEXECUTE, RG.UNREGISTER or
RG.TRIGGER would see every other user's scripts and could refuse its own removal (it
persists with its session). Such hooks are refused when registered."""

import pytest
import redis

from conftest import assert_alive, pyexecute, unregister_all

OWN = ["rg.pyexecute", "RG.UNREGISTER", "rg.trigger", "rg.dumpregistrations", "rg.configset"]


@pytest.mark.parametrize("command", OWN)
def test_a_hook_on_a_gearshift_command_is_refused(r, server, command):
    script = (f"GB('CommandReader').map(lambda x: 'hijacked').register(hook={command!r}, "
              "mode='sync')")  # fmt: skip
    try:
        with pytest.raises(redis.ResponseError, match="Can not override a Gearshift command"):
            pyexecute(r, script)
        assert r.execute_command("RG.DUMPREGISTRATIONS") == []
        assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: 'ran').run()") == [["ran"], []]
    finally:
        unregister_all(r)
    assert_alive(r, server)


def test_commands_of_a_keys_reader_may_not_be_gearshift_commands(r, server):
    script = "GB().register(prefix='k*', commands=['rg.triggeronkey'], mode='sync')"
    with pytest.raises(redis.ResponseError, match="Can not hook a Gearshift command"):
        pyexecute(r, script)
    assert r.execute_command("RG.DUMPREGISTRATIONS") == []
    assert_alive(r, server)


def test_gearshifts_own_calls_do_not_go_through_user_hooks(r, server):
    # Registering a hook asks COMMAND INFO itself: that call is Gearshift's, not a user's,
    # and reached the hook on COMMAND with no ACL user (redis-server died on a NULL user).
    pyexecute(r, "GB('CommandReader').map(lambda x: 'hijacked')"
                 ".register(hook='command', mode='sync')")  # fmt: skip
    try:
        assert pyexecute(r, "GB('CommandReader').map(lambda x: call_next(*x[1:]))"
                            ".register(hook='get', mode='sync')") == "OK"  # fmt: skip
        r.set("k", "v")
        assert r.get("k") == "v"
    finally:
        unregister_all(r)
    assert_alive(r, server)


@pytest.mark.parametrize("hooked", ["acl", "config"])
def test_hooks_on_commands_gearshift_calls_itself_change_nothing(r, server, hooked):
    # Gearshift asks ACL GETUSER (the Redis 7.0 category check of RG.PYEXECUTE) and
    # CONFIG GET maxmemory itself: a user's hook on those commands must not answer them
    # (redis-server died on the NULL user of Gearshift's own call, or the check was skipped).
    r.execute_command("ACL", "SETUSER", "nocode", "reset", "on", ">pw", "~*", "&*",
                      "+@all", "-@dangerous")  # fmt: skip
    r.config_set("maxmemory", "1gb")
    pyexecute(r, "GB('CommandReader').map(lambda x: 'hijacked')"
                 f".register(hook={hooked!r}, mode='sync')")  # fmt: skip
    u = redis.Redis(host="127.0.0.1", port=server.port, username="nocode", password="pw",
                    socket_timeout=30)  # fmt: skip
    try:
        assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: 'ran').run()") == [["ran"], []]
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.execute_command("RG.PYEXECUTE", "GB('ShardsIDReader').run()")
    finally:
        u.close()
        unregister_all(r)
        r.execute_command("ACL", "DELUSER", "nocode")
        r.config_set("maxmemory", "0")
    assert_alive(r, server)


@pytest.mark.parametrize("command_hooked", [False, True])
def test_a_hooked_command_the_client_may_not_run_is_refused(r, server, command_hooked):
    # A hooked SET that no hook takes runs as its client, who may not SET. Gearshift asks
    # Redis for the refusal's text by calling SET again as that user: that call must not
    # travel as RG.TRIGGER (which the user may run) and so run SET unchecked; and the
    # COMMAND INFO that names the command must not reach a user's hook on COMMAND.
    r.execute_command("ACL", "SETUSER", "noset", "reset", "on", ">pw", "~*", "&*",
                      "+@all", "-set")  # fmt: skip
    if command_hooked:
        pyexecute(r, "GB('CommandReader').map(lambda x: 'hijacked')"
                     ".register(hook='command', mode='sync')")  # fmt: skip
    pyexecute(r, "GB('CommandReader').map(lambda x: call_next(*x[1:]))"
                 ".register(hook='set', keyprefix='zz', mode='sync')")  # fmt: skip
    u = redis.Redis(host="127.0.0.1", port=server.port, username="noset", password="pw",
                    socket_timeout=30)  # fmt: skip
    try:
        with pytest.raises(redis.exceptions.NoPermissionError, match="'set' command"):
            u.execute_command("SET", "a", "b")
        assert r.get("a") is None
    finally:
        u.close()
        unregister_all(r)
        r.execute_command("ACL", "DELUSER", "noset")
    assert_alive(r, server)
