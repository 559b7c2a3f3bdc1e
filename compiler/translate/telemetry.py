"""Access logging from MeshConfig (`accessLogFile`, `accessLogFormat`, `accessLogEncoding`) on every HTTP and TCP
filter chain of a proxy, as Pilot's legacy path does when no Telemetry resource applies
(pilot/pkg/networking/core/accesslog.go setHTTPAccessLog / setTCPAccessLog, buildFileAccessLogHelper)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from compiler import model
from compiler.api.mesh_config import MeshConfig

# pilot/pkg/networking/core/accesslog.go EnvoyTextLogFormat: Istio's default TEXT format
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
    '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% '
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
    "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER%",
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
