"""The data path of a run (docs/architecture.md): the stage holding a flow's last Python step
hands native values on itself (no finalizer GIL hold of their own), records feeding a counting
step stay Python objects, and reader rows become record dicts a batch at a time with field
names shared across rows. Results must be the same whatever the batch and stage boundaries."""

import ast

from conftest import pyexecute


def numbers(r, n):
    """Keys 'n:0'..'n:{n-1}' holding their own number."""
    for start in range(0, n, 5000):
        r.mset({f"n:{i}": str(i) for i in range(start, min(n, start + 5000))})


def persons(r, n):
    """Hashes 'p:i' with an age and a family name."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.hset(f"p:{i}", mapping={"age": str(i % 90), "name": f"A {'XYZ'[i % 3]}"})
    pipe.execute()


# -- the last step is Python ------------------------------------------------------------------


def test_last_python_step_gives_native_values(r):
    numbers(r, 50)
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value'])).run('n:*', convertToStr=False)")
    assert errors == []
    assert sorted(results) == list(range(50))


def test_last_python_step_renders_each_python_type_as_before(r):
    r.set("k", "v")
    script = "GB().flatmap(lambda x: [1, 2.5, 'txt', True, None, {'a': 1}, (1, 2), [3, 'y']]).run(convertToStr=False)"
    results, errors = pyexecute(r, script)
    assert errors == []
    # flatmap emits a list's items last-first (1.2); floats render %lf, True as 1.
    assert results == [[3, "y"], "PY RECORD", "PY RECORD", "PY RECORD", 1, "txt", "2.500000", 1]


def test_last_python_step_then_limit(r):
    numbers(r, 200)
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value'])).limit(7).run('n:*', convertToStr=False)")
    assert errors == []
    assert len(results) == 7 and all(isinstance(v, int) and 0 <= v < 200 for v in results)


def test_last_python_step_then_collect_on_standalone(r):
    numbers(r, 100)
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value']) * 2).collect().run('n:*', convertToStr=False)")
    assert errors == []
    assert sorted(results) == [2 * i for i in range(100)]


def test_last_python_step_then_repartition_on_standalone(r):
    numbers(r, 100)
    script = "GB().map(lambda x: int(x['value'])).repartition(lambda x: str(x)).run('n:*', convertToStr=False)"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(results) == list(range(100))


# -- Python steps, then native steps -----------------------------------------------------------


def test_python_then_count(r):
    numbers(r, 300)
    assert pyexecute(r, "GB().map(lambda x: {'v': x}).count().run('n:*')") == [["300"], []]


def test_python_filter_then_count(r):
    numbers(r, 300)
    script = "GB().filter(lambda x: int(x['value']) % 3 == 0).count().run('n:*')"
    assert pyexecute(r, script) == [["100"], []]


def test_python_then_countby(r):
    persons(r, 300)
    results, errors = pyexecute(r, "GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('p:*')")
    assert errors == []
    got = {d["key"]: d["value"] for d in map(ast.literal_eval, results)}
    assert got == {"X": 100, "Y": 100, "Z": 100}


def test_python_then_avg(r):
    numbers(r, 101)
    assert pyexecute(r, "GB().map(lambda x: int(x['value'])).avg().run('n:*')") == [["50.0"], []]


def test_python_then_aggregate(r):
    numbers(r, 100)
    script = "GB().map(lambda x: int(x['value'])).aggregate(0, lambda a, x: a + x, lambda a, x: a + x).run('n:*')"
    assert pyexecute(r, script) == [[str(sum(range(100)))], []]


def test_python_then_collect_then_python(r):
    numbers(r, 100)
    script = "GB().map(lambda x: int(x['value'])).collect().map(lambda x: x + 1).run('n:*', convertToStr=False)"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(results) == list(range(1, 101))


# -- mixed chains ------------------------------------------------------------------------------


def test_python_native_python_chain(r):
    numbers(r, 120)
    script = (
        "GB().filter(lambda x: int(x['value']) < 100).count()"
        ".map(lambda n: n * 2).run('n:*', convertToStr=False)"
    )
    assert pyexecute(r, script) == [[200], []]


def test_limit_between_python_steps(r):
    numbers(r, 200)
    script = "GB().map(lambda x: int(x['value'])).limit(10).map(lambda x: -1).run('n:*', convertToStr=False)"
    assert pyexecute(r, script) == [[-1] * 10, []]


def test_countby_then_python(r):
    persons(r, 90)
    script = (
        "GB().countby(lambda x: x['value']['name'].split(' ')[1])"
        ".map(lambda d: d['key'] + '=' + str(d['value'])).run('p:*', convertToStr=False)"
    )
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(results) == ["X=30", "Y=30", "Z=30"]


def test_sort_and_distinct_end_the_flow(r):
    numbers(r, 30)
    script = "GB().map(lambda x: int(x['value']) % 5).distinct().sort().run('n:*', convertToStr=False)"
    assert pyexecute(r, script) == [[0, 1, 2, 3, 4], []]


# -- errors -------------------------------------------------------------------------------------


def test_error_in_the_last_python_step_is_reported(r):
    numbers(r, 10)
    results, errors = pyexecute(r, "GB().map(lambda x: 1 / 0).run('n:*', convertToStr=False)")
    assert results == []
    assert len(errors) == 1 and "division by zero" in errors[0]


def test_error_before_a_native_step_is_reported(r):
    numbers(r, 10)
    results, errors = pyexecute(r, "GB().map(lambda x: 1 / 0).count().run('n:*')")
    assert len(errors) == 1 and "division by zero" in errors[0]


def test_error_after_a_native_step_is_reported(r):
    numbers(r, 10)
    results, errors = pyexecute(r, "GB().count().map(lambda n: n / 0).run('n:*')")
    assert results == []
    assert len(errors) == 1 and "division by zero" in errors[0]


# -- record dicts -------------------------------------------------------------------------------


def test_hashes_of_different_shapes_in_one_batch(r):
    r.hset("h:1", mapping={"x": "1", "y": "2"})
    r.hset("h:2", mapping={"y": "3", "z": "4"})
    r.hset("h:3", mapping={"x": "5"})
    r.hset("h:4", mapping={"x": "6", "y": "7", "z": "8", "w": "9"})
    r.hset("h:5", b"\xff\xfe", "bin")
    script = "GB().map(lambda x: (x['key'], x['type'], sorted((repr(k), v) for k, v in x['value'].items()))).run('h:*')"
    results, errors = pyexecute(r, script)
    assert errors == []
    got = {k: (t, v) for k, t, v in map(ast.literal_eval, results)}
    assert got == {
        "h:1": ("hash", [("'x'", "1"), ("'y'", "2")]),
        "h:2": ("hash", [("'y'", "3"), ("'z'", "4")]),
        "h:3": ("hash", [("'x'", "5")]),
        "h:4": ("hash", [("'w'", "9"), ("'x'", "6"), ("'y'", "7"), ("'z'", "8")]),
        "h:5": ("hash", [("b'\\xff\\xfe'", "bin")]),
    }


def test_key_types_mixed_in_one_batch(r):
    r.set("m:s", "v")
    r.hset("m:h", "f", "1")
    r.rpush("m:l", "a", "b")
    r.set("m:s2", "w")
    results, errors = pyexecute(r, "GB().map(lambda x: (x['key'], x['type'])).run('m:*')")
    assert errors == []
    assert sorted(map(ast.literal_eval, results)) == [
        ("m:h", "hash"),
        ("m:l", "list"),
        ("m:s", "string"),
        ("m:s2", "string"),
    ]


# -- big runs -----------------------------------------------------------------------------------


def test_big_runs_equal_the_expected_results(r):
    n = 50_000
    persons(r, n)
    ages = [i % 90 for i in range(n)]
    assert pyexecute(r, "GB().count().run('p:*')") == [[str(n)], []]
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value']['age'])).run('p:*', convertToStr=False)")
    assert errors == [] and sorted(results) == sorted(ages)
    script = "GB().filter(lambda x: int(x['value']['age']) > 50).count().run('p:*')"
    assert pyexecute(r, script) == [[str(sum(a > 50 for a in ages))], []]
    script = "GB().map(lambda x: int(x['value']['age'])).aggregate(0, lambda a, x: a + x, lambda a, x: a + x).run('p:*')"
    assert pyexecute(r, script) == [[str(sum(ages))], []]
    results, errors = pyexecute(r, "GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('p:*')")
    got = {d["key"]: d["value"] for d in map(ast.literal_eval, results)}
    assert errors == [] and got == {"X": n // 3 + 1, "Y": n // 3 + 1, "Z": n // 3}
    results, errors = pyexecute(r, "GB().map(lambda x: int(x['value']['age'])).avg().run('p:*')")
    assert errors == [] and abs(float(results[0]) - sum(ages) / n) < 1e-9
