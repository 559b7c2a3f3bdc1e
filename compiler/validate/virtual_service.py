"""VirtualService rules (Istio pkg/config/validation virtualservice.go): hosts, gateways, HTTP/TLS/TCP routes."""

from __future__ import annotations

from typing import Any

from compiler.api import virtual_service as vs
from compiler.validate import envoy_limits, fields, hosts
from compiler.validate.report import Path, Report

_MESH = "mesh"


def check(report: Report) -> None:
    spec: vs.VirtualService = report.resource.spec
    delegate = not spec.hosts
    if delegate and spec.gateways:
        report.error("MW0201", "a delegate VirtualService (no hosts) cannot name gateways", ("gateways",))
    _hosts(report, spec)
    _gateways(report, spec.gateways, ("gateways",))
    for index, problem in hosts.export_to(spec.export_to):
        report.error("MW0223", problem, ("exportTo", index))
    if not (spec.http or spec.tls or spec.tcp):
        report.error("MW0216", "a VirtualService needs at least one of http, tls or tcp routes")
    for i, route in enumerate(spec.http or []):
        _http_route(report, route, ("http", i), delegate=delegate)
    for i, tls in enumerate(spec.tls or []):
        _tls_route(report, tls, ("tls", i))
    for i, tcp in enumerate(spec.tcp or []):
        _tcp_route(report, tcp, ("tcp", i))


def _hosts(report: Report, spec: vs.VirtualService) -> None:
    mesh_bound = not spec.gateways or _MESH in spec.gateways
    for i, host in enumerate(spec.hosts or []):
        if host == "*" and mesh_bound:
            report.error("MW0201", 'wildcard host "*" is not allowed for VirtualServices bound to the mesh',
                         ("hosts", i))
            continue
        report.found("MW0201", hosts.not_an_ip(host) or report.values.wildcard_domain(host), ("hosts", i))


def _gateways(report: Report, names: list[str] | None, path: Path) -> None:
    for i, name in enumerate(names or []):
        if name == _MESH:
            continue
        namespace, sep, gateway = name.rpartition("/")
        ok = bool(gateway) and all(hosts.is_dns1123_label(p) for p in gateway.split("."))
        if sep and not hosts.is_dns1123_label(namespace):
            ok = False
        if not ok:
            report.error("MW0201", f'gateway "{name}" must be "mesh", a name, or namespace/name', path + (i,))


def _http_route(report: Report, route: vs.HTTPRoute, path: Path, *, delegate: bool) -> None:
    _conflicts(report, route, path, delegate=delegate)
    for i, match in enumerate(route.match or []):
        _http_match(report, match, path + ("match", i))
    # optional parts are skipped here when unset, before their paths are built (most routes set few of them)
    if route.headers is not None:
        _header_ops(report, route.headers, path + ("headers",))
    for i, dest in enumerate(route.route or []):
        _destination(report, dest.destination, path + ("route", i, "destination"))
        if dest.headers is not None:
            _header_ops(report, dest.headers, path + ("route", i, "headers"))
    _weights(report, route.route or [], path + ("route",))
    if route.timeout is not None:
        report.found("MW0202", report.values.duration(route.timeout), path + ("timeout",))
    if route.retries is not None:
        _retries(report, route.retries, path + ("retries",))
    if route.fault is not None:
        _fault(report, route.fault, path + ("fault",))
    if route.redirect is not None:
        _redirect(report, route.redirect, path + ("redirect",))
    if route.rewrite is not None:
        _rewrite(report, route.rewrite, path + ("rewrite",))
    if route.direct_response is not None:
        _direct_response(report, route.direct_response, path + ("directResponse",))
    _mirrors(report, route, path)
    if route.cors_policy is not None:
        _cors(report, route.cors_policy, path + ("corsPolicy",))


def _conflicts(report: Report, route: vs.HTTPRoute, path: Path, *, delegate: bool) -> None:
    if route.delegate is not None:
        if delegate:
            report.error("MW0216", "a delegate VirtualService's route cannot delegate again", path + ("delegate",))
        if route.route or route.redirect or route.direct_response:
            report.error("MW0216", "a route with delegate cannot also have route, redirect or directResponse",
                         path + ("delegate",))
        if not route.delegate.name:
            report.error("MW0216", "delegate needs a name", path + ("delegate",))
        return
    actions = [name for name, value in (("route", route.route), ("redirect", route.redirect),
                                         ("directResponse", route.direct_response)) if value]
    if len(actions) > 1:
        report.error("MW0216", f"an HTTP route cannot have both {actions[0]} and {actions[1]}", path + (actions[1],))
    elif not actions:
        report.error("MW0216", "an HTTP route needs route, redirect or directResponse", path)
    if route.redirect is not None or route.direct_response is not None:
        for name, value in (("fault", route.fault), ("rewrite", route.rewrite)):
            if value is not None:
                report.error("MW0216", f"an HTTP route with {actions[0]} cannot also have {name}", path + (name,))


