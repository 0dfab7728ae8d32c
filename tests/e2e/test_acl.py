"""User code obeys ACLs (docs/security.md, "ACL"): execute() and readers run as the ACL user of
the client that started the code (RG.PYEXECUTE's caller; the registering user for whatever
a registration runs), and `ExecuteAsSuperuser 1` restores 1.2, which ignored ACLs."""

import time

import pytest
import redis

from conftest import fresh_server, wait_for

NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"


def noperm_cmd(name):
    return f"NOPERM this user has no permissions to run the '{name}' command"


def as_user(srv, name):
    return redis.Redis(host="127.0.0.1", port=srv.port, username=name, password="pw",
                       decode_responses=True, socket_timeout=30)


def pyexec(c, script, *args):
    return c.execute_command("RG.PYEXECUTE", script, *args)


def reg_stats(admin, i=0):
    data = admin.execute_command("RG.DUMPREGISTRATIONS")[i][7]
    return dict(zip(data[0::2], data[1::2]))


@pytest.fixture(scope="module")
def srv():
    with fresh_server() as s:
        yield s


@pytest.fixture
def admin(srv):
    """The default (unrestricted) user, with a restricted `u` (keys `allowed:*`, every
    command but CONFIG and ACL) and a narrow `g` (only RG.PYEXECUTE and GET)."""
    if not srv.alive():
        srv.restart()
    c = srv.client()
    c.flushall()
    for reg in c.execute_command("RG.DUMPREGISTRATIONS"):
        c.execute_command("RG.UNREGISTER", reg[1])
    c.execute_command("RG.CONFIGSET", "ExecuteAsSuperuser", "0")
    c.execute_command("ACL", "SETUSER", "u", "reset", "on", ">pw", "~allowed:*", "+@all",
                      "-config", "-acl")
    c.execute_command("ACL", "SETUSER", "g", "reset", "on", ">pw", "~*", "+rg.pyexecute", "+get")
    c.set("secret:1", "s1")
    c.set("allowed:1", "a1")
    yield c
    c.execute_command("RG.CONFIGSET", "ExecuteAsSuperuser", "0")
    c.close()


def error_of(c, script):
    with pytest.raises(redis.ResponseError) as e:
        pyexec(c, script)
    return str(e.value)


def test_execute_write_on_a_forbidden_key_is_refused(srv, admin):
    u = as_user(srv, "u")
    assert NOPERM_KEY in error_of(u, "execute('SET', 'secret:1', 'x')")
    assert admin.get("secret:1") == "s1"
    assert pyexec(u, "execute('SET', 'allowed:2', 'x')") == "OK"
    assert admin.get("allowed:2") == "x"


def test_keysreader_does_not_read_what_the_user_may_not(srv, admin):
    u = as_user(srv, "u")
    for pattern in ("*", "secret:*", "secret:1"):
        out = pyexec(u, f"GB().map(lambda x: x['key'] + '=' + str(x['value'])).run('{pattern}')")
        assert all("secret" not in str(r) for r in out[0]), (pattern, out)
    assert pyexec(u, "GB().map(lambda x: x['value']).run('allowed:*')")[0] == ["a1"]
    keys = pyexec(u, "GB('KeysOnlyReader').run()")[0]
    assert keys == ["allowed:1"]
    exact = pyexec(u, "GB().map(lambda x: x['value']).run('secret:1', noScan=True)")[0]
    assert exact == []
    # The unrestricted default user still sees everything.
    assert sorted(pyexec(admin, "GB().map(lambda x: x['key']).run()")[0]) == [
        "allowed:1", "secret:1"]


def test_read_only_access_to_every_key(srv, admin):
    # `%R~*` reads every key (the reader's no-check path) but writes none; a selector
    # granting `~*` is honoured key by key.
    admin.execute_command("ACL", "SETUSER", "ro", "reset", "on", ">pw", "%R~*", "+@all",
                          "-config", "-acl")
    admin.execute_command("ACL", "SETUSER", "sel", "reset", "on", ">pw", "~allowed:*", "+@all",
                          "(%R~secret:* +get)")
    ro = as_user(srv, "ro")
    assert sorted(pyexec(ro, "GB().map(lambda x: x['value']).run()")[0]) == ["a1", "s1"]
    assert NOPERM_KEY in error_of(ro, "execute('SET', 'allowed:1', 'x')")
    sel = as_user(srv, "sel")
    assert sorted(pyexec(sel, "GB().map(lambda x: x['value']).run()")[0]) == ["a1", "s1"]
    assert NOPERM_KEY in error_of(sel, "execute('SET', 'secret:1', 'x')")


