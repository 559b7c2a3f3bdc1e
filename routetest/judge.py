"""What a test expects against what Envoy did with one request: its access log line, the echo backends' records
and the response. Each mismatch is one sentence naming the expected and the actual value.

Everything is judged from what Envoy did, except `timeout`, which is the compiled timeout of the route Envoy matched
(`_timeout` says why). Destinations are compared as istio-config-validator compares them: the expected `route[]` against the
destinations of the route Envoy matched (found in the proxy's compiled config from the route's metadata, which
Envoy logs), each destination by host (short names resolved in the matched VirtualService's namespace), subset,
port when the test gives one, and weight when the test gives one.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

from compiler import model, naming, units
from compiler.api.virtual_service import Destination, HeaderOperations, HTTPRouteDestination
from routetest.cases import TestCaseSpec
from routetest.echo import Received
from routetest.envoys import Logged, Response

SHADOW = "-shadow"  # Envoy's suffix on a mirrored request's host (before its port, if any)
RouteKey = tuple[str, int, int]  # a VirtualService route: (file, the resource's line, index in spec.http)


@dataclasses.dataclass(frozen=True)
class Seen:
    """Everything observed about one request."""

    response: Response
    logged: Logged | None  # None: Envoy logged nothing for it in time
    received: Sequence[Received]  # what the backends received for it (mirrored copies included)
    retried: Logged | None = None  # the log line of the same request answered with the retry status, when asked


@dataclasses.dataclass(frozen=True)
class Proxy:
    """What the judge needs of the proxy's compiled config."""

    clusters: Mapping[str, model.Cluster]
    routes: Mapping[tuple[RouteKey, str], model.Route]  # by (route key, route name)

    @classmethod
    def of(cls, cfg: model.ProxyConfig) -> Proxy:
        routes: dict[tuple[RouteKey, str], model.Route] = {}
        for rc in cfg.route_configs:
            for vh in rc.virtual_hosts:
                for r in vh.routes:
                    if r.source is not None and r.source.http is not None:
                        routes.setdefault(((r.source.file, r.source.line, r.source.http), r.name), r)
        return cls({c.name: c for c in cfg.clusters}, routes)


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a request's expectations are judged: the proxy, the namespace short host names resolve in (the matched
    VirtualService's), and the compiled route Envoy matched (None: no VirtualService route)."""

    proxy: Proxy
    namespace: str
    route: model.Route | None


def route_key(logged: Logged) -> RouteKey | None:
    src = logged.source
    if src.get("kind") != "VirtualService" or "http" not in src:
        return None
    return (str(src["file"]), int(src["line"]), int(src["http"]))


def problems(spec: TestCaseSpec, seen: Seen, proxy: Proxy, namespace: str) -> list[str]:
    """Every expectation of the case that this request does not meet."""
    logged = seen.logged
    if logged is None:
        return [f"Envoy logged no line for the request (status {seen.response.status})"]
    out: list[str] = []
    route = proxy.routes.get((key, logged.route)) if (key := route_key(logged)) is not None else None
    ctx = Context(proxy, str(logged.source.get("namespace") or namespace), route)
    if spec.route is not None:
        out.extend(_destinations(spec.route, spec.want_match, _actual(logged, route), proxy, ctx.namespace))
    for check in _CHECKS:
        out.extend(check(spec, seen, ctx))
    return out


def _actual(logged: Logged, route: model.Route | None) -> list[tuple[str, int]]:
    """(cluster, weight) of the matched route's destinations: none for no route, a redirect or a direct response;
    the cluster picked for a route no VirtualService made (a host's default route)."""
    if route is None:
        return [(logged.cluster, 100)] if logged.cluster else []
    if not isinstance(route.action, model.Forward):
        return []
    return [(c.cluster, c.weight) for c in route.action.clusters]


