"""What a route does: forward (RouteAction), redirect (RedirectAction) or answer (DirectResponseAction).

Split from route.py because forwarding alone has weighted clusters, retries, rewrites, mirrors and hash
policies.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2
from envoy.type.matcher.v3 import regex_pb2

from compiler import model
from compiler.emit import common

_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}

# Istio retries on another host than the one that failed, trying up to 5 host picks (its retry defaults).
_PREVIOUS_HOSTS = rc.RetryPolicy.RetryHostPredicate(
    name="envoy.retry_host_predicates.previous_hosts",
    typed_config=common.pack(previous_hosts_pb2.PreviousHostsPredicate()),
)
_PREVIOUS_PRIORITIES = rc.RetryPolicy.RetryPriority(
    name="envoy.retry_priorities.previous_priorities",
    typed_config=common.pack(previous_priorities_config_pb2.PreviousPrioritiesConfig(update_frequency=2)),
)


def _weighted(c: model.WeightedCluster) -> rc.WeightedCluster.ClusterWeight:
    out = rc.WeightedCluster.ClusterWeight(
        name=c.cluster,
        request_headers_to_add=common.headers_to_add(c.request_headers),
        request_headers_to_remove=c.request_headers.remove,
        response_headers_to_add=common.headers_to_add(c.response_headers),
        response_headers_to_remove=c.response_headers.remove,
    )
    out.weight.value = c.weight
    return out


def _retry(r: model.RetryPolicy) -> rc.RetryPolicy:
    out = rc.RetryPolicy(
        retry_on=r.retry_on,
        retriable_status_codes=r.retriable_status_codes,
        retry_host_predicate=[_PREVIOUS_HOSTS] if r.ignore_previous_hosts else [],
        host_selection_retry_max_attempts=5,
    )
    out.num_retries.value = r.attempts
    if r.per_try_timeout_ms is not None:
        out.per_try_timeout.CopyFrom(common.duration(r.per_try_timeout_ms))
    if r.backoff_ms is not None:
        out.retry_back_off.base_interval.CopyFrom(common.duration(r.backoff_ms))
    if r.retry_remote_localities:  # Istio: retry in other localities (priorities) than the failed one
        out.retry_priority.CopyFrom(_PREVIOUS_PRIORITIES)
    return out


def _mirror(m: model.Mirror) -> rc.RouteAction.RequestMirrorPolicy:
    out = rc.RouteAction.RequestMirrorPolicy(cluster=m.cluster)
    if m.percent < 100.0:
        out.runtime_fraction.default_value.CopyFrom(common.fraction(m.percent))
    return out


def _hash_policy(h: model.HashPolicy) -> rc.RouteAction.HashPolicy:
    hp = rc.RouteAction.HashPolicy
    if h.header:
        return hp(header=hp.Header(header_name=h.header))
    if h.cookie:
        ttl = None if h.cookie_ttl_ms is None else common.duration(h.cookie_ttl_ms)
        return hp(cookie=hp.Cookie(name=h.cookie, ttl=ttl, path=h.cookie_path))
    if h.query_parameter:
        return hp(query_parameter=hp.QueryParameter(name=h.query_parameter))
    if h.source_ip:
        return hp(connection_properties=hp.ConnectionProperties(source_ip=True))
    raise common.EmitError("a hash policy needs a header, cookie, query parameter or source IP")


def _set_clusters(out: rc.RouteAction, clusters: tuple[model.WeightedCluster, ...]) -> None:
    if not clusters:
        raise common.EmitError("a forwarding route needs at least one cluster")
    only = clusters[0]
    if len(clusters) == 1 and only.request_headers.empty() and only.response_headers.empty():
        out.cluster = only.cluster
    else:
        out.weighted_clusters.clusters.extend(_weighted(c) for c in clusters)


def forward(f: model.Forward) -> rc.RouteAction:
    out = rc.RouteAction(
        hash_policy=[_hash_policy(h) for h in f.hash_policies],
        request_mirror_policies=[_mirror(m) for m in f.mirrors],
    )
    _set_clusters(out, f.clusters)
    if f.timeout_ms is not None:  # 0 is a real value: Envoy reads a zero timeout as "disabled"
        out.timeout.CopyFrom(common.duration(f.timeout_ms))
    if f.retry is not None:
        out.retry_policy.CopyFrom(_retry(f.retry))
    if f.prefix_rewrite is not None:
        out.prefix_rewrite = f.prefix_rewrite
    if f.regex_rewrite is not None:
        pattern, substitution = f.regex_rewrite
        out.regex_rewrite.CopyFrom(
            regex_pb2.RegexMatchAndSubstitute(pattern=common.regex(pattern), substitution=substitution)
        )
    if f.host_rewrite is not None:
        out.host_rewrite_literal = f.host_rewrite
    return out


def redirect(r: model.Redirect) -> rc.RedirectAction:
    if r.response_code not in _REDIRECT_CODES:
        raise common.EmitError(f"redirect code {r.response_code} is not one Envoy supports")
    out = rc.RedirectAction(response_code=_REDIRECT_CODES[r.response_code])
    if r.path is not None:
        out.path_redirect = r.path
    elif r.prefix is not None:
        out.prefix_rewrite = r.prefix
    if r.authority is not None:
        out.host_redirect = r.authority
    if r.scheme is not None:
        out.scheme_redirect = r.scheme
    if r.port is not None:
        out.port_redirect = r.port
    return out


def direct_response(d: model.DirectResponse) -> rc.DirectResponseAction:
    out = rc.DirectResponseAction(status=d.status)
    if d.body:
        out.body.CopyFrom(base_pb2.DataSource(inline_string=d.body))
    return out
