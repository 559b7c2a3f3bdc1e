"""Stage 1 to 3 for a whole revision: check the tree, index the mesh once, emit per proxy on demand.

The reconciler compiles each commit with `build` and asks `snapshot_for` per connected proxy; `compile --all`
walks `proxies`. A rejected error (see compiler.codes) means no model: nothing from that revision may be published.
A flagged one (an analyzer finding about a config Pilot serves) is reported and the revision served with Pilot's
semantics, unless `strict` (`--strict`) makes it block too.

This module is also the compiler's public face: the reconciler imports nothing else from the compiler (an import
contract in pyproject.toml), so what it hands the compiler and gets back is re-exported here, and the modules behind
those names can move without the reconciler noticing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from compiler import diagnostics as diag
from compiler import emit, mesh_config, model, pipeline, readiness, registry_overlay, routing_graph, translate
from compiler.api.mesh_config import MeshConfig
from compiler.diagnostics import Diagnostic
from compiler.emit import bootstrap_static, common, dump, prometheus_stats
from compiler.emit import proxyless as proxyless_emit
from compiler.emit.dump import config_dump
from compiler.inputs import BuildInputs, Discovery, FetchedJwks, KeySource
from compiler.kinds import SERVICE_NAME_LABEL
from compiler.load import Document, ParseCache, load
from compiler.model import Metrics, Proxy, Secret
from compiler.naming import InvalidNodeId, NodeId, credential_ca_secret, parse_node_id
from compiler.pipeline import CheckCache, Checked
from compiler.routing_graph import Edge as RoutingEdge
from compiler.routing_graph import Graph as RoutingGraph
from compiler.routing_graph import Node as RoutingNode
from compiler.routing_graph import NodeKind as RoutingNodeKind
from compiler.translate import jwt
from compiler.translate import proxyless as proxyless_translate
from compiler.translate.describe import Description
from compiler.translate.describe import describe as describe_proxy
from compiler.trust import TrustDomain
from compiler.validate.hosts import is_ip
from meshxds import consistency
from meshxds.snapshot import Snapshot

# The public face (see the module docstring): this module's own names, and what the reconciler hands the compiler
# and gets back (documents, diagnostics, the caches a long-running process keeps, the SDS secrets it reads from the
# cluster, node ids, a snapshot's config dump, the routing graph).
__all__ = [
    "SERVICE_NAME_LABEL",
    "Build",
    "BuildInputs",
    "CheckCache",
    "Checked",
    "Description",
    "Diagnostic",
    "Discovery",
    "Document",
    "FetchedJwks",
    "InconsistentSnapshot",
    "InvalidNodeId",
    "KeySource",
    "Metrics",
    "Node",
    "NodeId",
    "ParseCache",
    "RoutingEdge",
    "RoutingGraph",
    "RoutingNode",
    "RoutingNodeKind",
    "Secret",
    "TrustDomain",
    "XdsNode",
    "agent_sds_cluster",
    "agent_secret_config",
    "build",
    "check_revision",
    "config_dump",
    "credential_ca_secret",
    "describe",
    "errors",
    "flagged",
    "from_checked",
    "from_documents",
    "is_ip",
    "jwks_sources",
    "load",
    "metrics_endpoint",
    "metrics_stats_config",
    "node_id_of",
    "parse_node_id",
    "proxy_config",
    "routing",
    "snapshot_for",
    "split_readiness",
    "with_secrets",
]


@dataclasses.dataclass(frozen=True)
class Build:
    ok: bool
    diagnostics: list[Diagnostic]
    model: translate.Mesh | None  # None when not ok
    # resources emitted for this revision's proxies, found again by model value (see compiler.reuse.memo)
    memo: emit.EmitMemo = dataclasses.field(default_factory=emit.EmitMemo, compare=False, repr=False)
    # index objects and per-destination results the next revision may reuse (see compiler.reuse.carry)
    carry: translate.Carry = dataclasses.field(default_factory=translate.Carry, compare=False, repr=False)
    inputs: BuildInputs = dataclasses.field(default_factory=BuildInputs, compare=False, repr=False)
    # the MeshConfig `carry` was made with (a failed build passes the last good one's on, with its carry)
    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.model is not None:
            object.__setattr__(self, "carry", self.model.carry)

    def proxies(self) -> list[Proxy]:  # (`model` here is the field)
        return translate.proxies(self.model) if self.model is not None else []


def build(paths: Sequence[Path | str], *, extra_documents: Sequence[Document] = (),
          parse_cache: ParseCache | None = None, check_cache: pipeline.CheckCache | None = None,
          previous: Build | None = None, strict: bool = False, inputs: BuildInputs | None = None) -> Build:
    """The caches and `previous` (the last build of the same tree) let this one redo only what changed: files are
    re-parsed, documents re-checked, index objects and resources rebuilt only where their inputs differ."""
    checked = pipeline.check(paths, extra_documents=extra_documents, cache=parse_cache, check_cache=check_cache)
    return from_checked(checked, previous=previous, strict=strict, inputs=inputs)


def from_checked(checked: pipeline.Checked, *, previous: Build | None = None, strict: bool = False,
                 inputs: BuildInputs | None = None) -> Build:
    inputs = inputs or BuildInputs()
    if previous is not None and previous.inputs != inputs:
        previous = None  # carried results were made with the other trust domain or key sets
    conflicts = mesh_config.trust_conflicts(checked.resources.of_kind("ConfigMap"), inputs.trust)
    if conflicts:
        checked = dataclasses.replace(checked, diagnostics=diag.sorted_unique([*checked.diagnostics, *conflicts]))
    if diag.blocking(checked.diagnostics, strict=strict):
        # a failed build passes the last good one's memos (and the MeshConfig they were made with) on
        if previous is None:
            return Build(False, checked.diagnostics, None, inputs=inputs)
        return Build(False, checked.diagnostics, None, previous.memo, previous.carry, inputs, previous.mesh)
    if previous is not None and previous.mesh != mesh_config.config_of(checked.resources.of_kind("ConfigMap")):
        previous = None  # carried results were made with other mesh settings
    mesh = translate.index(checked.resources, previous.carry.next_generation() if previous is not None else None,
                           inputs)
    # warnings about what the compiler skips (MW0403) belong to the revision, beside the validation findings
    notes = translate.unsupported(mesh)
    memo = previous.memo.next_generation() if previous is not None else emit.EmitMemo()
    return Build(True, [*checked.diagnostics, *notes], mesh, memo, mesh.carry, inputs, mesh.config)


def check_revision(documents: Sequence[Document], cluster_documents: Sequence[Document] = (), *,
                   found: Sequence[Diagnostic] = (), files: int = 0, check_cache: CheckCache | None = None
                   ) -> tuple[pipeline.Checked, tuple[str, ...]]:
    """Stage 1 of a revision from documents already loaded (`found`: the loader's diagnostics, `files`: how many it
    read), with the cluster's service registry documents over the repository's (`compiler.registry_overlay`). Also
    returns the repository documents the cluster replaced, as `Kind namespace/name file:line`."""
    merged, shadowed = registry_overlay.merge(documents, cluster_documents)
    checked = pipeline.check_documents(merged, found, files, check_cache=check_cache)
    return checked, tuple(registry_overlay.describe(d) for d in shadowed)


def from_documents(documents: Sequence[Document], cluster_documents: Sequence[Document] = (), *,
                   found: Sequence[Diagnostic] = (), files: int = 0, check_cache: CheckCache | None = None,
                   previous: Build | None = None, strict: bool = False,
                   inputs: BuildInputs | None = None) -> tuple[Build, tuple[str, ...]]:
    """`check_revision`, then `from_checked`."""
    checked, shadowed = check_revision(documents, cluster_documents, found=found, files=files,
                                       check_cache=check_cache)
    return from_checked(checked, previous=previous, strict=strict, inputs=inputs), shadowed


class XdsNode(Protocol):
    """A proxy as the ADS server knows it (the reconciler's NodeInfo; the compiler never imports the reconciler)."""

    @property
    def id(self) -> str: ...

    @property
    def proxyless(self) -> bool:
        """A gRPC client (metadata GENERATOR=grpc), which gets gRPC's shape of its config."""


Node = str | model.Proxy | XdsNode  # a node id, a proxy of the tree, or a connected node


def node_id_of(node: Node) -> str:
    if isinstance(node, str):
        return node
    return node.node_id if isinstance(node, model.Proxy) else node.id


class InconsistentSnapshot(RuntimeError):
    """A system error: the emitter produced references to resources it did not emit. Never published."""


def proxy_config(result: Build, node: Node) -> model.ProxyConfig:
    if result.model is None:
        raise LookupError("no model: the revision did not compile")
    proxy = translate.find_proxy(result.model, node_id_of(node))
    return translate.proxy_config(result.model, proxy)


def describe(result: Build, node: Node) -> Description:
    """Which configs of the revision apply to the proxy and why (`meshward describe`); LookupError as
    `proxy_config`."""
    if result.model is None:
        raise LookupError("no model: the revision did not compile")
    return describe_proxy(result.model, translate.find_proxy(result.model, node_id_of(node)))


def routing(result: Build, of: Iterable[model.Proxy] | None = None) -> RoutingGraph:
    """The revision's HTTP routing as a graph, from every proxy it compiles for, or those `of` (`meshward graph`,
    the reconciler's mesh page); empty when the revision did not compile."""
    if result.model is None:
        return RoutingGraph()
    return routing_graph.of_configs(translate.routing_configs(result.model, result.proxies() if of is None else of))


def with_secrets(cfg: model.ProxyConfig, secrets: Mapping[str, model.Secret]) -> model.ProxyConfig:
    """The proxy's config plus the SDS secrets it refers to that `secrets` holds (the reconciler's credentials:
    Kubernetes TLS Secrets named by `credentialName`). Secrets it does not refer to are never sent."""
    have = {s.name for s in cfg.secrets}
    extra = [secrets[n] for n in sorted(cfg.secret_references() - have) if n in secrets]
    if not extra:
        return cfg
    return dataclasses.replace(cfg, secrets=tuple(sorted((*cfg.secrets, *extra), key=lambda s: s.name)))


def split_readiness(documents: Sequence[Document]) -> tuple[tuple[Document, ...], frozenset[str]]:
    """A cluster's documents without endpoint readiness, and the addresses that are not ready, for `snapshot_for`'s
    `unready` (compiler.readiness: a readiness change then recompiles nothing)."""
    return readiness.split(documents)


def snapshot_for(result: Build, node: Node, *, secrets: Mapping[str, model.Secret] | None = None,
                 unready: frozenset[str] = frozenset()) -> Snapshot:
    """The proxy's snapshot; raises LookupError when no workload in the tree matches the node id, and
    InconsistentSnapshot when the snapshot fails go-control-plane's `Consistent()` check (which includes an
    SDS secret that is referred to but neither in the tree nor in `secrets`). A proxyless node (the ADS server's
    NodeInfo of a gRPC client, metadata GENERATOR=grpc) gets gRPC's shape of the same config
    (`translate.proxyless`, then `emit.proxyless`). Endpoints at `unready` addresses are left out (`split_readiness`)."""
    cfg = readiness.without_unready(proxy_config(result, node), unready)
    if not isinstance(node, str | model.Proxy) and node.proxyless:
        snap = proxyless_emit.snapshot(proxyless_translate.grpc_config(cfg))
    else:
        snap = emit.snapshot(with_secrets(cfg, secrets) if secrets else cfg, result.memo)
    # a consistent snapshot stays consistent: checked once per content version, and per shared table
    problems = result.memo.consistency(snap.version, lambda: consistency.check(snap, result.memo.get))
    if problems:
        raise InconsistentSnapshot(f"{node_id_of(node)}: " + "; ".join(problems[:5]))
    return snap


def agent_sds_cluster(socket_path: str) -> dict[str, Any]:
    """Istio's static `sds-grpc` cluster to the agent's SDS socket, for a bootstrap (`meshward bootstrap
    --sds-socket`), as the compiled configs reach it for the mesh identity."""
    return dump.message_dict(bootstrap_static.agent_sds_cluster(socket_path))


def agent_secret_config(name: str) -> dict[str, Any]:
    """A TLS context's reference to one of the agent's secrets (`default`, `ROOTCA`), as the compiled configs
    emit it."""
    return dump.message_dict(secret_pb2.SdsSecretConfig(name=name, sds_config=common.agent_source()))


def metrics_stats_config(*, workload: str, namespace: str, metrics: model.Metrics) -> dict[str, Any]:
    """The bootstrap's `stats_config` that gives Envoy's upstream stats Istio's labels (`emit/prometheus_stats.py`),
    for a bootstrap whose proxy is `workload` in `namespace`, with the proxy's Telemetry `metrics` settings
    (`proxy_config(...).metrics`, or `Metrics()`: Istio's defaults) and, when it sets one, `stats_flush_interval`."""
    out: dict[str, Any] = {"stats_config": dump.message_dict(
        prometheus_stats.stats_config(workload=workload, namespace=namespace, metrics=metrics))}
    flush = prometheus_stats.flush_interval(metrics)
    if flush is not None:
        out["stats_flush_interval"] = f"{flush.ToMilliseconds() / 1000:g}s"
    return out


def metrics_endpoint(address: str, port: int, *, admin_address: str, admin_port: int) -> tuple[
        dict[str, Any], dict[str, Any]]:
    """Istio's metrics endpoint as a bootstrap's static listener on ADDRESS:PORT and cluster to the admin
    interface (`prometheus_stats`), each a JSON-ready dict."""
    return (dump.message_dict(prometheus_stats.listener(address, port)),
            dump.message_dict(prometheus_stats.admin_cluster(admin_address, admin_port)))


def jwks_sources(revision: Build | pipeline.Checked) -> dict[KeySource, float]:
    """The RequestAuthentication jwksUris of a revision, and the issuers whose key sets are found by OpenID
    discovery, with how long fetching each may take (seconds): what the reconciler fetches and hands to
    `from_checked` as `BuildInputs.jwks`."""
    if isinstance(revision, pipeline.Checked):
        return jwt.jwks_sources(revision.resources)
    return jwt.jwks_sources(revision.model.resources) if revision.model is not None else {}


def errors(result: Build) -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.severity is diag.Severity.ERROR]


def flagged(result: Build) -> list[Diagnostic]:
    """The errors of a served revision: analyzer findings about configs Pilot serves (none when not `ok`)."""
    return [d for d in result.diagnostics if d.flagged] if result.ok else []
