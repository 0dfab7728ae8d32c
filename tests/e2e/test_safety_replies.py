"""Every reply and error goes through the module's own reply path (issue #10): an argument
echoed back in an error may hold any character (U+0100 once became a NUL byte and aborted the
server) and arrives as the same UTF-8 bytes, and wrong arity keeps Redis's own text."""

import pytest
import redis
from conftest import assert_alive

# Code points that are multiples of 256 used to become NUL bytes; the others check that
# non-ASCII text is not garbled.
ODD_TEXTS = ["Ā", "一", "Āx一", "é", "\U0001f600"]

ECHOING = [
    ("RG.PAUSEREGISTRATIONS", "{}"),
    ("RG.UNPAUSEREGISTRATIONS", "{}"),
    ("RG.PYDUMPSESSIONS", "{}"),
    ("RG.PYEXECUTE", "GB().run()", "{}"),
    ("RG.PYEXECUTE", "GB().run()", "REPLACE_WITH", "{}"),
    ("RG.PYEXECUTE", "GB().run()", "ID", "{}"),
    ("RG.GETRESULTS", "{}"),
    ("RG.GETEXECUTION", "{}"),
    ("RG.UNREGISTER", "{}"),
    ("RG.PYPROFILE", "{}", "x"),
    ("RG.CONFIGGET", "{}"),
    ("RG.CONFIGSET", "{}", "{}"),
    ("RG.TRIGGER", "{}"),
]


def raw_client(server):
    """A client that returns raw bytes, so an error's exact bytes can be compared."""
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=30)


@pytest.mark.parametrize("cmd", ECHOING, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("text", ODD_TEXTS, ids=["U+0100", "U+4E00", "mixed", "U+00E9", "emoji"])
def test_non_ascii_argument_never_crashes(server, r, cmd, text):
    args = [a.replace("{}", text) for a in cmd]
    try:
        r.execute_command(*args)
    except redis.ResponseError:
        pass
    assert_alive(r, server)


@pytest.mark.parametrize(
    "cmd",
    [
        ("RG.PAUSEREGISTRATIONS", "一"),
        ("RG.UNPAUSEREGISTRATIONS", "Ā"),
        ("RG.PYDUMPSESSIONS", "一"),
        ("RG.PYEXECUTE", "GB().run()", "Ā"),
        ("RG.PYEXECUTE", "GB().run()", "REPLACE_WITH", "Ā"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_echoed_text_arrives_as_utf8(server, r, cmd):
    raw = raw_client(server)
    try:
        with pytest.raises(redis.ResponseError) as err:
            raw.execute_command(*cmd)
        assert cmd[-1] in str(err.value)
    finally:
        raw.close()


def test_error_texts_keep_1_2_wording(r):
    with pytest.raises(redis.ResponseError, match="^Unknown option 一$"):
        r.execute_command("RG.PYDUMPSESSIONS", "一")
    with pytest.raises(redis.ResponseError, match="^Unknown arguments were given: Ā$"):
        r.execute_command("RG.PYEXECUTE", "GB().run()", "Ā")
    with pytest.raises(redis.ResponseError, match="^execution plan does not exist$"):
        r.execute_command("RG.GETRESULTS", "Ā")


@pytest.mark.parametrize("cmd", ["RG.PYEXECUTE", "RG.GETRESULTSBLOCKING", "RG.TRIGGER"])
def test_wrong_arity_keeps_redis_text(r, cmd):
    with pytest.raises(redis.ResponseError) as err:
        r.execute_command(cmd)
    assert str(err.value) == f"wrong number of arguments for '{cmd.lower()}' command"


def test_nul_and_newlines_in_echoed_text(server, r):
    # The echoed option is cleaned for the one-line error (NUL dropped, CR/LF made spaces).
    for text, shown in [("a\x00b", "ab"), ("a\r\nb", "a  b"), ("\x00", "")]:
        with pytest.raises(redis.ResponseError) as err:
            r.execute_command("RG.PYDUMPSESSIONS", text)
        assert str(err.value) == f"Unknown option {shown}"
    assert_alive(r, server)


@pytest.mark.parametrize(
    "text", ["%s%s%s%s%s%s%s%s", "%n%n%n", "100% done %x %p", "a\x00b", "Ā一\U0001f600"]
)
def test_log_writes_user_text_verbatim(server, r, text):
    # The text once became RedisModule_Log's printf format: '%s' read missing varargs.
    assert r.execute_command("RG.PYEXECUTE", f"log({text!r})") == "OK"
    assert_alive(r, server)
    assert text.replace("\x00", "") in server.logfile.read_text(errors="replace")

