"""envoy.access_loggers.open_telemetry: a model.AccessLog with a collector -> the logger's config, as Pilot builds
it for an envoyOtelAls provider (pilot/pkg/model/telemetry_logging.go openTelemetryLog,
buildOpenTelemetryAccessLogConfig): OTLP log records over Envoy's gRPC client to the collector's outbound cluster,
the format string as the record's body, the labels as its string attributes (sorted), and Envoy's built-in labels
off so that the attributes are the provider's alone.

Pilot also names Istio's peer-metadata filter-state objects to log (`upstream_peer`, `downstream_peer`, ...); only
Istio's own metadata-exchange extension sets them, which meshward never emits, so they are left out."""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2, extension_pb2, grpc_service_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.access_loggers.open_telemetry.v3 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from compiler import model

NAME = "envoy.access_loggers.open_telemetry"


def config(log: model.AccessLog, collector: model.OtelCollector,
           formatters: list[extension_pb2.TypedExtensionConfig]) -> logs_service_pb2.OpenTelemetryAccessLogConfig:
    grpc = grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(
        cluster_name=collector.cluster, authority=collector.authority))
    out = logs_service_pb2.OpenTelemetryAccessLogConfig(
        common_config=als_pb2.CommonGrpcAccessLogConfig(log_name=collector.log_name, grpc_service=grpc,
                                                        transport_api_version=config_source_pb2.V3),
        disable_builtin_labels=True, formatters=formatters)
    if log.text:
        out.body.string_value = log.text
    if log.json:
        out.attributes.values.extend(common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))
                                     for key, value in log.json)
    return out
