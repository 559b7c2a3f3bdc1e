"""envoy.filters.http.ext_authz and envoy.filters.network.ext_authz: the check of CUSTOM AuthorizationPolicies.

As Pilot writes them (pilot/pkg/security/authz/builder/extauthz.go generateHTTPConfig / generateGRPCConfig): the
filter runs only for requests (connections) whose RBAC filter left a shadow policy id starting `istio-ext-authz`
under the `istio_ext_authz_` stat prefix (`filter_enabled_metadata`), i.e. those a CUSTOM policy matches.
"""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2, http_uri_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2 as http_pb2
from envoy.extensions.filters.network.ext_authz.v3 import ext_authz_pb2 as network_pb2
from envoy.type.matcher.v3 import metadata_pb2, string_pb2, value_pb2
from envoy.type.v3 import http_status_pb2

from compiler import model
from compiler.emit import common

HTTP_NAME = "envoy.filters.http.ext_authz"
NETWORK_NAME = "envoy.filters.network.ext_authz"
SHADOW_PREFIX = "istio_ext_authz_"  # authz model RBACExtAuthzShadowRulesStatPrefix, on the marking RBAC filter
_MATCH_PREFIX = "istio-ext-authz"  # extAuthzMatchPrefix


def _enabled(rbac_filter: str) -> metadata_pb2.MetadataMatcher:
    return metadata_pb2.MetadataMatcher(
        filter=rbac_filter, path=[metadata_pb2.MetadataMatcher.PathSegment(key=SHADOW_PREFIX + "shadow_effective_policy_id")],
        value=value_pb2.ValueMatcher(string_match=string_pb2.StringMatcher(prefix=_MATCH_PREFIX)))


def _headers(names: tuple[str, ...]) -> string_pb2.ListStringMatcher:
    """generateHeaders: case-insensitive, `*suffix` and `prefix*` as Istio reads them."""
    out = string_pb2.ListStringMatcher()
    for name in names:
        if name.startswith("*"):
            out.patterns.add(suffix=name[1:], ignore_case=True)
        elif name.endswith("*"):
            out.patterns.add(prefix=name[:-1], ignore_case=True)
        else:
            out.patterns.add(exact=name, ignore_case=True)
    return out


def _grpc(p: model.ExtAuthz) -> grpc_service_pb2.GrpcService:
    # `|` is not valid in a gRPC authority, which otherwise defaults to the cluster name (generateGRPCConfig)
    return grpc_service_pb2.GrpcService(
        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=p.cluster,
                                                          authority=p.cluster.replace("|", "_.")),
        timeout=common.duration(p.timeout_ms))


def http_config(p: model.ExtAuthz) -> http_pb2.ExtAuthz:
    out = http_pb2.ExtAuthz(failure_mode_allow=p.fail_open, transport_api_version=config_source_pb2.V3,
                            filter_enabled_metadata=_enabled("envoy.filters.http.rbac"))
    if p.status_on_error is not None:
        out.status_on_error.CopyFrom(http_status_pb2.HttpStatus(code=p.status_on_error))
    if p.body is not None:
        out.with_request_body.CopyFrom(http_pb2.BufferSettings(
            max_request_bytes=p.body.max_request_bytes, allow_partial_message=p.body.allow_partial_message,
            pack_as_bytes=p.body.pack_as_bytes))
    if p.grpc:
        out.grpc_service.CopyFrom(_grpc(p))
        return out
    service = out.http_service
    service.path_prefix = p.path_prefix
    # the URI is required but not used: the cluster is (generateHTTPConfig)
    service.server_uri.CopyFrom(http_uri_pb2.HttpUri(uri=f"http://{p.host}", cluster=p.cluster,
                                                     timeout=common.duration(p.timeout_ms)))
    if p.request_headers:
        service.authorization_request.allowed_headers.CopyFrom(_headers(p.request_headers))
    if p.upstream_on_allow or p.downstream_on_deny or p.downstream_on_allow:
        response = service.authorization_response
        for field, names in (("allowed_upstream_headers", p.upstream_on_allow),
                             ("allowed_client_headers", p.downstream_on_deny),
                             ("allowed_client_headers_on_success", p.downstream_on_allow)):
            if names:
                getattr(response, field).CopyFrom(_headers(names))
    return out


def network_config(p: model.ExtAuthz) -> network_pb2.ExtAuthz:
    return network_pb2.ExtAuthz(stat_prefix="tcp.", failure_mode_allow=p.fail_open, grpc_service=_grpc(p),
                                transport_api_version=config_source_pb2.V3,
                                filter_enabled_metadata=_enabled("envoy.filters.network.rbac"))
