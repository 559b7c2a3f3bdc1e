"""VirtualService (networking.istio.io): HTTP, TLS and TCP routing rules for a set of hosts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.api.base import ApiModel, Duration, Int32, UInt32
from compiler.api.common import PortSelector


class StringMatch(ApiModel):
    """oneof exact / prefix / regex (RE2)."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class Percent(ApiModel):
    value: float | None = None


class Destination(ApiModel):
    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(ApiModel):
    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(ApiModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPMatchRequest(ApiModel):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    port: UInt32 | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    query_params: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: dict[str, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None


class HTTPRouteDestination(ApiModel):
    destination: Destination
    weight: Int32 | None = None
    headers: Headers | None = None


class RouteDestination(ApiModel):
    destination: Destination
    weight: Int32 | None = None


class HTTPMirrorPolicy(ApiModel):
    destination: Destination
    percentage: Percent | None = None


class HTTPRedirect(ApiModel):
    uri: str | None = None
    authority: str | None = None
    port: UInt32 | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    prefix_rewrite: str | None = None
    scheme: str | None = None
    redirect_code: UInt32 | None = None


class HTTPBody(ApiModel):
    """oneof string / bytes (base64)."""

    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(ApiModel):
    status: UInt32
    body: HTTPBody | None = None


class Delegate(ApiModel):
    name: str | None = None
    namespace: str | None = None


class RegexRewrite(ApiModel):
    match: str | None = None
    rewrite: str | None = None


class HTTPRewrite(ApiModel):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(ApiModel):
    attempts: Int32 | None = None
    per_try_timeout: Duration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


class CorsPolicy(ApiModel):
    allow_origin: list[str] | None = None  # deprecated: allowOrigins
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: Duration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


class Delay(ApiModel):
    """HTTPFaultInjection.Delay: oneof fixedDelay / exponentialDelay."""

    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percent: Int32 | None = None  # deprecated: percentage
    percentage: Percent | None = None


class Abort(ApiModel):
    """HTTPFaultInjection.Abort: oneof httpStatus / grpcStatus / http2Error."""

    http_status: Int32 | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None


class HTTPFaultInjection(ApiModel):
    delay: Delay | None = None
    abort: Abort | None = None


class HTTPRoute(ApiModel):
    name: str | None = None
    match: list[HTTPMatchRequest] | None = None
    route: list[HTTPRouteDestination] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] | None = None
    mirror_percent: UInt32 | None = None  # deprecated
    mirror_percent_legacy: UInt32 | None = Field(None, alias="mirror_percent")  # the CRD also accepts this spelling
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


class L4MatchAttributes(ApiModel):
    destination_subnets: list[str] | None = None
    port: UInt32 | None = None
    source_subnet: str | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    source_namespace: str | None = None


class TLSMatchAttributes(ApiModel):
    sni_hosts: list[str]
    destination_subnets: list[str] | None = None
    port: UInt32 | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    source_namespace: str | None = None


class TCPRoute(ApiModel):
    match: list[L4MatchAttributes] | None = None
    route: list[RouteDestination] | None = None


class TLSRoute(ApiModel):
    match: list[TLSMatchAttributes]
    route: list[RouteDestination] | None = None


class VirtualService(ApiModel):
    hosts: list[str] | None = None
    gateways: list[str] | None = None
    http: list[HTTPRoute] | None = None
    tls: list[TLSRoute] | None = None
    tcp: list[TCPRoute] | None = None
    export_to: list[str] | None = None
