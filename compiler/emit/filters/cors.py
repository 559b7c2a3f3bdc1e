"""envoy.filters.http.cors: an empty filter in the chain, and the per-route CorsPolicy from a VirtualService's
`corsPolicy`."""

from __future__ import annotations

from envoy.extensions.filters.http.cors.v3 import cors_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import common

NAME = "envoy.filters.http.cors"


def filter_config() -> cors_pb2.Cors:
    return cors_pb2.Cors()


def per_route(cors: model.Cors) -> cors_pb2.CorsPolicy:
    """Envoy takes the method and header lists as comma-separated strings (as Istio joins them)."""
    return cors_pb2.CorsPolicy(
        allow_origin_string_match=[common.string_matcher(m) for m in cors.allow_origins],
        allow_methods=",".join(cors.allow_methods),
        allow_headers=",".join(cors.allow_headers),
        expose_headers=",".join(cors.expose_headers),
        max_age="" if cors.max_age_s is None else str(cors.max_age_s),
        allow_credentials=None
        if cors.allow_credentials is None
        else wrappers_pb2.BoolValue(value=cors.allow_credentials),
        # Pilot's forwardNotMatchingPreflights (pilot/pkg/networking/core/route/route.go): only IGNORE says false
        forward_not_matching_preflights=None
        if cors.forward_unmatched_preflights
        else wrappers_pb2.BoolValue(value=False),
    )
