#!/usr/bin/env python3
"""The issue #2 figures: `GB().count()` and `map(age)` + `accumulate(...)` over N hashes
`person:i {name, age}`, K runs each, median seconds (and min-max), against a server this
script starts itself with the module loaded.

    python3 perf/foundation.py            # N = 1,000,000, K = 3
    python3 perf/foundation.py -n 200000 -k 5
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loader  # noqa: E402
from servers import Server  # noqa: E402

SCRIPTS = {
    'count': "GB().count().run('person:*')",
    'map+accumulate': "GB().map(lambda x: int(x['value']['age']))"
                      ".accumulate(lambda a, x: x + (a if a else 0)).run('person:*')",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-n', type=int, default=1_000_000)
    ap.add_argument('-k', type=int, default=3)
    ap.add_argument('--module', default=str(Path(__file__).resolve().parents[1] / 'target/release/libgearshift.so'))
    a = ap.parse_args()
    srv = Server(a.module)
    srv.start()
    try:
        run(a, srv)
    finally:
        srv.stop()


def run(a, srv):
    r = redis.Redis(port=srv.port, decode_responses=True, socket_timeout=600)
    t0 = time.perf_counter()
    loader.load('127.0.0.1', srv.port, a.n)
    print(f"loaded {a.n} hashes in {time.perf_counter() - t0:.2f} s")
    for name, script in SCRIPTS.items():
        times, answer = [], None
        for _ in range(a.k):
            t = time.perf_counter()
            answer = r.execute_command('RG.PYEXECUTE', script)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"{name:15s} median {med:.3f} s (min {min(times):.3f}, max {max(times):.3f}) "
              f"= {a.n / med / 1000:.0f}k records/s; reply {answer[0][:1]} errors {answer[1][:1]}")
        print(f"    RG.PYEXECUTE \"{script}\"")


if __name__ == '__main__':
    main()
