"""Registrations through DEBUG RELOAD, restarts (RDB, AOF) and replication (REFERENCE §9)."""
from conftest import fresh_server, pyexecute, wait_for

SYNC_INCR = "GB().foreach(lambda x: execute('INCR', 'seen')).register('s:*', mode='sync')"


def registration_ids(c):
    return [r[1] for r in c.execute_command('RG.DUMPREGISTRATIONS')]


def registration_stats(c):
    data = c.execute_command('RG.DUMPREGISTRATIONS')[0][7]
    return dict(zip(data[0::2], data[1::2]))


def test_debug_reload_keeps_registrations():
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, SYNC_INCR, 'ID', 'keep', 'DESCRIPTION', 'd')
        before = registration_ids(c)
        assert c.execute_command('DEBUG', 'RELOAD') == 'OK'
        assert registration_ids(c) == before
        assert c.execute_command('RG.PYDUMPSESSIONS')[0][1:4] == ['keep', 'sessionDescription', 'd']
        c.set('s:1', 'x')
        assert c.get('seen') == '1', 'the reloaded registration fires'


def test_restart_from_rdb_keeps_ids_and_later_ids_are_new():
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, SYNC_INCR)
        before = registration_ids(c)
        c.execute_command('SAVE')
        srv.restart()
        c = srv.client()
        assert registration_ids(c) == before
        pyexecute(c, "GB().register('other:*')")
        ids = registration_ids(c)
        assert len(set(ids)) == 2
        c.set('s:1', 'x')
        assert c.get('seen') == '1'


def test_restart_from_aof():
    with fresh_server(server_args=['--appendonly', 'yes', '--aof-use-rdb-preamble', 'no']) as srv:
        c = srv.client()
        pyexecute(c, SYNC_INCR)
        before = registration_ids(c)
        srv.restart()
        c = srv.client()
        assert registration_ids(c) == before


def test_rebuilt_script_may_call_redis_at_top_level():
    # Rebuilding re-runs the script: its execute() calls must not crash the loading server.
    script = "execute('INCR', 'loads')\n" + SYNC_INCR
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, script)
        before = registration_ids(c)
        assert c.execute_command('DEBUG', 'RELOAD') == 'OK'
        assert registration_ids(c) == before
        c.execute_command('SAVE')
        srv.restart()
        c = srv.client()
        assert registration_ids(c) == before
        c.set('s:1', 'x')
        assert c.get('seen') == '1'


def test_failed_rebuild_does_not_abort_loading(tmp_path):
    gate = tmp_path / 'gate'
    failing = f"import os\nif os.path.exists({str(gate)!r}): raise Exception('gate closed')\nGB().register('a:*')"
    with fresh_server() as srv:
        c = srv.client()
        pyexecute(c, failing, 'ID', 'fails')
        pyexecute(c, SYNC_INCR, 'ID', 'works')
        c.set('plain', 'value')
        gate.write_text('closed')  # the failing session's script now raises when rebuilt
        assert c.execute_command('DEBUG', 'RELOAD') == 'OK'
        assert c.get('plain') == 'value'
        assert [s[1] for s in c.execute_command('RG.PYDUMPSESSIONS')] == ['works']
        assert 'could not rebuild session fails' in srv.logfile.read_text()


def test_replica_keeps_registration_but_never_fires():
    with fresh_server() as master, fresh_server() as replica:
        m, r = master.client(), replica.client()
        r.execute_command('REPLICAOF', '127.0.0.1', master.port)
        assert wait_for(lambda: r.info('replication').get('master_link_status') == 'up', timeout=10)
        pyexecute(m, SYNC_INCR)
        assert wait_for(lambda: registration_ids(r), timeout=10)
        assert registration_ids(r) == registration_ids(m)
        m.set('s:1', 'x')
        assert m.execute_command('WAIT', 1, 2000) == 1
        assert m.get('seen') == '1'
        assert registration_stats(m)['numTriggered'] == 1
        # The replica got the master's INCR, but its own copy of the registration did not fire
        # at all (not fired-and-refused: that would count a trigger and a failure).
        assert r.get('seen') == '1'
        stats = registration_stats(r)
        assert (stats['numTriggered'], stats['numSuccess'], stats['numFailures'], stats['numAborted'],
                stats['lastError']) == (0, 0, 0, 0, None), stats  # fmt: skip
        reg = registration_ids(m)[0]
        m.execute_command('RG.UNREGISTER', reg)
        assert wait_for(lambda: registration_ids(r) == [], timeout=10), registration_ids(r)


def test_registrations_survive_aof_rewrite_and_restart():
    with fresh_server(server_args=['--appendonly', 'yes']) as srv:
        c = srv.client()
        pyexecute(c, SYNC_INCR)
        before = registration_ids(c)
        c.execute_command('BGREWRITEAOF')
        assert wait_for(lambda: c.info('persistence')['aof_rewrite_in_progress'] == 0
                        and c.info('persistence')['aof_rewrite_scheduled'] == 0
                        and c.info('persistence')['aof_last_bgrewrite_status'] == 'ok', timeout=20)
        srv.restart()
        c = srv.client()
        assert registration_ids(c) == before
        c.set('s:1', 'x')
        assert c.get('seen') == '1'
