"""A shard dies mid-run (issue 10's one cluster fault case): kill -9 a master while a
distributed run is in flight. Desired: the run ends with an error within a bound (the other
shards give up after ExecutionMaxIdleTime, 5 s by default), the survivors stay up, and once
the dead node is back the cluster answers distributed runs again.
"""

import os
import signal
import subprocess
import threading
import time

import pytest
import redis
from harness import FULL, Cluster, answers_ping, client, poll

KEYS_PER_SHARD_ABOUT = 200
RUN_BOUND = 30.0  # seconds the initiator may take to end the broken run
RECOVERY_BOUND = 40.0

# Every record sleeps, so each shard's part runs for a few seconds: long enough to be killed.
SLOW_RUN = (
    "import time\n"
    "def slow(x):\n"
    "    time.sleep(0.01)\n"
    "    return x['key']\n"
    "GB().map(slow).collect().run('fault:*')"
)


def restart_on_same_port(node):
    """Starts a killed node again on its port and dir, so nodes.conf brings it back as the
    same cluster member."""
    node.proc = subprocess.Popen(node._argv(), cwd=node.dir, stdin=subprocess.DEVNULL)
    assert node._wait_ready(), f"the killed node did not come back:\n{node.log_tail()}"


def cluster_ok(cluster):
    for n in cluster.nodes:
        try:
            info = client(n, timeout=2).execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return False
        if "cluster_state:ok" not in info:
            return False
    return True


# cluster-node-timeout (ms) and how long after the kill the run may take to fail. A short
# node timeout keeps the quick run short: the node is marked failed after it, and back
# after twice it. With Redis's default (15 s), the run still waits for the cluster to
# declare the node failed instead of ending after ExecutionMaxIdleTime (5 s): a finding.
CASES = [
    pytest.param(4000, RUN_BOUND, id="node-timeout-4s"),
    pytest.param(
        15000, 12.0, id="node-timeout-15s",
        marks=[
            pytest.mark.skipif(not FULL, reason="full mode only (about a minute)"),
            pytest.mark.xfail(strict=True, reason="harness finding: a dead shard is noticed only at cluster-node-timeout, not ExecutionMaxIdleTime"),
        ],
    ),
]  # fmt: skip


@pytest.mark.parametrize("node_timeout, run_bound", CASES)
def test_killed_shard_ends_the_run_with_an_error_and_the_cluster_recovers(node_timeout, run_bound):
    cluster = Cluster()
    for n in cluster.nodes:
        n.server_args += ["--cluster-node-timeout", str(node_timeout)]
    with cluster:
        cc = cluster.cluster_client()
        for i in range(3 * KEYS_PER_SHARD_ABOUT):
            cc.set(f"fault:{i}", i)
        cc.close()

        initiator = client(cluster.nodes[0], timeout=RUN_BOUND + 10)
        outcome = {}

        def run():
            t0 = time.monotonic()
            try:
                outcome["reply"] = initiator.execute_command("RG.PYEXECUTE", SLOW_RUN)
            except redis.RedisError as e:
                outcome["reply"] = e
            outcome["seconds"] = time.monotonic() - t0

        t = threading.Thread(target=run, daemon=True)
        t.start()
        victim = cluster.nodes[2]
        time.sleep(0.7)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        t.join(RUN_BOUND + 15)

        assert not t.is_alive(), f"the run did not end within {RUN_BOUND} s of the kill"
        assert outcome["seconds"] <= run_bound, f"the run failed only after {outcome['seconds']:.1f} s"
        reply = outcome["reply"]
        assert not isinstance(reply, (redis.TimeoutError, redis.ConnectionError)), reply
        failed = isinstance(reply, redis.ResponseError) or bool(reply[1])
        assert failed, f"a run that lost a shard replied without an error: {reply!r}"
        assert answers_ping(cluster.nodes[0]) and answers_ping(cluster.nodes[1])

        restart_on_same_port(victim)
        assert poll(lambda: cluster_ok(cluster), RECOVERY_BOUND, 0.2), "cluster_state not ok"

        def counted():
            try:
                res, errs = client(cluster.nodes[0], timeout=20).execute_command(
                    "RG.PYEXECUTE", "GB().count().run('fault:*')"
                )
            except redis.RedisError:
                return None
            return (res, errs) if not errs else None

        # The killed node lost its unsaved keys; the survivors' keys are all counted.
        got = poll(counted, RECOVERY_BOUND, 0.5)
        assert got, "no distributed run succeeds after the node came back"
        expected = sum(client(n).dbsize() for n in cluster.nodes)
        assert int(got[0][0]) == expected, got
