"""What the perf suite measures: its constants and the workload table.

Owns the paths (perf/, the repo, perf/lua, perf/results), the key pattern, the methods compared
(Gearshift, Lua EVAL, client-side redis-py) and their labels, the static RedisGears 1.2 reference
figures and the targets, and WORKLOADS: per workload its title, answer kind, the ground-truth
field (perf/loader.py) it is checked against, the Gearshift script, the Lua script and, for the
batch workloads, the probe that tells whether the server supports them. The lowest module of
perf/run.py's family: it imports nothing from perf/.
"""

from pathlib import Path

PERF = Path(__file__).resolve().parent
REPO = PERF.parent
LUA_DIR = PERF / "lua"
RESULTS = PERF / "results"

PATTERN = "person:*"
PROBE_PATTERN = "gearshift-perf-probe-nomatch:*"

METHODS = ["gearshift", "lua", "client"]
METHOD_LABEL = {"gearshift": "Gearshift", "lua": "Lua EVAL", "client": "client redis-py"}

# RedisGears 1.2 and Lua EVAL on 1,000,000 hashes, measured by an earlier session on this machine
# kind (issue #6). Static reference only: not measured in this run.
RG12_REFERENCE = {"W1": 71e3, "W2": 28e3, "W3": 33e3, "W4": 39e3, "W5": 74e3, "W6": 18.3e3}
LUA_REFERENCE_TEXT = "Lua EVAL then: W1-W4 330-440k/s, W5 840k/s"
TARGETS = {"W1": 1e6, "W2": 5e5, "W3": 5e5, "W4": 5e5, "W5": 1e6}
# --quick regression guard: Gearshift's median rate over Lua EVAL's median rate, both measured in
# the same run (interleaved rep by rep, so a noisy neighbour slows both), must reach these floors.
# At N = 20,000 a run's fixed cost weighs more than at 1,000,000: measured on this 2-core machine
# (shared, Dec 2026) W1 was 3.0-3.6x Lua, W2-W4 0.5-0.8x (1.3-1.4x at N = 1,000,000). A floor of
# 0.3 catches Gearshift becoming ~2x slower on a per-record workload without failing on noise.
QUICK_GUARD_VS_LUA = {"W1": 1.0, "W2": 0.3, "W3": 0.3, "W4": 0.3}
QUICK_K = 3  # --quick runs per workload and method: the guard compares medians of three


W7A_SCRIPT = (
    "GB().mapBatch(lambda b: [(sum(int(r['value']['age']) for r in b), len(b))])"
    ".aggregate((0, 0), lambda a, r: (a[0] + r[0], a[1] + r[1]), lambda a, r: (a[0] + r[0], a[1] + r[1]))"
    ".map(lambda a: a[0] / a[1])"
    ".run('person:*')"
)
W7B_SCRIPT = """import collections
def family_counts(batch):
    return list(collections.Counter(r['value']['name'].split(' ')[1] for r in batch).items())
GB().mapBatch(family_counts).aggregateby(lambda kv: kv[0], 0, lambda k, a, kv: a + kv[1], lambda k, a, v: a + v).run('person:*')
"""
W7C_SCRIPT = (
    "GB().filterBatch(lambda b: [int(r['value']['age']) > 50 for r in b]).count().run('person:*')"
)

