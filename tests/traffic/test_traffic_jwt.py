"""Real requests with JWTs through a gateway compiled by meshward: RequestAuthentication -> jwt_authn (a token the
test signs verifies, an expired or wrongly signed one is 401, none passes authentication), and AuthorizationPolicy
rules on request principals and claims reading the verified payload (403 without them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwks_server
import pytest
import traffic_gateway
from cryptography.hazmat.primitives.asymmetric import rsa
from traffic_backends import Backend, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.3"
NODE = "router~127.0.8.3~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
ISSUER = "https://issuer.example.com"


def _token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    return jwks_server.token(key, ISSUER, **claims)


def _tree(port: int, site: Backend, jwks: str) -> str:
    return traffic_gateway.http_site(site, GW_ADDRESS, port) + f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  jwtRules:
  - issuer: {ISSUER}
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  rules:
  - to: [{{operation: {{paths: ["/public/*"]}}}}]
  - from: [{{source: {{requestPrincipals: ["{ISSUER}/*"]}}}}]
    to: [{{operation: {{paths: ["/private/*"]}}}}]
  - to: [{{operation: {{paths: ["/admin/*"]}}}}]
    when: [{{key: "request.auth.claims[groups]", values: [admins]}}]
"""


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("jwt")
    site = Backend("site", "127.0.7.10")
    with running({"site": site}):
        port, admin = free_port(GW_ADDRESS), free_port()
        tree = write_tree(root / "tree", {"mesh.yaml": _tree(port, site, jwks_server.jwks(key))})
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(GW_ADDRESS, port)]):
            yield port


def _get(port: int, path: str, token: str | None = None) -> Reply:
    return get(port, path, "site.example.com", {"authorization": f"Bearer {token}"} if token else None,
               address=GW_ADDRESS)


def test_valid_token_passes(gateway: int, key: rsa.RSAPrivateKey) -> None:
    assert _get(gateway, "/private/page", _token(key)).status == 200


def test_expired_or_wrongly_signed_token_is_401(gateway: int, key: rsa.RSAPrivateKey) -> None:
    """Expired past Envoy's default 60 s clock skew."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _get(gateway, "/public/page", _token(key, exp=int(time.time()) - 600)).status == 401
    assert _get(gateway, "/public/page", _token(other)).status == 401


def test_no_token_passes_authentication_but_not_a_policy_requiring_a_principal(gateway: int) -> None:
    assert _get(gateway, "/public/page").status == 200
    assert _get(gateway, "/private/page").status == 403


def test_claims_in_the_verified_payload(gateway: int, key: rsa.RSAPrivateKey) -> None:
    assert _get(gateway, "/admin/x", _token(key, groups=["admins", "dev"])).status == 200
    assert _get(gateway, "/admin/x", _token(key, groups=["dev"])).status == 403
