"""An outsider's probe of StreamReader registrations (REFERENCE §2.2, §4, §12.4).

Each test states one behaviour a RedisGears 1.2 user relies on, or a hostile version of it
(bad arguments, the stream deleted, re-typed or trimmed by the user, the group made by the
user first); test_streams.py and test_streams_conformance.py hold the rest.
"""

import pytest
import redis

from conftest import assert_alive, fresh_server, holds_for, pyexecute, steady, unregister_all, wait_for


@pytest.fixture
def rs(r):
    yield r
    unregister_all(r)
    # A batch still running holds an execution thread: the next test must not queue behind it.
    wait_for(lambda: not {e[3] for e in r.execute_command("RG.DUMPEXECUTIONS")} & {"created", "running"}, timeout=10)
    for e in r.execute_command("RG.DUMPEXECUTIONS"):
        try:
            r.execute_command("RG.DROPEXECUTION", e[1])
        except redis.ResponseError:
            pass


def regs(r):
    return [x for x in r.execute_command("RG.DUMPREGISTRATIONS") if x[3] == "StreamReader"]


def data(reg):
    d = reg[7]
    return dict(zip(d[0::2], d[1::2]))


def reg_data(r, i=0):
    return data(regs(r)[i])


def reg_id(r, i=0):
    return regs(r)[i][1]


def counts(r):
    d = reg_data(r)
    return d["numTriggered"], d["numSuccess"], d["numFailures"], d["numAborted"]


# ---- what 1.2 users write ---------------------------------------------------------------------


def test_sync_registration_reads_a_stream_that_existed_before_it(rs):
    rs.xadd("pre", {"foo": "bar"})
    assert pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('SET', 'prex', '1')).register(mode='sync')") == "OK"
    assert wait_for(lambda: rs.get("prex") == "1")


def test_one_builder_registered_on_two_prefixes(rs):
    script = (
        "gb = GB('StreamReader').foreach(lambda x: execute('HSET', '{%s}_h' % x['key'], *sum([[k, v] for k, v in x['value'].items()], [])))\n"
        "gb.register(prefix='foo', mode='sync')\n"
        "gb.register(prefix='bar', mode='sync')\n"
    )
    assert pyexecute(rs, script) == "OK"
    assert len(regs(rs)) == 2
    rs.xadd("foo", {"x": "1"})
    rs.xadd("bar", {"x": "2"})
    assert rs.hgetall("{foo}_h") == {"x": "1"}
    assert rs.hgetall("{bar}_h") == {"x": "2"}


def test_registration_data_layout_and_durations(rs):
    pyexecute(rs, "import time\nGB('StreamReader').foreach(lambda x: time.sleep(0.01)).register(mode='sync')")
    rs.xadd("lay", {"foo": "bar"})
    reg = regs(rs)[0]
    assert len(reg[7]) == 26
    assert reg[7][0::2] == [
        "mode", "numTriggered", "numSuccess", "numFailures", "numAborted", "lastRunDurationMS",
        "totalRunDurationMS", "avgRunDurationMS", "lastEstimatedLagMS", "avgEstimatedLagMS",
        "lastError", "args", "status"]  # fmt: skip
    d = data(reg)
    assert d["args"] == ["batchSize", 1, "durationMS", 0, "stream", "*", "trimStream", 1,
                         "onFailedPolicy", "continue", "retryInterval", 1]  # fmt: skip
    assert d["numSuccess"] >= 1 and d["totalRunDurationMS"] >= 10
    assert d["status"] == "OK"


def test_abort_policy_in_async_local_mode_shows_aborted_last(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda r: blalala).register(regex='sab', mode='async_local', onFailedPolicy='abort')")
    for _ in range(3):
        rs.xadd("sab", {"foo": "bar"})
    assert wait_for(lambda: regs(rs)[0][7][25] == "ABORTED")
    assert "blalala" in reg_data(rs)["lastError"]
    assert rs.xlen("sab") == 3, "an aborted registration acks and trims nothing"


@pytest.mark.parametrize("given, shown", [("ABORT", "abort"), ("Retry", "retry"), ("CONTINUE", "continue")])
def test_failed_policy_is_case_insensitive(rs, given, shown):
    assert pyexecute(rs, f"GB('StreamReader').register('ci', onFailedPolicy='{given}')") == "OK"
    assert reg_data(rs)["args"][9] == shown


