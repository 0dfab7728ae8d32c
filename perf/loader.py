#!/usr/bin/env python3
"""Fast, reproducible loader for the perf suite.

Fills a Redis server with N hashes `person:<i>` (i = 0..N-1) of the shape
    {name: "<first> <family>", age: <0..99>}
drawn from random.Random(SEED): 30 first names x 100 family names. The commands are written as
raw RESP and pipelined over one socket in chunks, with a reader thread draining the replies, so a
million hashes load in a few seconds.

`load()` also returns the ground truth of every workload (count, average age, count per family,
count of age > 50), computed from the generated data itself: the perf suite checks every
method's answer against it.

Standalone use (loads into an existing server, FLUSHALL first):
    python3 perf/loader.py --port 6379 -n 1000000
"""

import argparse
import random
import socket
import threading
import time
from collections import Counter

SEED = 20240601
KEY_PREFIX = "person:"

FIRST_NAMES = [
    "Rick", "Morty", "Summer", "Beth", "Jerry", "Alice", "Bob", "Carol", "Dave", "Erin",
    "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert",
    "Sybil", "Trent", "Uma", "Victor", "Walter", "Xena", "Yusuf", "Zoe", "Liam", "Noah",
]  # fmt: skip

FAMILY_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price",
    "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
]  # fmt: skip

assert len(FIRST_NAMES) == 30 and len(set(FIRST_NAMES)) == 30
assert len(FAMILY_NAMES) == 100 and len(set(FAMILY_NAMES)) == 100

CHUNK = 10_000  # commands per socket write


def _bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _make_chunks(n, seed, truth, route=None):
    """Yield (RESP bytes, command count) chunks; fill `truth` once all are generated.

    With `route` (key bytes -> destination index), yield lists of such chunks instead, one
    per destination (a cluster's masters), each holding the commands for its keys."""
    rng = random.Random(seed)
    combos = len(FIRST_NAMES) * len(FAMILY_NAMES) * 100
    name_bulks = [
        _bulk(f"{first} {family}".encode()) for first in FIRST_NAMES for family in FAMILY_NAMES
    ]
    age_bulks = [_bulk(str(a).encode()) for a in range(100)]
    head = b"*6\r\n$4\r\nHSET\r\n"
    name_field = b"$4\r\nname\r\n"
    age_field = b"$3\r\nage\r\n"
    n_fam = len(FAMILY_NAMES)
    age_sum = 0
    over_50 = 0
    family_idx = Counter()
    randrange = rng.randrange
    dests = route.destinations if route else 1
    for start in range(0, n, CHUNK):
        per_dest = [[] for _ in range(dests)]
        counts = [0] * dests
        stop = min(n, start + CHUNK)
        for i in range(start, stop):
            # One draw per record: name index (first*100 + family) and age.
            name_i, age = divmod(randrange(combos), 100)
            key = b"%s%d" % (KEY_PREFIX.encode(), i)
            d = route(key) if route else 0
            counts[d] += 1
            append = per_dest[d].append
            append(head)
            append(b"$%d\r\n%s\r\n" % (len(key), key))
            append(name_field)
            append(name_bulks[name_i])
            append(age_field)
            append(age_bulks[age])
            age_sum += age
            if age > 50:
                over_50 += 1
            family_idx[name_i % n_fam] += 1
        if route:
            yield [(b"".join(p), c) for p, c in zip(per_dest, counts)]
        else:
            yield b"".join(per_dest[0]), counts[0]
    truth["count"] = n
    truth["age_sum"] = age_sum
    truth["avg_age"] = (age_sum / n) if n else None
    truth["count_age_over_50"] = over_50
    truth["count_by_family"] = {FAMILY_NAMES[i]: c for i, c in family_idx.items()}


