"""W1 (count) vs format='arrow' flows on one server, same data, alternated rep by rep (#13's
W7 target: the vectorised path at >= 95% of W1's rate).

Usage: python3 perf/arrow_vs_w1.py MODULE.so N K
"""
import shutil
import statistics
import sys

from arrow_batch_bench import AGE, PA, start, timed

FLOWS = {
    'W1 count': "GB().count().run('person:*')",
    'arrow identity->count': PA + "GB().mapBatch(lambda rb: rb, format='arrow').count().run('person:*')",
    'arrow pc avg age': PA + "GB().mapBatch(lambda rb: " + AGE + ", format='arrow').avg().run('person:*')",
    'arrow pc filter->count': PA + "GB().filterBatch(lambda rb: pc.greater(" + AGE + ", 50), format='arrow')"
                              ".count().run('person:*')",
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
