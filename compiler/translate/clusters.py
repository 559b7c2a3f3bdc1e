"""Clusters and load assignments: one outbound cluster per service port and per DestinationRule subset, inbound
clusters for the workload's own ports.

The discovery type follows the service's resolution as Pilot's cluster builder does: EDS for Kubernetes services
and STATIC service entries, STRICT_DNS for DNS, LOGICAL_DNS for DNS_ROUND_ROBIN, ORIGINAL_DST for NONE without
endpoints. Subset clusters get the endpoints whose labels the subset's labels select.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from compiler import model, naming
from compiler.api.destination_rule import ClientTLSSettings, LocalityLoadBalancerSetting, Subset
from compiler.reuse import tables
from compiler.translate import hooks, locality, peer, policy, scope
from compiler.translate.mesh import DestinationRuleEntry, Mesh, rule_lookups
from compiler.translate.named import first_by_name
from compiler.translate.services import Instance, Port, Resolution, Service
from compiler.trust import TrustDomain
from compiler.validate.hosts import is_ip

_DISCOVERY = {Resolution.EDS: model.Discovery.EDS, Resolution.DNS: model.Discovery.STRICT_DNS,
              Resolution.DNS_ROUND_ROBIN: model.Discovery.LOGICAL_DNS,
              Resolution.PASSTHROUGH: model.Discovery.ORIGINAL_DST}


def endpoints(service: Service, port: Port, selector: dict[str, str] | None,
              instances: Sequence[Instance] | None = None) -> tuple[model.Endpoint, ...]:
    """The endpoints of `service` on `port` that `selector` selects; `instances`, when given, are the ones it
    selects (worked out once for all ports)."""
    out = []
    for inst in service.instances if instances is None else instances:
        if instances is None and selector and not inst.selected_by(selector):
            continue
        number = inst.port_for(port.number)
        if number is None:
            continue
        out.append(model.Endpoint(inst.address, number, inst.weight, inst.locality,
                                  tls_mode=next((v for k, v in inst.labels if k == naming.TLS_MODE_LABEL), "")))
    if not out and service.dns_host and not selector:
        target = port.target_port if isinstance(port.target_port, int) and port.target_port else port.number
        out.append(model.Endpoint(service.dns_host, target))
    return tuple(sorted(set(out), key=lambda e: (e.address, e.port)))


class _Settings(NamedTuple):
    """What a cluster takes from its effective traffic policy, but TLS (whose SNI names the cluster)."""

    lb: model.LbPolicy
    size: int | None
    tcp: model.TcpOptions
    http: model.HttpOptions | None
    circuit_breakers: model.CircuitBreakers
    outlier: model.OutlierDetection | None
    tls: ClientTLSSettings | None  # the effective one
    locality: LocalityLoadBalancerSetting | None  # the effective one (compiler.translate.locality)


def _settings(rule: DestinationRuleEntry | None, subset: Subset | None, port: Port,
              defaults: policy.MeshDefaults) -> _Settings:
    eff = policy.effective(scope.traffic_policy(rule), subset.traffic_policy if subset is not None else None,
                           port.number)
    lb, size = policy.lb_policy(eff.load_balancer)
    return _Settings(lb, size, policy.tcp_options(eff.connection_pool, defaults),
                     policy.http_options(eff.connection_pool, port.protocol, defaults),
                     policy.circuit_breakers(eff.connection_pool), policy.outlier(eff.outlier_detection), eff.tls,
                     locality.effective(eff.load_balancer, defaults.locality))


def identities(service: Service, trust: TrustDomain) -> tuple[str, ...]:
    """The SPIFFE ids of the service's workloads (Pilot's PushContext.ServiceAccounts, with the trust domain's
    aliases): its endpoints' and the Kubernetes workloads' its selector picks, sorted."""
    accounts = {*service.service_accounts, *((i.workload[0] if i.workload else service.namespace, i.service_account)
                                             for i in service.instances if i.service_account)}
    return tuple(sorted({sid for namespace, account in accounts for sid in trust.identities(namespace, account)}))


def _gateway_credential(tls: ClientTLSSettings | None) -> bool:
    return tls is not None and bool(tls.credential_name) and tls.mode in ("SIMPLE", "MUTUAL")


def credentials_withheld(rule: DestinationRuleEntry | None) -> bool:
    """Whether a sidecar makes this rule's clusters without its credentialName TLS: Pilot gives a sidecar no TLS for
    a SIMPLE or MUTUAL credentialName of a rule without workloadSelector (cluster_tls.go
    buildUpstreamClusterTLSContext), so that a credential meant for gateways neither reaches nor holds up (its
    Secret missing from their namespace) every sidecar in the rule's scope. MW0309 / MW0310 report such rules."""
    if rule is None or rule.selector:
        return False
    policies = [p for p in (rule.traffic_policy, *(s.traffic_policy for s in rule.subsets)) if p is not None]
    return any(_gateway_credential(p.tls) or any(_gateway_credential(pl.tls) for pl in p.port_level_settings or ())
               for p in policies)


