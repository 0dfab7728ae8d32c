"""W1 (count) vs the value-reading flows on one server, same data, alternated rep by rep (#13's
W7 target: the vectorised path at >= 95% of W1's rate). W1 reads no values; the
'read values, no Python' row is the reader alone with values, the bound of the others;
W5 (KeysOnlyReader + count) should cost what W1 does.

Usage: python3 perf/arrow_vs_w1.py MODULE.so N K
"""
import shutil
import statistics
import sys

from arrow_batch_bench import start, timed
from workloads import WORKLOADS

FLOWS = {
    'W1 count': "GB().count().run('person:*')",
    # The bound of every value-reading flow: the reader with values, no Python at all.
    'read values, no Python': "GB().limit(10000000).count().run('person:*')",
    'W5 KeysOnlyReader count': WORKLOADS['W5']['gearshift'],
    'W2 (per-record Python)': WORKLOADS['W2']['gearshift'],
    'W7d arrow avg age': WORKLOADS['W7d']['gearshift'],
    'W7e arrow countby family': WORKLOADS['W7e']['gearshift'],
    'W7f arrow filter count': WORKLOADS['W7f']['gearshift'],
}


def main():
    module, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    p, r, d = start(module, n)
    try:
        times = {f: [] for f in FLOWS}
        for _ in range(k):
            for f, script in FLOWS.items():
                times[f].append(timed(r, script)[0])
        w1 = statistics.median(times['W1 count'])
        for f, ts in times.items():
            m = statistics.median(ts)
            print(f"{f:24s} median {m*1000:8.1f} ms  {n/m/1e6:5.2f} M rec/s  ratio to W1 {w1/m:4.2f}")
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