def test_trim_stream_per_registration(rs):
    pyexecute(rs, "GB('StreamReader').register('s1{06S}', mode='async_local')")
    pyexecute(rs, "GB('StreamReader').register('s2{06S}', mode='async_local', trimStream=False)")
    rs.xadd("s2{06S}", {"foo": "bar"})
    rs.xadd("s1{06S}", {"foo": "bar"})
    assert wait_for(lambda: rs.xlen("s1{06S}") == 0)
    assert wait_for(lambda: all(d["numSuccess"] >= 1 for d in map(data, regs(rs))))
    assert rs.xlen("s2{06S}") == 1


def test_pause_and_unpause_a_sync_registration(rs):
    script = (
        "regId = GB('StreamReader').foreach(lambda x: execute('INCR', 'counter{%s}' % x['key'])).register(mode='sync')\n"
        "GB('CommandReader').map(lambda x: regId).register(mode='sync', trigger='get_reg_id')\n"
    )
    pyexecute(rs, script)
    reg = rs.execute_command("RG.TRIGGER", "get_reg_id")[0]
    rs.xadd("x", {"foo": "bar"})
    rs.xadd("y", {"foo": "bar"})
    assert (rs.get("counter{x}"), rs.get("counter{y}")) == ("1", "1")
    assert rs.execute_command("RG.PAUSEREGISTRATIONS", reg) == "OK"
    rs.xadd("x", {"foo": "bar"})
    rs.xadd("y", {"foo": "bar"})
    assert (rs.get("counter{x}"), rs.get("counter{y}")) == ("1", "1")
    assert rs.execute_command("RG.UNPAUSEREGISTRATIONS", reg) == "OK"
    assert wait_for(lambda: (rs.get("counter{x}"), rs.get("counter{y}")) == ("2", "2"))


def test_flat_error_pause_without_raise_pauses_a_sync_registration(rs):
    script = (
        "def f(x):\n"
        "    if execute('GET', 'paused{%s}' % x['key']) == 'yes':\n"
        "        flat_error('PAUSE')\n"
        "    execute('INCR', 'counter{%s}' % x['key'])\n"
        "regId = GB('StreamReader').foreach(f).register(mode='sync')\n"
        "GB('CommandReader').map(lambda x: regId).register(mode='sync', trigger='get_reg_id')\n"
    )
    pyexecute(rs, script)
    reg = rs.execute_command("RG.TRIGGER", "get_reg_id")[0]
    rs.xadd("x", {"foo": "bar"})
    assert rs.get("counter{x}") == "1"
    rs.set("paused{x}", "yes")
    rs.xadd("x", {"foo": "bar"})
    assert rs.get("counter{x}") == "1"
    assert reg_data(rs)["status"] == "PAUSED"
    rs.set("paused{x}", "no")
    assert rs.execute_command("RG.UNPAUSEREGISTRATIONS", reg) == "OK"
    assert wait_for(lambda: rs.get("counter{x}") == "2")


@pytest.mark.parametrize("stop", ["RG.PAUSEREGISTRATIONS", "RG.UNREGISTER"])
def test_stopping_finishes_only_the_current_batch(rs, stop):
    script = (
        "import time\n"
        "regId = GB('StreamReader').foreach(lambda x: time.sleep(1)).register()\n"
        "GB('CommandReader').map(lambda x: regId).register(mode='sync', trigger='get_reg_id')\n"
    )
    pyexecute(rs, script)
    reg = rs.execute_command("RG.TRIGGER", "get_reg_id")[0]
    rs.xadd("s", {"foo": "bar"})
    rs.xadd("s", {"foo": "bar"})
    assert rs.execute_command(stop, reg) == "OK"
    assert wait_for(lambda: rs.xlen("s") == 1, timeout=5)
    assert holds_for(lambda: rs.xlen("s") == 1, 1.2), "the second entry is not consumed"


