"""One compile = one commit's policy + one cluster state; and which wins when both define a Service.

Why it exists: the loop recompiles the same commit whenever the cluster changes, so a commit's documents are
loaded once and kept in memory (`Tree`; the exported directory may be gone by then), and each compile pairs them
with a `cluster.ClusterState`. The result (`Compiled`) carries the state it was built with, so the SDS secrets a
proxy is sent always belong to the same generation as its endpoints.

Precedence (Istio's: the cluster is the source of truth for the service registry). A Service in the cluster replaces
the repository's Service of the same namespace and name, and the repository's EndpointSlices for that Service are
dropped (endpoints come from the cluster's slices only); an EndpointSlice in the cluster also replaces a repository
one of the same name. Everything else in the repository (its other Services and slices, WorkloadEntries,
ServiceEntries, routing policy) is kept. Without a cluster nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compiler import build as build_mod
from compiler import load, model, pipeline
from compiler.diagnostics import Diagnostic
from compiler.load import Document
from reconciler.kube.cluster import ClusterState
from reconciler.xds import xds_node

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # how an EndpointSlice names its Service
_REGISTRY_KINDS = ("Service", "EndpointSlice")


@dataclasses.dataclass(frozen=True, eq=False)
class Tree:
    """A commit's policy documents, loaded once (identity matters: the compile memo is keyed by it)."""

    documents: tuple[Document, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: int


@dataclasses.dataclass(frozen=True, eq=False)
class Compiled:
    """What the loop publishes: the build and the cluster state it was compiled with."""

    build: build_mod.Build
    cluster: ClusterState | None
    shadowed: tuple[str, ...] = ()  # repository documents the cluster replaced, as `Kind ns/name file:line`

    @property
    def ok(self) -> bool:
        return self.build.ok

    @property
    def diagnostics(self) -> Sequence[Diagnostic]:
        return self.build.diagnostics

    def secrets_for(self, node: Any) -> Mapping[str, model.Secret]:
        if self.cluster is None:
            return {}
        parsed = xds_node.parse_istio_node_id(build_mod.node_id_of(node))
        return self.cluster.secrets_for(parsed.namespace if parsed else None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _meta(doc: Document) -> tuple[str, str, str, Mapping[str, Any]]:
    data = _mapping(doc.data)
    meta = _mapping(data.get("metadata"))
    return (str(data.get("kind", "")), str(meta.get("namespace") or "default"), str(meta.get("name", "")),
            _mapping(meta.get("labels")))


def merge(repo: Sequence[Document], cluster: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    """(documents to compile, repository documents shadowed by the cluster); see the module docstring."""
    if not cluster:
        return list(repo), []
    owned = {_meta(d)[:3] for d in cluster}
    services = {(ns, name) for kind, ns, name in owned if kind == "Service"}
    kept: list[Document] = []
    shadowed: list[Document] = []
    for doc in repo:
        kind, ns, name, labels = _meta(doc)
        replaced = kind in _REGISTRY_KINDS and (kind, ns, name) in owned
        orphaned = kind == "EndpointSlice" and (ns, str(labels.get(SERVICE_NAME_LABEL, ""))) in services
        (shadowed if replaced or orphaned else kept).append(doc)
    return [*kept, *cluster], shadowed


class Compiler:
    """`load` a commit's tree once, `build` it with any cluster state. Thread-safe; the last build is memoized, so a
    change that only touched credentials (same documents) re-publishes without recompiling."""

    def __init__(self, parse_cache: load.ParseCache | None = None, *, repo_path: str = "") -> None:
        self._repo_path = repo_path
        self._parse_cache = parse_cache or load.ParseCache()
        self._check_cache = pipeline.CheckCache()  # typed resources and per-document findings, by content
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._memo: tuple[Tree, tuple[Document, ...], build_mod.Build, tuple[str, ...]] | None = None

    def load(self, root: Path) -> Tree:
        """`root` is a commit's export of `repo_path`; files are named relative to the repository (as in git), so
        names, and the metadata that carries them, are the same in every commit."""
        levels = len(Path(self._repo_path).parts) if self._repo_path else 0
        loaded = load.load([root], cache=self._parse_cache, base=root.parents[levels - 1] if levels else root)
        return Tree(tuple(loaded.documents), tuple(loaded.diagnostics), loaded.files)

    def build(self, tree: Tree, cluster: ClusterState | None) -> Compiled:
        documents = cluster.documents if cluster is not None else ()
        with self._lock:
            memo = self._memo
        if memo is not None and memo[0] is tree and memo[1] == documents:
            return Compiled(memo[2], cluster, memo[3])
        merged, shadowed = merge(tree.documents, documents)
        with self._building:  # the caches carry one revision to the next: one build at a time
            return self._build(tree, cluster, documents, merged, shadowed)

    def _build(self, tree: Tree, cluster: ClusterState | None, documents: tuple[Document, ...],
               merged: list[Document], shadowed: list[Document]) -> Compiled:
        with self._lock:
            memo = self._memo
        checked = pipeline.check_documents(merged, tree.diagnostics, tree.files, check_cache=self._check_cache)
        # the previous build (good or not) lends its memos: what this commit or cluster change did not touch is
        # reused, not recompiled (compiler.translate.carry, compiler.emit.memo)
        result = build_mod.from_checked(checked, previous=memo[2] if memo is not None else None)
        names = tuple(f"{_meta(d)[0]} {_meta(d)[1]}/{_meta(d)[2]} {d.file}:{d.line}" for d in shadowed)
        with self._lock:
            self._memo = (tree, documents, result, names)
        return Compiled(result, cluster, names)