def _http_match(report: Report, match: vs.HTTPMatchRequest, path: Path) -> None:
    for name in ("uri", "scheme", "method", "authority"):
        value = getattr(match, name)
        if value is not None:
            _string_match(report, value, path + (name,), path_match=name == "uri")
    for field, key in (("headers", "headers"), ("without_headers", "withoutHeaders"),
                       ("query_params", "queryParams")):
        for header, value in (getattr(match, field) or {}).items():
            if field != "query_params":
                report.found("MW0215", report.values.header_name(header), path + (key, header))
            elif not 1 <= len(header.encode()) <= envoy_limits.MAX_QUERY_PARAMETER_BYTES:
                report.error("MW0212", f"a query parameter name needs 1 to {envoy_limits.MAX_QUERY_PARAMETER_BYTES}"
                             " bytes", path + (key, header))
            _string_match(report, value, path + (key, header), allow_empty=field != "query_params")
    if match.port is not None:
        report.found("MW0203", hosts.port(match.port), path + ("port",))
    for key, problem in report.values.label_selector(match.source_labels):
        report.error("MW0211", problem, path + ("sourceLabels", key))
    _gateways(report, match.gateways, path + ("gateways",))
    if match.source_namespace is not None and not hosts.is_dns1123_label(match.source_namespace):
        report.error("MW0212", f'sourceNamespace "{match.source_namespace}" is not a namespace name',
                     path + ("sourceNamespace",))


def _string_match(report: Report, match: vs.StringMatch, path: Path, *, allow_empty: bool = False,
                  path_match: bool = False) -> None:
    """`path_match`: the uri, which becomes the route's path prefix; every other match is an Envoy StringMatcher,
    whose prefix must not be empty (type/matcher/v3/string.proto: prefix min_len 1)."""
    if allow_empty and match is not None and match.exact is match.prefix is match.regex is None:
        return  # `{}` on a header match means "header present" (Istio's presence match)
    found = fields.string_match(match)
    if found:
        code, problem = found
        report.error(code, problem, path + (("regex",) if code in ("MW0206", "MW0225") else ()))
    elif path_match:
        for kind in ("exact", "prefix"):
            report.found("MW0212", envoy_limits.header_safe(getattr(match, kind)), path + (kind,))
    elif match.prefix == "":
        report.error("MW0212", "Envoy refuses an empty prefix here: remove the match, or use {} (or regex: '.*') to "
                     "match any value", path + ("prefix",))


def _header_ops(report: Report, headers: vs.Headers | None, path: Path) -> None:
    if headers is None:
        return
    for side, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        for op in ("set", "add"):
            for name, value in (getattr(ops, op) or {}).items():
                report.found("MW0215", fields.header_operation_name(name), path + (side, op, name))
                report.found("MW0224", envoy_limits.header_value(value), path + (side, op, name))
        for i, name in enumerate(ops.remove or []):
            report.found("MW0215", fields.header_operation_name(name), path + (side, "remove", i))


def _destination(report: Report, dest: vs.Destination | None, path: Path) -> None:
    if dest is None:
        return
    if dest.host == "*":
        report.error("MW0201", 'destination host cannot be "*"', path + ("host",))
    else:
        report.found("MW0201", report.values.wildcard_domain(dest.host), path + ("host",))
    if dest.subset is not None and not hosts.is_dns1123_label(dest.subset):
        report.error("MW0222", f'subset name "{dest.subset}" is not a DNS-1123 label', path + ("subset",))
    if dest.port is not None and dest.port.number is not None:
        report.found("MW0203", hosts.port(dest.port.number), path + ("port", "number"))


def _weights(report: Report, dests: list[Any], path: Path) -> None:
    total = 0
    for i, dest in enumerate(dests):
        weight = dest.weight or 0
        if weight < 0:
            report.error("MW0204", f"weight {weight} cannot be negative", path + (i, "weight"))
        total += max(weight, 0)
    if total > envoy_limits.MAX_UINT32:
        report.error("MW0204", f"destination weights add up to {total}, above the {envoy_limits.MAX_UINT32} Envoy "
                     "accepts", path)
    elif len(dests) > 1 and total == 0:
        report.error("MW0204", f"the {len(dests)} destinations have a total weight of 0; give at least one a "
                     "weight > 0", path)
    elif len(dests) > 1 and total != 100:
        report.warning("MW0205", f"destination weights add up to {total}, not 100", path)


