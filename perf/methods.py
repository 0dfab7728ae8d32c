"""Methods: how each compared method runs a workload against the server.

Gearshift: gearshift_exec() sends RG.PYEXECUTE, probe_gearshift() runs a probe script and raises
Unsupported when the server rejects it. Client-side redis-py: SCAN + pipelined HGETALL in Python
(client_w1 ... client_w5, CLIENT_FUNCS), and w6_subscriber(), the keyspace-notification
subscriber that is the client-side W6. The Lua scripts live in perf/lua/.
"""

import time

import redis

from answers import error_text
from workloads import PATTERN


class Unsupported(Exception):
    """The server does not support what the workload needs yet (reported, not failed)."""


def gearshift_exec(r, script):
    return r.execute_command("RG.PYEXECUTE", script)


def probe_gearshift(r, script, what):
    """Run a probe script; raise Unsupported if the server rejects it."""
    try:
        reply = gearshift_exec(r, script)
    except redis.ResponseError as err:
        raise Unsupported(f"{what}: {error_text(err)}") from None
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list) and reply[1]:
        raise Unsupported(f"{what}: {error_text(reply[1][0])}")
    return reply


def client_scan_batches(r, batch=1000):
    keys = []
    for key in r.scan_iter(match=PATTERN, count=1000):
        keys.append(key)
        if len(keys) == batch:
            yield keys
            keys = []
    if keys:
        yield keys


def client_hgetall_batches(r):
    for keys in client_scan_batches(r):
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        yield pipe.execute()


def client_w1(r):
    return sum(1 for hashes in client_hgetall_batches(r) for h in hashes if h)


def client_w2(r):
    total = n = 0
    for hashes in client_hgetall_batches(r):
        for h in hashes:
            total += int(h["age"])
            n += 1
    return total / n if n else None


def client_w3(r):
    counts = {}
    for hashes in client_hgetall_batches(r):
        for h in hashes:
            family = h["name"].split(" ")[1]
            counts[family] = counts.get(family, 0) + 1
    return counts


def client_w4(r):
    return sum(1 for hashes in client_hgetall_batches(r) for h in hashes if int(h["age"]) > 50)


def client_w5(r):
    return sum(len(keys) for keys in client_scan_batches(r))


CLIENT_FUNCS = {"W1": client_w1, "W2": client_w2, "W3": client_w3, "W4": client_w4, "W5": client_w5}


def w6_subscriber(port, pattern, counter, n, ready, timeout):
    """Client-side W6: what a user does without Gearshift (runs in its own process)."""
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    p = r.pubsub()
    p.psubscribe(f"__keyspace@0__:{pattern}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        msg = p.get_message(timeout=1.0)
        if msg and msg["type"] == "psubscribe":
            break
    ready.set()
    seen = 0
    deadline = time.monotonic() + timeout + 15
    while seen < n and time.monotonic() < deadline:
        msg = p.get_message(timeout=1.0)
        if msg and msg["type"] == "pmessage" and msg["data"] == "set":
            r.incr(counter)
            seen += 1
    p.close()
    r.close()
