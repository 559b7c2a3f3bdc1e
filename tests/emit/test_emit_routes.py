"""Route configurations: matches, forwarding, redirects, direct responses, header ops, per-route fault and
CORS."""

from __future__ import annotations

import dataclasses

import emit_factories as f
from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.v3 import percent_pb2

from compiler import model as m
from compiler.emit import route


def _routes(cfg: m.ProxyConfig) -> dict[str, rc.Route]:
    out = route.of(cfg.route_configs[0])
    assert isinstance(out, route_pb2.RouteConfiguration)
    return {r.name: r for vh in out.virtual_hosts for r in vh.routes}


def test_basic_route_forwards_to_one_cluster_with_timeout_disabled() -> None:
    cfg = route.of(f.basic().route_configs[0])
    assert cfg.name == "9080" and not cfg.validate_clusters.value and cfg.HasField("validate_clusters")
    vh = cfg.virtual_hosts[0]
    assert list(vh.domains) == [f.HOST, "reviews"]
    r = vh.routes[0]
    assert r.match.prefix == "/"
    assert r.route.cluster == f.CLUSTER
    assert r.route.HasField("timeout") and r.route.timeout.seconds == 0 and r.route.timeout.nanos == 0


def test_route_metadata_leads_back_to_the_source_line() -> None:
    meta = _routes(f.basic())["default"].metadata.filter_metadata["meshward"]
    assert dict(meta.fields.items()).keys() == {"kind", "namespace", "name", "file", "line"}
    assert meta["kind"] == "VirtualService" and meta["namespace"] == "shop" and meta["name"] == "reviews"
    assert meta["file"] == "mesh/reviews.yaml" and meta["line"] == 14


def test_matches_on_path_headers_and_query() -> None:
    rs = _routes(f.matches())
    api = rs["api"].match
    assert api.safe_regex.regex == "/api/v[0-9]+/.*"
    h = {x.name: x for x in api.headers}
    assert h["end-user"].string_match.exact == "jason"
    assert h[":method"].string_match.prefix == "G" and h[":method"].string_match.ignore_case
    assert h["x-canary"].present_match
    assert h["x-debug"].invert_match and h["x-debug"].string_match.exact == "1"
    q = {x.name: x for x in api.query_parameters}
    assert q["q"].string_match.safe_regex.regex == "a+" and q["flag"].present_match
    login = rs["login"].match
    assert login.path == "/Login" and login.HasField("case_sensitive") and not login.case_sensitive.value


def test_weighted_clusters_retry_rewrites_mirrors_and_hashing() -> None:
    action = _routes(f.forwarding())["split"].route
    w = action.weighted_clusters.clusters
    assert [(c.name, c.weight.value) for c in w] == [(f.V1, 75), (f.V2, 25)]
    assert w[0].request_headers_to_add[0].header.key == "x-version"
    assert list(w[1].response_headers_to_remove) == ["x-internal"]
    assert action.timeout.ToMilliseconds() == 1500
    retry = action.retry_policy
    assert retry.num_retries.value == 3 and retry.per_try_timeout.ToMilliseconds() == 500
    assert retry.retry_on == "5xx,retriable-status-codes" and list(retry.retriable_status_codes) == [503]
    assert retry.retry_host_predicate[0].name == "envoy.retry_host_predicates.previous_hosts"
    assert retry.host_selection_retry_max_attempts == 5
    assert retry.retry_priority.name == "envoy.retry_priorities.previous_priorities"
    assert action.prefix_rewrite == "/v2/" and action.host_rewrite_literal == "reviews.internal"
    partial, full = action.request_mirror_policies
    assert partial.cluster == f.MIRROR
    assert partial.runtime_fraction.default_value.numerator == 125_000
    assert partial.runtime_fraction.default_value.denominator == percent_pb2.FractionalPercent.MILLION
    assert full.cluster == f.V1 and not full.HasField("runtime_fraction")
    kinds = [h.WhichOneof("policy_specifier") for h in action.hash_policy]
    assert kinds == ["header", "cookie", "query_parameter", "connection_properties"]
    assert action.hash_policy[1].cookie.ttl.seconds == 60 and action.hash_policy[1].cookie.path == "/"


