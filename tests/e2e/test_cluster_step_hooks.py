"""Registrations made from a running step and hooked commands on a real 3-master Redis
Cluster (REFERENCE §12.7, §12.6, §12.8): `register()` called in a step reaches every
shard, as a top-level registration does, and unregistering it reaches every shard too; a
hook or `commands=[...]` registration whose plan crosses shards runs as a distributed
execution, started on every shard and collected where the command ran."""

import pytest
from conftest import Cluster, pyexecute, wait_for

from test_cluster import rc  # noqa: F401  (the seeded-cluster fixture)


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        yield c


def _owner(cluster, key):
    cc = cluster.cluster_client()
    port = cc.get_node_from_key(key).port
    cc.close()
    return [n.port for n in cluster.nodes].index(port)


def _hashtags(cluster):
    script = "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')"
    return cluster.each(lambda c: pyexecute(c, script)[0][0])


def _ids_with(c, text):
    """Ids of this shard's registrations whose listing mentions `text`."""
    return [r[1] for r in c.execute_command("RG.DUMPREGISTRATIONS") if text in str(r)]


STEP_REGISTERS = (
    "def inner(x):\n"
    "    GB('CommandReader').map(lambda r: 'inner:' + hashtag()).register(trigger='inner', mode='async_local')\n"
    "GB('CommandReader').foreach(inner).register(trigger='outer', mode='async_local')"
)


def test_step_registration_reaches_every_shard(cluster, rc):
    assert pyexecute(rc, STEP_REGISTERS) == "OK"
    rc.execute_command("RG.TRIGGER", "outer")
    [rid] = _ids_with(rc, "'inner'")
    assert wait_for(lambda: cluster.each(lambda c: _ids_with(c, "'inner'")) == [[rid]] * 3)
    tags = _hashtags(cluster)
    got = cluster.each(lambda c: c.execute_command("RG.TRIGGER", "inner"))
    assert got == [[f"inner:{t}"] for t in tags]


def test_step_registration_unregister_reaches_every_shard(cluster, rc):
    assert pyexecute(rc, STEP_REGISTERS) == "OK"
    rc.execute_command("RG.TRIGGER", "outer")
    [rid] = _ids_with(rc, "'inner'")
    assert wait_for(lambda: cluster.each(lambda c: _ids_with(c, "'inner'")) == [[rid]] * 3)
    assert rc.execute_command("RG.UNREGISTER", rid) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: _ids_with(c, "'inner'")) == [[]] * 3)
    # The step's session keeps its own registration on every shard.
    assert cluster.each(lambda c: len(_ids_with(c, "'outer'"))) == [1] * 3


def test_step_registration_made_on_another_shard_reaches_the_others(cluster, rc):
    """The outer trigger fires on shard C: its step's registration reaches A and B."""
    assert pyexecute(rc, STEP_REGISTERS) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(_ids_with(c, "'outer'"))) == [1] * 3)
    c = cluster.client(2)
    c.execute_command("RG.TRIGGER", "outer")
    [rid] = _ids_with(c, "'inner'")
    c.close()
    assert wait_for(lambda: cluster.each(lambda c: _ids_with(c, "'inner'")) == [[rid]] * 3)


def test_step_registrations_made_on_two_shards_are_all_kept(cluster, rc):
    """Each shard's step registers its own trigger: every shard ends with both, and the
    one made on a shard is not lost when the other's arrives."""
    script = (
        "def inner(x):\n"
        "    name = 't_' + x['key']\n"
        "    GB('CommandReader').map(lambda r: 'ok').register(trigger=name, mode='async_local')\n"
        "GB().foreach(inner).register(prefix='sk:*', mode='sync')"
    )
    assert pyexecute(rc, script) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    keys = [_key_on(cluster, 1, "sk:"), _key_on(cluster, 2, "sk:")]
    for shard, key in zip((1, 2), keys):
        c = cluster.client(shard)
        c.set(key, "v")
        c.close()
    names = sorted(f"t_{k}" for k in keys)
    listed = lambda c: sorted(n for n in names if _ids_with(c, f"'{n}'"))  # noqa: E731
    assert wait_for(lambda: cluster.each(listed) == [names] * 3), cluster.each(listed)
    assert cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [3] * 3


def _raw(c):
    """`c` replying as the server does (redis-py turns SET's reply into a bool)."""
    c.response_callbacks.pop("SET", None)
    return c


def _key_on(cluster, shard, prefix):
    return next(f"{prefix}{i}" for i in range(1000) if _owner(cluster, f"{prefix}{i}") == shard)


