"""The Arrow data path of `mapBatch(f, format='arrow')` and `filterBatch(f, format='arrow')`
(docs/batch-api.md): one fixed schema for every batch, Arrow data handed over the C Data
Interface without copying column buffers, Arrow results taken back as Arrow and fed to the
steps after them (count, limit, avg, countby, per-record steps, other shards), and the errors.

Needs pyarrow in the server's Python (CI installs it); without it the tests skip, except the
ones that check the error for a missing pyarrow."""


import pytest
import redis
from conftest import Cluster, fresh_server, parse, pyexecute

N = 3000
PA = "import pyarrow as pa, pyarrow.compute as pc\n"
AGE = "pc.cast(pc.map_lookup(rb['value'], 'age', 'first'), pa.int64())"


def run_error(client, script):
    with pytest.raises(redis.ResponseError) as err:
        pyexecute(client, script)
    return str(err.value)


def ok(client, script):
    res, errors = pyexecute(client, script)
    assert errors == [], errors
    return res



@pytest.fixture
def people(arrow):
    """Hashes 'person:0'..'person:N-1' {name, age}; every 7th name is not ASCII."""
    pipe = arrow.pipeline(transaction=False)
    for i in range(N):
        name = f"P{i} Müller" if i % 7 == 0 else f"P{i} Smith"
        pipe.hset(f"person:{i}", mapping={"name": name, "age": i % 90})
    pipe.execute()
    return arrow


# -- what f gets --------------------------------------------------------------------------


def test_the_schema_is_the_same_for_every_batch(people):
    res = ok(people, "GB().mapBatch(lambda rb: [str(rb.schema)], format='arrow').run('person:*')")
    assert len(set(res)) == 1 and len(res) > 1, res
    schema = res[0]
    assert "key: string not null" in schema
    assert "type: dictionary<values=string, indices=uint8, ordered=0> not null" in schema
    assert "value: map<string, string>" in schema
    # The same schema when the batch is built from record dicts (after another Python step).
    after = ok(people, "GB().filter(lambda x: True).mapBatch(lambda rb: [str(rb.schema)], format='arrow').run('person:*')")
    assert set(after) == {schema}


def test_the_type_column_is_a_dictionary_of_every_key_type(arrow):
    arrow.set("s", "1")
    res = ok(arrow, "GB().mapBatch(lambda rb: [rb['type'].dictionary.to_pylist(), rb['type'].to_pylist()], format='arrow').run('s')")
    assert res == [str(["string", "hash", "list", "set", "zset", "module", "unknown", "empty"]), str(["string"])]


def test_values_and_keys_only(arrow):
    arrow.mset({"s:1": "é", "s:2": "b"})
    arrow.rpush("l:1", "x", "y")
    rows = lambda script: sorted(parse(ok(arrow, script)), key=lambda d: d["key"])  # noqa: E731
    flow = "GB().mapBatch(lambda rb: rb, format='arrow')"
    assert rows(flow + ".run('s:*')") == [
        {"key": "s:1", "type": "string", "value": "é"},
        {"key": "s:2", "type": "string", "value": "b"},
    ]
    assert rows(flow + ".run('l:*')") == [{"key": "l:1", "type": "list", "value": ["x", "y"]}]
    assert rows(flow + ".run('s:*', readValue=False)") == [{"key": "s:1", "type": "string"}, {"key": "s:2", "type": "string"}]
    assert ok(arrow, "GB().mapBatch(lambda rb: [rb.schema.names], format='arrow').run('s:*', readValue=False)") == [
        str(["key", "type"])
    ]


def test_arrow_data_is_not_copied_between_steps(people):
    # The first step returns its batch; the next arrow step gets the same buffers back
    # (Python -> Rust -> Python over the C Data Interface, no copy either way).
    script = PA + (
        "last = []\n"
        "def addresses(rb):\n"
        "    return [b.address for col in rb.columns for b in col.buffers() if b is not None]\n"
        "def first(rb):\n"
        "    last[:] = addresses(rb)\n"
        "    return rb\n"
        "GB().mapBatch(first, format='arrow')"
        ".mapBatch(lambda rb: [addresses(rb) == last and len(last) > 3], format='arrow').run('person:*')"
    )
    res = ok(people, script)
    assert res and set(res) == {"True"}, res


