"""INFO rg reaches Prometheus: Debian's prometheus-redis-exporter, run with the shipped
tools/prometheus/rg_metrics.lua as its -script, publishes Gearshift's rg_* fields (#14).

redis_exporter reads INFO ALL, which leaves module sections out in Redis 7, so without the
script no rg_ field appears; the first test shows that, so the second one proves the script.
"""

import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO, _free_port, fresh_server, pyexecute

EXPORTER = shutil.which("prometheus-redis-exporter")
SCRIPT = REPO / "tools/prometheus/rg_metrics.lua"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def exporter_bin():
    if EXPORTER is None:
        if IN_CI:
            pytest.fail("prometheus-redis-exporter is not installed (scripts/lib.sh installs it)",
                        pytrace=False)  # fmt: skip
        pytest.skip("prometheus-redis-exporter is not installed (apt install prometheus-redis-exporter)")
    return EXPORTER


def scrape(exporter, server, *extra, timeout=10.0):
    """Start the exporter against `server`, return its /metrics text, stop it."""
    port = _free_port()
    argv = [exporter, "-redis.addr", f"redis://127.0.0.1:{server.port}",
            "-web.listen-address", f"127.0.0.1:{port}", *extra]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return r.read().decode()
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"exporter did not serve /metrics: {proc.stderr.read()!r}")
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def script_values(text):
    pat = re.compile(r'^redis_script_values\{key="([^"]+)"\} (\S+)$', re.M)
    return {k: float(v) for k, v in pat.findall(text)}


def test_without_the_script_no_rg_field_is_scraped(exporter_bin, server):
    text = scrape(exporter_bin, server)
    assert "redis_up 1" in text
    assert not re.search(r"rg_|gearshift", text)


def test_the_script_publishes_rg_fields(exporter_bin):
    with fresh_server() as srv:
        c = srv.client()
        assert pyexecute(c, "GB('ShardsIDReader').run()") == [["1"], []]
        # A blocking run is dropped once it replied (as in 1.2); an UNBLOCKING one stays listed.
        eid = pyexecute(c, "GB('ShardsIDReader').run()", "UNBLOCKING")
        assert c.execute_command("RG.GETRESULTSBLOCKING", eid) == [["1"], []]
        pyexecute(c, "GB('CommandReader').register(trigger='t')")
        values = script_values(scrape(exporter_bin, srv, "-script", str(SCRIPT)))
    assert values["rg_nexecutions"] >= 1
    assert values["rg_nregistrations"] == 1
    assert values["rg_gearshift_executions_finished"] >= 1
    assert values["rg_gearshift_worker_threads"] >= 1
    # rg_python_stats fields are real allocator figures, not zeros.
    assert values["rg_CurrAllocated"] > 0
