"""Memory limits (issue 10, "Memory"): user code must stay inside maxmemory, and everything an
execution holds is freed when it is dropped. Desired behaviour: a clear error instead of an
unbounded allocation, executions that stop producing once the server is over maxmemory, and
used_memory back near its baseline after abort + drop.

Today's code passes none of these, so every wait here is also a memory bound: a test stops
(and fails) as soon as used_memory is far past what it should be, instead of letting the
machine run out.
"""

import time

import pytest
import redis
from harness import FULL, answers_ping, client, info_int, poll, server

MIB = 1 << 20
MAXMEMORY = 100 * MIB
# The case is 4 GB; quick mode asks for 1 GB, still 10x maxmemory, so that CI does
# not need 4 GB of free RAM while the defect is open.
HUGE = 4_000_000_000 if FULL else 1_000_000_000
ENDLESS = (
    "def endless():\n"
    "    i = 0\n"
    "    while True:\n"
    "        i += 1\n"
    "        yield 'x' * 1000 + str(i)\n"
    "GB('PythonReader').run(endless)"
)


def used(c):
    return info_int(c, "memory", "used_memory")


def plan_field(c, eid, field):
    plan = c.execute_command("RG.GETEXECUTION", eid, "SHARD")[0][3]
    return dict(zip(plan[::2], plan[1::2]))[field]


def test_huge_python_allocation_is_a_clear_error_under_maxmemory():
    with server(["--maxmemory", str(MAXMEMORY)]) as srv:
        c = client(srv, timeout=60)
        script = f"x = 'x' * {HUGE}\nGB('ShardsIDReader').map(lambda r: len(x)).run()"
        try:
            reply = c.execute_command("RG.PYEXECUTE", script)
        except redis.ResponseError as e:
            reply = str(e)
        assert answers_ping(srv)
        assert used(c) < 2 * MAXMEMORY, f"used_memory {used(c) // MIB} MiB"
        assert str(HUGE) not in str(reply), f"the allocation succeeded: {reply!r}"
        assert "memory" in str(reply).lower(), f"not a clear memory error: {reply!r}"


def test_endless_generator_stops_with_an_error_under_maxmemory():
    with server(["--maxmemory", str(MAXMEMORY)]) as srv:
        c = client(srv)
        eid = c.execute_command("RG.PYEXECUTE", ENDLESS, "UNBLOCKING")
        worst = 0

        def ended():
            nonlocal worst
            worst = max(worst, used(c))
            return worst > 4 * MAXMEMORY or plan_field(c, eid, "status") != "running"

        poll(ended, timeout=15, interval=0.1)
        status = plan_field(c, eid, "status")
        if status == "running":
            c.execute_command("RG.ABORTEXECUTION", eid)
        assert worst <= 4 * MAXMEMORY, f"used_memory reached {worst // MIB} MiB (status {status})"
        assert status != "running", "the run neither stopped nor outgrew the bound in 15 s"
        _, errors = c.execute_command("RG.GETRESULTS", eid)
        assert errors, "the run stopped without an error"
        assert answers_ping(srv)


def test_abort_and_drop_of_a_generator_run_frees_its_memory():
    with server() as srv:
        c = client(srv)
        time.sleep(0.2)
        baseline = used(c)
        for cycle in range(3):
            eid = c.execute_command("RG.PYEXECUTE", ENDLESS, "UNBLOCKING")
            grown = poll(lambda: used(c) > baseline + 50 * MIB, timeout=5)
            assert c.execute_command("RG.ABORTEXECUTION", eid) == "OK"
            assert poll(lambda: plan_field(c, eid, "status") != "running", timeout=5)
            assert c.execute_command("RG.DROPEXECUTION", eid) == "OK"
            back = poll(lambda: used(c) < baseline + 32 * MIB, timeout=5, interval=0.2)
            assert back, (
                f"cycle {cycle}: used_memory {(used(c) - baseline) // MIB} MiB above baseline "
                f"after abort + drop (grown past +50 MiB: {bool(grown)})"
            )
        assert answers_ping(srv)
