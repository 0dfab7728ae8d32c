"""Distributed executions on a real 3-master Redis Cluster as 1.2 users see them: every
shard's run id in RG.INFOCLUSTER, blocking runs dropped everywhere once they replied, and
aborting a running distributed execution from any shard that lists it (REFERENCE §7, §12)."""

import pytest
from conftest import Cluster, pyexecute, wait_for

from test_cluster import PEOPLE, rc  # noqa: F401  (the seeded-cluster fixture)


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        yield c


def test_infocluster_lists_every_shards_runid(cluster):
    """1.2's client helpers poll RG.INFOCLUSTER until no runid is null: every shard's runid
    is known once it is reachable, and it is the MyRunId that shard reports itself."""
    infos = []
    for i in range(3):
        c = cluster.client(i)
        infos.append(c.execute_command("RG.INFOCLUSTER"))
        c.close()
    own = {info[1]: info[3] for info in infos}
    assert len(set(own.values())) == 3
    for info in infos:
        runids = {}
        for s in info[4]:
            fields = dict(zip(s[::2], s[1::2]))
            runids[fields["id"]] = fields["runid"]
        assert runids == own


def test_infocluster_inside_multi_still_answers(cluster):
    """A caller that cannot block gets the reply at once; other shards' runids may be null."""
    c = cluster.client(0)
    p = c.pipeline(transaction=True)
    p.execute_command("RG.INFOCLUSTER")
    (info,) = p.execute()
    c.close()
    assert info[0] == "MyId" and len(info[4]) == 3
    mine = [dict(zip(s[::2], s[1::2])) for s in info[4] if s[1] == info[1]]
    assert mine[0]["runid"] == info[3]


def test_blocking_distributed_run_is_dropped_on_every_shard(cluster, rc):
    """1.2 drops a blocking run once it replied, on the initiator and on every other shard."""
    before = {i: {e[1] for e in cluster.client(i).execute_command("RG.DUMPEXECUTIONS")}
              for i in range(3)}  # fmt: skip
    res, errs = pyexecute(rc, "GB().map(lambda r: r['key']).run()")
    assert errs == [] and len(res) == len(PEOPLE) + 1

    def new_entries():
        now = {i: {e[1] for e in cluster.client(i).execute_command("RG.DUMPEXECUTIONS")}
               for i in range(3)}  # fmt: skip
        extra = {i: now[i] - before[i] for i in range(3)}
        return extra if all(not v for v in extra.values()) else None

    assert wait_for(new_entries) is not None


SLOW_RUN = (
    "import time\n"
    "GB().map(lambda r: (time.sleep(0.2), r['key'])[1]).run()"
)


@pytest.mark.parametrize("via", [0, 1])
def test_abort_a_running_distributed_execution(cluster, rc, via):
    """A running distributed execution listed by RG.DUMPEXECUTIONS can be aborted, from the
    initiator or from a shard that lists its part."""
    cc = cluster.cluster_client()
    for i in range(60):
        cc.set(f"slow:{i}", i)
    cc.close()
    eid = pyexecute(rc, SLOW_RUN, "UNBLOCKING")
    c = cluster.client(via)
    assert wait_for(lambda: any(
        e[1] == eid and e[3] == "running" for e in c.execute_command("RG.DUMPEXECUTIONS")
    ))  # fmt: skip
    assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"
    c.close()
    rc.execute_command("RG.GETRESULTSBLOCKING", eid)
    listed = [e for e in rc.execute_command("RG.DUMPEXECUTIONS") if e[1] == eid]
    assert listed and listed[0][3] in ("done", "aborted"), listed


@pytest.mark.parametrize("via", [0, 1])
def test_abort_a_running_blocking_distributed_execution(cluster, rc, via):
    """A blocking distributed run is listed while it runs and can be aborted; its client
    then gets the reply."""
    import threading

    cc = cluster.cluster_client()
    for i in range(60):
        cc.set(f"slow:{i}", i)
    cc.close()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", pyexecute(rc, SLOW_RUN)))
    t.start()
    c = cluster.client(via)

    def running():
        return [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] == "running"]

    (eid,) = wait_for(running)
    assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"
    c.close()
    t.join(30)
    assert not t.is_alive() and "r" in out


def _config_everywhere(cluster, *pairs):
    for i in range(3):
        c = cluster.client(i)
        assert c.execute_command("RG.CONFIGSET", *pairs) == ["OK"] * (len(pairs) // 2)
        c.close()


# Every shard but the initiator takes 3 s before its record (ShardsIDReader yields the id).
SLOW_OTHERS = (
    "import time\n"
    "GB('ShardsIDReader').map(lambda x: (time.sleep(3) if x != '{me}' else 0, x)[1]).run()"
)


def test_execution_heartbeats_is_a_config_key(cluster):
    c = cluster.client(0)
    assert c.execute_command("RG.CONFIGGET", "ExecutionHeartbeats") == [1]
    assert c.execute_command("RG.CONFIGSET", "ExecutionHeartbeats", "0") == ["OK"]
    assert c.execute_command("RG.CONFIGGET", "ExecutionHeartbeats") == [0]
    assert c.execute_command("CONFIG", "GET", "rg.execution-heartbeats") == {"rg.execution-heartbeats": "0"}
    assert c.execute_command("RG.CONFIGSET", "ExecutionHeartbeats", "1") == ["OK"]
    c.close()


def test_heartbeats_keep_a_slow_working_part(cluster, rc):
    """Gearshift (default): a part that works longer than ExecutionMaxIdleTime is waited for."""
    me = rc.execute_command("CLUSTER", "MYID")
    _config_everywhere(cluster, "ExecutionMaxIdleTime", "1000")
    try:
        res, errs = pyexecute(rc, SLOW_OTHERS.format(me=me))
    finally:
        _config_everywhere(cluster, "ExecutionMaxIdleTime", "5000")
    assert errs == [] and len(res) == 3


def test_without_heartbeats_a_silent_shard_ends_the_run_as_in_1_2(cluster, rc):
    """ExecutionHeartbeats 0 gives 1.2's rule back: no shard message within
    ExecutionMaxIdleTime ends the run with `Execution max idle reached`."""
    me = rc.execute_command("CLUSTER", "MYID")
    _config_everywhere(cluster, "ExecutionMaxIdleTime", "1000", "ExecutionHeartbeats", "0")
    try:
        res, errs = pyexecute(rc, SLOW_OTHERS.format(me=me))
    finally:
        _config_everywhere(cluster, "ExecutionMaxIdleTime", "5000", "ExecutionHeartbeats", "1")
    assert "Execution max idle reached" in errs
    assert me in res


def test_cluster_getexecution_and_abort_take_an_execution_id(cluster):
    """1.2 gathers RG.GETEXECUTION's CLUSTER form and aborts with internal gears, each taking
    an execution id on the shard that received the command (REFERENCE §7); SHARD takes none."""
    c = cluster.client(0)

    def run_number():
        eid = pyexecute(c, "GB('ShardsIDReader').run()", "UNBLOCKING")
        c.execute_command("RG.GETRESULTSBLOCKING", eid)
        return eid, int(eid.rsplit("-", 1)[1])

    eid, n = run_number()
    assert len(c.execute_command("RG.GETEXECUTION", eid)) == 3
    assert run_number()[1] == n + 2
    assert len(c.execute_command("RG.GETEXECUTION", eid, "SHARD")) == 1
    assert run_number()[1] == n + 3
    assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"
    assert run_number()[1] == n + 5
    c.close()
