"""envoy.filters.http.jwt_authn: a workload's RequestAuthentication rules, as Pilot's convertToEnvoyJwtConfig
(pilot/pkg/security/authn/policy_applier.go) writes them: a token that is present must verify (else 401), a
missing one passes; the verified payload goes to dynamic metadata under `payload`, where RBAC's request
principals and claims read it."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2

from compiler import model

NAME = "envoy.filters.http.jwt_authn"
PAYLOAD_IN_METADATA = "payload"  # pilot/pkg/xds/filters EnvoyJwtFilterPayload


def _provider(p: model.JwtProvider) -> jwt_pb2.JwtProvider:
    return jwt_pb2.JwtProvider(
        issuer=p.issuer, audiences=p.audiences, forward=p.forward, forward_payload_header=p.forward_payload_header,
        payload_in_metadata=PAYLOAD_IN_METADATA,
        normalize_payload_in_metadata=jwt_pb2.JwtProvider.NormalizePayload(
            space_delimited_claims=p.space_delimited_claims),
        local_jwks=base_pb2.DataSource(inline_string=p.jwks),
        from_headers=[jwt_pb2.JwtHeader(name=n, value_prefix=prefix) for n, prefix in p.from_headers],
        from_params=p.from_params, from_cookies=p.from_cookies,
        claim_to_headers=[jwt_pb2.JwtClaimToHeader(header_name=h, claim_name=c) for h, c in p.claim_to_headers])


def _either(name: str) -> jwt_pb2.JwtRequirement:
    """The provider's token, if present, must verify; or there is none."""
    return jwt_pb2.JwtRequirement(requires_any=jwt_pb2.JwtRequirementOrList(requirements=[
        jwt_pb2.JwtRequirement(provider_name=name), jwt_pb2.JwtRequirement(allow_missing={})]))


def _requirement(providers: tuple[model.JwtProvider, ...]) -> jwt_pb2.JwtRequirement:
    """One provider: {P or missing}. Several: any one of them, or all of {P_i or missing} (a token given must
    verify with its provider; providers sharing a location are covered by the first part)."""
    if len(providers) == 1:
        return _either(providers[0].name)
    every = jwt_pb2.JwtRequirement(requires_all=jwt_pb2.JwtRequirementAndList(
        requirements=[_either(p.name) for p in providers]))
    return jwt_pb2.JwtRequirement(requires_any=jwt_pb2.JwtRequirementOrList(
        requirements=[*(jwt_pb2.JwtRequirement(provider_name=p.name) for p in providers), every]))


def filter_config(providers: tuple[model.JwtProvider, ...]) -> jwt_pb2.JwtAuthentication:
    rule = jwt_pb2.RequirementRule(match=route_components_pb2.RouteMatch(prefix="/"),
                                   requires=_requirement(providers))
    return jwt_pb2.JwtAuthentication(providers={p.name: _provider(p) for p in providers}, rules=[rule],
                                     bypass_cors_preflight=True)
