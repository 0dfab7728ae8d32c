"""A/B of flows on two servers (old, new module), same data, alternated rep by rep (#13).

Usage: python3 perf/ab.py OLD.so NEW.so N K FLOW...   (N hashes person:*, K reps per flow)
Prints each flow's median time on both and old/new. Servers and data come from
arrow_batch_bench.start (the same person:* hashes).
"""
import shutil
import statistics
import sys

from arrow_batch_bench import start, timed


def main():
    old, new, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    servers = {'old': start(old, n), 'new': start(new, n)}
    try:
        for f in sys.argv[5:]:
            times = {'old': [], 'new': []}
            for _ in range(k):
                for name, (_, r, _) in servers.items():
                    times[name].append(timed(r, f)[0])
            mo, mn = statistics.median(times['old']), statistics.median(times['new'])
            print(f"{f[:70]:70s} old {mo*1000:7.1f} ms new {mn*1000:7.1f} ms old/new {mo/mn:4.2f}")
    finally:
        for p, _, d in servers.values():
            p.terminate()
            p.wait()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
