"""Typed resources: a validated Kubernetes-style object with its spec model and the document it came from."""

from __future__ import annotations

import dataclasses
import datetime
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from compiler import diagnostics as diag
from compiler import kinds, positions
from compiler.diagnostics import Diagnostic, Position
from compiler.load import Document

DEFAULT_NAMESPACE = "default"
# Go's zero time: what Pilot compares for an object without a creationTimestamp, so such objects sort first
ZERO_TIME = datetime.datetime.min.replace(tzinfo=datetime.UTC)
T = TypeVar("T")


def parse_timestamp(value: object) -> datetime.datetime | None:
    """A `metadata.creationTimestamp` (RFC 3339, as Kubernetes writes it, or a YAML timestamp); None when the value
    is not one. A time without a zone is UTC."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


class _Once(Generic[T]):
    """functools.cached_property without its lock, which Python 3.11 takes on every first access (once per
    resource and property: a measurable share of a cold check). Computing twice in a race is harmless here."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Once[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | _Once[T]:
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self._compute(obj)  # found in __dict__ from now on
        return value


@dataclasses.dataclass(frozen=True, eq=False)
class Resource:
    kind: str
    api_version: str
    name: str
    namespace: str  # effective namespace ("default" when the document names none)
    namespace_declared: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Any  # the kind's pydantic model (see compiler.kinds)
    doc: Document

    @_Once
    def key(self) -> tuple[str, str, str]:
        """(kind, namespace, name); computed once (a cached resource is looked up by it on every run)."""
        return (self.kind, self.namespace, self.name)

    @_Once
    def origin(self) -> str:
        """How istioctl analyze names a resource: `Kind namespace/name`, or `Kind name` without a namespace."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace_declared else f"{self.kind} {self.name}"

    @property
    def spec_path(self) -> tuple[str, ...]:
        info = kinds.lookup(self.kind)
        return (info.body_field,) if info is not None and info.body_field else ()

    @_Once
    def _locator(self) -> positions.Locator:
        """The resource's diagnostics share one parse of its document for their positions (kept with the
        resource, which the CheckCache keeps with its diagnostics)."""
        return positions.Locator(self.doc)

    def locate(self, path: Sequence[str | int]) -> Position:
        return self._locator.locate(path) if path else self.doc.position()

    def diag(self, code: str, message: str, path: Sequence[str | int] = (), *,
             severity: diag.Severity | None = None) -> Diagnostic:
        """A diagnostic about this resource at `path` (a full path from the document root, e.g. ('spec','hosts',0))."""
        return diag.make(code, message, self.locate(path), path=diag.format_path(path), resource=self.origin,
                         severity=severity)

    @_Once
    def created(self) -> datetime.datetime:
        """`metadata.creationTimestamp`; Go's zero time when absent (typed rejects a malformed one)."""
        meta = self.doc.data.get("metadata")
        found = parse_timestamp(meta.get("creationTimestamp")) if isinstance(meta, Mapping) else None
        return found or ZERO_TIME

    @_Once
    def pilot_order(self) -> tuple[datetime.datetime, str, str]:
        """Pilot's order of configs of one kind: oldest first, then by name, then by namespace
        (pilot/pkg/model/config.go configCompareByCreationTime; VirtualServices are listed in this order by
        pilot/pkg/model/virtualservice_controller.go sortMergedVirtualServicesByCreationTime)."""
        return (self.created, self.name, self.namespace)

    def source_ref(self) -> str:
        """`Kind namespace/name file:line`, the back-reference put in emitted metadata."""
        return f"{self.kind} {self.namespace}/{self.name} {self.doc.file}:{self.doc.line}"


class ResourceSet:
    """All resources of one revision, indexed by kind; iteration order is deterministic (namespace, name)."""

    def __init__(self, resources: Sequence[Resource], *, presorted: bool = False) -> None:
        """`presorted`: `resources` are already in ResourceSet order (e.g. a previous set's order, one resource
        swapped for its new version), so sorting is skipped."""
        self._by_kind: dict[str, list[Resource]] = {}
        for res in resources if presorted else _sorted(resources):
            self._by_kind.setdefault(res.kind, []).append(res)

    def replaced(self, swaps: Mapping[Resource, Resource]) -> ResourceSet:
        """This set with each `old` resource of `swaps` replaced by its `new` one, which must have the same key
        (so the order stays right); the kinds without a swap share their lists with this set."""
        out = ResourceSet((), presorted=True)
        out._by_kind = dict(self._by_kind)
        for old, new in swaps.items():
            if new.key != old.key:
                raise ValueError(f"{new.origin} cannot replace {old.origin}")
            items = out._by_kind[old.kind]
            if items is self._by_kind[old.kind]:
                items = out._by_kind[old.kind] = list(items)
            items[items.index(old)] = new
        return out

    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    def get(self, kind: str, namespace: str, name: str) -> Resource | None:
        return next((r for r in self.of_kind(kind) if r.namespace == namespace and r.name == name), None)

    def __iter__(self) -> Iterator[Resource]:
        for kind in sorted(self._by_kind):
            yield from self._by_kind[kind]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kind.values())

    def namespaces(self) -> set[str]:
        """Namespaces that exist: declared by Namespace objects or used by any resource."""
        found = {r.name for r in self.of_kind("Namespace")}
        for kind, items in self._by_kind.items():
            if kind != "Namespace":
                found.update(map(_NAMESPACE, items))  # C-level: analyzers ask for this on every run
        return found


_KEY = operator.attrgetter("key")
_NAMESPACE = operator.attrgetter("namespace")


def _sorted(resources: Sequence[Resource]) -> list[Resource]:
    """By (kind, namespace, name), ties by file and index. Ties are rare (the pipeline keeps one resource per name),
    so the C-level key is tried first and the full key only used when two resources share a name."""
    out = sorted(resources, key=_KEY)  # `key` is (kind, namespace, name), made once per resource and kept
    if any(map(operator.eq, map(_KEY, out), map(_KEY, out[1:]))):
        out.sort(key=lambda r: (r.kind, r.namespace, r.name, r.doc.file, r.doc.index))
    return out


def metadata_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = data.get("metadata")
    return meta if isinstance(meta, Mapping) else {}
