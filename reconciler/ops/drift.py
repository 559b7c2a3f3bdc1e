"""Drift: the served commit against the live mesh, the way Argo CD says OutOfSync.

Four kinds, each a stable string dashboards group by (`meshward_drift_findings{kind}`):
- a connected proxy that is not on the served commit's config (not ACKed, rejected, or still on an older commit);
- a Kubernetes Service that Git's policy refers to (a Service manifest in Git, or a VirtualService /
  DestinationRule host that names one) and the cluster lacks;
- an Istio resource (networking.istio.io, security.istio.io) applied in the cluster that Git does not hold (or
  holds with another spec): what a team migrating from istiod still has to move, and config meshward does not serve;
- a Service whose endpoints Git pins (EndpointSlices in the repository) and the cluster disagrees with.

Pure: the server hands it the served commit's documents, the cluster's objects and the proxies' sync state. Host
names resolve as Istio resolves them (pilot/pkg/model/config.go ResolveShortnameToFQDN): a name without a dot is a
Service of the resource's namespace, `name.namespace.svc.<domain>` is that Service, anything else (an external
name, a wildcard, a ServiceEntry host) is not a Kubernetes Service.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from compiler.build import SERVICE_NAME_LABEL
from reconciler.xds import ads_status

Manifest = Mapping[str, Any]
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")


class DriftKind(enum.StrEnum):
    PROXY_NOT_SERVED = "ProxyNotOnServedCommit"
    SERVICE_MISSING = "ServiceMissingInCluster"
    UNMANAGED_ISTIO = "IstioResourceNotInGit"
    ENDPOINTS_DIFFER = "EndpointsDiffer"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Finding:
    kind: DriftKind
    object: str  # `Service shop/web`, `VirtualService shop/legacy`, a node id
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": str(self.kind), "object": self.object, "detail": self.detail}


@dataclasses.dataclass(frozen=True, slots=True)
class GitDocument:
    """A document of the served commit: its manifest and where it is."""

    data: Manifest
    file: str
    line: int


@dataclasses.dataclass(frozen=True, slots=True)
class Drift:
    commit: str
    cluster: bool  # the cluster was compared (serve watches one); without it only proxies are
    findings: tuple[Finding, ...]

    @property
    def in_sync(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        """Findings by kind, every kind present (0 when none)."""
        return {str(kind): sum(f.kind is kind for f in self.findings) for kind in DriftKind}

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "inSync": self.in_sync, "cluster": self.cluster,
                "counts": self.counts(),
                "findings": [f.to_json() for f in self.findings]}


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyState:
    node_id: str
    state: ads_status.SyncState
    commit: str | None  # the commit the proxy's current snapshot was built from (None: unknown)


def compare(commit: str, git: Sequence[GitDocument], cluster: Mapping[str, Sequence[Manifest]] | None,
            proxies: Iterable[ProxyState]) -> Drift:
    """`cluster`: the watched objects by kind (Service, EndpointSlice and the Istio kinds), None without one."""
    found = list(_proxies(commit, proxies))
    if cluster is not None:
        found += [*_missing_services(git, cluster.get("Service", ())), *_unmanaged(git, cluster),
                  *_endpoints(git, cluster.get("EndpointSlice", ()))]
    return Drift(commit, cluster is not None, tuple(sorted(found)))


def _proxies(commit: str, proxies: Iterable[ProxyState]) -> Iterator[Finding]:
    for p in proxies:
        if p.state is not ads_status.SyncState.SYNCED:
            yield Finding(DriftKind.PROXY_NOT_SERVED, p.node_id, f"{p.state}: the served config is not ACKed")
        elif p.commit != commit:
            on = f"commit {p.commit[:12]}" if p.commit else "a config this server did not build"
            yield Finding(DriftKind.PROXY_NOT_SERVED, p.node_id, f"ACKed {on}, not {commit[:12]}")


def _key(doc: Manifest) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return (str(doc.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name")))


def _where(doc: GitDocument) -> str:
    kind, ns, name = _key(doc.data)
    return f"{kind} {ns}/{name} ({doc.file}:{doc.line})"


def _missing_services(git: Sequence[GitDocument], services: Sequence[Manifest]) -> Iterator[Finding]:
    have = {(ns, name) for _, ns, name in map(_key, services)}
    wanted: dict[tuple[str, str], list[str]] = {}
    for doc in git:
        for ref in _service_refs(doc.data):
            wanted.setdefault(ref, []).append(_where(doc))
    for (ns, name), by in sorted(wanted.items()):
        if (ns, name) not in have:
            yield Finding(DriftKind.SERVICE_MISSING, f"Service {ns}/{name}",
                          "referred to by " + ", ".join(sorted(set(by))))


def _service_refs(doc: Manifest) -> Iterator[tuple[str, str]]:
    kind, ns, name = _key(doc)
    if kind == "Service" and doc.get("apiVersion") == "v1":
        yield (ns, name)
        return
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    hosts: list[object] = []
    if kind == "VirtualService":
        hosts += spec.get("hosts") or []
        for section in ("http", "tcp", "tls"):
            for route in spec.get(section) or []:
                if isinstance(route, Mapping):
                    hosts += [(d.get("destination") or {}).get("host") for d in route.get("route") or []
                              if isinstance(d, Mapping)]
    elif kind == "DestinationRule":
        hosts.append(spec.get("host"))
    for host in hosts:
        if isinstance(host, str) and (ref := _kubernetes_service(host, ns)) is not None:
            yield ref


def _kubernetes_service(host: str, namespace: str) -> tuple[str, str] | None:
    if "*" in host or not host:
        return None
    if "." not in host:
        return (namespace, host)
    parts = host.split(".")
    if len(parts) >= 4 and parts[2] == "svc":
        return (parts[1], parts[0])
    return None


def _unmanaged(git: Sequence[GitDocument], cluster: Mapping[str, Sequence[Manifest]]) -> Iterator[Finding]:
    """Istio resources of the cluster that Git does not hold, or holds with another spec (the cluster's is then
    one meshward does not serve either: Git's is)."""
    held = {_key(d.data): d for d in git}
    for objects in cluster.values():
        for obj in objects:
            group = str(obj.get("apiVersion", "")).split("/")[0]
            if group not in ISTIO_GROUPS:
                continue
            kind, ns, name = key = _key(obj)
            doc = held.get(key)
            if doc is None:
                yield Finding(DriftKind.UNMANAGED_ISTIO, f"{kind} {ns}/{name}",
                              f"applied in the cluster ({obj.get('apiVersion')}), not in Git: meshward does not "
                              "serve it")
            elif (obj.get("spec") or {}) != (doc.data.get("spec") or {}):
                yield Finding(DriftKind.UNMANAGED_ISTIO, f"{kind} {ns}/{name}",
                              f"its spec in the cluster differs from Git's ({doc.file}:{doc.line}), which is what "
                              "meshward serves")


def _endpoints(git: Sequence[GitDocument], slices: Sequence[Manifest]) -> Iterator[Finding]:
    pinned = _addresses(d.data for d in git if _key(d.data)[0] == "EndpointSlice")
    live = _addresses(slices)
    for (ns, service), addresses in sorted(pinned.items()):
        actual = live.get((ns, service), frozenset())
        if actual != addresses:
            yield Finding(DriftKind.ENDPOINTS_DIFFER, f"Service {ns}/{service}",
                          f"Git pins {_list(addresses)}; the cluster has {_list(actual)}")


def _addresses(slices: Iterable[Manifest]) -> dict[tuple[str, str], frozenset[str]]:
    """(namespace, service) -> the endpoint addresses of its EndpointSlices."""
    out: dict[tuple[str, str], set[str]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue
        found = out.setdefault((str(meta.get("namespace") or "default"), str(service)), set())
        for endpoint in s.get("endpoints") or []:
            if isinstance(endpoint, Mapping):
                found.update(str(a) for a in endpoint.get("addresses") or [])
    return {k: frozenset(v) for k, v in out.items()}


def render(doc: Mapping[str, Any]) -> str:
    """`meshward drift`'s text: /status's drift section (`Drift.to_json`), one line per finding."""
    findings = doc.get("findings") or []
    compared = "proxies and cluster" if doc.get("cluster") else "proxies only (serve watches no cluster)"
    verdict = "in sync" if not findings else f"{len(findings)} finding(s)"
    width = max((len(f["kind"]) for f in findings), default=0)
    lines = [f"commit {str(doc.get('commit'))[:12]}, {compared}: {verdict}",
             *(f"{f['kind']:<{width}}  {f['object']}: {f['detail']}" for f in findings)]
    return "\n".join(lines) + "\n"


def _list(addresses: frozenset[str]) -> str:
    return ", ".join(sorted(addresses)) if addresses else "none"