def test_config_get_is_refused_without_config_permission(srv, admin):
    u = as_user(srv, "u")
    assert noperm_cmd("config|get") in error_of(u, "execute('CONFIG', 'GET', 'dir')")
    out = pyexec(admin, "GB('ShardsIDReader').map(lambda x: execute('CONFIG', 'GET', 'dir')[0]).run()")
    assert out[0] == ["dir"]


def test_acl_setuser_self_escalation_is_refused(srv, admin):
    u = as_user(srv, "u")
    err = error_of(u, "execute('ACL', 'SETUSER', 'u', '~*', '+@all')")
    # ACL is not allowed in scripts: execute() refuses it before any ACL check (as Lua).
    assert "ERR command 'acl|setuser' is not allowed on script mode" in err
    assert "~allowed:*" in str(admin.acl_getuser("u")["keys"])
    with pytest.raises(redis.ResponseError, match="no permissions"):
        u.get("secret:1")


def test_a_user_with_only_pyexecute_and_get(srv, admin):
    g = as_user(srv, "g")
    assert noperm_cmd("set") in error_of(g, "execute('SET', 'secret:1', 'x')")
    assert noperm_cmd("config|get") in error_of(g, "execute('CONFIG', 'GET', 'dir')")
    assert "'acl|setuser' is not allowed on script mode" in error_of(
        g, "execute('ACL', 'SETUSER', 'g', '+@all')")
    assert "'eval' is not allowed on script mode" in error_of(g, "execute('EVAL', \"return 1\", '0')")
    out = pyexec(g, "GB('ShardsIDReader').map(lambda x: execute('GET', 'secret:1')).run()")
    assert out[0] == ["s1"]
    assert admin.get("secret:1") == "s1"


def test_eval_through_execute_is_refused_as_lua_refuses_it(srv, admin):
    # execute() runs in script mode: a Lua script cannot be started from user code (as
    # from Lua itself), so it cannot run one unrestricted either.
    for c in (as_user(srv, "u"), admin):
        err = error_of(c, "execute('EVAL', \"return redis.call('SET', 'secret:1', 'x')\", '0')")
        assert "ERR command 'eval' is not allowed on script mode" in err
    assert admin.get("secret:1") == "s1"


def test_async_callbacks_run_as_the_user(srv, admin):
    u = as_user(srv, "u")
    script = """
async def grab(x):
    return execute('GET', 'secret:1')
GB('ShardsIDReader').map(grab).run()
"""
    out = pyexec(u, script)
    assert out[0] == [] and NOPERM_KEY in str(out[1])


def test_registration_runs_as_its_user_also_after_reload(srv, admin):
    u = as_user(srv, "u")
    script = ("GB().foreach(lambda x: execute('SET', 'secret:copy', x['value']))"
              ".register(prefix='allowed:*', mode='sync')")
    assert pyexec(u, script) == "OK"
    for round_ in range(2):
        admin.set("allowed:ev", "v")
        stats = reg_stats(admin)
        assert stats["numTriggered"] == 1  # a reload rebuilds the registration
        assert NOPERM_KEY in stats["lastError"]
        assert admin.get("secret:copy") is None
        if round_ == 0:
            assert admin.execute_command("DEBUG", "RELOAD") == "OK"


def test_async_registration_runs_as_its_user(srv, admin):
    u = as_user(srv, "u")
    script = ("GB().foreach(lambda x: execute('SET', 'secret:copy', x['value']))"
              ".register(prefix='allowed:*')")
    assert pyexec(u, script) == "OK"
    admin.set("allowed:ev", "v")
    assert wait_for(lambda: reg_stats(admin)["numFailures"] == 1)
    assert NOPERM_KEY in reg_stats(admin)["lastError"]
    assert admin.get("secret:copy") is None


