#!/usr/bin/env python3
"""Dependency check between the files of each crate's src/ (issue #12).

1. Import cycles: every `crate::…` and `super::…` path (in `use` items and inline) is an edge
   from the file it appears in to the file that defines the module it names (the longest
   prefix of the path that is a module file). Strongly connected components of more than one
   file are cycles; each is printed with the lines that close it. Test code (`#[cfg(test)]`
   modules, inline or in their own file) does not count.
2. Layers: a crate may declare its top-level folders/files bottom to top (LAYERS below). A
   file may import from its own layer and the layers below it, never from one above; each
   offending line is printed. Files in no declared layer are skipped (with a note), so a crate
   can move into its layers a folder at a time.

    python3 scripts/deps.py              # check every crate in CRATES; exit 1 on any finding
    python3 scripts/deps.py --selftest   # builds a tiny crate with a cycle and an upward use
    DEPS_REPORT_ONLY=1 python3 scripts/deps.py   # print the findings, exit 0

Last line: "deps: N cycles, M layer violations (K files in no layer)".
"""

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The crates checked, and their layers: bottom to top, by top-level folder or file under src/
# (a name stands for both `name/` and `name.rs`; `lib.rs` is the crate root). An empty list
# declares no layers (cycles are still checked).
CRATES = {
    "engine/src": [],
    "python/src": [],
    "module/src": ["redis", "model", "run", "cluster", "app", "commands", "lib.rs"],
}

