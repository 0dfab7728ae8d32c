"""Truncated Gearshift data: a `RESTORE` payload whose `rg_timeev` value is cut short (its
checksum made right, as any client can), and an RDB cut inside Gearshift's sessions. Redis
must refuse them with an error (`Bad data format`, an exit with a log line), never panic:
Redis panics on a module's short read unless the module says it handles IO errors."""

import subprocess

import pytest
import redis

from conftest import assert_alive, fresh_server, pyexecute

PANIC = "Guru Meditation"


def crc64(data):
    """Redis's CRC-64 (Jones, reflected): the checksum that ends a DUMP payload."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95AC9329AC4BC9B5 if crc & 1 else 0)
    return crc


def cut_payload(dump, keep):
    """`dump` with its value cut to `keep` bytes, its footer (RDB version, CRC) made right."""
    body, version = dump[:-10], dump[-10:-8]
    out = body[:keep] + version
    return out + crc64(out).to_bytes(8, "little")


@pytest.mark.parametrize("keep", [10, 12, "half", "all but 3"])
def test_restore_of_a_truncated_time_event_is_bad_data_not_a_crash(keep):
    with fresh_server() as srv:
        r = srv.client()
        rb = redis.Redis(host="127.0.0.1", port=srv.port, socket_timeout=10)
        pyexecute(r, "registerTE(1000, lambda: None, 'te')")
        dump = rb.dump("te")
        n = {"half": (len(dump) - 10) // 2, "all but 3": len(dump) - 13}.get(keep, keep)
        with pytest.raises(redis.ResponseError, match="Bad data format"):
            rb.restore("te2", 0, cut_payload(dump, n))
        assert_alive(r, srv)
        assert rb.exists("te2") == 0
        assert PANIC not in srv.logfile.read_text(errors="replace")


def test_an_rdb_cut_inside_the_sessions_is_refused_with_a_log_line():
    with fresh_server() as srv:
        r = srv.client()
        pyexecute(r, "GB().foreach(lambda x: None).register(prefix='p:*')", "ID", "cutsession")
        r.save()
        rdb = (srv.dir / "dump.rdb").read_bytes()
        srv.stop()
        at = rdb.index(b"cutsession")
        # Cut inside the session's code; no checksum (zeros), so the loaders see the bytes.
        cut = rdb[: at + 20] + b"\0" * 8
        (srv.dir / "dump.rdb").write_bytes(cut)
        proc = subprocess.Popen(srv._argv(), cwd=srv.dir, stdin=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("redis-server neither loaded nor refused the cut RDB in 20 s")
        log = srv.logfile.read_text(errors="replace")
        assert PANIC not in log, log[-2000:]
        assert code == 1, (code, log[-2000:])
        assert "Short read" in log or "Unexpected EOF" in log, log[-2000:]
