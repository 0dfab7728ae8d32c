"""An outsider's sweep of requirements against RedisGears 1.2 with real PyPI packages (issue
#11, REFERENCE §1.1, §1.3, §5, §9, §10): a pinned requirement (`humanize==4.9.0`) and a plain
pure-Python one (`six`) through RG.PYEXECUTE ... REQUIREMENTS, RG.PYDUMPREQS,
RG.PYDUMPSESSIONS VERBOSE, the `python_requirements` INFO section, RG.PYEXPORTREQ /
RG.PYIMPORTREQ onto a host without a package index, bad blobs, restarts and the 1.2 tests'
`execute('RG.PYDUMPREQS')` check."""
import pytest
import redis

from conftest import assert_alive, fresh_server, pyexecute
from test_requirements_wheels import offline_server

PINNED = 'humanize==4.9.0'
WHEEL = 'humanize-4.9.0-py3-none-any.whl'
USE_PINNED = "import humanize\nGB('ShardsIDReader').map(lambda x: humanize.__version__).run()"
DUMPREQS_IN_A_STEP = "GB('ShardsIDReader').flatmap(lambda x: execute('RG.PYDUMPREQS')).run()"


def meta(row):
    return dict(zip(row[0::2], row[1::2]))


@pytest.fixture(scope='module')
def srv():
    with fresh_server() as s:
        c = s.client()
        assert pyexecute(c, USE_PINNED, 'REQUIREMENTS', PINNED) == [['4.9.0'], []]
        assert pyexecute(c, "GB('CommandReader').map(lambda a: __import__('six').__name__).register(trigger='six')",
                         'ID', 'withreqs', 'DESCRIPTION', 'desc', 'REQUIREMENTS', 'six', PINNED) == 'OK'
        yield s


def raw(s):
    return redis.Redis(port=s.port, socket_timeout=60)


def test_dumpreqs_layout_for_a_pinned_requirement(srv):
    rows = {meta(r)['Name']: r for r in srv.client().execute_command('RG.PYDUMPREQS')}
    assert sorted(rows) == [PINNED, 'six']
    row = rows[PINNED]
    # REFERENCE §1.3's 18 elements, GearReqVersion 2.
    assert row[0::2] == ['GearReqVersion', 'Name', 'IsDownloaded', 'IsInstalled', 'CompiledOs', 'Wheels',
                         'Path', 'RefCount', 'IsInReqDictionary']
    m = meta(row)
    assert (m['GearReqVersion'], m['IsDownloaded'], m['IsInstalled']) == (2, 'yes', 'yes')
    assert m['IsInReqDictionary'] == 'yes' and m['RefCount'] >= 1
    assert m['Wheels'] == [WHEEL]


def test_dumpreqs_through_execute_in_a_step(srv):
    # What 1.2's own tests check, on every shard: the row printed as a Python list.
    res, errs = pyexecute(srv.client(), DUMPREQS_IN_A_STEP)
    assert errs == [] and len(res) == 2
    assert all("'IsDownloaded', 'yes', 'IsInstalled', 'yes'" in r for r in res)


def test_dump_sessions_lists_the_requirements_and_verbose_describes_them(srv):
    c = srv.client()
    [row] = c.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'withreqs')
    assert row[:-1] == ['ID', 'withreqs', 'sessionDescription', 'desc', 'refCount', 1, 'linked', 'primary', 'dead',
                        'false', 'requirementInstallationNeeded', 0, 'requirements', ['six', PINNED], 'registrations']
    [row] = c.execute_command('RG.PYDUMPSESSIONS', 'VERBOSE', 'SESSIONS', 'withreqs')
    six, pinned = row[13]
    # 1.2's VERBOSE form of a requirement: name, refCount, isDownloaded, isInstalled, wheels.
    assert pinned[0::2] == ['name', 'refCount', 'isDownloaded', 'isInstalled', 'wheels']
    assert pinned[1] == PINNED and six[1] == 'six'
    assert (pinned[5], pinned[7], pinned[9]) == (1, 1, [WHEEL])