def test_regex_rewrite_and_unset_timeout() -> None:
    action = _routes(f.forwarding())["regex"].route
    assert action.regex_rewrite.pattern.regex == "^/old/(.*)$"
    assert action.regex_rewrite.substitution == "/new/\\1"
    assert not action.HasField("timeout") and not action.HasField("retry_policy")


def test_redirects_and_direct_responses() -> None:
    rs = _routes(f.non_forwarding())
    moved = rs["moved"].redirect
    assert (moved.path_redirect, moved.host_redirect, moved.scheme_redirect, moved.port_redirect) == (
        "/new",
        "example.com",
        "https",
        8443,
    )
    assert moved.response_code == rc.RedirectAction.PERMANENT_REDIRECT
    assert rs["prefix-moved"].redirect.prefix_rewrite == "/modern/"
    assert rs["prefix-moved"].redirect.response_code == rc.RedirectAction.FOUND
    assert rs["teapot"].direct_response.status == 418
    assert rs["teapot"].direct_response.body.inline_string == "short and stout"
    assert not rs["empty"].direct_response.HasField("body")


def test_header_operations_set_add_remove() -> None:
    r = _routes(f.non_forwarding())["headers"]
    for to_add, to_remove in (
        (r.request_headers_to_add, r.request_headers_to_remove),
        (r.response_headers_to_add, r.response_headers_to_remove),
    ):
        assert [(h.header.key, h.header.value, h.append_action) for h in to_add] == [
            ("x-set", "1", base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD),
            ("x-add", "2", base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD),
        ]
        assert list(to_remove) == ["x-remove"]


def test_fault_and_cors_are_per_route_configs() -> None:
    rs = _routes(f.fault_and_cors())
    faulty = rs["faulty"].typed_per_filter_config
    fault = fault_pb2.HTTPFault.FromString(faulty["envoy.filters.http.fault"].value)
    assert fault.delay.fixed_delay.seconds == 5 and fault.delay.percentage.numerator == 100_000
    assert fault.abort.http_status == 503 and fault.abort.percentage.numerator == 1000
    cors = cors_pb2.CorsPolicy.FromString(faulty["envoy.filters.http.cors"].value)
    assert [o.WhichOneof("match_pattern") for o in cors.allow_origin_string_match] == ["exact", "safe_regex"]
    assert (cors.allow_methods, cors.allow_headers, cors.expose_headers, cors.max_age) == (
        "GET,POST",
        "x-a,x-b",
        "x-c",
        "86400",
    )
    assert cors.allow_credentials.value
    grpc = rs["grpc"].typed_per_filter_config
    assert set(grpc) == {"envoy.filters.http.fault"}
    abort = fault_pb2.HTTPFault.FromString(grpc["envoy.filters.http.fault"].value).abort
    assert abort.grpc_status == 14 and abort.percentage.numerator == 1_000_000
    assert not rs["grpc"].HasField("metadata")


def test_https_redirect_vhost_requires_tls() -> None:
    cfg = route.of(f.gateway().route_configs[0])
    assert cfg.virtual_hosts[0].require_tls == rc.VirtualHost.ALL


def test_ignore_port_in_host_matching_is_the_models_fact() -> None:
    """Copied from RouteConfig.ignore_port, whatever the name says (an `inbound|` name once decided it), by both
    the message and the table written from its virtual hosts' encodings (emit.assembled)."""
    for name in ("9080", "inbound|9080||"):
        for ignore in (True, False):
            rc_model = dataclasses.replace(f.basic().route_configs[0], name=name, ignore_port=ignore)
            assert route.of(rc_model).ignore_port_in_host_matching is ignore
            vhost_fields = [route.vhost_field_of_parts(vh, (route.route(r).SerializeToString(deterministic=True)
                                                            for r in vh.routes)) for vh in rc_model.virtual_hosts]
            written = route_pb2.RouteConfiguration.FromString(route.serialized(rc_model, vhost_fields))
            assert written == route.of(rc_model)
