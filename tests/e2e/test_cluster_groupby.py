"""groupby and repartition on a real 3-master Redis Cluster (issue #13): the records a
reducer gets after the shuffle are the records the extractor saw (as it left them), the
extractor runs once per record as in 1.2 (the key travels with the record), and the
results are a single server's. Reader records the extractor did not change cross shards
as their key batch, changed ones as marshalled records: both must give the same records.
Reducers that ignore their record (counting ones) give a single server's results and
errors, also while a profiler runs."""

import pytest
from conftest import Cluster, fresh_server, parse, pyexecute

PEOPLE = 90  # hashes p:0..89, spread over the three shards


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        cc = c.cluster_client()
        load(cc)
        cc.close()
        yield c


def load(client):
    for i in range(PEOPLE):
        client.hset(f"p:{i}", mapping={"name": f"n{i}", "age": str(i % 7)})
    for i in range(10):
        client.set(f"s:{i}", f"v{i}")
    client.rpush("l:1", "a", "b", "c")
    client.sadd("t:1", "x")


@pytest.fixture
def rc(cluster):
    assert cluster.alive(), "a cluster node died in an earlier test"
    c = cluster.client(0)
    yield c
    c.close()
    assert cluster.alive(), "a cluster node died during this test"


@pytest.fixture(scope="module")
def single():
    with fresh_server() as srv:
        c = srv.client()
        load(c)
        yield c
        c.close()


def results(client, script):
    res, errs = pyexecute(client, script)
    assert errs == []
    return sorted(res)


COUNTER = "__import__('sys').__dict__"


def test_the_extractor_runs_once_per_record(rc):
    reset = f"GB('ShardsIDReader').foreach(lambda x: {COUNTER}.__setitem__('gs_calls', 0)).run()"
    assert pyexecute(rc, reset)[1] == []
    script = f"""
def extract(x):
    d = {COUNTER}
    d['gs_calls'] = d.get('gs_calls', 0) + 1
    return x['value']['age']
GB().groupby(extract, lambda k, a, r: (a or 0) + 1).run('p:*')
"""
    res = parse(pyexecute(rc, script)[0])
    assert sum(r["value"] for r in res) == PEOPLE
    calls, errs = pyexecute(rc, f"GB('ShardsIDReader').map(lambda x: {COUNTER}.get('gs_calls', 0)).run()")
    assert errs == [] and sum(int(c) for c in calls) == PEOPLE


@pytest.mark.parametrize(
    "script",
    [
        # Hashes, strings, a list and a set in one run: every record as the reducer sees it.
        "GB().groupby(lambda x: x['type'], lambda k, a, r: (a or []) + [repr(sorted(r.items(), key=str))])"
        ".flatmap(lambda x: [x['key'] + ' ' + v for v in x['value']]).run()",
        "GB().groupby(lambda x: x['value']['age'], lambda k, a, r: (a or 0) + len(r['value']['name']))"
        ".map(lambda x: (x['key'], x['value'])).run('p:*')",
        "GB().batchgroupby(lambda x: x['key'][:3], lambda k, rs: sorted(r['key'] for r in rs)).run('p:1*')",
        # Reducers that never read the record: counts per key (records cross as key batches).
        "GB().groupby(lambda x: x['value']['age'], lambda k, a, r: (a or 0) + 1)"
        ".map(lambda x: (x['key'], x['value'])).run('p:*')",
        "GB().groupby(lambda x: x['type'], lambda k, a, _: (a or 0) + 1).map(lambda x: (x['key'], x['value'])).run()",
        "GB().groupby(lambda x: x['key'][-1], lambda k, a, r: k if a is None else a + k).run('s:*')",
        "GB().repartition(lambda x: x['key']).map(lambda x: (x['key'], x['type'], x['value'])).run()",
        "GB().repartition(lambda x: x['type']).map(lambda x: x['key']).run()",
        # convertToStr results cross as native strings: non-ASCII text and Python reprs.
        r"GB().map(lambda x: x['key'] + ' \u00e9\u4e2d\U0001f600').run()",
        r"GB().map(lambda x: (x['key'], [1.5, None, b'\xff'], {'a': x['type']})).run()",
    ],
)
def test_results_are_a_single_servers(rc, single, script):
    assert results(rc, script) == results(single, script)


