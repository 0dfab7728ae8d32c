"""The seed walkthrough's cluster section on a real 3-master Redis Cluster, plus the
distributed behaviour around it: runs go to every shard, collect/repartition move records
between shards, registrations reach every shard (REFERENCE §7)."""

import pytest
from conftest import Cluster, parse, pyexecute, wait_for
from seed_scripts import (
    AGGREGATED_AVERAGE,
    AGGREGATED_MAXIMUM,
    CAS,
    COUNTBY,
    FAMILIES,
    GLOBAL_ONLY,
    HELPERS,
    LOCAL_AND_GLOBAL,
    NON_REDUCED_MAXIMUM,
    PERSONS,
    REDUCED_MAXIMUM,
    REGISTERED_MAXIMUM,
    REPARTITION,
)

# The walkthrough's data: person key -> (name, age).
PEOPLE = {key: (name, age) for key, name, age in PERSONS}


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        yield c


@pytest.fixture
def rc(cluster):
    """The cluster with the seed's data and no registrations; yields a client on shard A."""
    assert cluster.alive(), "a cluster node died in an earlier test"
    for i in range(len(cluster.nodes)):
        c = cluster.client(i)
        for reg in c.execute_command("RG.DUMPREGISTRATIONS"):
            c.execute_command("RG.UNREGISTER", reg[1])
        c.flushall()
        c.close()
    cc = cluster.cluster_client()
    cc.set("foo", "bar")
    for k, (name, age) in PEOPLE.items():
        cc.hset(k, mapping={"name": name, "age": age})
    cc.close()
    client = cluster.client(0)
    yield client
    client.close()
    assert cluster.alive(), "a cluster node died during this test"


def by_key(records):
    return sorted(records, key=lambda r: str(r["key"]) if isinstance(r, dict) else str(r))


def sample_records():
    recs = [{"key": k, "value": {"name": n, "age": str(a)}} for k, (n, a) in PEOPLE.items()]
    return by_key(recs + [{"key": "foo", "value": "bar"}])


def strip(records):
    """Drop Gearshift's extra record fields (`type`, `event`, docs/compat.md)."""
    return [{"key": r["key"], "value": r["value"]} for r in records]


def test_run_collects_every_shard(rc):
    res, errs = pyexecute(rc, "GB().run()")
    assert errs == []
    assert by_key(strip(parse(res))) == sample_records()


def test_every_shard_can_initiate(cluster, rc):
    for i in range(3):
        c = cluster.client(i)
        res, errs = pyexecute(c, "GB().run()")
        c.close()
        assert errs == [] and len(res) == 6


def test_collect_false_gives_local_records_only(cluster, rc):
    total = []
    for i in range(3):
        c = cluster.client(i)
        res, errs = pyexecute(c, "GB().run(collect=False)")
        local = set(c.execute_command("KEYS", "*"))
        c.close()
        assert errs == []
        assert {r["key"] for r in parse(res)} == local
        total += res
    assert len(total) == 6


def test_explicit_collect(rc):
    res, errs = pyexecute(rc, "GB().collect().run(collect=False)")
    assert errs == [] and by_key(strip(parse(res))) == sample_records()


def test_non_reduced_maximum_gives_one_maximum_per_shard(rc):
    res, errs = pyexecute(rc, NON_REDUCED_MAXIMUM)
    assert errs == []
    # One maximum per shard holding person keys; the seed's layout gives [87, 35, 14].
    per_shard = []
    for node in rc_nodes(rc):
        ages = [PEOPLE[k][1] for k in node if k.startswith("person:")]
        if ages:
            per_shard.append(max(ages))
    assert sorted(int(x) for x in res) == sorted(per_shard)


def rc_nodes(rc):
    """The keys of each master, read through the cluster's own view."""
    out = []
    for row in rc.execute_command("CLUSTER", "SLOTS"):
        import redis

        c = redis.Redis(host=row[2][0], port=row[2][1], decode_responses=True)
        out.append(c.keys("*"))
        c.close()
    return out


def test_reduced_maximum(rc):
    assert pyexecute(rc, REDUCED_MAXIMUM) == [["87"], []]


def test_aggregate_maximum_and_average(rc):
    assert pyexecute(rc, AGGREGATED_MAXIMUM) == [["87"], []]
    assert pyexecute(rc, AGGREGATED_AVERAGE) == [["44.6"], []]
    assert pyexecute(rc, "GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')") == [
        ["44.6"],
        [],
    ]


