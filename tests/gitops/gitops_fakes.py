"""Fakes for the compiler and the snapshot cache, shared by the loop and admin tests.

The fake compiler calls a tree invalid when it holds a file `BROKEN`, and raises (a compiler bug) when it holds
`RAISE`; otherwise the "model" is the text of `mesh.yaml`, with a flagged error (served) when it holds `FLAGGED`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler import diagnostics


@dataclasses.dataclass(frozen=True)
class FakeBuild:
    ok: bool
    diagnostics: list[diagnostics.Diagnostic]
    model: object | None


class FakeCompiler:
    def __init__(self) -> None:
        self.calls: list[Path] = []
        self.clusters: list[object] = []
        self.threads: set[int] = set()

    def build(self, root: Path, cluster: object = None) -> FakeBuild:
        """`root`: what the loop's default `load` hands on (the commit's directory); `cluster`: its state."""
        self.calls.append(root)
        self.clusters.append(cluster)
        self.threads.add(threading.get_ident())
        if (root / "RAISE").exists():
            raise RuntimeError("compiler bug")
        if (root / "BROKEN").exists():
            pos = diagnostics.Position(str(root / "mesh.yaml"), 3, 7)
            errors = [diagnostics.make("MW0001", "bad indentation", pos),
                      diagnostics.make("MW0002", "duplicate key 'a'", pos)]
            return FakeBuild(False, errors, None)
        found = []
        if (root / "FLAGGED").exists():
            found.append(diagnostics.make("MW0302", 'host "gone" is not defined',
                                          diagnostics.Position(str(root / "mesh.yaml"), 5, 9)))
        return FakeBuild(True, found, (root / "mesh.yaml").read_text())


def snapshot_for(build: FakeBuild, node: str) -> tuple[object, str]:
    return (build.model, node)


class FakeCache:
    def __init__(self, *, fail: bool = False) -> None:
        self.published: list[tuple[str, Callable[[Any], Any]]] = []
        self.fail = fail

    def publish(self, revision: str, resolve: Callable[[Any], Any]) -> None:
        if self.fail:
            raise ValueError("inconsistent snapshot")
        self.published.append((revision, resolve))

    @property
    def revisions(self) -> list[str]:
        return [rev for rev, _ in self.published]
