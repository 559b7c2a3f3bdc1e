"""Access logging on every HTTP and TCP filter chain of a proxy: the Telemetry API's (the root namespace's, the
proxy's namespace's and its workload's Telemetries, the more specific overriding, with MeshConfig extensionProviders
and defaultProviders; pilot/pkg/model/telemetry.go applicableTelemetries, mergeLogs), else MeshConfig's
`accessLogFile` / `accessLogFormat` / `accessLogEncoding`, as Pilot's legacy path does when neither a Telemetry nor
defaultProviders.accessLogging says anything (pilot/pkg/networking/core/accesslog.go setHTTPAccessLog /
setTCPAccessLog, buildFileAccessLogHelper).

An envoyOtelAls provider sends OTLP log records to its `service` (pilot/pkg/model/telemetry_logging.go
openTelemetryLog: `[NAMESPACE/]HOSTNAME` resolved as LookupCluster does, to `outbound|PORT||HOSTNAME`), whose
clusters every proxy then holds (`collector_services`), so that no logger names a cluster its proxy lacks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Literal

from compiler import model, naming
from compiler.api.mesh_config import ExtensionProvider, MeshConfig, OtelAlsProvider
from compiler.api.telemetry import AccessLogging, Telemetry
from compiler.resources import Resource
from compiler.reuse.carry import Tag
from compiler.translate import provider_services
from compiler.translate.mesh import Mesh
from compiler.translate.scope import selects
from compiler.translate.services import Service

KIND = "Telemetry"
OTEL_LOG_NAME = "otel_envoy_accesslog"  # telemetry_logging.go OtelEnvoyAccessLogFriendlyName: the default logName
Mode = Literal["CLIENT", "SERVER"]  # outbound and gateway listeners log as CLIENT, inbound ones as SERVER

# pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat: Istio's default TEXT format (the cluster's own name,
# %UPSTREAM_CLUSTER_RAW%, whatever alt_stat_name says)
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
    '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% "
    "%ROUTE_NAME%\n"
)
# the same file's EnvoyJSONLogFormatIstio: Istio's default JSON labels
ISTIO_JSON_LABELS: dict[str, str] = {
    "start_time": "%START_TIME%", "route_name": "%ROUTE_NAME%", "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%", "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%", "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}


def mesh_access_logs(config: MeshConfig) -> tuple[model.AccessLog, ...]:
    """MeshConfig's file access log: none without `accessLogFile`; Istio's format unless `accessLogFormat` says
    otherwise (a JSON object of labels for the JSON encoding: compiler.mesh_config has checked it is one)."""
    if not config.access_log_file:
        return ()
    if config.access_log_encoding == "JSON":
        labels = json.loads(config.access_log_format) if config.access_log_format else ISTIO_JSON_LABELS
        return (model.AccessLog(config.access_log_file, json=tuple(sorted(labels.items()))),)
    return (model.AccessLog(config.access_log_file, text=config.access_log_format or ISTIO_TEXT_FORMAT),)


def with_access_logs(listeners: Sequence[model.Listener], logs: tuple[model.AccessLog, ...]) -> list[model.Listener]:
    """The listeners with `logs` on every filter chain (unchanged without logs)."""
    if not logs:
        return list(listeners)

    def chain(c: model.FilterChain) -> model.FilterChain:
        return dataclasses.replace(c, filter=dataclasses.replace(c.filter, access_logs=logs))

    return [dataclasses.replace(
        listener, filter_chains=tuple(chain(c) for c in listener.filter_chains),
        default_chain=chain(listener.default_chain) if listener.default_chain else None) for listener in listeners]


def access_logs(mesh: Mesh, proxy: model.Proxy, mode: Mode) -> tuple[model.AccessLog, ...]:
    """The proxy's access logs for one side (Pilot's Telemetries.AccessLogging): MeshConfig's legacy file log when
    no Telemetry configures access logging and defaultProviders.accessLogging is empty; otherwise each enabled
    provider's, ordered by provider name. Unknown providers and providers that log nothing are skipped, as
    Pilot's fetchProvider / telemetryAccessLog do (compiler.analyze.telemetry reports them)."""
    levels = applicable(mesh, proxy)
    defaults = tuple((mesh.config.default_providers.access_logging if mesh.config.default_providers else None)
                     or ())
    if not levels and not defaults:
        return mesh_access_logs(mesh.config)
    enabled = sorted(name for name, disabled in merge(levels, defaults, mode).items() if not disabled)
    expressions = filters(levels, mode)
    return tuple(dataclasses.replace(log, filter=expressions.get(name, "")) for name in enabled
                 if (log := _provider_log(mesh, name)) is not None)


