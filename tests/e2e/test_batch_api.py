"""The batch-callback API, a Gearshift extension (docs/batch-api.md): `mapBatch(f)` and
`filterBatch(f)` call `f` once per engine batch with a list of records. Their results must
equal the per-record `map`/`filter` equivalents, they fuse with the other Python steps, and
their errors follow the rest of the API (one error, the input stops)."""


import pytest
import redis
from conftest import IN_CI, assert_alive, parse, pyexecute, wait_for

N = 5000
# Batches are at most 1024 records but the reader also yields after 1 ms under the lock, so
# a loaded machine makes smaller ones: "once per batch" is checked as far fewer calls than
# records (an average batch of at least 10), not as an exact batch count.
MAX_BATCHES = N // 10

# A counter the callbacks bump, read back by a step that runs after every call (count()'s
# global half runs once the whole input has gone through).
COUNTED = """
calls = {'n': 0, 'rows': 0}
def counted(f):
    def wrapper(rs):
        calls['n'] += 1
        calls['rows'] += len(rs)
        return f(rs)
    return wrapper
"""


def run_error(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


def same(r, per_record, batched):
    """Both flows give the same results (order aside) and no errors."""
    a_res, a_err = pyexecute(r, per_record)
    b_res, b_err = pyexecute(r, batched)
    assert a_err == [] and b_err == []
    assert sorted(a_res) == sorted(b_res)
    return a_res


@pytest.fixture
def numbers(r):
    """Keys 'n:0'..'n:4999' holding their own number."""
    pipe = r.pipeline(transaction=False)
    for i in range(N):
        pipe.set(f"n:{i}", str(i))
    pipe.execute()
    return r


@pytest.fixture
def people(r):
    """Hashes 'person:0'..'person:4999' {name, age}, 7 family names."""
    pipe = r.pipeline(transaction=False)
    families = ["Smith", "Sanchez", "Pibbles", "Jones", "Lee", "Kim", "Diaz"]
    for i in range(N):
        pipe.hset(f"person:{i}", mapping={"name": f"P{i} {families[i % 7]}", "age": i % 90})
    pipe.execute()
    return r


# -- same results as the per-record steps ----------------------------------------------------


def test_map_batch_equals_map(numbers):
    res = same(
        numbers,
        "GB().map(lambda x: int(x['value']) * 2).run('n:*')",
        "GB().mapBatch(lambda rs: [int(x['value']) * 2 for x in rs]).run('n:*')",
    )
    assert len(res) == N


def test_map_batch_sees_the_records_map_sees(people):
    # KeysReader dicts {'key', 'value', 'type', 'event'}, hash values as dicts.
    a, _ = pyexecute(people, "GB().map(lambda x: x).run('person:*')")
    b, _ = pyexecute(people, "GB().mapBatch(lambda rs: rs).run('person:*')")
    key = lambda d: d["key"]  # noqa: E731
    assert sorted(parse(a), key=key) == sorted(parse(b), key=key)
    assert parse(b)[0].keys() == {"key", "value", "type", "event"}


def test_map_batch_then_count_and_countby(numbers):
    same(
        numbers,
        "GB().map(lambda x: int(x['value']) % 7).count().run('n:*')",
        "GB().mapBatch(lambda rs: [int(x['value']) % 7 for x in rs]).count().run('n:*')",
    )
    res = same(
        numbers,
        "GB().map(lambda x: int(x['value']) % 7).countby().run('n:*')",
        "GB().mapBatch(lambda rs: [int(x['value']) % 7 for x in rs]).countby().run('n:*')",
    )
    assert sum(d["value"] for d in parse(res)) == N


def test_filter_batch_equals_filter(numbers):
    res = same(
        numbers,
        "GB().filter(lambda x: int(x['value']) % 3 == 0).map(lambda x: x['key']).run('n:*')",
        "GB().filterBatch(lambda rs: [int(x['value']) % 3 == 0 for x in rs]).map(lambda x: x['key']).run('n:*')",
    )
    assert len(res) == len(range(0, N, 3))


def test_filter_batch_then_count_and_countby(people):
    same(
        people,
        "GB().filter(lambda x: int(x['value']['age']) >= 18).count().run('person:*')",
        "GB().filterBatch(lambda rs: [int(x['value']['age']) >= 18 for x in rs]).count().run('person:*')",
    )
    res = same(
        people,
        "GB().filter(lambda x: int(x['value']['age']) >= 18).countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')",
        "GB().filterBatch(lambda rs: [int(x['value']['age']) >= 18 for x in rs]).countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')",
    )
    assert len(res) == 7


def test_filter_batch_uses_truthiness(numbers):
    # Flags are any values: truthy keeps, falsy drops.
    script = "GB().filterBatch(lambda rs: [int(x['value']) % 4 for x in rs]).count().run('n:*')"
    assert pyexecute(numbers, script) == [[str(N - N // 4)], []]


def test_map_batch_may_change_the_number_of_records(numbers):
    # Any length: nothing, more, or one summary per call. Across the flow the union of the
    # outputs is what counts, whatever the batch sizes.
    assert pyexecute(numbers, "GB().mapBatch(lambda rs: []).run('n:*')") == [[], []]
    assert pyexecute(numbers, "GB().mapBatch(lambda rs: rs + rs).count().run('n:*')") == [[str(2 * N)], []]
    res, errors = pyexecute(
        numbers,
        "GB().mapBatch(lambda rs: [sum(int(x['value']) for x in rs)]).accumulate(lambda a, x: (a or 0) + x).run('n:*')",
    )
    assert (res, errors) == ([str(sum(range(N)))], [])


def test_output_order_is_the_returned_order(r):
    # Unlike flatmap (1.2 emits a list last-first), a returned list keeps its order.
    r.set("k", "v")
    assert pyexecute(r, "GB().mapBatch(lambda rs: [1, 2, 3]).run()") == [["1", "2", "3"], []]


def test_convert_to_str_false(r):
    r.set("k", "5")
    assert pyexecute(r, "GB().mapBatch(lambda rs: [int(x['value']) for x in rs]).run(convertToStr=False)") == [[5], []]


def test_python_reader(r):
    script = """
def gen():
    for i in range(3000):
        yield i
GB('PythonReader').filterBatch(lambda rs: [x % 2 == 0 for x in rs]).mapBatch(lambda rs: [x * 10 for x in rs]).run(gen)
"""
    res, errors = pyexecute(r, script)
    assert errors == [] and sorted(map(int, res)) == [i * 10 for i in range(0, 3000, 2)]


# -- one call per batch ----------------------------------------------------------------------


def test_callback_runs_once_per_batch(numbers):
    script = COUNTED + (
        "GB().mapBatch(counted(lambda rs: rs)).count()"
        ".map(lambda c: [c, calls['n'], calls['rows']]).run('n:*', convertToStr=False)"
    )
    [[count, n_calls, rows]], errors = pyexecute(numbers, script)
    assert errors == []
    assert count == N and rows == N
    assert 1 <= n_calls <= MAX_BATCHES, n_calls


def test_filter_batch_runs_once_per_batch(numbers):
    script = COUNTED + (
        "GB().filterBatch(counted(lambda rs: [True] * len(rs))).count()"
        ".map(lambda c: [c, calls['n']]).run('n:*', convertToStr=False)"
    )
    [[count, n_calls]], errors = pyexecute(numbers, script)
    assert errors == [] and count == N and 1 <= n_calls <= MAX_BATCHES, n_calls


# -- fused with other Python steps ------------------------------------------------------------


def test_fused_chain_equals_per_record_chain(people):
    fam = "lambda x: x['name'].split(' ')[1]"
    per_record = (
        "GB().map(lambda x: x['value']).filter(lambda v: int(v['age']) % 2 == 0)"
        f".map(lambda v: {{'name': v['name'], 'age': int(v['age'])}}).filter(lambda v: v['age'] > 10)"
        f".countby({fam}).run('person:*')"
    )
    batched = (
        "GB().map(lambda x: x['value']).filterBatch(lambda vs: [int(v['age']) % 2 == 0 for v in vs])"
        ".mapBatch(lambda vs: [{'name': v['name'], 'age': int(v['age'])} for v in vs]).filter(lambda v: v['age'] > 10)"
        f".countby({fam}).run('person:*')"
    )
    res = same(people, per_record, batched)
    assert len(res) == 7


def test_two_batch_steps_in_a_row_each_run_once_per_batch(numbers):
    script = COUNTED + (
        "GB().mapBatch(counted(lambda rs: [int(x['value']) for x in rs]))"
        ".filterBatch(counted(lambda xs: [x % 2 == 0 for x in xs]))"
        ".mapBatch(counted(lambda xs: [x + 1 for x in xs])).count()"
        ".map(lambda c: [c, calls['n']]).run('n:*', convertToStr=False)"
    )
    [[count, n_calls]], errors = pyexecute(numbers, script)
    assert errors == [] and count == N // 2
    assert n_calls % 3 == 0 and 3 <= n_calls <= 3 * MAX_BATCHES, n_calls


def test_after_an_accumulating_step(numbers):
    # accumulate emits at the end of input; the batch step after it still runs.
    res = pyexecute(numbers, "GB().accumulate(lambda a, x: (a or 0) + 1).mapBatch(lambda rs: [r * 2 for r in rs]).run('n:*')")
    assert res == [[str(2 * N)], []]


def test_after_groupby_and_sort(numbers):
    res = same(
        numbers,
        "GB().groupby(lambda x: int(x['value']) % 5, lambda k, a, r: (a or 0) + 1).map(lambda d: d['key'] + ':' + str(d['value'])).run('n:*')",
        "GB().groupby(lambda x: int(x['value']) % 5, lambda k, a, r: (a or 0) + 1).mapBatch(lambda ds: [d['key'] + ':' + str(d['value']) for d in ds]).run('n:*')",
    )
    assert sorted(res) == [f"{k}:1000" for k in range(5)]
    res, errors = pyexecute(numbers, "GB().map(lambda x: int(x['value'])).sort().limit(3).mapBatch(lambda xs: [x + 100 for x in xs]).run('n:*')")
    assert (res, errors) == (["100", "101", "102"], [])


# -- errors ----------------------------------------------------------------------------------


def test_exception_fails_the_batch_with_one_error(numbers):
    res, errors = pyexecute(numbers, "GB().mapBatch(lambda rs: 1/0).run('n:*')")
    assert res == [] and len(errors) == 1
    assert "ZeroDivisionError: division by zero" in errors[0]


def test_exception_stops_the_input(numbers):
    # The first call passes, the second raises: the first batch's records are the only
    # results, the error is recorded once and no later batch runs.
    script = COUNTED + """
def f(rs):
    if calls['n'] >= 2:
        raise Exception('second batch')
    return rs
GB().mapBatch(counted(f)).map(lambda x: x['key']).run('n:*')
"""
    res, errors = pyexecute(numbers, script)
    assert 0 < len(res) < N
    assert len(errors) == 1 and "Exception: second batch" in errors[0]


def test_plain_error_text_like_1_2(r):
    r.set("k", "v")
    script = "def f(rs):\n    raise flat_error('bad batch')\nGB().mapBatch(f).run()"
    res, errors = pyexecute(r, script)
    assert (res, errors) == ([], ["bad batch"])


@pytest.mark.parametrize(
    "script, error",
    [
        ("GB().mapBatch(lambda rs: tuple(rs)).run()",
         "Error type: <class 'TypeError'>, Value: mapBatch callback must return a list, not tuple"),
        ("GB().mapBatch(lambda rs: None).run()",
         "Error type: <class 'TypeError'>, Value: mapBatch callback must return a list, not NoneType"),
        ("GB().filterBatch(lambda rs: (True for r in rs)).run()",
         "Error type: <class 'TypeError'>, Value: filterBatch callback must return a list, not generator"),
        ("GB().filterBatch(lambda rs: [True]).run()",
         "Error type: <class 'ValueError'>, Value: filterBatch callback returned 1 values for 3 records"),
        ("GB().filterBatch(lambda rs: [True] * 4).run()",
         "Error type: <class 'ValueError'>, Value: filterBatch callback returned 4 values for 3 records"),
    ],
)
def test_bad_return_values(r, script, error):
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert pyexecute(r, script) == [[], [error]]


def test_per_record_error_before_a_batch_step_keeps_earlier_records_like_map(numbers):
    # Records read before the failing one still go through the rest of the flow, as with
    # the per-record steps.
    fail = "lambda x: 1/0 if x['key'] == 'n:2500' else x"
    a_res, a_err = pyexecute(numbers, f"GB().map({fail}).map(lambda x: x['key']).run('n:*')")
    b_res, b_err = pyexecute(numbers, f"GB().map({fail}).mapBatch(lambda rs: [x['key'] for x in rs]).run('n:*')")
    assert len(a_err) == len(b_err) == 1
    assert sorted(a_res) == sorted(b_res)


@pytest.mark.parametrize(
    "script, message",
    [
        ("GB().mapBatch(1).run()", "mapBatch argument must be a function"),
        ("GB().mapBatch(len).run()", "mapBatch argument must be a function"),
        ("GB().filterBatch('x').run()", "filterBatch argument must be a function"),
        ("GB().mapBatch().run()", "wrong number of args to mapBatch function"),
        ("GB().filterBatch(lambda rs: rs, 1).run()", "wrong number of args to filterBatch function"),
    ],
)
def test_build_time_validation(r, script, message):
    assert message in run_error(r, script)
    assert_alive(r)


# -- format='arrow' (optional for users: only where the server's Python has pyarrow) ----------




@pytest.mark.skipif(not IN_CI, reason="only CI promises pyarrow (CI=true)")
def test_pyarrow_imports_under_ci(r):
    assert pyexecute(r, "import pyarrow\nGB('ShardsIDReader').map(lambda x: pyarrow.__name__).run()") == [["pyarrow"], []]


def test_arrow_without_pyarrow_is_a_build_time_error():
    # A server of its own: pyarrow, once imported, stays loaded in the interpreter.
    from conftest import fresh_server

    with fresh_server() as srv:
        c = srv.client()
        script = "import sys\nsys.modules['pyarrow'] = None\nGB().mapBatch(lambda rb: rb, format='arrow').run()"
        assert "mapBatch(format='arrow') needs pyarrow, which is not installed" in run_error(c, script)


def test_unknown_format_is_a_build_time_error(r):
    assert "mapBatch format must be 'list' or 'arrow'" in run_error(r, "GB().mapBatch(lambda rs: rs, format='csv').run()")


def test_arrow_columns_of_hashes(arrow, people):
    script = (
        "GB().mapBatch(lambda rb: [[rb.schema.names, [str(t) for t in rb.schema.types], rb.num_rows]], format='arrow')"
        ".run('person:*', convertToStr=False)"
    )
    res, errors = pyexecute(people, script)
    assert errors == []
    assert {(tuple(names), tuple(types)) for names, types, _ in res} == {
        (("key", "type", "value"), ("string", "dictionary<values=string, indices=uint8, ordered=0>", "map<string, string>"))
    }
    assert sum(int(n) for _, _, n in res) == N
    assert len(res) <= MAX_BATCHES


def test_arrow_columns_of_strings_lists_and_keys_only(arrow):
    arrow.mset({"s:1": "a", "s:2": "b"})
    arrow.rpush("l:1", "x", "y")
    rows = lambda script: sorted(parse(pyexecute(arrow, script)[0]), key=lambda d: d["key"])  # noqa: E731
    flow = "GB().mapBatch(lambda rb: rb, format='arrow')"
    assert rows(flow + ".run('s:*')") == [
        {"key": "s:1", "type": "string", "value": "a"},
        {"key": "s:2", "type": "string", "value": "b"},
    ]
    assert rows(flow + ".run('l:*')") == [{"key": "l:1", "type": "list", "value": ["x", "y"]}]
    assert rows(flow + ".run('s:*', readValue=False)") == [
        {"key": "s:1", "type": "string"},
        {"key": "s:2", "type": "string"},
    ]


def test_arrow_avg_and_countby_equal_per_record(arrow, people):
    pa = "import pyarrow as pa, pyarrow.compute as pc\n"
    same(
        people,
        "GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')",
        pa + "GB().mapBatch(lambda rb: pc.cast(pc.map_lookup(rb['value'], 'age', 'first'), pa.int64()), format='arrow').avg().run('person:*')",
    )
    same(
        people,
        "GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')",
        pa + "GB().mapBatch(lambda rb: pc.list_element(pc.split_pattern(pc.map_lookup(rb['value'], 'name', 'first'), ' '), 1), format='arrow').countby().run('person:*')",
    )


def test_arrow_after_a_python_step_equals_the_columnar_path(arrow, people):
    # After another Python step the batch is built from the record dicts: same columns.
    flow = "mapBatch(lambda rb: rb.to_pylist(), format='arrow').map(lambda d: [d['key'], d['type'], sorted(d['value'])]).run('person:*')"
    same(people, "GB()." + flow, "GB().filter(lambda x: True)." + flow)


def test_arrow_returns_and_errors(arrow):
    arrow.mset({"a": "1", "b": "2"})
    arrow.hset("h", "f", "v")
    res, errors = pyexecute(arrow, "GB().mapBatch(lambda rb: rb['value'], format='arrow').run('[ab]')")
    assert (sorted(res), errors) == (["1", "2"], [])
    res, errors = pyexecute(arrow, "GB().mapBatch(lambda rb: [rb.num_rows], format='arrow').run('[ab]')")
    assert (res, errors) == (["2"], [])
    res, errors = pyexecute(arrow, "GB().mapBatch(lambda rb: rb.num_rows, format='arrow').run('[ab]')")
    assert res == [] and len(errors) == 1
    assert "Error type: <class 'TypeError'>, Value: mapBatch callback must return a list or a pyarrow RecordBatch, Table or Array, not int" in errors[0]
    res, errors = pyexecute(arrow, "GB().mapBatch(lambda rb: rb, format='arrow').run('*')")
    assert res == [] and len(errors) == 1
    assert "needs string, hash or list keys of one type per batch, got hash, string" in errors[0]


# -- registrations ---------------------------------------------------------------------------


def test_register_with_map_batch(r):
    script = "GB().mapBatch(lambda rs: [execute('INCRBY', 'seen', len(rs))]).register('ev:*')"
    assert pyexecute(r, script) == "OK"
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"ev:{i}", "v")
        pipe.execute()
        assert wait_for(lambda: r.get("seen") == "500", timeout=30), r.get("seen")
    finally:
        for reg in r.execute_command("RG.DUMPREGISTRATIONS"):
            r.execute_command("RG.UNREGISTER", reg[1])