def _tls(service: Service, port: Port, subset: str, s: _Settings, eps: Sequence[model.Endpoint],
         discovery: model.Discovery, auto_mtls: bool, trust: TrustDomain,
         withheld: bool) -> tuple[model.UpstreamTls | None, bool]:
    """The rule's TLS, or else auto mTLS (cluster_tls.go applyUpstreamTLSSettings / buildUpstreamTLSSettings): not
    toward mesh-external services, ORIGINAL_DST clusters, or a namespace whose PeerAuthentication is DISABLE.
    Deliberate difference: only when some endpoint carries `tlsMode: istio` (Pilot adds the matches to every
    cluster; without such an endpoint they choose plaintext for every one, which is what no TLS gives).
    `withheld`: a credentialName TLS gives no TLS at all (`credentials_withheld`; the user's mode, so no auto
    mTLS either)."""
    if withheld and _gateway_credential(s.tls):
        return None, False
    if s.tls is not None or not auto_mtls or service.mesh_external or discovery is model.Discovery.ORIGINAL_DST:
        ids = identities(service, trust) if s.tls is not None and s.tls.mode == "ISTIO_MUTUAL" else ()
        return policy.upstream_tls(s.tls, host=service.host, port=port.number, subset=subset,
                                   protocol=port.protocol, identities=ids), False
    if not any(e.tls_mode == naming.ISTIO_TLS_MODE for e in eps):
        return None, False
    return policy.istio_mutual(host=service.host, port=port.number, subset=subset, protocol=port.protocol,
                               sans=identities(service, trust)), True