def test_unregister_with_a_pending_duration_timer(rs):
    script = (
        "regId = GB('StreamReader').map(lambda x: execute('INCR', 'counter')).register(prefix='s2*', batch=2, duration=1000)\n"
        "GB('CommandReader').map(lambda x: regId).register(mode='sync', trigger='get_reg_id')\n"
    )
    pyexecute(rs, script)
    reg = rs.execute_command("RG.TRIGGER", "get_reg_id")[0]
    for _ in range(3):
        rs.xadd("s2", {"foo": "bar"})
    assert rs.execute_command("RG.UNREGISTER", reg) == "OK"
    assert holds_for(lambda: rs.ping(), 1.2)
    assert_alive(rs)


def test_duration_with_repartition_on_a_standalone_server(rs):
    script = (
        "GB('StreamReader').repartition(lambda x: 'counter').map(lambda x: execute('INCR', 'counter')).register(prefix='s1*', batch=2, duration=1)\n"
        "GB('StreamReader').repartition(lambda x: 'counter').map(lambda x: execute('INCR', 'counter')).register(prefix='s2*', batch=2, duration=1000)\n"
    )
    pyexecute(rs, script)
    for _ in range(3):
        rs.xadd("s1", {"foo": "bar"})
    assert wait_for(lambda: rs.get("counter") == "3", timeout=2)
    for _ in range(3):
        rs.xadd("s2", {"foo": "bar"})
    assert wait_for(lambda: rs.get("counter") == "6", timeout=2)


def test_max_executions_per_registration_keeps_one():
    with fresh_server() as srv:
        c = srv.client()
        c.execute_command("RG.CONFIGSET", "MaxExecutionsPerRegistration", 1)
        pyexecute(c, "GB('StreamReader').register('s')")
        for _ in range(20):
            c.xadd("s", {"foo": "bar"})
        assert wait_for(lambda: len(c.execute_command("RG.DUMPEXECUTIONS")) == 1, timeout=3)


def test_unregister_abortpending_with_one_thread():
    # One execution per stream at a time: entries added while a batch runs make its next
    # batch when it ends (1.2 counts 5 triggers here, not one per entry).
    script = (
        "counter = 0\n"
        "def loop(r):\n"
        "    import time\n"
        "    global counter\n"
        "    counter += 1\n"
        "    while counter > 3 and execute('GET', 'stop') is None:\n"
        "        time.sleep(0.05)\n"
        "    return r\n"
        "GB('StreamReader').map(loop).register('s', mode='async_local', onFailedPolicy='abort')\n"
    )
    with fresh_server(ExecutionThreads=1) as srv:
        c = srv.client()
        pyexecute(c, script)
        c.xadd("s", {"foo": "bar"})
        assert wait_for(lambda: counts(c)[:2] == (2, 2), timeout=4)
        for _ in range(4):
            c.xadd("s", {"foo": "bar"})
        assert wait_for(lambda: counts(c)[:2] == (5, 4), timeout=4), counts(c)
        eid = pyexecute(c, "GB('KeysOnlyReader').run()", "UNBLOCKING")
        st = sorted(e[3] for e in c.execute_command("RG.DUMPEXECUTIONS"))
        assert st == ["created", "done", "done", "done", "done", "running"], st
        assert c.execute_command("RG.UNREGISTER", reg_id(c), "abortpending") == "OK"
        c.set("stop", 1)
        assert wait_for(lambda: [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS")] == [eid], timeout=4), \
            c.execute_command("RG.DUMPEXECUTIONS")
        assert wait_for(lambda: c.execute_command("RG.GETEXECUTION", eid)[0][3][1] == "done")


def test_flushall_while_a_batch_runs(rs):
    pyexecute(rs, "import time\nGB('StreamReader').foreach(lambda x: time.sleep(0.5)).register(prefix='fl')")
    rs.xadd("fl", {"foo": "bar"})
    assert wait_for(lambda: counts(rs)[0] >= 1)
    rs.flushall()
    assert wait_for(lambda: counts(rs)[0] == counts(rs)[1], timeout=5), counts(rs)
    assert_alive(rs)


def test_leftover_entries_are_processed_after_a_reload(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'NumOfElements')).register(regex='lv', batch=5)")
    for _ in range(5):
        rs.xadd("lv", {"foo": "bar"})
    assert wait_for(lambda: rs.get("NumOfElements") == "5", timeout=10)
    for _ in range(4):
        rs.xadd("lv", {"foo": "bar"})
    assert holds_for(lambda: rs.get("NumOfElements") == "5", 0.3), "4 < batch: no run yet"
    rs.execute_command("DEBUG", "RELOAD")
    assert wait_for(lambda: rs.get("NumOfElements") == "9", timeout=5)


def test_leftover_entries_are_processed_after_an_aof_restart():
    with fresh_server(server_args=["--appendonly", "yes"]) as srv:
        c = srv.client()
        pyexecute(c, "GB('StreamReader').repartition(lambda x: 'NumOfElements').foreach(lambda x: execute('INCR', 'NumOfElements')).register(regex='s', batch=5)")
        for _ in range(5):
            c.xadd("s", {"foo": "bar"})
        assert wait_for(lambda: c.get("NumOfElements") == "5", timeout=10)
        for _ in range(4):
            c.xadd("s", {"foo": "bar"})
        srv.restart()
        c = srv.client()
        assert wait_for(lambda: c.get("NumOfElements") == "9", timeout=5)


# ---- hostile ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", ["batch=0", "batch=-1", "duration=-1", "onFailedRetryInterval=0",
                                    "onFailedRetryInterval=-5", "batch=2**70", "duration=2**70"])  # fmt: skip
