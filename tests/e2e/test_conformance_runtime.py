"""Conformance sweep (issue #11): the Python runtime API (REFERENCE §5) checked from outside,
where Gearshift differed from RedisGears 1.2.

- `GB()` on a thread the script started with `threading` fails with `Can not create a
  gearsCtx on a python created thread`; on Gearshift's own threads (the script's, a step's,
  a coroutine's on the asyncio loop) it works.
"""

from conftest import pyexecute

ON_A_THREAD = """
import threading
res = []
def t():
    try:
        GB('ShardsIDReader')
        res.append('built')
    except Exception as e:
        res.append(str(e))
th = threading.Thread(target=t)
th.start()
th.join()
GB('ShardsIDReader').map(lambda x: res[0]).run()
"""


def test_gb_on_a_python_created_thread_fails(r):
    assert pyexecute(r, ON_A_THREAD) == [["Can not create a gearsCtx on a python created thread"], []]


def test_gb_in_a_step_and_in_a_coroutine_works(r):
    res = pyexecute(r, "GB('ShardsIDReader').map(lambda x: type(GB()).__name__).run()")
    assert res == [["GearsBuilder"], []]
    script = (
        "async def f(x):\n"
        "    return type(GB()).__name__\n"
        "GB('ShardsIDReader').map(f).run()"
    )
    assert pyexecute(r, script) == [["GearsBuilder"], []]
