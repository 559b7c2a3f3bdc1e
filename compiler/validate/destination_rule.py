"""DestinationRule rules: host, subsets, traffic policies (load balancer, connection pool, outlier detection, TLS)."""

from __future__ import annotations

from compiler import naming, units
from compiler.api import common
from compiler.api import destination_rule as dr
from compiler.validate import envoy_limits, fields, hosts, selectors
from compiler.validate.report import Path, Report


def check(report: Report) -> None:
    spec: dr.DestinationRule = report.resource.spec
    if spec.host == "*":
        pass  # Istio accepts "*" for a DestinationRule host (applies to every host)
    else:
        report.found("MW0201", report.values.wildcard_domain(spec.host), ("host",))
    for index, problem in hosts.export_to(spec.export_to):
        report.error("MW0223", problem, ("exportTo", index))
    if spec.workload_selector is not None:
        selectors.match_labels(report, spec.workload_selector.match_labels, ("workloadSelector", "matchLabels"))
    traffic_policy(report, spec.traffic_policy, ("trafficPolicy",))
    seen: set[str] = set()
    for i, subset in enumerate(spec.subsets or []):
        path = ("subsets", i)
        if not hosts.is_dns1123_label(subset.name):
            report.error("MW0222", f'subset name "{subset.name}" is not a DNS-1123 label', path + ("name",))
        if subset.name in seen:
            report.error("MW0210", f'subset "{subset.name}" is defined twice', path + ("name",))
        seen.add(subset.name)
        for key, problem in report.values.label_selector(subset.labels):
            report.error("MW0211", problem, path + ("labels", key))
        traffic_policy(report, subset.traffic_policy, path + ("trafficPolicy",))


def traffic_policy(report: Report, policy: dr.TrafficPolicy | None, path: Path) -> None:
    if policy is None:
        return
    _port_policy(report, policy, path)
    seen: set[int] = set()
    for i, port_policy in enumerate(policy.port_level_settings or []):
        where = path + ("portLevelSettings", i)
        number = port_policy.port.number if port_policy.port else None
        if number is None:
            report.error("MW0217", "port-level settings need port.number", where)
        else:
            report.found("MW0203", hosts.port(number), where + ("port", "number"))
            if number in seen:
                report.error("MW0217", f"port {number} has port-level settings twice", where + ("port", "number"))
            seen.add(number)
        _port_policy(report, port_policy, where)
    if policy.tunnel is not None:
        _tunnel(report, policy.tunnel, path + ("tunnel",))
    if policy.retry_budget is not None:
        report.found("MW0202", report.values.duration(policy.retry_budget.budget_interval),
                     path + ("retryBudget", "budgetInterval"))


def _port_policy(report: Report, policy: dr.TrafficPolicy | dr.PortTrafficPolicy, path: Path) -> None:
    _load_balancer(report, policy.load_balancer, path + ("loadBalancer",))
    connection_pool(report, policy.connection_pool, path + ("connectionPool",))
    _outlier(report, policy.outlier_detection, path + ("outlierDetection",))
    client_tls(report, policy.tls, path + ("tls",))


def _load_balancer(report: Report, lb: dr.LoadBalancerSettings | None, path: Path) -> None:
    if lb is None:
        return
    set_kinds = [k for k in ("simple", "consistent_hash", "backend_utilization") if getattr(lb, k) is not None]
    if len(set_kinds) > 1:
        report.error("MW0217", "loadBalancer can set only one of simple, consistentHash, backendUtilization", path)
    if lb.consistent_hash is not None:
        _consistent_hash(report, lb.consistent_hash, path + ("consistentHash",))
    if lb.locality_lb_setting is not None:
        _locality(report, lb.locality_lb_setting, path + ("localityLbSetting",))
    report.found("MW0202", report.values.duration(lb.warmup_duration_secs), path + ("warmupDurationSecs",))
    if lb.warmup is not None:
        report.found("MW0202", report.values.duration(lb.warmup.duration), path + ("warmup", "duration"))


