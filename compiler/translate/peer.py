"""PeerAuthentication -> the mTLS mode of each inbound port of a sidecar, and its inbound chains for that mode.

Which policy counts (pilot/pkg/security/authn/policy_applier.go `ComposePeerAuthentication`, fed by
PushContext's GetPoliciesForWorkload): the oldest selector-less one of the root namespace (mesh), the oldest
selector-less one of the workload's namespace (namespace), and the oldest one there whose selector matches the
workload (workload; a root-namespace policy with a selector counts for nothing). Each level's mode overrides the
one above unless UNSET; `portLevelMtls` of the workload policy sets single ports, UNSET there taking the
workload's mode. Istio's default at the top is PERMISSIVE.

With no PeerAuthentication applying at all, that default holds when the mesh has identities (`mesh_identity`:
`serve --ca-dir`, every proxy with its agent); otherwise the inbound chains stay plaintext only (the plaintext half
of PERMISSIVE, which is all a proxy without an agent can serve: a TLS chain would keep its listener waiting for a
certificate nobody serves). Any policy, even one saying UNSET, gives Istio's chains (pilot/pkg/networking/core/listener_inbound.go and
pilot/pkg/security/authn/policy_applier.go InboundMTLSSettings): STRICT matches only `transport_protocol: tls`
and requires a client certificate validated against ROOTCA whose URI SAN is in the mesh's trust domain or an alias
(`spiffe://TD/` prefixes, Pilot's TrustDomainsForValidation); PERMISSIVE adds a `raw_buffer` chain; DISABLE is
plaintext only. HTTP chains of a mTLS-capable port tell the application the peer's identity
(`x-forwarded-client-cert` with its URI SAN) and drop one a client sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from compiler import model, naming
from compiler.api import security as sec
from compiler.resources import Resource
from compiler.reuse.carry import Tag
from compiler.translate import specs
from compiler.translate.mesh import Mesh
from compiler.translate.scope import selects
from compiler.trust import TrustDomain

KIND = "PeerAuthentication"


@dataclasses.dataclass(frozen=True, slots=True)
class InboundMtls:
    """A workload's composed PeerAuthentication: its mode and the ports that differ."""

    mode: model.MtlsMode
    ports: tuple[tuple[int, model.MtlsMode], ...] = ()

    def for_port(self, port: int) -> model.MtlsMode:
        return dict(self.ports).get(port, self.mode)


def _selector(res: Resource) -> dict[str, str]:
    """The policy's matchLabels; empty for a namespace- or mesh-wide policy."""
    selector = specs.peer_authentication(res).selector
    return dict(selector.match_labels or {}) if selector is not None else {}


def _by_namespace(mesh: Mesh) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for res in mesh.resources.of_kind(KIND):
        out.setdefault(res.namespace, []).append(res)
    return out


def _oldest(found: Sequence[Resource]) -> tuple[Resource, ...]:
    return (min(found, key=lambda r: (r.created, r.name)),) if found else ()


def policies_for(mesh: Mesh, proxy: model.Proxy) -> tuple[Resource, ...]:
    """The mesh, namespace and workload policies of the proxy, in that order (each level's oldest)."""
    grouped = mesh.memo((Tag.SECURITY_BY_NAMESPACE, KIND), lambda: _by_namespace(mesh))
    labels = proxy.label_map()

    mesh_level = _oldest([r for r in grouped.get(mesh.root_namespace, ()) if not _selector(r)])
    if proxy.namespace == mesh.root_namespace:
        return mesh_level
    own = grouped.get(proxy.namespace, ())
    namespace_level = _oldest([r for r in own if not _selector(r)])
    workload_level = _oldest([r for r in own if _selector(r) and selects(_selector(r), labels)])
    return (*mesh_level, *namespace_level, *workload_level)


