"""Stage 1 as one call: files -> documents -> typed resources -> per-resource rules -> cross-resource analyzers.

Every step collects diagnostics; a document that fails structurally yields no resource, so later steps only see
well-formed objects. Analyzers run even when some documents failed, so one run reports everything it can.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from compiler import analyze, load, typed, validate
from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.load import Document, ParseCache
from compiler.resources import ResourceSet


@dataclasses.dataclass(frozen=True)
class Checked:
    resources: ResourceSet
    diagnostics: list[Diagnostic]
    files: int

    @property
    def ok(self) -> bool:
        return not diag.has_errors(self.diagnostics)


def check_documents(documents: Sequence[Document], found: Sequence[Diagnostic] = (), files: int = 0) -> Checked:
    resources, problems = typed.to_resources(documents)
    rset = ResourceSet(resources)
    diagnostics = [*found, *problems, *validate.validate(rset), *analyze.analyze(rset)]
    return Checked(rset, diag.sorted_unique(diagnostics), files)


def check(paths: Sequence[Path | str], *, extra_documents: Sequence[Document] = (),
          cache: ParseCache | None = None) -> Checked:
    loaded = load.load(paths, cache=cache)
    return check_documents([*loaded.documents, *extra_documents], loaded.diagnostics, loaded.files)