def test_odd_numbers_fail_cleanly_or_work(rs, kwargs):
    try:
        reply = pyexecute(rs, f"GB('StreamReader').foreach(lambda x: execute('INCR', 'oddn')).register('odd', {kwargs})")
    except redis.ResponseError as e:
        assert str(e), "an error with a message"
        assert regs(rs) == []
        assert_alive(rs)
        return
    assert reply == "OK"
    for i in range(3):
        rs.xadd("odd", {"i": i})
    assert wait_for(lambda: rs.get("oddn") == "3", timeout=5), (kwargs, rs.get("oddn"), reg_data(rs))
    assert_alive(rs)


def test_a_huge_batch_waits_for_duration(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'hn')).register('huge', batch=10**9, duration=50)")
    for i in range(200):
        rs.xadd("huge", {"i": i})
    assert wait_for(lambda: rs.get("hn") == "200")
    assert wait_for(lambda: rs.xlen("huge") == 0)


def test_a_huge_backlog_is_read_on_registration(rs):
    pipe = rs.pipeline(transaction=False)
    for i in range(5000):
        pipe.xadd("back", {"i": i})
    pipe.execute()
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'bn')).register('back')")
    assert wait_for(lambda: rs.get("bn") == "5000", timeout=30)
    assert wait_for(lambda: rs.xlen("back") == 0)


def test_stream_deleted_then_created_again(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'dn')).register('del')")
    rs.xadd("del", {"a": 1})
    assert wait_for(lambda: rs.get("dn") == "1")
    rs.delete("del")
    rs.xadd("del", {"a": 2})
    assert wait_for(lambda: rs.get("dn") == "2"), reg_data(rs)
    rs.xadd("del", {"a": 3})
    assert wait_for(lambda: rs.get("dn") == "3"), reg_data(rs)
    assert wait_for(lambda: rs.xlen("del") == 0)


def test_stream_key_retyped_while_registered(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'tn')).register('ret')")
    rs.xadd("ret", {"a": 1})
    assert wait_for(lambda: rs.get("tn") == "1")
    rs.delete("ret")
    rs.set("ret", "now a string")
    rs.delete("ret")
    rs.lpush("ret", "a list")
    assert_alive(rs)
    rs.delete("ret")
    rs.xadd("ret", {"a": 2})
    assert wait_for(lambda: rs.get("tn") == "2"), reg_data(rs)
    d = reg_data(rs)
    assert d["status"] == "OK"


def test_stream_retyped_while_a_batch_waits(rs):
    pyexecute(rs, "import time\n"
                  "GB('StreamReader').foreach(lambda x: (time.sleep(0.3), execute('INCR', 'rw'))).register('rw*')")  # fmt: skip
    rs.xadd("rw1", {"a": 1})
    rs.xadd("rw1", {"a": 2})
    rs.xadd("rw1", {"a": 3})
    rs.delete("rw1")
    rs.set("rw1", "string now")
    assert wait_for(lambda: counts(rs)[0] == sum(counts(rs)[1:]), timeout=10), counts(rs)
    assert rs.get("rw1") == "string now", "the registration never writes to a retyped key"
    assert_alive(rs)


