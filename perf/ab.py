"""A/B of flows on two servers (old, new module), same data, alternated rep by rep (#13).

Usage: python3 perf/ab.py OLD.so NEW.so N K FLOW...   (N hashes person:*, K reps per flow)
Prints each flow's median time on both and old/new; `start` is shared with arrow_vs_w1.py.
"""
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis


def start(module, n):
    """A redis-server with `module` loaded and `n` person:* hashes: (process, client)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen(['redis-server', '--port', str(port), '--dir', tempfile.mkdtemp(),
                          '--save', '', '--loadmodule', module], stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.hset(f'person:{i}', mapping={'name': f'First Family{i % 100}', 'age': i % 100})
        if i % 10000 == 9999:
            pipe.execute()
    pipe.execute()
    return p, r


def timed(r, script):
    t = time.perf_counter()
    res = r.execute_command('RG.PYEXECUTE', script)
    assert res[1] == [], res
    return time.perf_counter() - t


def main():
    old, new, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    servers = {'old': start(old, n), 'new': start(new, n)}
    try:
        for f in sys.argv[5:]:
            times = {'old': [], 'new': []}
            for _ in range(k):
                for name, (_, r) in servers.items():
                    times[name].append(timed(r, f))
            mo, mn = statistics.median(times['old']), statistics.median(times['new'])
            print(f"{f[:70]:70s} old {mo*1000:7.1f} ms new {mn*1000:7.1f} ms old/new {mo/mn:4.2f}")
    finally:
        for p, _ in servers.values():
            p.terminate()


if __name__ == '__main__':
    main()
