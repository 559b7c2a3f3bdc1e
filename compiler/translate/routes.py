"""VirtualService HTTP routes -> model routes, with Pilot's defaults.

Pilot's rules kept here: a route with several matches becomes one Envoy route per match; matches for another port,
gateway, source namespace or source labels are dropped; routes after a catch-all are unreachable and dropped; the
timeout defaults to 0 (disabled) and the retry policy to 2 attempts on connect-failure,refused-stream,unavailable,
cancelled,retriable-status-codes; a destination without a port takes the host's only port, else the listener's.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable

from compiler import model, naming, units
from compiler.api.virtual_service import (
    CorsPolicy,
    Destination,
    HeaderOperations,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRedirect,
    HTTPRetry,
    HTTPRoute,
    L4MatchAttributes,
    Percent,
    StringMatch,
    TLSMatchAttributes,
)
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource
from compiler.reuse.carry import Tag
from compiler.translate import hooks, policy, scope
from compiler.translate.mesh import DestinationRuleEntry, Mesh, VirtualServiceEntry
from compiler.translate.services import Service

GRPC_CODES = {"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
              "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
              "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
              "DATA_LOSS": 15, "UNAUTHENTICATED": 16}

# the kinds of mesh lookups routes make (what `look` answers): a host's service, a service's rule; and a read of
# the listener port that decides the routes
SERVICE, RULE, PORT = "service", "rule", "port"
Report = Callable[[str, object, object], None]  # kind, argument, found


@dataclasses.dataclass
class Context:
    """Who the routes are for: the proxy, the listener port and the gateway (`mesh` for sidecars)."""

    mesh: Mesh
    proxy: model.Proxy
    port: int
    gateway: str = "mesh"
    notes: list[Diagnostic] = dataclasses.field(default_factory=list)
    hosts_used: set[str] = dataclasses.field(default_factory=set)  # destination hosts, to build their clusters
    # told of each lookup the routes make (None: nobody asks): how a reuse layer learns what they depend on
    report: Report | None = None
    reuse: hooks.RouteReuse = hooks.NO_REUSE  # what routes and route tables may take from earlier ones

    def service_for(self, host: str) -> Service | None:
        found = self.mesh.service_for(host, self.proxy.namespace)
        if self.report is not None:
            self.report(SERVICE, host, found)
        return found

    def rule_for(self, service: Service) -> DestinationRuleEntry | None:
        found = scope.destination_rule(self.mesh, self.proxy, service)
        if self.report is not None:
            self.report(RULE, service, found)
        return found

    def listener_port(self) -> int:
        """`port`, where it decides a VirtualService's routes (a match on it, a destination that takes it)."""
        if self.report is not None:
            self.report(PORT, None, self.port)
        return self.port


def look(ctx: Context, kind: str, arg: object) -> object:
    """What a lookup of `kind` finds in this context (the reuse layer asks again to tell whether routes hold)."""
    if kind == SERVICE:
        assert isinstance(arg, str)
        return ctx.mesh.service_for(arg, ctx.proxy.namespace)
    assert kind == RULE and isinstance(arg, Service)
    return scope.destination_rule(ctx.mesh, ctx.proxy, arg)


# -- destinations ------------------------------------------------------------------------------------------------


def destination(ctx: Context, namespace: str, dest: Destination) -> tuple[str, model.HashPolicy | None]:
    """Cluster name for a Destination (Pilot's GetDestinationCluster) and the consistent-hash policy its rule sets."""
    host = naming.resolve_host(dest.host, namespace)
    service = ctx.service_for(host)
    cluster_host = service.alias_of or host if service is not None else host  # an alias routes to its concrete
    ctx.hosts_used.add(cluster_host)
    if dest.port is not None and dest.port.number:
        port = dest.port.number
    elif service is not None and len(service.ports) == 1:
        port = service.ports[0].number
    else:
        port = ctx.listener_port()
    subset = dest.subset or ""
    return naming.outbound_cluster(port, subset, cluster_host), _hash_policy(ctx, service, subset, port)


def _hash_policy(ctx: Context, service: Service | None, subset: str, port: int) -> model.HashPolicy | None:
    if service is None:
        return None
    rule = ctx.rule_for(service)
    if rule is None:
        return None
    # once per rule, subset and port in a revision (every route to the host asks; the mesh keeps the rule alive)
    return ctx.mesh.memo((Tag.HASH_POLICY, id(rule), subset, port), lambda: _rule_hash_policy(rule, subset, port))


