"""ServiceEntry and WorkloadEntry rules: hosts, addresses, ports, resolution modes and endpoints."""

from __future__ import annotations

from compiler.api import service_entry as se
from compiler.api import workload_entry as we
from compiler.validate import fields, hosts
from compiler.validate.report import Path, Report


def check(report: Report) -> None:
    spec: se.ServiceEntry = report.resource.spec
    resolution = spec.resolution or "NONE"
    for i, host in enumerate(spec.hosts):
        if host == "*":
            report.error("MW0201", 'a ServiceEntry host cannot be the wildcard "*"', ("hosts", i))
        else:
            report.found("MW0201", hosts.not_an_ip(host) or report.values.wildcard_domain(host), ("hosts", i))
        if resolution in ("DNS", "DNS_ROUND_ROBIN") and host.startswith("*") and not spec.endpoints:
            report.error("MW0214", f'host "{host}": a wildcard host needs endpoints with {resolution} resolution',
                         ("hosts", i))
    _addresses(report, spec, resolution)
    _ports(report, spec)
    for index, problem in hosts.export_to(spec.export_to):
        report.error("MW0223", problem, ("exportTo", index))
    _resolution(report, spec, resolution)
    port_names = {p.name for p in spec.ports or []}
    for i, endpoint in enumerate(spec.endpoints or []):
        workload(report, endpoint, ("endpoints", i), resolution=resolution, port_names=port_names)


def _addresses(report: Report, spec: se.ServiceEntry, resolution: str) -> None:
    for i, address in enumerate(spec.addresses or []):
        report.found("MW0218", report.values.ip_or_cidr(address), ("addresses", i))
        if "/" in address and resolution not in ("NONE", "STATIC"):
            report.error("MW0214", "CIDR addresses are allowed only for NONE/STATIC resolution types",
                         ("addresses", i))


def _ports(report: Report, spec: se.ServiceEntry) -> None:
    numbers: set[int] = set()
    names: set[str] = set()
    for i, port in enumerate(spec.ports or []):
        path = ("ports", i)
        report.found("MW0203", hosts.port(port.number), path + ("number",))
        if port.target_port is not None:
            report.found("MW0203", hosts.port(port.target_port), path + ("targetPort",))
        report.found("MW0214", fields.protocol(port.protocol), path + ("protocol",))
        if port.number in numbers:
            report.error("MW0214", f"port number {port.number} is defined twice", path + ("number",))
        if port.name in names:
            report.error("MW0214", f'port name "{port.name}" is defined twice', path + ("name",))
        if not port.name:
            report.error("MW0214", "port name cannot be empty", path + ("name",))
        numbers.add(port.number)
        names.add(port.name)


def _resolution(report: Report, spec: se.ServiceEntry, resolution: str) -> None:
    if spec.workload_selector is not None:
        if spec.endpoints is not None:
            report.error("MW0214", "only one of workloadSelector or endpoints can be set", ("workloadSelector",))
        for key, problem in report.values.label_selector(spec.workload_selector.labels or {}):
            report.error("MW0211", problem, ("workloadSelector", "labels", key))
    if resolution == "NONE" and spec.endpoints is not None:
        report.error("MW0214", "NONE mode cannot set endpoints", ("endpoints",))
    if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints or []) > 1:
        report.error("MW0214", "DNS_ROUND_ROBIN mode cannot have multiple endpoints", ("endpoints",))
    if resolution == "STATIC" and not spec.endpoints and spec.workload_selector is None:
        report.error("MW0214", "STATIC resolution needs endpoints (or a workloadSelector)", ("resolution",))


def check_workload_entry(report: Report) -> None:
    workload(report, report.resource.spec, (), resolution="DNS", port_names=None)  # a VM may be a DNS name


def workload(report: Report, entry: we.WorkloadEntry, path: Path, *, resolution: str,
             port_names: set[str] | None) -> None:
    """A WorkloadEntry, standalone or as a ServiceEntry endpoint."""
    address = entry.address
    if not address and not entry.network:
        report.error("MW0214", "Address is required (or a network)", path)
    elif address and address.startswith("unix://"):
        _unix(report, address, entry, path)
    elif address:
        _address(report, address, path + ("address",), resolution=resolution)
    for key, number in (entry.ports or {}).items():
        if not hosts.is_dns1123_label(key):
            report.error("MW0214", f'port name "{key}" must be valid', path + ("ports", key))
        report.found("MW0203", hosts.port(number), path + ("ports", key))
        if port_names is not None and key not in port_names:
            report.error("MW0214", f'endpoint port "{key}" is not a port of the ServiceEntry', path + ("ports", key))
    for key, problem in report.values.label_selector(entry.labels):
        report.error("MW0211", problem, path + ("labels", key))


def _unix(report: Report, address: str, entry: we.WorkloadEntry, path: Path) -> None:
    socket = address[len("unix://"):]
    if not socket.startswith(("/", "@")):
        report.error("MW0218", "UDS must be an absolute path or abstract socket", path + ("address",))
    elif socket.endswith("/"):
        report.error("MW0218", "UDS may not be a dir", path + ("address",))
    if entry.ports:
        report.error("MW0214", "UDS may not include ports", path + ("ports",))


def _address(report: Report, address: str, path: Path, *, resolution: str) -> None:
    if hosts.is_ip(address):
        return
    if resolution == "STATIC":
        report.error("MW0218", f'endpoint address "{address}" must be an IP address for STATIC resolution', path)
    else:
        report.found("MW0201", hosts.fqdn(address), path)
