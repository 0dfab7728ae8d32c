"""INFO rg's data-plane fields (issue #13): the buffer pool's counters and the batches queued
between stages.

Standalone, no path uses the pool yet (it serves the shuffle's scratch, bundles and the
cluster bus's receive copies; Python batch columns do not come from it), so the standalone
test checks that the fields are there, sane, and that nothing stays queued after a run. The
cluster test runs a repartition and sees the pool hand out and take back buffers."""

import pytest
from conftest import Cluster, fresh_server, parse, pyexecute, wait_for

FIELDS = [
    "rg_gearshift_pool_idle_bytes",
    "rg_gearshift_pool_in_use_bytes",
    "rg_gearshift_pool_hits",
    "rg_gearshift_pool_misses",
    "rg_gearshift_pool_hit_rate_percent",
    "rg_gearshift_queued_batches",
]

# Enough records that each shard's bundles to the others hold many batch parts.
KEYS = 3000
REPARTITION = """
GB().map(lambda x: {'key': x['key'], 'family': x['value']['family']}) \\
    .repartition(lambda x: x['family']) \\
    .countby(lambda x: x['family']).run('person:*')
"""


def pool_info(c):
    info = c.info("rg")
    return {f: info[f] for f in FIELDS}


def check_sane(p):
    for f, v in p.items():
        assert isinstance(v, int) and v >= 0, (f, v)
    assert p["rg_gearshift_pool_hit_rate_percent"] <= 100
    total = p["rg_gearshift_pool_hits"] + p["rg_gearshift_pool_misses"]
    if total:
        assert p["rg_gearshift_pool_hit_rate_percent"] == p["rg_gearshift_pool_hits"] * 100 // total


def test_fields_are_there_and_nothing_stays_queued_standalone():
    with fresh_server() as srv:
        c = srv.client()
        before = pool_info(c)
        check_sane(before)
        for i in range(2000):
            c.hset(f"person:{i}", mapping={"family": f"f{i % 7}", "age": i % 90})
        res, errs = pyexecute(c, "GB().map(lambda x: int(x['value']['age'])).count().run('person:*')")
        assert (res, errs) == (["2000"], [])
        after = pool_info(c)
        check_sane(after)
        assert after["rg_gearshift_queued_batches"] == 0, "a finished run leaves no batch queued"
        for f in ("rg_gearshift_pool_hits", "rg_gearshift_pool_misses"):
            assert after[f] >= before[f], "counters never go back"


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        yield c


def pool_totals(cluster):
    infos = []
    for i in range(len(cluster.nodes)):
        c = cluster.client(i)
        infos.append(pool_info(c))
        c.close()
    return infos


def test_a_repartition_takes_buffers_from_the_pool_and_gives_them_back(cluster):
    cc = cluster.cluster_client()
    for i in range(KEYS):
        cc.hset(f"person:{i}", mapping={"family": f"f{i % 7}", "age": i % 90})
    cc.close()
    c = cluster.client(0)
    before = pool_totals(cluster)
    res, errs = pyexecute(c, REPARTITION)
    assert errs == []
    counts = sorted((r["key"], r["value"]) for r in parse(res))
    assert counts == [(f"f{k}", len(range(k, KEYS, 7))) for k in range(7)]
    first = pool_totals(cluster)
    for p in first:
        check_sane(p)
    taken = lambda infos: sum(p["rg_gearshift_pool_hits"] + p["rg_gearshift_pool_misses"] for p in infos)  # noqa: E731
    assert taken(first) > taken(before), "the shuffle's buffers come from the pool"
    # Every bundle and receive copy goes back once the run is over.
    assert wait_for(lambda: all(p["rg_gearshift_pool_in_use_bytes"] == 0 for p in pool_totals(cluster))), (
        pool_totals(cluster)
    )
    assert any(p["rg_gearshift_pool_idle_bytes"] > 0 for p in pool_totals(cluster))
    # The same run again is served from what the first one gave back.
    res2, errs2 = pyexecute(c, REPARTITION)
    assert errs2 == [] and sorted((r["key"], r["value"]) for r in parse(res2)) == counts
    second = pool_totals(cluster)
    hits = lambda infos: sum(p["rg_gearshift_pool_hits"] for p in infos)  # noqa: E731
    assert hits(second) > hits(first), "buffers are reused"
    assert all(p["rg_gearshift_queued_batches"] == 0 for p in second)
    c.close()
