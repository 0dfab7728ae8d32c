"""REQUIREMENTS: pip installs into a per-server venv from PyPI (issue #4, REFERENCE §5)."""
import pytest
import redis

from conftest import assert_alive, fresh_server, pyexecute


@pytest.fixture(scope='module')
def srv():
    with fresh_server() as s:
        yield s


def test_requirement_is_installed_and_importable(srv):
    c = srv.client()
    script = "import humanize\nGB('ShardsIDReader').map(lambda x: humanize.intcomma(1234567)).run()"
    assert pyexecute(c, script, 'REQUIREMENTS', 'humanize') == [['1,234,567'], []]
    reqs = c.execute_command('RG.PYDUMPREQS')
    assert len(reqs) == 1
    meta = dict(zip(reqs[0][0::2], reqs[0][1::2]))
    assert meta['Name'] == 'humanize' and meta['IsInstalled'] == 'yes' and meta['GearReqVersion'] == 2
    assert 'gearshift-requirements' in meta['Path']


def test_session_lists_its_requirements_and_survives_reload(srv):
    c = srv.client()
    pyexecute(c, "import humanize\nGB().register('h:*', mode='sync')", 'ID', 'withreq', 'REQUIREMENTS', 'humanize')
    sess = c.execute_command('RG.PYDUMPSESSIONS', 'SESSIONS', 'withreq')[0]
    assert sess[13] == ['humanize']
    c.execute_command('DEBUG', 'RELOAD')
    assert [s[1] for s in c.execute_command('RG.PYDUMPSESSIONS')] == ['withreq']


def test_unknown_requirement_is_a_clear_error(srv):
    c = srv.client()
    with pytest.raises(redis.ResponseError, match='Could not satisfy requirements'):
        pyexecute(c, "GB().run()", 'REQUIREMENTS', 'gearshift-no-such-package-xyz')
    assert_alive(c)
