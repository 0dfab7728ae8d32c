"""KeysReader and the local steps (map, filter, foreach, flatmap, accumulate, count) through
RG.PYEXECUTE, per REFERENCE §2.1, §3 and §11."""

from collections import Counter

import pytest
from conftest import parse, pyexecute


def add_persons(r, n=3):
    for i in range(1, n + 1):
        r.hset(f"person:{i}", mapping={"name": f"p{i}", "age": str(10 * i)})


def test_count_on_empty_db_is_empty_not_zero(r):
    # §11.14: count() emits nothing at all when there is no input.
    assert pyexecute(r, "GB().count().run()") == [[], []]


def test_count_persons(r):
    add_persons(r)
    r.set("other", "x")
    assert pyexecute(r, "GB().count().run('person:*')") == [["3"], []]


def test_accumulate_without_input_emits_nothing(r):
    assert pyexecute(r, "GB().accumulate(lambda a, x: (a or 0) + 1).run()") == [[], []]


def test_filter_keeps_truthy_records(r):
    r.mset({"a": "1", "b": "0", "c": "2"})
    script = "GB().filter(lambda x: int(x['value'])).map(lambda x: x['key']).run()"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert sorted(results) == ["a", "c"]


def test_flatmap_of_a_list(r):
    r.rpush("l", "a", "b", "c")
    results, errors = pyexecute(r, "GB().flatmap(lambda x: x['value']).run('l')")
    assert errors == []
    assert sorted(results) == ["a", "b", "c"]


def test_flatmap_emits_list_elements_in_reverse_order(r):
    # §3 ⚠: 1.2 emits a returned list's elements last-first; sort() depends on it.
    r.rpush("l", "a", "b", "c")
    assert pyexecute(r, "GB().flatmap(lambda x: x['value']).run('l')") == [["c", "b", "a"], []]


def test_flatmap_passes_non_list_as_one_record_and_drops_empty_list(r):
    r.mset({"t": "1", "e": "2"})
    script = "GB().flatmap(lambda x: (1, 2) if x['key'] == 't' else []).run()"
    assert pyexecute(r, script) == [["(1, 2)"], []]


def test_foreach_passes_the_record_unchanged(r):
    r.set("foo", "bar")
    results, errors = pyexecute(r, "GB().foreach(lambda x: 'ignored').run()")
    assert errors == []
    assert parse(results) == [{"key": "foo", "value": "bar", "type": "string", "event": None}]


def test_foreach_side_effects_happen(r):
    r.mset({"a": "1", "b": "2"})
    script = "GB().foreach(lambda x: execute('SET', 'seen:' + x['key'], x['value'])).run('[ab]')"
    results, errors = pyexecute(r, script)
    assert errors == []
    assert len(results) == 2
    assert r.mget("seen:a", "seen:b") == ["1", "2"]


def test_value_mapping_per_key_type(r):
    # §2.1: string -> str, hash -> dict, list -> list; set/zset -> None (read them yourself).
    r.set("s", "text")
    r.hset("h", mapping={"f1": "v1", "f2": "2"})
    r.rpush("l", "x", "y", "x")
    r.sadd("st", "m")
    r.zadd("z", {"m": 1})
    results, errors = pyexecute(r, "GB().run()")
    assert errors == []
    by_key = {rec["key"]: rec for rec in parse(results)}
    assert by_key == {
        "s": {"key": "s", "value": "text", "type": "string", "event": None},
        "h": {"key": "h", "value": {"f1": "v1", "f2": "2"}, "type": "hash", "event": None},
        "l": {"key": "l", "value": ["x", "y", "x"], "type": "list", "event": None},
        "st": {"key": "st", "value": None, "type": "set", "event": None},
        "z": {"key": "z", "value": None, "type": "zset", "event": None},
    }


def test_read_value_false_yields_only_key_and_event(r):
    # §11.18 / §2.1 ⚠: no 'value' and no 'type' at all.
    r.set("x", "1")
    results, errors = pyexecute(r, "GB().run(readValue=False)")
    assert errors == []
    assert parse(results) == [{"key": "x", "event": None}]


@pytest.mark.parametrize(
    "builder",
    ["GearsBuilder()", "GearsBuilder('KeysReader')", "GearsBuilder(reader='KeysReader')", "GB()"],
)
def test_three_ways_to_name_the_keys_reader(r, builder):
    r.set("foo", "bar")
    results, errors = pyexecute(r, f"{builder}.run()")
    assert errors == []
    assert parse(results) == [{"key": "foo", "value": "bar", "type": "string", "event": None}]


def test_map_over_many_keys_returns_every_record_once(r):
    n = 5000
    expected = {f"k:{i}": str(i) for i in range(n)}
    pipe = r.pipeline(transaction=False)
    for start in range(0, n, 1000):
        pipe.mset({f"k:{i}": str(i) for i in range(start, min(start + 1000, n))})
    pipe.execute()
    r.set("other", "not matched")

    results, errors = pyexecute(r, "GB().map(lambda x: x['key'] + '=' + x['value']).run('k:*')")
    assert errors == []
    seen = Counter(results)
    assert [rec for rec, times in seen.items() if times > 1] == []
    assert dict(rec.split("=", 1) for rec in results) == expected


def test_reading_values_does_not_change_their_encoding(r):
    r.set('counter', 5)
    r.set('short', 'abc')
    pyexecute(r, "GB().run()")
    assert r.object('encoding', 'counter') == 'int'
    assert r.object('encoding', 'short') == 'embstr'
