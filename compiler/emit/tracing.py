"""A connection manager's tracing: one model.Tracing -> the HttpConnectionManager's `tracing` (the tracer and the
collector's cluster, sampling, span tags) and its UUID request id extension, as Pilot builds them
(pilot/pkg/networking/core/tracing.go buildHCMTracing, zipkinConfig, otelConfig, configureSampling,
configureCustomTags; pilot/pkg/xds/requestidextension/uuid_extension.go)."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.trace.v3 import http_tracer_pb2, opentelemetry_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.request_id.uuid.v3 import uuid_pb2
from envoy.type.metadata.v3 import metadata_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import message

from compiler import model
from compiler.emit import common

ZIPKIN = "envoy.tracers.zipkin"
OPENTELEMETRY = "envoy.tracers.opentelemetry"
_RBAC = "envoy.filters.http.rbac"  # whose dynamic metadata the dry-run policy tags read
_TAG = custom_tag_pb2.CustomTag
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD  # tracing.go buildHTTPHeaders


def of(tracing: model.Tracing) -> hcm_pb2.HttpConnectionManager.Tracing:
    """Every request is a candidate (client and overall sampling 100%); `random_sampling` decides for those that
    arrive without a decision."""
    out = hcm_pb2.HttpConnectionManager.Tracing(
        client_sampling=percent_pb2.Percent(value=100.0), overall_sampling=percent_pb2.Percent(value=100.0),
        random_sampling=percent_pb2.Percent(value=tracing.sampling), custom_tags=[_tag(t) for t in tracing.tags],
        provider=http_tracer_pb2.Tracing.Http(name=ZIPKIN if tracing.tracer is model.Tracer.ZIPKIN
                                              else OPENTELEMETRY, typed_config=common.pack(_tracer(tracing))))
    if tracing.spawn_upstream_span:
        out.spawn_upstream_span.value = True
    if tracing.max_path_tag_length:
        out.max_path_tag_length.value = tracing.max_path_tag_length
    return out


def request_id(tracing: model.Tracing) -> hcm_pb2.RequestIDExtension:
    """Whether the x-request-id carries the sampling decision (useRequestIdForTraceSampling)."""
    config = uuid_pb2.UuidRequestIdConfig()
    config.use_request_id_for_trace_sampling.value = tracing.use_request_id_for_sampling
    return hcm_pb2.RequestIDExtension(typed_config=common.pack(config))


def _tracer(tracing: model.Tracing) -> message.Message:
    if tracing.tracer is model.Tracer.ZIPKIN:  # Zipkin v2 JSON over HTTP; each proxy's spans its own
        zipkin = zipkin_pb2.ZipkinConfig(
            collector_cluster=tracing.cluster, collector_endpoint=tracing.path, collector_hostname=tracing.host,
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON, trace_id_128bit=tracing.trace_id_128bit)
        zipkin.shared_span_context.value = False
        return zipkin
    out = opentelemetry_pb2.OpenTelemetryConfig(service_name=tracing.service_name)
    if tracing.http:  # OTLP over HTTP: the URI is the host and path (Go's url.JoinPath, as Pilot joins them)
        out.http_service.http_uri.uri = f"{tracing.host}/{tracing.path.lstrip('/')}"
        out.http_service.http_uri.cluster = tracing.cluster
        out.http_service.http_uri.timeout.CopyFrom(common.duration(tracing.timeout_ms))
        out.http_service.request_headers_to_add.extend(base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=k, value=v), append_action=_OVERWRITE) for k, v in tracing.headers)
        return out
    out.grpc_service.envoy_grpc.cluster_name = tracing.cluster  # OTLP over gRPC
    out.grpc_service.envoy_grpc.authority = tracing.host
    if tracing.timeout_ms:
        out.grpc_service.timeout.CopyFrom(common.duration(tracing.timeout_ms))
    out.grpc_service.initial_metadata.extend(base_pb2.HeaderValue(key=k, value=v) for k, v in tracing.headers)
    return out


def _tag(tag: model.SpanTag) -> custom_tag_pb2.CustomTag:
    if tag.kind is model.TagKind.LITERAL:
        return _TAG(tag=tag.tag, literal=_TAG.Literal(value=tag.value))
    if tag.kind is model.TagKind.ENVIRONMENT:
        return _TAG(tag=tag.tag, environment=_TAG.Environment(name=tag.value, default_value=tag.default))
    if tag.kind is model.TagKind.REQUEST_HEADER:
        return _TAG(tag=tag.tag, request_header=_TAG.Header(name=tag.value, default_value=tag.default))
    if tag.kind is model.TagKind.FORMATTER:
        return _TAG(tag=tag.tag, value=tag.value)
    return _TAG(tag=tag.tag, metadata=_TAG.Metadata(
        kind=metadata_pb2.MetadataKind(request=metadata_pb2.MetadataKind.Request()),
        metadata_key=metadata_pb2.MetadataKey(key=_RBAC, path=[metadata_pb2.MetadataKey.PathSegment(key=tag.value)])))
