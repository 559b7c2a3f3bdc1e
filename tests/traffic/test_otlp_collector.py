"""The test OTLP collector (tests/otlp_collector.py) against a real grpc client: it answers both Export calls,
keeps what they carried in order (from several client threads at once), waits within a bound, and frees its port
when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import otlp_collector
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


def _text(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def _logs(*bodies: str) -> logs_service_pb2.ExportLogsServiceRequest:
    records = [logs_pb2.LogRecord(body=common_pb2.AnyValue(string_value=body),
                                  attributes=[_text("path", f"/{body}"),
                                              common_pb2.KeyValue(key="code",
                                                                  value=common_pb2.AnyValue(int_value=200))])
               for body in bodies]
    resource = resource_pb2.Resource(attributes=[_text("node_name", "sidecar~1")])
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=resource, instrumentation_library_logs=[logs_pb2.InstrumentationLibraryLogs(logs=records)])])


def _spans(*names: str) -> trace_service_pb2.ExportTraceServiceRequest:
    spans = [trace_pb2.Span(trace_id=b"t" * 16, span_id=bytes([n]) * 8, name=name) for n, name in enumerate(names)]
    resource = resource_pb2.Resource(attributes=[_text("service.name", "web.shop")])
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource, instrumentation_library_spans=[trace_pb2.InstrumentationLibrarySpans(spans=spans)])])


@pytest.fixture
def collector() -> Iterator[otlp_collector.Collector]:
    with otlp_collector.serving() as running:
        yield running


@pytest.fixture
def channel(collector: otlp_collector.Collector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(collector.target) as opened:
        yield opened


def _export_logs(channel: grpc.Channel, request: logs_service_pb2.ExportLogsServiceRequest) -> None:
    call = channel.unary_unary(otlp_collector.LOGS_EXPORT,
                               request_serializer=logs_service_pb2.ExportLogsServiceRequest.SerializeToString,
                               response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString)
    assert call(request, timeout=5) == logs_service_pb2.ExportLogsServiceResponse()


def _export_spans(channel: grpc.Channel, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
    call = channel.unary_unary(otlp_collector.TRACE_EXPORT,
                               request_serializer=trace_service_pb2.ExportTraceServiceRequest.SerializeToString,
                               response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString)
    assert call(request, timeout=5) == trace_service_pb2.ExportTraceServiceResponse()


def test_log_records_arrive_with_their_attributes_and_resource(collector: otlp_collector.Collector,
                                                               channel: grpc.Channel) -> None:
    _export_logs(channel, _logs("a", "b"))
    _export_logs(channel, _logs("c"))
    records = collector.wait_logs(3, timeout_s=5)
    assert [record.body for record in records] == ["a", "b", "c"]
    assert records[0].attributes == {"path": "/a", "code": 200}
    assert records[0].resource == {"node_name": "sidecar~1"}
    assert len(collector.log_requests()) == 2
    assert collector.spans() == [], "logs are not spans"


def test_spans_arrive_with_their_resource(collector: otlp_collector.Collector, channel: grpc.Channel) -> None:
    _export_spans(channel, _spans("ingress", "egress"))
    spans = collector.wait_spans(2, timeout_s=5)
    assert [span.span.name for span in spans] == ["ingress", "egress"]
    assert spans[1].resource == {"service.name": "web.shop"}
    assert collector.log_records() == []


def test_concurrent_exports_are_all_kept(collector: otlp_collector.Collector, channel: grpc.Channel) -> None:
    threads = [threading.Thread(target=_export_logs, args=(channel, _logs(*(f"{n}-{i}" for i in range(5)))))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    bodies = [record.body for record in collector.wait_logs(40, timeout_s=5)]
    assert sorted(bodies) == sorted(f"{n}-{i}" for n in range(8) for i in range(5))


def test_a_waiter_wakes_when_records_arrive(collector: otlp_collector.Collector, channel: grpc.Channel) -> None:
    later = threading.Timer(0.3, _export_spans, args=(channel, _spans("late")))
    later.start()
    started = time.monotonic()
    assert [span.span.name for span in collector.wait_spans(1, timeout_s=10)] == ["late"]
    assert time.monotonic() - started < 5
    later.join()


def test_the_wait_is_bounded_and_says_what_came(collector: otlp_collector.Collector, channel: grpc.Channel) -> None:
    _export_logs(channel, _logs("only"))
    started = time.monotonic()
    with pytest.raises(AssertionError, match="1 log records \\(wanted 2\\) after 0.3s"):
        collector.wait_logs(2, timeout_s=0.3)
    assert time.monotonic() - started < 5  # only bounds a wait that ignored its timeout; speed is for bench/


def test_a_given_address_and_port_and_the_port_freed_on_exit() -> None:
    with otlp_collector.serving("127.0.0.2") as first:
        assert first.address == "127.0.0.2"
        # no second listener on a port in use
        with pytest.raises(RuntimeError), otlp_collector.serving("127.0.0.2", first.port):
            pass
        port = first.port
    with otlp_collector.serving("127.0.0.2", port) as again, grpc.insecure_channel(again.target) as channel:
        _export_logs(channel, _logs("back"))
        assert [record.body for record in again.wait_logs(1, timeout_s=5)] == ["back"]


def test_a_stopped_collector_refuses() -> None:
    with otlp_collector.serving() as stopped:
        target = stopped.target
    with grpc.insecure_channel(target) as closed, pytest.raises(grpc.RpcError) as failed:
        _export_logs(closed, _logs("lost"))
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
