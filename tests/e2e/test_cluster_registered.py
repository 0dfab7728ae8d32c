"""Registrations and readers on a real 3-master Redis Cluster as 1.2 users see them
(REFERENCE §7, §12.8): a registered flow whose plan crosses shards runs as a distributed
execution started on every shard and collected on the shard where it fired; a StreamReader
run reads each stream once, on its owner."""

import pytest
import redis
from conftest import Cluster, pyexecute, wait_for

from test_cluster import rc  # noqa: F401  (the seeded-cluster fixture)


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        yield c


def _hashtags(cluster):
    """Each shard's hashtag(), in node order."""
    script = "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')"
    return cluster.each(lambda c: pyexecute(c, script)[0][0])


def _owner(cluster, key):
    cc = cluster.cluster_client()
    port = cc.get_node_from_key(key).port
    cc.close()
    return [n.port for n in cluster.nodes].index(port)


def test_trigger_with_count_runs_on_every_shard(cluster, rc):
    """1.2: each shard's reader yields the trigger's arguments; the count is collected on
    the shard where RG.TRIGGER ran."""
    assert pyexecute(rc, "GB('CommandReader').count().register(trigger='x')") == "OK"
    assert cluster.each(lambda c: c.execute_command("RG.TRIGGER", "x", "a", "b")) == [["3"]] * 3


def test_trigger_with_countby_groups_every_shards_record(cluster, rc):
    """groupby-family steps repartition across shards: each shard's record is counted."""
    assert pyexecute(rc, "GB('CommandReader').countby(lambda r: r[0]).register(trigger='cb')") == "OK"
    assert rc.execute_command("RG.TRIGGER", "cb", "z") == ["{'key': 'cb', 'value': 3}"]


def test_trigger_records_come_from_every_shard(cluster, rc):
    script = "GB('CommandReader').map(lambda r: '%s:%s' % (hashtag(), r[1])).register(trigger='where')"
    assert pyexecute(rc, script) == "OK"
    tags = _hashtags(cluster)
    for i in range(3):
        c = cluster.client(i)
        got = c.execute_command("RG.TRIGGER", "where", f"arg{i}")
        c.close()
        assert sorted(got) == sorted(f"{t}:arg{i}" for t in tags)


def test_trigger_without_cross_shard_steps_stays_local(cluster, rc):
    script = (
        "GB('CommandReader').count().register(trigger='loc', mode='async_local')\n"
        "GB('CommandReader').map(lambda r: hashtag()).register(trigger='nocollect', collect=False)"
    )
    assert pyexecute(rc, script) == "OK"
    assert rc.execute_command("RG.TRIGGER", "loc", "a") == ["1"]
    assert rc.execute_command("RG.TRIGGER", "nocollect") == [_hashtags(cluster)[0]]


def test_distributed_trigger_is_dropped_on_every_shard(cluster, rc):
    """A trigger run is dropped once it replied, on every shard (as 1.2 drops it)."""
    assert pyexecute(rc, "GB('CommandReader').count().register(trigger='gone')") == "OK"
    assert rc.execute_command("RG.TRIGGER", "gone") == ["3"]
    assert wait_for(lambda: cluster.each(lambda c: c.execute_command("RG.DUMPEXECUTIONS")) == [[]] * 3, timeout=20)


def test_inorder_distributed_triggers_each_reply(cluster, rc):
    """Serial (inorder) distributed trigger runs each reply; none waits for another."""
    assert pyexecute(rc, "GB('CommandReader').count().register(trigger='ord', inorder=True)") == "OK"
    for _ in range(3):
        assert rc.execute_command("RG.TRIGGER", "ord") == ["3"]


def test_trigger_on_a_shard_missing_the_registration_replies(cluster, rc):
    """A shard that cannot run its part is reported at once, never waited for without
    bound (here the other shards refused the session)."""
    myid = rc.execute_command("CLUSTER", "MYID")
    script = (
        "GB('CommandReader').count().register(trigger='half')\n"
        f"if execute('CLUSTER', 'MYID') != '{myid}':\n"
        "    raise Exception('only the initiator accepts this')\n"
    )
    assert len(pyexecute(rc, script)) == 2
    with pytest.raises(redis.ResponseError, match="does not exist on this shard"):
        rc.execute_command("RG.TRIGGER", "half")


def test_keys_registration_repartition_moves_the_event_record(cluster, rc):
    """A KeysReader event is read on the shard where it fired; its repartition moves the
    record to the owner of the extracted key, and the result is collected back."""
    script = "GB().repartition(lambda r: 'pin').map(lambda r: hashtag()).register(prefix='rk:*')"
    assert pyexecute(rc, script) == "OK"
    tags = _hashtags(cluster)
    pin = _owner(cluster, "pin")
    key = next(f"rk:{i}" for i in range(100) if _owner(cluster, f"rk:{i}") != pin)
    fired = _owner(cluster, key)
    cc = cluster.cluster_client()
    cc.set(key, "v")
    cc.close()
    c = cluster.client(fired)
    done = wait_for(lambda: [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] == "done"])
    assert c.execute_command("RG.GETRESULTS", done[0][1]) == [[tags[pin]], []]
    c.close()


def test_keys_registration_count_stays_one_per_event(cluster, rc):
    assert pyexecute(rc, "GB().count().register(prefix='ck:*')") == "OK"
    cc = cluster.cluster_client()
    cc.set("ck:1", "v")
    fired = _owner(cluster, "ck:1")
    cc.close()
    c = cluster.client(fired)
    done = wait_for(lambda: [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] == "done"])
    assert c.execute_command("RG.GETRESULTS", done[0][1]) == [["1"], []]
    c.close()


@pytest.mark.parametrize("via", [0, 1, 2])
def test_stream_reader_run_reads_each_stream_once(cluster, rc, via):
    cc = cluster.cluster_client()
    ids = [cc.xadd("s", {"f": str(i)}) for i in range(2)]
    cc.close()
    c = cluster.client(via)
    res, errs = pyexecute(c, "GB('StreamReader').map(lambda r: r['id']).run('s')")
    c.close()
    assert errs == []
    assert sorted(res) == sorted(ids)
