"""Outside conformance sweep (2026-12-03): behaviours of RedisGears 1.2 (REFERENCE.md §1-§11)
that still differed when probed from outside with redis-py and 1.2's clients.

- RG.DUMPREGISTRATIONS lists a KeysReader's `commands=[...]` under `hookCommands` (§1.3);
- a non-sync trigger refused inside MULTI/Lua starts nothing, so it is not counted in
  `numTriggered` (§1.1 RG.CLEARREGISTRATIONSSTATS: numTriggered = finished + in flight);
- KeysReader records are dicts even when no Python step sees them: `GB().run(convertToStr=False)`
  replies `PY RECORD` per key (§10), not the key name, and an awaited nested run gives the dicts;
- `avgRunDurationMS`/`avgEstimatedLagMS` are doubles (§1.3): Redis prints them, a bulk in RESP2
  (`%.17g` on Redis 7.0) and a double in RESP3 (redis-py 8 speaks RESP3 by default);
- `avg(extractor)` with an `async def` extractor awaits it, as 1.2's map step does (§3: avg is
  map(extractor) + aggregate);
- RG.ABORTEXECUTION, RG.PAUSEREGISTRATIONS and RG.UNPAUSEREGISTRATIONS take an execution id, as
  the internal gear 1.2 runs them with does (§1.1, §7), even when they fail.
"""

import redis
from conftest import pyexecute, unregister_all, wait_for


def reg_data(c, reg_id):
    (entry,) = [e for e in c.execute_command("RG.DUMPREGISTRATIONS") if e[1] == reg_id]
    data = entry[7]
    return dict(zip(data[0::2], data[1::2]))


def test_dumpregistrations_lists_hooked_commands(r):
    try:
        pyexecute(r, "GB().register('k*', commands=['get', 'set'])")
        pyexecute(r, "GB().register('j*', eventTypes=['del'])")
        args = {e[7][-1][1]: e[7][-1] for e in r.execute_command("RG.DUMPREGISTRATIONS")}
        assert args["k*"] == ["regex", "k*", "eventTypes", None, "keyTypes", None,
                              "hookCommands", ["get", "set"]]  # fmt: skip
        assert args["j*"] == ["regex", "j*", "eventTypes", ["del"], "keyTypes", None,
                              "hookCommands", None]  # fmt: skip
    finally:
        unregister_all(r)


def test_trigger_refused_in_multi_or_lua_is_not_counted(r):
    try:
        pyexecute(r, "GB('CommandReader').map(lambda x: len(x)).register(trigger='t')")
        reg_id = r.execute_command("RG.DUMPREGISTRATIONS")[0][1]
        assert r.execute_command("RG.TRIGGER", "t", "a") == ["2"]
        pipe = r.pipeline(transaction=True)
        pipe.execute_command("RG.TRIGGER", "t", "a")
        (refused,) = pipe.execute(raise_on_error=False)
        assert "can not run a non-sync execution" in str(refused)
        try:
            r.eval("return redis.call('RG.TRIGGER', 't', 'x')", 0)
            raise AssertionError("a non-sync trigger ran inside Lua")
        except redis.ResponseError as e:
            assert "can not run a non-sync execution" in str(e)
        data = reg_data(r, reg_id)
        assert (data["numTriggered"], data["numSuccess"], data["numFailures"]) == (1, 1, 0)
        assert r.execute_command("RG.CLEARREGISTRATIONSSTATS") == "OK"
        assert reg_data(r, reg_id)["numTriggered"] == 0
    finally:
        unregister_all(r)


def test_keysreader_records_without_python_steps_are_dicts(r):
    r.set("k1", "1")
    for flow in ("GB()", "GB().limit(1)", "GB().collect()"):
        assert pyexecute(r, f"{flow}.run('k1', convertToStr=False)") == [["PY RECORD"], []]
    no_values = "GB().run('k1', convertToStr=False, readValue=False)"
    assert pyexecute(r, no_values) == [["PY RECORD"], []]
    # KeysOnlyReader's records are the key names themselves.
    assert pyexecute(r, "GB('KeysOnlyReader').run(convertToStr=False)") == [["k1"], []]
    nested = ("async def f(x):\n"
              "    return repr(await GB().run('k1', convertToStr=False))\n"
              "GB('ShardsIDReader').map(f).run()")  # fmt: skip
    (res,), errors = pyexecute(r, nested)
    assert errors == []
    assert res == repr([[{"key": "k1", "value": "1", "type": "string", "event": None}], []])
    # A registration's runs too.
    try:
        pyexecute(r, "GB().limit(1).register('nr*', convertToStr=False, mode='async_local')")
        r.set("nr1", "1")
        assert wait_for(lambda: any(e[5] == 1 for e in r.execute_command("RG.DUMPEXECUTIONS")))
        (eid,) = [e[1] for e in r.execute_command("RG.DUMPEXECUTIONS") if e[5] == 1]
        assert r.execute_command("RG.GETRESULTSBLOCKING", eid) == [["PY RECORD"], []]
    finally:
        unregister_all(r)


def test_registration_averages_are_doubles(r):
    port = r.connection_pool.connection_kwargs["port"]
    try:
        pyexecute(r, "GB('CommandReader').register(trigger='avg')")
        pyexecute(r, "GB('StreamReader').register('avgstream')")
        ids = {e[7][-1][1] if e[3] == "CommandReader" else "stream": e[1]
               for e in r.execute_command("RG.DUMPREGISTRATIONS")}  # fmt: skip
        r.execute_command("RG.TRIGGER", "avg")
        for proto, zero in ((2, "0"), (3, 0.0)):
            c = redis.Redis(port=port, protocol=proto, decode_responses=True, socket_timeout=30)
            try:
                avg = reg_data(c, ids["avg"])["avgRunDurationMS"]
                assert type(avg) is type(zero) and float(avg) >= 0
                lag = reg_data(c, ids["stream"])["avgEstimatedLagMS"]
                assert type(lag) is type(zero) and lag == zero
            finally:
                c.close()
    finally:
        unregister_all(r)


def test_avg_awaits_an_async_extractor(r):
    for i in range(4):
        r.set(f"a{i}", i)
    script = "async def e(x):\n    return int(x['value'])\nGB().avg(e).run()"
    assert pyexecute(r, script) == [["1.5"], []]
    assert pyexecute(r, script.replace("run()", "run('nomatch*')")) == [[], []]


def test_abort_and_pause_take_an_execution_id(r):
    def run_id():
        eid = pyexecute(r, "GB('ShardsIDReader').run()", "UNBLOCKING")
        r.execute_command("RG.GETRESULTSBLOCKING", eid)
        return int(eid.rsplit("-", 1)[1])

    try:
        first = run_id()
        assert r.execute_command("RG.ABORTEXECUTION", f"{'0' * 40}-{first}") == "OK"
        assert run_id() == first + 2
        try:
            r.execute_command("RG.ABORTEXECUTION", "nosuch")
            raise AssertionError("aborting an unknown execution succeeded")
        except redis.ResponseError as e:
            assert str(e) == "execution does not exist"
        assert run_id() == first + 4
        pyexecute(r, "GB('StreamReader').register('idstream')")  # the install takes one too
        reg_id = r.execute_command("RG.DUMPREGISTRATIONS")[0][1]
        assert r.execute_command("RG.PAUSEREGISTRATIONS", reg_id) == "OK"
        assert r.execute_command("RG.UNPAUSEREGISTRATIONS", reg_id) == "OK"
        assert run_id() == first + 8
    finally:
        unregister_all(r)
