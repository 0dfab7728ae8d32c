"""Bad input must produce the documented error (REFERENCE §1.1, §3, §10, §11) and never take the
server down: every test ends by checking that the server still answers PING."""

import pytest
import redis
from conftest import assert_alive, pyexecute

MULTI_ERROR = "Can not run gears inside a multi exec, lua, or when blocking is not allowed"


def pyexecute_error(client, script, *args):
    """Run a script that must fail at top level; return the error text."""
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script, *args)
    return str(err.value)


def test_python_syntax_error_is_an_error_reply(r):
    assert "SyntaxError" in pyexecute_error(r, "GB().map(lambda x: ).run(")
    assert_alive(r)


def test_exception_in_map_lands_in_errors_list(r):
    r.set("x", "1")
    results, errors = pyexecute(r, "GB().map(lambda x: 1/0).run()")
    assert results == []
    assert len(errors) == 1
    assert isinstance(errors[0], str)
    assert errors[0].startswith("['Traceback (most recent call last):")
    assert "ZeroDivisionError" in errors[0]
    assert_alive(r)


def test_undefined_name_in_map_lands_in_errors_list(r):
    r.set("x", "1")
    results, errors = pyexecute(r, "GB().map(lambda x: notexists).run()")
    assert results == []
    assert len(errors) == 1
    assert errors[0].startswith("['Traceback (most recent call last):")
    assert "name 'notexists' is not defined" in errors[0]
    assert_alive(r)


def test_map_argument_must_be_a_function(r):
    assert "argument must be a function" in pyexecute_error(r, "GB().map(1).run()")
    assert_alive(r)


def test_limit_argument_must_be_a_number(r):
    assert "limit argument must be a number" in pyexecute_error(r, 'GB().limit("x").run()')
    assert_alive(r)


def test_unknown_reader(r):
    assert "reader does not exists" in pyexecute_error(r, 'GB("unexists").run()')
    assert_alive(r)


def test_two_runs_in_one_script(r):
    err = pyexecute_error(r, "GB().run()\nGB().run()")
    assert "Can not run more then 1 executions in a single script" in err
    assert_alive(r)


def test_script_without_run_replies_ok(r):
    assert pyexecute(r, "x = GB().map(lambda x: x)") == "OK"
    assert_alive(r)


def test_missing_script_is_wrong_arity(r):
    with pytest.raises(redis.ResponseError) as err:
        r.execute_command("RG.PYEXECUTE")
    assert "wrong number of arguments" in str(err.value).lower()
    assert_alive(r)


def test_pyexecute_inside_multi_is_refused(r):
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("RG.PYEXECUTE", "GB().run()")
    (reply,) = pipe.execute(raise_on_error=False)
    assert isinstance(reply, redis.ResponseError)
    assert MULTI_ERROR in str(reply)
    assert_alive(r)


def test_execute_wrongtype_error_lands_in_errors_list(r):
    r.set("foo", "bar")
    script = "GB().map(lambda x: execute('LPUSH', 'foo', 'a')).run('foo')"
    results, errors = pyexecute(r, script)
    assert results == []
    assert len(errors) == 1
    assert "WRONGTYPE" in errors[0]
    assert r.get("foo") == "bar"
    assert_alive(r)


def test_execute_write_then_read_from_callback(r):
    r.set("foo", "bar")
    script = "GB().map(lambda x: (execute('SET', 'k', 'v'), execute('GET', 'k'))).run('foo')"
    assert pyexecute(r, script) == [["('OK', 'v')"], []]
    assert r.get("k") == "v"
    assert_alive(r)


IMPORTS = """\
import math, json
GB().map(lambda x: json.dumps({'root': math.sqrt(int(x['value']))})).run('n')
"""


def test_stdlib_imports_work_inside_a_script(r):
    # math and json are C extensions in lib-dynload: this fails if libpython is not global.
    r.set("n", "16")
    assert pyexecute(r, IMPORTS) == [['{"root": 4.0}'], []]
    assert_alive(r)
