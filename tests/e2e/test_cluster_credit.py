"""The shuffle's credit-based flow control on a real 3-master Redis Cluster: with a window
of one bundle in flight per destination (`ShuffleCreditWindow 1`, the tightest), collect
and repartition give the same answers, big ones (many 256 KiB bundles per shard, most of
them waiting for credit) complete, and the window is a config key (docs/configuration.md)."""

import pytest
from conftest import Cluster, parse, pyexecute
from seed_scripts import COUNTBY, FAMILIES, REPARTITION

from test_cluster import PEOPLE, by_key

ROWS = 30_000
PAD = "x" * 200


@pytest.fixture(scope="module")
def cluster():
    with Cluster(ShuffleCreditWindow=1) as c:
        yield c


@pytest.fixture(scope="module")
def loaded(cluster):
    """The seed's people plus ROWS padded strings (about 6 MB in all)."""
    for i in range(len(cluster.nodes)):
        c = cluster.client(i)
        c.flushall()
        c.close()
    cc = cluster.cluster_client()
    for k, (name, age) in PEOPLE.items():
        cc.hset(k, mapping={"name": name, "age": age})
    pipe = cc.pipeline(transaction=False)
    for i in range(ROWS):
        pipe.set(f"big:{i}", f"{i % 1000:04d}{PAD}")
    pipe.execute()
    cc.close()
    client = cluster.client(0)
    yield client
    client.close()
    assert cluster.alive(), "a cluster node died"


def test_window_is_a_config_key(cluster):
    c = cluster.client(1)
    try:
        assert c.execute_command("RG.CONFIGGET", "ShuffleCreditWindow") == [1]
        assert c.execute_command("CONFIG", "GET", "rg.shuffle-credit-window") == {
            "rg.shuffle-credit-window": "1"
        }
        assert c.execute_command("RG.CONFIGSET", "ShuffleCreditWindow", "8") == ["OK"]
        assert c.execute_command("RG.CONFIGGET", "ShuffleCreditWindow") == [8]
        c.execute_command("CONFIG", "SET", "rg.shuffle-credit-window", "0")
        assert c.execute_command("RG.CONFIGGET", "ShuffleCreditWindow") == [0]
    finally:
        c.execute_command("RG.CONFIGSET", "ShuffleCreditWindow", "1")
    assert c.execute_command("RG.CONFIGGET", "ShuffleCreditWindow") == [1]
    c.close()


def test_seed_shuffles_are_unchanged_with_window_one(loaded):
    res, errs = pyexecute(loaded, COUNTBY)
    assert errs == [] and by_key(parse(res)) == by_key(FAMILIES)
    res, errs = pyexecute(loaded, REPARTITION)
    assert errs == [] and by_key(parse(res)) == by_key(FAMILIES)


def test_big_collect_completes_with_window_one(loaded):
    res, errs = pyexecute(loaded, "GB().map(lambda r: r['value']).run('big:*')")
    assert errs == []
    assert len(res) == ROWS
    assert sorted(int(v[:4]) for v in res) == sorted(i % 1000 for i in range(ROWS))


def test_an_initiator_at_window_zero_still_returns_credits(loaded):
    """Windows are each shard's own config: shards at window 1 send a big collect to an
    initiator at window 0, which must still return their credits (else they wait for the
    idle bound and the run fails with max idle)."""
    loaded.execute_command("RG.CONFIGSET", "ShuffleCreditWindow", "0")
    try:
        test_big_collect_completes_with_window_one(loaded)
    finally:
        loaded.execute_command("RG.CONFIGSET", "ShuffleCreditWindow", "1")


def test_big_repartition_completes_with_window_one(loaded):
    script = (
        "GB().repartition(lambda r: r['value'][:4])"
        ".countby(lambda r: r['value'][:4]).run('big:*')"
    )
    res, errs = pyexecute(loaded, script)
    assert errs == []
    counts = {r["key"]: int(r["value"]) for r in parse(res)}
    assert counts == {f"{b:04d}": ROWS // 1000 for b in range(1000)}
