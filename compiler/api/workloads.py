"""Kubernetes workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod) as far as the mesh reads them.

A proxy runs in a pod, and Istio learns what it needs about that proxy from the pod: its labels (which Sidecar,
Gateway, DestinationRule subset, PeerAuthentication and AuthorizationPolicy select it), its service account (its
SPIFFE identity, and so the SANs its clients verify), its container ports (what a Service's named targetPort
means) and whether a sidecar is injected at all. A policy repository declares pods through their controllers'
templates; a cluster reports the pods themselves, with their IP and readiness. Everything else of these objects
(images, volumes, replicas, strategies...) is not the mesh's business and is ignored without a word (KubeModel).
"""

from __future__ import annotations

from pydantic import Field

from compiler.api.base import KubeModel


class ContainerPort(KubeModel):
    name: str | None = None
    container_port: int = Field(ge=1, le=65535)
    protocol: str | None = None


class Container(KubeModel):
    name: str | None = None
    ports: list[ContainerPort] | None = None


class PodSpec(KubeModel):
    service_account_name: str | None = None
    service_account: str | None = None  # the deprecated alias the API server still fills in
    containers: list[Container] | None = None
    host_network: bool | None = None


class TemplateMetadata(KubeModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class PodTemplate(KubeModel):
    metadata: TemplateMetadata | None = None
    spec: PodSpec | None = None


class LabelSelector(KubeModel):
    match_labels: dict[str, str] | None = None


class WorkloadSpec(KubeModel):
    """The spec of a Deployment, StatefulSet, DaemonSet or ReplicaSet: the pods it makes are its template's."""

    selector: LabelSelector | None = None
    template: PodTemplate | None = None


class PodIP(KubeModel):
    ip: str


class PodCondition(KubeModel):
    type: str
    status: str


class PodStatus(KubeModel):
    phase: str | None = None
    pod_ip: str | None = Field(None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(None, alias="podIPs")
    conditions: list[PodCondition] | None = None


class Pod(KubeModel):
    """The whole object minus apiVersion/kind/metadata: a cluster's pod carries its IP and readiness in status."""

    spec: PodSpec | None = None
    status: PodStatus | None = None