def test_info_python_requirements_fields(srv):
    info = srv.client().info('rg_python_requirements')
    # One dict field per requirement, named by the requirement as given.
    assert sorted(info) == [f'rg_{PINNED}', 'rg_six']
    fields = info[f'rg_{PINNED}']
    assert sorted(fields) == ['CompiledOs', 'IsDownloaded', 'IsInstalled', 'Wheels']
    assert (fields['IsDownloaded'], fields['IsInstalled']) == ('yes', 'yes')
    assert fields['Wheels'] == f"['{WHEEL}']"
    [row] = [r for r in srv.client().execute_command('RG.PYDUMPREQS') if meta(r)['Name'] == PINNED]
    assert fields['CompiledOs'] == meta(row)['CompiledOs']


def test_export_by_pinned_name_and_import_on_a_host_without_index(srv):
    md, chunks = raw(srv).execute_command('RG.PYEXPORTREQ', PINNED)
    assert md[5] == b'yes' and md[7] == b'yes' and md[3] == PINNED.encode()
    with offline_server() as other:
        c = other.client()
        assert c.execute_command('RG.PYDUMPREQS') == []
        assert c.execute_command('RG.PYIMPORTREQ', *chunks) == 'OK'
        res, errs = pyexecute(c, DUMPREQS_IN_A_STEP)
        assert errs == [] and "'IsDownloaded', 'yes', 'IsInstalled', 'yes'" in res[0]
        # The import made it importable: REQUIREMENTS of it needs no download, nor does a
        # script without REQUIREMENTS.
        assert pyexecute(c, USE_PINNED, 'REQUIREMENTS', PINNED) == [['4.9.0'], []]
        assert pyexecute(c, USE_PINNED) == [['4.9.0'], []]


def test_every_truncation_of_an_exported_blob_is_an_error(srv):
    _, chunks = raw(srv).execute_command('RG.PYEXPORTREQ', 'six')
    data = b''.join(chunks)
    with offline_server() as other:
        r = raw(other)
        cuts = sorted(set(range(0, 64)) | set(range(0, len(data), max(1, len(data) // 200))))
        for cut in cuts:
            if cut >= len(data):
                continue
            with pytest.raises(redis.ResponseError):
                r.execute_command('RG.PYIMPORTREQ', data[:cut])
        with pytest.raises(redis.ResponseError):
            r.execute_command('RG.PYIMPORTREQ', b'\xff' * 64)
        assert r.execute_command('RG.PYDUMPREQS') == []
        assert_alive(other.client())
        assert r.execute_command('RG.PYIMPORTREQ', data) == b'OK'


def test_restart_without_persistence_forgets_requirements_and_an_import_restores_them():
    with fresh_server() as s:
        c = s.client()
        assert pyexecute(c, "import six", 'REQUIREMENTS', 'six') == 'OK'
        _, chunks = raw(s).execute_command('RG.PYEXPORTREQ', 'six')
        c.config_set('save', '')
        s.restart()
        c = s.client()
        assert c.execute_command('RG.PYDUMPREQS') == []
        assert c.execute_command('RG.PYIMPORTREQ', *chunks) == 'OK'
        assert [meta(r)['Name'] for r in c.execute_command('RG.PYDUMPREQS')] == ['six']


def test_a_blob_of_a_newer_version_or_another_os_is_refused_with_1_2s_texts(srv):
    md, chunks = raw(srv).execute_command('RG.PYEXPORTREQ', 'six')
    data = b''.join(chunks)
    os_name = meta([v.decode() if isinstance(v, bytes) else v for v in md])['CompiledOs'].encode()
    with offline_server() as other:
        r = raw(other)
        newer = data[:1] + bytes([data[1] + 1]) + data[2:]
        with pytest.raises(redis.ResponseError, match='^Requirement version is not compatible, upgrade to newer '
                                                      r'RedisGears\.$'):
            r.execute_command('RG.PYIMPORTREQ', newer)
        elsewhere = data.replace(os_name, b'x' * len(os_name), 1)
        expected = f'Requirement was compiled on different os (compiled_os = {"x" * len(os_name)}, ' \
                   f'current_os = {os_name.decode()})'
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command('RG.PYIMPORTREQ', elsewhere)
        assert str(e.value) == expected
        assert r.execute_command('RG.PYDUMPREQS') == []
