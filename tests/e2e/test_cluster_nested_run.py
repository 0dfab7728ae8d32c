"""A nested `run()` on a 3-master cluster (REFERENCE §4.1, §12.3): `mode='async'` (the
default) runs on every shard, `async_local` on the calling shard only; either way it is
dropped everywhere once done. Every shard runs a nested run's part on its pool for that
depth: with one execution thread per shard, parts waiting for nested runs whose parts run on
the other shards complete."""

import pytest
from conftest import Cluster, pyexecute, wait_for


@pytest.fixture(scope="module")
def cluster():
    with Cluster(ExecutionThreads=1) as c:
        yield c


def listed(cluster):
    out = []
    for i in range(3):
        c = cluster.client(i)
        out += [e[1] for e in c.execute_command("RG.DUMPEXECUTIONS")]
        c.close()
    return out


def test_nested_run_runs_on_every_shard_or_locally(cluster):
    c = cluster.client(0)
    script = """
async def f(x):
    everywhere = await GB('ShardsIDReader').count().run()
    here = await GB('ShardsIDReader').count().run(mode='async_local')
    return [everywhere, here]
GB('ShardsIDReader').map(f).run(mode='async_local')
"""
    assert pyexecute(c, script) == [["[[['3'], []], [['1'], []]]"], []]
    c.close()
    assert wait_for(lambda: listed(cluster) == []), listed(cluster)


def test_waiting_parts_on_every_shard_do_not_deadlock(cluster):
    """Each shard's part of the outer run waits (holding that shard's only execution thread)
    for a nested run that needs a part on every other shard."""
    c = cluster.client(0)
    script = """
async def f(x):
    res = await GB('ShardsIDReader').count().run()
    return res
GB('ShardsIDReader').map(f).run()
"""
    assert pyexecute(c, script) == [["[['3'], []]"] * 3, []]
    c.close()
    assert wait_for(lambda: listed(cluster) == []), listed(cluster)
