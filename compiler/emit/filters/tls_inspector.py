"""envoy.filters.listener.tls_inspector: reads the ClientHello so that filter chains can match on SNI and on
the transport protocol."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from compiler.emit import common

NAME = "envoy.filters.listener.tls_inspector"


def listener_filter() -> listener_components_pb2.ListenerFilter:
    return listener_components_pb2.ListenerFilter(
        name=NAME, typed_config=common.pack(tls_inspector_pb2.TlsInspector())
    )
