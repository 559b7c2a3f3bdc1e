"""Kubernetes kinds' rules meshward relies on: Service ports, selectors and addresses, EndpointSlice and Pod
addresses."""

from __future__ import annotations

from compiler.api import kube, workloads
from compiler.validate import hosts
from compiler.validate.report import Report


def check_service(report: Report) -> None:
    spec: kube.ServiceSpec = report.resource.spec
    names: set[str] = set()
    for i, port in enumerate(spec.ports or []):
        if port.name:
            if port.name in names:
                report.error("MW0222", f'port name "{port.name}" is used twice', ("ports", i, "name"))
            names.add(port.name)
        if isinstance(port.target_port, int):
            report.found("MW0203", hosts.port(port.target_port), ("ports", i, "targetPort"))
    if len(spec.ports or []) > 1 and len(names) != len(spec.ports or []):
        report.error("MW0222", "every port of a multi-port Service needs a unique name", ("ports",))
    for key, problem in report.values.label_selector(spec.selector):
        report.error("MW0211", problem, ("selector", key))
    if spec.type == "ExternalName" and not spec.external_name:
        report.error("MW0222", "an ExternalName Service needs externalName", ("type",))
    elif spec.external_name:
        report.found("MW0201", hosts.fqdn(spec.external_name), ("externalName",))
    _addresses(report, spec)


def _addresses(report: Report, spec: kube.ServiceSpec) -> None:
    """The API server's rules (ValidateService): clusterIP(s) are IPs, or "None" for a headless Service; meshward
    makes them virtual host domains and listener addresses, where Envoy refuses anything else."""
    if spec.cluster_ip not in (None, "", "None") and not hosts.is_ip(spec.cluster_ip):
        report.error("MW0218", f'clusterIP "{spec.cluster_ip}" is not an IP address or "None"', ("clusterIP",))
    for key, values in (("clusterIPs", spec.cluster_ips), ("externalIPs", spec.external_ips)):
        for i, address in enumerate(values or []):
            if not (hosts.is_ip(address) or (key == "clusterIPs" and address == "None")):
                report.error("MW0218", f'{key} "{address}" is not an IP address', (key, i))


def check_endpoint_slice(report: Report) -> None:
    spec: kube.EndpointSlice = report.resource.spec
    if spec.address_type == "FQDN":
        return
    for i, endpoint in enumerate(spec.endpoints or []):
        for j, address in enumerate(endpoint.addresses):
            if not hosts.is_ip(address):
                report.error("MW0218", f'address "{address}" is not an {spec.address_type} address',
                             ("endpoints", i, "addresses", j))


def check_pod(report: Report) -> None:
    """A Pod's IP is its proxy's address: the node id's IP, the bind address of its inbound listeners."""
    status = report.resource.spec.status
    if status is None:
        return
    pod_status: workloads.PodStatus = status
    if pod_status.pod_ip and not hosts.is_ip(pod_status.pod_ip):
        report.error("MW0218", f'podIP "{pod_status.pod_ip}" is not an IP address', ("status", "podIP"))
    for i, found in enumerate(pod_status.pod_ips or []):
        if not hosts.is_ip(found.ip):
            report.error("MW0218", f'podIPs "{found.ip}" is not an IP address', ("status", "podIPs", i, "ip"))
