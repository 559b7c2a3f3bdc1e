"""The sink every per-resource rule writes to: diagnostics located at a spec-relative YAML path."""

from __future__ import annotations

import dataclasses

from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource
from compiler.validate.values import ValueChecks

Path = tuple[str | int, ...]


@dataclasses.dataclass
class Report:
    resource: Resource
    values: ValueChecks  # the checks of one value, memoized across the resources of a run (or of revisions)
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)

    def error(self, code: str, message: str, path: Path = ()) -> None:
        self.diagnostics.append(self.resource.diag(code, message, self.resource.spec_path + path))

    def warning(self, code: str, message: str, path: Path = ()) -> None:
        self.diagnostics.append(self.resource.diag(code, message, self.resource.spec_path + path,
                                                   severity=diag.Severity.WARNING))

    def found(self, code: str, problem: str | None, path: Path) -> None:
        """Report `problem` (a primitive check's message) when there is one."""
        if problem:
            self.error(code, problem, path)
