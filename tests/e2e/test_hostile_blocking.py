"""Commands that block their client (they answer when an execution or the other shards do),
reached where no client can block: from user code's execute() (a module's call, which
Redis 7.0 aborts on if it blocks), MULTI or Lua. Each must answer at once."""

import pytest
import redis

from conftest import Cluster, assert_alive, pyexecute, unregister_all

CANNOT_WAIT = "blocking is not allowed"

SLOW = """
import time
def slow(x):
    time.sleep(3)
    return 'slow'
GB('ShardsIDReader').map(slow).run()
"""


def through_execute(r, *command):
    args = ", ".join(repr(a) for a in command)
    return pyexecute(r, f"GB('ShardsIDReader').map(lambda x: str(execute({args}))).run()")


def test_getresultsblocking_from_execute_answers_at_once(r, server):
    out = through_execute(r, "RG.GETRESULTSBLOCKING", "0000000000000000000000000000000000000000-999")
    assert out[0] == [] and "execution plan does not exist" in str(out[1])
    done = pyexecute(r, "GB('ShardsIDReader').map(lambda x: 'done').run()", "UNBLOCKING")
    assert r.execute_command("RG.GETRESULTSBLOCKING", done) == [["done"], []]
    assert through_execute(r, "RG.GETRESULTSBLOCKING", done) == [[str([["done"], []])], []]
    running = pyexecute(r, SLOW, "UNBLOCKING")
    out = through_execute(r, "RG.GETRESULTSBLOCKING", running)
    assert out[0] == [] and CANNOT_WAIT in str(out[1])
    assert_alive(r, server)
    assert r.execute_command("RG.GETRESULTSBLOCKING", running) == [["slow"], []]


def test_getresultsblocking_in_lua_and_multi_answers_at_once(r, server):
    running = pyexecute(r, SLOW, "UNBLOCKING")
    with pytest.raises(redis.ResponseError, match=CANNOT_WAIT):
        r.eval("return redis.call('RG.GETRESULTSBLOCKING', ARGV[1])", 0, running)
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("RG.GETRESULTSBLOCKING", running)
    (reply,) = pipe.execute(raise_on_error=False)
    assert isinstance(reply, redis.ResponseError) and CANNOT_WAIT in str(reply)
    assert_alive(r, server)
    assert r.execute_command("RG.GETRESULTSBLOCKING", running) == [["slow"], []]


def test_cluster_wide_commands_from_execute_answer_at_once():
    # In a cluster these ask the other shards and answer when they have: from execute()
    # they tell the other shards and answer with this shard's result.
    with Cluster() as cluster:
        r = cluster.client(0)
        try:
            pyexecute(r, "GB('StreamReader').register(prefix='st*')")
            reg = r.execute_command("RG.DUMPREGISTRATIONS")[0][1]
            done = pyexecute(r, "GB('ShardsIDReader').map(lambda x: 'x').run()", "UNBLOCKING")
            r.execute_command("RG.GETRESULTSBLOCKING", done)
            for command in [
                ("RG.CLEARREGISTRATIONSSTATS",),
                ("RG.PAUSEREGISTRATIONS", reg),
                ("RG.UNPAUSEREGISTRATIONS", reg),
                ("RG.GETEXECUTION", done),
                ("RG.GETEXECUTION", done, "CLUSTER"),
                ("RG.ABORTEXECUTION", done),
            ]:
                out = through_execute(r, *command)
                assert len(out[0]) + len(out[1]) == 3, (command, out)  # one per shard
                assert cluster.alive(), f"{command} took a node down"
            assert r.eval("return redis.call('RG.CLEARREGISTRATIONSSTATS')", 0) == "OK"
            assert cluster.alive()
        finally:
            unregister_all(r)
            r.close()
