"""Typed views of a resource's spec, so that mypy checks every field translate reads.

`Resource.spec` holds its kind's pydantic model (compiler.kinds), untyped because the kind is known only at run
time. Translate reads specs through these functions instead, each naming the model of one kind: from there on a
misspelt or dropped field is a type error, not a silent None. They only annotate (no copy, no validation): the
model was built once, when the document was checked.
"""

from __future__ import annotations

from compiler.api.destination_rule import DestinationRule
from compiler.api.gateway import Gateway
from compiler.api.kube import EndpointSlice, ServiceSpec
from compiler.api.security import PeerAuthentication, RequestAuthentication
from compiler.api.service_entry import ServiceEntry
from compiler.api.sidecar import Sidecar
from compiler.api.virtual_service import VirtualService
from compiler.api.workload_entry import WorkloadEntry
from compiler.api.workloads import Pod, WorkloadSpec
from compiler.resources import Resource


def virtual_service(res: Resource) -> VirtualService:
    spec: VirtualService = res.spec
    return spec


def destination_rule(res: Resource) -> DestinationRule:
    spec: DestinationRule = res.spec
    return spec


def gateway(res: Resource) -> Gateway:
    spec: Gateway = res.spec
    return spec


def sidecar(res: Resource) -> Sidecar:
    spec: Sidecar = res.spec
    return spec


def service(res: Resource) -> ServiceSpec:
    spec: ServiceSpec = res.spec
    return spec


def endpoint_slice(res: Resource) -> EndpointSlice:
    spec: EndpointSlice = res.spec
    return spec


def service_entry(res: Resource) -> ServiceEntry:
    spec: ServiceEntry = res.spec
    return spec


def workload_entry(res: Resource) -> WorkloadEntry:
    spec: WorkloadEntry = res.spec
    return spec


def peer_authentication(res: Resource) -> PeerAuthentication:
    spec: PeerAuthentication = res.spec
    return spec


def request_authentication(res: Resource) -> RequestAuthentication:
    spec: RequestAuthentication = res.spec
    return spec


def pod(res: Resource) -> Pod:
    spec: Pod = res.spec
    return spec


def workload(res: Resource) -> WorkloadSpec:
    """A Deployment's, StatefulSet's, DaemonSet's or ReplicaSet's spec."""
    spec: WorkloadSpec = res.spec
    return spec
