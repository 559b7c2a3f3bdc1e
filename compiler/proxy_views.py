"""`meshward proxy-config`'s tables: one proxy's config dump (`compiler.emit.dump.config_dump`, the same JSON
offline and from a running `serve`) as the rows `istioctl proxy-config` prints, with the policy that produced each
piece (the `meshward` filter metadata, compiler/emit/metadata.py) as file:line.

Pure: it reads the dump only, so the command line can render what a server sent as well as what it compiled.
Columns follow istioctl/pkg/writer/envoy/configdump (cluster.go, listener.go, route.go, endpoint.go, secret.go).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509

from compiler.emit.metadata import FILTER_METADATA_KEY
from meshxds import type_urls

Resource = Mapping[str, Any]  # one resource of a config dump
Dump = Mapping[str, Sequence[Resource]]  # {type URL: [resource, ...]}
Row = tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    name: str | None = None  # a cluster's FQDN or full name, a listener's / route config's / secret's name
    port: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class View:
    type_url: str
    headers: tuple[str, ...]
    rows: Callable[[Sequence[Resource], Filter], list[Row]]
    keep: Callable[[Resource, Filter], bool]  # for -o json/yaml: the resources the filter keeps


def _source(resource: Resource, kind: str) -> str:
    """file:line of the first `kind` source in a resource's meshward metadata; "-" when none."""
    meta = (resource.get("metadata") or {}).get("filter_metadata", {}).get(FILTER_METADATA_KEY)
    if not meta:
        return "-"
    for src in meta.get("sources") or [meta]:
        if src.get("kind") == kind:
            return f"{src['file']}:{src['line']}"
    return "-"


# -- clusters ----------------------------------------------------------------------------------------------------


def parse_cluster_name(name: str) -> tuple[str, str, str, str]:
    """(fqdn, port, subset, direction) of Istio's `direction|port|subset|host` names; other names (BlackHoleCluster,
    PassthroughCluster) are their own FQDN, as istioctl shows them."""
    parts = name.split("|")
    if len(parts) != 4:
        return name, "-", "-", "-"
    direction, port, subset, host = parts
    return host, port, subset or "-", direction


def _cluster_type(cluster: Resource) -> str:
    if "cluster_type" in cluster:
        return str(cluster["cluster_type"].get("name", "-"))
    return str(cluster.get("type", "EDS" if "eds_cluster_config" in cluster else "STATIC"))


def _keep_cluster(cluster: Resource, f: Filter) -> bool:
    fqdn, port, _, _ = parse_cluster_name(cluster.get("name", ""))
    return ((f.name is None or f.name in (fqdn, cluster.get("name")))
            and (f.port is None or port == str(f.port)))


def _cluster_rows(clusters: Sequence[Resource], f: Filter) -> list[Row]:
    rows: list[Row] = []
    for c in clusters:
        if _keep_cluster(c, f):
            fqdn, port, subset, direction = parse_cluster_name(c.get("name", ""))
            rows.append((fqdn, port, subset, direction, _cluster_type(c), _source(c, "DestinationRule")))
    return sorted(rows)


# -- listeners ---------------------------------------------------------------------------------------------------


def _address(listener: Resource) -> tuple[str, int]:
    sock = (listener.get("address") or {}).get("socket_address") or {}
    return str(sock.get("address", "")), int(sock.get("port_value", 0))


def _keep_listener(listener: Resource, f: Filter) -> bool:
    _, port = _address(listener)
    return (f.name is None or listener.get("name") == f.name) and (f.port is None or port == f.port)


def _match(chain: Resource) -> str:
    m = chain.get("filter_chain_match") or {}
    parts = []
    if "destination_port" in m:
        parts.append(f"port {m['destination_port']}")
    if m.get("server_names"):
        parts.append("SNI: " + ",".join(m["server_names"]))
    if m.get("transport_protocol"):
        parts.append(f"Trans: {m['transport_protocol']}")
    if m.get("application_protocols"):
        parts.append("App: " + ",".join(m["application_protocols"]))
    if m.get("prefix_ranges"):
        parts.append("Addr: " + ",".join(f"{r['address_prefix']}/{r.get('prefix_len', 32)}"
                                         for r in m["prefix_ranges"]))
    return "; ".join(parts) or "ALL"


def _destination(chain: Resource) -> str:
    for flt in chain.get("filters") or []:
        config = flt.get("typed_config") or {}
        if "rds" in config:
            return f"Route: {config['rds'].get('route_config_name', '')}"
        if "route_config" in config:
            return "Inline Route: " + ",".join(v.get("name", "") for v in config["route_config"].get("virtual_hosts", []))
        if "cluster" in config:
            return f"Cluster: {config['cluster']}"
        if "weighted_clusters" in config:
            return "Clusters: " + ",".join(c["name"] for c in config["weighted_clusters"].get("clusters", []))
    return "-"


def _listener_rows(listeners: Sequence[Resource], f: Filter) -> list[Row]:
    rows: list[Row] = []
    for listener in listeners:
        if not _keep_listener(listener, f):
            continue
        address, port = _address(listener)
        for chain in listener.get("filter_chains") or []:
            rows.append((address, str(port), _match(chain), _destination(chain)))
    return rows


# -- routes ------------------------------------------------------------------------------------------------------


def _route_match(route: Resource) -> str:
    m = route.get("match") or {}
    if "path" in m:
        text = str(m["path"])
    elif "safe_regex" in m:
        text = str(m["safe_regex"].get("regex", ""))
    else:
        text = str(m.get("prefix", m.get("path_separated_prefix", "/"))) + "*"
    headers = [_header(h) for h in m.get("headers") or []]
    return text + (f" ({', '.join(headers)})" if headers else "")