def outbound_cluster(service: Service, port: Port, rule: DestinationRuleEntry | None, subset: Subset | None = None,
                     *, settings: _Settings, instances: Sequence[Instance] | None = None,
                     auto_mtls: bool = True, trust: TrustDomain, credentials_withheld: bool = False,
                     origin: locality.Origin) -> tuple[model.Cluster, model.LoadAssignment | None]:
    """`settings` and `instances` (the subset's selected instances, when given) were worked out for this rule,
    subset and port (`_service_clusters` shares them between the clusters that have the same); `auto_mtls`: the
    destination's namespace does not DISABLE mTLS; `credentials_withheld`: a sidecar's clusters of a rule whose
    credentialName is for gateways; `origin`: the proxy's side that locality load balancing is relative to."""
    subset_name = subset.name if subset is not None else ""
    name = naming.outbound_cluster(port.number, subset_name, service.host)
    s = settings
    discovery = _DISCOVERY[service.resolution]
    eps = endpoints(service, port, dict(subset.labels or {}) if subset is not None else None, instances)
    sources = (service.source, *(rule.sources if rule is not None else ()))
    tls, auto = _tls(service, port, subset_name, s, eps, discovery, auto_mtls, trust, credentials_withheld)
    outlier = s.outlier is not None
    placed = locality.apply(s.locality, eps, outlier=outlier, proxy=origin,
                            instances=service.instances if instances is None else instances)
    cluster = model.Cluster(
        name=name, discovery=discovery, lb_policy=s.lb,
        minimum_ring_size=s.size if s.lb is model.LbPolicy.RING_HASH else None,
        maglev_table_size=s.size if s.lb is model.LbPolicy.MAGLEV else None,
        tcp=s.tcp, http=s.http, circuit_breakers=s.circuit_breakers, outlier=s.outlier,
        tls=tls, auto_mtls=auto, locality_weighted=locality.weighted(s.locality, outlier=outlier),
        endpoints=placed if discovery in (model.Discovery.STRICT_DNS, model.Discovery.LOGICAL_DNS) else (),
        dns_host=service.dns_host or (eps[0].address if eps and discovery != model.Discovery.EDS else ""),
        direction=model.TrafficDirection.OUTBOUND, service_host=service.host, port=port.number,
        subset=subset_name, sources=sources,
    )
    # EDS endpoints are socket addresses: a workload known by a DNS name (a WorkloadEntry meant for a DNS
    # ServiceEntry) cannot be one, and Envoy refuses the whole assignment ("malformed IP address")
    assignment = (model.LoadAssignment(name, tuple(e for e in placed if is_ip(e.address)))
                  if discovery == model.Discovery.EDS else None)
    return cluster, assignment


def outbound_clusters(mesh: Mesh, proxy: model.Proxy, services: Iterable[Service],
                      reuse: hooks.ClusterReuse = hooks.NO_REUSE
                      ) -> tuple[list[model.Cluster], list[model.LoadAssignment]]:
    clusters: list[model.Cluster] = []
    assignments: list[model.LoadAssignment] = []
    for service in services:
        made = _clusters_of_service(mesh, proxy, service, scope.destination_rule(mesh, proxy, service), reuse,
                                    sidecar=False)
        clusters.extend(made[0])
        assignments.extend(made[1])
    return clusters, assignments


def _clusters_of_service(mesh: Mesh, proxy: model.Proxy, service: Service, rule: DestinationRuleEntry | None,
                         reuse: hooks.ClusterReuse, *, sidecar: bool) -> _Made:
    """A service's clusters depend on nothing but the service, its rule, whether its namespace disables mTLS,
    (for a rule with a credential for gateways only) whether they are a sidecar's, and the proxy's locality where
    locality load balancing may weigh them (`Mesh.lb_origin`)."""
    auto = service.namespace not in peer.disabled_namespaces(mesh)
    withheld = sidecar and credentials_withheld(rule)
    where = mesh.lb_origin(proxy)
    return reuse.service_clusters(service, rule, auto, withheld, where, functools.partial(
        _service_clusters, service, rule, auto, mesh.inputs.trust, mesh_defaults(mesh), withheld, where))


def mesh_defaults(mesh: Mesh) -> policy.MeshDefaults:
    """The revision's MeshConfig cluster defaults, worked out once (a MeshConfig change starts a build cold, so
    clusters carried from the last revision were made with the same)."""
    return mesh.memo(("cluster-defaults",), lambda: policy.mesh_defaults(mesh.config))


_Made = tuple[tuple[model.Cluster, ...], tuple[model.LoadAssignment, ...]]


def outbound_tables(mesh: Mesh, proxy: model.Proxy, services: Sequence[Service],
                    reuse: hooks.ClusterReuse = hooks.NO_REUSE) -> _Made:
    """`outbound_clusters`, one per name and sorted by name (a sidecar's; shared by the sidecars of its scope)."""
    return reuse.outbound_tables(mesh.outbound_key(proxy), services, _Recipe(mesh, proxy, reuse))