# W7d-f: the same three flows with format='arrow' and pyarrow compute (issue #13's W7 target:
# >= 95% of W1's rate). `f` gets the batch as a pyarrow.RecordBatch (key, type, value as a
# map<utf8, utf8>). The hash fields are read from the map's flat key/item arrays: with pyarrow
# 26, pc.map_lookup costs ~450 us per 1,000 rows against ~60 us for this (measured with
# timeit on this machine), and the rows of a batch may be a slice, hence `entries`.
ARROW_HELPERS = """import pyarrow as pa, pyarrow.compute as pc
def entries(v):
    o = v.offsets
    lo = o[0].as_py()
    n = o[-1].as_py() - lo
    return v.keys.slice(lo, n), v.items.slice(lo, n), pc.subtract(o, lo)
def field(rb, name):
    k, it, _ = entries(rb['value'])
    return pc.filter(it, pc.equal(k, name))
def age_over_50(rb):
    k, it, off = entries(rb['value'])
    is_age = pc.equal(k, 'age')
    hit = pc.and_(is_age, pc.greater(pc.cast(pc.if_else(is_age, it, '0'), pa.int64()), 50))
    c = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(pc.cast(hit, pa.int64()))])
    return pc.greater(pc.subtract(pc.take(c, off[1:]), pc.take(c, off[:-1])), 0)
"""
W7D_SCRIPT = ARROW_HELPERS + (
    "GB().mapBatch(lambda rb: pc.cast(field(rb, 'age'), pa.int64()), format='arrow').avg().run('person:*')"
)
W7E_SCRIPT = ARROW_HELPERS + """def families(rb):
    return pc.value_counts(pc.list_element(pc.split_pattern(field(rb, 'name'), ' '), 1))
GB().mapBatch(families, format='arrow').aggregateby(lambda r: r['values'], 0, lambda k, a, r: a + r['counts'], lambda k, a, v: a + v).run('person:*')
"""
W7F_SCRIPT = ARROW_HELPERS + "GB().filterBatch(age_over_50, format='arrow').count().run('person:*')"
ARROW_PROBE = ARROW_HELPERS + "GB().mapBatch(lambda rb: rb, format='arrow').count().run('%s')" % PROBE_PATTERN

WORKLOADS = {
    "W1": dict(
        title="count records",
        kind="int",
        truth="count",
        gearshift="GB().count().run('person:*')",
        lua="w1_count.lua",
    ),
    "W2": dict(
        title="map(age) + avg()",
        kind="float",
        truth="avg_age",
        gearshift="GB().map(lambda x: int(x['value']['age'])).avg().run('person:*')",
        lua="w2_avg_age.lua",
    ),
    "W3": dict(
        title="countby(family name)",
        kind="dict",
        truth="count_by_family",
        gearshift="GB().countby(lambda x: x['value']['name'].split(' ')[1]).run('person:*')",
        lua="w3_countby_family.lua",
    ),
    "W4": dict(
        title="filter(age > 50) + count()",
        kind="int",
        truth="count_age_over_50",
        gearshift="GB().filter(lambda x: int(x['value']['age']) > 50).count().run('person:*')",
        lua="w4_count_age_over_50.lua",
    ),
    "W5": dict(
        title="KeysOnlyReader count",
        kind="int",
        truth="count",
        gearshift="GB('KeysOnlyReader').count().run('person:*')",
        lua="w5_count_keys.lua",
    ),
    "W6": dict(
        title="events: foreach(INCR) on ev:*",
        kind="events",
        gearshift=(
            "GB().foreach(lambda x: execute('INCR', 'perf:w6:processed'))"
            ".register(prefix='ev:*', eventTypes=['set'])"
        ),
    ),
    "W7a": dict(
        title="mapBatch: avg age (vectorised W2)",
        kind="float",
        truth="avg_age",
        base="W2",
        gearshift=W7A_SCRIPT,
        probe="GB().mapBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
    "W7b": dict(
        title="mapBatch: countby family (vectorised W3)",
        kind="dict",
        truth="count_by_family",
        base="W3",
        gearshift=W7B_SCRIPT,
        probe="GB().mapBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
    "W7c": dict(
        title="filterBatch: count age > 50 (vectorised W4)",
        kind="int",
        truth="count_age_over_50",
        base="W4",
        gearshift=W7C_SCRIPT,
        probe="GB().filterBatch(lambda b: b).count().run('%s')" % PROBE_PATTERN,
    ),
    "W7d": dict(
        title="mapBatch arrow: avg age (pyarrow compute)",
        kind="float",
        truth="avg_age",
        base="W2",
        gearshift=W7D_SCRIPT,
        probe=ARROW_PROBE,
    ),
    "W7e": dict(
        title="mapBatch arrow: countby family (pyarrow compute)",
        kind="dict",
        truth="count_by_family",
        base="W3",
        gearshift=W7E_SCRIPT,
        probe=ARROW_PROBE,
    ),
    "W7f": dict(
        title="filterBatch arrow: count age > 50 (pyarrow compute)",
        kind="int",
        truth="count_age_over_50",
        base="W4",
        gearshift=W7F_SCRIPT,
        probe=ARROW_PROBE,
    ),
}
ALL_WORKLOADS = list(WORKLOADS)