class _ReplyDrain(threading.Thread):
    """Reads replies off the socket and counts them.

    Only for commands whose replies are one line each (integer, status or error replies).
    """

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.replies = 0
        self.first_error = None
        self.target = None
        self.done = threading.Event()
        self.exc = None
        self._lock = threading.Lock()

    def run(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("server closed the connection during loading")
                buf += data
                # ':<n>\r\n', '+OK\r\n' or '-ERR ...\r\n': one CRLF per reply.
                cut = buf.rfind(b"\r\n")
                if cut < 0:
                    continue
                complete, buf = buf[: cut + 2], buf[cut + 2 :]
                if self.first_error is None and b"-" in complete:
                    for line in complete.split(b"\r\n"):
                        if line.startswith(b"-"):
                            self.first_error = line.decode(errors="replace")
                            break
                with self._lock:
                    self.replies += complete.count(b"\r\n")
                    if self.target is not None and self.replies >= self.target:
                        self.done.set()
                        return
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            self.exc = err
            self.done.set()

    def expect(self, total):
        with self._lock:
            self.target = total
            if self.replies >= total:
                self.done.set()


def set_commands(key_prefix, m, per_chunk=1000):
    """Pre-built RESP for `SET <key_prefix><i> <i>` for i in 0..m-1, in chunks of per_chunk."""
    chunks = []
    for start in range(0, m, per_chunk):
        stop = min(m, start + per_chunk)
        parts = []
        for i in range(start, stop):
            key = b"%s%d" % (key_prefix.encode(), i)
            val = b"%d" % i
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val))
        chunks.append((b"".join(parts), stop - start))
    return chunks


def pipe(host, port, chunks, timeout=600):
    """Send pre-built RESP chunks [(bytes, command_count), ...] over one socket, pipelined.

    A reader thread drains the replies concurrently. Returns the seconds from the first byte
    sent to the last reply received; raises on a server error reply or a timeout.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        drain = _ReplyDrain(sock)
        drain.start()
        t0 = time.perf_counter()
        sent = 0
        for chunk, count in chunks:
            sock.sendall(chunk)
            sent += count
        drain.expect(sent)
        if not drain.done.wait(timeout):
            raise TimeoutError(f"only {drain.replies} of {sent} replies after {timeout}s")
        elapsed = time.perf_counter() - t0
        if drain.exc is not None:
            raise drain.exc
        if drain.first_error is not None:
            raise RuntimeError(f"server replied with an error: {drain.first_error}")
    finally:
        sock.close()
    return elapsed


def load(host, port, n, seed=SEED, flush=True, timeout=600):
    """Load n hashes into host:port. Returns (truth, seconds).

    The RESP is generated while it is sent (generation overlaps the server's work).
    """
    truth = {}
    if flush:
        _simple_command(host, port, b"*1\r\n$8\r\nFLUSHALL\r\n", timeout)
    elapsed = pipe(host, port, _make_chunks(n, seed, truth), timeout)
    return truth, elapsed


class SlotRoute:
    """Routes a key to the master owning its hash slot: owners = [(first, last, index)]."""

    def __init__(self, owners):
        self.destinations = 1 + max(i for _, _, i in owners)
        self.owner = [0] * 16384
        for first, last, i in owners:
            for slot in range(first, last + 1):
                self.owner[slot] = i

    def __call__(self, key):
        return self.owner[crc16(key) % 16384]


def _crc16_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """Redis Cluster's CRC16 (XMODEM), table-driven; keys here have no {hashtag}."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


def load_cluster(owners, n, seed=SEED, timeout=600):
    """Load the same n hashes as `load` into a cluster: owners = [(first, last, port)].
    Returns (truth, seconds). The data is generated first, then sent to every master."""
    ports = sorted({p for _, _, p in owners})
    route = SlotRoute([(a, b, ports.index(p)) for a, b, p in owners])
    truth = {}
    per_port = [[] for _ in ports]
    for chunks in _make_chunks(n, seed, truth, route):
        for i, chunk in enumerate(chunks):
            per_port[i].append(chunk)
    t0 = time.perf_counter()
    threads = [
        threading.Thread(target=pipe, args=("127.0.0.1", port, chunks, timeout))
        for port, chunks in zip(ports, per_port)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return truth, time.perf_counter() - t0


def _simple_command(host, port, resp, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(resp)
        reply = sock.recv(4096)
        if not reply.startswith(b"+"):
            raise RuntimeError(f"loader: unexpected reply {reply!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("-n", type=int, default=1_000_000, help="number of hashes (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-flush", action="store_true", help="do not FLUSHALL first")
    args = ap.parse_args()
    truth, secs = load(args.host, args.port, args.n, args.seed, flush=not args.no_flush)
    print(f"loaded {args.n:,} hashes in {secs:.2f}s ({args.n / secs:,.0f} hashes/s)")
    print(f"avg age {truth['avg_age']}, age > 50: {truth['count_age_over_50']}, "
          f"families: {len(truth['count_by_family'])}")


if __name__ == "__main__":
    main()
