"""The user docs match the server (#14): docs/configuration.md names every configuration key a
live server reports, with its default, and every key it names is one RG.CONFIGGET knows."""

import re

from conftest import REPO

DOC = REPO / "docs/configuration.md"
CONFIG_RS = REPO / "module/src/redis/config.rs"


def documented_rows():
    """{key: default text} from the table's first two columns (a row may name several keys)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| (`[^|]+`) \| ([^|]+) \|", line)
        if m:
            for key in re.findall(r"`([A-Za-z0-9]+)`", m.group(1)):
                rows[key] = m.group(2).strip()
    return rows


def test_every_key_of_the_server_is_documented():
    keys = set(re.findall(r'name: "([A-Za-z0-9]+)"', CONFIG_RS.read_text()))
    assert len(keys) >= 15
    assert keys - set(documented_rows()) == set()


def test_documented_keys_and_defaults_are_the_servers(r):
    for key, default in documented_rows().items():
        (value,) = r.execute_command("RG.CONFIGGET", key)
        assert not str(value).startswith("(error)"), (key, value)
        number = re.match(r"^(\d+)( ms)?$", default)
        if number:
            assert int(value) == int(number.group(1)), (key, value, default)
