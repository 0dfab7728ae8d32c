"""An outsider's probe of Gearshift on a real replica (REFERENCE §2.2, §9, §12.4): a replica
runs no registrations and no stream work, gets the sessions and registrations, and after
`REPLICAOF NO ONE` processes what its streams still hold. test_streams_conformance.py,
test_persistence.py and test_register.py hold the rest.
"""

import contextlib

import pytest
import redis

from conftest import fresh_server, holds_for, pyexecute, steady, wait_for


def regs(c, reader="StreamReader"):
    return [x for x in c.execute_command("RG.DUMPREGISTRATIONS") if x[3] == reader]


def reg_data(c, reader="StreamReader"):
    d = regs(c, reader)[0][7]
    return dict(zip(d[0::2], d[1::2]))


def link_up(replica_client):
    return replica_client.info("replication").get("master_link_status") == "up"


@contextlib.contextmanager
def pair(**module_args):
    """A master and a replica of it, both with the module loaded."""
    with fresh_server(**module_args) as master, fresh_server(**module_args) as replica:
        m, r = master.client(), replica.client()
        r.execute_command("REPLICAOF", "127.0.0.1", master.port)
        assert wait_for(lambda: link_up(r), timeout=10)
        yield master, replica, m, r


def test_an_aborted_batch_is_processed_by_the_promoted_replica():
    # The master fails the sixth entry (it has a replica) and aborts the registration; the
    # entries it left unacked are the promoted replica's to process.
    script = (
        "def f(r):\n"
        "    replicas = int(execute('INFO', 'replication').split('\\n')[2].split(':')[1])\n"
        "    n = execute('GET', 'NumOfElements')\n"
        "    if n is not None and int(n) == 5 and replicas == 1:\n"
        "        execute('SET', 'inside_loop', '1')\n"
        "        raise Exception('stop')\n"
        "    execute('INCR', 'NumOfElements')\n"
        "GB('StreamReader').foreach(f).register(regex='stream', batch=3, onFailedPolicy='abort')\n"
    )
    with pair() as (_, _, m, r):
        pyexecute(m, script)
        assert wait_for(lambda: regs(r), timeout=10)
        for _ in range(3):
            m.xadd("stream", {"foo": "bar"})
        assert wait_for(lambda: m.get("NumOfElements") == "3", timeout=10)
        for _ in range(3):
            m.xadd("stream", {"foo": "bar"})
        assert wait_for(lambda: m.get("NumOfElements") == "5" and m.get("inside_loop") == "1", timeout=10)
        assert wait_for(lambda: reg_data(m)["status"] == "ABORTED")
        assert m.execute_command("WAIT", 1, 2000) == 1
        r.execute_command("SLAVEOF", "NO", "ONE")
        assert wait_for(lambda: r.get("NumOfElements") == "8", timeout=10), r.get("NumOfElements")


def test_a_demoted_master_stops_retrying_and_resumes_when_promoted_again():
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, "GB('StreamReader').map(lambda x: x['error']).register(onFailedPolicy='retry', onFailedRetryInterval=1)")
        c.xadd("s", {"foo": "bar"})
        triggered = lambda: reg_data(c)["numTriggered"]  # noqa: E731
        first = triggered()
        assert wait_for(lambda: triggered() > first, timeout=4), "the master retries"
        for _ in range(2):
            # A master nobody answers on: this server stays a replica, its data untouched.
            c.execute_command("SLAVEOF", "127.0.0.1", "1")
            assert steady(triggered, 2.5, timeout=8) is not None, "a replica does not retry"
            c.execute_command("SLAVEOF", "NO", "ONE")
            now = triggered()
            assert wait_for(lambda: triggered() > now, timeout=5), "promoted, it retries again"


def test_a_replica_attached_later_gets_the_registrations_and_runs_nothing():
    with fresh_server() as master, fresh_server() as replica:
        m, r = master.client(), replica.client()
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'late')).register('lr*', trimStream=False)", "ID", "sess")
        pyexecute(m, "GB().foreach(lambda x: execute('INCR', 'keys_seen')).register(prefix='k:*')")
        m.xadd("lr1", {"a": 1})
        assert wait_for(lambda: m.get("late") == "1")
        r.execute_command("REPLICAOF", "127.0.0.1", master.port)
        assert wait_for(lambda: link_up(r), timeout=10)
        assert sorted(x[1] for x in r.execute_command("RG.DUMPREGISTRATIONS")) == \
            sorted(x[1] for x in m.execute_command("RG.DUMPREGISTRATIONS"))
        assert sorted(s[1] for s in r.execute_command("RG.PYDUMPSESSIONS")) == \
            sorted(s[1] for s in m.execute_command("RG.PYDUMPSESSIONS"))
        assert "sess" in [s[1] for s in r.execute_command("RG.PYDUMPSESSIONS")]
        m.xadd("lr1", {"a": 2})
        m.set("k:1", "x")
        assert wait_for(lambda: m.get("late") == "2" and m.get("keys_seen") == "1")
        assert m.execute_command("WAIT", 1, 2000) == 1
        assert holds_for(lambda: (r.get("late"), r.get("keys_seen")) == ("2", "1"), 0.5)
        assert [g["name"] for g in r.xinfo_groups("lr1")] == ["__gears_consumer_group__"]
        assert r.xpending("lr1", "__gears_consumer_group__")["pending"] == 0, "the acks replicated"
        for reader in ("StreamReader", "KeysReader"):
            assert reg_data(r, reader)["numTriggered"] == 0


