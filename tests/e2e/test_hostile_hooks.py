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