def _rule_hash_policy(rule: DestinationRuleEntry, subset: str, port: int) -> model.HashPolicy | None:
    sub = rule.subset(subset) if subset else None
    eff = policy.effective(rule.traffic_policy, sub.traffic_policy if sub is not None else None, port)
    return policy.hash_policy(eff.load_balancer)


# -- matches -------------------------------------------------------------------------------------------------------


def string_match(m: StringMatch | None, *, ignore_case: bool = False) -> model.StringMatch:
    if m is None:
        return model.StringMatch(model.MatchKind.PRESENT)
    if m.exact is not None:
        return model.StringMatch(model.MatchKind.EXACT, m.exact, ignore_case)
    if m.prefix is not None:
        return model.StringMatch(model.MatchKind.PREFIX, m.prefix, ignore_case)
    if m.regex is not None:
        return model.StringMatch(model.MatchKind.REGEX, m.regex, ignore_case)
    return model.StringMatch(model.MatchKind.PRESENT)


def applies(ctx: Context, namespace: str, m: HTTPMatchRequest | L4MatchAttributes | TLSMatchAttributes) -> bool:
    """Whether a match's proxy-side conditions (port, gateways, source namespace and labels) hold for this proxy;
    HTTP, TCP and TLS matches share these fields."""
    if m.port and m.port != ctx.listener_port():
        return False
    if m.gateways and ctx.gateway not in {naming.resolve_gateway(g, namespace) for g in m.gateways}:
        return False
    if m.source_namespace and m.source_namespace != ctx.proxy.namespace:
        return False
    return scope.selects(m.source_labels, ctx.proxy.label_map())


def route_match(m: HTTPMatchRequest) -> model.RouteMatch:
    path = model.RouteMatch().path if m.uri is None else string_match(m.uri, ignore_case=bool(m.ignore_uri_case))
    if path.kind is model.MatchKind.PRESENT:
        path = model.RouteMatch().path
    headers = [model.HeaderMatch(k.lower(), string_match(v)) for k, v in (m.headers or {}).items()]
    for pseudo, value in ((":method", m.method), (":authority", m.authority), (":scheme", m.scheme)):
        if value is not None:
            headers.append(model.HeaderMatch(pseudo, string_match(value)))
    headers.extend(model.HeaderMatch(k.lower(), string_match(v), invert=True)
                   for k, v in (m.without_headers or {}).items())
    query = tuple(model.QueryMatch(k, string_match(v)) for k, v in (m.query_params or {}).items())
    return model.RouteMatch(path, tuple(headers), query)


def is_catch_all(match: model.RouteMatch) -> bool:
    return match == model.RouteMatch() or (
        match.path in (model.StringMatch(model.MatchKind.REGEX, ".*"), model.StringMatch(model.MatchKind.REGEX, "*"))
        and not match.headers and not match.query)


# -- actions -------------------------------------------------------------------------------------------------------


def header_ops(ops: HeaderOperations | None) -> model.HeaderOps:
    if ops is None:
        return model.HeaderOps()
    return model.HeaderOps(set=tuple((ops.set or {}).items()), add=tuple((ops.add or {}).items()),
                           remove=tuple(ops.remove or ()))


# Istio's DefaultPolicy (retry.go): 2 attempts, no status codes (503 left out since 1.24, istio/istio#50506)
DEFAULT_RETRY = model.RetryPolicy(attempts=2)


def retry_policy(retries: HTTPRetry | None) -> model.RetryPolicy | None:
    if retries is None:
        return DEFAULT_RETRY
    if not retries.attempts:
        return None  # attempts 0: retries disabled
    conditions: list[str] = []
    codes: list[int] = []
    for part in (retries.retry_on or "").split(","):
        part = part.strip()
        if part.isdigit():
            codes.append(int(part))
        elif part and part not in conditions:
            conditions.append(part)
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    per_try = units.duration_ms(retries.per_try_timeout) if retries.per_try_timeout else None
    if not conditions:  # retryOn unset: Istio keeps its default conditions and codes
        conditions, codes = [DEFAULT_RETRY.retry_on], list(DEFAULT_RETRY.retriable_status_codes)
    # pilot/pkg/networking/core/route/retry/retry.go ConvertPolicy: retryIgnorePreviousHosts false drops the
    # previous-hosts predicate, backoff sets the base interval
    return model.RetryPolicy(retries.attempts, per_try, ",".join(conditions), tuple(codes),
                             bool(retries.retry_remote_localities),
                             ignore_previous_hosts=retries.retry_ignore_previous_hosts is not False,
                             backoff_ms=units.duration_ms(retries.backoff) if retries.backoff else None)


