"""The readers a batch run() can use (REFERENCE §2, §4.1, §11): KeysReader, KeysOnlyReader,
PythonReader, ShardsIDReader and StreamReader, plus the readers run() refuses."""

import pytest
import redis
from conftest import assert_alive, parse, pyexecute


def run_error(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


# -- KeysReader ------------------------------------------------------------------------------


def test_every_key_type_maps_to_its_1_2_type_name(r):
    # §2.1: a stream is reported as 'unknown'; set/zset/stream values are None.
    r.set("s", "v")
    r.hset("h", "f", "v")
    r.rpush("l", "a")
    r.sadd("st", "m")
    r.zadd("z", {"m": 1})
    r.xadd("x", {"f": "v"})
    results, errors = pyexecute(r, "GB().map(lambda x: (x['key'], x['type'], x['value'] is None)).run()")
    assert errors == []
    assert sorted(parse(results)) == [
        ("h", "hash", False),
        ("l", "list", False),
        ("s", "string", False),
        ("st", "set", True),
        ("x", "unknown", True),
        ("z", "zset", True),
    ]


def test_types_sorted_ascending(r):
    # §11.16
    r.set("s", "v")
    r.rpush("l", "a")
    r.sadd("st", "m")
    r.hset("h", "f", "v")
    r.zadd("z", {"m": 1})
    assert pyexecute(r, "GB().map(lambda x: x['type']).sort().run()") == [
        ["hash", "list", "set", "string", "zset"],
        [],
    ]


def test_missing_key_with_no_scan_is_type_empty(r):
    # §11.19
    script = "GB().map(lambda x: x['type']).distinct().run('test', noScan=True)"
    assert pyexecute(r, script) == [["empty"], []]
    results, errors = pyexecute(r, "GB().run('test', noScan=True)")
    assert errors == []
    assert parse(results) == [{"key": "test", "value": None, "type": "empty", "event": None}]


def test_no_scan_reads_the_exact_key_not_a_pattern(r):
    r.set("a*", "star")
    r.set("ab", "other")
    results, errors = pyexecute(r, "GB().map(lambda x: x['key']).run('a*', noScan=True)")
    assert (results, errors) == (["a*"], [])


def test_glob_pattern_is_redis_style(r):
    r.mset({"user:1": "a", "user:22": "b", "user:x": "c", "other": "d"})
    results, errors = pyexecute(r, "GB().map(lambda x: x['key']).run('user:[0-9]*')")
    assert errors == []
    assert sorted(results) == ["user:1", "user:22"]


def test_read_value_false_has_only_key_and_event(r):
    # §11.18
    r.set("x", "1")
    results, errors = pyexecute(r, "GB().run(readValue=False)")
    assert errors == []
    assert parse(results) == [{"key": "x", "event": None}]


def test_non_utf8_values_are_bytearrays(r):
    r.set("bin", b"\xff\xfe")
    r.hset("hb", b"f", b"\x80")
    r.rpush("lb", b"\xc3")
    script = "GB().map(lambda x: (x['key'], repr(x['value']))).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(parse(results)) == [
        ("bin", "bytearray(b'\\xff\\xfe')"),
        ("hb", "{'f': bytearray(b'\\x80')}"),
        ("lb", "[bytearray(b'\\xc3')]"),
    ]


def test_non_utf8_key_name_is_a_bytearray(r):
    r.set(b"k\xff", "v")
    results, errors = pyexecute(r, "GB().map(lambda x: repr(x['key'])).run()")
    assert (results, errors) == (["bytearray(b'k\\xff')"], [])


def test_keys_reader_argument_checks(r):
    assert "regex argument must be a string" in run_error(r, "GB().run(5)")
    assert "exactMatch value is not boolean" in run_error(r, "GB().run('x', noScan=1)")
    assert "readValue value is not boolean" in run_error(r, "GB().run(readValue='no')")
    assert_alive(r)