def collector_services(mesh: Mesh) -> list[Service]:
    """The services of the envoyOtelAls providers some Telemetry or defaultProviders.accessLogging names: every
    proxy gets their clusters (a logger whose cluster its proxy lacks sends nothing)."""
    return mesh.memo(("telemetry", "collectors"), lambda: _collector_services(mesh))


def _collector_services(mesh: Mesh) -> list[Service]:
    named = {ref.name for res in mesh.resources.of_kind(KIND) for entry in _spec(res).access_logging or ()
             for ref in entry.providers or ()}
    named.update(mesh.config.default_providers.access_logging or () if mesh.config.default_providers else ())
    found = {service.host: service for name in named
             if (service := _collector(mesh, mesh.config.provider(name))) is not None}
    return [found[host] for host in sorted(found)]


def _collector(mesh: Mesh, provider: ExtensionProvider | None) -> Service | None:
    """An envoyOtelAls provider's service, when the registry has it with the provider's port (else Pilot's lookup
    fails, or its cluster would not exist: compiler.analyze.telemetry reports both)."""
    als = provider.envoy_otel_als if provider is not None else None
    if als is None or not als.service:
        return None
    service = provider_services.lookup(mesh, als.service)
    return service if service is not None and service.port(als.port) is not None else None


def applicable(mesh: Mesh, proxy: model.Proxy) -> list[list[AccessLogging]]:
    """The accessLogging lists that apply to the proxy, least specific first."""
    return [list(t.access_logging) for t in applicable_specs(mesh, proxy) if t.access_logging]


def applicable_specs(mesh: Mesh, proxy: model.Proxy) -> list[Telemetry]:
    """The Telemetries that apply to the proxy, least specific first (applicableTelemetries): the root namespace's
    namespace-wide Telemetry, its own namespace's, then every Telemetry of its namespace whose selector matches its
    labels. A namespace's namespace-wide Telemetry is its oldest; targetRef(s) bind no sidecar or Istio Gateway."""
    grouped = mesh.memo(Tag.TELEMETRY_BY_NAMESPACE, lambda: _by_namespace(mesh))
    labels = proxy.label_map()
    specs = [_namespace_wide(grouped.get(mesh.root_namespace, []))]
    own = grouped.get(proxy.namespace, [])
    if proxy.namespace != mesh.root_namespace:
        specs.append(_namespace_wide(own))
    specs += [t for t in own if _selector(t) and selects(_selector(t), labels)]
    return [t for t in specs if t is not None]


def merge(levels: Sequence[Sequence[AccessLogging]], defaults: Sequence[str], mode: Mode) -> dict[str, bool]:
    """Provider name -> disabled, as Pilot's mergeLogs: the most specific level naming providers for this mode
    chooses which providers are in scope; each entry without providers applies to the previous entry's (at first,
    defaultProviders); the last entry matching the mode says whether a provider logs."""
    if not levels:
        return dict.fromkeys(defaults, False)
    names: Sequence[str] = defaults
    for level in levels:
        found = {ref.name for entry in level if _matches(entry, mode) for ref in entry.providers or ()}
        if found:
            names = sorted(found)
    in_scope = set(names)
    out: dict[str, bool] = {}
    parent: Sequence[str] = defaults
    for level in levels:
        for entry in level:
            listed = [ref.name for ref in entry.providers or ()] or parent
            parent = listed
            if not _matches(entry, mode):
                continue
            for name in listed:
                if name in in_scope:
                    out[name] = bool(entry.disabled)
    return out


