"""What every analyzer gets: the resources of one revision and the indexes built from them once per run."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable

from compiler.analyze import registry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource, ResourceSet


@dataclasses.dataclass(frozen=True)
class Context:
    resources: ResourceSet

    @functools.cached_property
    def registry(self) -> registry.Registry:
        return registry.build(self.resources)

    def of_kind(self, kind: str) -> list[Resource]:
        return self.resources.of_kind(kind)


Analyzer = Callable[[Context], Iterable[Diagnostic]]