AGGREGATEBY = HELPERS + """
gb = GearsBuilder()
gb.aggregateby(fname, 0, lambda k, a, r: a + 1, lambda k, a, r: a + r)
gb.run('person:*')
"""


@pytest.mark.parametrize(
    "script", [COUNTBY, LOCAL_AND_GLOBAL, GLOBAL_ONLY, REPARTITION, AGGREGATEBY]
)
def test_family_counts(rc, script):
    res, errs = pyexecute(rc, script)
    assert errs == []
    assert by_key(parse(res)) == by_key(FAMILIES)


def test_repartition_writes_each_count_on_its_owner(cluster, rc):
    res, errs = pyexecute(rc, REPARTITION)
    assert errs == []
    assert by_key(parse(res)) == by_key(FAMILIES)
    cc = cluster.cluster_client()
    assert (cc.get("Smith"), cc.get("Sanchez"), cc.get("Pibbles")) == ("3", "1", "1")
    cc.close()


def test_count_and_native_steps_across_shards(rc):
    assert pyexecute(rc, "GB().count().run()") == [["6"], []]
    res, _ = pyexecute(rc, "GB().map(lambda x: x['key']).sort().run('person:*')")
    assert res == [f"person:{i}" for i in range(1, 6)]
    res, _ = pyexecute(rc, "GB().map(lambda x: len(x['key'])).distinct().run()")
    assert sorted(res) == ["3", "8"]
    res, _ = pyexecute(rc, "GB().collect().limit(2).run()")
    assert len(res) == 2


def test_errors_from_every_shard_reach_the_initiator(rc):
    res, errs = pyexecute(rc, "GB().map(lambda x: 1/0).run()")
    # Each shard stops at its first error (as a 1.2 execution does); all three arrive.
    assert res == [] and len(errs) == 3
    assert all("division by zero" in e for e in errs)


def test_records_marshal_cannot_carry_become_errors(rc):
    res, errs = pyexecute(rc, "GB().map(lambda x: object()).run(convertToStr=False)")
    # The initiator's own records never cross the bus; remote ones fail to serialise.
    local = len(rc.keys("*"))
    assert len(res) == local
    assert len(errs) == 6 - local
    assert all("Failed serializing record" in e for e in errs)


def test_python_reader_runs_on_every_shard(rc):
    res, errs = pyexecute(rc, "GB('PythonReader').run(lambda: iter([1, 2]))")
    assert errs == [] and sorted(res) == ["1", "1", "1", "2", "2", "2"]


def test_shards_id_reader_and_infocluster(cluster, rc):
    ids, errs = pyexecute(rc, "GB('ShardsIDReader').run()")
    assert errs == []
    node_ids = set()
    for i in range(3):
        c = cluster.client(i)
        node_ids.add(c.execute_command("CLUSTER", "MYID"))
        info = c.execute_command("RG.INFOCLUSTER")
        c.close()
        assert info[0] == "MyId" and info[1] in node_ids and info[2] == "MyRunId"
        assert len(info[3]) == 40
        shards = info[4]
        assert len(shards) == 3
        for s in shards:
            fields = dict(zip(s[::2], s[1::2]))
            assert set(fields) == {
                "id", "ip", "port", "unixSocket", "runid", "minHslot", "maxHslot", "pendingMessages"
            }  # fmt: skip
    assert set(ids) == node_ids


def test_hashtag_is_local_to_each_shard(cluster, rc):
    for i in range(3):
        c = cluster.client(i)
        (tag,), errs = pyexecute(c, "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')")
        assert errs == []
        slot = c.execute_command("CLUSTER", "KEYSLOT", tag)
        owned = [r for r in c.execute_command("CLUSTER", "SLOTS") if r[0] <= slot <= r[1]]
        myid = c.execute_command("CLUSTER", "MYID")
        c.close()
        assert owned and owned[0][2][2] == myid


def test_async_local_stays_on_the_shard(rc):
    res, errs = pyexecute(rc, "GB().map(lambda x: x['key']).run(mode='async_local')")
    assert errs == [] and sorted(res) == sorted(rc.keys("*"))