def test_a_promoted_replica_runs_keys_and_stream_registrations_on_new_writes():
    with pair() as (_, _, m, r):
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'sn')).register('ps')")
        pyexecute(m, "GB().foreach(lambda x: execute('INCR', 'kn')).register(prefix='pk:*', mode='sync')")
        assert wait_for(lambda: len(r.execute_command("RG.DUMPREGISTRATIONS")) == 2, timeout=10)
        r.execute_command("REPLICAOF", "NO", "ONE")
        r.set("pk:1", "v")
        assert r.get("kn") == "1", "the promoted replica's KeysReader fires"
        r.xadd("ps", {"a": 1})
        assert wait_for(lambda: r.get("sn") == "1", timeout=5)
        assert wait_for(lambda: r.xlen("ps") == 0)
        assert m.get("sn") is None and m.get("kn") is None, "the old master saw none of it"


def test_sync_stream_registration_does_not_run_on_the_replica():
    with pair() as (_, _, m, r):
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'syn')).register('sy', mode='sync')")
        assert wait_for(lambda: regs(r), timeout=10)
        m.xadd("sy", {"a": 1})
        assert m.get("syn") == "1"
        assert m.execute_command("WAIT", 1, 2000) == 1
        assert r.get("syn") == "1", "the master's INCR replicated, once"
        # The ack and trim replicate right after the XADD (a timer), so WAIT may beat them.
        assert wait_for(lambda: r.xlen("sy") == 0), "the trim replicated after the entry"
        assert holds_for(lambda: r.get("syn") == "1", 0.3)
        assert reg_data(r)["numTriggered"] == 0


def test_upgrade_and_unregister_reach_the_replica():
    script = "GB('StreamReader').foreach(lambda x: execute('INCR', '%s')).register('up')"
    with pair() as (_, _, m, r):
        pyexecute(m, script % "v1", "ID", "upg")
        assert wait_for(lambda: regs(r), timeout=10)
        old = regs(r)[0][1]
        pyexecute(m, script % "v2", "ID", "upg", "UPGRADE")
        assert wait_for(lambda: [x[1] for x in regs(r)] == [x[1] for x in regs(m)] != [old], timeout=10)
        m.xadd("up", {"a": 1})
        assert wait_for(lambda: m.get("v2") == "1")
        assert m.execute_command("WAIT", 1, 2000) == 1
        assert (r.get("v1"), r.get("v2")) == (None, "1")
        m.execute_command("RG.UNREGISTER", regs(m)[0][1])
        assert wait_for(lambda: regs(r) == [], timeout=10)


def test_pyexecute_on_a_replica_is_refused_and_changes_nothing():
    # A deliberate difference (docs/compat.md, docs/security.md): 1.2 flags RG.PYEXECUTE
    # readonly and runs it on a replica; Gearshift flags it write, so a read-only replica
    # refuses it and its registrations and data come from its master only.
    with pair() as (_, _, m, r):
        m.set("x", "1")
        assert m.execute_command("WAIT", 1, 2000) == 1
        for script in ("GB().map(lambda x: x['key']).run()", "GB().register(prefix='z*')"):
            with pytest.raises(redis.ReadOnlyError):
                r.execute_command("RG.PYEXECUTE", script)
        assert r.execute_command("RG.DUMPREGISTRATIONS") == []
        assert r.keys("*") == ["x"]


def test_replica_of_a_replica_gets_registrations_and_runs_nothing():
    with pair() as (_, replica, m, r), fresh_server() as sub:
        s = sub.client()
        s.execute_command("REPLICAOF", "127.0.0.1", replica.port)
        assert wait_for(lambda: link_up(s), timeout=10)
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'chain')).register('ch')")
        assert wait_for(lambda: regs(s), timeout=10)
        m.xadd("ch", {"a": 1})
        assert wait_for(lambda: m.get("chain") == "1")
        assert wait_for(lambda: s.get("chain") == "1" and s.xlen("ch") == 0, timeout=5)
        assert reg_data(s)["numTriggered"] == 0 and reg_data(r)["numTriggered"] == 0


def test_pause_on_the_replica_is_its_own():
    with pair() as (_, _, m, r):
        pyexecute(m, "GB('StreamReader').foreach(lambda x: execute('INCR', 'prn')).register('pr')")
        assert wait_for(lambda: regs(r), timeout=10)
        rid = regs(r)[0][1]
        try:
            reply = r.execute_command("RG.PAUSEREGISTRATIONS", rid)
        except redis.ResponseError as e:
            reply = str(e)
        assert reply == "OK" or reply, reply
        m.xadd("pr", {"a": 1})
        assert wait_for(lambda: m.get("prn") == "1"), "the master is not paused by its replica"
