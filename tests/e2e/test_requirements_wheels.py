"""Requirements as wheels (issue #14, REFERENCE §1.1, §5, §9): RG.PYEXPORTREQ / RG.PYIMPORTREQ
with 1.2's layouts, wheels in the RDB and the replication stream so a host without a package
index gets the same packages, all-or-nothing installs, and isolation from the server's own
packages. Hosts "without a package index" are servers started with PIP_NO_INDEX=1."""
import contextlib
import os
import shutil

import pytest
import redis

from conftest import Server, assert_alive, fresh_server, pyexecute, wait_for

USE_HUMANIZE = "import humanize\nGB('ShardsIDReader').map(lambda x: humanize.intcomma(1234567)).run()"


@contextlib.contextmanager
def no_index():
    """Servers started inside cannot download anything (pip sees no index)."""
    saved = {k: os.environ.get(k) for k in ('PIP_NO_INDEX', 'PIP_INDEX_URL')}
    os.environ['PIP_NO_INDEX'] = '1'
    os.environ['PIP_INDEX_URL'] = 'http://127.0.0.1:9/simple'
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def offline_server(server_args=()):
    with no_index():
        srv = Server(server_args).start()
    try:
        yield srv
    finally:
        srv.cleanup()


def meta(row):
    return dict(zip(row[0::2], row[1::2]))


@pytest.fixture(scope='module')
def srv():
    with fresh_server() as s:
        assert pyexecute(s.client(), USE_HUMANIZE, 'REQUIREMENTS', 'humanize') == [['1,234,567'], []]
        yield s


def test_dumpreqs_lists_the_wheels(srv):
    [row] = srv.client().execute_command('RG.PYDUMPREQS')
    m = meta(row)
    assert m['Name'] == 'humanize' and m['GearReqVersion'] == 2 and m['IsInstalled'] == 'yes'
    assert any(w.startswith('humanize-') and w.endswith('.whl') for w in m['Wheels'])
    assert os.path.isdir(os.path.join(m['Path'], 'wheels'))


def test_export_unknown_requirement(srv):
    with pytest.raises(redis.ResponseError, match='^requirement does not exists$'):
        srv.client().execute_command('RG.PYEXPORTREQ', 'no-such-req')


def test_export_layout(srv):
    raw = redis.Redis(port=srv.port, socket_timeout=30)
    md, chunks = raw.execute_command('RG.PYEXPORTREQ', 'humanize')
    assert len(md) == 18 and md[0] == b'GearReqVersion' and md[3] == b'humanize'
    assert isinstance(chunks, list) and chunks and all(len(c) <= 10 * 1024 * 1024 for c in chunks)


def test_import_bad_data_is_a_clear_error(srv):
    c = srv.client()
    with pytest.raises(redis.ResponseError, match='failed deserializing requirement'):
        c.execute_command('RG.PYIMPORTREQ', 'garbage')
    raw = redis.Redis(port=srv.port, socket_timeout=30)
    _, chunks = raw.execute_command('RG.PYEXPORTREQ', 'humanize')
    data = b''.join(chunks)
    with pytest.raises(redis.ResponseError, match='failed deserializing requirement'):
        raw.execute_command('RG.PYIMPORTREQ', data[:-1])
    assert_alive(c)


def test_import_on_a_host_without_index_in_small_chunks(srv):
    raw = redis.Redis(port=srv.port, socket_timeout=30)
    _, chunks = raw.execute_command('RG.PYEXPORTREQ', 'humanize')
    data = b''.join(chunks)
    with offline_server() as other:
        c = other.client()
        # Without the import, the offline host cannot get it.
        with pytest.raises(redis.ResponseError, match='Could not satisfy requirements'):
            pyexecute(c, USE_HUMANIZE, 'REQUIREMENTS', 'humanize')
        parts = [data[i:i + 1000] for i in range(0, len(data), 1000)]
        assert c.execute_command('RG.PYIMPORTREQ', *parts) == 'OK'
        assert meta(c.execute_command('RG.PYDUMPREQS')[0])['Name'] == 'humanize'
        # Installed: REQUIREMENTS humanize needs no download now.
        assert pyexecute(c, USE_HUMANIZE, 'REQUIREMENTS', 'humanize') == [['1,234,567'], []]


