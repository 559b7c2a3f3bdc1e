"""RouteConfiguration resources (RDS): virtual hosts, route matches, header operations and the per-route fault
and CORS configs, with the meshward back-reference on every route."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import common, metadata, route_action
from compiler.emit.filters import cors, fault
from meshxds import wire


def _path(out: rc.RouteMatch, path: model.StringMatch) -> None:
    if path.kind is model.MatchKind.EXACT:
        out.path = path.value
    elif path.kind is model.MatchKind.PREFIX:
        out.prefix = path.value
    elif path.kind is model.MatchKind.REGEX:
        out.safe_regex.CopyFrom(common.regex(path.value))
    else:
        raise common.EmitError(f"a path cannot be matched by {path.kind.value!r}")
    if path.ignore_case:  # Istio's ignoreUriCase
        out.case_sensitive.CopyFrom(wrappers_pb2.BoolValue(value=False))


def header(h: model.HeaderMatch) -> rc.HeaderMatcher:
    if h.match.kind is model.MatchKind.PRESENT:
        return rc.HeaderMatcher(name=h.name, present_match=True, invert_match=h.invert)
    return rc.HeaderMatcher(name=h.name, string_match=common.string_matcher(h.match), invert_match=h.invert)


def _query(q: model.QueryMatch) -> rc.QueryParameterMatcher:
    if q.match.kind is model.MatchKind.PRESENT:
        return rc.QueryParameterMatcher(name=q.name, present_match=True)
    return rc.QueryParameterMatcher(name=q.name, string_match=common.string_matcher(q.match))


def match(m: model.RouteMatch) -> rc.RouteMatch:
    out = rc.RouteMatch(
        headers=[header(h) for h in m.headers], query_parameters=[_query(q) for q in m.query]
    )
    _path(out, m.path)
    return out


def _set_action(out: rc.Route, action: model.Forward | model.Redirect | model.DirectResponse) -> None:
    if isinstance(action, model.Forward):
        out.route.CopyFrom(route_action.forward(action))
    elif isinstance(action, model.Redirect):
        out.redirect.CopyFrom(route_action.redirect(action))
    else:
        out.direct_response.CopyFrom(route_action.direct_response(action))


def route(r: model.Route) -> rc.Route:
    out = rc.Route(
        name=r.name,
        match=match(r.match),
        request_headers_to_add=common.headers_to_add(r.request_headers),
        request_headers_to_remove=r.request_headers.remove,
        response_headers_to_add=common.headers_to_add(r.response_headers),
        response_headers_to_remove=r.response_headers.remove,
        stat_prefix=r.stat_prefix,
    )
    _set_action(out, r.action)
    if r.fault is not None:
        out.typed_per_filter_config[fault.NAME].CopyFrom(common.pack(fault.per_route(r.fault)))
    if r.cors is not None:
        out.typed_per_filter_config[cors.NAME].CopyFrom(common.pack(cors.per_route(r.cors)))
    meta = metadata.one(r.source)
    if meta is not None:
        out.metadata.CopyFrom(meta)
    return out


def virtual_host(vh: model.VirtualHost) -> rc.VirtualHost:
    return rc.VirtualHost(
        name=vh.name,
        domains=vh.domains,
        routes=[route(r) for r in vh.routes],
        require_tls=rc.VirtualHost.ALL if vh.require_tls else rc.VirtualHost.NONE,
    )


_VIRTUAL_HOSTS = route_pb2.RouteConfiguration.DESCRIPTOR.fields_by_name["virtual_hosts"].number


_VH = rc.VirtualHost.DESCRIPTOR.fields_by_name
_VH_NAME, _VH_DOMAINS, _VH_ROUTES, _VH_REQUIRE_TLS = (
    _VH[f].number for f in ("name", "domains", "routes", "require_tls"))


def vhost_field_of_parts(vh: model.VirtualHost, routes: Iterable[bytes]) -> bytes:
    """`virtual_host(vh)` encoded as one occurrence of RouteConfiguration.virtual_hosts, written from its routes'
    serializations (`route(r)`, in order): the routes of one VirtualService are shared by the virtual hosts of every
    port, so each is encoded once."""
    body = wire.length_delimited(_VH_NAME, vh.name.encode()) + b"".join(
        wire.length_delimited(_VH_DOMAINS, d.encode()) for d in vh.domains) + b"".join(
        wire.length_delimited(_VH_ROUTES, r) for r in routes)
    if vh.require_tls:
        body += wire.varint(_VH_REQUIRE_TLS << 3) + wire.varint(rc.VirtualHost.ALL)
    return wire.length_delimited(_VIRTUAL_HOSTS, body)


def serialized(rc_model: model.RouteConfig, vhost_fields: Iterable[bytes]) -> bytes:
    """`of(rc_model)` serialized (deterministically), written from each virtual host's own encoding
    (`vhost_field_of_parts`, in `rc_model.virtual_hosts` order): a route table of 10,000 hosts where one changed is
    re-encoded from 9,999 cached parts (meshxds.wire)."""
    head: bytes = route_pb2.RouteConfiguration(name=rc_model.name).SerializeToString(deterministic=True)
    tail: bytes = route_pb2.RouteConfiguration(
        validate_clusters=wrappers_pb2.BoolValue(value=False), ignore_port_in_host_matching=rc_model.ignore_port,
    ).SerializeToString(deterministic=True)  # fields numbered after virtual_hosts
    return head + b"".join(vhost_fields) + tail


def of(rc_model: model.RouteConfig, *,
       vhost: Callable[[model.VirtualHost], rc.VirtualHost] = virtual_host) -> route_pb2.RouteConfiguration:
    """validate_clusters off, as Istio: a route to a cluster that is not (yet) there answers 503 instead of
    making Envoy reject the whole route table. `vhost` may hand out shared (memoized) virtual host messages: they
    are copied in, never changed."""
    return route_pb2.RouteConfiguration(
        name=rc_model.name,
        virtual_hosts=[vhost(vh) for vh in rc_model.virtual_hosts],
        validate_clusters=wrappers_pb2.BoolValue(value=False),
        ignore_port_in_host_matching=rc_model.ignore_port,
    )