CFG_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([;{])")
USE_ITEM = re.compile(r"\buse\s+((?:crate|super|self)\b[^;]*);")
INLINE_PATH = re.compile(r"\b(crate|super)((?:\s*::\s*\w+)+)")


# -- reading a crate --------------------------------------------------------------------------


def module_path(rel):
    """src-relative file path -> module path tuple: a/b.rs -> (a, b); a/mod.rs -> (a,)."""
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_comments(text):
    """Blanks // and /* */ comments (doc comments too), keeping line numbers."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group()), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_modules(text):
    """Blanks inline `#[cfg(test)] mod x { … }` bodies (keeping line numbers); returns the text
    and the names of out-of-line test modules (`#[cfg(test)] mod x;`)."""
    out, i, file_mods = [], 0, set()
    for m in CFG_TEST_MOD.finditer(text):
        if m.start() < i:
            continue
        if m.group(2) == ";":
            file_mods.add(m.group(1))
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out.append(text[i:m.start()])
        out.append(re.sub(r"[^\n]", " ", text[m.start():j]))
        i = j
    out.append(text[i:])
    return "".join(out), file_mods


def expand_use(tree):
    """`crate::a::{b, c::{d, e}, self}` -> ['crate::a::b', 'crate::a::c::d', 'crate::a::c::e', 'crate::a']."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # renames: `a::b as c` imports a::b
    tree = re.sub(r"::\*", "", re.sub(r"\s+", "", tree))
    m = re.match(r"^(.*?)::\{(.*)\}$", tree)
    if not m:
        return [tree]
    head, body = m.groups()
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    items.append(cur)
    paths = []
    for item in filter(None, items):
        paths.extend([head] if item == "self" else expand_use(f"{head}::{item}"))
    return paths


def absolute(own, path):
    """A `crate::`/`super::`/`self::` path seen in module `own` -> segments from the crate root."""
    segs = [s for s in re.split(r"\s*::\s*", path.strip()) if s]
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    base = list(own)
    while segs and segs[0] in ("super", "self"):
        if segs.pop(0) == "super":
            if not base:
                return None
            base.pop()
    return base + segs


class Crate:
    def __init__(self, src):
        self.src = Path(src)
        self.files = {}  # rel -> comment- and test-stripped text
        self.modules = {}  # module path -> rel
        test_mods = set()
        for path in sorted(self.src.rglob("*.rs")):
            rel = path.relative_to(self.src).as_posix()
            text, file_mods = strip_test_modules(strip_comments(path.read_text(errors="replace")))
            self.files[rel] = text
            self.modules[module_path(rel)] = rel
            test_mods |= {module_path(rel) + (name,) for name in file_mods}
        # Out-of-line test modules (and everything under them) are test code too.
        for rel in list(self.files):
            mod = module_path(rel)
            if any(mod[: len(t)] == t for t in test_mods):
                del self.files[rel]
                del self.modules[mod]

    def target(self, segs):
        for n in range(len(segs), 0, -1):
            rel = self.modules.get(tuple(segs[:n]))
            if rel:
                return rel
        return None

    def edges(self):
        """{(from, to): (line number, source line)} for every file-to-file import, first seen."""
        found = {}
        for rel, text in self.files.items():
            own = module_path(rel)
            lines = text.splitlines()
            spans = []
            for m in USE_ITEM.finditer(text):
                spans.append((m.start(), m.end()))
                line = text.count("\n", 0, m.start()) + 1
                for p in expand_use(m.group(1)):
                    self._add(found, rel, absolute(own, p), line, lines)
            for m in INLINE_PATH.finditer(text):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                line = text.count("\n", 0, m.start()) + 1
                self._add(found, rel, absolute(own, m.group(0)), line, lines)
        return found

    def _add(self, found, rel, segs, line, lines):
        to = self.target(segs) if segs else None
        if to and to != rel and (rel, to) not in found:
            found[(rel, to)] = (line, lines[line - 1].strip())


# -- the checks -------------------------------------------------------------------------------


def cycles(edges):
    """Strongly connected components of more than one file (Tarjan), each sorted."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(comps)


def layer_of(rel, layers):
    first = rel.split("/")[0]
    name = first if first == "lib.rs" else first.removesuffix(".rs")
    return name if name in layers else None


def layer_violations(edges, layers):
    """[(from, to, line, text)]: imports from a layer above the importing file's own. Imports
    from or to a file in no declared layer are not judged."""
    rank = {name: i for i, name in enumerate(layers)}
    bad = []
    for (a, b), (line, text) in sorted(edges.items()):
        la, lb = layer_of(a, layers), layer_of(b, layers)
        if la is not None and lb is not None and rank[lb] > rank[la]:
            bad.append((a, b, line, text))
    return bad


def check(src, layers, out=print):
    """Runs both checks on one crate; prints the findings; returns (cycles, violations, unlayered)."""
    crate = Crate(src)
    edges = crate.edges()
    comps = cycles(edges)
    for comp in comps:
        out(f"{src}: import cycle between {len(comp)} files: {', '.join(comp)}")
        members = set(comp)
        for (a, b), (line, text) in sorted(edges.items()):
            if a in members and b in members:
                out(f"    {src}/{a}:{line} -> {b}: {text}")
    bad, unlayered = [], set()
    if layers:
        bad = layer_violations(edges, layers)
        for a, b, line, text in bad:
            out(f"{src}/{a}:{line}: layer {layer_of(a, layers)!r} imports from {layer_of(b, layers)!r} "
                f"above it ({b}): {text}")
        unlayered = {f for f in crate.files if layer_of(f, layers) is None}
        if unlayered:
            out(f"note: {src}: {len(unlayered)} files are in no declared layer, not layer-checked: "
                + ", ".join(sorted(unlayered)))
    return comps, bad, unlayered


# -- self-test --------------------------------------------------------------------------------


SELFTEST_TREE = {
    "lib.rs": "pub mod low;\npub mod high;\npub mod a;\npub mod b;\npub mod clean;\n",
    # An upward import: layer `low` uses layer `high`.
    "low/mod.rs": "pub mod leaf;\npub mod leaf2;\nuse crate::high::{Top, other::{X, Y}};\npub struct Low;\n",
    "low/leaf.rs": "use super::Low;\npub fn f(_: Low) {}\n",
    "high.rs": "pub struct Top;\npub mod other {}\n",
    # A rename is an import too: `as` must not hide the module it names.
    "low/leaf2.rs": "use crate::low::leaf as l;\n",
    # A cycle: a -> b (use) and b -> a (inline super:: path).
    "a.rs": "use crate::b::B;\npub struct A(B);\n",
    "b.rs": "pub struct B;\npub fn g() -> super::a::A { todo!() }\n",
    # Test-only and commented imports never count.
    "clean.rs": (
        "// use crate::high::Top;\n/* crate::high::Top */\npub fn h() {}\n"
        "#[cfg(test)]\nmod tests {\n    use crate::high::Top;\n    fn t() { let _ = Top; }\n}\n"
        "#[cfg(test)]\nmod more;\n"
    ),
    "clean/more.rs": "use crate::high::Top;\n",
}


def selftest():
    with tempfile.TemporaryDirectory(prefix="deps-selftest-") as tmp:
        src = Path(tmp) / "src"
        for rel, text in SELFTEST_TREE.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)
        lines = []
        comps, bad, unlayered = check(str(src), ["low", "high", "lib.rs"], out=lines.append)
        assert comps == [["a.rs", "b.rs"]], comps
        assert [(a, b, line) for a, b, line, _ in bad] == [("low/mod.rs", "high.rs", 3)], bad
        assert "use crate::high::{Top, other::{X, Y}};" in bad[0][3], bad
        assert {"a.rs", "b.rs", "clean.rs"} <= unlayered, unlayered
        assert not any(f.startswith("clean/more") for f in unlayered), unlayered
        assert any("import cycle between 2 files: a.rs, b.rs" in x for x in lines), lines
        assert any("b.rs:2 -> a.rs" in x for x in lines), lines
        assert any("layer 'low' imports from 'high'" in x for x in lines), lines
        # The same tree without the upward use and the cycle is clean.
        (src / "low/mod.rs").write_text("pub mod leaf;\npub mod leaf2;\npub struct Low;\n")
        (src / "b.rs").write_text("pub struct B;\n")
        comps, bad, _ = check(str(src), ["low", "high", "lib.rs"], out=lines.append)
        assert (comps, bad) == ([], []), (comps, bad)
        # Brace expansion and path resolution.
        assert expand_use("crate::a::{b, c::{d, e as f}, self, g::*}") == [
            "crate::a::b", "crate::a::c::d", "crate::a::c::e", "crate::a", "crate::a::g"]
        assert absolute(("x", "y"), "super::super::z::W") == ["z", "W"]
        assert expand_use("crate::low::leaf as l") == ["crate::low::leaf"]
        assert ("low/leaf2.rs", "low/leaf.rs") in Crate(str(src)).edges()
    print("deps selftest: ok (a cycle and an upward use caught; test code, comments and a clean tree pass)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selftest", action="store_true", help="check the checker on a tiny temporary crate")
    ap.add_argument("crates", nargs="*", help="src dirs to check (default: those in CRATES)")
    args = ap.parse_args(argv)
    if args.selftest:
        selftest()
        return 0
    n_cycles = n_bad = n_unlayered = 0
    for src in args.crates or CRATES:
        comps, bad, unlayered = check(src, CRATES.get(src, []))
        n_cycles += len(comps)
        n_bad += len(bad)
        n_unlayered += len(unlayered)
    print(f"deps: {n_cycles} cycles, {n_bad} layer violations ({n_unlayered} files in no layer)")
    if n_cycles or n_bad:
        if os.environ.get("DEPS_REPORT_ONLY", "0") not in ("", "0"):
            print("deps: report only (DEPS_REPORT_ONLY is set): not failing")
            return 0
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
