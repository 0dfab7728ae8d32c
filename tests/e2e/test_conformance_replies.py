"""Conformance sweep (issue #11): reply layouts and error texts checked from outside against
REFERENCE.md, where Gearshift differed from RedisGears 1.2.

- RG.GETEXECUTION has exactly 1.2's fields unless `ExecutionProgress 1` (redgrease maps every
  field to a name of its own and fails on any extra one);
- `INFO rg`'s `regisrations` section names each registration's real reader and lists
  StreamReader registrations too;
- a bad `register()` argument fails with 1.2's single error, not a chained `TypeError`;
- RG.DUMPREGISTRATIONS lists a CommandReader hook with CommandReader args, not KeysReader ones;
- `INFO rg` has 1.2's `python_requirements` and `python_sessions` sections.
"""

import pytest
import redis
from conftest import fresh_server, pyexecute, unregister_all, wait_for
from test_clients import client_venv, run_py, server_cloudpickle

PLAN_FIELDS = ["status", "shards_received", "shards_completed", "results", "errors",
               "total_duration", "read_duration", "steps"]  # fmt: skip
STEP_FIELDS = ["type", "duration", "name", "arg"]


def plan_of(c, eid):
    (shard,) = c.execute_command("RG.GETEXECUTION", eid, "SHARD")
    return shard[3]


def finished_run(c):
    eid = pyexecute(c, "GB('ShardsIDReader').map(lambda x: x).run()", "UNBLOCKING")
    c.execute_command("RG.GETRESULTSBLOCKING", eid)
    return eid


def test_getexecution_has_exactly_1_2_fields_by_default(r):
    plan = plan_of(r, finished_run(r))
    assert plan[0::2] == PLAN_FIELDS
    assert all(s[0::2] == STEP_FIELDS for s in plan[15])


def test_getexecution_progress_fields_with_execution_progress(r):
    assert r.execute_command("RG.CONFIGGET", "ExecutionProgress") == [0]
    assert r.execute_command("RG.CONFIGSET", "ExecutionProgress", "1") == ["OK"]
    try:
        plan = plan_of(r, finished_run(r))
        assert plan[0:16:2] == PLAN_FIELDS and plan[16:] == ["records_read", 1]
        assert all(s[8::2] == ["records_in", "records_out"] for s in plan[15])
        assert r.config_get("rg.execution-progress") == {"rg.execution-progress": "1"}
    finally:
        r.execute_command("RG.CONFIGSET", "ExecutionProgress", "0")
    assert plan_of(r, finished_run(r))[16:] == []


REDGREASE_GETEXECUTION = '''
import redgrease, time
r = redgrease.RedisGears(port={port})
eid = r.gears.pyexecute("GB('ShardsIDReader').run()", unblocking=True).value
r.gears.getresultsblocking(eid)
plan = r.gears.getexecution(eid)
print([(str(p.status), [s.type for s in p.steps]) for p in plan.values()])
'''


def test_redgrease_getexecution_parses_the_reply():
    with fresh_server() as s:
        venv = client_venv('redgrease', 'redgrease[client]', f'--no-deps cloudpickle=={server_cloudpickle(s.client())}')
        p = run_py(venv, REDGREASE_GETEXECUTION.format(port=s.port))
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.strip() == "[('done', ['collect', 'map'])]"


def info_registrations(r):
    info = r.execute_command("INFO", "rg")
    return {k[3:]: v for k, v in info.items() if k.startswith("rg_0000")}


def test_info_names_every_registrations_reader(r):
    pyexecute(r, "GB().register(prefix='k*')")
    pyexecute(r, "GB('CommandReader').register(trigger='t1')")
    pyexecute(r, "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='sync')")
    pyexecute(r, "GB('StreamReader').register(prefix='s*')")
    try:
        regs = {row[1]: row[3] for row in r.execute_command("RG.DUMPREGISTRATIONS")}
        info = info_registrations(r)
        assert {k: v["reader"] for k, v in info.items()} == regs
        by_reader = {v["reader"]: v for v in info.values() if v.get("trigger") != "hset"}
        assert by_reader["KeysReader"]["regex"] == "k*"
        assert by_reader["CommandReader"]["trigger"] == "t1"
        assert by_reader["StreamReader"]["stream"] == "s*"
        assert by_reader["StreamReader"]["mode"] == "async"
        assert [v for v in info.values() if v.get("trigger") == "hset"][0]["mode"] == "sync"
        r.execute_command("RG.TRIGGER", "t1")
        assert wait_for(lambda: info_registrations(r) and [
            v for v in info_registrations(r).values() if v.get("trigger") == "t1"][0]["numTriggered"] == 1)
    finally:
        unregister_all(r)


@pytest.mark.parametrize("kwarg, text", [
    ("eventTypes=1", "given eventTypes is not iterable"),
    ("keyTypes=1", "given keyTypes is not iterable"),
    ("commands=1", "given commands is not iterable"),
])  # fmt: skip
def test_not_iterable_register_argument_is_one_error(r, kwarg, text):
    with pytest.raises(Exception) as err:
        pyexecute(r, f"GB().register({kwarg})")
    assert f"gears.error: {text}" in str(err.value)
    assert "During handling" not in str(err.value) and "TypeError" not in str(err.value)


def test_dumpregistrations_lists_a_hook_like_a_trigger(r):
    # REFERENCE §1.3: CommandReader args = [trigger, <trigger name or hooked command>, inorder, 0|1].
    pyexecute(r, "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', keyprefix='p', mode='sync')")
    try:
        (reg,) = r.execute_command("RG.DUMPREGISTRATIONS")
        assert reg[3] == "CommandReader" and len(reg[7]) == 20
        assert reg[7][-1] == ["trigger", "hset", "inorder", 0]
    finally:
        unregister_all(r)



def test_info_has_the_python_requirements_and_sessions_sections(r):
    # REFERENCE §10: INFO rg has `rg_python_requirements` and `rg_python_sessions` sections.
    pyexecute(r, "GB().register(prefix='x')", "ID", "infosess", "DESCRIPTION", "a, b=c")
    kw = r.connection_pool.connection_kwargs
    raw = redis.Redis(host=kw["host"], port=kw["port"], decode_responses=True, socket_timeout=30)
    raw.set_response_callback("INFO", lambda resp, **kw: resp)
    try:
        text = raw.execute_command("INFO", "rg")
        assert "# rg_python_requirements\r\n" in text and "# rg_python_sessions\r\n" in text
        # As 1.2: the session's description string, its text as given (line breaks aside).
        [line] = [ln for ln in text.splitlines() if ln.startswith("rg_infosess:")]
        assert line.startswith("rg_infosess:{'sessionName':'infosess', 'sessionDescription':'a, b=c', "
                               "'refCount': 1, 'linkedTo': primary, 'dead': false, ")  # fmt: skip
    finally:
        raw.close()
        unregister_all(r)
