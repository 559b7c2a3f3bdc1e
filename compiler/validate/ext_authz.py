"""The checks of an ext_authz extension provider (MeshConfig envoyExtAuthzHttp / envoyExtAuthzGrpc) beyond its
service and port: Istio's ValidateExtensionProviderEnvoyExtAuthzHTTP/GRPC and what extauthz.go refuses."""

from __future__ import annotations

from collections.abc import Iterator

from envoy.type.v3 import http_status_pb2

from compiler.api.mesh_config import ExtAuthzGrpcProvider, ExtAuthzHttpProvider
from compiler.validate import fields


def problems(conf: ExtAuthzGrpcProvider) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """(message, path under the provider kind's key) for each problem."""
    if conf.timeout is not None:
        problem = fields.duration(conf.timeout)
        if problem:
            yield problem, ("timeout",)
    status = conf.status_on_error
    if status and (not status.isdigit() or int(status) not in http_status_pb2.StatusCode.values()
                   or int(status) == 0):
        yield f'statusOnError "{status}" is not an HTTP status code Envoy knows', ("statusOnError",)
    if not isinstance(conf, ExtAuthzHttpProvider):
        return
    if conf.path_prefix and not conf.path_prefix.startswith("/"):
        yield f'pathPrefix must begin with "/", found "{conf.path_prefix}"', ("pathPrefix",)
    for key, names in (("includeRequestHeadersInCheck", conf.include_request_headers_in_check),
                       ("headersToUpstreamOnAllow", conf.headers_to_upstream_on_allow),
                       ("headersToDownstreamOnDeny", conf.headers_to_downstream_on_deny),
                       ("headersToDownstreamOnAllow", conf.headers_to_downstream_on_allow)):
        for i, name in enumerate(names or ()):
            if name == "*":
                yield ('a single wildcard ("*") is not supported, change it to either prefix or suffix match',
                       (key, i))