def _destinations(expected: Sequence[HTTPRouteDestination], want_match: bool, actual: list[tuple[str, int]],
                  proxy: Proxy, namespace: str) -> list[str]:
    single = len(expected) == 1
    left = list(actual)
    for want in expected:
        weight = want.weight if want.weight is not None else (100 if single else None)
        hit = next((a for a in left if matches(want.destination, a[0], proxy, namespace)
                    and (weight is None or weight == a[1])), None)
        if hit is None:
            break
        left.remove(hit)
    else:
        if not left:
            return [] if want_match else [f"expected the destinations not to be {_show(expected)}, and they are"]
    if not want_match:
        return []
    shown = ", ".join(_describe(c, w, proxy) for c, w in actual) or "none (no route forwards the request)"
    return [f"expected destinations {_show(expected)}, got {shown}"]


def matches(dest: Destination, cluster: str, proxy: Proxy, namespace: str) -> bool:
    """Whether `cluster` is the destination's (a cluster the config does not define: by its name, which needs the
    destination's port)."""
    host = naming.resolve_host(dest.host, namespace)
    port = dest.port.number if dest.port is not None else None
    found = proxy.clusters.get(cluster)
    if found is None:
        return port is not None and cluster == naming.outbound_cluster(port, dest.subset or "", host)
    return found.service_host == host and found.subset == (dest.subset or "") and port in (None, found.port)


def _show(expected: Sequence[HTTPRouteDestination]) -> str:
    parts = []
    for d in expected:
        text = d.destination.host + (f" subset {d.destination.subset}" if d.destination.subset else "")
        text += f" port {d.destination.port.number}" if d.destination.port is not None else ""
        parts.append(text + (f" (weight {d.weight})" if d.weight is not None else ""))
    return ", ".join(parts)


def _describe(cluster: str, weight: int, proxy: Proxy) -> str:
    found = proxy.clusters.get(cluster)
    text = (f"{found.service_host}" + (f" subset {found.subset}" if found.subset else "") + f" port {found.port}"
            if found is not None and found.service_host else f"cluster {cluster}")
    return f"{text} (weight {weight})"