def test_a_computed_array_keeps_its_buffer(people):
    script = PA + (
        "last = []\n"
        "def first(rb):\n"
        "    a = pc.add(" + AGE + ", 1)\n"
        "    last[:] = [a.buffers()[1].address]\n"
        "    return a\n"
        "GB().mapBatch(first, format='arrow')"
        ".mapBatch(lambda a: [type(a).__name__, a.buffers()[1].address == last[0]], format='arrow').run('person:*')"
    )
    res = ok(people, script)
    assert set(res) == {"Int64Array", "True"}, res


# -- what f returns feeds the next steps ---------------------------------------------------


def test_arrow_results_feed_native_and_python_steps(people):
    flow = "GB().mapBatch(lambda rb: rb, format='arrow')"
    assert ok(people, flow + ".count().run('person:*')") == [str(N)]
    assert ok(people, flow + ".limit(5).count().run('person:*')") == ["5"]
    ages = PA + "GB().mapBatch(lambda rb: " + AGE + ", format='arrow')"
    per_record = ok(people, "GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')")
    assert ok(people, ages + ".avg().run('person:*')") == per_record
    assert sorted(ok(people, ages + ".countby().run('person:*')")) == sorted(
        ok(people, "GB().countby(lambda x: x['value']['age']).run('person:*')")
    )
    assert sum(int(x) for x in ok(people, ages + ".map(lambda a: a + 1).run('person:*')")) == sum(i % 90 + 1 for i in range(N))
    names = PA + "GB().mapBatch(lambda rb: pc.map_lookup(rb['value'], 'name', 'first'), format='arrow')"
    assert sorted(ok(people, names + ".countby(lambda n: n.split(' ')[1]).run('person:*')")) == sorted(
        ok(people, "GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')")
    )


def test_tables_chunked_arrays_and_lists_come_back(people):
    assert ok(people, PA + "GB().mapBatch(lambda rb: pa.Table.from_batches([rb, rb]), format='arrow').count().run('person:*')") == [
        str(2 * N)
    ]
    chunked = "GB().mapBatch(lambda rb: pa.chunked_array([rb['key'], rb['key']]), format='arrow')"
    assert ok(people, PA + chunked + ".count().run('person:*')") == [str(2 * N)]
    assert ok(people, PA + chunked + ".distinct().count().run('person:*')") == [str(N)]
    assert ok(people, "GB().mapBatch(lambda rb: [rb.num_rows], format='arrow').accumulate(lambda a, x: (a or 0) + x).run('person:*')") == [str(N)]


def test_a_record_batch_result_becomes_dicts(arrow):
    arrow.hset("h", "f", "v")
    res = parse(ok(arrow, "GB().mapBatch(lambda rb: rb.select(['key']), format='arrow').map(lambda d: d).run('h')"))
    assert res == [{"key": "h"}]


def test_arrow_after_an_accumulation(people):
    # At end of input (after an accumulating step) the wrapper runs over the records.
    script = PA + "GB().accumulate(lambda a, x: (a or []) + [x]).flatmap(lambda l: l).mapBatch(lambda rb: rb['key'], format='arrow').count().run('person:*')"
    assert ok(people, script) == [str(N)]


# -- filterBatch(format='arrow') ------------------------------------------------------------


def test_filter_batch_arrow_equals_filter(people):
    adults = ok(people, "GB().filter(lambda x: int(x['value']['age']) >= 18).count().run('person:*')")
    keep = PA + "GB().filterBatch(lambda rb: pc.greater_equal(" + AGE + ", 18), format='arrow')"
    assert ok(people, keep + ".count().run('person:*')") == adults
    # The records that pass are the reader's records, unchanged.
    per_record = ok(people, "GB().filter(lambda x: int(x['value']['age']) >= 18).map(lambda x: [x['key'], x['value']]).run('person:*')")
    assert sorted(ok(people, keep + ".map(lambda x: [x['key'], x['value']]).run('person:*')")) == sorted(per_record)
    # A list of flags, and after another Python step (the batch built from the dicts).
    flags = "GB().filterBatch(lambda rb: [int(a) >= 18 for a in pc.map_lookup(rb['value'], 'age', 'first').to_pylist()], format='arrow')"
    assert ok(people, PA + flags + ".count().run('person:*')") == adults
    after = PA + "GB().filter(lambda x: True).filterBatch(lambda rb: pc.greater_equal(" + AGE + ", 18), format='arrow')"
    assert ok(people, after + ".count().run('person:*')") == adults
    # Chained into an arrow mapBatch, the kept rows are a batch again.
    chain = keep + ".mapBatch(lambda rb: pc.min(" + AGE + ").as_py() >= 18 and [rb.num_rows] or ['young'], format='arrow')"
    assert sum(int(n) for n in ok(people, chain + ".run('person:*')")) == int(adults[0])


