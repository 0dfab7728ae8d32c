"""An adversarial outsider's ACL probes: a user whose rules take code execution away must
not run code through any other RG command (docs/security.md)."""

import io
import platform
import struct
import zipfile
from pathlib import Path

import pytest
import redis

from conftest import assert_alive

NO_CODE = ["+@all", "-@dangerous", "-rg.pyexecute", "-rg.pyexecuteremote"]


def _field(b):
    return struct.pack("<I", len(b)) + b


def requirement_blob(name, files):
    """An RG.PYEXPORTREQ payload (engine::wire::requirements) with one wheel of `files`."""
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    os_name = f"linux-{platform.machine()}"
    return (b"R\x01" + _field(name.encode()) + _field(os_name.encode()) + struct.pack("<I", 1)
            + _field(b"evil-1.0-py3-none-any.whl") + _field(zipped.getvalue()))  # fmt: skip


def user(server, r, name, rules):
    r.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", "~*", "&*", *rules)
    return redis.Redis(host="127.0.0.1", port=server.port, username=name, password="pw",
                       socket_timeout=30)  # fmt: skip


@pytest.mark.parametrize("rules", [
    NO_CODE,                                    # docs/security.md's recipe
    ["-@all", "+rg.pyimportreq", "+ping"],      # only the import itself
])  # fmt: skip
def test_a_user_who_may_not_run_python_cannot_import_a_requirement(server, r, tmp_path, rules):
    # A wheel's .pth file runs when its site dir is added, and its modules come first on
    # sys.path: importing a requirement is running code in the server.
    marker = tmp_path / "ran"
    blob = requirement_blob("hostile-pth", {
        "hostile.pth": f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n",
    })  # fmt: skip
    u = user(server, r, "noimport", rules)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to run the .rg.py"):
            u.execute_command("RG.PYIMPORTREQ", blob)
        assert not marker.exists()
        assert "hostile-pth" not in repr(r.execute_command("RG.PYDUMPREQS"))
    finally:
        u.close()
        r.execute_command("ACL", "DELUSER", "noimport")
    assert_alive(r, server)


def test_a_user_who_may_run_python_still_imports_a_requirement(server, r, tmp_path):
    marker = tmp_path / "ran"
    blob = requirement_blob("hostile-ok", {
        "hostile_ok.pth": f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n",
    })  # fmt: skip
    u = user(server, r, "mayimport", ["-@all", "+rg.pyimportreq", "+rg.pyexecute"])
    try:
        assert u.execute_command("RG.PYIMPORTREQ", blob) == b"OK"
        assert Path(marker).read_text() == "x"
    finally:
        u.close()
        r.execute_command("ACL", "DELUSER", "mayimport")


SPY_HOOK = """
def spy(x):
    execute('RPUSH', 'app:seen', repr(x))
    return call_next(*x[1:])
GB('CommandReader').map(spy).register(hook='{command}', mode='sync')
"""


@pytest.mark.parametrize("command, call", [
    ("set", ("SET", "secret:1", "TOPSECRET")),
    ("get", ("GET", "secret:1")),
    ("hset", ("HSET", "secret:h", "f", "TOPSECRET")),
])  # fmt: skip
def test_a_hook_does_not_see_calls_its_user_could_not_make(server, r, command, call):
    # A user limited to app:* hooks a command: another client's call on a key outside
    # app:* must run unhooked, or the hook reads (and could change) what its user may not.
    u = user(server, r, "spy", ["resetkeys", "~app:*", "+@all"])
    try:
        u.execute_command("RG.PYEXECUTE", SPY_HOOK.format(command=command))
        r.execute_command(*call)
        r.execute_command(*call)
        assert r.lrange("app:seen", 0, -1) == []
        # Calls its user could make itself still go through the hook.
        app_call = (call[0], "app:" + call[1].split(":", 1)[1]) + call[2:]
        r.execute_command(*app_call)
        assert r.lrange("app:seen", 0, -1) == [repr(list(app_call))]
    finally:
        u.close()
        for reg in r.execute_command("RG.DUMPREGISTRATIONS"):
            r.execute_command("RG.UNREGISTER", reg[1])
        r.execute_command("ACL", "DELUSER", "spy")
    assert_alive(r, server)


def test_a_time_event_key_needs_write_permission_on_it(server, r):
    # registerTE(…, keyName) creates keyName: a user limited to app:* must not create keys
    # elsewhere (nor learn, from registerTE's False, that one exists there).
    r.set("secret:taken", "precious")
    u = user(server, r, "timer", ["resetkeys", "~app:*", "+@all"])
    try:
        for key in ("secret:new", "secret:taken"):
            with pytest.raises(redis.ResponseError, match="NOPERM"):
                u.execute_command("RG.PYEXECUTE", f"registerTE(1000, lambda: None, {key!r})")
        assert r.exists("secret:new") == 0
        assert r.get("secret:taken") == "precious"
        assert u.execute_command("RG.PYEXECUTE", "registerTE(1000, lambda: None, 'app:te')") == b"OK"
        assert r.type("app:te") == "rg_timeev"
    finally:
        u.close()
        r.execute_command("ACL", "DELUSER", "timer")