def test_users_do_not_carry_over_between_calls_on_a_worker(srv, admin):
    """Workers lock on a context of their own, kept between calls (issue #13): the user
    one registration's call ran as is gone before the next call, whoever made it."""
    u = as_user(srv, "u")
    assert pyexec(u, "GB().foreach(lambda x: execute('SET', 'secret:u', '1'))"
                     ".register(prefix='allowed:*')") == "OK"
    assert pyexec(admin, "GB().foreach(lambda x: execute('INCR', 'secret:count'))"
                         ".register(prefix='allowed:*')") == "OK"
    for i in range(60):
        admin.set(f"allowed:{i}", i)

    def outcomes():
        regs = admin.execute_command("RG.DUMPREGISTRATIONS")
        stats = [reg_stats(admin, i) for i in range(len(regs))]
        return sorted((st["numSuccess"], st["numFailures"]) for st in stats)

    assert wait_for(lambda: outcomes() == [(0, 60), (60, 0)]), outcomes()
    assert admin.get("secret:count") == "60"
    assert admin.get("secret:u") is None


def test_registration_does_not_fire_for_keys_its_user_may_not_read(srv, admin):
    u = as_user(srv, "u")
    assert pyexec(u, "GB().foreach(lambda x: execute('SET', 'allowed:seen', x['value']))"
                     ".register(mode='sync')") == "OK"
    admin.set("secret:2", "hidden")
    assert reg_stats(admin)["numTriggered"] == 0
    assert admin.get("allowed:seen") is None  # (a keymiss event it may read: it fires)
    admin.set("allowed:3", "shown")
    assert admin.get("allowed:seen") == "shown"


def test_a_registration_follows_acl_changes_made_after_it(srv, admin):
    # Gearshift caches "its user may read every key" per registration: an ACL change
    # (ACL SETUSER, also inside MULTI) must end that at once.
    admin.execute_command("ACL", "SETUSER", "w", "reset", "on", ">pw", "~*", "+@all")
    w = as_user(srv, "w")
    assert pyexec(w, "GB().foreach(lambda x: execute('INCR', 'fired')).register(mode='sync')") == "OK"
    admin.set("secret:a", "1")
    assert admin.get("fired") == "1"
    admin.execute_command("ACL", "SETUSER", "w", "resetkeys", "~fired")
    admin.set("secret:b", "1")
    assert admin.get("fired") == "1"
    admin.execute_command("ACL", "SETUSER", "w", "~*")
    admin.set("secret:c", "1")
    assert admin.get("fired") == "2"
    p = admin.pipeline(transaction=True)
    p.execute_command("ACL", "SETUSER", "w", "resetkeys", "~fired")
    p.set("secret:d", "1")
    p.execute()
    assert admin.get("fired") == "2"
    admin.execute_command("ACL", "DELUSER", "w")


def test_trigger_runs_as_the_registering_user_and_fails_once_it_is_deleted(srv, admin):
    u = as_user(srv, "u")
    script = ("GB('CommandReader').map(lambda x: execute('GET', x[1]))"
              ".register(trigger='peek', mode='sync')")
    assert pyexec(u, script) == "OK"
    # The default user triggers it, but it runs as u.
    with pytest.raises(redis.ResponseError, match=NOPERM_KEY[7:]):
        admin.execute_command("RG.TRIGGER", "peek", "secret:1")
    assert admin.execute_command("RG.TRIGGER", "peek", "allowed:1") == ["a1"]
    admin.execute_command("ACL", "DELUSER", "u")
    with pytest.raises(redis.ResponseError,
                       match="the ACL user 'u' this code runs as no longer exists"):
        admin.execute_command("RG.TRIGGER", "peek", "allowed:1")


def test_time_event_runs_as_its_user(srv, admin):
    u = as_user(srv, "u")
    script = """
def tick():
    execute('INCR', 'allowed:ticks')
    execute('SET', 'secret:te', 'x')
registerTE(1, tick)
"""
    assert pyexec(u, script) == "OK"
    assert wait_for(lambda: admin.get("allowed:ticks"), timeout=5)
    assert admin.get("secret:te") is None


