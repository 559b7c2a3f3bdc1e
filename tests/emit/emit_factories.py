"""Hand-built ProxyConfigs, one per emitter feature, shared by the emit tests.

Each case is small and named; `CASES` lists them all so the real-Envoy test validates every one.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path

from pki import pem_pair, write_pem_files  # noqa: F401 - re-exported for the emit tests

from compiler import model as m

HOST = "reviews.shop.svc.cluster.local"
CLUSTER = f"outbound|9080||{HOST}"
SRC = m.Source("VirtualService", "shop", "reviews", "mesh/reviews.yaml", 14)
DR_SRC = m.Source("DestinationRule", "shop", "reviews", "mesh/reviews-dr.yaml", 3)
PROXY = m.Proxy(
    "sidecar~10.0.0.1~productpage-1.shop~shop.svc.cluster.local",
    m.ProxyKind.SIDECAR,
    "10.0.0.1",
    "productpage-1",
    "shop",
)


def eds_cluster(name: str = CLUSTER, **kw: object) -> m.Cluster:
    return m.Cluster(name=name, discovery=m.Discovery.EDS, http=m.HttpOptions(), **kw)  # type: ignore[arg-type]


def http_listener(route_name: str = "9080", port: int = 9080, **chain_kw: object) -> m.Listener:
    chain = m.FilterChain(
        name="http",
        filter=m.HttpFilterChain(
            stat_prefix=f"outbound_0.0.0.0_{port}", route_config_name=route_name, **chain_kw
        ),
    )  # type: ignore[arg-type]
    return m.Listener(f"0.0.0.0_{port}", "0.0.0.0", port, m.TrafficDirection.OUTBOUND, (chain,))


def forward(*clusters: str, **kw: object) -> m.Forward:
    return m.Forward(tuple(m.WeightedCluster(c, 100 // len(clusters)) for c in clusters), **kw)  # type: ignore[arg-type]


def routes(*rs: m.Route, name: str = "9080", domains: tuple[str, ...] = (HOST, "reviews")) -> m.RouteConfig:
    return m.RouteConfig(name, ignore_port=True, virtual_hosts=(m.VirtualHost(f"{HOST}:9080", HOST, 9080, domains, rs),))


def http_proxy(*rs: m.Route, clusters: tuple[m.Cluster, ...] = (), **chain_kw: object) -> m.ProxyConfig:
    """A sidecar with one HTTP listener on 9080, the given routes, and an EDS cluster for reviews."""
    clusters = clusters or (eds_cluster(),)
    eds = tuple(
        m.LoadAssignment(c.name, (m.Endpoint("10.0.1.1", 9080),))
        for c in clusters
        if c.discovery is m.Discovery.EDS
    )
    return m.ProxyConfig(
        PROXY,
        listeners=(http_listener(**chain_kw),),
        route_configs=(routes(*rs),),
        clusters=clusters,
        load_assignments=eds,
    )


def basic() -> m.ProxyConfig:
    return http_proxy(m.Route("default", m.RouteMatch(), forward(CLUSTER, timeout_ms=0), source=SRC))


def matches() -> m.ProxyConfig:
    match = m.RouteMatch(
        path=m.StringMatch(m.MatchKind.REGEX, "/api/v[0-9]+/.*"),
        headers=(
            m.HeaderMatch("end-user", m.StringMatch(m.MatchKind.EXACT, "jason")),
            m.HeaderMatch(":method", m.StringMatch(m.MatchKind.PREFIX, "G", ignore_case=True)),
            m.HeaderMatch("x-canary", m.StringMatch(m.MatchKind.PRESENT)),
            m.HeaderMatch("x-debug", m.StringMatch(m.MatchKind.EXACT, "1"), invert=True),
        ),
        query=(
            m.QueryMatch("q", m.StringMatch(m.MatchKind.REGEX, "a+")),
            m.QueryMatch("flag", m.StringMatch(m.MatchKind.PRESENT)),
        ),
    )
    exact = m.RouteMatch(path=m.StringMatch(m.MatchKind.EXACT, "/Login", ignore_case=True))
    return http_proxy(m.Route("api", match, forward(CLUSTER)), m.Route("login", exact, forward(CLUSTER)))


V1, V2 = f"outbound|9080|v1|{HOST}", f"outbound|9080|v2|{HOST}"
MIRROR = "outbound|9080||mirror.shop.svc.cluster.local"


def forwarding() -> m.ProxyConfig:
    fwd = m.Forward(
        clusters=(
            m.WeightedCluster(V1, 75, request_headers=m.HeaderOps(set=(("x-version", "v1"),))),
            m.WeightedCluster(V2, 25, response_headers=m.HeaderOps(remove=("x-internal",))),
        ),
        timeout_ms=1500,
        retry=m.RetryPolicy(
            3,
            per_try_timeout_ms=500,
            retry_on="5xx,retriable-status-codes",
            retriable_status_codes=(503,),
            retry_remote_localities=True,
        ),
        prefix_rewrite="/v2/",
        host_rewrite="reviews.internal",
        mirrors=(m.Mirror(MIRROR, 12.5), m.Mirror(V1)),
        hash_policies=(
            m.HashPolicy(header="x-user"),
            m.HashPolicy(cookie="session", cookie_ttl_ms=60_000, cookie_path="/"),
            m.HashPolicy(query_parameter="id"),
            m.HashPolicy(source_ip=True),
        ),
    )
    regex = m.Forward(clusters=(m.WeightedCluster(V1, 100),), regex_rewrite=("^/old/(.*)$", "/new/\\1"))
    clusters = tuple(eds_cluster(n) for n in (MIRROR, V1, V2))
    return http_proxy(
        m.Route("split", m.RouteMatch(m.StringMatch(m.MatchKind.PREFIX, "/api/")), fwd),
        m.Route("regex", m.RouteMatch(), regex),
        clusters=clusters,
    )


def non_forwarding() -> m.ProxyConfig:
    hdr = m.HeaderOps(set=(("x-set", "1"),), add=(("x-add", "2"),), remove=("x-remove",))
    return http_proxy(
        m.Route(
            "moved",
            m.RouteMatch(m.StringMatch(m.MatchKind.EXACT, "/old")),
            m.Redirect(path="/new", authority="example.com", scheme="https", port=8443, response_code=308),
        ),
        m.Route(
            "prefix-moved",
            m.RouteMatch(m.StringMatch(m.MatchKind.PREFIX, "/legacy/")),
            m.Redirect(prefix="/modern/", response_code=302),
        ),
        m.Route(
            "teapot",
            m.RouteMatch(m.StringMatch(m.MatchKind.EXACT, "/tea")),
            m.DirectResponse(418, "short and stout"),
        ),
        m.Route("empty", m.RouteMatch(m.StringMatch(m.MatchKind.EXACT, "/empty")), m.DirectResponse(204)),
        m.Route("headers", m.RouteMatch(), forward(CLUSTER), request_headers=hdr, response_headers=hdr),
    )


def fault_and_cors() -> m.ProxyConfig:
    fault = m.Fault(delay_ms=5000, delay_percent=10.0, abort_status=503, abort_percent=0.1)
    grpc_fault = m.Fault(abort_grpc_status=14)
    cors = m.Cors(
        allow_origins=(
            m.StringMatch(m.MatchKind.EXACT, "https://a.example"),
            m.StringMatch(m.MatchKind.REGEX, "https://.*\\.example"),
        ),
        allow_methods=("GET", "POST"),
        allow_headers=("x-a", "x-b"),
        expose_headers=("x-c",),
        max_age_s=86400,
        allow_credentials=True,
    )
    return http_proxy(
        m.Route(
            "faulty",
            m.RouteMatch(m.StringMatch(m.MatchKind.PREFIX, "/f")),
            forward(CLUSTER),
            fault=fault,
            cors=cors,
        ),
        m.Route("grpc", m.RouteMatch(), forward(CLUSTER), fault=grpc_fault),
        faults=True,
        cors=True,
    )


def cluster_kinds() -> m.ProxyConfig:
    clusters = (
        m.Cluster(
            "outbound|80||static",
            m.Discovery.STATIC,
            endpoints=(
                m.Endpoint("10.0.2.1", 80, weight=2, locality="us-east1/b/rack1"),
                m.Endpoint("10.0.2.2", 80, healthy=False),
                m.Endpoint("10.0.2.3", 80, locality="us-east1/a"),
            ),
        ),
        m.Cluster("outbound|443||strict", m.Discovery.STRICT_DNS, dns_host="localhost", port=443),
        m.Cluster(
            "outbound|443||logical", m.Discovery.LOGICAL_DNS, endpoints=(m.Endpoint("localhost", 443),)
        ),
        m.Cluster("passthrough", m.Discovery.ORIGINAL_DST, tcp=m.TcpOptions(connect_timeout_ms=2500)),
        eds_cluster(
            "outbound|1||ring", lb_policy=m.LbPolicy.RING_HASH, minimum_ring_size=2048, sources=(DR_SRC, SRC)
        ),
        eds_cluster("outbound|2||maglev", lb_policy=m.LbPolicy.MAGLEV),
        eds_cluster(
            "outbound|3||least",
            lb_policy=m.LbPolicy.LEAST_REQUEST,
            sources=(DR_SRC,),
            circuit_breakers=m.CircuitBreakers(
                max_connections=100, max_pending_requests=10, max_requests=1000, max_retries=3
            ),
            outlier=m.OutlierDetection(
                consecutive_5xx=5,
                consecutive_gateway_errors=0,
                interval_ms=10_000,
                base_ejection_time_ms=30_000,
                max_ejection_percent=50,
                min_health_percent=20,
            ),
        ),
        m.Cluster(
            "outbound|4||h2",
            m.Discovery.EDS,
            lb_policy=m.LbPolicy.RANDOM,
            tcp=m.TcpOptions(keepalive_time_s=300, keepalive_interval_s=30, keepalive_probes=3),
            http=m.HttpOptions(http2=True, idle_timeout_ms=60_000, max_requests_per_connection=100),
        ),
        m.Cluster("outbound|5||tcp", m.Discovery.EDS),
    )
    return dataclasses.replace(
        http_proxy(m.Route("default", m.RouteMatch(), forward("outbound|80||static"))),
        clusters=clusters,
        load_assignments=tuple(
            m.LoadAssignment(c.name, ()) for c in clusters if c.discovery is m.Discovery.EDS
        ),
    )


def _secrets() -> tuple[m.Secret, ...]:
    cert, key = pem_pair()
    return (
        m.Secret("gw-cert", certificate_chain=cert, private_key=key),
        m.Secret("gw-cert-cacert", trusted_ca=cert),
    )


def upstream_tls(
    cert_file: str = "/etc/certs/cert.pem", key_file: str = "/etc/certs/key.pem"
) -> m.ProxyConfig:
    clusters = (
        eds_cluster(
            "outbound|1||mtls",
            tls=m.UpstreamTls(
                m.TlsMode.ISTIO_MUTUAL,
                sni="outbound_.1_._.mtls",
                credential_secret="default",
                ca_secret="ROOTCA",
                subject_alt_names=("spiffe://cluster.local/ns/shop/sa/reviews",),
                alpn=("istio-peer-exchange", "istio"),
                secrets_from=m.SecretSource.AGENT,
            ),
        ),
        eds_cluster(
            "outbound|2||files",
            tls=m.UpstreamTls(
                m.TlsMode.MUTUAL,
                sni="files.example",
                ca_certificates=cert_file,
                client_certificate=cert_file,
                private_key=key_file,
                subject_alt_names=("files.example",),
            ),
        ),
        eds_cluster("outbound|3||simple", tls=m.UpstreamTls(m.TlsMode.SIMPLE, sni="api.example")),
        eds_cluster("outbound|4||insecure", tls=m.UpstreamTls(m.TlsMode.SIMPLE, insecure_skip_verify=True)),
    )
    base = http_proxy(m.Route("default", m.RouteMatch(), forward("outbound|1||mtls")), clusters=clusters)
    return dataclasses.replace(base, secrets=_secrets())


GW = m.Proxy(
    "router~10.0.9.1~ingress-1.istio-system~istio-system.svc.cluster.local",
    m.ProxyKind.ROUTER,
    "10.0.9.1",
    "ingress-1",
    "istio-system",
)


def gateway() -> m.ProxyConfig:
    https = m.FilterChain(
        "https",
        m.HttpFilterChain("https.443.gw", "https.443.https.gw.istio-system"),
        server_names=("bookinfo.example", "*.bookinfo.example"),
        transport_protocol="tls",
        tls=m.DownstreamTls("SIMPLE", "gw-cert", min_version="TLSV1_2", max_version="TLSV1_3"),
        source=SRC,
    )
    mutual = m.FilterChain(
        "mutual",
        m.HttpFilterChain("https.443.mutual", "https.443.https.gw.istio-system"),
        server_names=("secure.example",),
        tls=m.DownstreamTls(
            "MUTUAL", "gw-cert", ca_secret="gw-cert-cacert", subject_alt_names=("client.example",)
        ),
    )
    optional = m.FilterChain(
        "optional",
        m.HttpFilterChain("https.443.opt", "https.443.https.gw.istio-system"),
        server_names=("maybe.example",),
        tls=m.DownstreamTls("OPTIONAL_MUTUAL", "gw-cert", ca_secret="gw-cert-cacert"),
    )
    passthrough = m.FilterChain(
        "sni-pass",
        m.TcpFilterChain("tcp.443", (m.WeightedCluster(V1, 80), m.WeightedCluster(V2, 20))),
        server_names=("pass.example",),
        destination_port=443,
    )
    default = m.FilterChain(
        "default", m.TcpFilterChain("tcp.443.default", (m.WeightedCluster(CLUSTER, 100),))
    )
    listener = m.Listener(
        "0.0.0.0_8443",
        "0.0.0.0",
        8443,
        m.TrafficDirection.OUTBOUND,
        (https, mutual, optional, passthrough),
        default_chain=default,
    )
    http = m.Listener(
        "0.0.0.0_8080",
        "0.0.0.0",
        8080,
        m.TrafficDirection.OUTBOUND,
        (m.FilterChain("http", m.HttpFilterChain("http.8080", "http.8080", http2_only=True)),),
    )
    rcs = (
        m.RouteConfig(
            "http.8080",
            ignore_port=True,
            virtual_hosts=(
                m.VirtualHost(
                    "bookinfo.example:80",
                    "bookinfo.example",
                    80,
                    ("bookinfo.example",),
                    (m.Route("all", m.RouteMatch(), forward(CLUSTER)),),
                    require_tls=True,
                ),
            ),
        ),
        routes(m.Route("all", m.RouteMatch(), forward(CLUSTER)), name="https.443.https.gw.istio-system"),
    )
    clusters = tuple(eds_cluster(n) for n in (CLUSTER, V1, V2))
    return m.ProxyConfig(
        GW,
        listeners=(http, listener),
        route_configs=rcs,
        clusters=clusters,
        load_assignments=tuple(m.LoadAssignment(c.name, (m.Endpoint("10.0.1.9", 9080),)) for c in clusters),
        secrets=_secrets(),
    )


def file_secrets() -> m.ProxyConfig:
    cert, key = "/etc/certs/cert.pem", "/etc/certs/key.pem"
    return dataclasses.replace(
        basic(),
        secrets=(
            m.Secret("files", certificate_chain=cert, private_key=key, inline=False),
            m.Secret("ca-files", trusted_ca=cert, inline=False),
        ),
    )


def inbound() -> m.ProxyConfig:
    name = "inbound|9080||"
    cluster = m.Cluster(
        name,
        m.Discovery.STATIC,
        endpoints=(m.Endpoint("127.0.0.1", 9080),),
        direction=m.TrafficDirection.INBOUND,
        http=m.HttpOptions(),
    )
    chain = m.FilterChain("inbound", m.HttpFilterChain("inbound_0.0.0.0_15006", "inbound|9080||"))
    tcp = m.FilterChain(
        "inbound-tcp",
        m.TcpFilterChain("inbound_tcp", (m.WeightedCluster(name, 100),)),
        destination_port=9090,
        transport_protocol="raw_buffer",
    )
    listener = m.Listener("virtualInbound", "0.0.0.0", 15006, m.TrafficDirection.INBOUND, (chain, tcp))
    rc = m.RouteConfig(
        "inbound|9080||",
        ignore_port=False,
        virtual_hosts=(
            m.VirtualHost(
                "inbound|http|9080",
                "*",
                9080,
                ("*",),
                (m.Route("default", m.RouteMatch(), forward(name, timeout_ms=0)),),
            ),
        ),
    )
    return m.ProxyConfig(PROXY, listeners=(listener,), route_configs=(rc,), clusters=(cluster,))


CASES: dict[str, Callable[[], m.ProxyConfig]] = {
    f.__name__: f
    for f in (
        basic,
        matches,
        forwarding,
        non_forwarding,
        fault_and_cors,
        cluster_kinds,
        upstream_tls,
        gateway,
        file_secrets,
        inbound,
    )
}


def envoy_validate(envoy: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [envoy, "--mode", "validate", "-c", str(config), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