@dataclasses.dataclass(frozen=True, slots=True)
class _Recipe:
    """What a sidecar's outbound tables are made of (compiler.reuse.tables.Recipe): per service, its clusters and
    load assignments under the rule it looks up; they also depend on the namespaces that disable mTLS."""

    mesh: Mesh
    proxy: model.Proxy
    reuse: hooks.ClusterReuse

    @property
    def lookups(self) -> tables.Keyed:
        return rule_lookups(self.mesh)

    @property
    def fixed(self) -> tuple[object, ...]:
        return (peer.disabled_namespaces(self.mesh),)

    @property
    def names(self) -> tuple[Callable[[model.Cluster], str], Callable[[model.LoadAssignment], str]]:
        return _cluster_name, _assignment_name

    def key(self, service: Service) -> str:
        return service.host

    def depends(self, service: Service) -> DestinationRuleEntry | None:
        return scope.destination_rule(self.mesh, self.proxy, service)

    def part(self, service: Service, rule: DestinationRuleEntry | None) -> _Made:
        return _clusters_of_service(self.mesh, self.proxy, service, rule, self.reuse, sidecar=True)

    def tables(self, parts: Sequence[_Made]) -> _Made:
        return (first_by_name([c for m in parts for c in m[0]]),
                first_by_name([a for m in parts for a in m[1]], "cluster_name"))


def _cluster_name(c: model.Cluster) -> str:
    return c.name


def _assignment_name(a: model.LoadAssignment) -> str:
    return a.cluster_name


def _service_clusters(service: Service, rule: DestinationRuleEntry | None, auto_mtls: bool, trust: TrustDomain,
                      defaults: policy.MeshDefaults, credentials_withheld: bool, origin: locality.Origin) -> _Made:
    if service.alias_of:  # Pilot's buildOutboundClusters skips aliases: routes to them use the concrete's
        return (), ()
    clusters: list[model.Cluster] = []
    assignments: list[model.LoadAssignment] = []
    subsets = (None, *(rule.subsets if rule is not None else ()))
    # per subset, the instances its labels select; per port and subset policy, the settings (subsets without a
    # policy of their own have the service's): worked out once, not once per cluster
    chosen = [None if sub is None or not sub.labels else
              tuple(i for i in service.instances if i.selected_by(dict(sub.labels))) for sub in subsets]
    for port in service.ports:
        shared: dict[int, _Settings] = {}
        for subset, instances in zip(subsets, chosen, strict=True):
            own = subset.traffic_policy if subset is not None else None
            settings = shared.get(id(own))
            if settings is None:
                settings = shared[id(own)] = _settings(rule, subset, port, defaults)
            cluster, assignment = outbound_cluster(service, port, rule, subset, settings=settings,
                                                   instances=instances, auto_mtls=auto_mtls, trust=trust,
                                                   credentials_withheld=credentials_withheld,
                                                   origin=origin)
            clusters.append(cluster)
            if assignment is not None:
                assignments.append(assignment)
    return tuple(clusters), tuple(assignments)


def inbound_cluster(port: int, address: str, target: int, protocol: model.Protocol,
                    source: model.Source | None = None, *, connect_timeout_ms: int) -> model.Cluster:
    """A local cluster to the application: STATIC, one endpoint (127.0.0.1:targetPort or defaultEndpoint), with
    MeshConfig's connect timeout (Pilot applies the default connection pool to inbound clusters too)."""
    return model.Cluster(
        name=naming.inbound_cluster(port), discovery=model.Discovery.STATIC, lb_policy=model.LbPolicy.ROUND_ROBIN,
        tcp=model.TcpOptions(connect_timeout_ms),
        http=model.HttpOptions(http2=protocol.is_http2) if protocol.is_http else None,
        circuit_breakers=policy.circuit_breakers(None), endpoints=(model.Endpoint(address, target),),
        direction=model.TrafficDirection.INBOUND, port=port, sources=(source,) if source is not None else (),
    )


def parse_endpoint(text: str) -> tuple[str, int] | None:
    """Sidecar ingress defaultEndpoint `IP:PORT` (or `[v6]:PORT`); unix sockets are not supported."""
    if text.startswith("unix://"):
        return None
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]") or naming.LOCALHOST, int(port)
