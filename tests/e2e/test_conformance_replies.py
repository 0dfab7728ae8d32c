"""Conformance sweep (issue #11): reply layouts and error texts checked from outside against
REFERENCE.md, where Gearshift differed from RedisGears 1.2.

- RG.GETEXECUTION has exactly 1.2's fields unless `ExecutionProgress 1` (redgrease maps every
  field to a name of its own and fails on any extra one);
"""

import pytest
from conftest import fresh_server, pyexecute
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
