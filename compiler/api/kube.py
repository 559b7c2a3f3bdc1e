"""Kubernetes kinds meshward reads for its service registry: Service, Namespace, EndpointSlice.

Only the fields meshward uses are modeled; the rest of a real manifest is ignored (KubeModel).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.api.base import KubeModel


class ServicePort(KubeModel):
    name: str | None = None
    protocol: str | None = None  # TCP, UDP or SCTP; tolerated as written (the service registry reads appProtocol)
    app_protocol: str | None = None
    port: int = Field(ge=1, le=65535)
    target_port: int | str | None = None
    node_port: int | None = None


class ServiceSpec(KubeModel):
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] | None = None
    cluster_ip: str | None = Field(None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(None, alias="clusterIPs")
    external_name: str | None = None
    external_ips: list[str] | None = Field(None, alias="externalIPs")
    load_balancer_ip: str | None = Field(None, alias="loadBalancerIP")
    ip_families: list[Literal["IPv4", "IPv6"]] | None = None
    ip_family_policy: Literal["SingleStack", "PreferDualStack", "RequireDualStack"] | None = None
    session_affinity: str | None = None
    publish_not_ready_addresses: bool | None = None
    internal_traffic_policy: str | None = None
    external_traffic_policy: str | None = None


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = None


class EndpointConditions(KubeModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class ObjectReference(KubeModel):
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    api_version: str | None = None


class Endpoint(KubeModel):
    addresses: list[str]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    node_name: str | None = None
    zone: str | None = None


class EndpointPort(KubeModel):
    name: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSlice(KubeModel):
    """The whole object minus apiVersion/kind/metadata."""

    address_type: Literal["IPv4", "IPv6", "FQDN"]
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None
