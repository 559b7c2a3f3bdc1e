"""Two compiled revisions of one policy tree, compared proxy by proxy: the Envoy resources each proxy gains, loses
or sees changed (with the changed fields and the documents that caused them), the bootstrap stats settings that
change (Telemetry metrics: they take a restart of the proxy), the diagnostics that appear or go, and the routing
that changed. The result is plain data that `meshward.review.report` renders.

A proxy whose snapshot has the same content version on both sides (versions are content hashes) is not dumped at
all, so a change that touches a few proxies of a large mesh costs little past the two builds.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from compiler import build, emit, load, model, pipeline, translate
from compiler import routing_graph as routing
from compiler.diagnostics import Diagnostic
from compiler.emit import dump
from meshward.review import causes, changes, revisions
from meshward.review.causes import DocRef, Key
from meshxds import type_urls
from meshxds.snapshot import Snapshot, XdsResource


class NotCompiled(Exception):
    """A revision whose policy does not compile: a one-line message naming it and its first error."""


@dataclasses.dataclass(frozen=True)
class Revision:
    label: str  # what the reader is told: `main (1a2b3c4)`, `worktree`
    checked: pipeline.Checked
    result: build.Build


def compile_tree(tree: revisions.Tree, label: str) -> Revision:
    loaded = load.load([tree.directory], base=tree.root, confine=tree.root)
    checked = pipeline.check_documents(loaded.documents, loaded.diagnostics, loaded.files)
    result = build.from_checked(checked)
    if not result.ok:
        found = build.errors(result)
        raise NotCompiled(f"{label} does not compile ({len(found)} error(s), first: {found[0].render()})")
    return Revision(label, checked, result)


@dataclasses.dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str
    before: Any  # None when added
    after: Any  # None when removed
    causes: tuple[DocRef, ...]
    whole_entry: bool = False  # a virtual host or filter chain added or removed as a whole


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceDiff:
    type: str  # listeners, routes, clusters, endpoints, secrets
    name: str
    change: changes.Change
    causes: tuple[DocRef, ...]  # for a resource added or removed; its fields' causes when changed
    fields: tuple[FieldDiff, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyDiff:
    node_id: str
    change: changes.Change
    resources: tuple[ResourceDiff, ...] = ()


@dataclasses.dataclass(frozen=True)
class Report:
    before: str
    after: str
    prefix: str  # the policy directory in the repository
    proxies: tuple[ProxyDiff, ...]
    new_diagnostics: tuple[Diagnostic, ...]
    gone_diagnostics: tuple[Diagnostic, ...]
    documents: tuple[DocRef, ...]  # every document the revisions hold differently
    routing_before: routing.Graph
    routing_after: routing.Graph

    @property
    def changed(self) -> bool:
        return bool(self.proxies or self.new_diagnostics or self.gone_diagnostics)


@dataclasses.dataclass(frozen=True, slots=True)
class _Side:
    config: model.ProxyConfig
    snapshot: Snapshot


class _Resources:
    """Resources as config-dump JSON, and the field changes between two of them, each worked out once per content
    version: the proxies of a mesh share most of their resources (a route weight changes the same route table in
    every sidecar that sees the service), and converting and comparing them is what a diff spends its time on."""

    def __init__(self) -> None:
        self._json: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._fields: dict[tuple[str, str, str], list[changes.FieldChange]] = {}

    def json(self, res: XdsResource) -> Mapping[str, Any]:
        key = (res.type_url, res.version)
        if key not in self._json:
            self._json[key] = dump.message_dict(res.message)
        return self._json[key]

    def fields(self, x: XdsResource, y: XdsResource) -> list[changes.FieldChange]:
        key = (x.type_url, x.version, y.version)
        if key not in self._fields:
            self._fields[key] = list(changes.fields(self.json(x), self.json(y)))
        return self._fields[key]

    def sources(self, res: XdsResource, snapshot: Snapshot, path: Sequence[changes.Step] = ()) -> list[Key]:
        """The sources on `path` in a resource; an endpoint assignment's are its cluster's (it carries no metadata
        of its own)."""
        if res.type_url == type_urls.ENDPOINT:
            cluster = snapshot.by_type.get(type_urls.CLUSTER, {}).get(res.name)
            return causes.along(self.json(cluster), ()) if cluster is not None else []
        return causes.along(self.json(res), path)


class UnknownProxy(LookupError):
    """A node id given with --node that neither revision has a workload for."""


def proxies(result: build.Build, nodes: Sequence[str]) -> dict[str, model.Proxy]:
    """The revision's proxies (those `compile --all` finds: one pod of each Deployment, under a stable name) and
    the `nodes` it resolves (pods as the cluster names them), by node id."""
    found = {p.node_id: p for p in result.proxies()}
    mesh = result.model
    if mesh is None:
        return found
    for node in nodes:
        try:
            found[node] = translate.find_proxy(mesh, node)
        except LookupError:
            continue  # not in this revision: the other may have it (a proxy added or removed)
    return found


def compare(before: Revision, after: Revision, prefix: str, nodes: Sequence[str] = ()) -> Report:
    """`nodes`: node ids to compare beside the proxies the revisions enumerate; UnknownProxy when neither has
    one of them."""
    changed_docs = causes.changed_documents(before.checked.resources, after.checked.resources)
    old, new = proxies(before.result, nodes), proxies(after.result, nodes)
    if missing := [n for n in nodes if n not in old and n not in new]:
        raise UnknownProxy(f"unknown proxy {missing[0]}: neither revision has a workload for it")
    diffs: list[ProxyDiff] = []
    configs: tuple[list[model.ProxyConfig], list[model.ProxyConfig]] = ([], [])
    resources = _Resources()
    for node in sorted(old.keys() | new.keys()):
        a = _side(before.result, old[node]) if node in old else None
        b = _side(after.result, new[node]) if node in new else None
        if (a is not None and b is not None and a.snapshot.version == b.snapshot.version
                and a.config.metrics == b.config.metrics):
            continue
        configs[0].extend([a.config] if a else [])
        configs[1].extend([b.config] if b else [])
        if a is None or b is None:
            diffs.append(ProxyDiff(node, changes.Change.ADDED if a is None else changes.Change.REMOVED))
            continue
        attribute = _attributor(before.result, after.result, old[node], new[node], changed_docs)
        found = _resources(a.snapshot, b.snapshot, resources, attribute)
        found += _bootstrap(a.config.metrics, b.config.metrics, attribute, changed_docs)
        if found:
            diffs.append(ProxyDiff(node, changes.Change.CHANGED, tuple(found)))
    routes = routing.changed(routing.of_configs(configs[0]), routing.of_configs(configs[1]))
    new_diags, gone_diags = _diagnostics(before.result.diagnostics, after.result.diagnostics)
    return Report(before.label, after.label, prefix, tuple(diffs), new_diags, gone_diags,
                  tuple(sorted(changed_docs.values())), *routes)


def _side(result: build.Build, proxy: model.Proxy) -> _Side:
    cfg = build.proxy_config(result, proxy)
    return _Side(cfg, emit.snapshot(cfg, result.memo))


def _attributor(before: build.Build, after: build.Build, old: model.Proxy, new: model.Proxy,
                changed: Mapping[Key, DocRef]) -> Callable[[list[Key]], tuple[DocRef, ...]]:
    """Puts a piece's sources down to changed documents, for one proxy (what applies to it on either side is
    worked out once, and only when a piece's own sources do not say)."""
    applied = functools.cache(lambda: [*_applied(after, new), *_applied(before, old)])
    return lambda named: causes.attribute(named, applied, changed)