def _retries(report: Report, retry: vs.HTTPRetry | None, path: Path) -> None:
    if retry is None:
        return
    if retry.attempts is not None and retry.attempts < 0:
        report.error("MW0222", f"retry attempts {retry.attempts} cannot be negative", path + ("attempts",))
    report.found("MW0202", report.values.duration(retry.per_try_timeout), path + ("perTryTimeout",))
    report.found("MW0202", report.values.duration(retry.backoff), path + ("backoff",))
    if retry.retry_on is not None:
        report.found("MW0207", report.values.retry_on(retry.retry_on), path + ("retryOn",))


def _fault(report: Report, fault: vs.HTTPFaultInjection | None, path: Path) -> None:
    if fault is None:
        return
    if fault.abort is None and fault.delay is None:
        report.error("MW0222", "fault injection needs an abort and/or a delay", path)
    if fault.abort is not None:
        _abort(report, fault.abort, path + ("abort",))
    if fault.delay is not None:
        _delay(report, fault.delay, path + ("delay",))


def _abort(report: Report, abort: vs.Abort, path: Path) -> None:
    kinds = [k for k in ("http_status", "grpc_status", "http2_error") if getattr(abort, k) is not None]
    if len(kinds) != 1:
        report.error("MW0222", "abort needs exactly one of httpStatus, grpcStatus or http2Error", path)
    status = abort.grpc_status or ""
    if status.isdigit() and int(status) > envoy_limits.MAX_UINT32:  # Envoy's FaultAbort.grpc_status is a uint32
        report.error("MW0222", f"abort grpcStatus {status} is above {envoy_limits.MAX_UINT32}", path + ("grpcStatus",))
    if abort.http_status is not None and not 200 <= abort.http_status <= 599:
        report.error("MW0222", f"abort httpStatus {abort.http_status} must be between 200 and 599",
                     path + ("httpStatus",))
    if abort.percentage is not None:
        report.found("MW0208", fields.percentage(abort.percentage.value), path + ("percentage", "value"))


def _delay(report: Report, delay: vs.Delay, path: Path) -> None:
    if (delay.fixed_delay is None) == (delay.exponential_delay is None):
        report.error("MW0222", "delay needs exactly one of fixedDelay or exponentialDelay", path)
    report.found("MW0202", report.values.duration(delay.fixed_delay), path + ("fixedDelay",))
    report.found("MW0202", report.values.duration(delay.exponential_delay), path + ("exponentialDelay",))
    if delay.percent is not None:
        report.found("MW0208", fields.percentage(delay.percent), path + ("percent",))
    if delay.percentage is not None:
        report.found("MW0208", fields.percentage(delay.percentage.value), path + ("percentage", "value"))


def _redirect(report: Report, redirect: vs.HTTPRedirect | None, path: Path) -> None:
    if redirect is None:
        return
    if not (redirect.uri or redirect.authority or redirect.scheme or redirect.port or redirect.derive_port
            or redirect.prefix_rewrite):
        report.error("MW0222", "redirect must set uri, authority, scheme or port", path)
    if redirect.port is not None and redirect.derive_port is not None:
        report.error("MW0222", "redirect cannot set both port and derivePort", path + ("port",))
    if redirect.port is not None:
        report.found("MW0203", hosts.port(redirect.port), path + ("port",))
    for key in ("uri", "authority", "prefix_rewrite", "scheme"):
        report.found("MW0222", envoy_limits.header_safe(getattr(redirect, key)), path + (_camel(key),))
    if redirect.redirect_code is not None and redirect.redirect_code not in envoy_limits.REDIRECT_CODES:
        report.error("MW0222", f"redirectCode {redirect.redirect_code} is not one Envoy sends (one of "
                     f"{', '.join(map(str, sorted(envoy_limits.REDIRECT_CODES)))})", path + ("redirectCode",))


def _rewrite(report: Report, rewrite: vs.HTTPRewrite | None, path: Path) -> None:
    if rewrite is None:
        return
    if not (rewrite.uri is not None or rewrite.authority or rewrite.uri_regex_rewrite is not None):
        report.error("MW0222", "rewrite must set uri, authority or uriRegexRewrite", path)
    for key in ("uri", "authority"):
        report.found("MW0222", envoy_limits.header_safe(getattr(rewrite, key)), path + (key,))
    if rewrite.uri is not None and rewrite.uri_regex_rewrite is not None:
        report.error("MW0222", "rewrite can have only one of uri and uriRegexRewrite", path + ("uriRegexRewrite",))
    regex_rewrite = rewrite.uri_regex_rewrite
    if regex_rewrite is not None:
        if not regex_rewrite.match or regex_rewrite.rewrite is None:
            report.error("MW0222", "uriRegexRewrite needs match and rewrite", path + ("uriRegexRewrite",))
        else:
            where = path + ("uriRegexRewrite", "match")
            problem = report.values.regex(regex_rewrite.match)
            report.found("MW0206", problem, where)
            if not problem:
                report.found("MW0225", envoy_limits.regex_program_size(regex_rewrite.match), where)
            report.found("MW0222", envoy_limits.header_safe(regex_rewrite.rewrite),
                         path + ("uriRegexRewrite", "rewrite"))


