"""RG.GETRESULTSBLOCKING on a keyspace event's execution that runs when the client starts
waiting and is dropped from its registration's list at once (`MaxExecutionsPerRegistration
1`, a later event queued behind it): 1.2 answers such a client when the execution ends, so
the client gets the result, never `execution plan does not exist` (REFERENCE §1.1, §12.7)."""
import threading

import pytest
import redis

from conftest import fresh_server, pyexecute, wait_for

# Event q:1 holds its execution until the key `go` exists.
SLOW = ("import time\n"
        "def slow(x):\n"
        "    if x['key'] == 'q:1':\n"
        "        execute('SET', 'started', '1')\n"
        "        while execute('GET', 'go') is None:\n"
        "            time.sleep(0.01)\n"
        "    return x['key']\n")

# A record-local flow (batched drain) and one that is not (one engine execution per event).
FLOWS = [SLOW + "GB().map(slow).register('q:*')",
         SLOW + "GB().map(slow).limit(5).register('q:*')"]


def block_on(srv, eid, got):
    """RG.GETRESULTSBLOCKING `eid` on its own client and thread; its reply or error in `got`."""
    c = redis.Redis(host='127.0.0.1', port=srv.port, decode_responses=True, socket_timeout=30)

    def call():
        try:
            got['reply'] = c.execute_command('RG.GETRESULTSBLOCKING', eid)
        except redis.ResponseError as e:
            got['error'] = str(e)

    t = threading.Thread(target=call)
    t.start()
    return t


@pytest.mark.parametrize('flow', FLOWS, ids=['batched', 'per-event'])
def test_blocking_on_a_running_event_dropped_at_once_gets_its_result(flow):
    with fresh_server(MaxExecutionsPerRegistration=1) as srv:
        c = srv.client()
        try:
            pyexecute(c, flow)
            c.set('q:1', '1')
            assert wait_for(lambda: c.get('started') == '1')
            running = [e[1] for e in c.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running']
            assert len(running) == 1, c.execute_command('RG.DUMPEXECUTIONS')
            # Queued behind it: the registration's list (1 entry) holds this one now.
            c.set('q:2', '1')
            got = {}
            t = block_on(srv, running[0], got)
            assert wait_for(lambda: c.info('clients')['blocked_clients'] == 1 or got)
            c.set('go', '1')
            t.join(30)
            assert got == {'reply': [['q:1'], []]}
        finally:
            c.set('go', '1')


@pytest.mark.parametrize('flow', FLOWS, ids=['batched', 'per-event'])
def test_blocking_after_a_dropped_event_ended_is_the_unknown_execution(flow):
    """Once such an execution ended, it is gone: 1.2's reply."""
    with fresh_server(MaxExecutionsPerRegistration=1) as srv:
        c = srv.client()
        pyexecute(c, flow)
        c.set('q:1', '1')
        assert wait_for(lambda: c.get('started') == '1')
        first = [e[1] for e in c.execute_command('RG.DUMPEXECUTIONS') if e[3] == 'running'][0]
        c.set('q:2', '1')
        c.set('go', '1')
        assert wait_for(lambda: [e[3] for e in c.execute_command('RG.DUMPEXECUTIONS')] == ['done'])
        with pytest.raises(redis.ResponseError, match='^execution plan does not exist$'):
            c.execute_command('RG.GETRESULTSBLOCKING', first)
