"""RequestAuthentication -> the JWT providers of a workload's HTTP chains (envoy.filters.http.jwt_authn).

Scoped as AuthorizationPolicy is (root namespace, then the workload's, selector or none; targetRef(s) bind no
sidecar or Istio Gateway): the jwtRules of every policy that applies, in that order, are providers `origins-N`,
as Pilot's convertToEnvoyJwtConfig (pilot/pkg/security/authn/policy_applier.go) numbers them. A `jwksUri` is not
fetched yet: such a rule gets Pilot's fail-closed JWKS (jwks_resolver.go PublicOnlyJwks, a public key whose private
key was discarded), so every token it is given is rejected, until the keys are written inline (warning MW0403).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from compiler import model
from compiler.api import security as sec
from compiler.resources import Resource
from compiler.translate import specs

# pilot/pkg/model/jwks_resolver.go PublicOnlyJwks
PUBLIC_ONLY_JWKS = (
    '{"keys":[{"kty":"RSA","e":"AQAB","n":"0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7qth7gUwqet-EzQB4dgFdvSdMgrLnSncQGRjpE'
    'Yz3F3viIbH-3EN3TxSlPNviHxeOdyiBVfumN8dMxbLvVJUpfNOnvmMxJcl-8NNjAwcOjk4otSALaYgYYyOPyvKtgVdrQr-FoubWX4yrjxW-MJ2-'
    '7OBeepUUNOsVwGV23YX03sVkkyvY3otRflkBcY3_HKpBxJl9wk2GyOShN4_PNUF9-vwfnvOXMbCDX-w4PTef4geeb_GiT40YCKHTKMSPVanGRn5G'
    'ExIWmki-mmqh94-mPTJyBR74ShspL3BxPZitDL574T1w"}]}'
)
KIND = "RequestAuthentication"
# buildSpaceDelimitedClaims: claims Istio always splits on spaces before RBAC matches them
_SPACE_DELIMITED = ("scope", "permission")


def _provider(index: int, rule: sec.JWTRule) -> model.JwtProvider:
    extra = tuple(c for c in rule.space_delimited_claims or () if c not in _SPACE_DELIMITED)
    return model.JwtProvider(
        name=f"origins-{index}", issuer=rule.issuer or "", jwks=rule.jwks or PUBLIC_ONLY_JWKS,
        audiences=tuple(rule.audiences or ()), forward=bool(rule.forward_original_token),
        forward_payload_header=rule.output_payload_to_header or "",
        from_headers=tuple((h.name, h.prefix or "") for h in rule.from_headers or ()),
        from_params=tuple(rule.from_params or ()), from_cookies=tuple(rule.from_cookies or ()),
        claim_to_headers=tuple((c.header, c.claim) for c in rule.output_claim_to_headers or ()),
        space_delimited_claims=(*_SPACE_DELIMITED, *extra))


def providers(policies: Sequence[Resource]) -> tuple[model.JwtProvider, ...]:
    rules = [rule for res in policies for rule in specs.request_authentication(res).jwt_rules or ()]
    return tuple(_provider(i, rule) for i, rule in enumerate(rules))


def with_jwt(listeners: Sequence[model.Listener], policies: Sequence[Resource]) -> list[model.Listener]:
    """The listeners with the providers on every HTTP chain (JWT has no meaning on TCP)."""
    found = providers(policies)
    if not found:
        return list(listeners)

    def chain(c: model.FilterChain) -> model.FilterChain:
        if not isinstance(c.filter, model.HttpFilterChain):
            return c
        return dataclasses.replace(c, filter=dataclasses.replace(c.filter, jwt=found))

    return [dataclasses.replace(
        listener, filter_chains=tuple(chain(c) for c in listener.filter_chains),
        default_chain=chain(listener.default_chain) if listener.default_chain else None) for listener in listeners]