def test_hook_with_count_runs_on_every_shard(cluster, rc):
    """1.2 runs a hook like a trigger: an async plan that crosses shards is distributed,
    each shard's reader yields the hooked command; the one record is the reply."""
    assert pyexecute(rc, "GB('CommandReader').count().register(hook='hset')") == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    for shard in range(3):
        c = cluster.client(shard)
        key = _key_on(cluster, shard, "hh:")
        assert int(c.execute_command("HSET", key, "f", "v")) == 3
        c.close()


def test_hook_without_cross_shard_steps_stays_local(cluster, rc):
    script = "GB('CommandReader').map(lambda x: call_next(*x[1:])).register(hook='hset', mode='async_local')"
    assert pyexecute(rc, script) == "OK"
    key = _key_on(cluster, 0, "hl:")
    assert int(rc.execute_command("HSET", key, "f", "v")) == 1
    assert rc.execute_command("HGET", key, "f") == "v"


def test_distributed_hook_calls_next_where_the_command_ran(cluster, rc):
    """A default (async) hook collects every shard's record; `call_next` runs the real
    command in the part on the shard where the command ran."""
    tag = _hashtags(cluster)[0]
    script = (
        f"GB('CommandReader').filter(lambda x: hashtag() == '{tag}')"
        ".map(lambda x: call_next(*x[1:])).register(hook='hset')"
    )
    assert pyexecute(rc, script) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    key = _key_on(cluster, 0, "hn:")
    assert int(rc.execute_command("HSET", key, "f", "v")) == 1
    assert rc.execute_command("HGET", key, "f") == "v"


def test_distributed_hook_calls_next_after_an_await(cluster, rc):
    """A distributed hook whose step awaits parks and resumes with the hooked command still
    in reach: `call_next` in the step after the await runs the real command."""
    tag = _hashtags(cluster)[0]
    script = (
        "import asyncio\n"
        "async def pause(x):\n"
        "    await asyncio.sleep(0.05)\n"
        "    return x\n"
        f"GB('CommandReader').filter(lambda x: hashtag() == '{tag}').map(pause)"
        ".map(lambda x: call_next(*x[1:])).register(hook='hset')"
    )
    assert pyexecute(rc, script) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    key = _key_on(cluster, 0, "ha:")
    assert int(rc.execute_command("HSET", key, "f", "v")) == 1
    assert rc.execute_command("HGET", key, "f") == "v"


def test_distributed_hook_is_dropped_on_every_shard(cluster, rc):
    assert pyexecute(rc, "GB('CommandReader').count().register(hook='hset')") == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    assert int(rc.execute_command("HSET", _key_on(cluster, 0, "hd:"), "f", "v")) == 3
    assert wait_for(lambda: cluster.each(lambda c: c.execute_command("RG.DUMPEXECUTIONS")) == [[]] * 3)


def test_commands_registration_repartition_runs_on_every_shard(cluster, rc):
    """A `commands=[...]` registration's event is read where it fired; its repartition
    moves the record to the owner of the extracted key and the run is collected back
    before the command replies."""
    script = (
        "GB().repartition(lambda r: 'pin').map(lambda r: hashtag())"
        ".register(prefix='ck:*', commands=['set'])"
    )
    assert pyexecute(rc, script) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    tags = _hashtags(cluster)
    pin = _owner(cluster, "pin")
    fired = (pin + 1) % 3
    key = _key_on(cluster, fired, "ck:")
    c = _raw(cluster.client(fired))
    assert c.execute_command("SET", key, "v") == "OK"
    done = [e for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] == "done"]
    assert len(done) == 1, done
    assert c.execute_command("RG.GETRESULTS", done[0][1]) == [[tags[pin]], []]
    c.close()


def test_commands_registration_override_reply_with_count(cluster, rc):
    """The reply waits for the distributed run; a step on the firing shard overrides it."""
    script = (
        "GB().foreach(lambda r: override_reply('seen')).repartition(lambda r: 'pin')"
        ".register(prefix='ok:*', commands=['set'])"
    )
    assert pyexecute(rc, script) == "OK"
    assert wait_for(lambda: cluster.each(lambda c: len(c.execute_command("RG.DUMPREGISTRATIONS"))) == [1] * 3)
    fired = (_owner(cluster, "pin") + 1) % 3
    c = _raw(cluster.client(fired))
    assert c.execute_command("SET", _key_on(cluster, fired, "ok:"), "v") == "seen"
    c.close()