def test_filter_batch_arrow_errors(arrow):
    arrow.mset({"a": "1", "b": "2"})
    _, errors = pyexecute(arrow, PA + "GB().filterBatch(lambda rb: pa.array([True]), format='arrow').run('[ab]')")
    assert len(errors) == 1 and "filterBatch callback returned 1 values for 2 records" in errors[0]
    _, errors = pyexecute(arrow, PA + "GB().filterBatch(lambda rb: rb['key'], format='arrow').run('[ab]')")
    assert len(errors) == 1 and "filterBatch callback must return a boolean array, not Utf8" in errors[0]
    _, errors = pyexecute(arrow, "GB().filterBatch(lambda rb: 3, format='arrow').run('[ab]')")
    assert len(errors) == 1 and "filterBatch callback must return a list or a boolean pyarrow Array, not int" in errors[0]
    assert "filterBatch format must be 'list' or 'arrow'" in run_error(arrow, "GB().filterBatch(lambda rs: rs, format='csv').run()")


# -- errors ---------------------------------------------------------------------------------


def test_a_key_that_is_not_utf8_is_an_error(arrow):
    arrow.set(b"k\xff", "1")
    arrow.set("k1", "1")
    res, errors = pyexecute(arrow, "GB().mapBatch(lambda rb: rb, format='arrow').run('k*')")
    assert res == [] and len(errors) == 1
    assert "mapBatch(format='arrow') needs UTF-8 keys and values, key b'k\\xff' is not" in errors[0]
    arrow.set("v", b"\xfe")
    _, errors = pyexecute(arrow, "GB().filterBatch(lambda rb: [True], format='arrow').run('v')")
    assert len(errors) == 1 and "key b'v' is not" in errors[0]


def test_mixed_key_types_are_an_error(arrow):
    arrow.set("a", "1")
    arrow.hset("h", "f", "v")
    for step in ("mapBatch(lambda rb: rb", "filterBatch(lambda rb: [True] * rb.num_rows"):
        res, errors = pyexecute(arrow, f"GB().{step}, format='arrow').run('*')")
        assert res == [] and len(errors) == 1
        assert "needs string, hash or list keys of one type per batch, got hash, string" in errors[0]


def test_without_pyarrow_both_steps_fail_at_build_time():
    with fresh_server() as srv:
        c = srv.client()
        for step in ("mapBatch", "filterBatch"):
            script = f"import sys\nsys.modules['pyarrow'] = None\nGB().{step}(lambda rb: rb, format='arrow').run()"
            assert f"{step}(format='arrow') needs pyarrow, which is not installed" in run_error(c, script)


# -- across shards ----------------------------------------------------------------------------


def test_arrow_results_cross_shards():
    with Cluster() as cluster:
        c = cluster.client(0)
        try:
            pyexecute(c, "import pyarrow")
        except redis.ResponseError:
            pytest.skip("pyarrow is not installed for the server's Python")
        cc = cluster.cluster_client()
        for i in range(300):
            cc.hset(f"p:{i}", mapping={"age": i % 90})
        flow = PA + "GB().mapBatch(lambda rb: " + AGE + ", format='arrow')"
        assert ok(c, flow + ".count().run('p:*')") == ["300"]
        assert sorted(int(x) for x in ok(c, flow + ".run('p:*')")) == sorted(i % 90 for i in range(300))
        assert ok(c, flow + ".avg().run('p:*')") == ok(c, "GB().map(lambda x: int(x['value']['age'])).avg().run('p:*')")
        cc.close()
        c.close()