def _applied(result: build.Build, proxy: model.Proxy) -> list[Key]:
    return causes.applied_keys(build.describe(result, proxy).to_json())


def _resources(old: Snapshot, new: Snapshot, resources: _Resources,
               attribute: Callable[[list[Key]], tuple[DocRef, ...]]) -> list[ResourceDiff]:
    """The resources of one proxy that differ, by type and name; those with the same content version are not
    looked at."""
    out: list[ResourceDiff] = []
    for type_url in sorted(old.by_type.keys() | new.by_type.keys()):
        short = type_urls.SHORT_NAMES.get(type_url, type_url)
        olds, news = old.by_type.get(type_url, {}), new.by_type.get(type_url, {})
        for name in sorted(olds.keys() | news.keys()):
            x, y = olds.get(name), news.get(name)
            if x is None or y is None:
                change = changes.Change.ADDED if x is None else changes.Change.REMOVED
                held, snapshot = (y, new) if x is None else (x, old)
                assert held is not None
                out.append(ResourceDiff(short, name, change, attribute(resources.sources(held, snapshot))))
            elif x.version != y.version:
                fields = [_field(f, resources, (x, old) if f.after is None else (y, new), attribute)
                          for f in resources.fields(x, y)]
                if fields:
                    union = tuple(sorted({c for f in fields for c in f.causes}))
                    out.append(ResourceDiff(short, name, changes.Change.CHANGED, union, tuple(fields)))
    return out


BOOTSTRAP = "bootstrap"
STATS = "stats (the proxy takes them at its next start)"


def _bootstrap(old: model.Metrics, new: model.Metrics, attribute: Callable[[list[Key]], tuple[DocRef, ...]],
               changed: Mapping[Key, DocRef]) -> list[ResourceDiff]:
    """Telemetry metrics settings, which live in the proxy's bootstrap (ADS cannot change them): one changed
    `bootstrap` entry whose fields are the settings, put down to the changed Telemetries and MeshConfig."""
    fields = [(f.name, getattr(old, f.name), getattr(new, f.name)) for f in dataclasses.fields(model.Metrics)]
    causes_ = attribute([k for k in changed if k[0] in ("Telemetry", "ConfigMap")])
    diffs = tuple(FieldDiff(name, _plain(x), _plain(y), causes_) for name, x, y in fields if x != y)
    return [ResourceDiff(BOOTSTRAP, STATS, changes.Change.CHANGED, causes_, diffs)] if diffs else []


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _field(f: changes.FieldChange, resources: _Resources, holder: tuple[XdsResource, Snapshot],
           attribute: Callable[[list[Key]], tuple[DocRef, ...]]) -> FieldDiff:
    """A changed field, put down to the sources on its path (on the side that holds it)."""
    named = resources.sources(*holder, f.path)
    return FieldDiff(f.render_path(), f.before, f.after, attribute(named), f.whole_entry)


def _diagnostics(before: Sequence[Diagnostic], after: Sequence[Diagnostic]
                 ) -> tuple[tuple[Diagnostic, ...], tuple[Diagnostic, ...]]:
    """Diagnostics only one side has, compared without their line (a finding that merely moved is not new)."""
    def key(d: Diagnostic) -> tuple[str, str, str, str, str]:
        return (d.code, d.position.file, d.path, d.resource, d.message)

    old, new = {key(d) for d in before}, {key(d) for d in after}
    return (tuple(sorted((d for d in after if key(d) not in old), key=Diagnostic.sort_key)),
            tuple(sorted((d for d in before if key(d) not in new), key=Diagnostic.sort_key)))
