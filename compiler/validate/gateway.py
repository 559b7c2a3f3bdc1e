"""Gateway rules: servers (port, protocol, hosts as namespace/host) and server TLS settings."""

from __future__ import annotations

from compiler.api import common
from compiler.api import gateway as gw
from compiler.validate import envoy_limits, fields, hosts
from compiler.validate.report import Path, Report

_TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


def check(report: Report) -> None:
    spec: gw.Gateway = report.resource.spec
    for key, problem in report.values.label_selector(spec.selector):
        report.error("MW0211", problem, ("selector", key))
    if not spec.servers:
        report.error("MW0213", "a Gateway needs at least one server", ("servers",))
    names: set[str] = set()
    for i, server in enumerate(spec.servers or []):
        _server(report, server, ("servers", i))
        if server.name:
            if server.name in names:
                report.error("MW0213", f'server name "{server.name}" is used twice', ("servers", i, "name"))
            names.add(server.name)


def _server(report: Report, server: gw.Server, path: Path) -> None:
    if not server.hosts:
        report.error("MW0213", "a server needs at least one host", path + ("hosts",))
    for i, host in enumerate(server.hosts):
        qualified = host if "/" in host else f"*/{host}"
        report.found("MW0201", hosts.namespaced_host(qualified), path + ("hosts", i))
    port = server.port
    report.found("MW0203", hosts.port(port.number), path + ("port", "number"))
    if port.target_port is not None:
        report.found("MW0203", hosts.port(port.target_port), path + ("port", "targetPort"))
    report.found("MW0213", fields.protocol(port.protocol), path + ("port", "protocol"))
    if not port.name:
        report.error("MW0213", "port name cannot be empty", path + ("port", "name"))
    if server.bind is not None and not hosts.is_ip(server.bind):
        report.error("MW0218", f'bind "{server.bind}" must be an IP address (meshward does not bind unix sockets)',
                     path + ("bind",))
    protocol = port.protocol.upper()
    if server.tls is None:
        if protocol in _TLS_PROTOCOLS:
            report.error("MW0209", f"a {protocol} server needs tls settings", path + ("port", "protocol"))
        return
    if protocol not in _TLS_PROTOCOLS and not server.tls.https_redirect:
        report.error("MW0209", f"tls settings apply only to HTTPS or TLS servers, not {protocol}", path + ("tls",))
    server_tls(report, server.tls, path + ("tls",), protocol=protocol)


def server_tls(report: Report, tls: common.ServerTLSSettings, path: Path, *, protocol: str = "") -> None:
    """Istio's rules for ServerTLSSettings by mode."""
    if tls.https_redirect and tls.mode is None:
        return  # a plain HTTP server that only redirects to HTTPS
    mode = tls.mode or "SIMPLE"
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        if mode == "AUTO_PASSTHROUGH" and protocol and protocol != "TLS":
            report.error("MW0209", "AUTO_PASSTHROUGH works only with the TLS protocol", path + ("mode",))
        return
    if mode == "ISTIO_MUTUAL":
        for key, value in (("serverCertificate", tls.server_certificate), ("privateKey", tls.private_key),
                           ("caCertificates", tls.ca_certificates), ("credentialName", tls.credential_name)):
            if value:
                report.error("MW0209", f"ISTIO_MUTUAL uses Istio's certificates: remove {key}", path + (key,))
        return
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        _certificates(report, tls, path, mode)
        _paths(report, tls, path)
    _versions(report, tls, path)


def _certificates(report: Report, tls: common.ServerTLSSettings, path: Path, mode: str) -> None:
    credential = bool(tls.credential_name or tls.credential_names)
    if credential and tls.tls_certificates:
        report.error("MW0209", "set only one of credentialName(s) and tlsCertificates", path)
    if not credential and not tls.tls_certificates:
        missing = [k for k, v in (("serverCertificate", tls.server_certificate), ("privateKey", tls.private_key))
                   if not v]
        if missing:
            report.error("MW0209", f"{mode} TLS needs {' and '.join(missing)} (or credentialName)", path)
    if mode != "SIMPLE" and not credential and not tls.ca_certificates and not tls.ca_cert_credential_name:
        report.error("MW0209", f"{mode} TLS needs caCertificates (or credentialName) to verify clients", path)


def _paths(report: Report, tls: common.ServerTLSSettings, path: Path) -> None:
    files: list[tuple[Path, str | None]] = [
        (("serverCertificate",), tls.server_certificate), (("privateKey",), tls.private_key),
        (("caCertificates",), tls.ca_certificates), (("caCrl",), tls.ca_crl)]
    for i, cert in enumerate(tls.tls_certificates or []):
        files += [(("tlsCertificates", i, "serverCertificate"), cert.server_certificate),
                  (("tlsCertificates", i, "privateKey"), cert.private_key),
                  (("tlsCertificates", i, "caCertificates"), cert.ca_certificates)]
    for where, value in files:
        report.found("MW0209", envoy_limits.absolute_path(value), path + where)


_ORDER = ("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")


def _versions(report: Report, tls: common.ServerTLSSettings, path: Path) -> None:
    low, high = tls.min_protocol_version, tls.max_protocol_version
    if low and high and "TLS_AUTO" not in (low, high) and _ORDER.index(low) > _ORDER.index(high):
        report.error("MW0209", f"minProtocolVersion {low} is above maxProtocolVersion {high}",
                     path + ("minProtocolVersion",))
