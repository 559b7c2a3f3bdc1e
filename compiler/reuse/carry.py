"""What one revision's translation hands to the next, so that a commit changing one VirtualService recomputes
what that VirtualService touches and finds everything else as it was (issue: "recompute only what the change
touches").

Five kinds of reuse (each entry's `Tag` says which), all generational (compiler.reuse.generations: entries unused
by a revision are dropped with the one after it):

- By content: derived index objects (a Service with its endpoints, a VirtualService entry, a merged
  DestinationRule) are keyed by the content of the documents they come from (file, position, source text), so an
  unchanged document gives the very same object in the next revision's index.
- By identity: per-destination results (an outbound cluster for a service, port, rule and subset) are keyed by
  the index objects they were computed from. Because unchanged index objects are the same objects, these keys hit
  across revisions; a changed input is a new object, hence a new key. Entries keep their input objects alive and
  are checked with `is`, so a recycled `id()` can never give a stale hit.
- Whole tables (`unchanged`): the service registry and the merged rules are reused as they are while every
  document they come from is the very same Resource object (pipeline.CheckCache keeps unchanged ones).
- Canonical values (`canonical`): a result recomputed equal to the previous revision's is replaced by that one, so
  identity-keyed lookups downstream (emitted tables, snapshots) hit again.
- Derived (`derive`): a sorted table, a VirtualService's routes or a route table kept from the previous revision,
  checked and patched here (compiler.reuse.tables, recorded, refill), else built anew by the stage.
The stages ask for each by name (the methods below the generic ones), through the Protocols they define
(compiler.translate.hooks, compiler.translate.mesh.IndexReuse), which `Carry` matches without importing them.
tests/translate/test_incremental.py and test_incremental_fuzz.py check that builds made this way equal builds made
from scratch, byte for byte.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from compiler.resources import Resource
from compiler.reuse import recorded, refill, tables
from compiler.reuse.generations import MISSING, Generations

_T = TypeVar("_T")
PORT = "port"  # the lookup kind routes report a read of the listener port as (compiler.translate.routes.PORT)
_I = TypeVar("_I")
_M = TypeVar("_M", bound=refill.Made[Any, Any])
_D = TypeVar("_D")
_P = TypeVar("_P", bound=tuple[tuple[object, ...], ...])
_Tt = TypeVar("_Tt", bound=tuple[tuple[object, ...], ...])


class Tag(enum.StrEnum):
    """Every kind of entry translation keeps, in one place (the first part of each key). A str enum: keys hash and
    compare as their strings do."""

    # by content (`by_content`): index objects from the documents they come from
    SERVICE = "svc"  # a Kubernetes Service with its endpoints
    SERVICE_ENTRY = "se"  # the services of a ServiceEntry
    DESTINATION_RULE = "dr"  # the merged DestinationRules of one host and selector
    VIRTUAL_SERVICE = "vs"  # a VirtualService entry
    # whole tables (`unchanged`) and lists (`each`), reused while their documents are the same objects
    REGISTRY = "registry"  # the service registry
    RULES = "rules"  # the merged DestinationRule table
    VS_ENTRIES = "vs-entries"  # the VirtualService entries, by document
    FIELD_NOTES = "field-notes"  # MW0403 notes of the fields a kind's documents set that are not compiled
    # by identity (`by_identity`): results by the index objects they were computed from
    VS_MERGED = "vs-merged"  # a root VirtualService with its delegates' routes merged in
    RULE_INDEX = "rule-index"  # the rule table's lookups by host, wildcard rules and the labels selectors read
    EGRESS_SERVICES = "egress-services"  # the services an egress listener imports
    BY_PORT = "by-port"  # those services by port
    CLUSTERS = "clusters"  # a service's outbound clusters and load assignments under its rule
    SIDECAR = "sidecar"  # a sidecar's config from its parts
    MERGE = "merge"  # a sidecar's table of one type: its inbound resources merged into the shared outbound ones
    # derived from the previous revision's (`derive`): patched, or rebuilt from its parts
    ROUTES = "routes"  # a VirtualService's routes for a port, gateway and proxy scope, with the tables they hold in
    ROUTE_TABLE = "route-table"  # a sidecar's route config for a port
    OUTBOUND_TABLES = "outbound-tables"  # a sidecar's sorted outbound cluster and load-assignment tables
    # canonical values (`canonical`): recomputed results that keep last revision's object while equal
    INBOUND = "inbound"  # a sidecar's inbound listeners, route configs and clusters
    OUTBOUND = "outbound"  # the outbound half sidecars of one scope share (and per revision, `Carry.outbound_half`)
    MTLS_DISABLED = "mtls-disabled"  # the namespaces PeerAuthentication keeps auto mTLS from (and per revision)
    # per revision only (`Mesh.memo`): shared by the proxies of one revision, never carried
    HOSTS_BY_NAMESPACE = "hosts-by-namespace"
    VS_BY_NAMESPACE = "vs-by-namespace"
    RULE_FOR = "rule"  # the DestinationRule of a service for a proxy scope
    HASH_POLICY = "hash-policy"  # a rule's consistent hash for a subset and port
    ROUTES_ANY_PORT = "routes-any-port"  # a VirtualService's routes, for every port they do not read (`Carry.route_use`)
    SECURITY_BY_NAMESPACE = "security-by-namespace"  # the policies of one security kind, by namespace
    TELEMETRY_BY_NAMESPACE = "telemetry-by-namespace"  # Telemetry specs by namespace, oldest first


def content_key(res: Resource) -> Hashable | None:
    """The resource by the content and position of its document (positions are in the metadata we emit), or None
    when its document carries no content to compare (resources built in code): those are never reused."""
    doc = res.doc
    if doc.text:
        body = doc.text
    elif doc.data:
        body = json.dumps(doc.data, sort_keys=True, default=str)  # cluster feeds have no source text
    else:
        return None
    return (res.kind, res.namespace, res.name, doc.file, doc.index, doc.line, body)


def content_keys(resources: Iterable[Resource]) -> tuple[Hashable, ...] | None:
    keys = tuple(content_key(r) for r in resources)
    return None if None in keys else keys


def key(*parts: Hashable | None) -> Hashable | None:
    """A composite key, None (never reuse) when any part is None."""
    return None if None in parts else parts


class Carry(Generations):
    def __init__(self, previous: Carry | None = None) -> None:
        super().__init__(previous)
        self._revision: dict[Hashable, Any] = {}  # this revision's only: shared by its proxies, never carried

    def by_content(self, key: Hashable | None, make: Callable[[], _T]) -> _T:
        return make() if key is None else self.get(key, make)

    def by_identity(self, tag: Tag, inputs: tuple[Any, ...], extra: Hashable, make: Callable[[], _T]) -> _T:
        """`make()`'s result for these input objects (compared with `is`) and this hashable `extra`."""
        key = (tag, tuple(id(x) for x in inputs), extra)
        for table in (self._current, self._previous):
            entry = table.get(key)
            if entry is not None and all(a is b for a, b in zip(entry[0], inputs, strict=True)):
                if table is self._previous:
                    with self._lock:
                        self._current.setdefault(key, entry)
                return entry[1]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            self._current[key] = (inputs, value)
        return value

    def unchanged(self, key: Hashable, inputs: tuple[Any, ...], make: Callable[[], _T],
                  keep: tuple[str, ...] = ()) -> _T:
        """`make()`, or the previous revision's result when `inputs` are the very same objects (compared with `is`,
        element by element). On reuse, the entries tagged `keep` that the skipped `make` would have looked up (the
        content-keyed parts, gathered when `make` ran) stay findable for the next revision too."""
        before = self._previous.get(key)
        if before is not None and len(before[0]) == len(inputs) and all(
                a is b for a, b in zip(before[0], inputs, strict=True)):
            with self._lock:
                self._current[key] = before
                for k, v in before[2].items():
                    self._current.setdefault(k, v)
            return before[1]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            kept = {k: v for k, v in self._current.items() if isinstance(k, tuple) and k and k[0] in keep} \
                if keep else {}
            self._current[key] = (inputs, value, kept)
        return value

    def each(self, key: Hashable, items: Sequence[Any], make: Callable[[Any], _T]) -> list[_T]:
        """`[make(x) for x in items]`, taking the previous revision's result for an item that is the very same
        object (compared with `is`; by position first, so a commit that changed one of 10,000 VirtualServices
        costs one `make` and a pass of identity checks, not 10,000 content keys)."""
        before = self._previous.get(key)
        old_items, old_results = before if before is not None else ((), ())
        n = len(old_items)
        results: list[_T] = []
        by_id: dict[int, tuple[Any, _T]] | None = None
        for i, x in enumerate(items):
            if i < n and old_items[i] is x:
                results.append(old_results[i])
                continue
            if by_id is None:  # items moved (one added or removed before them): find them by identity
                by_id = {id(a): (a, r) for a, r in zip(old_items, old_results, strict=True)}
            found = by_id.get(id(x))
            results.append(found[1] if found is not None and found[0] is x else make(x))
        with self._lock:
            self._current[key] = (tuple(items), tuple(results))
        return results

    def canonical(self, key: Hashable, value: _T) -> _T:
        """`value`, or the equal value kept under `key` by the previous revision: an unchanged result stays the same
        object from one revision to the next, so everything keyed on it downstream is found again by identity."""
        before = self._previous.get(key, MISSING)
        chosen = before if before is not MISSING and before == value else value
        with self._lock:
            self._current[key] = chosen
        return chosen

    def derive(self, tag: Tag, inputs: tuple[Any, ...], extra: Hashable, kind: type[_T],
               make: Callable[[_T | None], _T]) -> _T:
        """`make(before)`, kept for these input objects (compared with `is`) and `extra` for the next revision;
        `before` is what the previous revision (or this one, asked again) kept there, when of `kind`. The stage
        patches it, or returns it once it checked what it depends on, or builds anew."""
        key = (tag, tuple(id(x) for x in inputs), extra)
        before = None
        for table in (self._current, self._previous):
            entry = table.get(key)
            if entry is not None and all(a is b for a, b in zip(entry[0], inputs, strict=True)):
                before = entry[1] if isinstance(entry[1], kind) else None
                break
        value = make(before)
        with self._lock:
            self._current[key] = (inputs, value)
        return value

    # -- what translate's stages ask for by name (their Protocols: compiler.translate.hooks) ----------------------

    def service_clusters(self, service: object, rule: object, auto_mtls: bool, credentials_withheld: bool,
                         locality: Hashable, make: Callable[[], _T]) -> _T:
        """A service's outbound clusters and load assignments under its rule: the same for every proxy that makes
        them alike (of one locality, where locality load balancing weighs them), and for the next revision while
        the service and its rule are the same objects."""
        return self.by_identity(Tag.CLUSTERS, (service, rule, auto_mtls, credentials_withheld), locality, make)

    def outbound_tables(self, scope: Hashable, items: Sequence[_I], recipe: tables.Recipe[_I, _D, _P, _Tt]) -> _Tt:
        """A sidecar scope's sorted outbound tables: the previous revision's, or patched from them
        (compiler.reuse.tables)."""
        kept: tables.Kept[_I, _D, _P, _Tt] = self.derive(
            Tag.OUTBOUND_TABLES, (), scope, tables.Kept, lambda before: tables.kept_or_made(before, items, recipe))
        return kept.tables

    def outbound_half(self, scope: Hashable, make: Callable[[], _T]) -> _T:
        """The outbound half (a dataclass) the sidecars of one scope share: made once per revision, and each of its
        fields the previous revision's object while equal (a commit that changed routes only leaves the clusters
        tuple, and so every proxy's cluster table, as it was)."""
        key = (Tag.OUTBOUND, scope)
        found = self._revision.get(key, MISSING)
        if found is MISSING:
            value = make()
            found = self._revision.setdefault(key, dataclasses.replace(  # type: ignore[type-var]
                value, **{f.name: self.canonical((key, f.name), getattr(value, f.name))
                          for f in dataclasses.fields(value)}))  # type: ignore[arg-type]
        return found  # type: ignore[no-any-return]

    def inbound_half(self, proxy: Hashable, value: _T) -> _T:
        """A sidecar's inbound listeners, route configs and clusters: the previous revision's object while equal."""
        return self.canonical((Tag.INBOUND, proxy), value)

    def merged(self, mine: tuple[object, ...], shared: tuple[object, ...], make: Callable[[], _T]) -> _T:
        """A sidecar's table of one type, its inbound resources merged into the shared outbound ones: the same two
        parts give the same merged tuple object, so an unchanged type keeps its emitted table by identity."""
        return self.by_identity(Tag.MERGE, (mine, shared), None, make)

    def sidecar_config(self, proxy: Hashable, inputs: tuple[object, ...], make: Callable[[], _T]) -> _T:
        """A sidecar's config from the objects it is made of: last revision's config object while they are the
        same."""
        return self.by_identity(Tag.SIDECAR, inputs, proxy, make)

    # the index's (compiler.translate.mesh.IndexReuse)

    def registry(self, documents: tuple[Resource, ...], make: Callable[[], _T]) -> _T:
        return self.unchanged((Tag.REGISTRY,), documents, make, keep=(Tag.SERVICE, Tag.SERVICE_ENTRY))

    def rules(self, documents: tuple[Resource, ...], make: Callable[[], _T]) -> _T:
        return self.unchanged((Tag.RULES,), documents, make, keep=(Tag.DESTINATION_RULE,))

    def service(self, res: Resource, slices: Sequence[Resource], selected: Sequence[Resource],
                make: Callable[[], _T]) -> _T:
        return self.by_content(key(Tag.SERVICE, content_key(res), content_keys(slices), content_keys(selected)), make)

    def service_entry(self, res: Resource, selected: Sequence[Resource], make: Callable[[], _T]) -> _T:
        return self.by_content(key(Tag.SERVICE_ENTRY, content_key(res), content_keys(selected)), make)

    def destination_rule(self, documents: Sequence[Resource], make: Callable[[], _T]) -> _T:
        return self.by_content(key(Tag.DESTINATION_RULE, content_keys(documents)), make)

    def virtual_services(self, documents: Sequence[Resource], make: Callable[[Resource], _T]) -> list[_T]:
        return self.each((Tag.VS_ENTRIES,), documents, lambda r: self.by_content(
            key(Tag.VIRTUAL_SERVICE, content_key(r)), functools.partial(make, r)))

    def delegated(self, root: object, found: tuple[object, ...], keys: Hashable, make: Callable[[], _T]) -> _T:
        return self.by_identity(Tag.VS_MERGED, (root, *found), keys, make)

    def rule_index(self, rules: object, make: Callable[[], _T]) -> _T:
        return self.by_identity(Tag.RULE_INDEX, (rules,), None, make)

    # routes' (compiler.translate.hooks.RouteReuse)

    def routes(self, vs: object, scope: tuple[int, str, Hashable], tables: tuple[object, ...], look: recorded.Look,
               make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        """Kept for this VirtualService and scope from one revision to the next, while the tables its lookups were
        made (or last checked) in are the same objects or each lookup finds the same object again."""
        entry: tuple[recorded.Recorded[_T], tuple[object, ...]] = self.derive(
            Tag.ROUTES, (vs,), scope, tuple, lambda before: (self.route_use(
                vs, scope, before[0] if before else None, before[1] if before else None, tables, look, make), tables))
        return entry[0]

    def route_use(self, vs: object, scope: tuple[int, str, Hashable], before: recorded.Recorded[_T] | None,
                  before_in: tuple[object, ...] | None, tables: tuple[object, ...], look: recorded.Look,
                  make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        """`before` (made in the tables `before_in`) while still valid, else made: once per revision for all the
        listener ports the routes do not read (a sidecar asks on each HTTP port of the mesh)."""
        if before is not None and before_in is not None and (
                all(a is b for a, b in zip(before_in, tables, strict=True)) or recorded.still_valid(before, look)):
            return before
        port, rest = scope[0], (Tag.ROUTES_ANY_PORT, id(vs), *scope[1:])  # the revision keeps `vs` alive
        first = self._revision.get(rest)
        if first is None:
            first = self._revision.setdefault(rest, (port, recorded.record(make, PORT)))
        return first[1] if first[0] == port or not first[1].varies else recorded.record(make, PORT)

    def route_table(self, scope: Hashable, recipe: refill.Recipe[_I, _D, _M]) -> _M:
        """What the previous revision (or this one) made for this scope, refilled or kept (compiler.reuse.refill),
        else built."""
        return self.derive(Tag.ROUTE_TABLE, (), scope, recipe.kind,
                           functools.partial(refill.kept_or_built, recipe=recipe))

    # the small ones, asked where they are used

    def egress_services(self, services: object, egress: Hashable, make: Callable[[], _T]) -> _T:
        """The services an egress listener of a namespace imports: while the service table is the same object."""
        return self.by_identity(Tag.EGRESS_SERVICES, (services,), egress, make)

    def services_by_port(self, services: object, make: Callable[[], _T]) -> _T:
        """Those services by port: while they are the same tuple."""
        return self.by_identity(Tag.BY_PORT, (services,), None, make)

    def mtls_disabled(self, value: _T) -> _T:
        """The namespaces PeerAuthentication keeps auto mTLS from: the previous revision's object while equal
        (clusters are kept by its identity)."""
        return self.canonical((Tag.MTLS_DISABLED,), value)

    def field_notes(self, kind: str, documents: Sequence[Resource], make: Callable[[Resource], _T]) -> list[_T]:
        """MW0403 notes of each document of a kind: found again for the very same documents."""
        return self.each((Tag.FIELD_NOTES, kind), documents, make)
