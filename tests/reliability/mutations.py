"""Single-field mutations of real policy trees: every leaf (and every mapping key) of policies-example/, the golden
cases' inputs and Istio's bookinfo samples, set to the edge values of its type or removed.

A mutation is plain data (tree, file, path, operation, value name), so that a finding is kept as a fixed case in
`seeds.yaml` and replayed by name. Edge values are named (EDGES) rather than stored: some are 70 KB long.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from compiler import build, units

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "golden" / "cases"
BOOKINFO = ROOT.parent / "shared" / "corpus" / "istio-bookinfo"
SUFFIXES = (".yaml", ".yml")

_RE2_BIG = "(ab|cd){40}"  # valid RE2, program size far above Envoy's default max_program_size (100)
STRINGS: dict[str, str] = {
    "empty": "", "one-char": "a", "percent": "%", "unknown-command": "%FOO%", "known-command": "%REQ(x-user)%",
    "start-time": "%START_TIME(%s)%", "newline": "a\nb", "nul": "a\x00b", "long": "x" * 70_000,
    "non-ascii": "r\u00e9sum\u00e9-\u2603", "relative-path": "certs/ca.pem", "unix": "unix://x",
    "unix-abs": "unix:///var/run/x.sock", "host": "Host", "pseudo": ":path", "authority": ":authority",
    "space": "a b", "upper": "X-Upper", "star": "*", "dot-dot": "../x", "re2-big": _RE2_BIG,
    "re2-bad": "(a)\\1", "label-long": "a" * 300,
}
DURATIONS: dict[str, str] = {
    "dur-zero": "0s", "dur-huge": "9999999999s", "dur-over-max": "315576000001s", "dur-max": "315576000000s",
    "dur-1ms": "1ms", "dur-sub-ms": "0.0001s", "dur-negative": "-1s", "dur-uint32-over": "4294967296s",
    "dur-int32-ms-over": "2147484s",
}
NUMBERS: dict[str, int | float] = {
    "zero": 0, "minus-one": -1, "one": 1, "int32-over": 2**31, "uint32-over": 2**32, "int53": 2**53,
    "huge": 10**30, "ring-over": 8_388_609, "port-over": 65_536, "status-300": 300, "fraction": 0.5, "float-huge": 1e308,
}
KEY_STRINGS = ("empty", "percent", "newline", "nul", "long", "non-ascii", "host", "pseudo", "authority", "space",
               "upper", "star", "unix", "dot-dot")
# maps whose keys are the user's (header, label, query-parameter and port names), not schema fields: renaming a
# schema field only tests the schema, which rejects every unknown name
FREE_MAPS = frozenset({"labels", "matchLabels", "selector", "set", "add", "headers", "withoutHeaders", "queryParams",
                       "ports", "to", "sourceLabels", "annotations"})
EDGES: dict[str, Any] = {**STRINGS, **DURATIONS, **NUMBERS, "true": True, "false": False, "null": None}


@dataclasses.dataclass(frozen=True)
class Mutation:
    tree: str  # a golden case name, or "policies-example"
    file: str  # relative to the tree's root
    path: tuple[str | int, ...]  # (document index, key or index, ...)
    op: str  # "set" | "del" | "rename" (a mapping key)
    value: str = ""  # a name in EDGES ("" for del)

    def describe(self) -> str:
        where = ".".join(map(str, self.path))
        return f"{self.tree}:{self.file} {where} {self.op}{' ' + self.value if self.value else ''}"


@functools.cache
def trees() -> dict[str, dict[str, bytes]]:
    """Each tree's files (relative name -> content). A case that names trees elsewhere (source.txt) gets them
    under `src<i>/`; a case whose tree is missing (../shared absent) is left out."""
    out: dict[str, dict[str, bytes]] = {"policies-example": _files(ROOT / "policies-example")}
    for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
        files: dict[str, bytes] = {}
        for i, named in enumerate(_sources(case)):
            path = (ROOT / named).resolve()
            if not path.exists():
                files = {}
                break
            files.update((f"src{i}/{k}", v) for k, v in _files(path).items())
        else:
            files.update(_files(case / "input"))
        if files and case.name != "policies-example":
            out[case.name] = files
    return out


@functools.cache
def valid_trees() -> list[str]:
    """The trees that validate as they are (not the broken-* golden cases): mutating a rejected tree tells nothing."""
    out = []
    for name, files in sorted(trees().items()):
        with tempfile.TemporaryDirectory(prefix="mw-tree-") as tmp:
            write(files, Path(tmp))
            if build.build([tmp]).ok:
                out.append(name)
    return out


def write(files: dict[str, bytes], root: Path) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)


def _sources(case: Path) -> list[str]:
    listing = case / "source.txt"
    if not listing.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in listing.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def _files(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    if not path.is_dir():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.suffix in SUFFIXES}


def _yaml() -> YAML:
    yaml = YAML()
    yaml.width = 1 << 20  # no folding: a mutated line stays one line
    return yaml


def documents(content: bytes) -> list[Any]:
    return [d for d in _yaml().load_all(content.decode("utf-8")) if d is not None]


def leaves(tree: str) -> list[Mutation]:
    """Every mutation of a tree: each leaf set to each edge value of its type, each field and list item removed,
    each mapping key renamed to each edge string."""
    return _leaves(tree)


@functools.cache
def _leaves(tree: str) -> list[Mutation]:
    out: list[Mutation] = []
    for name, content in trees()[tree].items():
        for index, doc in enumerate(documents(content)):
            for path, node, is_key in _walk(doc, (index,)):
                out.extend(Mutation(tree, name, path, op, value) for op, value in _edits(node, is_key))
    return out


def _walk(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any, bool]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        if len(path) == 1 and key in ("apiVersion", "kind"):
            continue  # the envelope: mutating it tests the loader, not what Envoy accepts
        if isinstance(key, str) and path[-1] in FREE_MAPS:
            yield path + (key,), key, True
        yield path + (key,), child, False
        yield from _walk(child, path + (key,))


def _edits(node: Any, is_key: bool) -> Iterator[tuple[str, str]]:
    """The edge values of the leaf's type: a duration gets durations, a regex regexes, a number numbers."""
    if is_key:
        yield from (("rename", name) for name in KEY_STRINGS)
        return
    yield "del", ""
    if isinstance(node, bool):
        yield from (("set", name) for name in ("true", "false", "zero", "empty"))
    elif isinstance(node, int | float):
        yield from (("set", name) for name in (*NUMBERS, "empty", "null"))
    elif isinstance(node, str) and units.parse_duration_ms(node) is not None:
        yield from (("set", name) for name in (*DURATIONS, "empty", "percent", "zero", "null"))
    elif isinstance(node, str):
        yield from (("set", name) for name in (*STRINGS, "zero", "minus-one", "true", "null"))


def apply(mutation: Mutation) -> dict[str, bytes]:
    """The tree's files with the mutation made (the mutated file re-dumped; the others untouched)."""
    files = dict(trees()[mutation.tree])
    docs = documents(files[mutation.file])
    index, *keys = mutation.path
    parent = docs[int(index)]
    for key in keys[:-1]:
        parent = parent[key]
    last = keys[-1]
    if mutation.op == "del":
        del parent[last]
    elif mutation.op == "rename":
        parent[EDGES[mutation.value]] = parent.pop(last)
    else:
        parent[last] = EDGES[mutation.value]
    out = io.StringIO()
    _yaml().dump_all(docs, out)
    files[mutation.file] = out.getvalue().encode("utf-8")
    return files
