"""The CA kept in a Kubernetes Secret (`serve --ca-secret`), through the official client against the fake API server:
made once and reused, the same root for replicas that race to create it, and a Secret that cannot be used is an
error naming it. The credentials watch never reads it."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import kubernetes.client
import pytest
from fake_apiserver import FakeApiServer

from reconciler import serve
from reconciler.identity import ca
from reconciler.kube import ca_secret, registry

NAMESPACE, NAME = "meshward", "meshward-ca"


def api(apiserver: FakeApiServer) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(kubernetes.client.Configuration(host=apiserver.url)))


def stored(apiserver: FakeApiServer) -> dict[str, bytes]:
    [secret] = [o for (path, ns, name), o in apiserver._state.objects.items() if (ns, name) == (NAMESPACE, NAME)]
    assert secret["type"] == ca_secret.SECRET_TYPE
    return {k: base64.b64decode(v) for k, v in secret["data"].items()}


def test_made_once_then_reused(apiserver: FakeApiServer) -> None:
    first = ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions())
    assert sorted(stored(apiserver)) == sorted(ca.LAYOUT)
    again = ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions())
    assert again.root == first.root and again.key.public_key() == first.key.public_key()


def test_the_loser_of_a_create_race_uses_the_winners_root(apiserver: FakeApiServer) -> None:
    winner = ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions())
    # The loser read no Secret, made its own root and tries to create: 409, so it reads the winner's.
    ca_secret.claim(api(apiserver), NAMESPACE, NAME, ca.CaOptions())
    assert ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions()).root == winner.root


def test_replicas_starting_together_share_one_root(apiserver: FakeApiServer) -> None:
    start, roots = threading.Barrier(4), []

    def replica() -> None:
        start.wait()
        roots.append(ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions()).root)
    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(roots) == 4 and len(set(roots)) == 1
    assert len(apiserver.requests("Secret")) == 0  # named reads and creates only, no list of every Secret


def test_an_unusable_secret_is_an_error_naming_it(apiserver: FakeApiServer) -> None:
    apiserver.apply({"apiVersion": "v1", "kind": "Secret", "type": ca_secret.SECRET_TYPE,
                     "metadata": {"name": NAME, "namespace": NAMESPACE},
                     "data": {ca.CA_CERT: base64.b64encode(b"not a certificate").decode()}})
    with pytest.raises(ca.CaError, match=f"secret {NAMESPACE}/{NAME}.*missing"):
        ca_secret.load_or_create(api(apiserver), NAMESPACE, NAME, ca.CaOptions())


def test_serve_signs_with_the_secrets_ca(tmp_path: Path, apiserver: FakeApiServer) -> None:
    config = serve.ServeConfig(repo=str(tmp_path), kube_host=apiserver.url, ca_secret=NAME, namespace=NAMESPACE,
                               xds_tls=True)
    server = serve.Server(config, tmp_path / "work")
    server.source.close()
    assert server.ca is not None
    assert ca.from_files(stored(apiserver), "stored").root == server.ca.service.authority.root
    assert ca_secret.SECRET_TYPE in (registry.SECRETS.field_selector or "")  # never read as a Gateway credential