def filters(levels: Sequence[Sequence[AccessLogging]], mode: Mode) -> dict[str, str]:
    """Provider name -> its CEL filter expression, as mergeLogs' first pass: the filter of the last entry matching
    the mode that names the provider (an entry inheriting its providers sets none; Telemetry validation has checked
    each expression); "" when that entry has no filter."""
    return {ref.name: entry.filter.expression if entry.filter else ""
            for level in levels for entry in level if _matches(entry, mode) for ref in entry.providers or ()}


def _matches(entry: AccessLogging, mode: Mode) -> bool:
    """matchWorkloadMode: no match, or CLIENT_AND_SERVER, applies to both sides."""
    return entry.match is None or entry.match.mode in ("CLIENT_AND_SERVER", mode)


def _provider_log(mesh: Mesh, name: str) -> model.AccessLog | None:
    """A provider's log: envoyFileAccessLog's (buildFileAccessLogHelper: labels -> JSON, Istio's JSON labels when
    empty; text with a newline appended when missing; Istio's TEXT format without either), envoyOtelAls's; other
    kinds, or a collector that cannot be resolved: None."""
    provider = mesh.config.provider(name)
    if provider is not None and provider.envoy_otel_als is not None:
        return _otel_log(mesh, provider, provider.envoy_otel_als)
    if provider is None or provider.envoy_file_access_log is None:
        return None
    file = provider.envoy_file_access_log
    fmt = file.log_format
    if fmt is not None and fmt.labels is not None:
        return model.AccessLog(file.path, json=tuple(sorted((fmt.labels or ISTIO_JSON_LABELS).items())))
    text = fmt.text if fmt is not None and fmt.text else ""
    return model.AccessLog(file.path, text=(text if text.endswith("\n") else text + "\n") if text
                           else ISTIO_TEXT_FORMAT)


def _otel_log(mesh: Mesh, provider: ExtensionProvider, als: OtelAlsProvider) -> model.AccessLog | None:
    """openTelemetryLog: the text (Istio's TEXT format unless logFormat.text says otherwise, taken as it is) is the
    record's body; logFormat.labels, when any, its attributes."""
    service = _collector(mesh, provider)
    if service is None:
        return None
    fmt = als.log_format
    collector = model.OtelCollector(cluster=naming.outbound_cluster(als.port, "", service.host),
                                    authority=service.host, log_name=als.log_name or OTEL_LOG_NAME)
    return model.AccessLog("", text=fmt.text if fmt is not None and fmt.text else ISTIO_TEXT_FORMAT,
                           json=tuple(sorted((fmt.labels or {}).items())) if fmt is not None else (), otel=collector)


def _by_namespace(mesh: Mesh) -> dict[str, list[Telemetry]]:
    out: dict[str, list[Telemetry]] = {}
    for res in sorted(mesh.resources.of_kind(KIND), key=lambda r: r.pilot_order):
        out.setdefault(res.namespace, []).append(_spec(res))
    return out


def _spec(res: Resource) -> Telemetry:
    spec: Telemetry = res.spec
    return spec


def _selector(spec: Telemetry) -> dict[str, str] | None:
    return spec.selector.match_labels if spec.selector is not None and spec.selector.match_labels else None


def _namespace_wide(found: list[Telemetry]) -> Telemetry | None:
    """namespaceWideTelemetryConfig: the first without selector or targetRef(s)."""
    return next((t for t in found if not _selector(t) and t.target_ref is None and not t.target_refs), None)