def disabled_namespaces(mesh: Mesh) -> frozenset[str]:
    """The namespaces toward which clients send no auto mTLS: Pilot's BestEffortInferServiceMTLSMode
    (pilot/pkg/model/push_context.go) takes a service's mode from its namespace's policy, else the mesh's,
    workload policies aside. The same object from one revision to the next while unchanged (clusters carry on it)."""
    def disabled() -> frozenset[str]:
        grouped = mesh.memo((Tag.SECURITY_BY_NAMESPACE, KIND), lambda: _by_namespace(mesh))
        level = {ns: _mode(specs.peer_authentication(r).mtls) for ns, found in grouped.items()
                 for r in _oldest([r for r in found if not _selector(r)])}
        root = level.pop(mesh.root_namespace, None)
        # every namespace only when the mesh disables mTLS (listing them walks the whole revision)
        candidates = mesh.resources.namespaces() | level.keys() if root is model.MtlsMode.DISABLE else level.keys()
        return frozenset(ns for ns in candidates if (level.get(ns) or root) is model.MtlsMode.DISABLE)
    return mesh.memo((Tag.MTLS_DISABLED,), lambda: mesh.carry.mtls_disabled(disabled()))


def _mode(mtls: sec.MutualTLS | None) -> model.MtlsMode | None:
    """None for UNSET (or absent): inherit."""
    if mtls is None or mtls.mode in (None, "UNSET"):
        return None
    return model.MtlsMode(mtls.mode)


def compose(policies: Sequence[Resource], *, mesh_identity: bool = False) -> InboundMtls | None:
    """None when no policy applies in a mesh without identities (plaintext chains, as before any
    PeerAuthentication); Istio's PERMISSIVE when none applies in one with them."""
    if not policies:
        return InboundMtls(model.MtlsMode.PERMISSIVE) if mesh_identity else None
    mode = model.MtlsMode.PERMISSIVE
    for res in policies:
        mode = _mode(specs.peer_authentication(res).mtls) or mode
    workload = policies[-1] if _selector(policies[-1]) else None
    levels = specs.peer_authentication(workload).port_level_mtls if workload is not None else None
    ports = tuple(sorted((int(port), _mode(mtls) or mode) for port, mtls in (levels or {}).items()))
    return InboundMtls(mode, ports)


def _mutual(chain: model.FilterChain, trust: TrustDomain, *, plaintext: bool) -> model.FilterChain:
    f = chain.filter
    if isinstance(f, model.HttpFilterChain):
        f = dataclasses.replace(f, forward_client_cert=True)
    if plaintext:
        return dataclasses.replace(chain, name=f"{chain.name}|plaintext", filter=f, transport_protocol="raw_buffer")
    tls = model.DownstreamTls(mode="ISTIO_MUTUAL", credential_secret=naming.ISTIO_DEFAULT_SECRET,
                              ca_secret=naming.ISTIO_ROOT_SECRET, secrets_from=model.SecretSource.AGENT,
                              alpn=("h2", "http/1.1") if isinstance(f, model.HttpFilterChain) else (),
                              san_prefixes=trust.uri_prefixes())
    return dataclasses.replace(chain, filter=f, transport_protocol="tls", tls=tls)


def _chains(chain: model.FilterChain, mode: model.MtlsMode, trust: TrustDomain) -> tuple[model.FilterChain, ...]:
    if mode is model.MtlsMode.STRICT:
        return (_mutual(chain, trust, plaintext=False),)
    if mode is model.MtlsMode.PERMISSIVE:
        return _mutual(chain, trust, plaintext=False), _mutual(chain, trust, plaintext=True)
    return (chain,)


def with_mtls(listeners: Sequence[model.Listener], mtls: InboundMtls | None,
              trust: TrustDomain) -> list[model.Listener]:
    """The inbound listeners with the chains of their port's mode; a mTLS chain accepts peers of the mesh's trust
    domain and its aliases only."""
    if mtls is None:
        return list(listeners)
    return [dataclasses.replace(listener, filter_chains=tuple(
        c for chain in listener.filter_chains for c in _chains(chain, mtls.for_port(listener.port), trust)))
        for listener in listeners]

