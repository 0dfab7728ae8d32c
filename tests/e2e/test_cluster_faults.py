"""Faults on a real 3-master cluster: a shard stopped (SIGSTOP) while distributed work is in
flight. The initiator must answer within a bound, no execution may stay `running` once the
shard is back, and the cluster must work normally afterwards.

The cluster's node timeout is long (60 s) so that a stopped shard is never declared failed
during a test: what ends a run is Gearshift's own idle bound (`ExecutionMaxIdleTime`, 1 s
here), not Redis noticing the node is gone. Every stopped process is resumed in `finally`.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time

import pytest
import redis
from conftest import Cluster, wait_for

IDLE_MS = 1000
NODE_TIMEOUT_MS = 60000
# Seconds the initiator may take to answer while a shard is stopped: a few idle periods
# (the step's idle bound, the wait for the part's `Done`, the probe of silent shards) plus
# slack for a loaded 2-core machine; far below the node timeout, which ends a hung run too.
ANSWER_BOUND = 20.0
KEYS = 300

GROUPBY = "GB().groupby(lambda r: r['key'], lambda k, a, r: (a or 0) + 1).run()"
REPARTITION = "GB().repartition(lambda r: r['key']).map(lambda r: r['key']).run()"
COLLECT = "GB().map(lambda r: r['key']).collect().run()"


@pytest.fixture(scope="module")
def cluster():
    cl = Cluster(ExecutionMaxIdleTime=IDLE_MS)
    for n in cl.nodes:
        n.server_args += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
    with cl:
        cc = cl.cluster_client()
        for i in range(KEYS):
            cc.set(f"k{i}", i)
        cc.close()
        yield cl


@contextlib.contextmanager
def stopped(node):
    """`node` SIGSTOPped for the block, always resumed."""
    os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)


def timed(node, *args, timeout=ANSWER_BOUND + 15):
    """(seconds, reply or the error) of one command, on its own connection."""
    c = redis.Redis(host="127.0.0.1", port=node.port, decode_responses=True,
                    socket_timeout=timeout, socket_connect_timeout=5)  # fmt: skip
    t0 = time.monotonic()
    try:
        reply = c.execute_command(*args)
    except redis.RedisError as err:
        reply = err
    finally:
        c.close()
    return time.monotonic() - t0, reply


def unfinished(cluster):
    """Executions not `done` on any node: (node index, id, status)."""
    out = []
    for i, n in enumerate(cluster.nodes):
        c = n.client()
        try:
            out += [(i, e[1], e[3]) for e in c.execute_command("RG.DUMPEXECUTIONS") if e[3] != "done"]
        finally:
            c.close()
    return out


def assert_recovers(cluster):
    """Once the shard is back: nothing stays running anywhere, and a distributed count works."""
    assert wait_for(lambda: not unfinished(cluster), timeout=ANSWER_BOUND), unfinished(cluster)
    took, reply = timed(cluster.nodes[0], "RG.PYEXECUTE", "GB().count().run()")
    assert reply == [[str(KEYS)], []], reply
    assert all(n.alive() for n in cluster.nodes)


@pytest.mark.parametrize("script", [GROUPBY, REPARTITION, COLLECT], ids=["groupby", "repartition", "collect"])
def test_a_run_with_a_stopped_shard_ends_within_the_bound(cluster, script):
    # Before the fix, groupby and repartition (two shards waiting on the stopped third)
    # never ended: each waiting shard's heartbeats counted as progress from every shard,
    # so the two kept each other waiting until Redis declared the node failed.
    with stopped(cluster.nodes[2]):
        took, reply = timed(cluster.nodes[0], "RG.PYEXECUTE", script)
    assert not isinstance(reply, redis.TimeoutError), f"no answer within {took:.1f} s"
    assert took <= ANSWER_BOUND, f"answered only after {took:.1f} s: {reply!r}"[:300]
    assert not isinstance(reply, redis.RedisError), reply
    assert "Execution max idle reached" in reply[1], reply[1]
    assert_recovers(cluster)


def test_a_stopped_shard_does_not_hang_a_blocking_wait_for_an_unblocking_run(cluster):
    with stopped(cluster.nodes[2]):
        _, eid = timed(cluster.nodes[0], "RG.PYEXECUTE", GROUPBY, "UNBLOCKING")
        took, reply = timed(cluster.nodes[0], "RG.GETRESULTSBLOCKING", eid)
    assert took <= ANSWER_BOUND, f"answered only after {took:.1f} s"
    assert not isinstance(reply, redis.RedisError), reply
    assert "Execution max idle reached" in reply[1], reply[1]
    assert_recovers(cluster)


def test_two_initiators_with_a_stopped_shard_both_answer(cluster):
    replies = {}

    def run(i):
        replies[i] = timed(cluster.nodes[i], "RG.PYEXECUTE", GROUPBY)

    with stopped(cluster.nodes[2]):
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(ANSWER_BOUND + 20)
    for i in (0, 1):
        took, reply = replies[i]
        assert took <= ANSWER_BOUND, f"node {i} answered only after {took:.1f} s"
        assert "Execution max idle reached" in reply[1], reply
    assert_recovers(cluster)


def restart_on_same_port(node):
    """Starts a killed node again on its port and dir: nodes.conf brings it back as the same
    cluster member, and its AOF brings back what it had."""
    node.proc = subprocess.Popen(node._argv(), cwd=node.dir, stdin=subprocess.DEVNULL)
    assert node._wait_ready(), f"the killed node did not come back:\n{node.log_tail()}"


def registration_ids(node):
    c = node.client()
    try:
        return sorted(r[1] for r in c.execute_command("RG.DUMPREGISTRATIONS"))
    finally:
        c.close()


def test_a_killed_shard_restarted_from_its_aof_has_the_registrations_of_the_others():
    # Before the fix, a shard wrote to its AOF only the registrations made through itself:
    # those it got from another shard over the bus (and unregistrations likewise) were not
    # there, so a shard restarted from its AOF, or its promoted replica, fired nothing. And
    # a restarted shard ran its registrations as a standalone server (ids of 40 zeros, the
    # wrong hashtag()) until a script or another shard's message made it read the topology.
    cl = Cluster(ExecutionMaxIdleTime=IDLE_MS)
    for n in cl.nodes:
        n.server_args += ["--cluster-node-timeout", "3000",
                          "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
    with cl:
        c = cl.client(0)
        c.execute_command("RG.PYEXECUTE", "GB().foreach(lambda r: execute('INCR', 'n{%s}' % hashtag())).register('ev*')")
        c.execute_command("RG.PYEXECUTE", "GB().register('gone*')")
        gone = [r[1] for r in c.execute_command("RG.DUMPREGISTRATIONS") if "gone*" in str(r)]
        assert len(gone) == 1
        assert c.execute_command("RG.UNREGISTER", gone[0]) == "OK"
        expected = registration_ids(cl.nodes[0])
        assert wait_for(lambda: registration_ids(cl.nodes[2]) == expected)
        victim = cl.nodes[2]
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        restart_on_same_port(victim)
        assert registration_ids(victim) == expected
        # Its registration fires on a key it owns, once it is back in the cluster.
        vc = victim.client()
        assert wait_for(lambda: "cluster_state:ok" in vc.execute_command("CLUSTER", "INFO"), timeout=30)
        # The node reads the topology within 100 ms of seeing cluster_state:ok (startup.rs);
        # any RG command would make it read at once, which is what this test must not need.
        time.sleep(0.5)
        own = owned_slots(vc)
        key = next(f"ev{i}" for i in range(1000) if vc.execute_command("CLUSTER", "KEYSLOT", f"ev{i}") in own)
        vc.set(key, 1)
        tag = vc.execute_command("RG.PYEXECUTE", "GB('ShardsIDReader').map(lambda x: hashtag()).run(collect=False)")[0][0]
        assert wait_for(lambda: vc.get(f"n{{{tag}}}") == "1"), vc.execute_command("RG.DUMPEXECUTIONS")
        vc.close()
        c.close()


def owned_slots(c):
    me = c.execute_command("CLUSTER", "MYID")
    ranges = [(lo, hi) for lo, hi, master, *_ in c.execute_command("CLUSTER", "SLOTS") if master[2] == me]
    return {s for lo, hi in ranges for s in range(lo, hi + 1)}


def test_runs_while_a_slot_migrates_count_each_key_once():
    # A slot MIGRATING from shard A to B, a key of it moved already: every run reads
    # each key once (A its keys, B the imported one), with no error and no lost key.
    with Cluster(ExecutionMaxIdleTime=IDLE_MS) as cl:
        cc = cl.cluster_client()
        for i in range(KEYS):
            cc.set(f"k{i}", i)
        cc.close()
        a, b = cl.client(0), cl.client(1)
        ida, idb = a.execute_command("CLUSTER", "MYID"), b.execute_command("CLUSTER", "MYID")
        slot = next(s for s in owned_slots(a) if a.execute_command("CLUSTER", "COUNTKEYSINSLOT", s) >= 1)
        key = a.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1)[0]
        b.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ida)
        a.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", idb)
        a.execute_command("MIGRATE", "127.0.0.1", cl.nodes[1].port, "", 0, 5000, "KEYS", key)
        counts = [REPARTITION.removesuffix(".run()"), GROUPBY.removesuffix(".run()"), "GB()"]
        for script in (f"{c}.count().run()" for c in counts):
            assert a.execute_command("RG.PYEXECUTE", script) == [[str(KEYS)], []], script
        a.close()
        b.close()
