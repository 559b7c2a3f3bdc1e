"""The CA's files in a Kubernetes Secret (cluster mode, `serve --ca-secret NAME`), as istiod keeps its self-signed
root in the Secret `istio-ca-secret` of its own namespace (security/pkg/pki/ca/ca.go, `NewSelfSignedIstioCAOptions`):
a pod has no disk that outlives it, and every replica must sign with the same root.

The Secret holds Istio's `cacerts` layout (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`), so
an operator can also put an intermediate CA there. The first replica to start makes a self-signed root and creates
the Secret; creating never overwrites (the API server answers 409 Conflict to the second create), and every replica
then reads the Secret back, so replicas racing on an empty namespace all end up with the winner's root. Needs `get`
and `create` on `secrets` in that namespace.
"""

from __future__ import annotations

import base64
import binascii
import logging

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from reconciler.identity import ca

log = logging.getLogger(__name__)

SECRET_TYPE = "istio.io/ca-root"  # Istio's type for istio-ca-secret; the credentials watch leaves it out
TIMEOUT = 10.0  # seconds per API call: `serve` waits on it at start


def load_or_create(api: kubernetes.client.CoreV1Api, namespace: str, name: str,
                   options: ca.CaOptions) -> ca.CertificateAuthority:
    """The CA of Secret `namespace/name`, made (a new self-signed root) if the Secret does not exist; ca.CaError
    when it cannot be read, created or used."""
    where = f"secret {namespace}/{name}"
    files = _read(api, namespace, name)
    if files is None:
        claim(api, namespace, name, options)
        files = _read(api, namespace, name)
        if files is None:
            raise ca.CaError(f"{where} was created but cannot be read back")
    return ca.from_files(files, where, options)


def claim(api: kubernetes.client.CoreV1Api, namespace: str, name: str, options: ca.CaOptions) -> None:
    """Create the Secret with a new self-signed root unless another replica created it first (409: theirs wins)."""
    data: dict[str, bytes | str] = {k: base64.b64encode(v).decode() for k, v in ca.new_root_files(options).items()}
    body = kubernetes.client.V1Secret(metadata=kubernetes.client.V1ObjectMeta(name=name, namespace=namespace),
                                      type=SECRET_TYPE, data=data)
    try:
        api.create_namespaced_secret(namespace, body, _request_timeout=TIMEOUT)
        log.info("made a self-signed root CA in secret %s/%s", namespace, name)
    except ApiException as err:
        if err.status != 409:
            raise ca.CaError(f"cannot create secret {namespace}/{name}: {err.status} {err.reason}") from None
        log.info("secret %s/%s was created by another replica; using its root", namespace, name)
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise ca.CaError(f"cannot reach the Kubernetes API to create secret {namespace}/{name}: {err}") from None


def _read(api: kubernetes.client.CoreV1Api, namespace: str, name: str) -> dict[str, bytes] | None:
    """The Secret's data by key, or None if there is no such Secret."""
    try:
        secret = api.read_namespaced_secret(name, namespace, _request_timeout=TIMEOUT)
    except ApiException as err:
        if err.status == 404:
            return None
        raise ca.CaError(f"cannot read secret {namespace}/{name}: {err.status} {err.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise ca.CaError(f"cannot reach the Kubernetes API to read secret {namespace}/{name}: {err}") from None
    try:
        return {k: base64.b64decode(v, validate=True) for k, v in (secret.data or {}).items()}
    except (binascii.Error, TypeError):
        raise ca.CaError(f"secret {namespace}/{name}: data is not base64") from None
