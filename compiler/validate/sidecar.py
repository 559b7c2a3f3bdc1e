"""Sidecar rules: ingress listeners (ports, default endpoints, binds) and egress listeners (namespace/host)."""

from __future__ import annotations

import re

from compiler.api import sidecar as sc
from compiler.validate import destination_rule, fields, gateway, hosts
from compiler.validate.report import Path, Report

_DEFAULT_ENDPOINT = re.compile(r"^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):(\d+)$")


def check(report: Report) -> None:
    spec: sc.Sidecar = report.resource.spec
    if spec.workload_selector is not None:
        for key, problem in report.values.label_selector(spec.workload_selector.labels):
            report.error("MW0211", problem, ("workloadSelector", "labels", key))
    _ingress(report, spec.ingress or [])
    _egress(report, spec.egress or [])
    destination_rule.connection_pool(report, spec.inbound_connection_pool, ("inboundConnectionPool",))
    policy = spec.outbound_traffic_policy
    if policy is not None and policy.egress_proxy is not None:
        path: Path = ("outboundTrafficPolicy", "egressProxy")
        if policy.mode != "ALLOW_ANY":
            report.error("MW0221", "egressProxy can be set only with mode ALLOW_ANY", path)
        report.found("MW0201", report.values.wildcard_domain(policy.egress_proxy.host), path + ("host",))
        port = policy.egress_proxy.port
        if port is None or port.number is None:
            report.error("MW0221", "egressProxy needs port.number", path)
        else:
            report.found("MW0203", hosts.port(port.number), path + ("port", "number"))


def _port(report: Report, port: sc.SidecarPort, path: Path, *, required: bool) -> None:
    if port.number is None:
        if required:
            report.error("MW0221", "the listener needs port.number", path)
        return
    report.found("MW0203", hosts.port(port.number), path + ("number",))
    report.found("MW0221", fields.protocol(port.protocol), path + ("protocol",))
    if port.target_port is not None:
        report.found("MW0203", hosts.port(port.target_port), path + ("targetPort",))


def _ingress(report: Report, listeners: list[sc.IstioIngressListener]) -> None:
    seen: set[tuple[str, int]] = set()
    for i, listener in enumerate(listeners):
        path: Path = ("ingress", i)
        _port(report, listener.port, path + ("port",), required=True)
        _bind(report, listener.bind, path + ("bind",))
        endpoint = listener.default_endpoint
        if endpoint is not None and not endpoint.startswith("unix://"):
            match = _DEFAULT_ENDPOINT.match(endpoint)
            if not match:
                report.error("MW0221", f'defaultEndpoint "{endpoint}" must be 127.0.0.1:PORT, 0.0.0.0:PORT, '
                             "[::1]:PORT or unix://path", path + ("defaultEndpoint",))
            else:
                report.found("MW0203", hosts.port(int(match.group(2))), path + ("defaultEndpoint",))
        key = (listener.bind or "", listener.port.number or 0)
        if listener.port.number is not None and key in seen:
            report.error("MW0221", f"ingress port {key[1]} is declared twice", path + ("port", "number"))
        seen.add(key)
        if listener.tls is not None:
            gateway.server_tls(report, listener.tls, path + ("tls",))
        destination_rule.connection_pool(report, listener.connection_pool, path + ("connectionPool",))


def _egress(report: Report, listeners: list[sc.IstioEgressListener]) -> None:
    seen: set[tuple[str, int]] = set()
    catch_all = 0
    for i, listener in enumerate(listeners):
        path: Path = ("egress", i)
        if not listener.hosts:
            report.error("MW0221", "an egress listener needs at least one host", path + ("hosts",))
        for j, host in enumerate(listener.hosts):
            report.found("MW0221", hosts.namespaced_host(host, allow_tilde=True), path + ("hosts", j))
        _bind(report, listener.bind, path + ("bind",))
        if listener.port is None or listener.port.number is None:
            catch_all += 1
            if catch_all > 1:
                report.error("MW0221", "only one egress listener can omit the port", path)
            elif i != len(listeners) - 1:
                report.error("MW0221", "the egress listener without a port must be the last one", path)
            continue
        _port(report, listener.port, path + ("port",), required=False)
        key = (listener.bind or "", listener.port.number)
        if key in seen:
            report.error("MW0221", f"egress port {key[1]} is declared twice", path + ("port", "number"))
        seen.add(key)


def _bind(report: Report, bind: str | None, path: Path) -> None:
    if bind is not None and not hosts.is_ip(bind):
        report.error("MW0218", f'bind "{bind}" must be an IP address (meshward does not bind unix sockets)', path)