def test_user_xdel_and_xtrim_do_not_stop_processing(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('RPUSH', 'got', x['value']['i'])).register('ux')")
    rs.xadd("ux", {"i": 0})
    assert wait_for(lambda: rs.lrange("got", 0, -1) == ["0"])
    reg = reg_id(rs)
    assert rs.execute_command("RG.PAUSEREGISTRATIONS", reg) == "OK"
    a = rs.xadd("ux", {"i": 1})
    rs.xadd("ux", {"i": 2})
    rs.xdel("ux", a)
    assert rs.execute_command("RG.UNPAUSEREGISTRATIONS", reg) == "OK"
    assert wait_for(lambda: rs.lrange("got", 0, -1) == ["0", "2"]), rs.lrange("got", 0, -1)
    assert rs.execute_command("RG.PAUSEREGISTRATIONS", reg) == "OK"
    rs.xadd("ux", {"i": 3})
    rs.xtrim("ux", maxlen=0)
    assert rs.execute_command("RG.UNPAUSEREGISTRATIONS", reg) == "OK"
    for i in (4, 5):
        rs.xadd("ux", {"i": i})
    assert wait_for(lambda: rs.lrange("got", 0, -1) == ["0", "2", "4", "5"]), rs.lrange("got", 0, -1)
    assert wait_for(lambda: rs.xlen("ux") == 0)
    assert_alive(rs)


def test_a_group_of_the_same_name_made_by_the_user_first(rs):
    rs.xadd("ug", {"i": 0})
    rs.xgroup_create("ug", "__gears_consumer_group__", id="$")
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('RPUSH', 'ugot', x['value']['i'])).register('ug')")
    rs.xadd("ug", {"i": 1})
    assert wait_for(lambda: rs.lrange("ugot", 0, -1) == ["1"]), rs.lrange("ugot", 0, -1)
    assert holds_for(lambda: rs.lrange("ugot", 0, -1) == ["1"], 0.3), "the group's position is kept"
    assert_alive(rs)


def test_the_user_destroys_our_group(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'gdn')).register('gd')")
    rs.xadd("gd", {"i": 0})
    assert wait_for(lambda: rs.get("gdn") == "1")
    rs.xgroup_destroy("gd", "__gears_consumer_group__")
    rs.xadd("gd", {"i": 1})
    assert wait_for(lambda: rs.get("gdn") == "2"), reg_data(rs)
    assert_alive(rs)


def test_xadd_inside_multi_and_lua(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'mn')).register('mx')")
    with rs.pipeline(transaction=True) as p:
        p.xadd("mx", {"a": 1})
        p.xadd("mx", {"a": 2})
        p.execute()
    rs.eval("redis.call('XADD', KEYS[1], '*', 'a', 3)", 1, "mx")
    assert wait_for(lambda: rs.get("mn") == "3")
    assert wait_for(lambda: rs.xlen("mx") == 0)


def test_sync_registration_inside_multi(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'smn')).register('smx', mode='sync')")
    with rs.pipeline(transaction=True) as p:
        p.xadd("smx", {"a": 1})
        p.get("smn")
        res = p.execute()
    assert res[1] == "1", "sync runs inside the XADD, within the transaction"
    assert rs.xlen("smx") == 0


def test_steady_after_pause_of_a_stream_with_pending_timer(rs):
    pyexecute(rs, "GB('StreamReader').foreach(lambda x: execute('INCR', 'ptn')).register('pt', batch=5, duration=300)")
    rs.xadd("pt", {"a": 0})
    assert wait_for(lambda: rs.get("ptn") == "1")
    rs.xadd("pt", {"a": 1})
    assert rs.execute_command("RG.PAUSEREGISTRATIONS", reg_id(rs)) == "OK"
    assert steady(lambda: rs.get("ptn"), 0.6) == "1", "a paused registration's timer runs nothing"
    assert rs.execute_command("RG.UNPAUSEREGISTRATIONS", reg_id(rs)) == "OK"
    assert wait_for(lambda: rs.get("ptn") == "2")
