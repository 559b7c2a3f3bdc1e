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
from typing import NamedTuple, TypeVar

from compiler import model, naming
from compiler.api.destination_rule import ClientTLSSettings, Subset
from compiler.reuse.carry import Tag
from compiler.reuse.patch import patch_sorted
from compiler.translate import peer, policy, scope
from compiler.translate.mesh import DestinationRuleEntry, Mesh, RuleTables, changed_rule_hosts, rule_tables
from compiler.translate.named import first_by_name
from compiler.translate.services import Instance, Port, Resolution, Service
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


def _settings(rule: DestinationRuleEntry | None, subset: Subset | None, port: Port) -> _Settings:
    eff = policy.effective(scope.traffic_policy(rule), subset.traffic_policy if subset is not None else None,
                           port.number)
    lb, size = policy.lb_policy(eff.load_balancer)
    return _Settings(lb, size, policy.tcp_options(eff.connection_pool),
                     policy.http_options(eff.connection_pool, port.protocol),
                     policy.circuit_breakers(eff.connection_pool), policy.outlier(eff.outlier_detection), eff.tls)


def identities(service: Service) -> tuple[str, ...]:
    """The SPIFFE ids of the service's workloads (Pilot's PushContext.ServiceAccounts), sorted."""
    return tuple(sorted({naming.spiffe_id(i.workload[0] if i.workload else service.namespace, i.service_account)
                         for i in service.instances if i.service_account}))


def _tls(service: Service, port: Port, subset: str, s: _Settings, eps: Sequence[model.Endpoint],
         discovery: model.Discovery, auto_mtls: bool) -> tuple[model.UpstreamTls | None, bool]:
    """The rule's TLS, or else auto mTLS (cluster_tls.go applyUpstreamTLSSettings / buildUpstreamTLSSettings): not
    toward mesh-external services, ORIGINAL_DST clusters, or a namespace whose PeerAuthentication is DISABLE.
    Deliberate difference: only when some endpoint carries `tlsMode: istio` (Pilot adds the matches to every
    cluster; without such an endpoint they choose plaintext for every one, which is what no TLS gives)."""
    if s.tls is not None or not auto_mtls or service.mesh_external or discovery is model.Discovery.ORIGINAL_DST:
        ids = identities(service) if s.tls is not None and s.tls.mode == "ISTIO_MUTUAL" else ()
        return policy.upstream_tls(s.tls, host=service.host, port=port.number, subset=subset,
                                   protocol=port.protocol, identities=ids), False
    if not any(e.tls_mode == naming.ISTIO_TLS_MODE for e in eps):
        return None, False
    return policy.istio_mutual(host=service.host, port=port.number, subset=subset, protocol=port.protocol,
                               sans=identities(service)), True


def outbound_cluster(service: Service, port: Port, rule: DestinationRuleEntry | None, subset: Subset | None = None,
                     *, settings: _Settings | None = None, instances: Sequence[Instance] | None = None,
                     auto_mtls: bool = True) -> tuple[model.Cluster, model.LoadAssignment | None]:
    """`settings` and `instances` (the subset's selected instances), when given, were worked out for this rule,
    subset and port (`_service_clusters` shares them between the clusters that have the same); `auto_mtls`: the
    destination's namespace does not DISABLE mTLS."""
    subset_name = subset.name if subset is not None else ""
    name = naming.outbound_cluster(port.number, subset_name, service.host)
    s = settings if settings is not None else _settings(rule, subset, port)
    discovery = _DISCOVERY[service.resolution]
    eps = endpoints(service, port, dict(subset.labels or {}) if subset is not None else None, instances)
    sources = (service.source, *(rule.sources if rule is not None else ()))
    tls, auto = _tls(service, port, subset_name, s, eps, discovery, auto_mtls)
    cluster = model.Cluster(
        name=name, discovery=discovery, lb_policy=s.lb,
        minimum_ring_size=s.size if s.lb is model.LbPolicy.RING_HASH else None,
        maglev_table_size=s.size if s.lb is model.LbPolicy.MAGLEV else None,
        tcp=s.tcp, http=s.http, circuit_breakers=s.circuit_breakers, outlier=s.outlier,
        tls=tls, auto_mtls=auto,
        endpoints=eps if discovery in (model.Discovery.STRICT_DNS, model.Discovery.LOGICAL_DNS) else (),
        dns_host=service.dns_host or (eps[0].address if eps and discovery != model.Discovery.EDS else ""),
        direction=model.TrafficDirection.OUTBOUND, service_host=service.host, port=port.number,
        subset=subset_name, sources=sources,
    )
    # EDS endpoints are socket addresses: a workload known by a DNS name (a WorkloadEntry meant for a DNS
    # ServiceEntry) cannot be one, and Envoy refuses the whole assignment ("malformed IP address")
    assignment = (model.LoadAssignment(name, tuple(e for e in eps if is_ip(e.address)))
                  if discovery == model.Discovery.EDS else None)
    return cluster, assignment


