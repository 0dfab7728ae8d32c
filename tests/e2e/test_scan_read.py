"""The keyspace scan's reads stay exact under its fast paths (issue #13, docs/data-path.md):
KeysOnlyReader + count() counts key batches without making names, `<prefix>*` patterns
skip the glob matcher, batches are sized from the one before, and the clock is read every
few buckets or after a big value."""

import redis
from conftest import parse, pyexecute


def fill(r, n, prefix="k:", chunk=2000):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.hset(f"{prefix}{i}", mapping={"f": str(i), "g": "x" * (i % 7)})
        if i % chunk == chunk - 1:
            pipe.execute()
    pipe.execute()


def one(reply):
    results, errors = reply
    assert errors == []
    return results


def test_keys_only_count_counts_every_matching_key_across_batches(r):
    fill(r, 5000)
    r.set("other:1", "v")
    r.rpush("k:list", "a")
    r.sadd("k:set", "m")
    assert one(pyexecute(r, "GB('KeysOnlyReader').count().run('k:*')")) == ["5002"]
    assert one(pyexecute(r, "GB('KeysOnlyReader').count().run()")) == ["5003"]
    # The same keys as names, when a step looks at them.
    names = one(pyexecute(r, "GB('KeysOnlyReader').map(lambda k: k).count().run('k:*')"))
    assert names == ["5002"]


def test_keys_only_count_with_no_scan_counts_only_an_existing_key(r):
    r.set("here", "v")
    assert one(pyexecute(r, "GB('KeysOnlyReader').count().run('here', noScan=True)")) == ["1"]
    assert one(pyexecute(r, "GB('KeysOnlyReader').count().run('gone', noScan=True)")) == []
    assert one(pyexecute(r, "GB('KeysOnlyReader').run('gone', noScan=True)")) == []


def test_keys_only_count_skips_keys_the_user_may_not_read(r):
    r.execute_command("ACL", "SETUSER", "scanu", "reset", "on", ">pw", "~ok:*", "+@all")
    try:
        for i in range(300):
            r.set(f"ok:{i}", "v")
            r.set(f"no:{i}", "v")
        u = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"],
                        username="scanu", password="pw", decode_responses=True,
                        socket_timeout=30)
        try:
            for script in ("GB('KeysOnlyReader').count().run()",
                           "GB('KeysOnlyReader').count().run('no:*')",
                           "GB().count().run('*')"):
                got = one(pyexecute(u, script))
                want = [] if "no:" in script else ["300"]
                assert got == want, script
        finally:
            u.close()
    finally:
        r.execute_command("ACL", "DELUSER", "scanu")


def test_prefix_and_glob_patterns_match_as_keys_does(r):
    names = ["person:1", "person:", "persons", "p", "a*b", "a*", "ab", "abc", "a\\b", "x[1]"]
    for n in names:
        r.set(n, "v")
    for pattern in ["*", "**", "person:*", "person:**", "p*", "a\\**", "a*", "a?*", "a[*]*",
                    "a\\\\*", "x[[]*", "person:", "nothing*"]:
        want = sorted(r.keys(pattern))
        script = f"GB('KeysOnlyReader').run({pattern!r})"
        assert sorted(one(pyexecute(r, script))) == want, pattern
        count = one(pyexecute(r, f"GB('KeysOnlyReader').count().run({pattern!r})"))
        assert count == ([str(len(want))] if want else []), pattern


def test_a_huge_hash_among_small_ones_is_read_whole_and_later_batches_too(r):
    # The big hash makes one batch big; the batches after it are sized from it (capped)
    # and must still hold exactly their own rows.
    fill(r, 3000)
    big = {f"f{i}": "v" * (i % 50) for i in range(150000)}
    items = list(big.items())
    for i in range(0, len(items), 10000):
        r.hset("k:big", mapping=dict(items[i:i + 10000]))
    script = ("GB().map(lambda x: (x['key'], len(x['value']), sum(len(v) for v in x['value'].values())))"
              ".run('k:*')")
    rows = {k: (n, total) for k, n, total in parse(one(pyexecute(r, script)))}
    assert len(rows) == 3001
    assert rows["k:big"] == (150000, sum(len(v) for v in big.values()))
    for i in range(3000):
        assert rows[f"k:{i}"] == (2, len(str(i)) + i % 7), i


def test_binary_names_and_values_survive_the_sized_batches(r):
    for i in range(2000):
        r.hset(b"bin:\xff" + str(i).encode(), mapping={b"\x00f": b"\xfe" * (i % 5), "g": str(i)})
    assert one(pyexecute(r, "GB('KeysOnlyReader').count().run('bin:*')")) == ["2000"]
    script = ("def ok(x):\n"
              "    v = x['value']['\\x00f']\n"
              "    raw = bytes(v) if isinstance(v, bytearray) else v.encode()\n"
              "    return (type(x['key']).__name__, raw == b'\\xfe' * (int(x['value']['g']) % 5))\n"
              "GB().map(ok).distinct().run('bin:*')")
    assert parse(one(pyexecute(r, script))) == [("bytearray", True)]
