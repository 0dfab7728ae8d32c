"""User code that re-enters itself through execute(): a trigger that triggers itself
(RG.TRIGGER or RG.TRIGGERONKEY; execute() refuses EVAL and FCALL) must end with an error reply, never overflow a thread's C stack and
take redis-server down (every level of nesting takes KiBs of C stack). The error that travels
back up is bounded too: each level's traceback list escapes the one below, doubling it."""

import pytest
import redis

from conftest import assert_alive, pyexecute, unregister_all

CALLS = {
    "direct": "'RG.TRIGGER', 'again'",
    "on a key": "'RG.TRIGGERONKEY', 'again', 'k'",
}

# The innermost refusal is kept in a key; every level then answers 'ok'.
CATCHING = """
def f(x):
    try:
        execute({call})
    except Exception as e:
        if 'nested too deep' in str(e)[:300]:
            execute('SET', 'why', str(e))
        else:
            raise
    return 'ok'
GB('CommandReader').map(f).register(trigger='again', mode='{mode}')
"""

MAX_ERROR_TEXT = 64 * 1024


@pytest.mark.parametrize("how", sorted(CALLS))
def test_a_trigger_that_triggers_itself_is_refused_past_a_depth(r, server, how):
    pyexecute(r, CATCHING.format(call=CALLS[how], mode="sync"))
    try:
        assert r.execute_command("RG.TRIGGER", "again") == ["ok"]
        assert "ERR execute() calls nested too deep" in r.get("why")
    finally:
        unregister_all(r)
    assert_alive(r, server)


@pytest.mark.parametrize("how", sorted(CALLS))
def test_an_uncaught_nesting_error_comes_back_bounded(r, server, how):
    pyexecute(r, "GB('CommandReader').map(lambda x: execute(%s))"
                 ".register(trigger='again', mode='sync')" % CALLS[how])  # fmt: skip
    try:
        with pytest.raises(redis.ResponseError) as err:
            r.execute_command("RG.TRIGGER", "again")
        text = str(err.value)
        assert "bytes of error text cut" in text
        assert len(text) < MAX_ERROR_TEXT + 200
    finally:
        unregister_all(r)
    assert_alive(r, server)


def test_an_async_trigger_that_nests_sync_ones_forever_ends(r, server):
    # The nesting runs on a worker thread, whose stack is larger but still finite.
    pyexecute(r, CATCHING.format(call=CALLS["direct"], mode="sync"))
    pyexecute(r, "GB('CommandReader').map(lambda x: execute('RG.TRIGGER', 'again'))"
                 ".register(trigger='outer', mode='async_local')")  # fmt: skip
    try:
        assert r.execute_command("RG.TRIGGER", "outer") == [str(["ok"])]
        assert "nested too deep" in r.get("why")
    finally:
        unregister_all(r)
    assert_alive(r, server)


def test_errors_nested_a_few_levels_keep_every_level(r, server):
    pyexecute(r, """
def f(x):
    n = int(x[1])
    if n == 0:
        raise ValueError('bottom')
    return execute('RG.TRIGGER', 'down', str(n - 1))
GB('CommandReader').map(f).register(trigger='down', mode='sync')""")
    try:
        with pytest.raises(redis.ResponseError) as err:
            r.execute_command("RG.TRIGGER", "down", "3")
        assert "ValueError: bottom" in str(err.value)
        assert "error text cut" not in str(err.value)
        # 1.2's escaping doubles the text per level: 40 levels would be a TiB unbounded.
        with pytest.raises(redis.ResponseError) as err:
            r.execute_command("RG.TRIGGER", "down", "40")
        assert len(str(err.value)) < MAX_ERROR_TEXT + 200
    finally:
        unregister_all(r)
    assert_alive(r, server)
