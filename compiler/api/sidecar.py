"""Sidecar (networking.istio.io): scopes a proxy's ingress and egress listeners and the hosts it can reach."""

from __future__ import annotations

from typing import Literal

from compiler.api.base import ApiModel, UInt32
from compiler.api.common import CaptureMode, ConnectionPoolSettings, ServerTLSSettings, WorkloadSelector
from compiler.api.virtual_service import Destination

__all__ = ["IstioEgressListener", "IstioIngressListener", "OutboundTrafficPolicy", "Sidecar", "SidecarPort",
           "WorkloadSelector"]


class SidecarPort(ApiModel):
    number: UInt32 | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: UInt32 | None = None


class IstioIngressListener(ApiModel):
    port: SidecarPort
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    default_endpoint: str | None = None
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None


class IstioEgressListener(ApiModel):
    port: SidecarPort | None = None
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    hosts: list[str]


class OutboundTrafficPolicy(ApiModel):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] | None = None
    egress_proxy: Destination | None = None


class Sidecar(ApiModel):
    workload_selector: WorkloadSelector | None = None
    ingress: list[IstioIngressListener] | None = None
    egress: list[IstioEgressListener] | None = None
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