def test_a_value_the_extractor_changed_reaches_the_reducer_changed(rc):
    script = """
def extract(x):
    x['value']['seen'] = 'yes'
    return x['key']
GB().groupby(extract, lambda k, a, r: r['value'].get('seen')).map(lambda x: x['value']).run('p:*')
"""
    assert results(rc, script) == ["yes"] * PEOPLE


def test_a_record_the_extractor_changed_reaches_the_reducer_changed(rc):
    script = """
def extract(x):
    x['extra'] = len(x['key'])
    x.pop('event', None)
    return x['key']
GB().groupby(extract, lambda k, a, r: (r.get('extra'), 'event' in r)).map(lambda x: x['value'][0]).run('s:*')
"""
    assert results(rc, script) == ["3"] * 10


def test_only_the_changed_records_of_a_batch_change(rc):
    # One record in ten gets a field: the others keep theirs, whichever way they travel.
    script = """
def extract(x):
    if x['key'].endswith('7'):
        x['value']['mark'] = '1'
    return x['value']['age']
GB().groupby(extract, lambda k, a, r: (a or []) + [r['key'] + ':' + r['value'].get('mark', '0')])\
.flatmap(lambda x: x['value']).run('p:*')
"""
    want = sorted(f"p:{i}:{1 if str(i).endswith('7') else 0}" for i in range(PEOPLE))
    assert results(rc, script) == want


def test_a_reducer_that_ignores_its_record_fails_as_a_single_servers(rc, single):
    script = "GB().groupby(lambda x: x['value']['age'], lambda k, a, r: a + 1).run('p:*')"
    # Which groups were made before the first error stopped the input depends on the
    # order records arrive in, so only the errors are compared.
    cluster_errs = pyexecute(rc, script)[1]
    single_errs = pyexecute(single, script)[1]
    assert cluster_errs and single_errs
    assert {e.split("\n")[0] for e in cluster_errs} == {e.split("\n")[0] for e in single_errs}


def test_counts_are_right_while_the_shards_profile(cluster, rc):
    script = "GB().groupby(lambda x: x['value']['age'], lambda k, a, r: (a or 0) + 1).run('p:*')"
    cluster.each(lambda c: c.execute_command("RG.CONFIGSET", "ProfileExecutions", "1"))
    try:
        res = parse(pyexecute(rc, script)[0])
    finally:
        cluster.each(lambda c: c.execute_command("RG.CONFIGSET", "ProfileExecutions", "0"))
    assert sorted((r["key"], r["value"]) for r in res) == [(str(a), 13 - (a > 5)) for a in range(7)]


# Hashes of several shapes (field sets and orders) in one batch: the records made from key batches on either side of the shuffle read as a single server's.

SHAPES = [{"a": "1"}, {"a": "2", "b": "x"}, {"b": "y", "a": "3"}, {"name": "n", "age": "4"},
          {"age": "5", "name": "m", "more": "z"}]  # fmt: skip
ALL_RECORDS = (
    "GB().groupby(lambda x: x['key'][:2], lambda k, a, r: (a or []) + [repr(list(r.items()))"
    " + repr(list(r['value'].items()) if isinstance(r['value'], dict) else r['value'])])"
    ".flatmap(lambda x: x['value']).run()"
)


def test_hash_records_of_every_shape_read_as_a_single_servers(cluster, rc, single):
    cc = cluster.cluster_client()
    try:
        for c in (cc, single):
            for i in range(60):
                c.hset(f"q{i % 3}:{i}", mapping=SHAPES[i % len(SHAPES)])
        assert results(rc, ALL_RECORDS) == results(single, ALL_RECORDS)
    finally:
        for c in (cc, single):
            c.delete(*[f"q{i % 3}:{i}" for i in range(60)])
        cc.close()