def _consistent_hash(report: Report, ch: dr.ConsistentHashLB, path: Path) -> None:
    keys = [k for k in ("http_header_name", "http_cookie", "use_source_ip", "http_query_parameter_name")
            if getattr(ch, k) not in (None, False)]
    if len(keys) > 1:
        report.error("MW0217", "consistentHash can use only one hash key", path)
    if ch.http_header_name is not None:
        report.found("MW0215", report.values.header_name(ch.http_header_name), path + ("httpHeaderName",))
    if ch.http_query_parameter_name is not None and not ch.http_query_parameter_name:
        report.error("MW0217", "httpQueryParameterName cannot be empty", path + ("httpQueryParameterName",))
    if ch.http_cookie is not None:
        if not ch.http_cookie.name:
            report.error("MW0217", "httpCookie needs a name", path + ("httpCookie", "name"))
        if ch.http_cookie.ttl is not None:
            report.found("MW0202", report.values.duration(ch.http_cookie.ttl, minimum_ms=0),
                         path + ("httpCookie", "ttl"))
    for where, size in ((("ringHash", "minimumRingSize"), ch.ring_hash.minimum_ring_size if ch.ring_hash else None),
                        (("minimumRingSize",), ch.minimum_ring_size)):
        report.found("MW0217", envoy_limits.ring_size(size), path + where)
    if ch.maglev is not None:
        report.found("MW0217", envoy_limits.maglev_table_size(ch.maglev.table_size), path + ("maglev", "tableSize"))
    if ch.ring_hash is not None and ch.maglev is not None:
        report.error("MW0217", "consistentHash can use only one of ringHash and maglev", path)


def _locality(report: Report, setting: dr.LocalityLoadBalancerSetting, path: Path) -> None:
    for message, where in locality_problems(setting):
        report.error("MW0217", message, path + where)


def locality_problems(setting: dr.LocalityLoadBalancerSetting) -> list[tuple[str, Path]]:
    """(message, path inside the setting) for Istio's ValidateLocalityLbSetting rules; a DestinationRule's and
    MeshConfig's localityLbSetting are held to the same."""
    out: list[tuple[str, Path]] = []
    if setting.distribute and setting.failover:
        out.append(("localityLbSetting cannot set both distribute and failover", ()))
    if setting.failover:  # pkg/config/validation/agent ValidateLocalityLbSetting: failover ranks by region already
        out += [(f'failoverPriority cannot name topology label "{key}" together with failover',
                 ("failoverPriority", i)) for i, key in enumerate(setting.failover_priority or [])
                if key in naming.TOPOLOGY_LABELS]
    for i, rule in enumerate(setting.distribute or []):
        total = sum((rule.to or {}).values())
        if total != 100:
            out.append((f"distribute weights add up to {total}, they must add up to 100", ("distribute", i, "to")))
    for i, failover in enumerate(setting.failover or []):
        if failover.from_ is not None and failover.from_ == failover.to:
            out.append((f'failover from and to are the same region "{failover.to}"', ("failover", i)))
    return out


def connection_pool(report: Report, pool: common.ConnectionPoolSettings | None, path: Path) -> None:
    if pool is None:
        return
    if pool.tcp is not None:
        tcp, where = pool.tcp, path + ("tcp",)
        _non_negative(report, where, maxConnections=tcp.max_connections)
        for key, value in (("connectTimeout", tcp.connect_timeout), ("maxConnectionDuration",
                           tcp.max_connection_duration), ("idleTimeout", tcp.idle_timeout)):
            report.found("MW0202", report.values.duration(value), where + (key,))
        if tcp.tcp_keepalive is not None:
            for key in ("time", "interval"):
                _keepalive(report, getattr(tcp.tcp_keepalive, key), where + ("tcpKeepalive", key))
    if pool.http is not None:
        http, where = pool.http, path + ("http",)
        _non_negative(report, where, http1MaxPendingRequests=http.http1_max_pending_requests,
                      http2MaxRequests=http.http2_max_requests, maxRetries=http.max_retries,
                      maxRequestsPerConnection=http.max_requests_per_connection,
                      maxConcurrentStreams=http.max_concurrent_streams)
        report.found("MW0202", report.values.duration(http.idle_timeout), where + ("idleTimeout",))
        if http.http2_keep_alive is not None:  # Envoy's KeepaliveSettings: interval and timeout at least 1ms
            for key in ("interval", "timeout"):
                report.found("MW0202", report.values.duration(getattr(http.http2_keep_alive, key)),
                             where + ("http2KeepAlive", key))