def _percent(p: Percent | None, legacy: int | None = None) -> float:
    if p is not None and p.value is not None:
        return float(p.value)
    return float(legacy) if legacy is not None else 100.0


def fault(f: HTTPFaultInjection | None) -> model.Fault | None:
    if f is None:
        return None
    delay, abort = f.delay, f.abort
    delay_ms = units.duration_ms(delay.fixed_delay) if delay is not None and delay.fixed_delay else None
    grpc = None
    if abort is not None and abort.grpc_status:
        status = abort.grpc_status.upper()
        grpc = int(status) if status.isdigit() else GRPC_CODES.get(status)
    return model.Fault(
        delay_ms=delay_ms, delay_percent=_percent(delay.percentage, delay.percent) if delay is not None else 100.0,
        abort_status=abort.http_status if abort is not None and abort.http_status else None,
        abort_grpc_status=grpc, abort_percent=_percent(abort.percentage) if abort is not None else 100.0,
    )


def cors(c: CorsPolicy | None) -> model.Cors | None:
    if c is None:
        return None
    origins = [string_match(o) for o in c.allow_origins or ()]
    origins.extend(model.StringMatch(model.MatchKind.EXACT, o) for o in c.allow_origin or ())
    return model.Cors(
        allow_origins=tuple(origins), allow_methods=tuple(c.allow_methods or ()),
        allow_headers=tuple(c.allow_headers or ()), expose_headers=tuple(c.expose_headers or ()),
        max_age_s=units.duration_ms(c.max_age) // 1000 if c.max_age else None, allow_credentials=c.allow_credentials,
        forward_unmatched_preflights=c.unmatched_preflights != "IGNORE",
    )


def redirect(r: HTTPRedirect) -> model.Redirect:
    port = r.port or None
    if r.derive_port == "FROM_PROTOCOL_DEFAULT":
        port = None
    return model.Redirect(path=r.uri or None, prefix=r.prefix_rewrite or None, authority=r.authority or None,
                          scheme=r.scheme or None, port=port, response_code=r.redirect_code or 301)


def direct_response(d: HTTPDirectResponse) -> model.DirectResponse:
    body = ""
    if d.body is not None:
        body = d.body.string if d.body.string is not None else base64.b64decode(d.body.bytes or "").decode(
            "utf-8", "replace")
    return model.DirectResponse(d.status, body)


def forward(ctx: Context, namespace: str, http: HTTPRoute) -> model.Forward:
    weighted = []
    hashes: list[model.HashPolicy] = []
    single = len(http.route or ()) == 1
    for dst in http.route or ():
        weight = 100 if single else dst.weight
        if not weight:
            continue  # Pilot drops zero-weight destinations
        cluster, hp = destination(ctx, namespace, dst.destination)
        if hp is not None and hp not in hashes:
            hashes.append(hp)
        hdr = dst.headers
        weighted.append(model.WeightedCluster(
            cluster, weight, header_ops(hdr.request if hdr else None),
            header_ops(hdr.response if hdr else None)))
    rw = http.rewrite
    return model.Forward(
        clusters=tuple(weighted), timeout_ms=units.duration_ms(http.timeout) if http.timeout else 0,
        retry=retry_policy(http.retries), prefix_rewrite=rw.uri if rw is not None and rw.uri else None,
        regex_rewrite=(rw.uri_regex_rewrite.match or "", rw.uri_regex_rewrite.rewrite or "")
        if rw is not None and rw.uri_regex_rewrite is not None else None,
        host_rewrite=rw.authority if rw is not None and rw.authority else None,
        mirrors=_mirrors(ctx, namespace, http), hash_policies=tuple(hashes[:1]) if len(hashes) == 1 else (),
    )


def _mirrors(ctx: Context, namespace: str, http: HTTPRoute) -> tuple[model.Mirror, ...]:
    out = []
    if http.mirror is not None:
        legacy = http.mirror_percent if http.mirror_percent is not None else http.mirror_percent_legacy
        out.append(model.Mirror(destination(ctx, namespace, http.mirror)[0], _percent(http.mirror_percentage, legacy)))
    for m in http.mirrors or ():
        out.append(model.Mirror(destination(ctx, namespace, m.destination)[0], _percent(m.percentage)))
    return tuple(out)


# -- routes --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Computed:
    """One VirtualService's routes for a context, with what building them added to the context."""

    routes: tuple[model.Route, ...]
    hosts_used: frozenset[str]
    notes: tuple[Diagnostic, ...]
    faults: bool = False  # some route injects faults (the listener's chain must run the fault filter)
    cors: bool = False  # some route has a CORS policy


