"""Message types shared by several Istio kinds (selectors, ports, TLS settings, connection pools)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.api.base import ApiModel, Duration, Int32, UInt32

TLSProtocol = Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]
CaptureMode = Literal["DEFAULT", "IPTABLES", "NONE"]


class WorkloadSelector(ApiModel):
    """networking.v1 WorkloadSelector (ServiceEntry, Sidecar): `labels`."""

    labels: dict[str, str] | None = None


class TypeWorkloadSelector(ApiModel):
    """istio.type.v1beta1.WorkloadSelector (DestinationRule, security kinds): `matchLabels`."""

    match_labels: dict[str, str] | None = None


class PolicyTargetReference(ApiModel):
    group: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class PortSelector(ApiModel):
    number: UInt32 | None = None


class ServerTLSCertificate(ApiModel):
    """One entry of ServerTLSSettings.tlsCertificates."""

    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None


class ServerTLSSettings(ApiModel):
    https_redirect: bool | None = None
    mode: Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"] | None = None
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    credential_names: list[str] | None = Field(None, min_length=1, max_length=2)
    tls_certificates: list[ServerTLSCertificate] | None = Field(None, min_length=1, max_length=2)
    ca_cert_credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    verify_certificate_spki: list[str] | None = None
    verify_certificate_hash: list[str] | None = None
    min_protocol_version: TLSProtocol | None = None
    max_protocol_version: TLSProtocol | None = None
    cipher_suites: list[str] | None = None
    ecdh_curves: list[str] | None = None
    insecure_skip_verify: bool | None = None


class TcpKeepalive(ApiModel):
    probes: UInt32 | None = None
    time: Duration | None = None
    interval: Duration | None = None


class TCPSettings(ApiModel):
    max_connections: Int32 | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: Duration | None = None


class HTTP2KeepAlive(ApiModel):
    interval: Duration | None = None
    timeout: Duration | None = None


class HTTPSettings(ApiModel):
    http1_max_pending_requests: Int32 | None = None
    http2_max_requests: Int32 | None = None
    max_requests_per_connection: Int32 | None = None
    max_retries: Int32 | None = None
    idle_timeout: Duration | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: Int32 | None = None
    http2_keep_alive: HTTP2KeepAlive | None = None


class ConnectionPoolSettings(ApiModel):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None