def test_hooked_command_runs_with_the_clients_permissions(srv, admin):
    hook = ("GB('CommandReader').map(lambda x: call_next(*x[1:]))"
            ".register(hook='get', keyprefix='allowed:', mode='sync')")
    assert pyexec(admin, hook) == "OK"
    u = as_user(srv, "u")
    assert u.get("allowed:1") == "a1"
    with pytest.raises(redis.ResponseError, match="no permissions"):
        u.get("secret:1")  # no hook fires: the real GET, as u


def test_stream_registration_skips_streams_its_user_may_not_use(srv, admin):
    u = as_user(srv, "u")
    assert pyexec(u, "GB('StreamReader').foreach(lambda x: execute('INCR', 'allowed:n'))"
                     ".register(prefix='*', mode='sync')") == "OK"
    admin.xadd("secret:s", {"f": "v"})
    admin.xadd("allowed:s", {"f": "v"})
    assert admin.get("allowed:n") == "1"
    assert admin.xinfo_groups("secret:s") == []


def test_triggeronkey_checks_the_clients_key_permission(srv, admin):
    assert pyexec(admin, "GB('CommandReader').register(trigger='tk', mode='sync')") == "OK"
    u = as_user(srv, "u")
    with pytest.raises(redis.ResponseError, match="no permissions"):
        u.execute_command("RG.TRIGGERONKEY", "tk", "secret:1")


def test_superuser_config_restores_1_2(srv, admin):
    u = as_user(srv, "u")
    assert admin.execute_command("RG.CONFIGSET", "ExecuteAsSuperuser", "1") == ["OK"]
    assert pyexec(u, "execute('SET', 'secret:1', 'x')") == "OK"
    assert admin.get("secret:1") == "x"
    keys = pyexec(u, "GB().map(lambda x: x['key']).run()")[0]
    assert sorted(keys) == ["allowed:1", "secret:1"]
    out = pyexec(u, "GB('ShardsIDReader').map(lambda x: execute('CONFIG', 'GET', 'dir')[0]).run()")
    assert out[0] == ["dir"]
    assert admin.config_get("rg.execute-as-superuser") == {"rg.execute-as-superuser": "1"}


def test_superuser_config_as_module_argument():
    with fresh_server(ExecuteAsSuperuser=1) as s:
        c = s.client()
        c.execute_command("ACL", "SETUSER", "u", "on", ">pw", "~allowed:*", "+@all")
        assert pyexec(as_user(s, "u"), "execute('SET', 'secret:1', 'x')") == "OK"
        assert c.get("secret:1") == "x"
        assert c.config_get("rg.execute-as-superuser") == {"rg.execute-as-superuser": "1"}
        c.execute_command("RG.CONFIGSET", "ExecuteAsSuperuser", "0")
        with pytest.raises(redis.ResponseError, match="no permissions"):
            pyexec(as_user(s, "u"), "execute('SET', 'secret:1', 'y')")



def test_async_execute_follows_a_user_deleted_and_made_again(srv, admin):
    # execute() keeps the user it last ran as on each thread until an ACL change: a user
    # deleted (its memory freed) and made again must be run as the new one.
    admin.execute_command("ACL", "SETUSER", "w", "reset", "on", ">pw", "~*", "+@all")
    w = as_user(srv, "w")
    script = "GB().foreach(lambda x: execute('SET', 'out:' + x['key'], '1')).register('in:*')"
    assert pyexec(w, script) == "OK"
    admin.set("in:1", "x")
    assert wait_for(lambda: admin.get("out:in:1"), timeout=10)
    admin.execute_command("ACL", "DELUSER", "w")
    admin.execute_command("ACL", "SETUSER", "w", "reset", "on", ">pw", "~in:*", "+@all")
    admin.set("in:2", "x")
    assert wait_for(lambda: reg_stats(admin)["numFailures"] == 1, timeout=10)
    assert "NOPERM" in reg_stats(admin)["lastError"]
    assert admin.get("out:in:2") is None
    admin.execute_command("ACL", "DELUSER", "w")
    admin.set("in:3", "x")  # a user that is gone: its registration no longer fires
    time.sleep(0.3)
    assert reg_stats(admin)["numTriggered"] == 2 and srv.alive()