def test_execution_ids_carry_the_initiator_id(cluster, rc):
    myid = rc.execute_command("CLUSTER", "MYID")
    eid = pyexecute(rc, "GB().run()", "UNBLOCKING")
    assert eid.startswith(myid + "-")
    res = wait_for(lambda: _results(rc, eid))
    assert len(res[0]) == 6
    # Every shard ran its part under the same id.
    for i in (1, 2):
        c = cluster.client(i)
        ids = wait_for(lambda: [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS") if e[1] == eid])
        c.close()
        assert ids == [eid]


def _results(c, eid):
    try:
        return c.execute_command("RG.GETRESULTS", eid)
    except Exception:
        return None


def test_registration_reaches_and_fires_on_every_shard(cluster, rc):
    script = "GB().foreach(lambda x: execute('INCR', 'seen{%s}' % hashtag())).register('ev:*')"
    assert pyexecute(rc, script) == "OK"
    regs = []
    for i in range(3):
        c = cluster.client(i)
        regs.append(wait_for(lambda: c.execute_command("RG.DUMPREGISTRATIONS")))
        c.close()
    ids = {r[0][1] for r in regs}
    assert len(ids) == 1, "one registration id on every shard"
    cc = cluster.cluster_client()
    for i in range(30):
        cc.set(f"ev:{i}", i)

    def total():
        n = 0
        for j in range(3):
            c = cluster.client(j)
            (tag,), _ = pyexecute(c, "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')")
            n += int(c.get(f"seen{{{tag}}}") or 0)
            c.close()
        return n == 30 and n

    assert wait_for(total, timeout=10) == 30
    cc.close()
    # Unregister on one shard drops it everywhere.
    rc.execute_command("RG.UNREGISTER", ids.pop())
    for i in range(3):
        c = cluster.client(i)
        assert wait_for(lambda: c.execute_command("RG.DUMPREGISTRATIONS") == []), i
        c.close()


def test_seed_event_maximum_in_cluster(cluster, rc):
    assert pyexecute(rc, REGISTERED_MAXIMUM) == "OK"
    cc = cluster.cluster_client()
    cc.hset("person:3", mapping={"name": "Summer Smith", "age": 17})
    owner = cc.get_node_from_key("person:3")
    cc.close()
    c = cluster.client([n.port for n in cluster.nodes].index(owner.port))
    ex = wait_for(lambda: [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] == "done"])
    assert c.execute_command("RG.GETRESULTS", ex[0][1]) == [["17"], []]
    c.close()


def test_concurrent_shuffles_from_every_shard(cluster, rc):
    """Repartitioning runs started at once on every shard: no shard's workers may starve
    another's (each finishes with the full answer)."""
    clients = [cluster.client(i) for i in range(3)]
    ids = [pyexecute(c, COUNTBY, "UNBLOCKING") for c in clients for _ in range(4)]
    for n, eid in enumerate(ids):
        c = clients[n // 4]
        res, errs = c.execute_command("RG.GETRESULTSBLOCKING", eid)
        assert errs == [] and by_key(parse(res)) == by_key(FAMILIES), eid
    for c in clients:
        c.close()


def test_lost_shard_ends_the_run_with_max_idle():
    with Cluster(ExecutionMaxIdleTime=1000) as c:
        client = c.client(0)
        myid = client.execute_command("CLUSTER", "MYID")
        # A part still running long after the initiator's own ended is progress, not
        # idleness: the run waits for it (here 2.5 s against a 1 s idle bound).
        slow = (
            "import time\n"
            f"GB('ShardsIDReader').foreach(lambda x: time.sleep(2.5) if x != '{myid}' else None)"
            ".run(collect=False)"
        )
        res, errs = pyexecute(client, slow)
        assert errs == [] and res == [myid]
        # A collect waiting on a slow part hears its heartbeats: no max idle either.
        slow_collect = (
            "import time\n"
            f"GB('ShardsIDReader').map(lambda x: (time.sleep(2.5), x)[1] if x != '{myid}' else x)"
            ".run()"
        )
        res, errs = pyexecute(client, slow_collect)
        assert errs == [] and len(res) == 3 and myid in res
        c.nodes[2].proc.kill()
        c.nodes[2].proc.wait()
        res, errs = pyexecute(client, "GB('ShardsIDReader').run()")
        assert "Execution max idle reached" in errs
        assert len(res) == 2, "the live shards' records are kept"
        assert client.ping()
        client.close()


def test_getexecution_gathers_every_shard(cluster, rc):
    eid = pyexecute(rc, "GB().run()", "UNBLOCKING")
    rc.execute_command("RG.GETRESULTSBLOCKING", eid)
    node_ids = set()
    for i in range(3):
        c = cluster.client(i)
        node_ids.add(c.execute_command("CLUSTER", "MYID"))
        c.close()
    plans = wait_for(lambda: _plans(rc, eid, 3))
    assert {p[1] for p in plans} == node_ids
    assert all(p[0] == "shard_id" and p[2] == "execution_plan" for p in plans)
    # CLUSTER asks every shard, as the default does here: one plan per shard, each done.
    gathered = rc.execute_command("RG.GETEXECUTION", eid, "CLUSTER")
    assert sorted(p[1] for p in gathered) == sorted(node_ids)
    assert all(p[3][0:2] == ["status", "done"] for p in gathered), gathered
    (one,) = rc.execute_command("RG.GETEXECUTION", eid, "SHARD")
    assert one[1] == rc.execute_command("CLUSTER", "MYID")
    with pytest.raises(Exception, match="execution plan does not exist"):
        rc.execute_command("RG.GETEXECUTION", "nope-1")


def _plans(c, eid, n):
    plans = c.execute_command("RG.GETEXECUTION", eid)
    return plans if len(plans) == n else None


def test_drop_and_abort_reach_every_shard(cluster, rc):
    eid = pyexecute(rc, "GB().run()", "UNBLOCKING")
    rc.execute_command("RG.GETRESULTSBLOCKING", eid)
    others = [cluster.client(i) for i in (1, 2)]
    for c in others:
        assert wait_for(lambda: any(e[1] == eid for e in c.execute_command("RG.DUMPEXECUTIONS")))
    assert rc.execute_command("RG.ABORTEXECUTION", eid) == "OK"  # finished: OK, as 1.2
    assert rc.execute_command("RG.DROPEXECUTION", eid) == "OK"
    for c in others:
        assert wait_for(lambda: all(e[1] != eid for e in c.execute_command("RG.DUMPEXECUTIONS")))
        c.close()
    with pytest.raises(Exception, match="execution does not exist"):
        rc.execute_command("RG.ABORTEXECUTION", eid)


def test_register_reports_each_failing_shard(cluster, rc):
    myid = rc.execute_command("CLUSTER", "MYID")
    script = (
        "GB().register('never:*')\n"
        f"if execute('CLUSTER', 'MYID') != '{myid}':\n"
        "    raise Exception('only the initiator accepts this')\n"
    )
    reply = pyexecute(rc, script)
    assert isinstance(reply, list) and len(reply) == 2
    for err in reply:
        text = str(err)
        assert text.startswith("shard-") or "shard-" in text
        assert "only the initiator accepts this" in text


def test_seed_event_driven_maximum_in_cluster(cluster, rc):
    """person:5 and age:maximum live on different shards: the flow's execute() calls are
    forwarded to the owner, so the walkthrough's replies hold on a cluster too."""
    cc = cluster.cluster_client()
    cc.delete("person:4", "person:5")
    assert pyexecute(rc, CAS) == "OK"
    assert cc.get("age:maximum") is None
    assert cc.hset("person:4", mapping={"name": "Beth Smith", "age": 35}) == 2
    assert wait_for(lambda: cc.get("age:maximum") == "35") is True
    assert cc.hset("person:5", mapping={"name": "Shrimply Pibbles", "age": 87}) == 2
    assert wait_for(lambda: cc.get("age:maximum") == "87") is True
    cc.close()


def test_execute_on_a_remote_key_is_forwarded(cluster, rc):
    cc = cluster.cluster_client()
    myid = rc.execute_command("CLUSTER", "MYID")
    remote = next(
        k for k in (f"k{i}" for i in range(100)) if cc.get_node_from_key(k).port != cluster.nodes[0].port
    )
    res, errs = pyexecute(
        rc,
        f"GB('ShardsIDReader').filter(lambda x: x == '{myid}')"
        f".map(lambda x: (execute('SET', '{remote}', 'v'), execute('GET', '{remote}'),"
        f" execute('HGET', '{remote}', 'f') if False else 1)).run()",
    )
    assert errs == [] and res == ["('OK', 'v', 1)"]
    assert cc.get(remote) == "v"
    res, errs = pyexecute(rc, f"GB('ShardsIDReader').filter(lambda x: x == '{myid}').map(lambda x: execute('HGET', '{remote}', 'f')).run()")
    assert res == [] and "WRONGTYPE" in errs[0]
    cc.close()


def _dump(c, rid):
    """Registration `rid` as one flat dict (its RegistrationData fields included)."""
    for reg in c.execute_command("RG.DUMPREGISTRATIONS"):
        d = dict(zip(reg[::2], reg[1::2]))
        if d["id"] == rid:
            data = d.pop("RegistrationData")
            d.update(zip(data[::2], data[1::2]))
            return d
    return None


def test_pause_and_clear_stats_reach_every_shard(cluster, rc):
    assert pyexecute(rc, "GB('StreamReader').register('st:*')") == "OK"
    rid = rc.execute_command("RG.DUMPREGISTRATIONS")[0][1]
    other = cluster.client(1)
    assert wait_for(lambda: _dump(other, rid))
    assert rc.execute_command("RG.PAUSEREGISTRATIONS", rid) == "OK"
    assert _dump(other, rid)["status"] == "PAUSED"
    assert rc.execute_command("RG.UNPAUSEREGISTRATIONS", rid) == "OK"
    assert _dump(other, rid)["status"] != "PAUSED"
    # A KeysReader registration cannot pause: 1.2's text, from the first shard that says so.
    assert pyexecute(rc, "GB().register('x:*')") == "OK"
    kid = next(r[1] for r in rc.execute_command("RG.DUMPREGISTRATIONS") if r[1] != rid)
    with pytest.raises(Exception, match="does not support pause"):
        rc.execute_command("RG.PAUSEREGISTRATIONS", kid)
    # Stats are cleared on every shard.
    cc = cluster.cluster_client()
    for i in range(20):
        cc.set(f"x:{i}", i)
    cc.close()
    # Every event on that shard processed (a late one would count after the clear).
    assert wait_for(
        lambda: (d := _dump(other, kid))["numTriggered"] > 0 and d["numSuccess"] == d["numTriggered"]
    )
    assert rc.execute_command("RG.CLEARREGISTRATIONSSTATS") == "OK"
    assert wait_for(lambda: _dump(other, kid)["numSuccess"] == 0)
    other.close()


def test_requirements_are_installed_on_every_shard(cluster, rc):
    """REQUIREMENTS reach every shard before the callbacks that import them run there."""
    script = "import humanize\nGB().map(lambda x: humanize.intcomma(1234567)).run('person:*')"
    res, errs = pyexecute(rc, script, "REQUIREMENTS", "humanize")
    assert errs == [] and res == ["1,234,567"] * 5
    # A registration needing it installs on every shard too.
    assert pyexecute(rc, "import humanize\nGB().register('hz:*')", "REQUIREMENTS", "humanize") == "OK"
    for i in range(3):
        c = cluster.client(i)
        assert wait_for(lambda: c.execute_command("RG.DUMPREGISTRATIONS"))
        c.close()


def test_a_part_that_cannot_start_is_reported_at_once(rc):
    """A callback other shards cannot rebuild (its module exists only here): their errors
    come back with this shard's records, and no shuffle waits for them (which would add
    `Execution max idle reached`)."""
    script = (
        "import sys, types\n"
        "m = types.ModuleType('gs_only_here')\n"
        "exec('def f(x):\\n    return 1', m.__dict__)\n"
        "sys.modules['gs_only_here'] = m\n"
        "GB().map(m.f).run()\n"
    )
    res, errs = pyexecute(rc, script)
    assert res == ["1"] * len(rc.keys("*"))
    assert len(errs) == 2 and all("gs_only_here" in e for e in errs), errs


def test_without_cloudpickle_the_error_says_what_to_do(rc):
    script = (
        "import sys\n"
        "saved = sys.modules.get('cloudpickle')\n"
        "sys.modules['cloudpickle'] = None\n"
        "try:\n"
        "    GB().run()\n"
        "finally:\n"
        "    if saved is None:\n"
        "        del sys.modules['cloudpickle']\n"
        "    else:\n"
        "        sys.modules['cloudpickle'] = saved\n"
    )
    with pytest.raises(Exception, match="needs the cloudpickle package"):
        pyexecute(rc, script)
    # The next cluster run (cloudpickle importable again) works.
    assert len(pyexecute(rc, "GB().run()")[0]) == 6


def test_replace_with_replaces_on_every_shard(cluster, rc):
    assert pyexecute(rc, "GB().register('ra:*')", "ID", "sa") == "OK"
    assert pyexecute(rc, "GB().register('rb:*')", "ID", "sb", "REPLACE_WITH", "sa") == "OK"
    for i in range(3):
        c = cluster.client(i)

        def prefixes():
            return sorted(_dump(c, r[1])["args"][1] for r in c.execute_command("RG.DUMPREGISTRATIONS"))

        assert wait_for(lambda: prefixes() == ["rb:*"]), (i, prefixes())
        c.close()


def test_a_callback_that_cannot_be_shipped_is_named(rc):
    script = "import threading\nlk = threading.Lock()\ndef keep_lock(x):\n    return lk\nGB().map(keep_lock).run()"
    with pytest.raises(Exception) as err:
        pyexecute(rc, script)
    text = str(err.value)
    assert "Error occured when serialized a python callback, callback=keep_lock error=" in text
    assert "lock" in text

