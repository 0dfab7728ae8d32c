"""The RedisGears ecosystem against Gearshift, unchanged (issue #14): gears-cli, gearsclient and
redgrease, installed from PyPI into venvs of their own under .run/clients (created once with
`python3 -m venv` and reused between runs, so CI downloads them once). Each runs as a user
runs it, in a subprocess. Servers "without a package index" are started with PIP_NO_INDEX=1."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, fresh_server, pyexecute
from test_requirements_wheels import offline_server

CLIENTS = REPO / '.run' / 'clients'
PIP_TIMEOUT = 600


def server_cloudpickle(c):
    return pyexecute(c, "import cloudpickle\nGB('ShardsIDReader').map(lambda x: cloudpickle.__version__).run()")[0][0]


def client_venv(name, *specs):
    """A venv with `specs` pip-installed, cached under .run/clients/<name> (rebuilt when the
    specs change)."""
    venv = CLIENTS / name
    marker = venv / 'gearshift-specs.txt'
    want = '\n'.join(specs)
    if not (marker.is_file() and marker.read_text() == want):
        subprocess.run([sys.executable, '-m', 'venv', '--clear', str(venv)], check=True, timeout=PIP_TIMEOUT)
        for spec in specs:  # in order: a later spec may pin over an earlier one's dependency
            subprocess.run([str(venv / 'bin' / 'pip'), 'install', '-q', '--disable-pip-version-check', *spec.split()],
                           check=True, timeout=PIP_TIMEOUT)
        marker.write_text(want)
    return venv


def run_py(venv, code, timeout=PIP_TIMEOUT):
    return subprocess.run([str(venv / 'bin' / 'python'), '-c', code], capture_output=True, text=True, timeout=timeout)


# --- gears-cli --------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def gears_cli():
    return client_venv('gears-cli', 'gears-cli') / 'bin' / 'gears-cli'


def cli(exe, *args):
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=PIP_TIMEOUT)


def test_gears_cli_run(gears_cli, tmp_path):
    script = tmp_path / 'g.py'
    script.write_text("GB('ShardsIDReader').map(lambda x: 'hello').run()\n")
    with fresh_server() as s:
        p = cli(gears_cli, 'run', '--port', s.port, script)
        assert p.returncode == 0, p.stdout + p.stderr
        assert 'hello' in p.stdout


def test_gears_cli_requirements_and_export_import_round_trip(gears_cli, tmp_path):
    script = tmp_path / 'g.py'
    script.write_text("import humanize\nGB('ShardsIDReader').map(lambda x: humanize.intcomma(1234567)).run()\n")
    reqs = tmp_path / 'requirements.txt'
    reqs.write_text('humanize\n')
    out = tmp_path / 'exported'
    out.mkdir()
    with fresh_server() as s:
        p = cli(gears_cli, 'run', '--port', s.port, '--requirements', reqs, script)
        assert p.returncode == 0 and '1,234,567' in p.stdout, p.stdout + p.stderr
        p = cli(gears_cli, 'export-requirements', '--port', s.port, '--all', '--save-directory', out)
        assert p.returncode == 0, p.stdout + p.stderr
    [zipped] = os.listdir(out)
    assert zipped.startswith('redisgears-requirement-v2-humanize-') and zipped.endswith('.zip')
    with zipfile.ZipFile(out / zipped) as z:
        assert sorted(z.namelist()) == ['Data.bin', 'MetaData.json']
    with offline_server() as other:
        p = cli(gears_cli, 'import-requirements', '--port', other.port, '--requirements-path', out, zipped)
        assert p.returncode == 0 and 'imported successfully' in p.stdout, p.stdout + p.stderr
        # The imported requirement satisfies REQUIREMENTS on a host that cannot download.
        p = cli(gears_cli, 'run', '--port', other.port, '--requirements', reqs, script)
        assert p.returncode == 0 and '1,234,567' in p.stdout, p.stdout + p.stderr


def test_gears_cli_export_of_unknown_requirement(gears_cli, tmp_path):
    with fresh_server() as s:
        p = cli(gears_cli, 'export-requirements', '--port', s.port, '--requirement', 'nope', '--save-directory', tmp_path)
        assert p.returncode != 0 and 'requirement does not exists' in p.stdout


# --- gearsclient ------------------------------------------------------------------------------

GEARSCLIENT_RUN = '''
import redis
from gearsclient import GearsRemoteBuilder as GRB
r = redis.Redis(port={port})
r.set('a', '1'); r.set('b', '2')
res, errs = GRB(r=r, requirements=['gearsclient'], addClientToRequirements=False).map(lambda x: x['key']).run()
print(sorted(res), errs)
'''


def test_gearsclient_cloudpickle_mismatch_is_explained_and_the_fix_works():
    # gearsclient pins cloudpickle<2 (1.6, which cannot pickle Python 3.11 code objects the
    # server's cloudpickle loads): the error names both sides and what to install.
    mismatched = client_venv('gearsclient', 'gearsclient')
    with fresh_server() as s:
        server_cp = server_cloudpickle(s.client())
        p = run_py(mismatched, GEARSCLIENT_RUN.format(port=s.port))
        assert p.returncode != 0
        assert 'cloudpickle version mismatch' in p.stderr, p.stderr[-2000:]
        assert f'the server has cloudpickle {server_cp}' in p.stderr
        assert f'pip install cloudpickle=={server_cp}' in p.stderr
        # Doing what the error says makes GearsRemoteBuilder work.
        fixed = client_venv('gearsclient-fixed', 'gearsclient', f'--no-deps cloudpickle=={server_cp}')
        p = run_py(fixed, GEARSCLIENT_RUN.format(port=s.port))
        assert p.returncode == 0, p.stderr[-2000:]
        assert p.stdout.strip() == "['a', 'b'] []"


# --- redgrease --------------------------------------------------------------------------------

REDGREASE_QUICKSTART = '''
import redgrease
r = redgrease.RedisGears(port={port})
r.hset('user:1', mapping={{'active': '1'}}); r.hset('user:2', mapping={{'active': '0'}})
# A plain script with redgrease's runtime enforced as a requirement on the server.
print(r.gears.pyexecute("GB('ShardsIDReader').map(lambda x: 'hi').run()", enforce_redgrease=True, requirements={extra!r}))
# A GearFunction built on the client (cloudpickled, rebuilt by the runtime).
res = redgrease.KeysReader().map(lambda rec: rec['key']).run('user:*', on=r)
print(sorted(res), res.errors)
'''


def test_redgrease_quick_start():
    with fresh_server() as s:
        server_cp = server_cloudpickle(s.client())
        venv = client_venv('redgrease', 'redgrease[client]', f'--no-deps cloudpickle=={server_cp}')
        # redgrease[runtime] asks for an unpinned redis-py; redis-py >= 5 dropped the `charset`
        # argument its runtime passes, so the runtime needs `redis<5` next to it.
        p = run_py(venv, REDGREASE_QUICKSTART.format(port=s.port, extra=['redis<5']))
        assert p.returncode == 0, p.stderr[-3000:]
        first, second = p.stdout.strip().splitlines()[-2:]
        assert 'hi' in first
        assert second == "['user:1', 'user:2'] []"