def test_failed_install_leaves_nothing_half_installed():
    with fresh_server() as s:
        c = s.client()
        with pytest.raises(redis.ResponseError, match='Could not satisfy requirements'):
            pyexecute(c, 'GB().run()', 'REQUIREMENTS', 'humanize', 'gearshift-no-such-package-xyz')
        assert c.execute_command('RG.PYDUMPREQS') == []
        reqdir = s.dir / 'gearshift-requirements'
        assert not reqdir.exists() or os.listdir(reqdir) == []
        with pytest.raises(redis.ResponseError):
            pyexecute(c, 'import humanize')


def test_rdb_carries_the_wheels_to_a_host_without_index(srv):
    c = srv.client()
    pyexecute(c, "import humanize\nGB('CommandReader').map(lambda a: humanize.intcomma(int(a[1]))).register(trigger='hz')",
              'ID', 'hz', 'UPGRADE', 'REQUIREMENTS', 'humanize')
    assert c.execute_command('RG.TRIGGER', 'hz', '1000') == ['1,000']
    c.save()
    with no_index():
        other = Server()
        other.dir = None
        other.start()
    try:
        other.stop()
        shutil.copy(srv.dir / 'dump.rdb', other.dir / 'dump.rdb')
        with no_index():
            other.start()
        oc = other.client()
        assert [meta(r)['Name'] for r in oc.execute_command('RG.PYDUMPREQS')] == ['humanize']
        assert oc.execute_command('RG.TRIGGER', 'hz', '2000') == ['2,000']
    finally:
        other.cleanup()


def test_replica_gets_the_wheels_without_index(srv):
    with offline_server() as replica:
        rc = replica.client()
        rc.execute_command('REPLICAOF', '127.0.0.1', srv.port)
        assert wait_for(lambda: rc.info('replication').get('master_link_status') == 'up', timeout=20)
        assert wait_for(lambda: [meta(r)['Name'] for r in rc.execute_command('RG.PYDUMPREQS')] == ['humanize'])
        # Installed on the master after the sync: it reaches the replica through the stream.
        c = srv.client()
        pyexecute(c, "import six\nGB().run()", 'REQUIREMENTS', 'six')
        names = lambda: sorted(meta(r)['Name'] for r in rc.execute_command('RG.PYDUMPREQS'))
        assert wait_for(lambda: names() == ['humanize', 'six'], timeout=20)
        rc.execute_command('REPLICAOF', 'NO', 'ONE')
        assert pyexecute(rc, "import six\nGB('ShardsIDReader').map(lambda x: six.__name__).run()") == [['six'], []]


def test_requirement_pins_win_over_the_servers_packages():
    # The server's interpreter has a newer redis-py; a requirement that pins 3.5.3 gets 3.5.3.
    with fresh_server() as s:
        c = s.client()
        res = pyexecute(c, "import redis\nGB('ShardsIDReader').map(lambda x: redis.__version__).run()",
                        'REQUIREMENTS', 'redis==3.5.3')
        assert res == [['3.5.3'], []]


def test_dumpregistrations_session_lists_its_requirements(srv):
    # gears-cli export-requirements --registration-id reads `depsList` names from PD.
    c = srv.client()
    pyexecute(c, "import humanize\nGB().register('pd:*', mode='sync')", 'ID', 'pdreq', 'UPGRADE',
              'REQUIREMENTS', 'humanize')
    [reg] = [r for r in c.execute_command('RG.DUMPREGISTRATIONS') if "'sessionName':'pdreq'" in r[9]]
    assert "'depsList':[{'name':'humanize'}]" in reg[9]
