"""RequestAuthentication -> the JWT providers of a workload's HTTP chains (envoy.filters.http.jwt_authn).

Scoped as AuthorizationPolicy is (root namespace, then the workload's, selector or none; targetRef(s) bind no
sidecar or Istio Gateway): the jwtRules of every policy that applies, in that order, are providers `origins-N`,
as Pilot's convertToEnvoyJwtConfig (pilot/pkg/security/authn/policy_applier.go) numbers them. A `jwksUri`'s key set
is inlined as Pilot does by default (jwks_resolver.go BuildLocalJwks), and so is the key set of a rule with neither
`jwks` nor `jwksUri`, which Pilot finds through the issuer's OpenID discovery document (GetPublicKey ->
resolveJwksURIUsingOpenID): the build's input holds what the reconciler fetched (`compiler.inputs`); when there is
nothing usable there (not fetched, the fetch failed, the body is not a key set Envoy reads), the rule gets Pilot's
fail-closed JWKS (PublicOnlyJwks, a public key whose private key was discarded), so every token it is given is
rejected while requests without one pass, and warning MW0412 says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence

from compiler import model, units
from compiler.api import security as sec
from compiler.diagnostics import Diagnostic
from compiler.inputs import Discovery, FetchedJwks, KeySource
from compiler.resources import Resource, ResourceSet
from compiler.translate import specs
from compiler.validate import envoy_limits

# pilot/pkg/model/jwks_resolver.go PublicOnlyJwks
PUBLIC_ONLY_JWKS = (
    '{"keys":[{"kty":"RSA","e":"AQAB","n":"0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7qth7gUwqet-EzQB4dgFdvSdMgrLnSncQGRjpE'
    'Yz3F3viIbH-3EN3TxSlPNviHxeOdyiBVfumN8dMxbLvVJUpfNOnvmMxJcl-8NNjAwcOjk4otSALaYgYYyOPyvKtgVdrQr-FoubWX4yrjxW-MJ2-'
    '7OBeepUUNOsVwGV23YX03sVkkyvY3otRflkBcY3_HKpBxJl9wk2GyOShN4_PNUF9-vwfnvOXMbCDX-w4PTef4geeb_GiT40YCKHTKMSPVanGRn5G'
    'ExIWmki-mmqh94-mPTJyBR74ShspL3BxPZitDL574T1w"}]}'
)
KIND = "RequestAuthentication"
DEFAULT_FETCH_TIMEOUT = 5.0  # seconds: policy_applier.go's default for jwtRule.timeout
# buildSpaceDelimitedClaims: claims Istio always splits on spaces before RBAC matches them
_SPACE_DELIMITED = ("scope", "permission")


def jwks_uri(rule: sec.JWTRule) -> str:
    return rule.jwks_uri or rule.jwks_uri_legacy or ""


def source(rule: sec.JWTRule) -> KeySource | None:
    """Where the rule's key set is fetched from: its jwksUri, else its issuer's discovery document (Pilot's
    GetPublicKey discovers when jwksURI is empty); None when the rule writes its keys in `jwks`."""
    if rule.jwks is not None:
        return None
    if jwks_uri(rule):
        return jwks_uri(rule)
    return Discovery(rule.issuer) if rule.issuer else None


def _fetched_keys(found: KeySource, fetched: Mapping[KeySource, FetchedJwks]) -> tuple[str, str]:
    """(the key set to inline, "") or ("", why there is none)."""
    got = fetched.get(found)
    if got is None:
        return "", ("it was not fetched (meshward serve fetches it; `meshward compile --fetch-jwks` does too, "
                    "offline builds do not)")
    if got.error:
        return "", f"fetching it failed: {got.error}"
    problem = envoy_limits.jwks(got.keys)
    if problem:
        return "", f"what it serves is not a key set Envoy reads ({problem})"
    return got.keys, ""


def _keys(rule: sec.JWTRule, fetched: Mapping[KeySource, FetchedJwks]) -> str:
    found = source(rule)
    if found is None:
        return rule.jwks or PUBLIC_ONLY_JWKS
    return _fetched_keys(found, fetched)[0] or PUBLIC_ONLY_JWKS


def _provider(index: int, rule: sec.JWTRule, fetched: Mapping[KeySource, FetchedJwks]) -> model.JwtProvider:
    extra = tuple(c for c in rule.space_delimited_claims or () if c not in _SPACE_DELIMITED)
    return model.JwtProvider(
        name=f"origins-{index}", issuer=rule.issuer or "", jwks=_keys(rule, fetched),
        audiences=tuple(rule.audiences or ()), forward=bool(rule.forward_original_token),
        forward_payload_header=rule.output_payload_to_header or "",
        from_headers=tuple((h.name, h.prefix or "") for h in rule.from_headers or ()),
        from_params=tuple(rule.from_params or ()), from_cookies=tuple(rule.from_cookies or ()),
        claim_to_headers=tuple((c.header, c.claim) for c in rule.output_claim_to_headers or ()),
        space_delimited_claims=(*_SPACE_DELIMITED, *extra))


def providers(policies: Sequence[Resource], fetched: Mapping[KeySource, FetchedJwks]) -> tuple[model.JwtProvider, ...]:
    rules = [rule for res in policies for rule in specs.request_authentication(res).jwt_rules or ()]
    return tuple(_provider(i, rule, fetched) for i, rule in enumerate(rules))


def _fetched_rules(resources: ResourceSet) -> Iterator[tuple[Resource, int, sec.JWTRule, KeySource]]:
    for res in resources.of_kind(KIND):
        for i, rule in enumerate(specs.request_authentication(res).jwt_rules or ()):
            found = source(rule)
            if found is not None:
                yield res, i, rule, found


def jwks_sources(resources: ResourceSet) -> dict[KeySource, float]:
    """The jwksUris and discovered issuers whose key sets the revision inlines, with how long a fetch may take
    (seconds; the shortest `timeout` of the rules naming it, Pilot's default 5 s): what the reconciler fetches."""
    out: dict[KeySource, float] = {}
    for _, _, rule, found in _fetched_rules(resources):
        seconds = units.duration_ms(rule.timeout) / 1000 if rule.timeout else DEFAULT_FETCH_TIMEOUT
        out[found] = min(seconds, out.get(found, seconds))
    return out


def _field(rule: sec.JWTRule) -> str:
    return "jwksUri" if rule.jwks_uri else "jwks_uri" if rule.jwks_uri_legacy else "issuer"


def unavailable(resources: ResourceSet, fetched: Mapping[KeySource, FetchedJwks], *,
                fetched_only: bool = False) -> list[Diagnostic]:
    """MW0412 at each jwksUri (or discovered issuer) whose rule gets the fail-closed key set, and why (Pilot only
    logs it); `fetched_only`: not at those nobody fetched (`validate` without --fetch-jwks)."""
    notes = []
    for res, i, rule, found in _fetched_rules(resources):
        if fetched_only and found not in fetched:
            continue
        why = _fetched_keys(found, fetched)[1]
        if why:
            notes.append(res.diag("MW0412", f"no key set for {found}: {why}; the rule gets Istio's "
                                            "fail-closed JWKS (every token it checks gets 401)",
                                            ("spec", "jwtRules", i, _field(rule))))
    return notes


def with_jwt(listeners: Sequence[model.Listener], policies: Sequence[Resource],
             fetched: Mapping[KeySource, FetchedJwks]) -> list[model.Listener]:
    """The listeners with the providers on every HTTP chain (JWT has no meaning on TCP)."""
    found = providers(policies, fetched)
    if not found:
        return list(listeners)

    def chain(c: model.FilterChain) -> model.FilterChain:
        if not isinstance(c.filter, model.HttpFilterChain):
            return c
        return dataclasses.replace(c, filter=dataclasses.replace(c.filter, jwt=found))

    return [dataclasses.replace(
        listener, filter_chains=tuple(chain(c) for c in listener.filter_chains),
        default_chain=chain(listener.default_chain) if listener.default_chain else None) for listener in listeners]