def outbound_clusters(mesh: Mesh, proxy: model.Proxy, services: Iterable[Service]
                      ) -> tuple[list[model.Cluster], list[model.LoadAssignment]]:
    clusters: list[model.Cluster] = []
    assignments: list[model.LoadAssignment] = []
    for service in services:
        made = _carried_clusters(mesh, service, scope.destination_rule(mesh, proxy, service))
        clusters.extend(made[0])
        assignments.extend(made[1])
    return clusters, assignments


def _carried_clusters(mesh: Mesh, service: Service, rule: DestinationRuleEntry | None) -> _Made:
    """A service's clusters depend on nothing but the service, its rule and whether its namespace disables mTLS:
    computed once for every proxy, and (unchanged index objects being the same objects) reused by the next
    revision."""
    auto = service.namespace not in peer.disabled_namespaces(mesh)
    return mesh.carry.by_identity(Tag.CLUSTERS, (service, rule, auto), None,
                                  functools.partial(_service_clusters, service, rule, auto))


@dataclasses.dataclass(frozen=True, slots=True)
class _Tables:
    """A sidecar's outbound clusters and load assignments with what they were made from, kept for the next
    revision: while the services and the rule table are the same objects, so are the tables; after a change,
    the services it did not touch keep their clusters and their places in the sorted tables."""

    rules_tables: RuleTables
    mtls_disabled: frozenset[str]  # peer.disabled_namespaces when made: a change there rebuilds the tables
    services: tuple[Service, ...]
    rules: tuple[DestinationRuleEntry | None, ...]  # per service, the rule its clusters were made with
    made: tuple[_Made, ...]  # per service
    clusters: tuple[model.Cluster, ...]
    assignments: tuple[model.LoadAssignment, ...]


_Made = tuple[tuple[model.Cluster, ...], tuple[model.LoadAssignment, ...]]


def outbound_tables(mesh: Mesh, proxy: model.Proxy, services: Sequence[Service]
                    ) -> tuple[tuple[model.Cluster, ...], tuple[model.LoadAssignment, ...]]:
    """`outbound_clusters`, one per name and sorted by name; the previous revision's tables when nothing they are
    made from changed (a commit that changed a VirtualService), else patched or rebuilt from their kept parts."""
    tables = mesh.carry.derive(Tag.OUTBOUND_TABLES, (), mesh.outbound_key(proxy), _Tables,
                               lambda before: _kept_or_made(mesh, proxy, services, before))
    return tables.clusters, tables.assignments


def _kept_or_made(mesh: Mesh, proxy: model.Proxy, services: Sequence[Service], before: _Tables | None) -> _Tables:
    if before is not None and before.mtls_disabled is not peer.disabled_namespaces(mesh):
        before = None
    if (before is not None and before.rules_tables[0] is mesh.destination_rules
            and len(before.services) == len(services)
            and all(a is b for a, b in zip(before.services, services, strict=True))):
        return before
    return _tables(mesh, proxy, services, before)


