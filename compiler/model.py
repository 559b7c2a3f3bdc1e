"""The intermediate model: what one proxy should get, resolved, in Envoy's shape, but without protobuf or YAML.

`compiler.translate` makes it (hosts, subsets, precedence, merging and scoping are all decided there); `compiler.emit`
turns it into protobufs mechanically. Everything here is a frozen value with sorted, named parts, so two equal inputs
give equal models, and the model can be compared and dumped in golden tests (`dataclasses.asdict`).
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from typing import Any, TypeVar

# -- values ----------------------------------------------------------------------------------------------------


_T = TypeVar("_T")


def hash_once(cls: type[_T] | None = None, *, by: tuple[str, ...] = ()) -> Any:
    """Cache a frozen dataclass's hash in its `_hash` slot. The emitter's memo hashes every resource of every proxy
    it builds; recomputing a cluster's hash walks all its nested values each time. With `by`, only those fields
    are hashed (equality still compares them all): a name that nearly identifies the value spares hashing its
    nested parts at all, for values of which a revision holds tens of thousands with distinct names."""
    def wrap(cls: type[_T]) -> type[_T]:
        names = by or tuple(f.name for f in dataclasses.fields(cls) if f.compare)  # type: ignore[arg-type]
        # the fields as a tuple, read in C (one attrgetter of one name gives the bare value: wrap it)
        values = operator.attrgetter(*names) if len(names) > 1 else lambda self: (getattr(self, names[0]),)
        set_hash = object.__setattr__

        def __hash__(self: Any) -> int:
            h = self._hash
            if h is None:
                h = hash(values(self))
                set_hash(self, "_hash", h)
            return h  # type: ignore[no-any-return]

        cls.__hash__ = __hash__  # type: ignore[method-assign]
        return cls
    return wrap(cls) if cls is not None else wrap


class Protocol(enum.StrEnum):
    """A port's protocol, from its name or appProtocol as Istio reads it."""

    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    UNKNOWN = "UNKNOWN"  # treated as TCP (Istio would sniff; we do not)

    @property
    def is_http(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC)

    @property
    def is_http2(self) -> bool:
        return self in (Protocol.HTTP2, Protocol.GRPC)


class ProxyKind(enum.StrEnum):
    SIDECAR = "sidecar"
    ROUTER = "router"  # a gateway


class TrafficDirection(enum.StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    """Back-reference to the policy that produced a piece of config."""

    kind: str
    namespace: str
    name: str
    file: str
    line: int
    # a route's index in its VirtualService's spec.http (None for other config): which route of the resource it
    # is, for whoever reads a config dump or Envoy's %METADATA(ROUTE:meshward:http)% (`meshward test`'s coverage)
    http: int | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} {self.file}:{self.line}"


# -- proxies ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Proxy:
    """A connected (or compiled-for) Envoy, from its node id and the workload found for it."""

    node_id: str
    kind: ProxyKind
    ip: str
    name: str  # workload name (pod / WorkloadEntry name)
    namespace: str
    labels: tuple[tuple[str, str], ...] = ()
    locality: str = ""  # region/zone/subzone of its workload: locality load balancing is relative to it

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


# -- endpoints and clusters ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int
    weight: int = 1
    locality: str = ""  # region/zone/subzone
    healthy: bool = True
    # the workload's `security.istio.io/tlsMode` label ("istio": its sidecar takes mTLS), which Pilot copies into
    # the endpoint's metadata for a cluster's transport_socket_matches (auto mTLS)
    tls_mode: str = ""
    # locality load balancing (compiler.translate.locality), the same for every endpoint of a locality: the Envoy
    # priority of its locality (0 first: failover) and its locality's load_balancing_weight (0: none; distribute)
    priority: int = 0
    locality_weight: int = 0


@hash_once(by=("cluster_name",))  # names are unique within a proxy's config
@dataclasses.dataclass(frozen=True, slots=True)
class LoadAssignment:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    cluster_name: str
    endpoints: tuple[Endpoint, ...]


