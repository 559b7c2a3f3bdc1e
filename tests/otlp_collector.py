"""An OpenTelemetry collector for tests that speaks the real wire protocol: OTLP over gRPC (grpcio, the
`opentelemetry-proto` messages shipped in xds-protos), the LogsService and TraceService `Export` calls Envoy's
OpenTelemetry access logger and tracer make. It binds a loopback address on a free port, keeps every request it
receives (thread-safe), and waits for records with a bounded deadline, so a test can assert on what a real Envoy sent.

xds-protos ships the messages but no gRPC stubs for them, so the two methods are registered as generic handlers
under their full names (`/opentelemetry.proto.collector.logs.v1.LogsService/Export`). Those messages are OTLP's
0.x revision: today's `scope_logs` / `scope_spans` (field 2, with `log_records` / `spans` at field 2 inside) arrive as
the same fields under their older names `instrumentation_library_logs` / `instrumentation_library_spans`
(`logs` / `spans`): the wire format did not change, only the names."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

ADDRESS = "127.0.0.1"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_EXPORT = f"/{LOGS_SERVICE}/Export"
TRACE_EXPORT = f"/{TRACE_SERVICE}/Export"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class LogRecord:
    """One received log record with the resource attributes of its batch (Envoy puts the node there)."""
    record: logs_pb2.LogRecord
    resource: dict[str, Any]

    @property
    def body(self) -> Any:
        return any_value(self.record.body)

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.record.attributes)


@dataclasses.dataclass(frozen=True)
class Span:
    """One received span with the resource attributes of its batch (`service.name` among them)."""
    span: trace_pb2.Span
    resource: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


def any_value(value: common_pb2.AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it holds (lists and maps recursively; None when unset)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """Repeated KeyValue pairs as a dict."""
    return {pair.key: any_value(pair.value) for pair in pairs}


class Collector:
    """What the server received, in arrival order. Handlers run on the server's threads; tests read on theirs."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self._changed = threading.Condition()
        self._logs: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self._traces: list[trace_service_pb2.ExportTraceServiceRequest] = []

    @property
    def target(self) -> str:
        """host:port, as a gRPC channel or a registry entry names it."""
        return f"{self.address}:{self.port}"

    def log_requests(self) -> list[logs_service_pb2.ExportLogsServiceRequest]:
        with self._changed:
            return list(self._logs)

    def trace_requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        with self._changed:
            return list(self._traces)

    def log_records(self) -> list[LogRecord]:
        return [LogRecord(record, attributes(group.resource.attributes))
                for request in self.log_requests() for group in request.resource_logs
                for scope in group.instrumentation_library_logs for record in scope.logs]

    def spans(self) -> list[Span]:
        return [Span(span, attributes(group.resource.attributes))
                for request in self.trace_requests() for group in request.resource_spans
                for scope in group.instrumentation_library_spans for span in scope.spans]

    def wait_logs(self, count: int, timeout_s: float = 20.0) -> list[LogRecord]:
        """At least `count` log records, once received; AssertionError naming what came after `timeout_s`."""
        return self._wait(self.log_records, count, timeout_s, "log records")

    def wait_spans(self, count: int, timeout_s: float = 20.0) -> list[Span]:
        """At least `count` spans, once received; AssertionError naming what came after `timeout_s`."""
        return self._wait(self.spans, count, timeout_s, "spans")

    def _wait(self, read: Callable[[], list[T]], count: int, timeout_s: float, what: str) -> list[T]:
        end = time.monotonic() + timeout_s
        with self._changed:
            while len(found := read()) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)} {what} (wanted {count}) after {timeout_s}s: {found!r}")
                self._changed.wait(left)
        return found

    def _export_logs(self, request: logs_service_pb2.ExportLogsServiceRequest,
                     context: grpc.ServicerContext) -> logs_service_pb2.ExportLogsServiceResponse:
        with self._changed:
            self._logs.append(request)
            self._changed.notify_all()
        return logs_service_pb2.ExportLogsServiceResponse()

    def _export_traces(self, request: trace_service_pb2.ExportTraceServiceRequest,
                       context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._changed:
            self._traces.append(request)
            self._changed.notify_all()
        return trace_service_pb2.ExportTraceServiceResponse()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        logs = grpc.unary_unary_rpc_method_handler(
            self._export_logs, request_deserializer=logs_service_pb2.ExportLogsServiceRequest.FromString,
            response_serializer=logs_service_pb2.ExportLogsServiceResponse.SerializeToString)
        traces = grpc.unary_unary_rpc_method_handler(
            self._export_traces, request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)
        return [grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": logs}),
                grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": traces})]


@contextmanager
def serving(address: str = ADDRESS, port: int = 0) -> Iterator[Collector]:
    """A collector listening on `address` (a loopback address) and `port` (0: a free one, chosen by the kernel)."""
    # without SO_REUSEPORT (grpc's default) a port in use is a RuntimeError here, not a second listener on it
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    bound = server.add_insecure_port(f"{address}:{port}")
    collector = Collector(address, bound)
    server.add_generic_rpc_handlers(collector.handlers())
    server.start()
    try:
        yield collector
    finally:
        server.stop(grace=None).wait(timeout=5)