def _tables(mesh: Mesh, proxy: model.Proxy, services: Sequence[Service], before: _Tables | None) -> _Tables:
    # a service at the same place, the same object, whose host no rule change reached, keeps its rule and clusters
    aligned = before is not None and len(before.services) == len(services)
    ruled = changed_rule_hosts(before.rules_tables, mesh) if before is not None else None
    earlier: dict[int, tuple[Service, DestinationRuleEntry | None, _Made]] | None = None
    rules: list[DestinationRuleEntry | None] = []
    made: list[_Made] = []
    for i, service in enumerate(services):
        if aligned and before is not None and before.services[i] is service and ruled is not None \
                and service.host not in ruled:
            rules.append(before.rules[i])
            made.append(before.made[i])
            continue
        if earlier is None:
            earlier = {id(s): (s, r, m) for s, r, m in zip(before.services, before.rules, before.made, strict=True)} \
                if before is not None else {}
        seen = earlier.get(id(service))
        if seen is not None and seen[0] is not service:
            seen = None
        rule = scope.destination_rule(mesh, proxy, service)
        made.append(seen[2] if seen is not None and seen[1] is rule else _carried_clusters(mesh, service, rule))
        rules.append(rule)
    patched = _patched(before, made) if before is not None else None
    clusters, assignments = patched or (first_by_name([c for m in made for c in m[0]]),
                                        first_by_name([a for m in made for a in m[1]], "cluster_name"))
    return _Tables(rule_tables(mesh), peer.disabled_namespaces(mesh), tuple(services), tuple(rules), tuple(made),
                   clusters, assignments)


def _patched(before: _Tables, made: Sequence[_Made]
             ) -> tuple[tuple[model.Cluster, ...], tuple[model.LoadAssignment, ...]] | None:
    """The sorted tables of `before` with the changed services' clusters and load assignments put in place of
    theirs (compiler.reuse.patch), else None: the tables are sorted again."""
    clusters = patch_sorted(before.clusters, _cluster_name, before.made, made,
                            lambda changed: _swaps(before.made, made, changed, _clusters_of))
    assignments = patch_sorted(before.assignments, _assignment_name, before.made, made,
                               lambda changed: _swaps(before.made, made, changed, _assignments_of)
                               ) if clusters is not None else None
    return (tuple(clusters), tuple(assignments)) if clusters is not None and assignments is not None else None


_Item = TypeVar("_Item", model.Cluster, model.LoadAssignment)


def _swaps(old: Sequence[_Made], new: Sequence[_Made], changed: list[int], part: Callable[[_Made], tuple[_Item, ...]]
           ) -> list[tuple[_Item, _Item]] | None:
    """Each changed service's items with its earlier items, place by place (None when it has more or fewer)."""
    pairs: list[tuple[_Item, _Item]] = []
    for i in changed:
        was, now = part(old[i]), part(new[i])
        if len(was) != len(now):
            return None
        pairs.extend(zip(was, now, strict=True))
    return pairs


def _clusters_of(made: _Made) -> tuple[model.Cluster, ...]:
    return made[0]


def _assignments_of(made: _Made) -> tuple[model.LoadAssignment, ...]:
    return made[1]


def _cluster_name(c: model.Cluster) -> str:
    return c.name


def _assignment_name(a: model.LoadAssignment) -> str:
    return a.cluster_name


def _service_clusters(service: Service, rule: DestinationRuleEntry | None, auto_mtls: bool
                      ) -> tuple[tuple[model.Cluster, ...], tuple[model.LoadAssignment, ...]]:
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
                settings = shared[id(own)] = _settings(rule, subset, port)
            cluster, assignment = outbound_cluster(service, port, rule, subset, settings=settings,
                                                   instances=instances, auto_mtls=auto_mtls)
            clusters.append(cluster)
            if assignment is not None:
                assignments.append(assignment)
    return tuple(clusters), tuple(assignments)


def inbound_cluster(port: int, address: str, target: int, protocol: model.Protocol,
                    source: model.Source | None = None) -> model.Cluster:
    """A local cluster to the application: STATIC, one endpoint (127.0.0.1:targetPort or defaultEndpoint)."""
    return model.Cluster(
        name=naming.inbound_cluster(port), discovery=model.Discovery.STATIC, lb_policy=model.LbPolicy.ROUND_ROBIN,
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
