"""The `redisgears` module (REFERENCE §5, §12.1): in every session's globals and importable,
with 1.2's native names behind the short ones."""

import pytest
import redis

from conftest import pyexecute, wait_for

NAMES = ['atomicCtx', 'callNext', 'config_get', 'executeCommand', 'flatError', 'gearsFutureCtx',
         'getCommand', 'getMyHashTag', 'isAsyncAllow', 'log', 'overrideReply', 'registerTimeEvent']


def test_redisgears_is_in_globals_and_importable(r):
    out = pyexecute(r, "import redisgears as rg\n"
                       "GB('ShardsIDReader').map(lambda x: [rg is redisgears, "
                       "sorted(n for n in dir(rg) if not n.startswith('_'))]).run()")
    assert out == [[str([True, NAMES])], []]


def test_execute_command_passes_nul_bytes(r):
    pyexecute(r, "import redisgears\nredisgears.executeCommand('SET', 'nul', b'a\\x00b')")
    assert r.strlen('nul') == 3
    out = pyexecute(r, "GB('ShardsIDReader').map(lambda x: redisgears.executeCommand('GET', 'nul')).run()")
    assert out == [["a\x00b"], []]


def test_register_time_event_through_redisgears(r):
    pyexecute(r, "import redisgears\n"
                 "redisgears.registerTimeEvent(1, lambda: redisgears.executeCommand('INCR', 'te'), 'te_key')")
    try:
        assert wait_for(lambda: int(r.get('te') or 0) >= 1, timeout=10)
    finally:
        r.delete('te_key')


def test_a_registration_using_redisgears_survives_reload(r):
    pyexecute(r, "GB().foreach(lambda x: redisgears.executeCommand('INCR', 'seen')).register(prefix='rgm:*', mode='sync')")
    try:
        r.set('rgm:1', 'x')
        assert r.get('seen') == '1'
        assert r.execute_command('DEBUG', 'RELOAD') == 'OK'
        r.set('rgm:2', 'x')
        assert r.get('seen') == '2'
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])


def test_local_aggregateby_exists(r):
    for i, v in enumerate(['a', 'b', 'a', 'a']):
        r.set(f'la:{i}', v)
    out = pyexecute(r, "GB().__localAggregateby__(lambda x: x['value'], 0, lambda k, a, x: a + 1).run('la:*')")
    got = sorted(eval(rec)['value'] for rec in out[0])
    assert out[1] == [] and got == [1, 3], out


def test_keys_only_reader_count_is_checked_as_scan_checks_it(r):
    r.set('k1', 'v')
    for bad in ("'x'", "10**30"):
        out = pyexecute(r, f"GB('KeysOnlyReader').run(count={bad})")
        assert out[0] == [] and 'value is not an integer or out of range' in str(out[1]), out
    assert pyexecute(r, "GB('KeysOnlyReader').run('k1', count=5)") == [['k1'], []]


def test_register_returns_the_registration_id(r):
    assert pyexecute(r, "rid = GB().register(prefix='rid:*')\nexecute('SET', 'the_rid', rid)") == 'OK'
    try:
        rid = r.get('the_rid')
        ids = [reg[1] for reg in r.execute_command('RG.DUMPREGISTRATIONS')]
        assert ids == [rid], (rid, ids)
        # The id is usable where 1.2 scripts pass it on.
        with pytest.raises(redis.ResponseError, match='Reader KeysReader does not support pause'):
            r.execute_command('RG.PAUSEREGISTRATIONS', rid)
        assert r.execute_command('RG.UNREGISTER', rid) == 'OK'
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])


def test_register_ids_survive_reload_unchanged(r):
    assert pyexecute(r, "a = GB().register(prefix='ra:*')\nb = GB().register(prefix='rb:*')\n"
                        "execute('RPUSH', 'the_rids', a, b)") == 'OK'
    try:
        before = sorted(reg[1] for reg in r.execute_command('RG.DUMPREGISTRATIONS'))
        assert sorted(r.lrange('the_rids', 0, -1)) == before
        assert r.execute_command('DEBUG', 'RELOAD') == 'OK'
        assert sorted(reg[1] for reg in r.execute_command('RG.DUMPREGISTRATIONS')) == before
    finally:
        for reg in r.execute_command('RG.DUMPREGISTRATIONS'):
            r.execute_command('RG.UNREGISTER', reg[1])
