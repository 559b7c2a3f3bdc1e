"""envoy.filters.http.router: the terminal HTTP filter that forwards to the route's cluster."""

from __future__ import annotations

from envoy.extensions.filters.http.router.v3 import router_pb2

NAME = "envoy.filters.http.router"


def filter_config() -> router_pb2.Router:
    return router_pb2.Router()
