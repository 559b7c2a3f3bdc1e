"""Diagnostics: what every stage reports instead of raising.

A diagnostic carries a stable code (see `compiler.codes`), a severity, the source position and the field path,
so that a user lands on the exact line. Stages collect them all rather than stopping at the first.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence

from compiler import codes


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in a source file. Lines and columns are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclasses.dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    position: Position
    path: str = ""  # dotted field path, e.g. spec.http[0].route[1].destination.subset
    resource: str = ""  # "Kind namespace/name", as istioctl analyze prints the origin

    @property
    def hint(self) -> str:
        return codes.get(self.code).hint

    @property
    def flagged(self) -> bool:
        """An error about a config Pilot serves (see compiler.codes): reported, served unless --strict."""
        return self.severity is Severity.ERROR and codes.get(self.code).flagged

    @property
    def istio_code(self) -> str:
        return codes.get(self.code).istio

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.position.file, self.position.line, self.position.column, self.code, self.message)

    def render(self) -> str:
        """The one-line text form: FILE:LINE:COL: SEVERITY CODE: message (hint)."""
        where = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.position}: {self.severity} {self.code}: {where}{self.message}{hint}"


def make(code: str, message: str, position: Position, *, path: str = "", resource: str = "",
         severity: Severity | None = None) -> Diagnostic:
    """Build a diagnostic with the severity its code is registered with (unless overridden)."""
    sev = severity or Severity(codes.get(code).severity)
    return Diagnostic(code=code, severity=sev, message=message, position=position, path=path, resource=resource)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def blocking(diagnostics: Iterable[Diagnostic], *, strict: bool = False) -> list[Diagnostic]:
    """The diagnostics that keep a revision from being served: rejected errors, and flagged ones when `strict`."""
    return [d for d in diagnostics if d.severity is Severity.ERROR and (strict or not d.flagged)]


def sorted_unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable, deterministic order; identical diagnostics reported twice are kept once."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def format_path(parts: Sequence[str | int]) -> str:
    """['spec', 'http', 0, 'route'] -> 'spec.http[0].route'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