def _direct_response(report: Report, direct: vs.HTTPDirectResponse | None, path: Path) -> None:
    if direct is None:
        return
    if not 200 <= direct.status <= 599:
        report.error("MW0222", f"directResponse status {direct.status} must be between 200 and 599",
                     path + ("status",))
    body = direct.body
    if body is not None and (body.string is None) == (body.bytes is None):
        report.error("MW0222", "directResponse body needs exactly one of string or bytes", path + ("body",))
    elif body is not None:
        report.found("MW0222", envoy_limits.direct_response_body(body.string, body.bytes),
                     path + ("body", "bytes" if body.bytes is not None else "string"))


def _mirrors(report: Report, route: vs.HTTPRoute, path: Path) -> None:
    if route.mirror is not None:
        _destination(report, route.mirror, path + ("mirror",))
    for i, mirror in enumerate(route.mirrors or []):
        _destination(report, mirror.destination, path + ("mirrors", i, "destination"))
        if mirror.percentage is not None:
            report.found("MW0208", fields.percentage(mirror.percentage.value),
                         path + ("mirrors", i, "percentage", "value"))
    if route.mirror is not None and route.mirrors:
        report.error("MW0222", "use either mirror or mirrors, not both", path + ("mirrors",))
    for key, value in (("mirrorPercent", route.mirror_percent), ("mirror_percent", route.mirror_percent_legacy)):
        if value is not None:
            report.found("MW0208", fields.percentage(value), path + (key,))
    if route.mirror_percentage is not None:
        report.found("MW0208", fields.percentage(route.mirror_percentage.value),
                     path + ("mirrorPercentage", "value"))


def _cors(report: Report, cors: vs.CorsPolicy | None, path: Path) -> None:
    if cors is None:
        return
    for i, origin in enumerate(cors.allow_origins or []):
        _string_match(report, origin, path + ("allowOrigins", i))
    for i, method in enumerate(cors.allow_methods or []):
        if method not in fields.HTTP_METHODS and method != "*":
            report.error("MW0222", f'"{method}" is not an HTTP method', path + ("allowMethods", i))
    for key in ("allow_headers", "expose_headers"):
        for i, name in enumerate(getattr(cors, key) or []):
            if name != "*":
                report.found("MW0215", report.values.header_name(name), path + (_camel(key), i))
    report.found("MW0202", report.values.duration(cors.max_age), path + ("maxAge",))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _tls_route(report: Report, route: vs.TLSRoute, path: Path) -> None:
    if not route.match:
        report.error("MW0212", "a TLS route needs at least one match", path + ("match",))
    for i, match in enumerate(route.match):
        if not match.sni_hosts:
            report.error("MW0212", "a TLS match needs sniHosts", path + ("match", i, "sniHosts"))
        for j, sni in enumerate(match.sni_hosts):
            report.found("MW0201", envoy_limits.server_name(sni) or report.values.wildcard_domain(sni),
                         path + ("match", i, "sniHosts", j))
        _l4_match(report, match, path + ("match", i))
    _l4_routes(report, route.route, path)


def _tcp_route(report: Report, route: vs.TCPRoute, path: Path) -> None:
    for i, match in enumerate(route.match or []):
        _l4_match(report, match, path + ("match", i))
        if isinstance(match, vs.L4MatchAttributes) and match.source_subnet is not None:
            report.found("MW0218", report.values.ip_or_cidr(match.source_subnet), path + ("match", i, "sourceSubnet"))
    _l4_routes(report, route.route, path)


def _l4_match(report: Report, match: vs.TLSMatchAttributes | vs.L4MatchAttributes, path: Path) -> None:
    for i, subnet in enumerate(match.destination_subnets or []):
        report.found("MW0218", report.values.ip_or_cidr(subnet), path + ("destinationSubnets", i))
    if match.port is not None:
        report.found("MW0203", hosts.port(match.port), path + ("port",))
    for key, problem in report.values.label_selector(match.source_labels):
        report.error("MW0211", problem, path + ("sourceLabels", key))
    _gateways(report, match.gateways, path + ("gateways",))


def _l4_routes(report: Report, routes: list[vs.RouteDestination] | None, path: Path) -> None:
    if not routes:
        report.error("MW0216", "a TLS/TCP route needs at least one route destination", path + ("route",))
        return
    for i, dest in enumerate(routes):
        _destination(report, dest.destination, path + ("route", i, "destination"))
    _weights(report, routes, path + ("route",))