def _redirect(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.redirect
    if want is None:
        return []
    resp = seen.response
    location = resp.headers.get("location")
    if location is None or not 300 <= resp.status < 400:
        return [f"expected a redirect, got status {resp.status}"]
    out = []
    status = want.status if want.status is not None else want.redirect_code
    if status is not None and resp.status != status:
        out.append(f"expected redirect status {status}, got {resp.status}")
    parsed = urllib.parse.urlsplit(location)
    for label, expected, actual in (("location", want.location, location), ("location path", want.uri, parsed.path),
                                    ("location authority", want.authority, parsed.netloc)):
        if expected is not None and expected != actual:
            out.append(f"expected {label} {expected!r}, got {actual!r}")
    return out


def _direct_response(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.direct_response
    if want is None:
        return []
    out = []
    if seen.logged is not None and seen.logged.cluster:
        out.append(f"expected a direct response, the request went to cluster {seen.logged.cluster}")
    if seen.response.status != want.status:
        out.append(f"expected direct response status {want.status}, got {seen.response.status}")
    if want.body is not None and seen.response.body.decode(errors="replace") != want.body:
        out.append(f"expected body {want.body!r}, got {seen.response.body.decode(errors='replace')!r}")
    return out


def is_shadow(received: Received) -> bool:
    """Whether the request is a mirrored copy: Envoy's router appends -shadow to a mirrored request's host, before
    the port if there is one."""
    host = received.headers.get("host", "")
    name, _, port = host.rpartition(":")
    return (name if port.isdigit() else host).endswith(SHADOW)


def _upstream(seen: Seen) -> Received | None:
    """The request as the routed backend received it (not a mirrored copy)."""
    return next((r for r in seen.received if not is_shadow(r)), None)


def _rewrite(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.rewrite
    if want is None:
        return []
    got = _upstream(seen)
    if got is None:
        return ["expected a rewritten request upstream, no backend received it"]
    out = []
    path = want.path if want.path is not None else want.uri
    actual = got.path if path is not None and "?" in path else got.path.split("?", 1)[0]
    if path is not None and actual != path:
        out.append(f"expected the backend to receive path {path!r}, got {actual!r}")
    if want.authority is not None and got.headers.get("host") != want.authority:
        out.append(f"expected the backend to receive authority {want.authority!r}, got {got.headers.get('host')!r}")
    return out


def _headers(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.headers
    if want is None:
        return []
    out = []
    got = _upstream(seen)
    if want.request is not None:
        if got is None:
            out.append("expected request headers upstream, no backend received the request")
        else:
            out.extend(_header_ops("the backend", want.request, got.headers))
    if want.response is not None:
        out.extend(_header_ops("the client", want.response, seen.response.headers))
    return out


def _header_ops(who: str, ops: HeaderOperations, headers: Mapping[str, str]) -> list[str]:
    """Set and added headers hold their value (an added one among the header's values), removed ones are gone."""
    out = []
    for key, value in {**(ops.set or {}), **(ops.add or {})}.items():
        actual = headers.get(key.lower())
        if actual is None or value not in (actual, *actual.split(",")):
            out.append(f"expected {who} to receive header {key}: {value!r}, got {actual!r}")
    for key in ops.remove or ():
        if key.lower() in headers:
            out.append(f"expected {who} not to receive header {key}, got {headers[key.lower()]!r}")
    return out


def _fault(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.fault
    if want is None or seen.logged is None:
        return []
    out = []
    flags = seen.logged.flags.split(",")
    if want.abort is not None and (seen.response.status != want.abort.http_status or "FI" not in flags):
        out.append(f"expected an injected abort with status {want.abort.http_status}, got status "
                   f"{seen.response.status} with flags {seen.logged.flags or 'none'}")
    if want.delay is not None and "DI" not in flags:
        out.append(f"expected an injected delay, got flags {seen.logged.flags or 'none'}")
    return out


def _timeout(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    """The timeout of the route Envoy matched, as compiled: Envoy tells an upstream only the time left for one try
    (x-envoy-expected-rq-timeout-ms is the per-try timeout when there is one), and waiting it out would make a
    test as slow as its timeout."""
    if spec.timeout is None:
        return []
    if ctx.route is None or not isinstance(ctx.route.action, model.Forward):
        return [f"expected timeout {spec.timeout}, the request matched no route that forwards"]
    want, actual = units.duration_ms(spec.timeout), ctx.route.action.timeout_ms
    if actual == want:
        return []
    shown = "none (Envoy's default, 15s)" if actual is None else "disabled (0s)" if actual == 0 else f"{actual} ms"
    return [f"expected timeout {spec.timeout} ({want} ms), the route has {shown}"]


def _retries(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.retries
    if want is None:
        return []
    if seen.retried is None:
        return ["Envoy logged no line for the request whose backend answers the retry status"]
    attempts = seen.retried.attempts
    if attempts == want.attempts + 1:
        return []
    return [f"expected {want.attempts} retries after a {want.status}, Envoy made {max(attempts - 1, 0)}"]


def _mirror(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.mirror
    if want is None:
        return []
    if any(is_shadow(r) and matches(want, r.cluster, ctx.proxy, ctx.namespace) for r in seen.received):
        return []
    copies = [r.cluster for r in seen.received if is_shadow(r)]
    return [(f"expected a mirrored copy to {want.host}{' subset ' + want.subset if want.subset else ''}, "
             f"got {'copies to ' + ', '.join(copies) if copies else 'none'}")]


def _delegate(spec: TestCaseSpec, seen: Seen, ctx: Context) -> list[str]:
    want = spec.delegate
    if want is None or seen.logged is None:
        return []
    src = seen.logged.source
    name, namespace = want.get("name"), want.get("namespace", ctx.namespace)
    if src.get("name") == name and src.get("namespace") == namespace:
        return []
    return [(f"expected a route of delegate VirtualService {namespace}/{name}, got "
             f"{src.get('kind', 'no VirtualService')} {src.get('namespace', '')}/{src.get('name', '')}")]


_CHECKS: tuple[Callable[[TestCaseSpec, Seen, Context], list[str]], ...] = (
    _redirect, _direct_response, _rewrite, _headers, _fault, _timeout, _retries, _mirror, _delegate)
