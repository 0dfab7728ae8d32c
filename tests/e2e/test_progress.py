"""Progress of long runs (issue #14, "Operating it"): RG.GETEXECUTION keeps 1.2's layout
(REFERENCE §1.3) and adds Gearshift's progress fields after 1.2's: `records_in` /
`records_out` at the end of each step entry and `records_read` at the end of the shard's
execution plan (docs/compat.md "RG.GETEXECUTION", docs/monitoring.md). On a cluster the
initiator's `shards_received` / `shards_completed` count the shards' reports (§7).
The progress fields are shown with `ExecutionProgress 1` (Gearshift's own setting; off, the
layout is exactly 1.2's: tests/e2e/test_conformance_replies.py)."""

import pytest
from conftest import Cluster, pyexecute, wait_for

KEYS = 2000

# 1.2's field names, at 1.2's positions (clients index them, REFERENCE §1.3).
PLAN_FIELDS = ["status", "shards_received", "shards_completed", "results", "errors",
               "total_duration", "read_duration", "steps"]  # fmt: skip
STEP_FIELDS = ["type", "duration", "name", "arg"]


def fields(flat):
    return dict(zip(flat[0::2], flat[1::2]))


def plan_of(c, eid):
    (shard,) = c.execute_command("RG.GETEXECUTION", eid, "SHARD")
    return shard[3]


def progress(plan):
    """(status, records read, [(records_in, records_out) per step, last step first])."""
    f = fields(plan)
    steps = [fields(s) for s in f["steps"]]
    return f["status"], f["records_read"], [(s["records_in"], s["records_out"]) for s in steps]


def poll_until_done(c, eid):
    """Every GETEXECUTION snapshot until the run is done (bounded by the socket timeout and
    wait_for's bound, never by an assertion on time)."""
    snaps = []

    def done():
        snaps.append(progress(plan_of(c, eid)))
        return snaps[-1][0] == "done"

    assert wait_for(done, timeout=120, interval=0.01), snaps[-1]
    return snaps


def assert_grows(values):
    assert all(a <= b for a, b in zip(values, values[1:])), values


@pytest.fixture(autouse=True)
def progress_on(request):
    """`ExecutionProgress 1` on the shared server for the standalone tests (the cluster's
    nodes are started with it)."""
    if "r" not in request.fixturenames:
        yield
        return
    r = request.getfixturevalue("r")
    assert r.execute_command("RG.CONFIGSET", "ExecutionProgress", "1") == ["OK"]
    yield
    r.execute_command("RG.CONFIGSET", "ExecutionProgress", "0")


@pytest.fixture
def keys(r):
    r.flushall()
    with r.pipeline(transaction=False) as p:
        for i in range(KEYS):
            p.set(f"k{i}", i)
        p.execute()
    yield r
    r.flushall()


def test_layout_keeps_1_2_fields_first(keys):
    r = keys
    eid = pyexecute(r, "GB().filter(lambda r: int(r['value']) % 2 == 0).run()", "UNBLOCKING")
    r.execute_command("RG.GETRESULTSBLOCKING", eid)
    plan = plan_of(r, eid)
    assert plan[0:16:2] == PLAN_FIELDS
    assert plan[16:] == ["records_read", KEYS]
    # Steps are listed last step first: the filter, then 1.2's implicit str map and collect.
    step = plan[15][-1]
    assert [s[1] for s in plan[15]] == ["collect", "map", "filter"]
    assert all(s[0:8:2] == STEP_FIELDS for s in plan[15])
    assert step[8:] == ["records_in", KEYS, "records_out", KEYS // 2]
    assert plan[7] == KEYS // 2


def test_counts_grow_while_a_long_map_runs(keys):
    r = keys
    eid = pyexecute(r, "import time\nGB().map(lambda r: time.sleep(0.001) or r['key']).run()", "UNBLOCKING")
    snaps = poll_until_done(r, eid)
    # While it ran, the map's counts were seen between nothing and everything.
    running = [s for s in snaps if s[0] == "running"]
    assert any(0 < s[2][-1][1] < KEYS for s in running), running
    assert_grows([s[1] for s in snaps])
    assert_grows([s[2][-1][0] for s in snaps])
    assert_grows([s[2][-1][1] for s in snaps])
    assert snaps[-1][1:] == (KEYS, [(KEYS, KEYS)] * 3)
    res, errs = r.execute_command("RG.GETRESULTS", eid)
    assert errs == [] and len(res) == KEYS


def test_records_read_grow_while_a_slow_reader_runs(r):
    n = 3000
    script = (
        "import time\n"
        "def gen():\n"
        f"    for i in range({n}):\n"
        "        time.sleep(0.0005)\n"
        "        yield i\n"
        "GB('PythonReader').map(lambda x: x + 1).run(gen)"
    )
    eid = pyexecute(r, script, "UNBLOCKING")
    snaps = poll_until_done(r, eid)
    running = [s for s in snaps if s[0] == "running"]
    assert any(0 < s[1] < n for s in running), running
    assert_grows([s[1] for s in snaps])
    assert snaps[-1][1:] == (n, [(n, n)] * 3)


def test_small_run_and_unknown_id(r):
    eid = pyexecute(r, "GB('ShardsIDReader').run()", "UNBLOCKING")
    r.execute_command("RG.GETRESULTSBLOCKING", eid)
    assert progress(plan_of(r, eid))[1:] == (1, [(1, 1), (1, 1)])
    with pytest.raises(Exception, match="execution plan does not exist"):
        r.execute_command("RG.GETEXECUTION", "nope-1", "SHARD")


# --- cluster: shards_received / shards_completed on a real 3-master cluster ----------------


@pytest.fixture(scope="module")
def cluster():
    with Cluster(ExecutionProgress=1) as c:
        yield c


@pytest.fixture
def ck(cluster):
    assert cluster.alive(), "a cluster node died in an earlier test"
    for i in range(len(cluster.nodes)):
        c = cluster.client(i)
        c.flushall()
        c.close()
    cc = cluster.cluster_client()
    for i in range(300):
        cc.set(f"k{i}", i)
    cc.close()
    yield cluster
    assert cluster.alive(), "a cluster node died during this test"


def test_cluster_counts_every_shard(ck):
    c0 = ck.client(0)
    eid = pyexecute(c0, "import time\nGB().map(lambda r: time.sleep(0.001) or r['key']).run()", "UNBLOCKING")
    res, errs = c0.execute_command("RG.GETRESULTSBLOCKING", eid)
    assert errs == [] and len(res) == 300
    me = c0.execute_command("CLUSTER", "MYID")
    # The initiator heard back from the 2 other shards; all 3 shards finished their part.
    f = fields(plan_of(c0, eid))
    assert (f["status"], f["shards_received"], f["shards_completed"]) == ("done", 2, 3)
    # The default (CLUSTER) form: every shard's plan; the others count nothing of their own.
    plans = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(c0.execute_command("RG.GETEXECUTION", eid)))
    by_shard = {p[1]: fields(p[3]) for p in plans}
    for shard, f in by_shard.items():
        if shard != me:
            assert (f["shards_received"], f["shards_completed"]) == (0, 0)
    # Every shard read its own keys: together, every key, each through the map.
    assert sum(f["records_read"] for f in by_shard.values()) == 300
    assert sum(fields(f["steps"][-1])["records_in"] for f in by_shard.values()) == 300
    c0.close()
