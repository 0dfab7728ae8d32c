"""The typed stubs in python/stubs (#14): mypy accepts the seed walkthrough's scripts with
them, catches a misuse, and they name every global and GearsBuilder method a live session has.

mypy has no way to add builtins, so a script type-checked with mypy imports the stubs under
`if TYPE_CHECKING:` (a no-op at run time); pyright/Pylance read python/stubs/__builtins__.pyi
and need no header (docs/typing.md).
"""

import subprocess
import sys

import pytest

import seed_scripts
from conftest import REPO, parse, pyexecute

STUBS = REPO / "python/stubs"
HEADER = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gears import *\n    import redisgears\n"
SEEDS = {name: value for name, value in vars(seed_scripts).items()
         if name.isupper() and isinstance(value, str) and "GearsBuilder" in value}  # fmt: skip


def mypy(tmp_path, name, source):
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed in the test environment (scripts/lib.sh installs it)",
                    pytrace=False)  # fmt: skip
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(HEADER + source)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "--hide-error-context", str(path)],
        env={"MYPYPATH": str(STUBS), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out.returncode, out.stdout + out.stderr


def test_the_seed_scripts_type_check(tmp_path):
    assert len(SEEDS) >= 8
    failures = {}
    for name, source in SEEDS.items():
        code, out = mypy(tmp_path, name, source)
        if code != 0:
            failures[name] = out
    assert failures == {}


@pytest.mark.parametrize(
    "line, complaint",
    [
        ("GB().map(f=lambda x: x)", 'Unexpected keyword argument "f"'),
        ("GB('StreamReader').register('s', batch='2')", '"batch"'),
        ("GB().limit('3')", '"limit"'),
        ("execute(1)", '"execute"'),
        ("GB().countby().run('*', mode='sync')", '"mode"'),
    ],
)
def test_misuse_is_reported(tmp_path, line, complaint):
    code, out = mypy(tmp_path, "misuse", line + "\n")
    assert code == 1 and complaint in out, out


def stub_names():
    """Public names gears.pyi defines at top level, and GearsBuilder's methods."""
    import ast

    tree = ast.parse((STUBS / "gears.pyi").read_text())
    top, methods = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.Assign):
            top.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.ClassDef) and node.name == "GearsBuilder":
            methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    return top, methods


def test_stubs_name_every_global_of_a_live_session(r):
    top, methods = stub_names()
    script = ("GB('ShardsIDReader').map(lambda x: [sorted(k for k in globals() if not k.startswith('_')),"
              " sorted(m for m in dir(GearsBuilder) if not m.startswith('_'))]).run()")  # fmt: skip
    res, errs = pyexecute(r, script)
    assert errs == []
    live_globals, live_methods = parse(res)[0]
    # Modules and typing helpers a session imports for itself are not part of the API.
    missing = {g for g in live_globals if g not in top} - {"redisgears", "redisAI", "GearsError"}
    assert missing == set(), f"session globals missing from python/stubs/gears.pyi: {missing}"
    assert set(live_methods) - methods == set()