class Discovery(enum.StrEnum):
    EDS = "EDS"
    STATIC = "STATIC"
    STRICT_DNS = "STRICT_DNS"
    LOGICAL_DNS = "LOGICAL_DNS"
    ORIGINAL_DST = "ORIGINAL_DST"


class LbPolicy(enum.StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    RANDOM = "RANDOM"
    RING_HASH = "RING_HASH"
    MAGLEV = "MAGLEV"


@dataclasses.dataclass(frozen=True, slots=True)
class CircuitBreakers:
    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HttpOptions:
    """Upstream HTTP protocol options (connectionPool.http)."""

    http2: bool = False
    idle_timeout_ms: int | None = None
    max_requests_per_connection: int | None = None
    max_connection_duration_ms: int | None = None
    max_concurrent_streams: int | None = None  # HTTP/2 only
    keepalive_interval_ms: int | None = None  # HTTP/2 PING keepalive (http2KeepAlive), HTTP/2 only
    keepalive_timeout_ms: int | None = None
    use_client_protocol: bool = False  # the upstream speaks the downstream's HTTP version (useClientProtocol)


CONNECT_TIMEOUT_MS = 10_000  # Istio's MeshConfig connectTimeout default (pkg/config/mesh/mesh.go)


@dataclasses.dataclass(frozen=True, slots=True)
class TcpOptions:
    connect_timeout_ms: int = CONNECT_TIMEOUT_MS
    keepalive_time_s: int | None = None
    keepalive_interval_s: int | None = None
    keepalive_probes: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OutlierDetection:
    consecutive_5xx: int | None = None
    consecutive_gateway_errors: int | None = None
    interval_ms: int | None = None
    base_ejection_time_ms: int | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


class SecretSource(enum.StrEnum):
    """Who serves a TLS context's SDS secrets (Pilot's ConstructSdsSecretConfig, pilot/pkg/model/credentials.go):
    the control plane over ADS (credentialName, certificate files), or the agent beside the proxy over its
    `sds-grpc` cluster (the mesh identity, `default` and `ROOTCA`, which no control plane holds)."""

    CONTROL_PLANE = "control-plane"
    AGENT = "agent"


class TlsMode(enum.StrEnum):
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamTls:
    mode: TlsMode
    sni: str = ""
    subject_alt_names: tuple[str, ...] = ()
    ca_certificates: str = ""  # file path
    client_certificate: str = ""
    private_key: str = ""
    credential_secret: str = ""  # SDS secret name (credentialName, or "default" for ISTIO_MUTUAL)
    ca_secret: str = ""  # SDS validation secret name ("ROOTCA" for ISTIO_MUTUAL)
    alpn: tuple[str, ...] = ()
    insecure_skip_verify: bool = False
    secrets_from: SecretSource = SecretSource.CONTROL_PLANE


# by name and sources: the inbound clusters of different workloads share names (`inbound|8080||`), and tables of
# clusters are looked up by value, so what tells them apart must be in the hash
@hash_once(by=("name", "sources"))
@dataclasses.dataclass(frozen=True, slots=True)
class Cluster:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    name: str  # outbound|9080|v1|reviews.shop.svc.cluster.local, inbound|9080||
    discovery: Discovery
    lb_policy: LbPolicy = LbPolicy.ROUND_ROBIN
    minimum_ring_size: int | None = None
    maglev_table_size: int | None = None
    tcp: TcpOptions = TcpOptions()
    http: HttpOptions | None = None  # None for TCP clusters
    circuit_breakers: CircuitBreakers | None = None
    outlier: OutlierDetection | None = None
    tls: UpstreamTls | None = None
    # auto mTLS (Pilot's transport_socket_matches): `tls` only toward endpoints whose tls_mode is "istio",
    # plaintext toward the others
    auto_mtls: bool = False
    locality_weighted: bool = False  # common_lb_config.locality_weighted_lb_config: Envoy reads locality weights
    endpoints: tuple[Endpoint, ...] = ()  # inline for STATIC / DNS clusters; EDS clusters get a LoadAssignment
    dns_host: str = ""  # for STRICT/LOGICAL_DNS: the host name resolved
    direction: TrafficDirection = TrafficDirection.OUTBOUND
    service_host: str = ""
    port: int = 0
    subset: str = ""
    sources: tuple[Source, ...] = ()


# -- routes ----------------------------------------------------------------------------------------------------


class MatchKind(enum.StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"
    PRESENT = "present"  # header present (Istio: an empty match object, or `present: true`)


@dataclasses.dataclass(frozen=True, slots=True)
class StringMatch:
    kind: MatchKind
    value: str = ""
    ignore_case: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str  # lowercase; pseudo headers for method (:method) and authority (:authority)
    match: StringMatch
    invert: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class QueryMatch:
    name: str
    match: StringMatch


@dataclasses.dataclass(frozen=True, slots=True)
class RouteMatch:
    path: StringMatch = StringMatch(MatchKind.PREFIX, "/")
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class HeaderOps:
    set: tuple[tuple[str, str], ...] = ()  # overwrite
    add: tuple[tuple[str, str], ...] = ()  # append
    remove: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not (self.set or self.add or self.remove)


@dataclasses.dataclass(frozen=True, slots=True)
class WeightedCluster:
    cluster: str
    weight: int
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    per_try_timeout_ms: int | None = None
    retry_on: str = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    retriable_status_codes: tuple[int, ...] = ()
    retry_remote_localities: bool = False
    ignore_previous_hosts: bool = True  # Istio's default: a retry picks another host (retryIgnorePreviousHosts)
    backoff_ms: int | None = None  # the base interval between retries (Envoy's default 25 ms when None)


@dataclasses.dataclass(frozen=True, slots=True)
class Mirror:
    cluster: str
    percent: float = 100.0


@dataclasses.dataclass(frozen=True, slots=True)
class HashPolicy:
    """consistentHash of a DestinationRule, copied onto the routes that reach it."""

    header: str = ""
    cookie: str = ""
    cookie_ttl_ms: int | None = None
    cookie_path: str = ""
    query_parameter: str = ""
    source_ip: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Forward:
    clusters: tuple[WeightedCluster, ...]
    timeout_ms: int | None = None  # None: Envoy default; 0: disabled (Istio's default for routes)
    retry: RetryPolicy | None = None
    prefix_rewrite: str | None = None
    regex_rewrite: tuple[str, str] | None = None  # (pattern, substitution)
    host_rewrite: str | None = None
    mirrors: tuple[Mirror, ...] = ()
    hash_policies: tuple[HashPolicy, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Redirect:
    path: str | None = None
    prefix: str | None = None  # prefix rewrite on redirect
    authority: str | None = None
    scheme: str | None = None
    port: int | None = None
    response_code: int = 301


@dataclasses.dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    delay_ms: int | None = None
    delay_percent: float = 100.0
    abort_status: int | None = None
    abort_grpc_status: int | None = None
    abort_percent: float = 100.0


@dataclasses.dataclass(frozen=True, slots=True)
class Cors:
    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: int | None = None
    allow_credentials: bool | None = None
    forward_unmatched_preflights: bool = True  # unmatchedPreflights IGNORE: answered by Envoy, not forwarded


@hash_once
@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    name: str
    match: RouteMatch
    action: Forward | Redirect | DirectResponse
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    fault: Fault | None = None
    cors: Cors | None = None
    source: Source | None = None
    stat_prefix: str = ""  # the match's statPrefix: Envoy keeps per-route stats under it


@hash_once(by=("name", "domains"))  # the domains tell apart the same host's virtual hosts in two namespaces
@dataclasses.dataclass(frozen=True, slots=True)
class VirtualHost:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    name: str  # reviews.shop.svc.cluster.local:9080
    # what the name is made of (naming.virtual_host(host, port)), so that no one parses it back: the service,
    # VirtualService or Gateway host served ("*" for catch-alls: block_all, inbound) and the route config's port
    host: str
    port: int
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    require_tls: bool = False  # gateway httpsRedirect


@hash_once
@dataclasses.dataclass(frozen=True, slots=True)
class RouteConfig:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    name: str  # "9080" for sidecar outbound, "http.8080" for gateways, as Pilot names them
    # Envoy drops the Host header's port before matching domains (ignore_port_in_host_matching), so the domains
    # need no `:PORT` forms; translate decides it per kind of route config, as Pilot does
    ignore_port: bool
    virtual_hosts: tuple[VirtualHost, ...]


# -- authorization (AuthorizationPolicy -> Envoy RBAC) ----------------------------------------------------------
# Istio's generator (pilot/pkg/security/authz/model) builds a tree of RBAC permissions (what is asked) and principals
# (who asks); these are its leaves and combinators, named after Envoy's rbac.v3 fields so that emit maps one to one.


@dataclasses.dataclass(frozen=True, slots=True)
class AuthzAny:
    """Matches everything (`any: true`); the field is there so that the golden model dump says so."""

    any: bool


@dataclasses.dataclass(frozen=True, slots=True)
class AuthzAnd:
    all_of: tuple[AuthzMatch, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AuthzOr:
    any_of: tuple[AuthzMatch, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AuthzNot:
    negated: AuthzMatch


@dataclasses.dataclass(frozen=True, slots=True)
class PeerPrincipal:
    """The peer certificate's URI SAN (principal `authenticated.principal_name`): principals, namespaces."""

    match: StringMatch


@dataclasses.dataclass(frozen=True, slots=True)
class PeerIp:
    """source.ip / ipBlocks (`direct_remote_ip`), or remote.ip / remoteIpBlocks (`remote_ip`, after XFF)."""

    cidr: str  # address/prefix length
    remote: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class RequestHeader:
    """A request header (`:method`, `:authority`, request.headers[...])."""

    header: HeaderMatch


@dataclasses.dataclass(frozen=True, slots=True)
class DynamicMetadata:
    """A value another filter left in the request's dynamic metadata: a claim of the JWT payload jwt_authn
    verified (request principals, request.auth.*), or `experimental.envoy.filters.*`. `one_of_list` matches one
    element of a list value; `or_list` also the value itself (a claim may be a string or a list of them)."""

    filter: str
    path: tuple[str, ...]
    match: StringMatch
    one_of_list: bool = False
    or_list: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class UrlPath:
    """The request path without the query (`url_path`)."""

    match: StringMatch


@dataclasses.dataclass(frozen=True, slots=True)
class PathTemplate:
    """A path with Envoy's URI template globs (`*` one segment, `**` any), from Istio's `{*}` / `{**}`."""

    template: str


@dataclasses.dataclass(frozen=True, slots=True)
class DestinationPort:
    port: int


@dataclasses.dataclass(frozen=True, slots=True)
class DestinationIp:
    cidr: str


@dataclasses.dataclass(frozen=True, slots=True)
class ServerName:
    """connection.sni (`requested_server_name`)."""

    match: StringMatch


AuthzMatch = (AuthzAny | AuthzAnd | AuthzOr | AuthzNot | PeerPrincipal | PeerIp | RequestHeader | DynamicMetadata | UrlPath
              | PathTemplate | DestinationPort | DestinationIp | ServerName)


@dataclasses.dataclass(frozen=True, slots=True)
class RbacPolicy:
    """One rule of an AuthorizationPolicy: `ns[NS]-policy[NAME]-rule[I]`; it matches when one permission and one
    principal match."""

    name: str
    permissions: tuple[AuthzMatch, ...]
    principals: tuple[AuthzMatch, ...]


class RbacAction(enum.StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    LOG = "LOG"  # AUDIT policies


@dataclasses.dataclass(frozen=True, slots=True)
class Rbac:
    """One RBAC filter: the enforced policies of one action (None: only dry-run ones, nothing enforced) and the
    `istio.io/dry-run` ones as shadow rules. Enforced ALLOW with no policy denies everything, as in Istio."""

    action: RbacAction
    rules: tuple[RbacPolicy, ...] | None
    shadow_rules: tuple[RbacPolicy, ...] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ExtAuthzBody:
    """includeRequestBodyInCheck: the request body buffered into the check (Envoy's BufferSettings)."""

    max_request_bytes: int
    allow_partial_message: bool
    pack_as_bytes: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ExtAuthz:
    """An ext_authz provider (MeshConfig extensionProviders envoyExtAuthzHttp / envoyExtAuthzGrpc) as Pilot builds
    its filter (pilot/pkg/security/authz/builder/extauthz.go): the check goes to `cluster`, the provider service's
    outbound cluster."""

    grpc: bool
    cluster: str
    host: str
    timeout_ms: int
    fail_open: bool = False
    status_on_error: int | None = None
    body: ExtAuthzBody | None = None
    # HTTP only: the check request's path prefix and which headers go where (exact, `prefix*` or `*suffix`)
    path_prefix: str = ""
    request_headers: tuple[str, ...] = ()
    upstream_on_allow: tuple[str, ...] = ()
    downstream_on_deny: tuple[str, ...] = ()
    downstream_on_allow: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class CustomAuthz:
    """The CUSTOM AuthorizationPolicies of a workload: an RBAC filter that enforces nothing but marks the requests
    the policies match (its shadow rules, named `istio-ext-authz-...`, leave that name in dynamic metadata), then
    the ext_authz filter, enabled only for requests so marked (Pilot's builder.go buildHTTP)."""

    provider: ExtAuthz
    marks: tuple[RbacPolicy, ...]


# -- listeners -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DownstreamTls:
    """TLS termination at a listener (Gateway servers)."""

    mode: str  # SIMPLE | MUTUAL | ISTIO_MUTUAL | OPTIONAL_MUTUAL
    credential_secret: str  # SDS secret name (credentialName, "default" for ISTIO_MUTUAL, or the files' secret)
    ca_secret: str = ""
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    subject_alt_names: tuple[str, ...] = ()
    min_version: str = ""
    max_version: str = ""
    secrets_from: SecretSource = SecretSource.CONTROL_PLANE
    # URI SAN prefixes a client certificate must have one of: `spiffe://TD/` per trust domain of the mesh, as Pilot
    # validates a peer's trust domain on inbound mTLS (ApplyToCommonTLSContext with TrustDomainsForValidation)
    san_prefixes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class JwtProvider:
    """One RequestAuthentication jwtRule (Pilot's convertToEnvoyJwtConfig): a token from `from_headers` /
    `from_params` / `from_cookies` (Envoy's defaults when none) must verify against `jwks`, else 401; a request
    without one passes. The verified payload goes to dynamic metadata for RBAC."""

    name: str  # origins-N, in rule order
    issuer: str
    jwks: str  # inline JWKS
    audiences: tuple[str, ...] = ()
    forward: bool = False
    forward_payload_header: str = ""
    from_headers: tuple[tuple[str, str], ...] = ()  # (name, value prefix)
    from_params: tuple[str, ...] = ()
    from_cookies: tuple[str, ...] = ()
    claim_to_headers: tuple[tuple[str, str], ...] = ()  # (header, claim)
    space_delimited_claims: tuple[str, ...] = ()


class MtlsMode(enum.StrEnum):
    """PeerAuthentication's mode of an inbound port, inheritance resolved (UNSET never reaches the model)."""

    STRICT = "STRICT"
    PERMISSIVE = "PERMISSIVE"
    DISABLE = "DISABLE"


@dataclasses.dataclass(frozen=True, slots=True)
class OtelCollector:
    """Where an OpenTelemetry access log goes: a collector's outbound cluster, called over Envoy's gRPC client."""

    cluster: str  # outbound|PORT||HOST, a cluster of the same proxy
    authority: str  # the collector's hostname
    log_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class AccessLog:
    """A file access log (envoy.access_loggers.file to `path`): a text format string, or JSON with these labels.
    With `otel`, an OpenTelemetry one instead (envoy.access_loggers.open_telemetry, `path` empty): `text` is the
    log record's body and `json` its attributes, either or both."""

    path: str
    text: str = ""  # the format string, when `json` is empty
    json: tuple[tuple[str, str], ...] = ()  # (label, command operator), sorted by label
    otel: OtelCollector | None = None
    # Telemetry filter.expression: a CEL expression (compiler.validate.cel checked it); only requests for which it is
    # true are logged (envoy.access_loggers.extension_filters.cel)
    filter: str = ""


class TagKind(enum.StrEnum):
    """Where a span tag's value comes from (type.tracing.v3.CustomTag's kinds)."""

    LITERAL = "literal"
    ENVIRONMENT = "environment"  # an environment variable of the proxy
    REQUEST_HEADER = "request_header"
    FORMATTER = "value"  # an access-log format string (%REQ(...)%)
    RBAC_METADATA = "metadata"  # a key of the RBAC filter's dynamic metadata (Istio's dry-run policy tags)


@dataclasses.dataclass(frozen=True, slots=True)
class SpanTag:
    tag: str
    kind: TagKind
    value: str  # the literal or format string, the variable's or header's name, the metadata key
    default: str = ""  # for an environment variable or header that is absent


class Tracer(enum.StrEnum):
    ZIPKIN = "zipkin"  # envoy.tracers.zipkin: Zipkin v2 JSON over HTTP
    OPENTELEMETRY = "opentelemetry"  # envoy.tracers.opentelemetry: OTLP over gRPC


@dataclasses.dataclass(frozen=True, slots=True)
class Tracing:
    """A connection manager's tracing, resolved from Telemetry and MeshConfig (compiler.translate.tracing)."""

    tracer: Tracer
    cluster: str  # the collector's outbound cluster, which the proxy's CDS holds
    host: str  # the collector's hostname: Zipkin's Host header, the gRPC authority
    sampling: float  # random_sampling, in percent
    tags: tuple[SpanTag, ...] = ()  # sorted by tag
    spawn_upstream_span: bool = False
    max_path_tag_length: int = 0  # 0: Envoy's default
    use_request_id_for_sampling: bool = True  # the UUID request id extension's use_request_id_for_trace_sampling
    path: str = ""  # Zipkin, OpenTelemetry over HTTP: the collector's endpoint
    trace_id_128bit: bool = True  # Zipkin
    service_name: str = ""  # OpenTelemetry: the resource's service.name
    http: bool = False  # OpenTelemetry: OTLP over HTTP (else gRPC)
    timeout_ms: int = 0  # OpenTelemetry: the export's timeout (0: Envoy's default, gRPC only)
    headers: tuple[tuple[str, str], ...] = ()  # OpenTelemetry: HTTP headers, or gRPC initial metadata


@dataclasses.dataclass(frozen=True, slots=True)
class HttpFilterChain:
    """http_connection_manager: routes by RDS name, or inline (static bootstraps are made by the emitter)."""

    stat_prefix: str
    route_config_name: str
    faults: bool = False  # some route here has a fault: install envoy.filters.http.fault
    cors: bool = False  # some route here has a CORS policy: install envoy.filters.http.cors
    http2_only: bool = False
    # gateways (Istio's createGatewayHTTPFilterChainOpts): the downstream peer is the client, so XFF and
    # internal/external classification use its address
    use_remote_address: bool = False
    rbac: tuple[Rbac, ...] = ()  # AuthorizationPolicies of the workload, in Istio's order (AUDIT, DENY, ALLOW)
    custom: CustomAuthz | None = None  # CUSTOM policies: checked by an ext_authz service before `rbac`
    jwt: tuple[JwtProvider, ...] = ()  # RequestAuthentications of the workload
    # an mTLS-capable inbound port: x-forwarded-client-cert carries the peer's URI SAN (and a client's own is dropped)
    forward_client_cert: bool = False
    access_logs: tuple[AccessLog, ...] = ()  # MeshConfig accessLogFile (compiler.translate.telemetry)
    tracing: Tracing | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TcpFilterChain:
    stat_prefix: str
    clusters: tuple[WeightedCluster, ...]
    rbac: tuple[Rbac, ...] = ()  # network RBAC before tcp_proxy, same order as HttpFilterChain.rbac
    custom: CustomAuthz | None = None  # as HttpFilterChain's, with a gRPC provider only (Pilot's buildTCP)
    access_logs: tuple[AccessLog, ...] = ()  # as HttpFilterChain's, on tcp_proxy


@dataclasses.dataclass(frozen=True, slots=True)
class FilterChain:
    name: str
    filter: HttpFilterChain | TcpFilterChain
    server_names: tuple[str, ...] = ()  # SNI match
    transport_protocol: str = ""  # "tls" / "raw_buffer" / ""
    destination_port: int | None = None
    tls: DownstreamTls | None = None
    source: Source | None = None


@hash_once
@dataclasses.dataclass(frozen=True, slots=True)
class Listener:
    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    name: str  # 0.0.0.0_9080, virtualInbound, ...
    address: str
    port: int
    direction: TrafficDirection
    filter_chains: tuple[FilterChain, ...]
    default_chain: FilterChain | None = None
    # False for Istio's "virtual" listeners (traffic only arrives by capture, which these hosts lack): Envoy keeps
    # them without binding. Sidecar captureMode NONE / bind listeners and gateway listeners bind for real.
    bind_to_port: bool = True


# -- secrets ---------------------------------------------------------------------------------------------------


@hash_once
@dataclasses.dataclass(frozen=True, slots=True)
class Secret:
    """An SDS secret: a certificate chain and key, or a validation context (CA bundle)."""

    _hash: int | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    name: str
    certificate_chain: str = ""  # PEM or file path, see `inline`
    private_key: str = ""
    trusted_ca: str = ""
    inline: bool = True  # PEM given inline; False: file paths


# -- the result ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Metrics:
    """What the proxy's Prometheus metrics leave out (Telemetry `metrics`: compiler.translate.telemetry_metrics).
    Envoy reads this from its bootstrap only (`stats_config`, `stats_flush_interval`), never over xDS."""

    disabled: tuple[str, ...] = ()  # Istio metric names (REQUEST_COUNT, ...) whose Envoy stats are not created
    removed_tags: tuple[str, ...] = ()  # Istio labels (destination_subset, ...) not extracted from stat names
    flush_interval_ms: int = 0  # Telemetry reportingInterval; 0: Envoy's default (5 s)


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything one proxy gets. Sorted by name within each kind."""

    proxy: Proxy
    listeners: tuple[Listener, ...] = ()
    route_configs: tuple[RouteConfig, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    load_assignments: tuple[LoadAssignment, ...] = ()
    secrets: tuple[Secret, ...] = ()
    metrics: Metrics = Metrics()  # bootstrap only

    def secret_references(self, source: SecretSource = SecretSource.CONTROL_PLANE) -> frozenset[str]:
        """Every SDS secret name a listener or cluster of this proxy refers to (served or not) that `source`
        serves: by default those the control plane must hold."""
        contexts = [chain.tls for listener in self.listeners
                    for chain in (*listener.filter_chains, *((listener.default_chain,) if listener.default_chain else ()))]
        contexts += [cluster.tls for cluster in self.clusters]
        return frozenset(n for tls in contexts if tls is not None and tls.secrets_from is source
                         for n in (tls.credential_secret, tls.ca_secret) if n)


# -- proxyless gRPC --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcListener:
    """An api_listener of a proxyless gRPC client: named as a channel dials it (`reviews:9080`), routing over RDS."""

    name: str
    route_config_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcConfig:
    """What one proxyless gRPC client gets (gRFC A27): its workload's ProxyConfig cut down by
    compiler.translate.proxyless to what gRPC's own xDS client accepts."""

    proxy: Proxy
    listeners: tuple[GrpcListener, ...]
    route_configs: tuple[RouteConfig, ...]
    clusters: tuple[Cluster, ...]
    load_assignments: tuple[LoadAssignment, ...]  # one per EDS cluster, empty or not