def _keepalive(report: Report, value: str | None, path: Path) -> None:
    """Envoy's keepalive time and interval are whole seconds in a UInt32Value."""
    problem = report.values.duration(value)
    if not problem and value is not None:
        problem = envoy_limits.duration_seconds(units.duration_ms(value) / 1000, maximum=envoy_limits.MAX_UINT32)
    report.found("MW0202", problem, path)


def _non_negative(report: Report, path: Path, **values: int | None) -> None:
    for key, value in values.items():
        if value is not None and value < 0:
            report.error("MW0217", f"{key} {value} cannot be negative", path + (key,))


def _outlier(report: Report, od: dr.OutlierDetection | None, path: Path) -> None:
    if od is None:
        return
    _non_negative(report, path, consecutiveErrors=od.consecutive_errors)
    report.found("MW0202", report.values.duration(od.interval), path + ("interval",))
    report.found("MW0202", report.values.duration(od.base_ejection_time), path + ("baseEjectionTime",))
    for key, value in (("maxEjectionPercent", od.max_ejection_percent), ("minHealthPercent", od.min_health_percent)):
        if value is not None:
            report.found("MW0208", fields.percentage(value), path + (key,))


def client_tls(report: Report, tls: dr.ClientTLSSettings | None, path: Path) -> None:
    """Istio: MUTUAL needs a client certificate and key unless credentialName; ISTIO_MUTUAL takes no files."""
    if tls is None:
        return
    if tls.mode == "MUTUAL" and not tls.credential_name:
        missing = [k for k, v in (("clientCertificate", tls.client_certificate), ("privateKey", tls.private_key))
                   if not v]
        if missing:
            report.error("MW0209", f"MUTUAL TLS needs {' and '.join(missing)} (or credentialName)", path)
    if tls.mode == "ISTIO_MUTUAL":
        for key, value in (("clientCertificate", tls.client_certificate), ("privateKey", tls.private_key),
                           ("caCertificates", tls.ca_certificates), ("credentialName", tls.credential_name)):
            if value:
                report.error("MW0209", f"ISTIO_MUTUAL uses Istio's certificates: remove {key}", path + (key,))
        return
    for key, value in (("clientCertificate", tls.client_certificate), ("privateKey", tls.private_key),
                       ("caCertificates", tls.ca_certificates), ("caCrl", tls.ca_crl)):
        report.found("MW0209", envoy_limits.absolute_path(value), path + (key,))
    report.found("MW0209", envoy_limits.sni(tls.sni), path + ("sni",))
    # Envoy refuses SAN matching without a trusted CA (source/common/tls/cert_validator/default_validator.cc:
    # "SAN-based verification of peer certificates without trusted CA is insecure and not allowed")
    if (tls.mode in ("SIMPLE", "MUTUAL") and tls.subject_alt_names and not tls.ca_certificates
            and not tls.credential_name and not tls.insecure_skip_verify):
        report.error("MW0209", "subjectAltNames need caCertificates (or credentialName) to verify the server "
                     "certificate against: Envoy refuses to match names without a trusted CA",
                     path + ("subjectAltNames",))


def _tunnel(report: Report, tunnel: dr.TunnelSettings, path: Path) -> None:
    if tunnel.protocol is not None and tunnel.protocol not in ("CONNECT", "POST"):
        report.error("MW0217", f'tunnel protocol "{tunnel.protocol}" must be CONNECT or POST', path + ("protocol",))
    report.found("MW0201", report.values.wildcard_domain(tunnel.target_host) if not hosts.is_ip(tunnel.target_host)
                 else None, path + ("targetHost",))
    report.found("MW0203", hosts.port(tunnel.target_port), path + ("targetPort",))
