"""RequestAuthentication -> model.JwtProvider on a workload's HTTP chains: scoping, Pilot's provider numbering,
the fail-closed JWKS for an unfetched jwksUri, which rules are fetched (jwksUri, else OpenID discovery), and no JWT on
TCP chains."""

from __future__ import annotations

from translate_harness import build_mesh, config_for

from compiler import model
from compiler.inputs import Discovery, FetchedJwks
from compiler.translate import jwt

NODE = "sidecar~10.0.0.1~web.app~app.svc.cluster.local"
BASE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}, {name: tcp, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: app}
spec: {address: 10.0.0.1, labels: {app: web}}
"""


def request_authn(name: str, namespace: str, body: str) -> str:
    return (f"---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}")


def chains(*policies: str) -> dict[int, tuple[model.JwtProvider, ...] | None]:
    """Inbound port -> its chain's providers (None for a TCP chain)."""
    cfg = config_for(BASE + "".join(policies), NODE)
    return {lst.port: lst.filter_chains[0].filter.jwt if isinstance(lst.filter_chains[0].filter,
                                                                    model.HttpFilterChain) else None
            for lst in cfg.listeners if lst.direction is model.TrafficDirection.INBOUND}


def test_root_namespace_first_then_own_and_selector_scoping() -> None:
    found = chains(
        request_authn("mine", "app", "  selector: {matchLabels: {app: web}}\n  jwtRules:\n"
                                     "  - {issuer: b, jwks: '{\"keys\":[]}', fromParams: [t]}\n"),
        request_authn("mesh", "istio-system", "  jwtRules:\n  - {issuer: a, jwksUri: 'https://a/jwks'}\n"),
        request_authn("theirs", "app", "  selector: {matchLabels: {app: other}}\n  jwtRules:\n  - {issuer: c}\n"),
    )
    providers = found[8080] or ()
    assert [(p.name, p.issuer) for p in providers] == [("origins-0", "a"), ("origins-1", "b")]
    assert providers[0].jwks == jwt.PUBLIC_ONLY_JWKS, "an unfetched jwksUri rejects every token"
    assert (providers[1].jwks, providers[1].from_params) == ('{"keys":[]}', ("t",))
    assert found[9000] is None, "TCP chains have no JWT"


def test_without_request_authentication_no_provider() -> None:
    assert chains()[8080] == ()


def test_a_rule_without_jwks_or_jwks_uri_is_fetched_by_its_issuers_discovery() -> None:
    """Pilot's GetPublicKey resolves the issuer's discovery document when a rule has no jwksUri; inline keys are
    never fetched."""
    mesh = build_mesh(BASE + request_authn("r", "app", "  jwtRules:\n  - {issuer: 'https://idp/realms/a/'}\n"
                                                       "  - {issuer: b, jwksUri: 'https://b/keys', timeout: 2s}\n"
                                                       "  - {issuer: c, jwks: '{\"keys\":[]}'}\n"))
    assert jwt.jwks_sources(mesh.resources) == {Discovery("https://idp/realms/a/"): 5.0, "https://b/keys": 2.0}


def test_a_fetched_body_nested_past_the_json_decoder_is_no_key_set_not_a_crash() -> None:
    mesh = build_mesh(BASE + request_authn("r", "app", "  jwtRules:\n  - {issuer: 'https://idp'}\n"))
    deep = {Discovery("https://idp"): FetchedJwks(keys="[" * 100_000)}
    [note] = jwt.unavailable(mesh.resources, deep)
    assert note.code == "MW0412" and "is not JSON" in note.message
