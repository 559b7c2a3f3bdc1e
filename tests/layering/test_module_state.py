"""No hidden global state in compiler/, reconciler/ or meshxds/: caches belong to an object with a lifetime (a
build, a server, a check cache), never to a module, so that two builds or two servers in one process share nothing
by accident and a cache can be dropped with its owner.

The rule, read off each module's syntax tree: a module-level name is state when code that runs after import
changes it, that is, inside a function:
- it is declared `global`;
- it is assigned through (`NAME[k] = v`, `del NAME[k]`, `NAME += v`, `NAME.attr = v`);
- a mutating method is called on it (`append`, `add`, `update`, `setdefault`, `pop`, `clear`, `put`, ...).
And `functools.lru_cache` / `functools.cache` are state as a decorator or at module level (the memo is then the
process's); called inside a function (`self.check = functools.lru_cache(...)(check)`), the memo is its owner's.
Tables built at import time and only read afterwards are constants, whatever their type; no annotation is asked
for (a `Final` dict can still be mutated, so it would prove nothing).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("compiler", "reconciler", "meshxds")
MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "clear",
                      "remove", "discard", "put", "move_to_end", "appendleft", "__setitem__", "__delitem__"})


def _module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names bound in `fn` itself (parameters and assignments), not in functions nested in it."""
    args = fn.args
    bound = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
    todo: list[ast.AST] = [fn.body] if isinstance(fn, ast.Lambda) else list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return bound


def _target(node: ast.AST) -> str | None:
    """The name a write goes through: NAME[...], NAME.attr."""
    if isinstance(node, ast.Subscript | ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def _writes(node: ast.AST) -> Iterator[tuple[str, int, str]]:
    """(name, line, what) for every write through a name in this node (not in nested scopes)."""
    if isinstance(node, ast.Global):
        for name in node.names:
            yield name, node.lineno, "global statement"
    elif isinstance(node, ast.Assign | ast.Delete):
        for t in node.targets:
            if (name := _target(t)) is not None:
                yield name, node.lineno, "assigned through"
    elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        yield node.target.id, node.lineno, "augmented assignment"
    elif isinstance(node, ast.AugAssign | ast.AnnAssign) and (name := _target(node.target)) is not None:
        yield name, node.lineno, "assigned through"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS \
            and isinstance(node.func.value, ast.Name):
        yield node.func.value.id, node.lineno, f".{node.func.attr}()"


def _function_writes(scope: ast.AST, bound: frozenset[str] | None, module: set[str]) -> Iterator[str]:
    """Writes to module-level names from inside functions (`bound`: the names the enclosing functions bind
    themselves, None outside any function), and every `global` statement."""
    for node in ast.iter_child_nodes(scope):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _function_writes(node, (bound or frozenset()) | _locals(node), module)
            continue
        if bound is not None:
            for name, line, what in _writes(node):
                if what == "global statement" or (name in module and name not in bound):
                    yield f"{line}: {name} {what}"
        yield from _function_writes(node, bound, module)


def _memo_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "functools" \
            and node.attr in ("lru_cache", "cache"):
        return node.attr
    return None


def _module_memos(tree: ast.Module) -> Iterator[str]:
    """functools.lru_cache / cache as a decorator (of a function or a method: one memo for the whole process) or
    in a module-level statement; inside a function it makes a memo for whatever keeps the result."""
    decorators = [d for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                  for d in node.decorator_list]
    top = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    for root in (*decorators, *top):
        for node in ast.walk(root):
            if (name := _memo_name(node)) is not None:
                yield f"{getattr(node, 'lineno', 0)}: functools.{name}"
            elif isinstance(node, ast.ImportFrom) and node.module == "functools":
                yield from (f"{node.lineno}: from functools import {a.name}" for a in node.names
                            if a.name in ("lru_cache", "cache"))


def findings(source: str) -> list[str]:
    tree = ast.parse(source)
    module = _module_names(tree)
    in_functions = _function_writes(tree, None, module)
    return sorted(set(_module_memos(tree)) | set(in_functions), key=lambda f: int(f.split(":")[0]))


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_level_mutable_state(path: Path) -> None:
    found = findings(path.read_text())
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("source", [
    "_CACHE = {}\ndef get(k):\n    _CACHE[k] = 1\n",
    "_SEEN = set()\ndef see(k):\n    _SEEN.add(k)\n",
    "_N = 0\ndef bump():\n    global _N\n    _N += 1\n",
    "import functools\n@functools.lru_cache(maxsize=8)\ndef f(x):\n    return x\n",
    "import functools\n_memo = functools.cache\n",
    "from functools import lru_cache\n",
    "import functools\nclass C:\n    @functools.cache\n    def m(self):\n        return 1\n",
    "class _Bodies:\n    pass\n_bodies = _Bodies()\ndef send(b):\n    _bodies.put(b)\n",
    "def paused():\n    paused.was_enabled = True\n",
    "_TABLE = {}\nclass C:\n    def m(self):\n        _TABLE.clear()\n",
])
def test_the_rule_finds_module_state(source: str) -> None:
    assert findings(source)


@pytest.mark.parametrize("source", [
    "_TABLE = {'a': 1}\n_TABLE['b'] = 2\ndef get(k):\n    return _TABLE[k]\n",  # built at import, then read
    "_ITEMS = []\ndef f():\n    _ITEMS = []\n    _ITEMS.append(1)\n    return _ITEMS\n",  # a local of the same name
    "out = []\ndef f(out):\n    out.append(1)\n",  # a parameter of the same name
    "class Cache:\n    def __init__(self):\n        self._d = {}\n    def put(self, k):\n        self._d[k] = 1\n",
    "import functools\nclass Checks:\n    def __init__(self, f):\n        self.f = functools.lru_cache(maxsize=8)(f)\n",
])
def test_the_rule_allows_constants_and_owned_state(source: str) -> None:
    assert findings(source) == []
