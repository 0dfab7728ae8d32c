"""RG.PYPROFILE of flows built from GearsBuilder sugar (REFERENCE §8, §12.7)."""
import pytest

from conftest import pyexecute, unregister_all


@pytest.fixture
def rp(r):
    r.execute_command('RG.CONFIGSET', 'ProfileExecutions', '1')
    yield r
    r.execute_command('RG.CONFIGSET', 'ProfileExecutions', '0')
    unregister_all(r)


def test_aggregateby_callbacks_are_profiled(rp):
    # A flow that is only an aggregateby: its steps are the prelude's wrappers.
    script = """
def by_first_letter(r):
    return r['key'][0]
def add_one(k, a, r):
    return a + 1
def add_up(k, a, r):
    return a + r
GB().aggregateby(by_first_letter, 0, add_one, add_up).register('ag:*', mode='sync')
"""
    pyexecute(rp, script, 'ID', 'agg')
    rp.set('ag:1', 'x')
    rp.set('ag:2', 'y')
    stats = rp.execute_command('RG.PYPROFILE', 'STATS', 'agg')
    for name in ('by_first_letter', 'add_one', 'add_up'):
        assert name in stats