def tables(mesh: Mesh) -> tuple[object, ...]:
    """The tables routes look up in: while both are the same objects, every lookup finds what it found."""
    return mesh.services, mesh.destination_rules


def route_scope(ctx: Context) -> tuple[int, str, Hashable]:
    """What a VirtualService's routes depend on besides it and the lookups they make: the listener port (when they
    read it), the gateway and the proxy's scope (`Mesh.outbound_key`)."""
    return ctx.port, ctx.gateway, ctx.mesh.outbound_key(ctx.proxy)


def http_routes(ctx: Context, vs: VirtualServiceEntry) -> list[model.Route]:
    """Envoy routes of one VirtualService for this context (`ctx.reuse`: routes computed for an earlier revision or
    port, kept while the lookups they made find the same objects)."""
    found = ctx.reuse.routes(vs, route_scope(ctx), tables(ctx.mesh), functools.partial(look, ctx),
                         functools.partial(computed, ctx, vs)).value
    ctx.hosts_used.update(found.hosts_used)
    ctx.notes.extend(found.notes)
    return list(found.routes)


def computed(ctx: Context, vs: VirtualServiceEntry, report: Report | None = None) -> Computed:
    """One VirtualService's routes for this context, leaving `ctx` as it was (the caller applies `hosts_used` and
    `notes`); `report` is told of each lookup they make."""
    own = dataclasses.replace(ctx, notes=[], hosts_used=set(), report=report)
    rs = _http_routes(own, vs)
    return Computed(tuple(rs), frozenset(own.hosts_used), tuple(own.notes), any(r.fault is not None for r in rs),
                    any(r.cors is not None for r in rs))


def skipped_notes(vs: VirtualServiceEntry) -> list[Diagnostic]:
    """MW0405 for the routes a root VirtualService's delegation left out (at the line of the route left out)."""
    return [s.res.diag("MW0405", s.reason, s.path) for s in vs.skipped]


def _http_routes(ctx: Context, vs: VirtualServiceEntry) -> list[model.Route]:
    """Envoy routes of one VirtualService for this context (a root's with its delegates' routes merged in); stops
    after a catch-all route, as Pilot does."""
    out: list[model.Route] = []
    ctx.notes.extend(skipped_notes(vs))
    if vs.rules is None:
        rules: Iterable[tuple[HTTPRoute, str, Resource, int]] = (
            (http, vs.res.namespace, vs.res, i) for i, http in enumerate(vs.spec.http or ()))
    else:
        rules = ((r.http, r.namespace, r.res, r.index) for r in vs.rules)
    for http, ns, res, index in rules:
        matches = [m for m in http.match or () if applies(ctx, ns, m)]
        if http.match and not matches:
            continue
        action = _action(ctx, ns, http)
        source = model.Source(res.kind, res.namespace, res.name, res.doc.file, res.doc.line, index)
        for m in matches or (None,):
            match = route_match(m) if m is not None else model.RouteMatch()
            name = ".".join(p for p in (http.name, m.name if m is not None else None) if p)
            hdr = http.headers
            out.append(model.Route(
                name=name, match=match, action=action,
                request_headers=header_ops(hdr.request if hdr else None),
                response_headers=header_ops(hdr.response if hdr else None),
                fault=fault(http.fault), cors=cors(http.cors_policy), source=source,
                stat_prefix=(m.stat_prefix or "") if m is not None else ""))
            if is_catch_all(match):
                return out
    return out


def _action(ctx: Context, namespace: str, http: HTTPRoute) -> model.Forward | model.Redirect | model.DirectResponse:
    if http.redirect is not None:
        return redirect(http.redirect)
    if http.direct_response is not None:
        return direct_response(http.direct_response)
    return forward(ctx, namespace, http)


def default_route(ctx: Context, service: Service) -> model.Route:
    """Pilot's route for a host without VirtualService: everything to the host's cluster, with the hash policy of
    its DestinationRule."""
    cluster = naming.outbound_cluster(ctx.port, "", service.host)
    hp = _hash_policy(ctx, service, "", ctx.port)
    return model.Route(name=naming.DEFAULT_ROUTE, match=model.RouteMatch(),
                       action=model.Forward(clusters=(model.WeightedCluster(cluster, 100),), timeout_ms=0,
                                            retry=DEFAULT_RETRY, hash_policies=(hp,) if hp is not None else ()))
