"""RequestAuthentication jwksUri end to end: the key set served by a real https server on 127.0.0.1 is fetched as
the reconciler fetches it (reconciler/jwks.py), inlined by the compiler, and enforced by a real Envoy: a token
signed by the served key gets 200, a wrongly signed one 401. A jwksUri whose server fails gives its rule Istio's
fail-closed key set: its tokens get 401, requests without a token still pass. A rule with only an issuer gets the
key set its OpenID discovery document names."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jwks_server
import pytest
import traffic_gateway
from cryptography.hazmat.primitives.asymmetric import rsa
from jwks_server import Route
from traffic_backends import Backend, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

from compiler import build, pipeline
from reconciler import jwks

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.4"
NODE = "router~127.0.8.4~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
GOOD, DOWN = "https://good.example.com", "https://down.example.com"


def _tree(port: int, site: Backend, good_uri: str, down_uri: str, idp: str) -> str:
    return traffic_gateway.http_site(site, GW_ADDRESS, port) + f"""apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  jwtRules:
  - {{issuer: "{GOOD}", jwksUri: "{good_uri}"}}
  - {{issuer: "{DOWN}", jwksUri: "{down_uri}", timeout: 2s}}
  - {{issuer: "{idp}"}}
"""


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, key: rsa.RSAPrivateKey, idp_key: rsa.RSAPrivateKey,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """The gateway's port and the issuer of the rule whose key set is found by OpenID discovery."""
    root = tmp_path_factory.mktemp("jwks-uri")
    site = Backend("site", "127.0.7.11")
    routes = {"/jwks.json": Route(jwks_server.jwks(key).encode()), "/down.json": Route(b"unavailable", 503),
              "/idp/keys": Route(jwks_server.jwks(idp_key, kid="idp").encode())}
    with jwks_server.serving(root, routes) as keys, running({"site": site}):
        keys.routes["/idp/.well-known/openid-configuration"] = Route(
            json.dumps({"issuer": keys.url("/idp"), "jwks_uri": keys.url("/idp/keys")}).encode())
        port, admin = free_port(GW_ADDRESS), free_port()
        tree = write_tree(root / "tree", {"mesh.yaml": _tree(port, site, keys.url("/jwks.json"),
                                                             keys.url("/down.json"), keys.url("/idp"))})
        checked = pipeline.check([tree])
        fetched = jwks.KeySets(jwks.Fetcher(jwks.FetchOptions(ca_file=keys.ca_file))).resolve(
            build.jwks_sources(checked))
        assert fetched[keys.url("/down.json")].error == "status 503"
        assert keys.hits["/idp/keys"] == 1
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin,
                                      inputs=build.BuildInputs(jwks=fetched))
        with envoy(envoy_bin, bootstrap, admin, [(GW_ADDRESS, port)]):
            yield port, keys.url("/idp")


def _get(port: int, token: str | None = None) -> Reply:
    return get(port, "/", "site.example.com", {"authorization": f"Bearer {token}"} if token else None,
               address=GW_ADDRESS)


def test_token_signed_by_the_fetched_key_passes_and_a_wrongly_signed_one_is_401(gateway: tuple[int, str],
                                                                              key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _get(gateway[0], jwks_server.token(key, GOOD)).status == 200
    assert _get(gateway[0], jwks_server.token(other, GOOD)).status == 401


def test_a_jwks_uri_that_failed_rejects_every_token_but_not_requests_without_one(gateway: tuple[int, str],
                                                                                 key: rsa.RSAPrivateKey) -> None:
    assert _get(gateway[0], jwks_server.token(key, DOWN)).status == 401
    assert _get(gateway[0]).status == 200


def test_a_key_found_by_openid_discovery_is_accepted(gateway: tuple[int, str], key: rsa.RSAPrivateKey,
                                                     idp_key: rsa.RSAPrivateKey) -> None:
    port, issuer = gateway
    assert _get(port, jwks_server.token(idp_key, issuer, kid="idp")).status == 200
    assert _get(port, jwks_server.token(key, issuer, kid="idp")).status == 401, "only the discovered key verifies"