def test_falsy_run_argument_means_the_default_pattern(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().map(lambda x: x['key']).run('')")
    assert (results, errors) == (["k"], [])


def test_other_keys_reader_kwargs_are_ignored(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().map(lambda x: x['key']).run(foo='bar', batch=3)")
    assert (results, errors) == (["k"], [])


# -- KeysOnlyReader --------------------------------------------------------------------------


def test_keys_only_reader_yields_key_names(r):
    r.mset({"a:1": "x", "a:2": "y", "b:1": "z"})
    results, errors = pyexecute(r, "GB('KeysOnlyReader').run('a:*')")
    assert errors == []
    assert sorted(results) == ["a:1", "a:2"]


def test_keys_only_reader_pattern_kwarg_collides_with_the_run_argument(r):
    # As in 1.2: run(arg=None) passes '*' positionally, so pattern= arrives twice.
    err = run_error(r, "GB('KeysOnlyReader').run(pattern='k1*')")
    assert "TypeError" in err and "multiple values for argument 'pattern'" in err
    assert_alive(r)


def test_keys_only_reader_count_kwarg(r):
    r.mset({f"k{i}": str(i) for i in range(50)})
    results, errors = pyexecute(r, "GB('KeysOnlyReader').run('k1*', count=3)")
    assert errors == []
    assert sorted(results) == sorted(["k1"] + [f"k1{i}" for i in range(10)])


def test_keys_only_reader_no_scan(r):
    r.set("there", "1")
    assert pyexecute(r, "GB('KeysOnlyReader').run('there', noScan=True)") == [["there"], []]
    assert pyexecute(r, "GB('KeysOnlyReader').run('missing', noScan=True)") == [[], []]


def test_keys_only_reader_pattern_generator(r):
    r.mset({"p:1": "a", "p:2": "b", "q:1": "c"})
    script = "GB('KeysOnlyReader').run(patternGenerator=lambda: ('q:*', False))"
    assert pyexecute(r, script) == [["q:1"], []]


@pytest.mark.parametrize("kwarg", ["mode='async_local'", "foo=1"])
def test_keys_only_reader_rejects_other_kwargs_with_a_type_error(r, kwarg):
    err = run_error(r, f"GB('KeysOnlyReader').run('*', {kwarg})")
    assert "TypeError" in err
    assert "unexpected keyword argument" in err
    assert_alive(r)


# -- PythonReader ----------------------------------------------------------------------------


def test_python_reader_yields_generator_records(r):
    script = """
def gen():
    for i in range(5):
        yield {'n': i}
GB('PythonReader').map(lambda x: x['n'] * 10).run(gen)
"""
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(results, key=int) == ["0", "10", "20", "30", "40"]


def test_python_reader_many_records(r):
    script = "GB('PythonReader').count().run(lambda: iter(range(10000)))"
    assert pyexecute(r, script) == [["10000"], []]


def test_python_reader_error_keeps_earlier_records(r):
    script = """
def gen():
    yield 1
    yield 2
    raise ValueError('boom')
GB('PythonReader').run(gen)
"""
    results, errors = pyexecute(r, script)
    assert sorted(results) == ["1", "2"]
    assert len(errors) == 1 and "boom" in errors[0]


def test_python_reader_needs_a_function(r):
    assert "pyreader argument must be a function" in run_error(r, "GB('PythonReader').run()")
    assert "pyreader argument must be a function" in run_error(r, "GB('PythonReader').run(len)")
    assert_alive(r)


def test_python_reader_can_execute_commands(r):
    r.set("k", "v")
    script = "GB('PythonReader').run(lambda: iter([execute('GET', 'k')]))"
    assert pyexecute(r, script) == [["v"], []]


# -- ShardsIDReader --------------------------------------------------------------------------


def test_shards_id_reader_standalone(r):
    # §11.12
    assert pyexecute(r, "GB('ShardsIDReader').run()") == [["1"], []]


def test_shards_id_reader_hashtag(r):
    # §11.13
    assert pyexecute(r, "GB('ShardsIDReader').map(lambda x: hashtag()).run()") == [["06S"], []]


# -- StreamReader ----------------------------------------------------------------------------


def test_stream_reader_run_reads_every_entry(r):
    ids = [r.xadd("s", {"f": str(i), "g": "x"}) for i in range(3)]
    results, errors = pyexecute(r, "GB('StreamReader').run('s')")
    assert errors == []
    assert parse(results) == [
        {"key": "s", "id": ids[i], "value": {"f": str(i), "g": "x"}} for i in range(3)
    ]


def test_stream_reader_from_id_is_exclusive(r):
    ids = [r.xadd("s", {"n": str(i)}) for i in range(4)]
    script = f"GB('StreamReader').map(lambda x: x['id']).run('s', fromId='{ids[1]}')"
    assert pyexecute(r, script) == [ids[2:], []]


def test_stream_reader_key_is_exact_not_a_pattern(r):
    r.xadd("s1", {"f": "v"})
    assert pyexecute(r, "GB('StreamReader').run('s*')") == [[], []]


def test_stream_reader_missing_key_gives_nothing(r):
    assert pyexecute(r, "GB('StreamReader').run('nosuch')") == [[], []]


def test_stream_reader_bad_id(r):
    # §11.20
    r.xadd("s", {"f": "v"})
    assert pyexecute(r, "GB('StreamReader').run('s', fromId='test')") == [
        [],
        ["ERR Invalid stream ID specified as stream command argument"],
    ]


def test_stream_reader_reads_long_streams_in_pages(r):
    pipe = r.pipeline(transaction=False)
    for i in range(2500):
        pipe.xadd("big", {"i": str(i)})
    pipe.execute()
    script = "GB('StreamReader').map(lambda x: int(x['value']['i'])).run('big')"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert [int(x) for x in results] == list(range(2500))


def test_stream_reader_argument_checks(r):
    assert "fromId argument must be a string" in run_error(r, "GB('StreamReader').run('s', fromId=0)")
    assert "regex argument must be a string" in run_error(r, "GB('StreamReader').run(7)")
    assert_alive(r)


# -- readers run() refuses -------------------------------------------------------------------


def test_command_reader_does_not_support_run(r):
    # §11.24
    err = run_error(r, "GB('CommandReader').run()")
    assert "reader do not support run" in err
    assert "Given reader do not support run or not exists" in err
    assert_alive(r)


def test_unknown_reader(r):
    # §11.26
    assert "The given reader does not exists" in run_error(r, "GB('unexists').run()")
    assert "reader argument must be a string" in run_error(r, "GB(1).run()")
    assert_alive(r)
