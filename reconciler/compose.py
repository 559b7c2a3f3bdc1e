"""One compile = one commit's policy + one cluster state.

Why it exists: the loop recompiles the same commit whenever the cluster changes, so a commit's documents are
loaded once and kept in memory (`Tree`; the exported directory may be gone by then), and each compile pairs them
with a `cluster.ClusterState`. The result (`Compiled`) carries the state it was built with, so the SDS secrets a
proxy is sent always belong to the same generation as its endpoints. Which of a commit's documents the cluster's
replace is the compiler's decision (`compiler.build.check_revision`). The other inputs of a build are the mesh's
trust domain and the key sets of the revision's jwksUris and discovered issuers (`reconciler.jwks`), fetched before
it is translated.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compiler import build as build_mod
from compiler.build import Diagnostic, Document
from reconciler import gcpause, jwks
from reconciler.kube.cluster import ClusterState
from reconciler.xds import xds_node

log = logging.getLogger(__name__)


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

    @property
    def unready(self) -> frozenset[str]:
        """Endpoint addresses left out of EDS: readiness is applied per snapshot, not compiled."""
        return self.cluster.unready if self.cluster is not None else frozenset()

    def secrets_for(self, node: Any) -> Mapping[str, build_mod.Secret]:
        if self.cluster is None:
            return {}
        parsed = xds_node.parse_istio_node_id(build_mod.node_id_of(node))
        return self.cluster.secrets_for(parsed.namespace if parsed else None)


class Compiler:
    """`load` a commit's tree once, `build` it with any cluster state. Thread-safe; the last build is memoized, so a
    change that only touched credentials or endpoint readiness (same documents) re-publishes without recompiling;
    `compiles` counts the builds that did compile."""

    def __init__(self, parse_cache: build_mod.ParseCache | None = None, *, repo_path: str = "",
                 pause: gcpause.GcPause | None = None, strict: bool = False,
                 trust: build_mod.TrustDomain | None = None, keys: jwks.KeySets | None = None,
                 mesh_identity: bool = False) -> None:
        self._strict = strict  # flagged errors block too (`serve --strict`)
        self._mesh_identity = mesh_identity  # every proxy has an agent (`serve --ca-dir`): Istio's mTLS default
        self._trust = trust or build_mod.TrustDomain()
        self.keys = keys or jwks.KeySets()  # refreshed by the server; a change recompiles the serving commit
        self._pause = pause or gcpause.GcPause()  # the process's, when it has other threads that compile
        self._repo_path = repo_path
        self._parse_cache = parse_cache or build_mod.ParseCache()
        self._check_cache = build_mod.CheckCache()  # typed resources and per-document findings, by content
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._memo: tuple[Tree, tuple[Document, ...], int, build_mod.Build, tuple[str, ...]] | None = None
        self.compiles = 0

    def load(self, root: Path) -> Tree:
        """`root` is a commit's export of `repo_path`; files are named relative to the repository (as in git), so
        names, and the metadata that carries them, are the same in every commit. Nothing outside the export is
        read, whatever symlinks the commit holds."""
        levels = len(Path(self._repo_path).parts) if self._repo_path else 0
        export = root.parents[levels - 1] if levels else root
        loaded = build_mod.load([root], cache=self._parse_cache, base=export, confine=export)
        return Tree(tuple(loaded.documents), tuple(loaded.diagnostics), loaded.files)

    def build(self, tree: Tree, cluster: ClusterState | None) -> Compiled:
        documents = cluster.documents if cluster is not None else ()
        with self._lock:
            memo = self._memo
        if memo is not None and memo[0] is tree and memo[1] == documents and memo[2] == self.keys.generation:
            return Compiled(memo[3], cluster, memo[4])
        with self._building, self._pause.paused():  # the caches carry one revision to the next: one at a time
            return self._build(tree, cluster, documents)

    def _build(self, tree: Tree, cluster: ClusterState | None, documents: tuple[Document, ...]) -> Compiled:
        with self._lock:
            memo = self._memo
        checked, names = build_mod.check_revision(tree.documents, documents, found=tree.diagnostics,
                                                  files=tree.files, check_cache=self._check_cache)
        inputs = build_mod.BuildInputs(self._trust, self.keys.resolve(build_mod.jwks_sources(checked)),
                                       mesh_identity=self._mesh_identity)
        generation = self.keys.generation  # a refresh after this point makes the memo stale
        # the previous build (good or not) lends its memos: what this commit or cluster change did not touch is
        # reused, not recompiled (compiler.reuse.carry, compiler.reuse.memo)
        result = build_mod.from_checked(checked, previous=memo[3] if memo is not None else None, strict=self._strict,
                                        inputs=inputs)
        with self._lock:
            self._memo = (tree, documents, generation, result, names)
            self.compiles += 1
        return Compiled(result, cluster, names)

