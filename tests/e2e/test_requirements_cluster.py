"""Requirements' wheels reach the other shards of a cluster (issue #14, REFERENCE §5): only the
shard that downloads needs a package index; the others (started with PIP_NO_INDEX=1) install
the same wheels it sends, for REQUIREMENTS and for RG.PYIMPORTREQ."""
import pytest
import redis

from conftest import Cluster, Server, fresh_server, pyexecute, wait_for
from test_requirements_wheels import no_index


def meta(row):
    return dict(zip(row[0::2], row[1::2]))


def names(c):
    return sorted(meta(r)['Name'] for r in c.execute_command('RG.PYDUMPREQS'))


@pytest.fixture(scope='module')
def cluster():
    cl = Cluster()
    for node in cl.nodes[1:]:
        def offline_start(node=node):
            with no_index():
                return Server.start(node)
        node.start = offline_start
    with cl:
        yield cl


def test_requirements_reach_offline_shards(cluster):
    c = cluster.client(0)
    script = "import humanize\nGB('ShardsIDReader').map(lambda x: humanize.intcomma(1234567)).run()"
    res, errs = pyexecute(c, script, 'REQUIREMENTS', 'humanize')
    assert errs == [] and res == ['1,234,567'] * 3
    for i in range(3):
        assert names(cluster.client(i)) == ['humanize']


def test_import_installs_on_every_shard(cluster):
    with fresh_server() as s:
        pyexecute(s.client(), 'GB().run()', 'REQUIREMENTS', 'six')
        raw = redis.Redis(port=s.port, socket_timeout=30)
        _, chunks = raw.execute_command('RG.PYEXPORTREQ', 'six')
    # Imported through an offline shard: it reaches the others too.
    c = cluster.client(1)
    assert c.execute_command('RG.PYIMPORTREQ', *chunks) == 'OK'
    for i in range(3):
        assert 'six' in names(cluster.client(i))
    res, errs = pyexecute(c, "import six\nGB('ShardsIDReader').map(lambda x: six.__name__).run()")
    assert errs == [] and res == ['six'] * 3
