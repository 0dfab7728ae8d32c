"""Every GearsBuilder operation of REFERENCE §3 with 1.2's output shapes and quirks, run()'s
options (§4.1, §10), the seed walkthrough's remaining batch examples, and proof that the
built-ins run natively (the extractor once per record, no Python reducer)."""

import ast

import pytest
import redis
from conftest import assert_alive, fresh_server, parse, pyexecute
from seed_scripts import (
    AGGREGATED_AVERAGE,
    AGGREGATED_MAXIMUM,
    COUNTBY,
    FAMILIES,
    GLOBAL_ONLY,
    LOCAL_AND_GLOBAL,
    PERSONS,
    REDUCED_MAXIMUM,
    REPARTITION,
)


def run_error(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


def numbers(r, n=100):
    """Keys '0'..'n-1' holding their own name."""
    r.mset({str(i): str(i) for i in range(n)})


# -- map, flatmap, filter, foreach, accumulate -----------------------------------------------


def test_flatmap_reverses_list_order(r):
    r.set("k", "v")
    assert pyexecute(r, "GB().flatmap(lambda x: [1, 2, 3]).run()") == [["3", "2", "1"], []]


def test_flatmap_passes_tuples_sets_and_generators_whole(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().flatmap(lambda x: (1, 2)).run()")
    assert (results, errors) == (["(1, 2)"], [])
    results, errors = pyexecute(r, "GB().flatmap(lambda x: {7}).run()")
    assert (results, errors) == (["{7}"], [])


def test_flatmap_empty_list_drops_the_record(r):
    r.set("k", "v")
    assert pyexecute(r, "GB().flatmap(lambda x: []).run()") == [[], []]


def test_filter_exception_is_an_error_record(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().filter(lambda x: 1/0).run()")
    assert results == [] and len(errors) == 1 and "ZeroDivisionError" in errors[0]


def test_accumulate_starts_from_none(r):
    numbers(r, 4)
    script = "GB().accumulate(lambda a, x: repr(a) if a is None else a + '+').run()"
    assert pyexecute(r, script) == [["None+++"], []]


def test_accumulate_on_nothing_emits_nothing(r):
    assert pyexecute(r, "GB().accumulate(lambda a, x: 1).run()") == [[], []]


# -- group operations ------------------------------------------------------------------------


def test_localgroupby_output_dicts(r):
    r.mset({"a:1": "x", "a:2": "y", "b:1": "z"})
    script = "GB().localgroupby(lambda x: x['key'][0], lambda k, a, r: (a or 0) + 1).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(parse(results), key=lambda d: d["key"]) == [
        {"key": "a", "value": 2},
        {"key": "b", "value": 1},
    ]


def test_groupby_reducer_gets_the_key_as_str(r):
    numbers(r, 6)
    script = "GB().groupby(lambda x: int(x['value']) % 2, lambda k, a, r: (a or []) + [type(k).__name__ + k]).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    got = {d["key"]: d["value"] for d in parse(results)}
    assert got == {"0": ["str0"] * 3, "1": ["str1"] * 3}


def test_groupby_calls_the_extractor_once_per_record(r):
    numbers(r, 10)
    script = "GB().groupby(lambda x: execute('INCR', 'calls') and x['value'][0], lambda k, a, r: (a or 0) + 1).run('[0-9]')"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert len(results) == 10
    assert r.get("calls") == "10"


def test_batchgroupby_reducer_gets_all_records_of_a_key(r):
    numbers(r, 6)
    script = "GB().batchgroupby(lambda x: str(int(x['value']) % 3), lambda k, l: sorted(int(x['value']) for x in l)).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    got = {d["key"]: d["value"] for d in parse(results)}
    assert got == {"0": [0, 3], "1": [1, 4], "2": [2, 5]}


def test_extractor_results_are_reprd_unless_str(r):
    # §3: non-str keys become repr(): 1 -> '1', 'a' stays 'a', (1, 'a') -> "(1, 'a')".
    r.set("k", "v")
    script = "GB().flatmap(lambda x: [1, 'a', (1, 'a'), None]).countby(lambda x: x).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(d["key"] for d in parse(results)) == ["(1, 'a')", "1", "None", "a"]


def test_repartition_passes_the_original_record(r):
    r.mset({"a": "1", "b": "2"})
    results, errors = pyexecute(r, "GB().repartition(lambda x: x['value']).map(lambda x: x['key']).run()")
    assert errors == []
    assert sorted(results) == ["a", "b"]


# -- aggregate, aggregateby ------------------------------------------------------------------


def test_aggregate_resets_a_falsy_accumulator_to_zero(r):
    # 100 -> 50 -> 0 -> (falsy: back to 100) -> 50; without the quirk it would be -50.
    numbers(r, 3)
    script = "GB().aggregate(100, lambda a, x: a - 50, lambda a, x: a + x).run()"
    assert pyexecute(r, script) == [["150"], []]


def test_aggregate_on_nothing_emits_nothing(r):
    assert pyexecute(r, "GB().aggregate(0, lambda a, x: a + 1, lambda a, x: a + x).run()") == [[], []]


def test_aggregateby_output(r):
    r.mset({"a:1": "1", "a:2": "2", "b:1": "5"})
    script = "GB().aggregateby(lambda x: x['key'][0], 0, lambda k, a, x: a + int(x['value']), lambda k, a, x: a + x).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(parse(results), key=lambda d: d["key"]) == [
        {"key": "a", "value": 3},
        {"key": "b", "value": 5},
    ]


# -- count, countby --------------------------------------------------------------------------


def test_count_on_nothing_is_nothing(r):
    # §11.14
    assert pyexecute(r, "GB().count().run()") == [[], []]


def test_countby_counts_per_extracted_key(r):
    numbers(r, 10)
    results, errors = pyexecute(r, "GB().countby(lambda x: int(x['value']) % 3 == 0).run()")
    assert errors == []
    assert sorted(parse(results), key=lambda d: d["key"]) == [
        {"key": "False", "value": 6},
        {"key": "True", "value": 4},
    ]


def test_countby_default_extractor_counts_records_by_repr(r):
    r.mset({"a": "1", "b": "1"})
    results, errors = pyexecute(r, "GB().map(lambda x: x['value']).countby().run()")
    assert (parse(results), errors) == ([{"key": "1", "value": 2}], [])


def test_countby_on_nothing_is_nothing(r):
    assert pyexecute(r, "GB().countby(lambda x: x['key']).run()") == [[], []]


def test_countby_feeds_later_python_steps(r):
    numbers(r, 10)
    script = "GB().countby(lambda x: len(x['key'])).map(lambda x: x['key'] + '=' + str(x['value'])).run()"
    results, errors = pyexecute(r, script)
    assert (sorted(results), errors) == (["1=10"], [])


def test_countby_same_text_as_python_aggregateby(r):
    numbers(r, 30)
    native = pyexecute(r, "GB().countby(lambda x: int(x['value']) % 4).run()")
    python = pyexecute(
        r,
        "GB().aggregateby(lambda x: int(x['value']) % 4, 0, lambda k, a, r: 1 + a, lambda k, a, r: r + a).run()",
    )
    assert sorted(native[0]) == sorted(python[0])
    assert native[1] == python[1] == []


def test_countby_extractor_error_is_an_error_record(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().countby(lambda x: 1/0).run()")
    assert results == [] and len(errors) == 1 and "ZeroDivisionError" in errors[0]


def test_countby_accepts_any_callable_like_1_2(r):
    # 1.2 wraps the extractor in a lambda, so a builtin works.
    r.mset({"a": "x", "b": "y"})
    results, errors = pyexecute(r, "GB().map(lambda x: x['value']).countby(str).run()")
    assert errors == []
    assert sorted(parse(results), key=lambda d: d["key"]) == [
        {"key": "x", "value": 1},
        {"key": "y", "value": 1},
    ]


# -- sort, distinct, avg, limit --------------------------------------------------------------


def test_sort_default_is_ascending_and_reverse_false_descending(r):
    numbers(r, 12)
    asc = pyexecute(r, "GB().map(lambda x: int(x['value'])).sort().run()")
    assert asc == [[str(i) for i in range(12)], []]
    desc = pyexecute(r, "GB().map(lambda x: int(x['value'])).sort(reverse=False).run()")
    assert desc == [[str(i) for i in reversed(range(12))], []]


def test_sort_of_uncomparable_records_is_an_error(r):
    r.mset({"a": "1", "b": "2"})
    script = "GB().map(lambda x: 1 if x['key'] == 'a' else 'x').sort().run()"
    results, errors = pyexecute(r, script)
    assert results == [] and len(errors) == 1 and "not supported between" in errors[0]


def test_sort_on_nothing_is_nothing(r):
    assert pyexecute(r, "GB().sort().run()") == [[], []]


def test_distinct(r):
    numbers(r, 20)
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value']) % 4).distinct().run()")
    assert errors == []
    assert sorted(results) == ["0", "1", "2", "3"]


def test_distinct_of_unhashable_records_is_an_error(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().distinct().run()")
    assert results == [] and len(errors) == 1 and "unhashable type: 'dict'" in errors[0]


def test_avg_of_100_keys(r):
    # §11.15
    numbers(r, 100)
    assert pyexecute(r, "GB().map(lambda x:int(x['value'])).avg().run()") == [["49.5"], []]


def test_avg_with_an_extractor_and_int_division(r):
    numbers(r, 4)
    assert pyexecute(r, "GB().avg(lambda x: int(x['value'])).run()") == [["1.5"], []]


def test_avg_on_nothing_is_nothing(r):
    assert pyexecute(r, "GB().avg().run()") == [[], []]


def test_avg_of_non_float_numbers_uses_python_arithmetic(r):
    numbers(r, 3)
    script = "import decimal\nGB().avg(lambda x: decimal.Decimal(x['value']) / 3).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    import decimal

    want = sum(decimal.Decimal(i) / 3 for i in range(3)) / 3
    assert results == [str(want)]


def test_avg_of_big_ints_is_exact(r):
    r.mset({"a": "1", "b": "2"})
    script = "GB().avg(lambda x: 2**70 + int(x['value'])).run()"
    assert pyexecute(r, script) == [[str((2**70 * 2 + 3) / 2)], []]


def test_avg_of_text_is_a_type_error(r):
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().avg(lambda x: x['value']).run()")
    assert results == [] and len(errors) == 1
    assert "unsupported operand type(s) for +: 'int' and 'str'" in errors[0]


def test_avg_extractor_must_be_a_function(r):
    assert "map argument must be a function" in run_error(r, "GB().avg(float).run()")


def test_limit(r):
    r.rpush("l", *range(10))
    script = "GB().flatmap(lambda x: x['value']).limit(3).run('l')"
    assert pyexecute(r, script) == [["9", "8", "7"], []]
    script = "GB().flatmap(lambda x: x['value']).limit(2, 1).run('l')"
    assert pyexecute(r, script) == [["8", "7"], []]


def test_limit_after_sort(r):
    numbers(r, 10)
    script = "GB().map(lambda x: int(x['value'])).sort().limit(3).run()"
    assert pyexecute(r, script) == [["0", "1", "2"], []]


def test_collect_is_a_no_op_on_one_shard(r):
    r.set("k", "v")
    assert pyexecute(r, "GB().map(lambda x: x['key']).collect().run(collect=False)") == [["k"], []]


# -- build-time validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "script, message",
    [
        ("GB().map(1).run()", "map argument must be a function"),
        ("GB().filter('x').run()", "filter argument must be a function"),
        ("GB().foreach(None).run()", "foreach argument must be a function"),
        ("GB().flatmap(len).run()", "flatmap argument must be a function"),
        ("GB().accumulate(1).run()", "accumulate argument must be a function"),
        ("GB().repartition(1).run()", "repartition argument must be a function"),
        ("GB().groupby(1, lambda k, a, r: a).run()", "groupby extractor argument must be a function"),
        ("GB().groupby(lambda x: x, 1).run()", "groupby reducer argument must be a function"),
        ("GB().localgroupby(1, lambda k, a, r: a).run()", "groupby extractor argument must be a function"),
        ("GB().batchgroupby(1, lambda k, l: l).run()", "batchgroupby extractor argument must be a function"),
        ('GB().limit("x").run()', "limit argument must be a number"),
        ("GB().limit(1, 'y').run()", "limit argument must be a number"),
        ("GB().map().run()", "wrong number of args to map function"),
        ("GB().map(lambda x: x, lambda x: x).run()", "wrong number of args to map function"),
        ("GB().localgroupby(lambda x: x).run()", "wrong number of args to groupby function"),
        ("GB().limit().run()", "wrong number of args to limit function"),
        ("GB().collect(1).run()", "wrong number of args to collect function"),
    ],
)
def test_build_time_validation(r, script, message):
    # §11.28
    assert message in run_error(r, script)
    assert_alive(r)


def test_batchgroupby_reducer_is_checked_only_when_it_runs(r):
    # 1.2 quirk: batchgroupby never validates its reducer.
    r.set("k", "v")
    results, errors = pyexecute(r, "GB().batchgroupby(lambda x: 'k', 5).run()")
    assert results == [] and len(errors) == 1 and "not callable" in errors[0]


# -- run() options ---------------------------------------------------------------------------


def test_convert_to_str_false_reply_mapping(r):
    # §10: list -> array, int -> integer, float -> %lf text, '+x' -> status, '-x' -> error,
    # bool -> integer, other objects -> 'PY RECORD'.
    r.set("k", "v")
    script = "GB().flatmap(lambda x: [[1, 'a', [2.5]], 7, 3.5, '+OK', '-ERR bad', True, {'d': 1}, None, (1,), '-', b'raw']).run(convertToStr=False)"
    results, errors = pyexecute(r, script)
    assert errors == []
    results = list(reversed(results))  # flatmap emits last-first
    assert results[0] == [1, "a", ["2.500000"]]
    assert results[1] == 7
    assert results[2] == "3.500000"
    assert results[3] == "OK"
    # redis-py strips the error code ("ERR") from the message
    assert isinstance(results[4], redis.ResponseError) and str(results[4]) == "bad"
    assert results[5] == 1
    assert results[6:] == ["PY RECORD", "PY RECORD", "PY RECORD", "-", "raw"]


def test_convert_to_str_false_after_native_count(r):
    numbers(r, 5)
    assert pyexecute(r, "GB().count().run(convertToStr=False)") == [[5], []]


def test_convert_to_str_false_after_native_countby_is_py_record(r):
    r.set("k", "v")
    assert pyexecute(r, "GB().countby(lambda x: 'a').run(convertToStr=False)") == [["PY RECORD"], []]


def test_collect_false_still_runs(r):
    r.set("k", "v")
    assert pyexecute(r, "GB().map(lambda x: x['key']).run(collect=False)") == [["k"], []]


@pytest.mark.parametrize("mode", ["async", "async_local"])
def test_run_modes(r, mode):
    r.set("k", "v")
    assert pyexecute(r, f"GB().map(lambda x: x['key']).run(mode='{mode}')") == [["k"], []]


def test_run_mode_errors(r):
    assert "unknown execution mode" in run_error(r, "GB().run(mode='sync')")
    assert "unknown execution mode" in run_error(r, "GB().run(mode='nope')")
    assert "execution mode must be a string" in run_error(r, "GB().run(mode=1)")
    assert_alive(r)


# -- native fast paths -----------------------------------------------------------------------

PROBE = """
import sys, types
m = types.ModuleType('gs_probe')
m.extractor_calls = 0
m.calls = []
def hook(frame, event, arg):
    if event == 'call':
        m.calls.append(frame.f_code.co_name)
m.hook = hook
sys.modules['gs_probe'] = m
"""

PROBED_EXTRACTOR = """
import sys, gs_probe
def fname(x):
    if sys.getprofile() is None:
        sys.setprofile(gs_probe.hook)
    gs_probe.extractor_calls += 1
    return x['value']['name'].split(' ')[1]
"""

READ_PROBE = """
import gs_probe
snap = (gs_probe.extractor_calls, [c for c in gs_probe.calls if c not in ('fname', '<module>')])
GB('ShardsIDReader').map(lambda x: repr(snap)).run()
"""


def probed(srv, flow):
    """Runs `flow` (using `fname`) with a profiler on the extractor's thread; returns the
    extractor calls and every other Python function called on that thread."""
    r = srv.client()
    for i, name in enumerate(["Rick Sanchez", "Morty Smith", "Summer Smith", "Beth Smith", "Shrimply Pibbles"]):
        r.hset(f"person:{i + 1}", mapping={"name": name, "age": str(10 + i)})
    assert pyexecute(r, PROBE) == "OK"
    results, errors = pyexecute(r, PROBED_EXTRACTOR + flow)
    assert errors == []
    (snap,), _ = pyexecute(r, READ_PROBE)
    return parse(results), ast.literal_eval(snap)


def test_countby_runs_natively():
    # One extractor call per record and no other Python function on its thread: the
    # counting and the per-key sums are engine operators.
    with fresh_server() as srv:
        results, (calls, others) = probed(srv, "GB().countby(fname).run('person:*')")
    assert sorted(results, key=lambda d: d["key"]) == FAMILIES
    assert calls == 5
    assert others == []


def test_python_aggregateby_probe_sees_reducers():
    # The same probe on the Python form sees its reducer lambdas: the probe works.
    with fresh_server() as srv:
        flow = "GB().aggregateby(fname, 0, lambda k, a, r: 1 + a, lambda k, a, r: r + a).run('person:*')"
        results, (calls, others) = probed(srv, flow)
    assert sorted(results, key=lambda d: d["key"]) == FAMILIES
    assert calls == 5
    assert "<lambda>" in others


# -- the seed walkthrough's remaining batch examples (one shard) -------------------------------



@pytest.fixture
def family_db(r):
    """data.txt of the walkthrough's Cluster 101 section."""
    r.set("foo", "bar")
    for key, name, age in PERSONS:
        assert r.execute_command("HSET", key, "name", name, "age", age) == 2
    return r






def test_seed_reduced_maximum(family_db):
    assert pyexecute(family_db, REDUCED_MAXIMUM) == [["87"], []]


def test_seed_aggregated_maximum(family_db):
    assert pyexecute(family_db, AGGREGATED_MAXIMUM) == [["87"], []]


def test_seed_aggregated_average(family_db):
    assert pyexecute(family_db, AGGREGATED_AVERAGE) == [["44.6"], []]









@pytest.mark.parametrize("script", [COUNTBY, LOCAL_AND_GLOBAL, GLOBAL_ONLY, REPARTITION])
def test_seed_family_counts(family_db, script):
    results, errors = pyexecute(family_db, script)
    assert errors == []
    assert sorted(parse(results), key=lambda d: d["key"]) == FAMILIES


def test_seed_repartition_stores_the_counts(family_db):
    results, errors = pyexecute(family_db, REPARTITION)
    assert errors == [] and len(results) == 3
    assert family_db.get("Smith") == "3"
    assert family_db.get("Sanchez") == "1"
    assert family_db.get("Pibbles") == "1"
