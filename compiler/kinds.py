"""The kinds meshward understands, their API groups and versions, and the pydantic model of each.

Istio serves its networking kinds at v1, v1beta1 and v1alpha3 and its security kinds at v1 and v1beta1; all are
accepted, as Istio does. Models are imported lazily so that loading a tree imports only what it uses.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from typing import Any

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
TELEMETRY = "telemetry.istio.io"
CORE = ""
DISCOVERY = "discovery.k8s.io"
APPS = "apps"

# how an EndpointSlice names its Service (Kubernetes' well-known label): read by translate and the analyzers alike
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# controllers whose pod template says what their pods are (compiler.api.workloads)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
_NETWORKING_VERSIONS = ("v1", "v1beta1", "v1alpha3")
_SECURITY_VERSIONS = ("v1", "v1beta1")


@dataclasses.dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    group: str
    versions: tuple[str, ...]
    model_path: str  # "module:Class" of the pydantic model of the spec (or of the whole body, see `body_field`)
    body_field: str | None = "spec"  # None: the model covers the top level minus apiVersion/kind/metadata
    namespaced: bool = True

    @property
    def model(self) -> Any:
        """Asked once per document: after the first, the module is found in the import system's own table."""
        module, name = self.model_path.split(":")
        return getattr(sys.modules.get(module) or importlib.import_module(module), name)

    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)


KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in (
        KindInfo("VirtualService", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.virtual_service:VirtualService"),
        KindInfo("DestinationRule", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.destination_rule:DestinationRule"),
        KindInfo("Gateway", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.gateway:Gateway"),
        KindInfo("ServiceEntry", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.service_entry:ServiceEntry"),
        KindInfo("WorkloadEntry", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.workload_entry:WorkloadEntry"),
        KindInfo("Sidecar", NETWORKING, _NETWORKING_VERSIONS, "compiler.api.sidecar:Sidecar"),
        KindInfo("PeerAuthentication", SECURITY, _SECURITY_VERSIONS, "compiler.api.security:PeerAuthentication"),
        KindInfo("AuthorizationPolicy", SECURITY, _SECURITY_VERSIONS, "compiler.api.security:AuthorizationPolicy"),
        KindInfo("RequestAuthentication", SECURITY, _SECURITY_VERSIONS,
                 "compiler.api.security:RequestAuthentication"),
        KindInfo("Telemetry", TELEMETRY, ("v1", "v1alpha1"), "compiler.api.telemetry:Telemetry"),
        KindInfo("Service", CORE, ("v1",), "compiler.api.kube:ServiceSpec"),
        KindInfo("ConfigMap", CORE, ("v1",), "compiler.api.mesh_config:ConfigMap", body_field=None),
        KindInfo("Namespace", CORE, ("v1",), "compiler.api.kube:NamespaceSpec", namespaced=False),
        KindInfo("EndpointSlice", DISCOVERY, ("v1",), "compiler.api.kube:EndpointSlice", body_field=None),
        KindInfo("Pod", CORE, ("v1",), "compiler.api.workloads:Pod", body_field=None),
        *(KindInfo(kind, APPS, ("v1",), "compiler.api.workloads:WorkloadSpec") for kind in WORKLOAD_KINDS),
    )
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def lookup(kind: str) -> KindInfo | None:
    return KINDS.get(kind)
