"""The seed walkthrough (shared/seed/redisgears-introduction.txt), step by step, verbatim.

Every batch example runs twice: on a standalone server and on a 3-master cluster (RG.*
commands sent to one shard, data routed to each key's owner), with the same replies.

Scripts are sent exactly as the walkthrough shows them, multi-line ones included. Records are
compared after parsing, because the order of records and of dict keys is not defined. Unlike
the walkthrough's older output, 1.2 records also carry 'type' and 'event' (REFERENCE §2).
"""

import pytest
from conftest import Cluster, ClusterFront, fresh_server, parse, pyexecute

FOO = {"key": "foo", "value": "bar", "type": "string", "event": None}
RICK = {
    "key": "person:1",
    "value": {"age": "70", "name": "Rick Sanchez"},
    "type": "hash",
    "event": None,
}
MORTY = {
    "key": "person:2",
    "value": {"age": "14", "name": "Morty Smith"},
    "type": "hash",
    "event": None,
}


def by_key(records):
    parsed = parse(records)
    assert len(parsed) == len(records)
    return {rec["key"]: rec for rec in parsed}


@pytest.fixture(scope="module")
def seed_cluster():
    with Cluster() as c:
        yield c


@pytest.fixture(params=["standalone", "cluster"])
def r(request):
    """A client with an empty database: a standalone server, or a whole cluster."""
    if request.param == "standalone":
        yield request.getfixturevalue("r_standalone")
        return
    cluster = request.getfixturevalue("seed_cluster")
    assert cluster.alive()
    front = ClusterFront(cluster)
    front.flushall()
    yield front
    front.close()
    assert cluster.alive(), "a cluster node died during this test"


@pytest.fixture
def r_standalone(server):
    if not server.alive():
        server.restart()
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def walkthrough_db(r):
    """The database as the walkthrough leaves it: foo plus two persons."""
    assert r.set("foo", "bar")  # SET foo bar
    assert r.execute_command("HSET", "person:1", "name", "Rick Sanchez", "age", "70") == 2
    assert r.execute_command("HSET", "person:2", "name", "Morty Smith", "age", "14") == 2
    return r


def test_simplest_function_on_empty_db(r):
    assert pyexecute(r, "GearsBuilder().run()") == [[], []]


def test_adding_datum(r):
    assert r.set("foo", "bar")  # SET foo bar
    results, errors = pyexecute(r, "GearsBuilder().run()")
    assert errors == []
    assert parse(results) == [FOO]


def test_adding_more_data(walkthrough_db):
    results, errors = pyexecute(walkthrough_db, "GearsBuilder().run()")
    assert errors == []
    assert by_key(results) == {"foo": FOO, "person:1": RICK, "person:2": MORTY}


def test_keys_pattern(walkthrough_db):
    results, errors = pyexecute(walkthrough_db, "GearsBuilder().run('person:*')")
    assert errors == []
    assert by_key(results) == {"person:1": RICK, "person:2": MORTY}


def test_filter_operation(walkthrough_db):
    script = "GB().filter(lambda x: x['key'].startswith('person:')).run()"
    results, errors = pyexecute(walkthrough_db, script)
    assert errors == []
    assert by_key(results) == {"person:1": RICK, "person:2": MORTY}


FILTER_FORMATTED = """\
GB() \\
  .filter(lambda x: x['key'].startswith('person:')) \\
  .run()
"""


def test_filter_formatted_for_reading(walkthrough_db):
    results, errors = pyexecute(walkthrough_db, FILTER_FORMATTED)
    assert errors == []
    assert by_key(results) == {"person:1": RICK, "person:2": MORTY}


ISPERSON = """\
# A utility function
def isperson(x):
    ''' Checks if the record's key looks like a person '''
    return x['key'].startswith('person:')

# A RedisGears function
gb = GB()
gb.filter(isperson)
gb.run()
"""


def test_regular_function_callback(walkthrough_db):
    results, errors = pyexecute(walkthrough_db, ISPERSON)
    assert errors == []
    assert by_key(results) == {"person:1": RICK, "person:2": MORTY}


MAP_AGES = """\
gb = GearsBuilder()                       # declare a function builder
gb.map(lambda x: int(x['value']['age']))  # map each record to just an age
gb.run('person:*')                        # run it

## Expected result: [70, 14]
"""


def test_mapping_records(walkthrough_db):
    results, errors = pyexecute(walkthrough_db, MAP_AGES)
    assert errors == []
    assert sorted(results) == ["14", "70"]


MAXIMUM = """\
def maximum(a, x):
  ''' Returns the maximum '''
  a = a if a else 0  # initialize the accumulator
  return max(a, x)

gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(maximum)
gb.run('person:*')

## Expected result: [70]
"""


def per_shard(db, standalone, cluster):
    """What a non-reduced accumulate gives: one value on a standalone server, one per shard
    in a cluster (the seed's "Cluster Map and Reduce": person:1 and person:2 live on
    different shards of a 3-master cluster)."""
    return cluster if isinstance(db, ClusterFront) else standalone


def test_accumulating_data(walkthrough_db):
    res, errs = pyexecute(walkthrough_db, MAXIMUM)
    assert errs == [] and sorted(res) == per_shard(walkthrough_db, ["70"], ["14", "70"])


PREPARE_AVG = """\
def prepare_avg(a, x):
  ''' Accumulates sum and count of records '''
  a = a if a else (0, 0)    # accumulator is a tuple of sum and count
  a = (a[0] + x, a[1] + 1)
  return a

gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(prepare_avg)
gb.run('person:*')

## Expected result: [(84, 2)]
"""


def test_aggregating_sum_and_count(walkthrough_db):
    res, errs = pyexecute(walkthrough_db, PREPARE_AVG)
    want = per_shard(walkthrough_db, ["(84, 2)"], ["(14, 1)", "(70, 1)"])
    assert errs == [] and sorted(res) == want


COMPUTE_AVG = """\
def prepare_avg(a, x):
  ''' Accumulates sum and count of records '''
  a = a if a else (0, 0)  # accumulator is a tuple of sum and count
  a = (a[0] + x, a[1] + 1)
  return a

def compute_avg(x):
  ''' Returns the average '''
  # average is quotient of sum and count
  return x[0]/x[1]

gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(prepare_avg)
gb.map(compute_avg)
gb.run('person:*')

## Expected result: [42.0]
"""


def test_aggregating_average(walkthrough_db):
    res, errs = pyexecute(walkthrough_db, COMPUTE_AVG)
    assert errs == [] and sorted(res) == per_shard(walkthrough_db, ["42.0"], ["14.0", "70.0"])


def test_nonblocking_execution_id_and_results():
    # Execution ids count from 0 per server, so this needs a server of its own.
    with fresh_server() as srv:
        r = srv.client()
        r.set("foo", "bar")
        exec_id = pyexecute(r, "GB().run()", "UNBLOCKING")
        assert exec_id == "0000000000000000000000000000000000000000-0"
        results, errors = r.execute_command("RG.GETRESULTSBLOCKING", exec_id)
        assert errors == []
        assert parse(results) == [FOO]
