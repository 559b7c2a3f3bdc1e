"""envoy.filters.http.fault: an empty filter in the chain, and the per-route HTTPFault that turns it on for
the routes of a VirtualService with `fault` (Istio's HTTPFaultInjection)."""

from __future__ import annotations

from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from compiler import model
from compiler.emit import common

NAME = "envoy.filters.http.fault"


def filter_config() -> fault_pb2.HTTPFault:
    """No fault unless a route says so: the per-route config replaces this one."""
    return fault_pb2.HTTPFault()


def per_route(fault: model.Fault) -> fault_pb2.HTTPFault:
    out = fault_pb2.HTTPFault()
    if fault.delay_ms is not None:
        out.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=common.duration(fault.delay_ms), percentage=common.fraction(fault.delay_percent)
            )
        )
    if fault.abort_status is not None:
        out.abort.CopyFrom(
            fault_pb2.FaultAbort(
                http_status=fault.abort_status, percentage=common.fraction(fault.abort_percent)
            )
        )
    elif fault.abort_grpc_status is not None:
        out.abort.CopyFrom(
            fault_pb2.FaultAbort(
                grpc_status=fault.abort_grpc_status, percentage=common.fraction(fault.abort_percent)
            )
        )
    return out