def _header(matcher: Mapping[str, Any]) -> str:
    """`name=value` for an exact match, as a VirtualService's `headers: {name: {exact: value}}` reads; the
    header's name alone for any other match."""
    exact = (matcher.get("string_match") or {}).get("exact")
    return f"{matcher.get('name', '')}={exact}" if exact is not None else str(matcher.get("name", ""))


def _domains(domains: Sequence[str]) -> str:
    if len(domains) <= 2:
        return ", ".join(domains)
    return f"{domains[0]} + {len(domains) - 1} more..."


def _keep_route(route_config: Resource, f: Filter) -> bool:
    return f.name is None or route_config.get("name") == f.name


def _route_rows(route_configs: Sequence[Resource], f: Filter) -> list[Row]:
    rows: list[Row] = []
    for rc in route_configs:
        if not _keep_route(rc, f):
            continue
        for vh in rc.get("virtual_hosts") or []:
            for route in vh.get("routes") or []:
                rows.append((rc.get("name", ""), vh.get("name", ""), _domains(vh.get("domains") or []),
                             _route_match(route), _source(route, "VirtualService")))
    return rows


# -- endpoints ---------------------------------------------------------------------------------------------------


def _keep_assignment(cla: Resource, f: Filter) -> bool:
    return _keep_cluster({"name": cla.get("cluster_name", "")}, f)


def _endpoint_rows(assignments: Sequence[Resource], f: Filter) -> list[Row]:
    """OUTLIER CHECK is what the control plane knows: outlier ejection happens in Envoy, which a config dump
    cannot show, so it is "-" here (istioctl reads Envoy's /clusters for it)."""
    rows: list[Row] = []
    for cla in assignments:
        if not _keep_assignment(cla, f):
            continue
        for locality in cla.get("endpoints") or []:
            for lb in locality.get("lb_endpoints") or []:
                sock = ((lb.get("endpoint") or {}).get("address") or {}).get("socket_address") or {}
                endpoint = f"{sock.get('address', '')}:{sock.get('port_value', 0)}"
                rows.append((endpoint, str(lb.get("health_status", "HEALTHY")), "-", cla.get("cluster_name", "")))
    return rows


# -- secrets -----------------------------------------------------------------------------------------------------


def _pem(source: Mapping[str, Any] | None) -> bytes | None:
    if not source:
        return None
    if "inline_string" in source:
        return str(source["inline_string"]).encode()
    if "inline_bytes" in source:
        return base64.b64decode(source["inline_bytes"])
    return None  # a file path or an SDS name: nothing to read here


def _certificate(secret: Resource) -> tuple[str, bytes | None]:
    if "tls_certificate" in secret:
        return "Cert Chain", _pem(secret["tls_certificate"].get("certificate_chain"))
    if "validation_context" in secret:
        return "CA", _pem(secret["validation_context"].get("trusted_ca"))
    return "Other", None


def _keep_secret(secret: Resource, f: Filter) -> bool:
    return f.name is None or secret.get("name") == f.name


def _secret_rows(secrets: Sequence[Resource], f: Filter) -> list[Row]:
    """Certificates only: private keys are never read (the server redacts them; offline they are skipped)."""
    rows: list[Row] = []
    for secret in secrets:
        if not _keep_secret(secret, f):
            continue
        kind, pem = _certificate(secret)
        cert = None
        if pem is not None:
            try:
                cert = x509.load_pem_x509_certificates(pem)[0]
            except ValueError:
                cert = None
        if cert is None:
            rows.append((secret.get("name", ""), kind, "ACTIVE", "false" if pem else "-", "-", "-", "-"))
        else:
            rows.append((secret.get("name", ""), kind, "ACTIVE", "true", f"{cert.serial_number:x}",
                         cert.not_valid_after_utc.isoformat(), cert.not_valid_before_utc.isoformat()))
    return rows


def _redact(secret: Resource) -> dict[str, Any]:
    """A secret for -o json/yaml: the private key replaced, as Envoy's /config_dump does."""
    out = dict(secret)
    if "tls_certificate" in out:
        tls = dict(out["tls_certificate"])
        if "private_key" in tls:
            tls["private_key"] = {"inline_string": "[redacted]"}
        out["tls_certificate"] = tls
    return out


VIEWS: Mapping[str, View] = {
    "cluster": View(type_urls.CLUSTER, ("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"),
                    _cluster_rows, _keep_cluster),
    "listener": View(type_urls.LISTENER, ("ADDRESSES", "PORT", "MATCH", "DESTINATION"), _listener_rows,
                     _keep_listener),
    "route": View(type_urls.ROUTE, ("NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"), _route_rows,
                  _keep_route),
    "endpoint": View(type_urls.ENDPOINT, ("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"), _endpoint_rows,
                     _keep_assignment),
    "secret": View(type_urls.SECRET, ("RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
                                      "NOT BEFORE"), _secret_rows, _keep_secret),
}


def rows(dump: Dump, view: str, f: Filter = Filter()) -> list[Row]:
    v = VIEWS[view]
    return v.rows(dump.get(v.type_url, ()), f)


def resources(dump: Dump, view: str, f: Filter = Filter()) -> list[dict[str, Any]]:
    """The resources a view shows, for -o json/yaml (secrets without their private keys)."""
    v = VIEWS[view]
    kept = [dict(r) for r in dump.get(v.type_url, ()) if v.keep(r, f)]
    return [_redact(r) for r in kept] if view == "secret" else kept


def table(headers: Iterable[str], body: Iterable[tuple[str, ...]]) -> str:
    """Left-aligned columns, as Go's tabwriter prints istioctl's tables."""
    lines = [tuple(headers), *body]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "".join("     ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
                   for line in lines)
