"""INFO rg's queue depths (issue #13) under load, not only at rest: `queued_batches` counts the
batches waiting between a run's stages while a slow stage holds them back, and `events_pending`
the keyspace events waiting for a registration whose handler is busy; both go back to 0 once
the work is done. (test_info_pool.py checks the pool fields and the depths at rest.)

Each slow step waits for a `gate` key the test sets, so nothing depends on timing: the test
polls INFO (bounded) until the depth shows, then opens the gate."""

from conftest import fresh_server, pyexecute, wait_for

KEYS = 5000
# The Python stage holds its first record until the test sets `gate`; the reader meanwhile
# fills the bounded queue in front of it (KeysReader batches are at most 1,024 keys).
HELD_RUN = """
import time
def hold(x):
    execute('SET', 'started', '1')
    while execute('GET', 'gate') is None:
        time.sleep(0.01)
    return x
GB().map(hold).count().run('person:*')
"""

# Every event's handler waits for `gate`: while the first waits, later events stay queued.
HELD_REGISTRATION = """
import time
def hold(x):
    execute('INCR', 'handled')
    while execute('GET', 'gate') is None:
        time.sleep(0.01)
GB().foreach(hold).register('ev:*')
"""


def field(c, name):
    return c.info("rg")[f"rg_gearshift_{name}"]


def test_queued_batches_shows_a_stage_held_back_then_drains():
    with fresh_server() as srv:
        c = srv.client()
        for i in range(0, KEYS, 500):
            with c.pipeline(transaction=False) as p:
                for j in range(i, i + 500):
                    p.hset(f"person:{j}", mapping={"age": j % 90})
                p.execute()
        assert field(c, "queued_batches") == 0
        eid = pyexecute(c, HELD_RUN, "UNBLOCKING")
        assert wait_for(lambda: c.get("started") == "1", timeout=20), "the Python stage started"
        assert wait_for(lambda: field(c, "queued_batches") > 0, timeout=20), (
            "batches wait in front of the held stage"
        )
        c.set("gate", "1")
        res = c.execute_command("RG.GETRESULTSBLOCKING", eid)
        assert res[0] == [str(KEYS)] and res[1] == [], res
        assert wait_for(lambda: field(c, "queued_batches") == 0, timeout=20), field(c, "queued_batches")


def test_events_pending_shows_events_waiting_for_a_busy_handler_then_drains():
    with fresh_server() as srv:
        c = srv.client()
        assert pyexecute(c, HELD_REGISTRATION) == "OK"
        c.set("ev:first", "1")
        assert wait_for(lambda: c.get("handled") == "1", timeout=20), "the first event is being handled"
        for i in range(50):
            c.set(f"ev:{i}", "1")
        assert wait_for(lambda: field(c, "events_pending") > 0, timeout=20), "later events wait"
        c.set("gate", "1")
        assert wait_for(lambda: c.get("handled") == "51", timeout=30), c.get("handled")
        assert wait_for(lambda: field(c, "events_pending") == 0, timeout=20), field(c, "events_pending")
